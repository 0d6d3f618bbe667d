package adversarial

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// Metrics the lease tests read.
const (
	metricActiveLeases   = "secure_agent_active_leases"
	metricLeasesClosed   = `secure_agent_leases_ended_total{reason="run_closed"}`
	metricLeasesReleased = `secure_agent_leases_ended_total{reason="released"}`
)

// hangingPolicy allows the variable ADV_HANG_PASSWORD to be sent to the hanging servers on ports,
// and nowhere else.
func hangingPolicy(ports ...int) string {
	hosts := make([]string, len(ports))
	for i, p := range ports {
		hosts[i] = strconv.Quote("127.0.0.1:" + strconv.Itoa(p))
	}
	return fmt.Sprintf(`version: 1
stores: [env]
env:
  allow: ["ADV_*"]
destinations:
  default: deny
  rules:
    - secrets: ["ADV_HANG_PASSWORD"]
      hosts: [%s]
`, strings.Join(hosts, ", "))
}

// hangingInput is an extraction of the hanging server on port, with the password from the
// agent's variable ADV_HANG_PASSWORD: its run holds its lease while Preflight waits.
func hangingInput(port int) workflows.Input {
	return workflows.Input{
		Connector: "postgres",
		Connection: map[string]workflows.FieldValue{
			"host": "127.0.0.1", "port": workflows.FieldValue(strconv.Itoa(port)),
			"database": "catalog", "username": "reader", "password": "ADV_HANG_PASSWORD", "sslmode": "disable",
		},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
	}
}

// pendingActivity returns the run's pending activity of the given type, or nil.
func pendingActivity(t *testing.T, a *proctest.Agent, workflowID, runID, activityType string) *workflowservice.DescribeWorkflowExecutionResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := a.Client.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.GetPendingActivities() {
		if p.GetActivityType().GetName() == activityType {
			return d
		}
	}
	return nil
}

// waitInPreflight waits until the run holds its lease and waits in Preflight on the hanging
// server.
func waitInPreflight(t *testing.T, a *proctest.Agent, hang *hangingServer, workflowID, runID string) {
	t.Helper()
	eventually(t, 60*time.Second, "the run waiting in Preflight with its lease", func() bool {
		return pendingActivity(t, a, workflowID, runID, "Preflight") != nil && hang.Connections() > 0
	})
}

// checkLeaseEnded checks what ending a closed run's lease leaves: the metric by reason, the
// audit event for that run, and no release by the run itself (it ran no more code).
func checkLeaseEnded(t *testing.T, a *proctest.Agent, workflowID, runID string) {
	t.Helper()
	if n := a.Metric(metricLeasesClosed); n < 1 {
		t.Errorf("%s = %v, want at least 1", metricLeasesClosed, n)
	}
	if n := a.Metric(metricLeasesReleased); n != 0 {
		t.Errorf("%s = %v: the closed run cannot have released its lease itself", metricLeasesReleased, n)
	}
	if !auditHas(t, a, "lease.ended", workflowID, runID) {
		t.Errorf("no lease.ended audit event for run %s", runID)
	}
}

// TestLeaseEndsWhenItsRunIsTerminated (class 5a): a terminated run runs no more workflow code,
// so it never releases its lease. With the default check interval (20 s), the agent finds the
// run closed and drops the lease within 60 s of the terminate.
func TestLeaseEndsWhenItsRunIsTerminated(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	hang := newHangingServer(t)
	password := canary(t, "pgpw")
	a := startAgent(t, server, proctest.AgentOpts{Policy: hangingPolicy(hang.Port()), Env: map[string]string{"ADV_HANG_PASSWORD": password}})

	id, runID := a.Start(workflows.ExtractionWorkflowName, hangingInput(hang.Port()), 0)
	waitInPreflight(t, a, hang, id, runID)
	if n := a.Metric(metricActiveLeases); n != 1 {
		t.Fatalf("%s = %v while the run waits in Preflight, want 1", metricActiveLeases, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Client.TerminateWorkflow(ctx, id, runID, "hostile test: a run that never releases its lease"); err != nil {
		t.Fatal(err)
	}
	waited := eventually(t, 60*time.Second, "the terminated run's lease ending", func() bool {
		return a.Metric(metricActiveLeases) == 0
	})
	t.Logf("the lease ended %s after the terminate (check interval: the default, 20s)", waited.Round(100*time.Millisecond))
	checkLeaseEnded(t, a, id, runID)
	if strings.Contains(hang.Received(), password) {
		t.Error("the password reached the server that never answered")
	}
	a.AssertNowhere(nil, password)
}

// TestLeaseEndsWhenItsRunTimesOut (class 5b): a run that reaches its execution timeout is closed
// by the server, its workflow code never runs again; its lease ends within 60 s all the same.
func TestLeaseEndsWhenItsRunTimesOut(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	hang := newHangingServer(t)
	password := canary(t, "pgpw")
	a := startAgent(t, server, proctest.AgentOpts{Policy: hangingPolicy(hang.Port()), Env: map[string]string{"ADV_HANG_PASSWORD": password}})

	id, runID := a.Start(workflows.ExtractionWorkflowName, hangingInput(hang.Port()), 15*time.Second)
	waitInPreflight(t, a, hang, id, runID)
	if n := a.Metric(metricActiveLeases); n != 1 {
		t.Fatalf("%s = %v while the run waits in Preflight, want 1", metricActiveLeases, n)
	}
	var closed time.Time
	eventually(t, 40*time.Second, "the run timing out", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := a.Client.DescribeWorkflowExecution(ctx, id, runID)
		if err != nil {
			t.Fatal(err)
		}
		info := d.GetWorkflowExecutionInfo()
		if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return false
		}
		if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT {
			t.Fatalf("the run closed as %s, want timed out", info.GetStatus())
		}
		closed = info.GetCloseTime().AsTime()
		return true
	})
	eventually(t, 65*time.Second, "the timed-out run's lease ending", func() bool {
		return a.Metric(metricActiveLeases) == 0
	})
	after := time.Since(closed)
	t.Logf("the lease ended %s after the run timed out (check interval: the default, 20s)", after.Round(100*time.Millisecond))
	if after > 60*time.Second {
		t.Errorf("the lease ended %s after its run closed, more than 60s", after)
	}
	checkLeaseEnded(t, a, id, runID)
	a.AssertNowhere(nil, password)
}

