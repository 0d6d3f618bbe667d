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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/output/s3"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// The attacker's own workflow: anyone with write access to the namespace can run a worker of
// their own and, from a workflow of their own, call the agent's activities by name with any
// input, skipping everything the agent's workflow validates. This one runs in the test process,
// on a task queue of its own, and calls what its plan says, each call once (no retries).

// attackWorkflowName is the attacker's workflow type: not one of the agent's.
const attackWorkflowName = "HostileAttack"

// Queues an attack call can be sent to.
const (
	queueShared  = "shared"  // the agent's shared queue (ResolveSecrets)
	queueLease   = "lease"   // the queue of the lease in the call's input (or the run's own lease)
	queueControl = "control" // the control queue of that lease's worker (LeaseAlive)
)

// attackCall is one activity call, by name, with exactly one of the inputs set.
type attackCall struct {
	Label    string `json:"label"`
	Activity string `json:"activity"`
	Queue    string `json:"queue"`
	// OwnLease puts the lease the attacker's run obtained (attackPlan.Own) into the input.
	OwnLease bool `json:"ownLease,omitempty"`

	Resolve     *activities.ResolveInput     `json:"resolve,omitempty"`
	Preflight   *activities.PreflightInput   `json:"preflight,omitempty"`
	ListSchemas *activities.ListSchemasInput `json:"listSchemas,omitempty"`
	Extract     *activities.ExtractInput     `json:"extract,omitempty"`
	Finalize    *activities.FinalizeInput    `json:"finalize,omitempty"`
	Publish     *activities.PublishInput     `json:"publish,omitempty"`
	Lease       *activities.LeaseInput       `json:"lease,omitempty"`
}

// attackPlan is the attacker workflow's input.
type attackPlan struct {
	// SharedQueue is the agent's shared task queue.
	SharedQueue string `json:"sharedQueue"`
	// Own, when set, is resolved first: a lease obtained legitimately by the attacker's run.
	Own   *activities.ResolveInput `json:"own,omitempty"`
	Calls []attackCall             `json:"calls"`
}

// outcome is what one call gave: Type "ok" and its result as JSON, or the ApplicationError's
// type and message ("error" for a failure of another kind).
type outcome struct {
	Type    string `json:"type"`
	Message string `json:"message,omitempty"`
	Result  string `json:"result,omitempty"`
}

func (o outcome) String() string {
	if o.Type == "ok" {
		return "ok " + o.Result
	}
	return o.Type + ": " + o.Message
}

// attackWorkflow runs the plan and returns each call's outcome by label ("own lease" for Own).
func attackWorkflow(ctx workflow.Context, plan attackPlan) (map[string]outcome, error) {
	out := map[string]outcome{}
	call := func(queue, activity string, in, result any) outcome {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:              queue,
			ScheduleToStartTimeout: 20 * time.Second,
			StartToCloseTimeout:    2 * time.Minute,
			RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		var raw json.RawMessage
		err := workflow.ExecuteActivity(actx, activity, in).Get(ctx, &raw)
		var ae *temporal.ApplicationError
		switch {
		case err == nil:
			if result != nil && len(raw) > 0 {
				if err := json.Unmarshal(raw, result); err != nil {
					return outcome{Type: "error", Message: "decoding the result: " + err.Error()}
				}
			}
			return outcome{Type: "ok", Result: string(raw)}
		case errors.As(err, &ae):
			return outcome{Type: ae.Type(), Message: ae.Message()}
		}
		return outcome{Type: "error", Message: err.Error()}
	}
	var own activities.Lease
	if plan.Own != nil {
		o := call(plan.SharedQueue, "ResolveSecrets", *plan.Own, &own)
		out["own lease"] = o
		if o.Type != "ok" {
			return out, nil
		}
	}
	for _, c := range plan.Calls {
		var in any
		lease := own
		switch {
		case c.Resolve != nil:
			in = *c.Resolve
		case c.Preflight != nil:
			if c.OwnLease {
				c.Preflight.Lease = own
			}
			in, lease = *c.Preflight, c.Preflight.Lease
		case c.ListSchemas != nil:
			if c.OwnLease {
				c.ListSchemas.Lease = own
			}
			in, lease = *c.ListSchemas, c.ListSchemas.Lease
		case c.Extract != nil:
			if c.OwnLease {
				c.Extract.Lease = own
			}
			in, lease = *c.Extract, c.Extract.Lease
		case c.Finalize != nil:
			in = *c.Finalize
		case c.Publish != nil:
			if c.OwnLease {
				c.Publish.Lease = own
			}
			in, lease = *c.Publish, c.Publish.Lease
		case c.Lease != nil:
			if c.OwnLease {
				c.Lease.Lease = own
			}
			in, lease = *c.Lease, c.Lease.Lease
		}
		queue := plan.SharedQueue
		switch c.Queue {
		case queueLease:
			queue = lease.TaskQueue
		case queueControl:
			queue = activities.ControlQueue(lease.TaskQueue)
		}
		out[c.Label] = call(queue, c.Activity, in, nil)
	}
	return out, nil
}

