package workflows_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	sdkpb "go.temporal.io/api/sdk/v1"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	_ "modernc.org/sqlite"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// fixture is a real agent's activities over a real SQLite file, a real env store and a real
// lease store whose clock the test controls. Only time and the failures of a local HTTP store
// are staged; the code under test is never replaced.
type fixture struct {
	t      *testing.T
	dbPath string
	out    string
	leases *activities.LeaseStore
	acts   *activities.Activities

	mu  sync.Mutex
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dbPath: filepath.Join(dir, "sales.db"), out: filepath.Join(dir, "out"), now: time.Now()}
	makeSQLite(t, f.dbPath)
	t.Setenv("SA_TEST_DB_PATH", f.dbPath)
	opener, err := stores.NewOpener(stores.Options{EnvAllow: []string{"SA_TEST_*"}, CustomStoreHosts: []string{"127.0.0.1:*"}})
	if err != nil {
		t.Fatal(err)
	}
	f.leases = activities.NewLeaseStore(time.Hour, 0, f.clock)
	dirs, err := worker.ResolveSQLiteDirs([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	f.acts = &activities.Activities{
		Stores: opener, Resolver: secrets.NewResolver(secrets.ResolverOptions{}), Leases: f.leases,
		LeaseQueue: "lease-queue", OpenSource: worker.OpenSource, OutputRoot: f.out, SQLiteDirs: dirs,
	}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fixture) env() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(30 * time.Second)
	worker.Register(env, env, env, f.acts)
	return env
}

