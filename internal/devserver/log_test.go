package devserver

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/server/common/log/tag"
)

// recorder is a slog.Handler that keeps every record it is given.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &recorderView{r, attrs}
}
func (r *recorder) WithGroup(string) slog.Handler { return r }

// recorderView records into its parent with extra attributes.
type recorderView struct {
	*recorder
	extra []slog.Attr
}

func (v *recorderView) Handle(ctx context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(v.extra...)
	return v.recorder.Handle(ctx, rec)
}

func (r *recorder) snapshot() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]slog.Record(nil), r.records...)
}

// countingTag counts how often its value is computed.
type countingTag struct{ n *int }

func (t countingTag) Key() string { return "lazy" }
func (t countingTag) Value() any  { *t.n++; return "v" }

func attr(rec slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	found := false
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}

func TestServerLoggerLevelsAndTags(t *testing.T) {
	rec := &recorder{}
	l := newServerLogger(slog.New(rec), slog.LevelWarn)

	evaluated := 0
	l.Debug("debug", countingTag{&evaluated})
	l.Info("info", countingTag{&evaluated})
	if evaluated != 0 {
		t.Errorf("tags of filtered records were evaluated %d times", evaluated)
	}
	l.Warn("warn", tag.NewStringTag("k", "v"))
	l.Error("error")
	l.DPanic("dpanic") // logs and returns
	for _, fail := range []func(string, ...tag.Tag){l.Panic, l.Fatal} {
		func() {
			cause := errors.New("listen tcp 127.0.0.1:7233: address already in use")
			defer func() {
				r := recover()
				f, ok := r.(*serverFatal)
				if !ok {
					t.Fatalf("recovered %v (%T), want *serverFatal", r, r)
				}
				if !errors.Is(f, cause) || !strings.Contains(f.Error(), "port=7233") {
					t.Errorf("serverFatal %q does not wrap the cause or carry the tags", f)
				}
			}()
			fail("failed", tag.Error(cause), tag.NewInt("port", 7233))
			t.Error("Panic/Fatal returned")
		}()
	}
	l.With(tag.NewStringTag("component", "history")).Warn("with")

	got := rec.snapshot()
	wantMsgs := []string{"warn", "error", "dpanic", "failed", "failed", "with"}
	wantLevels := []slog.Level{slog.LevelWarn, slog.LevelError, slog.LevelError, slog.LevelError, slog.LevelError, slog.LevelWarn}
	if len(got) != len(wantMsgs) {
		var msgs []string
		for _, r := range got {
			msgs = append(msgs, r.Level.String()+" "+r.Message)
		}
		t.Fatalf("got records %q, want %q", msgs, wantMsgs)
	}
	for i, r := range got {
		if r.Message != wantMsgs[i] || r.Level != wantLevels[i] {
			t.Errorf("record %d = %s %q, want %s %q", i, r.Level, r.Message, wantLevels[i], wantMsgs[i])
		}
	}
	if v, ok := attr(got[0], "k"); !ok || v.String() != "v" {
		t.Errorf("tag k not carried: %v", got[0])
	}
	if v, ok := attr(got[5], "component"); !ok || v.String() != "history" {
		t.Errorf("With tags not carried: %v", got[5])
	}

	debug := newServerLogger(slog.New(rec), slog.LevelDebug)
	debug.Debug("now visible")
	if got := rec.snapshot(); got[len(got)-1].Message != "now visible" {
		t.Errorf("debug record dropped at level debug")
	}

	// A nil logger discards instead of panicking.
	newServerLogger(nil, slog.LevelDebug).Error("dropped")
}
