package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/secure-agent/secure-agent/internal/testenv"
)

// TestDevPrintsExportLines starts `dev` on free ports and follows what it prints: the export
// line names the address a client in another shell can reach the embedded server on.
func TestDevPrintsExportLines(t *testing.T) {
	t.Setenv("SECURE_AGENT_OUTPUT_DIR", t.TempDir())
	t.Setenv("SECURE_AGENT_AUDIT", "off")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stderr := &testenv.SyncBuffer{}
	done := make(chan int, 1)
	cfg := portZeroConfig(t)
	go func() { done <- mainWith(ctx, []string{"dev", "--config", cfg}, &strings.Builder{}, stderr) }()
	var addr string
	for i := 0; i < 600 && addr == ""; i++ {
		time.Sleep(50 * time.Millisecond)
		if _, rest, ok := strings.Cut(stderr.String(), "export TEMPORAL_ADDRESS="); ok {
			addr, _, _ = strings.Cut(rest, "\n")
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("dev printed no export line:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "TEMPORAL_NAMESPACE") {
		t.Errorf("the default namespace needs no export line:\n%s", stderr.String())
	}
	c, err := client.Dial(client.Options{HostPort: addr})
	if err != nil {
		t.Fatalf("the exported address %q does not reach the server: %v", addr, err)
	}
	if _, err := c.CheckHealth(ctx, nil); err != nil {
		t.Errorf("health check on %s: %v", addr, err)
	}
	c.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("dev exited %d:\n%s", code, stderr.String())
	}
}

func TestExportLines(t *testing.T) {
	got := exportLines("127.0.0.1:7233", "default", false)
	if got != "in another shell:\n  export TEMPORAL_ADDRESS=127.0.0.1:7233\n" {
		t.Errorf("default namespace: %q", got)
	}
	got = exportLines("[::1]:7233", "team a's", true)
	for _, want := range []string{"export TEMPORAL_ADDRESS='[::1]:7233'\n", `export TEMPORAL_NAMESPACE='team a'\''s'`, "export TEMPORAL_TLS=true", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q does not hold %q", got, want)
		}
	}
}
