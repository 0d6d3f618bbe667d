package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestServerRestartMidRun proves that runs survive a restart of the Temporal server under a live
// worker (issue 7, item 4): the dev server keeps its state in a SQLite file; while runs are
// extracting it is stopped, gracefully (SIGTERM, SIGKILL after 10 s) or by a crash (SIGKILL), and,
// a few seconds later, started again on the same ports and file. The worker process is not
// restarted (the same pid stays alive throughout) and must reconnect by itself; the workflows
// started before the restart must still be known to the server afterwards (persistence), and
// every run must complete with output identical to a clean run's.
func TestServerRestartMidRun(t *testing.T) {
	t.Parallel()
	for _, crash := range []bool{false, true} {
		name := map[bool]string{false: "graceful", true: "crash"}[crash]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			serverRestartMidRun(t, crash)
		})
	}
}

func serverRestartMidRun(t *testing.T, crash bool) {
	server := proctest.StartDevServer(t)
	src := manySchemas(t)
	cfg := newAgentConfig(t, server, src.password)
	c := server.Client(t)
	in := src.input()

	w := startWorker(t, cfg, "only")
	pid := w.Pid()
	const nRuns = 3
	ids, runIDs := make([]string, nRuns), make([]string, nRuns)
	for i := range nRuns {
		ids[i], runIDs[i] = startRun(t, c, cfg, fmt.Sprintf("run%d", i), in)
	}
	waitSchemasDone(t, c, ids[0], 4)
	var before []string
	for _, id := range ids {
		if p, err := progress(c, id); err == nil {
			before = append(before, fmt.Sprintf("%s %d/%d", p.Phase, p.SchemasDone, p.SchemasTotal))
		}
	}
	t.Logf("stopping the server; progress of the runs: %v", before)

	stoppedAt := time.Now()
	if crash {
		server.Crash()
	} else {
		server.Stop()
	}
	time.Sleep(3 * time.Second)
	if !w.Alive() {
		t.Fatalf("the worker died while the server was down:\n%s", w.Tail(30))
	}
	server.Start()
	t.Logf("the server was away for %s", time.Since(stoppedAt).Round(100*time.Millisecond))

	running := 0
	for i, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		d, err := c.DescribeWorkflowExecution(ctx, id, runIDs[i])
		cancel()
		if err != nil {
			t.Fatalf("workflow %s, started before the restart, is unknown after it: %v", id, err)
		}
		status := d.GetWorkflowExecutionInfo().GetStatus()
		if status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			running++
		}
		t.Logf("after the restart %s is %s", id, status)
	}
	if running == 0 {
		t.Fatalf("no run was still running after the restart: it came too late to test anything")
	}

	sums := make([]workflows.Summary, nRuns)
	for i := range nRuns {
		sums[i] = result(t, c, ids[i], runIDs[i])
	}
	t.Logf("all %d runs completed %s after the server stopped (lease renewals: %d, %d, %d)", nRuns,
		time.Since(stoppedAt).Round(time.Second), sums[0].LeaseRenewals, sums[1].LeaseRenewals, sums[2].LeaseRenewals)
	if !w.Alive() || w.Pid() != pid {
		t.Fatalf("the worker process (pid %d) did not live through the restart", pid)
	}

	cleanID, cleanRunID := startRun(t, c, cfg, "clean", in)
	clean := result(t, c, cleanID, cleanRunID)
	assertExpectedCounts(t, clean)
	for i, sum := range sums {
		assertSameOutput(t, fmt.Sprintf("run %d", i), sum, clean)
	}
	if !w.Alive() {
		t.Errorf("the worker process (pid %d) died", pid)
	}
	assertNoSecretInLogs(t, src.password, w)
}