func makeSQLite(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT)`,
		`CREATE TABLE "order lines" (order_id INTEGER, line INTEGER, amount NUMERIC(10,2) DEFAULT 0, PRIMARY KEY (order_id, line))`,
		`CREATE VIEW big_orders AS SELECT * FROM "order lines" WHERE amount > 100`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

func envInput() workflows.Input {
	return workflows.Input{
		Connector:   "sqlite",
		Connection:  map[string]workflows.FieldValue{"path": "SA_TEST_DB_PATH"},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
	}
}

// activityCalls records the activities a run executed, in order.
type activityCalls struct {
	mu    sync.Mutex
	names []string
}

func (c *activityCalls) listen(env *testsuite.TestWorkflowEnvironment) {
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.names = append(c.names, info.ActivityType.Name)
	})
}

func (c *activityCalls) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, got := range c.names {
		if got == name {
			n++
		}
	}
	return n
}

func TestExtractionSucceeds(t *testing.T) {
	f := newFixture(t)
	env := f.env()
	var calls activityCalls
	calls.listen(env)
	env.ExecuteWorkflow(workflows.ExtractionWorkflow, envInput())
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var sum workflows.Summary
	if err := env.GetWorkflowResult(&sum); err != nil {
		t.Fatal(err)
	}
	if sum.Counts["tables"] != 3 || sum.Counts["columns"] != 9 {
		t.Errorf("counts = %v, want 3 tables and 9 columns", sum.Counts)
	}
	if sum.Schemas != 1 || sum.Connector != "sqlite" {
		t.Errorf("summary = %+v", sum)
	}
	for _, phase := range []string{"resolve", "preflight", "extract", "finalize", "total"} {
		if sum.Durations[phase] == "" {
			t.Errorf("no duration for %s", phase)
		}
	}
	if _, err := os.Stat(sum.Manifest); err != nil {
		t.Errorf("manifest: %v", err)
	}
	if !strings.HasPrefix(sum.OutputDir, f.out) {
		t.Errorf("output %q is not under %q", sum.OutputDir, f.out)
	}
	// Four steps, four round trips: Preflight lists the schemas and Finalize releases the lease.
	if want := []string{"ResolveSecrets", "Preflight", "ExtractSchemas", "Finalize"}; !slices.Equal(calls.names, want) {
		t.Errorf("activities %v, want %v", calls.names, want)
	}
	if f.leases.Active() != 0 {
		t.Errorf("%d leases left after success", f.leases.Active())
	}
	res, err := env.QueryWorkflow(workflows.QueryProgress)
	if err != nil {
		t.Fatal(err)
	}
	var p workflows.Progress
	if err := res.Get(&p); err != nil {
		t.Fatal(err)
	}
	if p.Phase != workflows.PhaseDone || p.SchemasDone != 1 || p.SchemasTotal != 1 || p.Counts["tables"] != 3 {
		t.Errorf("progress = %+v", p)
	}
	// Nothing of the secret value in the result.
	js, _ := json.Marshal(sum)
	if strings.Contains(string(js), f.dbPath) {
		t.Errorf("summary contains the secret path: %s", js)
	}
}

func TestInvalidInputFailsAtOnceWithEveryProblem(t *testing.T) {
	f := newFixture(t)
	env := f.env()
	var calls activityCalls
	calls.listen(env)
	in := workflows.Input{
		Connector:   "sqlite",
		Connection:  map[string]workflows.FieldValue{"pth": "x"},
		SecretStore: &stores.Spec{Type: "hsm"},
		Output:      workflows.OutputSpec{Prefix: "../escape"},
		Options:     workflows.RunOptions{MaxConcurrentBatches: 1000, ResolveTimeoutSeconds: 5},
	}
	env.ExecuteWorkflow(workflows.ExtractionWorkflow, in)
	err := env.GetWorkflowError()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != "InvalidInput" || !ae.NonRetryable() {
		t.Fatalf("err = %v, want a non-retryable InvalidInput", err)
	}
	for _, want := range []string{"connection.pth is not a field", "connection.path is required", `type "hsm" is not supported`, "output.prefix", "maxConcurrentBatches", "resolveTimeoutSeconds must be between 10 and 3600"} {
		if !strings.Contains(ae.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, ae)
		}
	}
	if len(calls.names) != 0 {
		t.Errorf("activities ran for invalid input: %v", calls.names)
	}
}

// flakyStore is a custom HTTP secret store on loopback that fails the first `failures`
// requests with the given status, then serves the secret.
func flakyStore(t *testing.T, status, failures int, secret map[string]string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= int64(failures) {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(secret)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func customInput(url string) workflows.Input {
	return workflows.Input{
		Connector:   "sqlite",
		Connection:  map[string]workflows.FieldValue{"path": "db_path"},
		SecretStore: &stores.Spec{Type: stores.TypeCustom, Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q, "secret_name": "sales"}`, url))},
	}
}

func TestTransientStoreErrorIsRetriedThenSucceeds(t *testing.T) {
	f := newFixture(t)
	srv, requests := flakyStore(t, http.StatusServiceUnavailable, 2, map[string]string{"db_path": f.dbPath})
	env := f.env()
	var calls activityCalls
	calls.listen(env)
	env.ExecuteWorkflow(workflows.ExtractionWorkflow, customInput(srv.URL))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if got := calls.count("ResolveSecrets"); got != 3 {
		t.Errorf("ResolveSecrets attempts = %d, want 3 (two 503s, then success)", got)
	}
	if requests.Load() != 3 {
		t.Errorf("store requests = %d, want 3", requests.Load())
	}
}

func TestPermanentStoreErrorIsNotRetried(t *testing.T) {
	f := newFixture(t)
	srv, requests := flakyStore(t, http.StatusNotFound, 100, nil)
	env := f.env()
	var calls activityCalls
	calls.listen(env)
	env.ExecuteWorkflow(workflows.ExtractionWorkflow, customInput(srv.URL))
	err := env.GetWorkflowError()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != string(secrets.SecretNotFound) || !ae.NonRetryable() {
		t.Fatalf("err = %v, want a non-retryable SecretNotFound", err)
	}
	if calls.count("ResolveSecrets") != 1 || requests.Load() != 1 {
		t.Errorf("ResolveSecrets attempts = %d, store requests = %d; want 1 and 1", calls.count("ResolveSecrets"), requests.Load())
	}
	if calls.count("Preflight") != 0 || calls.count("ReleaseCredentials") != 0 {
		t.Errorf("activities after a failed resolution: %v", calls.names)
	}
}

