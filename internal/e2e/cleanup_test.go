package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestCleanOutput: the agent removes what runs left in its output directory, and nothing a live
// run needs. A run that finalized here keeps its output and loses leftover parts and temporary
// files; a run that never finalized here (its output was written elsewhere) and is closed loses
// its directory; a running run's parts stay; a directory whose names are not a run's ids stays.
func TestCleanOutput(t *testing.T) {
	dir := t.TempDir()
	db, locked := filepath.Join(dir, "shop.db"), filepath.Join(dir, "locked.db")
	makeShop(t, db)
	makeShop(t, locked)
	t.Setenv("E2E_CLEAN_DB", db)
	t.Setenv("E2E_CLEAN_LOCKED", locked)
	h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_CLEAN_*"} })
	ctx := context.Background()
	finish := func() workflows.Summary {
		var sum workflows.Summary
		if err := h.start(workflows.ExtractionWorkflowName, envInput("E2E_CLEAN_DB")).Get(ctx, &sum); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	old := time.Now().Add(-time.Hour)
	leave := func(runDir string) {
		t.Helper()
		parts := filepath.Join(runDir, output.PartsDir)
		if err := os.MkdirAll(parts, 0o750); err != nil {
			t.Fatal(err)
		}
		// A file Finalize does not take for a part (the running run must still finalize).
		if err := os.WriteFile(filepath.Join(parts, "marker"), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(parts, old, old); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	// Finalized here, with leftovers.
	a := finish()
	leave(a.OutputDir)
	tmp := filepath.Join(a.OutputDir, ".tables.jsonl.gz.123.tmp")
	if err := os.WriteFile(tmp, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	// Finalized elsewhere: this disk has only its parts.
	b := finish()
	if err := os.RemoveAll(b.OutputDir); err != nil {
		t.Fatal(err)
	}
	leave(b.OutputDir)
	// Running: its parts are needed.
	unlock := lockExclusively(t, locked)
	running := h.start(workflows.ExtractionWorkflowName, envInput("E2E_CLEAN_LOCKED"))
	waitPhase(t, h, running.GetID(), workflows.PhasePreflight)
	runningDir := output.RunDir(h.settings.OutputDir, "", "sqlite", running.GetID(), running.GetRunID())
	leave(runningDir)
	// Not a run's ids (a shortened id, say).
	odd := filepath.Join(h.settings.OutputDir, "sqlite", "%ZZ", "not-a-run")
	leave(odd)

	got := h.agent.CleanOutput(ctx)
	if got.Finished != 1 || got.Orphaned != 1 {
		t.Errorf("cleaned %+v, want 1 finished and 1 orphaned run", got)
	}
	switch {
	case !exists(output.ManifestPath(a.OutputDir)):
		t.Errorf("the finalized run lost its manifest")
	case exists(filepath.Join(a.OutputDir, output.PartsDir)) || exists(tmp):
		t.Errorf("the finalized run kept its leftovers")
	}
	if exists(b.OutputDir) {
		t.Errorf("the run finalized elsewhere kept its parts here")
	}
	if !exists(filepath.Join(runningDir, output.PartsDir)) {
		t.Errorf("the running run lost its parts")
	}
	if !exists(filepath.Join(odd, output.PartsDir)) {
		t.Errorf("a directory that is not a run's was removed")
	}
	unlock()
	if err := running.Get(ctx, nil); err != nil {
		t.Fatalf("the running run: %v", err)
	}
}
