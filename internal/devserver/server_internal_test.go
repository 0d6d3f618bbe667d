package devserver

import (
	"errors"
	"log/slog"
	"syscall"
	"testing"

	"go.temporal.io/server/common/authorization"
)

// TestTemporalServerPortTaken checks that a port taken between reservation
// and the server's own bind is an error from Start's path, not a crash: the
// server reports it through logger.Fatal, which the adapter turns into a
// panic that newTemporalServer recovers.
func TestTemporalServerPortTaken(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FrontendAddress = "127.0.0.1:0"
	cfg.UIAddress = ""
	cfg = cfg.withDefaults()
	p, err := reservePorts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.release()
	// Keep the history service's port bound (held[1]); free the others.
	taken := p.held[1]
	p.held = append(p.held[:1], p.held[2:]...)
	p.releaseServerPorts()
	defer func() { _ = taken.Close() }()

	sqlConfig, err := prepareDatabase(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := newTemporalServer(p, buildServerConfig(p, sqlConfig), newServerLogger(nil, slog.LevelError),
		authorization.NewNoopAuthorizer(), authorization.NewNoopClaimMapper())
	if err == nil {
		_ = ts.Stop()
		t.Fatal("the server started although the history port was taken")
	}
	if ts != nil {
		t.Error("newTemporalServer returned a server with its error")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %q does not wrap EADDRINUSE", err)
	}
}
