// Package faults proves the agent's durability with real processes: the production binary
// (built once, with -tags noserver) runs as `secure-agent worker` processes, the Temporal server is
// the real `temporal server start-dev` in a process of its own, and faults are what operators see
// in production: a worker killed with SIGKILL (no graceful stop, no chance to clean up), and a
// Temporal server stopped and started again under a running worker.
//
// Each test fails if the feature it exercises broke: a run that never completes, lost or
// duplicated entities (compared line for line, by digest, with a clean run of the same source),
// partial files left in a run directory, or a secret in a worker's logs.
//
// The tests need the temporal CLI and PostgreSQL that scripts/services provides; without them they
// skip, or fail when SECURE_AGENT_REQUIRE_INTEGRATION=1.
package faults

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// Sizes of the source database: enough small batches (SchemasPerBatch 2) that a run is still
// extracting when a fault is injected.
const (
	nSchemas = 24
	nTables  = 15
	// waitFor bounds every wait on a run; generous, because after a SIGKILL the run waits for the
	// extraction activity's heartbeat timeout and the lease queue's schedule-to-start timeout.
	waitFor = 4 * time.Minute
	// secretVar is the environment variable of the worker that holds the source's password.
	secretVar = "FAULTS_PG_PASSWORD"
)

// binary is the production binary, built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(proctest.Main(m, filepath.Join("..", ".."), &binary))
}

// agentConfig is what worker processes of one test share.
type agentConfig struct {
	server    *proctest.DevServer
	taskQueue string
	outputDir string
	password  string // the value of secretVar in the worker's environment
	logDir    string
}

func newAgentConfig(t *testing.T, s *proctest.DevServer, password string) agentConfig {
	t.Helper()
	return agentConfig{
		server: s, taskQueue: fmt.Sprintf("faults-%s-%s", t.Name(), randomHex(t)[:8]),
		outputDir: filepath.Join(t.TempDir(), "out"), password: password, logDir: t.TempDir(),
	}
}

// startWorker starts a `secure-agent worker` process. Cleanup kills it if it is still running,
// first logging the tail of its log when the test failed.
func startWorker(t *testing.T, cfg agentConfig, name string) *proctest.Proc {
	t.Helper()
	cmd := exec.Command(binary, "worker")
	cmd.Env = append(proctest.MinimalEnv(cfg.logDir),
		"TEMPORAL_ADDRESS="+cfg.server.Addr(),
		"TEMPORAL_NAMESPACE=default",
		"SECURE_AGENT_TASK_QUEUE="+cfg.taskQueue,
		"SECURE_AGENT_OUTPUT_DIR="+cfg.outputDir,
		"SECURE_AGENT_ENV_ALLOW="+secretVar,
		"SECURE_AGENT_LOG_LEVEL=debug",
		"SECURE_AGENT_AUDIT=stderr",
		secretVar+"="+cfg.password,
	)
	p := proctest.Start(t, "worker "+name, cmd, filepath.Join(cfg.logDir, "worker-"+name+".log"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (pid %d) log (tail):\n%s", p.Name, p.Pid(), p.Tail(30))
		}
		if p.Alive() {
			p.Kill(t)
		}
	})
	// The worker logs nothing until it polls; give it a moment to fail on bad settings.
	select {
	case <-p.Exited():
		t.Fatalf("%s exited at start:\n%s", p.Name, p.Tail(30))
	case <-time.After(500 * time.Millisecond):
	}
	return p
}

// assertNoSecretInLogs fails if a worker's log holds the password.
func assertNoSecretInLogs(t *testing.T, password string, workers ...*proctest.Proc) {
	t.Helper()
	for _, w := range workers {
		b, err := os.ReadFile(w.Log)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Errorf("%s wrote no log at all: the check for secrets in it proves nothing", w.Name)
		}
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s's log contains the source password", w.Name)
		}
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// source is a PostgreSQL database made for one test.
type source struct {
	host, port, db, user, password string
}

