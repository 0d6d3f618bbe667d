package proctest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// Canary returns a value no test writes anywhere else: prefix-<random hex>.
func Canary(t testing.TB, prefix string) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// AgentOpts configures one agent process.
type AgentOpts struct {
	// policy is the policy file's content; empty means no policy file (the settings decide).
	Policy string
	// env are more variables of the agent's environment: secrets, SECURE_AGENT_* settings.
	Env map[string]string
}

// Agent is one `secure-agent worker` process, with its own task queue, output directory, audit
// file, log and metrics endpoint, and the runs the test started on it.
type Agent struct {
	t           *testing.T
	Server      *DevServer
	Client      client.Client
	Queue       string
	OutDir      string
	AuditFile   string
	MetricsAddr string
	Proc        *Proc

	binary string

	mu   sync.Mutex
	runs [][2]string // workflow id, run id
}

// StartAgent starts the binary as a worker process and waits until its metrics endpoint says it is ready.
func StartAgent(t *testing.T, binary string, server *DevServer, opts AgentOpts) *Agent {
	t.Helper()
	dir := t.TempDir()
	a := &Agent{
		t: t, binary: binary, Server: server, Client: server.Client(t),
		Queue:     "adv-" + Canary(t, "q")[:14],
		OutDir:    filepath.Join(dir, "out"),
		AuditFile: filepath.Join(dir, "audit.jsonl"),
	}
	a.MetricsAddr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	env := append(MinimalEnv(dir),
		"TEMPORAL_ADDRESS="+server.Addr(),
		"TEMPORAL_NAMESPACE=default",
		"SECURE_AGENT_TASK_QUEUE="+a.Queue,
		"SECURE_AGENT_OUTPUT_DIR="+a.OutDir,
		"SECURE_AGENT_AUDIT="+a.AuditFile,
		"SECURE_AGENT_LOG_LEVEL=debug",
		"SECURE_AGENT_HTTP_ADDRESS="+a.MetricsAddr,
	)
	if opts.Policy != "" {
		file := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(file, []byte(opts.Policy), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "SECURE_AGENT_POLICY_FILE="+file)
	}
	for k, v := range opts.Env {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(binary, "worker")
	cmd.Env = env
	a.Proc = Start(t, "worker", cmd, filepath.Join(dir, "worker.log"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker log (tail):\n%s", a.Proc.Tail(40))
		}
		if a.Proc.Alive() {
			a.Proc.Kill(t)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-a.Proc.Exited():
			t.Fatalf("the worker exited at start:\n%s", a.Proc.Tail(30))
		default:
		}
		if resp, err := http.Get("http://" + a.MetricsAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the worker was not ready within 30s:\n%s", a.Proc.Tail(30))
	return nil
}

// Start starts a workflow of the given type on the agent's queue and remembers it for Evidence.
func (a *Agent) Start(workflowType string, in any, timeout time.Duration) (id, runID string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := a.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: Canary(a.t, "adv"), TaskQueue: a.Queue, WorkflowExecutionTimeout: timeout,
	}, workflowType, in)
	if err != nil {
		a.t.Fatal(err)
	}
	a.Remember(run.GetID(), run.GetRunID())
	return run.GetID(), run.GetRunID()
}

// Remember adds a run to those Evidence searches (one the test started another way).
func (a *Agent) Remember(id, runID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.runs = append(a.runs, [2]string{id, runID})
}

// ExtractFails starts an ExtractionWorkflow with in and waits for its failure, which must be an
// ApplicationError; it returns it.
func (a *Agent) ExtractFails(in workflows.Input) *temporal.ApplicationError {
	a.t.Helper()
	id, runID := a.Start(workflows.ExtractionWorkflowName, in, 3*time.Minute)
	return a.Failure(id, runID)
}

// Failure waits for a run's end and returns its ApplicationError; a success or another kind of
// failure fails the test.
func (a *Agent) Failure(id, runID string) *temporal.ApplicationError {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := a.Client.GetWorkflow(ctx, id, runID).Get(ctx, nil)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		a.t.Fatalf("run %s: want a failure with a classified error, got %v", id, err)
	}
	return ae
}

// Succeeds waits for a run's summary.
func (a *Agent) Succeeds(id, runID string) workflows.Summary {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var sum workflows.Summary
	if err := a.Client.GetWorkflow(ctx, id, runID).Get(ctx, &sum); err != nil {
		a.t.Fatalf("run %s failed: %v", id, err)
	}
	return sum
}

// Metrics scrapes the agent's /metrics.
func (a *Agent) Metrics() string {
	a.t.Helper()
	resp, err := http.Get("http://" + a.MetricsAddr + "/metrics")
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return string(b)
}

