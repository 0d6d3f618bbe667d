// Package load puts one agent under load on a real in-process Temporal server (the server's
// temporaltest package): many concurrent ExtractionWorkflows on small SQLite sources whose paths
// come from a custom HTTP secret store on loopback. TestLoad200 is the acceptance test (all runs
// complete, leases and goroutines return to their baseline, one store call per distinct secret);
// BenchmarkLoad measures throughput and latency against a no-op workflow on the same server.
package load

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"
	_ "modernc.org/sqlite"

	"github.com/secure-agent/secure-agent/internal/devserver"
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// server is the one Temporal server of the package; each test and benchmark uses its own task
// queues on it.
var server *temporaltest.TestServer

func TestMain(m *testing.M) {
	// The dev server's dynamic configuration: without it, dispatch waits on the one history
	// shard's transfer-queue pacing (see devserver.StaticConfig).
	server = temporaltest.NewServer(temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(devserver.StaticConfig())))
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

// source is one small SQLite database, reached through one secret of the store.
type source struct {
	secret  string // the secret's name in the store
	path    string // the database file: the secret's value
	tables  int    // tables and views, counted independently of the connector
	columns int
}

// makeSource creates a SQLite database with i+1 tables (table j has j+2 columns) and one view,
// so that every source has its own counts, and counts them from sqlite_schema.
func makeSource(tb testing.TB, path string, i int) source {
	tb.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	for j := 0; j <= i; j++ {
		cols := []string{"id INTEGER PRIMARY KEY"}
		for k := 1; k < j+2; k++ {
			cols = append(cols, fmt.Sprintf("c%d TEXT", k))
		}
		if _, err := db.Exec(fmt.Sprintf("CREATE TABLE t%d (%s)", j, strings.Join(cols, ", "))); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := db.Exec(`CREATE VIEW v AS SELECT id FROM t0`); err != nil {
		tb.Fatal(err)
	}
	s := source{path: path}
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE type IN ('table','view') AND name NOT LIKE 'sqlite_%'`).Scan(&s.tables); err != nil {
		tb.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema m, pragma_table_info(m.name) WHERE m.type IN ('table','view') AND m.name NOT LIKE 'sqlite_%'`).Scan(&s.columns); err != nil {
		tb.Fatal(err)
	}
	return s
}

// secretStore is a custom HTTP secret store on loopback that counts the requests per secret.
type secretStore struct {
	url string

	mu      sync.Mutex
	values  map[string]string // secret name -> database path
	hits    map[string]int
	unknown int
}

func newSecretStore(tb testing.TB) *secretStore {
	s := &secretStore{values: map[string]string{}, hits: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *secretStore) add(name, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[name] = path
}

func (s *secretStore) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	path, ok := s.values[name]
	if ok {
		s.hits[name]++
	} else {
		s.unknown++
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Secret-Version", "v1")
	_ = json.NewEncoder(w).Encode(map[string]string{"db_path": path})
}

// counts returns a copy of the requests per secret name and the number of requests for
// unknown names.
func (s *secretStore) counts() (map[string]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.hits))
	for k, v := range s.hits {
		out[k] = v
	}
	return out, s.unknown
}