func TestLostLeaseIsResolvedAgainOnce(t *testing.T) {
	f := newFixture(t)
	env := f.env()
	var calls activityCalls
	calls.listen(env)
	expired := false
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		if info.ActivityType.Name == "ResolveSecrets" && !expired {
			expired = true
			f.advance(2 * time.Hour) // the first lease expires before Preflight uses it
		}
	})
	env.ExecuteWorkflow(workflows.ExtractionWorkflow, envInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var sum workflows.Summary
	if err := env.GetWorkflowResult(&sum); err != nil {
		t.Fatal(err)
	}
	if sum.LeaseRenewals != 1 || calls.count("ResolveSecrets") != 2 {
		t.Errorf("lease renewals = %d, ResolveSecrets = %d; want 1 and 2", sum.LeaseRenewals, calls.count("ResolveSecrets"))
	}
	if sum.Counts["tables"] != 3 {
		t.Errorf("counts after renewal = %v", sum.Counts)
	}
	if f.leases.Active() != 0 {
		t.Errorf("%d leases left", f.leases.Active())
	}
}

func TestLeaseLostTooOftenFails(t *testing.T) {
	f := newFixture(t)
	env := f.env()
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		if info.ActivityType.Name == "ResolveSecrets" {
			f.advance(2 * time.Hour) // every lease expires at once
		}
	})
	env.ExecuteWorkflow(workflows.ExtractionWorkflow, envInput())
	var ae *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != string(secrets.LeaseNotFound) || !strings.Contains(ae.Error(), "lost 4 times") {
		t.Fatalf("err = %v, want LeaseNotFound after %d renewals", err, workflows.MaxLeaseRenewals)
	}
}

func TestCancellationReleasesCredentials(t *testing.T) {
	f := newFixture(t)
	env := f.env()
	var calls activityCalls
	calls.listen(env)
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		calls.mu.Lock()
		calls.names = append(calls.names, info.ActivityType.Name)
		calls.mu.Unlock()
		if info.ActivityType.Name == "Preflight" {
			env.CancelWorkflow()
		}
	})
	env.ExecuteWorkflow(workflows.ExtractionWorkflow, envInput())
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("err = %v, want cancellation", err)
	}
	if calls.count("ReleaseCredentials") != 1 {
		t.Errorf("ReleaseCredentials ran %d times after cancellation, want 1 (activities: %v)", calls.count("ReleaseCredentials"), calls.names)
	}
	if f.leases.Active() != 0 {
		t.Errorf("%d leases left after cancellation", f.leases.Active())
	}
}

func TestTestConnectionWorkflow(t *testing.T) {
	f := newFixture(t)
	env := f.env()
	env.ExecuteWorkflow(workflows.TestConnectionWorkflow, envInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var rep workflows.ConnectionReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Connector != "sqlite" || rep.ServerVersion == "" || len(rep.Fields) != 1 || rep.Fields[0] != "path" {
		t.Errorf("report = %+v", rep)
	}
	if f.leases.Active() != 0 {
		t.Errorf("lease not released")
	}
	if entries, _ := os.ReadDir(f.out); len(entries) != 0 {
		t.Errorf("a connection test wrote output: %v", entries)
	}
	// The Web UI's view: the current details say where the check is (done), nothing else.
	v, err := env.QueryWorkflow("__temporal_workflow_metadata")
	if err != nil {
		t.Fatal(err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatal(err)
	}
	if got := md.GetCurrentDetails(); got != "**done** · connection check" {
		t.Errorf("current details %q", got)
	}
}

// runWith runs an extraction with workflow id id to its end and returns its summary and the
// activities it ran; onPreflight, when set, runs when Preflight has completed.
func (f *fixture) runWith(id string, in workflows.Input, onPreflight func()) (workflows.Summary, []string) {
	f.t.Helper()
	env := f.env()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	var calls activityCalls
	calls.listen(env)
	if onPreflight != nil {
		env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, err error) {
			if info.ActivityType.Name == "Preflight" && err == nil {
				onPreflight()
			}
		})
	}
	env.ExecuteWorkflow(workflows.ExtractionWorkflow, in)
	if err := env.GetWorkflowError(); err != nil {
		f.t.Fatal(err)
	}
	var sum workflows.Summary
	if err := env.GetWorkflowResult(&sum); err != nil {
		f.t.Fatal(err)
	}
	return sum, calls.names
}