// Metric returns the value of one sample of /metrics ("name" or `name{label="v"}`), 0 if absent.
func (a *Agent) Metric(sample string) float64 {
	a.t.Helper()
	for line := range strings.SplitSeq(a.Metrics(), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				a.t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// Evidence is everything the agent and Temporal kept that a secret must never reach: every
// event of every run the test started on it (payloads decoded), the worker's log at debug
// level, the audit trail, every output file and the metrics.
func (a *Agent) Evidence() map[string]string {
	a.t.Helper()
	out := map[string]string{
		"worker log": ReadFile(a.t, a.Proc.Log),
		"audit":      ReadFile(a.t, a.AuditFile),
		"output":     OutputText(a.t, a.OutDir),
		"metrics":    a.Metrics(),
	}
	a.mu.Lock()
	runs := append([][2]string(nil), a.runs...)
	a.mu.Unlock()
	for _, r := range runs {
		out["history of "+r[0]] = Haystack(a.t, History(a.t, a.Client, r[0], r[1]))
	}
	return out
}

// AssertNowhere fails for every canary found in any of the evidence, or in extra texts (CLI
// output), naming where.
func (a *Agent) AssertNowhere(extra map[string]string, canaries ...string) {
	a.t.Helper()
	ev := a.Evidence()
	for k, v := range extra {
		ev[k] = v
	}
	if ev["worker log"] == "" {
		a.t.Error("the worker wrote no log: the search of it proves nothing")
	}
	for where, text := range ev {
		for _, c := range canaries {
			if c != "" && strings.Contains(text, c) {
				a.t.Errorf("canary %q found in %s", c, where)
			}
		}
	}
}

func ReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// Trap is a listener that counts the connections and bytes it receives: where an attacker
// wants the agent to send a credential. It answers nothing.
type Trap struct {
	ln    net.Listener
	conns atomic.Int64
	mu    sync.Mutex
	data  bytes.Buffer
}

// NewTrap listens on network ("tcp", "tcp6", "unix") at address.
func NewTrap(t testing.TB, network, address string) *Trap {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatalf("listening on %s %s: %v", network, address, err)
	}
	tr := &Trap{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tr.conns.Add(1)
			go func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(c)
				tr.mu.Lock()
				tr.data.Write(b)
				tr.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return tr
}

// Port is a TCP trap's port.
func (tr *Trap) Port() int { return tr.ln.Addr().(*net.TCPAddr).Port }

// AssertUntouched fails if anything connected to the trap.
func (tr *Trap) AssertUntouched(t testing.TB, what string) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if n := tr.conns.Load(); n > 0 || tr.data.Len() > 0 {
		t.Errorf("%s: the attacker's listener got %d connection(s) and %d byte(s)", what, n, tr.data.Len())
	}
}

// Source is a PostgreSQL database made for one test, with a login whose password is a canary.
type Source struct {
	Host, Port, DB, User, Password string
}

// PGSource creates a database with one schema of two tables and a view, and a read-only login
// whose password is a canary.
func PGSource(t *testing.T) Source {
	t.Helper()
	admin, u := testenv.PGAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suffix := Canary(t, "s")[2:12]
	src := Source{Host: u.Hostname(), Port: u.Port(), DB: "adv_" + suffix, User: "adv_reader_" + suffix, Password: Canary(t, "pgpw")}
	exec := func(conn *pgx.Conn, sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%.60s: %v", sql, err)
		}
	}
	exec(admin, "CREATE DATABASE "+src.DB)
	exec(admin, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", src.User, src.Password))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+src.DB+" WITH (FORCE)")
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+src.User)
	})
	dbURL := *u
	dbURL.Path = "/" + src.DB
	conn, err := pgx.Connect(ctx, dbURL.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	exec(conn, fmt.Sprintf(`CREATE SCHEMA sales; GRANT USAGE ON SCHEMA sales TO %s;
		CREATE TABLE sales.customers (id bigint PRIMARY KEY, email text NOT NULL);
		CREATE TABLE sales.orders (id bigint PRIMARY KEY, customer bigint REFERENCES sales.customers(id));
		CREATE VIEW sales.big_orders AS SELECT id FROM sales.orders WHERE id > 100;`, src.User))
	return src
}

// Input is an extraction of src with its password read from the agent's variable passwordVar.
func (src Source) Input(passwordVar string) workflows.Input {
	return workflows.Input{
		Connector: "postgres",
		Connection: map[string]workflows.FieldValue{
			"host": workflows.FieldValue(src.Host), "port": workflows.FieldValue(src.Port),
			"database": workflows.FieldValue(src.DB), "username": workflows.FieldValue(src.User),
			"password": workflows.FieldValue(passwordVar), "sslmode": "disable",
		},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
	}
}

// CLI runs the production binary's run or check against the agent's server and queue, and
// returns its exit code and output.
func (a *Agent) CLI(args ...string) (code int, stdout, stderr string) {
	a.t.Helper()
	cmd := exec.Command(a.binary, args...)
	cmd.Env = append(MinimalEnv(a.t.TempDir()), "TEMPORAL_ADDRESS="+a.Server.Addr(), "TEMPORAL_NAMESPACE=default")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		a.t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}