// manySchemas creates a database of nSchemas schemas of nTables tables each and a read-only
// login whose password is a canary: it must never show up in logs or output.
func manySchemas(t *testing.T) source {
	t.Helper()
	admin, u := testenv.PGAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	suffix := randomHex(t)[:8]
	src := source{
		host: u.Hostname(), port: u.Port(),
		db: "faults_" + suffix, user: "faults_reader_" + suffix, password: "canary-" + randomHex(t),
	}
	mustExec(ctx, t, admin, fmt.Sprintf(`CREATE DATABASE %s`, src.db))
	mustExec(ctx, t, admin, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, src.user, src.password))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, src.db))
		_, _ = admin.Exec(ctx, fmt.Sprintf(`DROP ROLE IF EXISTS %s`, src.user))
	})
	dbURL := *u
	dbURL.Path = "/" + src.db
	conn, err := pgx.Connect(ctx, dbURL.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var b strings.Builder
	for s := range nSchemas {
		fmt.Fprintf(&b, "CREATE SCHEMA s%02d; GRANT USAGE ON SCHEMA s%02d TO %s;\n", s, s, src.user)
		for tb := range nTables {
			fmt.Fprintf(&b, "CREATE TABLE s%02d.t%03d (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2) DEFAULT 0, created timestamptz, parent bigint REFERENCES s%02d.t%03d(id)) WITH (autovacuum_enabled = false);\n", s, tb, s, tb)
			fmt.Fprintf(&b, "CREATE INDEX ON s%02d.t%03d (name, created);\nCOMMENT ON TABLE s%02d.t%03d IS 'table %d of schema %d';\n", s, tb, s, tb, tb, s)
		}
	}
	mustExec(ctx, t, conn, b.String())
	// Settle the catalog before anyone reads it: statistics and sizes (row estimates, relpages,
	// the database's size) must not change between the runs a test compares, so autovacuum is
	// off for these tables and one VACUUM ANALYZE sets what it would have set later.
	mustExec(ctx, t, conn, "VACUUM ANALYZE")
	mustExec(ctx, t, conn, "CHECKPOINT")
	return src
}

func mustExec(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%.80s...: %v", sql, err)
	}
}

// input is the extraction of src, its password read from the worker's secretVar, in many small
// batches one at a time, so that a run is long enough to be interrupted.
func (src source) input() workflows.Input {
	return workflows.Input{
		Connector: "postgres",
		Connection: map[string]workflows.FieldValue{
			"host": workflows.FieldValue(src.host), "port": workflows.FieldValue(src.port),
			"database": workflows.FieldValue(src.db), "username": workflows.FieldValue(src.user),
			"password": secretVar, "sslmode": "disable",
		},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
		Options:     workflows.RunOptions{SchemasPerBatch: 2, MaxConcurrentBatches: 1},
	}
}

// startRun starts an extraction on the agents' task queue and returns its workflow id and run id.
func startRun(t *testing.T, c client.Client, cfg agentConfig, name string, in workflows.Input) (id, runID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        fmt.Sprintf("%s-%s-%s", t.Name(), name, randomHex(t)[:8]),
		TaskQueue: cfg.taskQueue, WorkflowExecutionTimeout: 10 * time.Minute,
	}, workflows.ExtractionWorkflowName, in)
	if err != nil {
		t.Fatal(err)
	}
	return run.GetID(), run.GetRunID()
}

// progress queries a run's progress.
func progress(c client.Client, id string) (workflows.Progress, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var p workflows.Progress
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
	if err == nil {
		err = v.Get(&p)
	}
	return p, err
}

// midExtraction reports whether a run has done at least n schemas and not all of them.
func midExtraction(p workflows.Progress, n int) bool {
	return p.SchemasDone >= n && p.SchemasDone < p.SchemasTotal
}