// TestIncrementalRunWhosePreviousOutputVanishes: an incremental run finds every schema
// unchanged, and the previous run's output is deleted before Finalize copies it. Finalize says
// so, the workflow extracts the schemas it meant to reuse, finalizes again, and the output
// equals a full run's.
func TestIncrementalRunWhosePreviousOutputVanishes(t *testing.T) {
	f := newFixture(t)
	in := envInput()
	in.Options.Incremental = "auto"
	run := func(id string, onPreflight func()) (workflows.Summary, []string) {
		return f.runWith(id, in, onPreflight)
	}
	base, _ := run("base", nil)
	reused, calls := run("reused", nil)
	if reused.Changes == nil || reused.Changes.ReusedSchemas != 1 || slices.Contains(calls, "ExtractSchemas") {
		t.Fatalf("unchanged run: changes %+v, activities %v", reused.Changes, calls)
	}
	lost, calls := run("lost", func() {
		if err := os.RemoveAll(reused.OutputDir); err != nil {
			t.Error(err)
		}
	})
	if want := []string{"ResolveSecrets", "Preflight", "Finalize", "ExtractSchemas", "Finalize"}; !slices.Equal(calls, want) {
		t.Errorf("activities %v, want %v", calls, want)
	}
	if lost.Changes != nil {
		t.Errorf("changes reported against a run that is gone: %+v", lost.Changes)
	}
	for _, kind := range []string{"tables", "columns", "lineage"} {
		a, err := os.ReadFile(filepath.Join(base.OutputDir, kind+".jsonl.gz"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(lost.OutputDir, kind+".jsonl.gz"))
		if err != nil || !slices.Equal(a, b) {
			t.Errorf("%s differs from the first run's (%v)", kind, err)
		}
	}
}

// TestIncrementalSmallChangeIsExtractedInPreflight: when an incremental run's only change is one
// small schema, Preflight extracts it on its own connection and no batch runs; the output equals
// a full run's.
func TestIncrementalSmallChangeIsExtractedInPreflight(t *testing.T) {
	f := newFixture(t)
	in := envInput()
	in.Options.Incremental = "auto"
	run := func(id string, in workflows.Input) (workflows.Summary, []string) { return f.runWith(id, in, nil) }
	run("base", in)
	db, err := sql.Open("sqlite", f.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`ALTER TABLE customers ADD COLUMN note TEXT`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	inc, calls := run("changed", in)
	if want := []string{"ResolveSecrets", "Preflight", "Finalize"}; !slices.Equal(calls, want) {
		t.Errorf("activities %v, want %v", calls, want)
	}
	if inc.Changes == nil || inc.Changes.ExtractedSchemas != 1 || inc.Counts["columns"] != 10 {
		t.Errorf("changes %+v, counts %v", inc.Changes, inc.Counts)
	}
	full, _ := run("full", envInput())
	for _, kind := range []string{"tables", "columns", "keys", "lineage", "databases"} {
		a, errA := os.ReadFile(filepath.Join(inc.OutputDir, kind+".jsonl.gz"))
		b, errB := os.ReadFile(filepath.Join(full.OutputDir, kind+".jsonl.gz"))
		if errA != nil || errB != nil || !slices.Equal(a, b) {
			t.Errorf("%s differs from a full run's (%v, %v)", kind, errA, errB)
		}
	}
}
