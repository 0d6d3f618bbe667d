package adversarial

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/secure-agent/secure-agent/internal/proctest"
)

// eventually polls cond every 200 ms until it holds or timeout passes, then fails the test
// saying what never happened. It returns how long it waited.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// auditEvents returns the agent's audit trail, one decoded JSON line per event.
func auditEvents(t *testing.T, a *proctest.Agent) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(proctest.ReadFile(t, a.AuditFile)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("an audit line is not JSON: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

// auditHas reports whether the audit trail has an event of the given kind for the run (any run
// when workflowID is empty).
func auditHas(t *testing.T, a *proctest.Agent, event, workflowID, runID string) bool {
	t.Helper()
	for _, ev := range auditEvents(t, a) {
		if ev["event"] == event && (workflowID == "" || ev["workflowId"] == workflowID && ev["runId"] == runID) {
			return true
		}
	}
	return false
}

// historyWithoutStartInput is a run's history for a leak search with what the starter typed
// left out: the input of its WorkflowExecutionStarted event, and the connection fields as typed,
// which the workflow hands to ResolveSecrets in that activity's input (the same bytes, in the
// same history, encrypted when payload encryption is on: SECURITY.md says so). Everything else
// the agent wrote (other activity inputs, results, failures) is kept. Only for a value the
// starter chose: the point is that the agent never repeats it anywhere else.
func historyWithoutStartInput(t *testing.T, c client.Client, workflowID, runID string) string {
	t.Helper()
	return historyWithout(t, c, workflowID, runID, false)
}

// logWhereInHistory logs, for a failure's diagnosis, every event of a run other than
// WorkflowExecutionStarted whose payloads or fields hold value.
func logWhereInHistory(t *testing.T, c client.Client, workflowID, runID, value string) {
	t.Helper()
	h := proctest.History(t, c, workflowID, runID)
	scheduled := map[int64]string{}
	for _, ev := range h.GetEvents() {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if ev.GetWorkflowExecutionStartedEventAttributes() != nil {
			continue
		}
		if strings.Contains(proctest.Haystack(t, &historypb.History{Events: []*historypb.HistoryEvent{ev}}), value) {
			what := scheduled[ev.GetEventId()]
			if what != "" {
				what = " (the input of " + what + ", scheduled by the agent's workflow)"
			}
			t.Logf("run %s: event %d %s holds the value%s", workflowID, ev.GetEventId(), ev.GetEventType(), what)
		}
	}
}

// historyWithoutOwnInputs is, for the attacker's own workflow, its history with every input it
// wrote left out: its WorkflowExecutionStarted input and the inputs it gave the agent's
// activities. Everything the agent produced (results, failures) is kept.
func historyWithoutOwnInputs(t *testing.T, c client.Client, workflowID, runID string) string {
	t.Helper()
	return historyWithout(t, c, workflowID, runID, true)
}

func historyWithout(t *testing.T, c client.Client, workflowID, runID string, activityInputs bool) string {
	t.Helper()
	h := proto.Clone(proctest.History(t, c, workflowID, runID)).(*historypb.History)
	for _, ev := range h.GetEvents() {
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			a.Input = nil
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && (activityInputs || a.GetActivityType().GetName() == "ResolveSecrets") {
			a.Input = nil
		}
	}
	return proctest.Haystack(t, h)
}

// hangingServer is a database that never answers (see proctest.HangingServer): a PostgreSQL
// source pointed at it waits in Preflight for the connector's connect timeout (30 s) on every
// attempt, so its run holds its lease.
type hangingServer = proctest.HangingServer

func newHangingServer(t *testing.T) *hangingServer { return proctest.NewHangingServer(t) }