// waitSchemasDone waits until run id has at least n schemas done; it fails if the run had done
// them all by then (too late to interrupt anything).
func waitSchemasDone(t *testing.T, c client.Client, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	var last error
	for time.Now().Before(deadline) {
		p, err := progress(c, id)
		if err == nil && p.SchemasDone >= n {
			if p.SchemasDone >= p.SchemasTotal {
				t.Fatalf("run %s finished (%d schemas) before it could be interrupted", id, p.SchemasTotal)
			}
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("run %s did not get %d schemas done within %s (last query error: %v)", id, n, waitFor, last)
}

// result waits for a run's result. Errors that are not the workflow's own (the server being away
// for a moment, a long poll cut) are retried until the deadline.
func result(t *testing.T, c client.Client, id, runID string) workflows.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for {
		var sum workflows.Summary
		err := c.GetWorkflow(ctx, id, runID).Get(ctx, &sum)
		if err == nil {
			return sum
		}
		var wee *temporal.WorkflowExecutionError
		if errors.As(err, &wee) {
			t.Fatalf("run %s failed: %v", id, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("run %s did not complete within %s: %v (see `temporal workflow show -w %s`)", id, waitFor, err, id)
		}
		time.Sleep(time.Second)
	}
}

// runOutput is what a finished run wrote, by entity kind.
type runOutput struct {
	digests map[string]string // sha256 of the sorted, decompressed lines
	lines   map[string]int64
}

// readOutput reads every <kind>.jsonl.gz of a run and checks that the run directory holds exactly
// the manifest and the files it lists: no parts/, no temp files, nothing else.
func readOutput(t *testing.T, sum workflows.Summary) runOutput {
	t.Helper()
	m, err := output.ReadManifest(sum.OutputDir)
	if err != nil {
		t.Fatalf("manifest of %s: %v", sum.OutputDir, err)
	}
	want := []string{output.ManifestName}
	for _, f := range m.Files {
		want = append(want, f.Name)
		if f.Name != f.Entity+output.FileSuffix {
			t.Errorf("manifest lists %q for %q", f.Name, f.Entity)
		}
	}
	var got []string
	err = filepath.WalkDir(sum.OutputDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == sum.OutputDir {
			return err
		}
		rel, _ := filepath.Rel(sum.OutputDir, path)
		got = append(got, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("run directory %s holds %v, want exactly %v (leftover parts or temp files?)", sum.OutputDir, got, want)
	}

	out := runOutput{digests: map[string]string{}, lines: map[string]int64{}}
	for _, f := range m.Files {
		lines := sortedLines(t, filepath.Join(sum.OutputDir, f.Name))
		h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
		out.digests[f.Entity] = hex.EncodeToString(h[:])
		out.lines[f.Entity] = int64(len(lines))
		if f.Count != int64(len(lines)) || m.Counts[f.Entity] != f.Count {
			t.Errorf("%s: manifest says %d (counts %d), the file has %d lines", f.Name, f.Count, m.Counts[f.Entity], len(lines))
		}
	}
	if !mapsEqual(m.Counts, sum.Counts) {
		t.Errorf("manifest counts %v, summary counts %v", m.Counts, sum.Counts)
	}
	return out
}

func mapsEqual[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// sortedLines decompresses a gzip JSON Lines file and returns its non-empty lines, sorted.
func sortedLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var lines []string
	for l := range strings.SplitSeq(string(plain), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

// assertSameOutput compares a faulted run's output with a clean run's: same kinds, same counts,
// the same digest of the sorted lines for every kind (nothing lost, nothing duplicated).
func assertSameOutput(t *testing.T, name string, got workflows.Summary, clean workflows.Summary) {
	t.Helper()
	a, b := readOutput(t, got), readOutput(t, clean)
	if !mapsEqual(got.Counts, clean.Counts) {
		t.Errorf("%s: counts %v, clean run %v", name, got.Counts, clean.Counts)
	}
	if !mapsEqual(a.lines, b.lines) {
		t.Errorf("%s: lines per kind %v, clean run %v", name, a.lines, b.lines)
	}
	for kind, d := range b.digests {
		if a.digests[kind] != d {
			t.Errorf("%s: %s differ from the clean run's after sorting (%d vs %d lines)", name, kind, a.lines[kind], b.lines[kind])
		}
	}
	if secretIn(t, got.OutputDir, clean.OutputDir) {
		t.Errorf("%s: the output holds the source password", name)
	}
}

// secretIn reports whether any decompressed output file in dirs holds the canary prefix.
func secretIn(t *testing.T, dirs ...string) bool {
	t.Helper()
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			var text string
			if strings.HasSuffix(e.Name(), output.FileSuffix) {
				text = strings.Join(sortedLines(t, p), "\n")
			} else if b, err := os.ReadFile(p); err == nil {
				text = string(b)
			}
			if strings.Contains(text, "canary-") {
				return true
			}
		}
	}
	return false
}

// assertExpectedCounts checks a clean run against the catalog as created: every table, and every
// schema (plus public).
func assertExpectedCounts(t *testing.T, sum workflows.Summary) {
	t.Helper()
	if sum.Counts["tables"] != nSchemas*nTables || sum.Counts["schemas"] != nSchemas+1 {
		t.Fatalf("clean run counts = %v, want %d tables and %d schemas", sum.Counts, nSchemas*nTables, nSchemas+1)
	}
}

// leaseHolders counts, per worker pid, the runs among ids whose secrets that worker resolved:
// it holds their lease and, on its own disk, the parts of their committed batches. The pid is
// taken from the identity on the run's last started ResolveSecrets.
func leaseHolders(c client.Client, ids []string) map[int]int {
	out := map[int]int{}
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		resolves := map[int64]bool{} // scheduled event ids of ResolveSecrets
		pid := 0
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				break
			}
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "ResolveSecrets" {
				resolves[ev.GetEventId()] = true
			}
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && resolves[a.GetScheduledEventId()] {
				ident := a.GetIdentity()
				if p, err := strconv.Atoi(ident[strings.LastIndex(ident, "/")+1:]); err == nil {
					pid = p
				}
			}
		}
		cancel()
		if pid != 0 {
			out[pid]++
		}
	}
	return out
}

// recordHistory writes the history of a finished run to testdata/histories/<name>.json with the
// real temporal CLI when SECURE_AGENT_RECORD_HISTORIES=1, unless the file exists (recorded files
// are never overwritten: replaying them proves that runs in flight survive a change).
func recordHistory(t *testing.T, s *proctest.DevServer, name, id, runID string) {
	t.Helper()
	if os.Getenv("SECURE_AGENT_RECORD_HISTORIES") != "1" {
		return
	}
	file := filepath.Join("..", "..", "testdata", "histories", name+".json")
	if _, err := os.Stat(file); err == nil {
		t.Logf("%s exists: kept", file)
		return
	}
	out, err := exec.Command(s.CLI, "workflow", "show", "--address", s.Addr(), "--namespace", "default",
		"--workflow-id", id, "--run-id", runID, "--output", "json").Output()
	if err != nil {
		t.Fatalf("temporal workflow show: %v", err)
	}
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s", file)
}
