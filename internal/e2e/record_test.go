package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// historiesDir is where replay tests (workflows/replay_test.go) read recorded histories.
const historiesDir = "../../testdata/histories"

// TestRecordHistories records one history per workflow branch from real runs, written by the real
// temporal CLI (`temporal workflow show --output json`). It only runs when asked:
//
//	SECURE_AGENT_RECORD_HISTORIES=1 go test ./internal/e2e -run TestRecordHistories
//
// Record again whenever a workflow changes shape, and keep the old files: replaying them proves
// that running workflows survive the change.
func TestRecordHistories(t *testing.T) {
	if os.Getenv("SECURE_AGENT_RECORD_HISTORIES") != "1" {
		t.Skip("set SECURE_AGENT_RECORD_HISTORIES=1 to record replay histories")
	}
	cli := temporalCLI(t)
	db := filepath.Join(t.TempDir(), "shop.db")
	makeShop(t, db)
	locked := filepath.Join(t.TempDir(), "locked.db")
	makeShop(t, locked)
	t.Setenv("REC_SHOP_DB", db)
	t.Setenv("REC_LOCKED_DB", locked)
	h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"REC_*"} })

	record := func(name string, run client.WorkflowRun) {
		t.Helper()
		_ = run.Get(context.Background(), nil)
		out, err := exec.Command(cli, "workflow", "show", "--address", server.GetFrontendHostPort(),
			"--namespace", server.GetDefaultNamespace(), "--workflow-id", run.GetID(), "--run-id", run.GetRunID(),
			"--output", "json").Output()
		if err != nil {
			t.Fatalf("temporal workflow show: %v", err)
		}
		if err := os.WriteFile(filepath.Join(historiesDir, name+".json"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	record("extraction-success-v1", h.start(workflows.ExtractionWorkflowName, envInput("REC_SHOP_DB")))
	record("extraction-invalid-input-v1", h.start(workflows.ExtractionWorkflowName, map[string]any{"connector": "oracle"}))
	record("extraction-secret-not-found-v1", h.start(workflows.ExtractionWorkflowName, envInput("REC_NOT_SET")))
	record("testconnection-success-v1", h.start(workflows.TestConnectionWorkflowName, envInput("REC_SHOP_DB")))

	unlock := lockExclusively(t, locked)
	run := h.start(workflows.ExtractionWorkflowName, envInput("REC_LOCKED_DB"))
	waitPhase(t, h, run.GetID(), workflows.PhasePreflight)
	if err := h.client.CancelWorkflow(context.Background(), run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	_ = run.Get(context.Background(), nil)
	unlock()
	record("extraction-cancelled-v1", run)
}