// startAttacker runs the attacker's worker, on a queue of its own, against server.
func startAttacker(t *testing.T, c client.Client) string {
	t.Helper()
	queue := canary(t, "attacker")
	w := sdkworker.New(c, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(attackWorkflow, workflow.RegisterOptions{Name: attackWorkflowName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return queue
}

// attack starts the attacker's workflow with the test's client and waits for its outcomes. The
// run's id and run id are returned for the leak search.
func attack(t *testing.T, c client.Client, attackerQueue string, plan attackPlan) (outcomes map[string]outcome, id, runID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: canary(t, "attack"), TaskQueue: attackerQueue}, attackWorkflowName, plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, &outcomes); err != nil {
		t.Fatalf("the attacker's workflow failed: %v", err)
	}
	for _, label := range append([]string{"own lease"}, labels(plan)...) {
		if o, ok := outcomes[label]; ok {
			t.Logf("%-55s %s", label+":", o)
		}
	}
	return outcomes, run.GetID(), run.GetRunID()
}

func labels(plan attackPlan) []string {
	out := make([]string, len(plan.Calls))
	for i, c := range plan.Calls {
		out[i] = c.Label
	}
	return out
}

// expect checks one outcome's type and that its message says what it should.
func expect(t *testing.T, outcomes map[string]outcome, label, wantType string, msgHas ...string) {
	t.Helper()
	o, ok := outcomes[label]
	if !ok {
		t.Errorf("%s: no outcome", label)
		return
	}
	if o.Type != wantType {
		t.Errorf("%s: %s, want %s", label, o, wantType)
		return
	}
	for _, s := range msgHas {
		if !strings.Contains(o.Message+o.Result, s) {
			t.Errorf("%s: %q does not say %q", label, o.Message+o.Result, s)
		}
	}
}

// sourceConnection is the PostgreSQL source's connection fields, the password from variable.
func sourceConnection(src proctest.Source, variable string) map[string]string {
	return map[string]string{"host": src.Host, "port": src.Port, "database": src.DB, "username": src.User,
		"password": variable, "sslmode": "disable"}
}

// leaseOf reads a run's lease from its history: the result of its ResolveSecrets.
func leaseOf(t *testing.T, c client.Client, workflowID, runID string) activities.Lease {
	t.Helper()
	h := proctest.History(t, c, workflowID, runID)
	scheduled := map[int64]string{}
	for _, ev := range h.GetEvents() {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] == "ResolveSecrets" {
			var lease activities.Lease
			if err := json.Unmarshal(a.GetResult().GetPayloads()[0].GetData(), &lease); err != nil {
				t.Fatal(err)
			}
			return lease
		}
	}
	t.Fatalf("run %s has no ResolveSecrets result", workflowID)
	return activities.Lease{}
}

