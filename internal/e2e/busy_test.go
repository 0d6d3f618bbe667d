package e2e

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestBusyWorkerIsNotMistakenForLost gives the agent one activity slot and fills it with a run
// whose Preflight connects to a PostgreSQL address that accepts and never answers (the connect
// timeout is 30 s). A second run's Preflight cannot start within the 10 s a leased step may wait;
// the worker holding its lease answers LeaseAlive on its control queue, so the run waits for the
// slot instead of resolving its secrets again (which, with one agent, would land on the same full
// worker until the renewals ran out), scheduled again with twice the time to start. The run
// completes without renewing its lease.
func TestBusyWorkerIsNotMistakenForLost(t *testing.T) {
	free := filepath.Join(t.TempDir(), "free.db")
	makeShop(t, free)
	t.Setenv("E2E_BUSY_FREE", free)
	t.Setenv("E2E_BUSY_PG_PASSWORD", "not-used")
	h := newHarness(t, func(s *worker.Settings) {
		s.EnvAllow = []string{"E2E_BUSY_*"}
		s.MaxConcurrentActivities = 1
	})
	silent := proctest.NewHangingServer(t)

	blocker := h.start(workflows.ExtractionWorkflowName, workflows.Input{
		Connector: "postgres",
		Connection: map[string]workflows.FieldValue{
			"host": "127.0.0.1", "port": workflows.FieldValue(strconv.Itoa(silent.Port())), "database": "d",
			"username": "u", "password": "E2E_BUSY_PG_PASSWORD", "sslmode": "disable",
		},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
	})
	waitPhase(t, h, blocker.GetID(), workflows.PhasePreflight)
	waiting := h.start(workflows.ExtractionWorkflowName, envInput("E2E_BUSY_FREE"))

	// Hold the slot until the waiting run has found the worker busy, then free it.
	deadline := time.Now().Add(40 * time.Second)
	for {
		var p workflows.Progress
		if v, err := h.client.QueryWorkflow(context.Background(), waiting.GetID(), "", workflows.QueryProgress); err == nil && v.Get(&p) == nil && p.WorkerBusyWaits > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiting run never found the worker busy")
		}
		time.Sleep(100 * time.Millisecond)
	}
	silent.Close()
	if err := h.client.CancelWorkflow(context.Background(), blocker.GetID(), ""); err != nil {
		t.Fatal(err)
	}

	var waited workflows.Summary
	if err := waiting.Get(context.Background(), &waited); err != nil {
		t.Fatalf("the run that waited for the slot: %v", err)
	}
	if waited.LeaseRenewals != 0 || waited.WorkerBusyWaits < 1 {
		t.Errorf("lease renewals %d, busy waits %d: want 0 renewals and at least one wait (a busy worker taken for a lost one?)", waited.LeaseRenewals, waited.WorkerBusyWaits)
	}
	if waited.Counts["tables"] == 0 {
		t.Errorf("counts %v", waited.Counts)
	}
	// The step was scheduled again with twice the time to start, so it cannot time out forever
	// behind a queue that takes longer than the first wait to drain.
	var waits []time.Duration
	for _, ev := range history(t, h.client, waiting).Events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "Preflight" {
			waits = append(waits, a.GetScheduleToStartTimeout().AsDuration())
		}
	}
	if len(waits) != waited.WorkerBusyWaits+1 || waits[0] != 10*time.Second || len(waits) < 2 || waits[1] != 20*time.Second {
		t.Errorf("Preflight was scheduled with schedule-to-start %v after %d busy waits, want 10s, then 20s, ...", waits, waited.WorkerBusyWaits)
	}
	if recording() {
		// v5: a leased step that does not start in time asks LeaseAlive (change id
		// "ask-busy-worker") and runs again on the same lease.
		recordHistory(t, h, "extraction-busy-worker-v5", waiting)
	}
	_ = blocker.Get(context.Background(), nil)
	for time.Now().Before(deadline) && h.agent.ActiveLeases() != 0 {
		time.Sleep(50 * time.Millisecond)
	}
	if n := h.agent.ActiveLeases(); n != 0 {
		t.Errorf("%d leases held after both runs ended", n)
	}
}
