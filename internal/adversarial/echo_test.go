package adversarial

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestSensitiveValueIsNeverEchoed (class 4): a value given for a sensitive field may be the
// password itself, typed where the name of a secret belongs. The agent never repeats it: not in
// the failure, the audit, the worker's log (ERROR lines included) or history; `run` and `check`
// refuse a sensitive literal without a store before anything is started (exit 2), so it never
// reaches history at all; and a name given for a sensitive field that the store does not have
// is reported by field, never by the name given.
func TestSensitiveValueIsNeverEchoed(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	storePassword := canary(t, "custom-pw")
	var storeRequests atomic.Int64
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storeRequests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"username": "reader", "password": storePassword})
	}))
	t.Cleanup(store.Close)
	a := startAgent(t, server, proctest.AgentOpts{Env: map[string]string{
		"SECURE_AGENT_ENV_ALLOW":          "ADV_*",
		"SECURE_AGENT_CUSTOM_STORE_HOSTS": strings.TrimPrefix(store.URL, "http://"),
	}})
	// Every source points here: nothing may ever connect, since every run fails resolving.
	trap := proctest.NewTrap(t, "tcp", "127.0.0.1:0")
	pgInput := func(password string, store *stores.Spec) workflows.Input {
		return workflows.Input{
			Connector: "postgres",
			Connection: map[string]workflows.FieldValue{
				"host": "127.0.0.1", "port": workflows.FieldValue(strconv.Itoa(trap.Port())),
				"database": "catalog", "username": "reader", "password": workflows.FieldValue(password), "sslmode": "disable",
			},
			SecretStore: store,
		}
	}
	extra := map[string]string{}

	// (a) The env store, the password typed as the value of "password". The run fails, saying
	// which field, without the value. Only what the starter typed is left out of the history
	// search, for this case and (d): the WorkflowExecutionStarted input, and the same connection
	// fields the workflow hands on to ResolveSecrets (historyWithoutStartInput). The point is that
	// the agent never repeats the value anywhere else, so everything else the agent's workflow
	// and activities wrote (other activity inputs, results, failures) is searched.
	typed := canary(t, "hunter2")
	t.Run("env store, password typed as the value", func(t *testing.T) {
		id, runID := startOwnInput(t, a, pgInput(typed, &stores.Spec{Type: stores.TypeEnv}))
		ae := a.Failure(id, runID)
		t.Logf("%s: %s", ae.Type(), ae.Message())
		if ae.Type() != "InvalidInput" { // the value is not a variable name
			t.Errorf("failure %s: %s; want InvalidInput", ae.Type(), ae.Message())
		}
		if !strings.Contains(ae.Message(), `field "password"`) {
			t.Errorf("the failure does not name the field: %s", ae.Message())
		}
		if strings.Contains(ae.Message(), typed) {
			t.Errorf("the failure repeats the value typed for the password: %s", ae.Message())
		}
		if !auditHas(t, a, "secret.read", id, runID) {
			t.Error("the failed read is not audited: the audit search would prove nothing")
		}
		extra["history of the typed-password run (its start input left out)"] = historyWithoutStartInput(t, a.Client, id, runID)
		logWhereInHistory(t, a.Client, id, runID, typed)
	})

	// (b) `run` with a sensitive literal and no secretStore: refused before anything starts.
	runLiteral := canary(t, "hunter2-run")
	t.Run("run refuses a sensitive literal without a store", func(t *testing.T) {
		workflowID := canary(t, "echo-run")
		code, stdout, stderr := a.CLI("run", "--input", inputFile(t, pgInput(runLiteral, nil)), "--workflow-id", workflowID, "--task-queue", a.Queue)
		extra["run stdout"], extra["run stderr"] = stdout, stderr
		if code != 2 {
			t.Errorf("run exit code %d, want 2\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if !strings.Contains(stderr, "nothing was started") || !strings.Contains(stderr, "connection.password") {
			t.Errorf("run does not say it refused the password field and started nothing: %s", stderr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := a.Client.DescribeWorkflowExecution(ctx, workflowID, "")
		var notFound *serviceerror.NotFound
		if !errors.As(err, &notFound) {
			t.Errorf("run refused the input, but workflow %s exists (describe: %v)", workflowID, err)
		}
	})

	// (c) `check` with the same input: refused the same way, no connection test started.
	checkLiteral := canary(t, "hunter2-check")
	t.Run("check refuses a sensitive literal without a store", func(t *testing.T) {
		code, stdout, stderr := a.CLI("check", "--input", inputFile(t, pgInput(checkLiteral, nil)), "--task-queue", a.Queue)
		extra["check stdout"], extra["check stderr"] = stdout, stderr
		if code != 2 {
			t.Errorf("check exit code %d, want 2\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if !strings.Contains(stdout+stderr, "nothing was started") {
			t.Errorf("check does not say it started nothing:\n%s%s", stdout, stderr)
		}
		time.Sleep(time.Second) // visibility is near-immediate on the dev server; give it a moment
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := a.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowType = '%s'", workflows.TestConnectionWorkflowName)})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.GetExecutions()); n > 0 {
			t.Errorf("check refused the input, but %d connection test(s) were started", n)
		}
	})

	// (d) A sensitive field naming a variable or key the store does not have, the name being
	// the canary: SecretNotFound / SecretKeyNotFound naming the field, never the name given.
	// The history search leaves out the start input only, as in (a).
	missingVar := "ADV_" + strings.ReplaceAll(canary(t, "MISSING"), "-", "_")
	missingKey := canary(t, "hunter2-key")
	for _, tc := range []struct {
		name, given, kind string
		store             *stores.Spec
	}{
		{"env store, missing variable", missingVar, "SecretNotFound", &stores.Spec{Type: stores.TypeEnv}},
		{"custom store, missing key", missingKey, "SecretKeyNotFound", &stores.Spec{Type: stores.TypeCustom,
			Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q, "secret_name": "team/catalog"}`, store.URL))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := pgInput(tc.given, tc.store)
			if tc.store.Type == stores.TypeCustom {
				in.Connection["username"] = "username" // a key the secret has: the store is really read
			}
			id, runID := startOwnInput(t, a, in)
			ae := a.Failure(id, runID)
			t.Logf("%s: %s", ae.Type(), ae.Message())
			if ae.Type() != tc.kind {
				t.Errorf("failure %s: %s; want %s", ae.Type(), ae.Message(), tc.kind)
			}
			if !strings.Contains(ae.Message(), `field "password"`) {
				t.Errorf("the failure does not name the field: %s", ae.Message())
			}
			if strings.Contains(ae.Message(), tc.given) {
				t.Errorf("the failure repeats the name given for the password: %s", ae.Message())
			}
			extra["history of "+tc.name+" (its start input left out)"] = historyWithoutStartInput(t, a.Client, id, runID)
			logWhereInHistory(t, a.Client, id, runID, tc.given)
		})
	}
	// (e) secretStore.fields routes a secret's value (the store's password) into non-sensitive
	// fields, where the guard does not look for it: the connector refuses them by field name,
	// never by value, before dialling anything.
	t.Run("fields route a secret's value into non-sensitive fields", func(t *testing.T) {
		in := pgInput("", &stores.Spec{Type: stores.TypeCustom,
			Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q}`, store.URL)),
			Fields: map[string]stores.SecretField{
				"port":     {Secret: "team/catalog", Key: "password"},
				"sslmode":  {Secret: "team/catalog", Key: "password"},
				"password": {Secret: "team/catalog", Key: "username"},
			}})
		delete(in.Connection, "port")
		delete(in.Connection, "sslmode")
		delete(in.Connection, "password")
		before := storeRequests.Load()
		id, runID := startOwnInput(t, a, in)
		ae := a.Failure(id, runID)
		t.Logf("%s: %s", ae.Type(), ae.Message())
		if ae.Type() != "InvalidInput" || !strings.Contains(ae.Message(), `field "`) {
			t.Errorf("failure %s: %s; want InvalidInput naming a field", ae.Type(), ae.Message())
		}
		if storeRequests.Load() == before {
			t.Error("the store was not asked: the case proves nothing")
		}
		extra["history of the routed-fields run"] = historyWithoutStartInput(t, a.Client, id, runID)
	})
	if storeRequests.Load() == 0 {
		t.Error("the custom store was never asked: the missing-key case proves nothing")
	}
	if !strings.Contains(proctest.ReadFile(t, a.Proc.Log), `"level":"WARN","msg":"secret resolution failed"`) {
		t.Error("the worker logged no failed resolution: the log search would prove nothing")
	}
	trap.AssertUntouched(t, "the source of runs that never resolved their secrets")
	a.AssertNowhere(extra, typed, runLiteral, checkLiteral, missingVar, missingKey, storePassword)
}

// startOwnInput starts an ExtractionWorkflow on the agent's queue without remembering it for
// Evidence: its input holds a value the attacker chose, which the caller searches for in the
// history with that input left out (historyWithoutStartInput).
func startOwnInput(t *testing.T, a *proctest.Agent, in workflows.Input) (id, runID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := a.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: canary(t, "echo"), TaskQueue: a.Queue, WorkflowExecutionTimeout: 3 * time.Minute,
	}, workflows.ExtractionWorkflowName, in)
	if err != nil {
		t.Fatal(err)
	}
	return run.GetID(), run.GetRunID()
}

// inputFile writes a workflow input as `run --input` and `check --input` read it.
func inputFile(t *testing.T, in workflows.Input) string {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