// TestLeaseLimitHoldsRunsBack (class 5c): an agent holds at most SECURE_AGENT_MAX_LEASES leases.
// A second run's ResolveSecrets fails with LeaseLimit (retried) while the first holds the only
// one; once the first is terminated and its lease ends, the second gets its lease.
func TestLeaseLimitHoldsRunsBack(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	hang := newHangingServer(t)
	password := canary(t, "pgpw")
	a := startAgent(t, server, proctest.AgentOpts{Policy: hangingPolicy(hang.Port()), Env: map[string]string{
		"ADV_HANG_PASSWORD":                 password,
		"SECURE_AGENT_MAX_LEASES":           "1",
		"SECURE_AGENT_LEASE_CHECK_INTERVAL": "2s", // the default is proven above; this keeps the test short
	}})

	first, firstRun := a.Start(workflows.ExtractionWorkflowName, hangingInput(hang.Port()), 0)
	waitInPreflight(t, a, hang, first, firstRun)
	second, secondRun := a.Start(workflows.ExtractionWorkflowName, hangingInput(hang.Port()), 0)
	eventually(t, 30*time.Second, "the second run's ResolveSecrets failing with LeaseLimit", func() bool {
		d := pendingActivity(t, a, second, secondRun, "ResolveSecrets")
		if d == nil {
			return false
		}
		for _, p := range d.GetPendingActivities() {
			if f := p.GetLastFailure(); f.GetApplicationFailureInfo().GetType() == "LeaseLimit" {
				t.Logf("attempt %d: %s", p.GetAttempt(), f.GetMessage())
				return true
			}
		}
		return false
	})
	if n := a.Metric(metricActiveLeases); n != 1 {
		t.Errorf("%s = %v with the limit reached, want 1", metricActiveLeases, n)
	}
	if pendingActivity(t, a, second, secondRun, "Preflight") != nil {
		t.Fatal("the second run got past ResolveSecrets while the first held the only lease")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Client.TerminateWorkflow(ctx, first, firstRun, "hostile test: free the only lease"); err != nil {
		t.Fatal(err)
	}
	waited := eventually(t, 90*time.Second, "the second run getting its lease", func() bool {
		return pendingActivity(t, a, second, secondRun, "Preflight") != nil
	})
	t.Logf("the second run got its lease %s after the first was terminated", waited.Round(100*time.Millisecond))
	if n := a.Metric(metricActiveLeases); n != 1 {
		t.Errorf("%s = %v, want 1 (the second run's)", metricActiveLeases, n)
	}
	checkLeaseEnded(t, a, first, firstRun)
	a.AssertNowhere(nil, password)
}

// TestLeaseEndsWhenItsRunIsReset (class 5, reset): resetting a run terminates it and starts a
// new run from an earlier point. The old run's workflow code never runs again; its lease ends
// within 60 s of the reset, while the new run resolves a lease of its own.
func TestLeaseEndsWhenItsRunIsReset(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	hang := newHangingServer(t)
	password := canary(t, "pgpw")
	a := startAgent(t, server, proctest.AgentOpts{Policy: hangingPolicy(hang.Port()), Env: map[string]string{"ADV_HANG_PASSWORD": password}})

	id, runID := a.Start(workflows.ExtractionWorkflowName, hangingInput(hang.Port()), 0)
	waitInPreflight(t, a, hang, id, runID)
	var firstTask int64 // the first completed workflow task: before ResolveSecrets was scheduled
	for _, ev := range proctest.History(t, a.Client, id, runID).GetEvents() {
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			firstTask = ev.GetEventId()
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reset, err := a.Client.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: runID},
		Reason: "hostile test: a reset run never releases its lease", WorkflowTaskFinishEventId: firstTask,
		RequestId: canary(t, "reset"),
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Remember(id, reset.GetRunId())
	waited := eventually(t, 60*time.Second, "the reset run's lease ending", func() bool {
		return auditHas(t, a, "lease.ended", id, runID)
	})
	t.Logf("the reset run's lease ended %s after the reset (check interval: the default, 20s)", waited.Round(100*time.Millisecond))
	checkLeaseEnded(t, a, id, runID)
	// The new run holds a lease of its own; end it too.
	waitInPreflight(t, a, hang, id, reset.GetRunId())
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := a.Client.TerminateWorkflow(ctx2, id, reset.GetRunId(), "hostile test: done"); err != nil {
		t.Fatal(err)
	}
	a.AssertNowhere(nil, password)
}
