package adversarial

import (
	"testing"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/secrets/stores"
)

// TestResultGuardIsNotAnOracle: the result guard withholds what holds a value of the run's
// sensitive fields, but a result or error that only repeats the caller's own text (an input
// field, the workflow id) reveals nothing the caller did not know. If the guard judged that
// text too, an attacker could test guesses: a step echoing the guess would fail with
// LeakPrevented exactly when the guess is the password. Here the attacker's run holds a lease
// for the real password and calls Preflight with the guess as the connector name, which the
// error repeats: the right guess and a wrong one get the same answer.
func TestResultGuardIsNotAnOracle(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	src := proctest.PGSource(t)
	a := startAgent(t, server, proctest.AgentOpts{Policy: sourcePolicy(src), Env: map[string]string{"ADV_PG_PASSWORD": src.Password}})
	attackerQueue := startAttacker(t, server.Client(t))
	own := &activities.ResolveInput{Connector: "postgres", Connection: sourceConnection(src, "ADV_PG_PASSWORD"),
		SecretStore: &stores.Spec{Type: stores.TypeEnv}}
	guess := func(label, connector string) attackCall {
		return attackCall{Label: label, Activity: "Preflight", Queue: queueLease, OwnLease: true,
			Preflight: &activities.PreflightInput{LeaseInput: activities.LeaseInput{Connector: connector}}}
	}
	got, _, _ := attack(t, a.Client, attackerQueue, attackPlan{SharedQueue: a.Queue, Own: own, Calls: []attackCall{
		guess("wrong guess", "hunter2-wrong-guess"),
		guess("right guess", src.Password),
	}})
	wrong, right := got["wrong guess"], got["right guess"]
	t.Logf("wrong guess: %v; right guess: %v", wrong, right)
	if wrong.Type != "InvalidInput" || right.Type != wrong.Type {
		t.Errorf("the answers differ by guess: wrong %v, right %v", wrong, right)
	}
	if auditHas(t, a, "leak.prevented", "", "") {
		t.Error("the guard counted the caller's own guess as a leak")
	}
	// The attacker's own run holds its guess, input and echo alike (it typed it); the agent's
	// log, audit, output and metrics hold nothing of it (the log guard withholds the SDK's line
	// that repeats the right guess: no caller reads the log, so there is no oracle there).
	a.AssertNowhere(nil, src.Password)
}