// directPolicy lets ADV_PG_PASSWORD go to the PostgreSQL source and ADV_HANG_PASSWORD to the
// hanging server, reads the custom store at storeHost, and adds outputs as it is given.
func directPolicy(src proctest.Source, hangPort int, storeHost, outputs string) string {
	return fmt.Sprintf(`version: 1
stores: [env, custom]
secrets:
  custom: ["%[3]s/*"]
env:
  allow: ["ADV_*"]
customStores:
  hosts: ["%[3]s"]
destinations:
  default: deny
  rules:
    - secrets: ["ADV_PG_PASSWORD"]
      hosts: ["%[1]s"]
    - secrets: ["ADV_HANG_PASSWORD"]
      hosts: ["127.0.0.1:%[2]d"]
%[4]s`, src.Host+":"+src.Port, hangPort, storeHost, outputs)
}

// TestActivitiesEnforceRulesWhenCalledDirectly (class 7): the attacker's workflow calls every
// activity of the agent by name with hostile input, and each rule holds inside the activity:
// destinations, store settings that are agent configuration, sensitive literals, the lease's
// connector and run, output prefixes, filters, and the s3 output's policy with the agent's own
// identity. Nothing reaches the attacker's listeners, no directory appears outside the output
// directory, the victim run keeps its lease, and no canary is anywhere.
func TestActivitiesEnforceRulesWhenCalledDirectly(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	src := proctest.PGSource(t)
	hang := newHangingServer(t)
	destTrap := proctest.NewTrap(t, "tcp", "127.0.0.1:0")
	s3Trap := proctest.NewTrap(t, "tcp", "127.0.0.1:0")
	storePassword := canary(t, "custom-pw")
	var storeRequests atomic.Int64
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storeRequests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"username": "reader", "password": storePassword})
	}))
	t.Cleanup(store.Close)
	storeHost := strings.TrimPrefix(store.URL, "http://")
	victimPassword := canary(t, "victim-pw")
	awsSecret := canary(t, "aws-secret")
	env := map[string]string{
		"ADV_PG_PASSWORD": src.Password, "ADV_HANG_PASSWORD": victimPassword,
		// The agent's own AWS identity, which an s3 output without credentials would sign with.
		"AWS_ACCESS_KEY_ID": "AKIAHOSTILETEST", "AWS_SECRET_ACCESS_KEY": awsSecret, "AWS_EC2_METADATA_DISABLED": "true",
	}
	// Agent a has no outputs.s3 in its policy; agent b lists another bucket and endpoint.
	a := startAgent(t, server, proctest.AgentOpts{Policy: directPolicy(src, hang.Port(), storeHost, ""), Env: env})
	b := startAgent(t, server, proctest.AgentOpts{Policy: directPolicy(src, hang.Port(), storeHost, `outputs:
  s3:
    buckets: ["catalog-allowed"]
    hosts: ["s3.allowed.internal:443"]
`), Env: env})
	attackerQueue := startAttacker(t, server.Client(t))

	// The victim: a normal run of agent a that keeps its lease while Preflight waits.
	victim, victimRun := a.Start(workflows.ExtractionWorkflowName, hangingInput(hang.Port()), 0)
	waitInPreflight(t, a, hang, victim, victimRun)
	victimLease := leaseOf(t, a.Client, victim, victimRun)
	if n := a.Metric(metricActiveLeases); n != 1 {
		t.Fatalf("%s = %v with the victim's lease, want 1", metricActiveLeases, n)
	}

	literal := canary(t, "hunter2")
	escapeTarget := filepath.Join(t.TempDir(), "adv-escape")
	escape := strings.Repeat("../", strings.Count(filepath.Clean(a.OutDir), "/")) + strings.TrimPrefix(escapeTarget, "/")
	pg := func(li activities.LeaseInput) activities.LeaseInput { li.Connector = "postgres"; return li }
	own := &activities.ResolveInput{Connector: "postgres", Connection: sourceConnection(src, "ADV_PG_PASSWORD"),
		SecretStore: &stores.Spec{Type: stores.TypeEnv}}
	toTrap := sourceConnection(src, "ADV_PG_PASSWORD")
	toTrap["host"], toTrap["port"] = "127.0.0.1", fmt.Sprint(destTrap.Port())
	withLiteral := sourceConnection(src, literal)
	staging := []attackCall{
		{Label: "stage: ExtractSchemas", Activity: "ExtractSchemas", Queue: queueLease, OwnLease: true,
			Extract: &activities.ExtractInput{LeaseInput: pg(activities.LeaseInput{}), Schemas: []activities.Schema{{Index: 0, Name: "sales"}}}},
		{Label: "stage: Finalize", Activity: "Finalize", Queue: queueLease, Finalize: &activities.FinalizeInput{Connector: "postgres"}},
	}
	releaseOwn := attackCall{Label: "ReleaseCredentials, own lease", Activity: "ReleaseCredentials", Queue: queueLease, OwnLease: true,
		Lease: &activities.LeaseInput{Connector: "postgres"}}
	toS3Trap := func(bucket string) s3.Config {
		return s3.Config{Bucket: bucket, Region: "us-east-1", Endpoint: fmt.Sprintf("http://127.0.0.1:%d", s3Trap.Port()), PathStyle: true}
	}

	calls := []attackCall{
		{Label: "ResolveSecrets to an unlisted host:port", Activity: "ResolveSecrets", Queue: queueShared,
			Resolve: &activities.ResolveInput{Connector: "postgres", Connection: toTrap, SecretStore: &stores.Spec{Type: stores.TypeEnv}}},
		{Label: "ResolveSecrets with version_path", Activity: "ResolveSecrets", Queue: queueShared,
			Resolve: &activities.ResolveInput{Connector: "postgres", Connection: sourceConnection(src, "password"), SecretStore: &stores.Spec{
				Type: stores.TypeCustom, Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q, "secret_name": "team/catalog", "version_path": "password"}`, store.URL))}}},
		{Label: "ResolveSecrets with a sensitive literal, no store", Activity: "ResolveSecrets", Queue: queueShared,
			Resolve: &activities.ResolveInput{Connector: "postgres", Connection: withLiteral}},
		{Label: "Preflight, own lease, connector mysql", Activity: "Preflight", Queue: queueLease, OwnLease: true,
			Preflight: &activities.PreflightInput{LeaseInput: activities.LeaseInput{Connector: "mysql"}}},
		{Label: "Preflight, output prefix out of the directory", Activity: "Preflight", Queue: queueLease, OwnLease: true,
			Preflight: &activities.PreflightInput{LeaseInput: pg(activities.LeaseInput{OutputPrefix: escape})}},
		{Label: "ExtractSchemas, prefix ../x", Activity: "ExtractSchemas", Queue: queueLease, OwnLease: true,
			Extract: &activities.ExtractInput{LeaseInput: pg(activities.LeaseInput{}), Schemas: []activities.Schema{{Index: 0, Name: "sales"}}, Prefix: "../x"}},
		{Label: "Finalize, prefix ../x", Activity: "Finalize", Queue: queueLease,
			Finalize: &activities.FinalizeInput{Connector: "postgres", Prefix: "../x"}},
		{Label: "ListSchemas, invalid filter", Activity: "ListSchemas", Queue: queueLease, OwnLease: true,
			ListSchemas: &activities.ListSchemasInput{LeaseInput: pg(activities.LeaseInput{}), Filters: connectors.Filters{IncludeSchemas: []string{""}}}},
	}
	calls = append(calls, staging...)
	calls = append(calls,
		attackCall{Label: "Publish, agent identity, no outputs.s3", Activity: "Publish", Queue: queueLease, OwnLease: true,
			Publish: &activities.PublishInput{LeaseInput: pg(activities.LeaseInput{}), S3: toS3Trap("catalog-allowed")}},
		attackCall{Label: "Preflight, victim's lease", Activity: "Preflight", Queue: queueLease,
			Preflight: &activities.PreflightInput{LeaseInput: pg(activities.LeaseInput{Lease: victimLease})}},
		attackCall{Label: "ReleaseCredentials, victim's lease", Activity: "ReleaseCredentials", Queue: queueLease,
			Lease: &activities.LeaseInput{Lease: victimLease, Connector: "postgres"}},
		attackCall{Label: "LeaseAlive, victim's lease", Activity: "LeaseAlive", Queue: queueControl,
			Lease: &activities.LeaseInput{Lease: victimLease, Connector: "postgres"}},
		releaseOwn,
	)
	got, attackA, attackARun := attack(t, a.Client, attackerQueue, attackPlan{SharedQueue: a.Queue, Own: own, Calls: calls})
	expect(t, got, "own lease", "ok")
	expect(t, got, "ResolveSecrets to an unlisted host:port", "PolicyDenied")
	expect(t, got, "ResolveSecrets with version_path", "InvalidInput", "version_path is agent configuration")
	expect(t, got, "ResolveSecrets with a sensitive literal, no store", "InvalidInput", `field "password"`)
	expect(t, got, "Preflight, own lease, connector mysql", "LeaseScopeMismatch")
	expect(t, got, "Preflight, output prefix out of the directory", "InvalidInput", "output.prefix")
	expect(t, got, "ExtractSchemas, prefix ../x", "InvalidInput", "output.prefix")
	expect(t, got, "Finalize, prefix ../x", "InvalidInput", "output.prefix")
	expect(t, got, "ListSchemas, invalid filter", "InvalidInput", "filters.includeSchemas[0]")
	expect(t, got, "stage: ExtractSchemas", "ok")
	expect(t, got, "stage: Finalize", "ok")
	expect(t, got, "Publish, agent identity, no outputs.s3", "PolicyDenied", "no outputs.s3")
	expect(t, got, "Preflight, victim's lease", "LeaseScopeMismatch")
	expect(t, got, "ReleaseCredentials, victim's lease", "LeaseScopeMismatch")
	expect(t, got, "LeaseAlive, victim's lease", "ok", "false")
	expect(t, got, "ReleaseCredentials, own lease", "ok")
	if n := storeRequests.Load(); n != 0 {
		t.Errorf("the custom store got %d request(s) for a configuration with version_path", n)
	}
	if _, err := os.Stat(escapeTarget); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Preflight created %s, outside the output directory (stat: %v)", escapeTarget, err)
	}
	// The victim still holds its lease: the attacker released only its own.
	if n := a.Metric(metricActiveLeases); n != 1 {
		t.Errorf("%s = %v after the attack, want 1 (the victim's)", metricActiveLeases, n)
	}
	if pendingActivity(t, a, victim, victimRun, "Preflight") == nil {
		t.Error("the victim run is no longer waiting in Preflight with its lease")
	}

	// Agent b's policy lists outputs.s3, for another bucket and another endpoint.
	got, attackB, attackBRun := attack(t, b.Client, attackerQueue, attackPlan{SharedQueue: b.Queue, Own: own, Calls: append(staging,
		attackCall{Label: "Publish, agent identity, bucket not listed", Activity: "Publish", Queue: queueLease, OwnLease: true,
			Publish: &activities.PublishInput{LeaseInput: pg(activities.LeaseInput{}), S3: toS3Trap("exfil-bucket")}},
		attackCall{Label: "Publish, agent identity, listed bucket, endpoint not listed", Activity: "Publish", Queue: queueLease, OwnLease: true,
			Publish: &activities.PublishInput{LeaseInput: pg(activities.LeaseInput{}), S3: toS3Trap("catalog-allowed")}},
		releaseOwn,
	)})
	expect(t, got, "own lease", "ok")
	expect(t, got, "stage: Finalize", "ok")
	expect(t, got, "Publish, agent identity, bucket not listed", "PolicyDenied", "outputs.s3.buckets")
	expect(t, got, "Publish, agent identity, listed bucket, endpoint not listed", "PolicyDenied", "outputs.s3.hosts")

	destTrap.AssertUntouched(t, "a destination the policy does not list")
	s3Trap.AssertUntouched(t, "an s3 endpoint the policy does not allow")
	if strings.Contains(hang.Received(), victimPassword) {
		t.Error("the victim's password reached the server that never answered")
	}
	// The attacker's inputs (its workflow's and its activities') are its own, and hold the
	// literal it typed; everything the agent answered is searched.
	extra := map[string]string{}
	for _, r := range [][2]string{{attackA, attackARun}, {attackB, attackBRun}} {
		extra["attacker history "+r[0]+" (its own inputs left out)"] = historyWithoutOwnInputs(t, a.Client, r[0], r[1])
		full := proctest.Haystack(t, proctest.History(t, a.Client, r[0], r[1]))
		for _, secret := range []string{src.Password, victimPassword, storePassword, awsSecret} {
			if strings.Contains(full, secret) {
				t.Errorf("a secret is in the attacker's history %s", r[0])
			}
		}
	}
	extra["agent b: worker log"] = proctest.ReadFile(t, b.Proc.Log)
	extra["agent b: audit"] = proctest.ReadFile(t, b.AuditFile)
	extra["agent b: output"] = proctest.OutputText(t, b.OutDir)
	extra["agent b: metrics"] = b.Metrics()
	a.AssertNowhere(extra, src.Password, victimPassword, storePassword, awsSecret, literal)
}

// execInSource runs sql as the administrator in the source's database.
func execInSource(t *testing.T, src proctest.Source, sql string) {
	t.Helper()
	_, u := testenv.PGAdmin(t)
	dbURL := *u
	dbURL.Path = "/" + src.DB
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%.60s: %v", sql, err)
	}
}

// sourcePolicy lets ADV_PG_PASSWORD go to the source and nowhere else.
func sourcePolicy(src proctest.Source) string {
	return fmt.Sprintf(`version: 1
stores: [env]
env:
  allow: ["ADV_*"]
destinations:
  default: deny
  rules:
    - secrets: ["ADV_PG_PASSWORD"]
      hosts: ["%s:%s"]
`, src.Host, src.Port)
}

// TestResultGuardWithholdsPasswordFromCatalog (class 7, leak guard): a schema whose name holds
// the password puts it into Preflight's result. The result guard withholds that result: the run
// fails with LeakPrevented, audited, and the password is nowhere.
func TestResultGuardWithholdsPasswordFromCatalog(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	src := proctest.PGSource(t)
	schema := pgx.Identifier{"x_" + src.Password}.Sanitize()
	execInSource(t, src, fmt.Sprintf("CREATE SCHEMA %s; GRANT USAGE ON SCHEMA %s TO %s", schema, schema, src.User))
	a := startAgent(t, server, proctest.AgentOpts{Policy: sourcePolicy(src), Env: map[string]string{"ADV_PG_PASSWORD": src.Password}})

	ae := a.ExtractFails(src.Input("ADV_PG_PASSWORD"))
	t.Logf("%s: %s", ae.Type(), ae.Message())
	if ae.Type() != "LeakPrevented" || !strings.Contains(ae.Message(), "Preflight") || !strings.Contains(ae.Message(), `"password"`) {
		t.Errorf("failure %s: %s; want LeakPrevented naming Preflight and the field", ae.Type(), ae.Message())
	}
	if !auditHas(t, a, "leak.prevented", "", "") {
		t.Error("no leak.prevented audit event")
	}
	a.AssertNowhere(nil, src.Password)
}

// TestOutputRedactsPasswordInViewDefinition (class 7, redaction): a view whose definition holds
// the password is extracted with [REDACTED] in its place; the run succeeds and counts the
// redaction in its summary, the audit and the metrics, and the password is nowhere.
func TestOutputRedactsPasswordInViewDefinition(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	src := proctest.PGSource(t)
	execInSource(t, src, fmt.Sprintf("CREATE VIEW sales.v AS SELECT '%s'::text AS conn", src.Password))
	a := startAgent(t, server, proctest.AgentOpts{Policy: sourcePolicy(src), Env: map[string]string{"ADV_PG_PASSWORD": src.Password}})

	sum := a.Succeeds(a.Start(workflows.ExtractionWorkflowName, src.Input("ADV_PG_PASSWORD"), 0))
	if sum.Redactions < 1 {
		t.Errorf("summary.redactions = %d, want at least 1", sum.Redactions)
	}
	if out := proctest.OutputText(t, a.OutDir); !strings.Contains(out, "[REDACTED]") {
		t.Error("the output has no [REDACTED] where the password was")
	}
	if !auditHas(t, a, "output.redacted", "", "") {
		t.Error("no output.redacted audit event")
	}
	if n := a.Metric(`secure_agent_output_redactions_total{connector="postgres"}`); n < 1 {
		t.Errorf("secure_agent_output_redactions_total = %v, want at least 1", n)
	}
	a.AssertNowhere(nil, src.Password)
}
