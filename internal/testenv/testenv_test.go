package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recordingTB stands in for a test that Sample may skip or fail: it records the message and
// ends the goroutine, as testing.T does.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatal(args ...any) {
	r.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

// run calls fn with a recordingTB on a goroutine of its own, which Skip and Fatal end.
func run(t *testing.T, fn func(tb testing.TB)) *recordingTB {
	r := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

func TestSample(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pagila.sql"), []byte("SELECT 1;"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "chinook.sqlite"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECURE_AGENT_SAMPLES_DIR", dir)

	t.Setenv("SECURE_AGENT_REQUIRE_INTEGRATION", "")
	var got string
	if r := run(t, func(tb testing.TB) { got = Sample(tb, "pagila.sql") }); r.skipped != "" || r.failed != "" ||
		got != filepath.Join(dir, "pagila.sql") {
		t.Errorf("present: %q, skipped %q, failed %q", got, r.skipped, r.failed)
	}
	// Missing, or not a regular file: skipped on a laptop, failed in CI, saying what to run.
	for _, name := range []string{"sakila-data.sql", "chinook.sqlite"} {
		t.Setenv("SECURE_AGENT_REQUIRE_INTEGRATION", "")
		if r := run(t, func(tb testing.TB) { Sample(tb, name) }); r.failed != "" || !strings.Contains(r.skipped, "run scripts/samples") {
			t.Errorf("%s without integration required: skipped %q, failed %q", name, r.skipped, r.failed)
		}
		t.Setenv("SECURE_AGENT_REQUIRE_INTEGRATION", "1")
		if r := run(t, func(tb testing.TB) { Sample(tb, name) }); r.skipped != "" || !strings.Contains(r.failed, "run scripts/samples") {
			t.Errorf("%s with integration required: skipped %q, failed %q", name, r.skipped, r.failed)
		}
	}
}