// input is the workflow input of an extraction of src through the custom store.
func (s *secretStore) input(secret string) workflows.Input {
	return workflows.Input{
		Connector:  "sqlite",
		Connection: map[string]workflows.FieldValue{"path": "db_path"},
		SecretStore: &stores.Spec{Type: stores.TypeCustom,
			Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q, "secret_name": %q}`, s.url, secret))},
	}
}

// env is one agent on the shared server with its sources and secret store.
type env struct {
	tb       testing.TB
	client   client.Client
	agent    *worker.Agent
	settings worker.Settings
	logs     *testenv.SyncBuffer
	store    *secretStore
	sources  []source
	warmup   source // reached through its own secret, so that the load starts with a cold cache
}

// newEnv creates nSources SQLite sources, a secret store serving their paths, and starts one
// agent whose settings come from SECURE_AGENT_* variables as in production: those the setup
// sets here (task queue, output, custom store hosts, SQLite dirs, cache TTL, audit file), and the defaults of
// worker/settings.go for everything else, unless the caller's environment overrides them.
func newEnv(tb testing.TB, nSources int) *env {
	tb.Helper()
	dir := tb.TempDir()
	e := &env{tb: tb, logs: &testenv.SyncBuffer{}, store: newSecretStore(tb)}
	for i := range nSources {
		s := makeSource(tb, filepath.Join(dir, fmt.Sprintf("source-%02d.db", i)), i)
		s.secret = fmt.Sprintf("source-%02d", i)
		e.store.add(s.secret, s.path)
		e.sources = append(e.sources, s)
	}
	e.warmup = makeSource(tb, filepath.Join(dir, "warmup.db"), 0)
	e.warmup.secret = "warmup"
	e.store.add(e.warmup.secret, e.warmup.path)

	tb.Setenv("SECURE_AGENT_TASK_QUEUE", fmt.Sprintf("load-%s-%d", strings.ReplaceAll(tb.Name(), "/", "-"), time.Now().UnixNano()))
	tb.Setenv("SECURE_AGENT_OUTPUT_DIR", filepath.Join(dir, "out"))
	tb.Setenv("SECURE_AGENT_CUSTOM_STORE_HOSTS", "127.0.0.1:*")
	tb.Setenv("SECURE_AGENT_SQLITE_DIRS", dir)
	tb.Setenv("SECURE_AGENT_SECRET_CACHE_TTL", "10m")
	tb.Setenv("SECURE_AGENT_AUDIT", filepath.Join(dir, "audit.jsonl"))
	settings, err := worker.LoadSettings()
	if err != nil {
		tb.Fatal(err)
	}
	e.settings = settings
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := worker.DialWith(context.Background(), settings, client.Options{HostPort: server.GetFrontendHostPort(), Namespace: server.GetDefaultNamespace()}, logger)
	if err != nil {
		tb.Fatal(err)
	}
	agent, err := worker.New(c, settings, logger)
	if err != nil {
		c.Close()
		tb.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		c.Close()
		tb.Fatal(err)
	}
	e.client, e.agent = c, agent
	tb.Cleanup(e.close)
	return e
}

func (e *env) close() {
	e.agent.Stop()
	e.client.Close()
}

// result is one finished workflow.
type result struct {
	id, runID string
	src       source
	summary   workflows.Summary
	err       error
	latency   time.Duration // from the ExecuteWorkflow call to Get returning
}

// runOne starts one workflow and waits for it.
func runOne(ctx context.Context, c client.Client, id, taskQueue, workflowType string, input any, out any) (runID string, latency time.Duration, err error) {
	start := time.Now()
	opts := client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue, WorkflowExecutionTimeout: 5 * time.Minute}
	var run client.WorkflowRun
	if input == nil {
		run, err = c.ExecuteWorkflow(ctx, opts, workflowType)
	} else {
		run, err = c.ExecuteWorkflow(ctx, opts, workflowType, input)
	}
	if err != nil {
		return "", time.Since(start), fmt.Errorf("starting %s: %w", id, err)
	}
	err = run.Get(ctx, out)
	return run.GetRunID(), time.Since(start), err
}

// extract runs one extraction of src and waits for it. The workflow id is name after the
// agent's task queue, so that ids stay unique on the shared server.
func (e *env) extract(ctx context.Context, name string, src source) result {
	r := result{id: e.settings.TaskQueue + "-" + name, src: src}
	r.runID, r.latency, r.err = runOne(ctx, e.client, r.id, e.settings.TaskQueue, workflows.ExtractionWorkflowName, e.store.input(src.secret), &r.summary)
	return r
}

// extractMany starts n extractions at once, run i on source i mod len(sources), and waits for
// all of them. It returns the results in run order and the wall time of the batch.
func (e *env) extractMany(ctx context.Context, prefix string, n int) ([]result, time.Duration) {
	results := make([]result, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.extract(ctx, fmt.Sprintf("%s-%03d", prefix, i), e.sources[i%len(e.sources)])
		}()
	}
	wg.Wait()
	return results, time.Since(start)
}

// check reports what is wrong with a finished extraction: its error, counts that differ from
// its source's, or output that is not where the summary says.
func (e *env) check(r result) error {
	if r.err != nil {
		return fmt.Errorf("%s failed after %s: %w", r.id, r.latency.Round(time.Millisecond), r.err)
	}
	s := r.summary
	if s.Counts["tables"] != int64(r.src.tables) || s.Counts["columns"] != int64(r.src.columns) {
		return fmt.Errorf("%s (%s): counts %v, want %d tables and %d columns", r.id, r.src.secret, s.Counts, r.src.tables, r.src.columns)
	}
	want := filepath.Join(e.settings.OutputDir, "sqlite", r.id, r.runID)
	if s.OutputDir != want || s.Manifest != filepath.Join(want, output.ManifestName) {
		return fmt.Errorf("%s: output dir %s, manifest %s, want them in %s", r.id, s.OutputDir, s.Manifest, want)
	}
	data, err := os.ReadFile(s.Manifest)
	if err != nil {
		return fmt.Errorf("%s: %w", r.id, err)
	}
	var m output.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s: manifest: %w", r.id, err)
	}
	if m.WorkflowID != r.id || m.RunID != r.runID || m.Counts["tables"] != int64(r.src.tables) || m.Counts["columns"] != int64(r.src.columns) {
		return fmt.Errorf("%s: manifest says workflow %s run %s counts %v", r.id, m.WorkflowID, m.RunID, m.Counts)
	}
	if len(m.Files) == 0 {
		return fmt.Errorf("%s: the manifest lists no file", r.id)
	}
	for _, f := range m.Files {
		st, err := os.Stat(filepath.Join(s.OutputDir, f.Name))
		if err != nil {
			return fmt.Errorf("%s: %w", r.id, err)
		}
		if st.Size() != f.Bytes {
			return fmt.Errorf("%s: %s has %d bytes, the manifest says %d", r.id, f.Name, st.Size(), f.Bytes)
		}
	}
	return nil
}

// waitFor polls cond every 50ms until it holds or timeout passes, and reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dumpGoroutines writes every goroutine's stack, grouped, to stderr.
func dumpGoroutines() {
	_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
}

// goroutines returns the current number of goroutines after a GC (which lets finalizers and
// idle timers run).
func goroutines() int {
	runtime.GC()
	return runtime.NumGoroutine()
}

// agentGoroutines counts, after a GC, the goroutines that are not the in-process Temporal
// server's (none of their frames is in go.temporal.io/server): the agent's, the SDK's and the
// test's. The server's own goroutines come and go with its timers and shards and would hide a
// small leak of the agent's in a process-wide count.
func agentGoroutines() int {
	runtime.GC()
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.HasPrefix(g, "goroutine ") && !strings.Contains(g, "go.temporal.io/server/") {
			count++
		}
	}
	return count
}

// percentile returns the p-th percentile (0 < p <= 100, nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
