package devserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/secure-agent/secure-agent/internal/devserver"
)

const taskQueue = "devserver-test"

// Greet is the test activity.
func Greet(_ context.Context, name string) (string, error) {
	return "hello, " + name, nil
}

// GreetWorkflow runs Greet once and returns its result.
func GreetWorkflow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var out string
	err := workflow.ExecuteActivity(ctx, "Greet", name).Get(ctx, &out)
	return out, err
}

// levelWatcher is a slog.Handler that remembers the lowest level it saw.
type levelWatcher struct {
	mu     sync.Mutex
	lowest slog.Level
	seen   int
	first  string
}

func newLevelWatcher() *levelWatcher { return &levelWatcher{lowest: slog.LevelError + 100} }

func (w *levelWatcher) Enabled(context.Context, slog.Level) bool { return true }
func (w *levelWatcher) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen++
	if r.Level < w.lowest {
		w.lowest = r.Level
		w.first = r.Message
	}
	return nil
}
func (w *levelWatcher) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *levelWatcher) WithGroup(string) slog.Handler      { return w }

// testConfig listens on free loopback ports with an in-memory database.
func testConfig() devserver.Config {
	cfg := devserver.DefaultConfig()
	cfg.FrontendAddress = "127.0.0.1:0"
	cfg.UIAddress = "127.0.0.1:0"
	return cfg
}

func startServer(t *testing.T, cfg devserver.Config, logger *slog.Logger) *devserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	began := time.Now()
	srv, err := devserver.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %s (frontend %s, UI %q)", time.Since(began).Round(time.Millisecond), srv.FrontendAddress(), srv.UIAddress())
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

func dial(t *testing.T, srv *devserver.Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  srv.FrontendAddress(),
		Namespace: srv.Namespace(),
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatalf("client.Dial(%s): %v", srv.FrontendAddress(), err)
	}
	t.Cleanup(c.Close)
	return c
}

// runGreeting runs GreetWorkflow to completion on a fresh worker and returns
// the workflow's ID and run ID.
func runGreeting(t *testing.T, c client.Client, workflowID string) (string, string) {
	t.Helper()
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(GreetWorkflow)
	w.RegisterActivityWithOptions(Greet, activity.RegisterOptions{Name: "Greet"})
	if err := w.Start(); err != nil {
		t.Fatalf("worker.Start: %v", err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflowID, TaskQueue: taskQueue}, GreetWorkflow, "dev server")
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if out != "hello, dev server" {
		t.Fatalf("workflow result = %q, want %q", out, "hello, dev server")
	}
	return run.GetID(), run.GetRunID()
}

// get fetches url and returns status, content type and body.
func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// getJSON fetches url, requires 200 and decodes the JSON body into v.
func getJSON(t *testing.T, url string, v any) string {
	t.Helper()
	status, ctype, body := get(t, url)
	if status != http.StatusOK || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("GET %s = %d %q, want 200 JSON; body: %.300s", url, status, ctype, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: decoding %.300s: %v", url, body, err)
	}
	return body
}

// requireFree fails unless a new listener can bind addr.
func requireFree(t *testing.T, what, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s port still taken after Stop: %v", what, err)
	}
	_ = l.Close()
}

// TestServerWorkflowAndUI is the main path: start on free ports in memory, run a
// workflow with the real SDK, use the Web UI and its API proxy, stop.
func TestServerWorkflowAndUI(t *testing.T) {
	cfg := testConfig()
	cfg.Namespace = "secure-agent-dev"
	cfg.ExtraNamespaces = []string{"extra-one"}
	cfg.UICodecEndpoint = "http://127.0.0.1:9999"
	cfg.Retention = 72 * time.Hour
	logs := newLevelWatcher()
	srv := startServer(t, cfg, slog.New(logs))

	if srv.Namespace() != "secure-agent-dev" {
		t.Errorf("Namespace() = %q", srv.Namespace())
	}
	if strings.HasSuffix(srv.FrontendAddress(), ":0") || strings.HasSuffix(srv.UIAddress(), ":0") {
		t.Fatalf("port 0 not resolved: frontend %s, UI %s", srv.FrontendAddress(), srv.UIAddress())
	}
	if srv.UIURL() != "http://"+srv.UIAddress() {
		t.Errorf("UIURL() = %q", srv.UIURL())
	}

	c := dial(t, srv)
	workflowID, _ := runGreeting(t, c, "greet-in-memory")

	// The extra namespace exists too, with the configured retention.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nsClient, err := client.NewNamespaceClient(client.Options{HostPort: srv.FrontendAddress(), Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer nsClient.Close()
	desc, err := nsClient.Describe(ctx, "extra-one")
	if err != nil {
		t.Fatalf("describing the extra namespace: %v", err)
	}
	if got := desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != cfg.Retention {
		t.Errorf("retention = %s, want %s", got, cfg.Retention)
	}

	// The UI's root page.
	status, ctype, body := get(t, srv.UIURL()+"/")
	if status != http.StatusOK || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(strings.ToLower(body), "<html") {
		t.Fatalf("GET / = %d %q, want 200 HTML; body: %.300s", status, ctype, body)
	}

	// The UI's settings carry our namespace and codec endpoint.
	var settings struct {
		DefaultNamespace string
		Codec            struct{ Endpoint string }
	}
	getJSON(t, srv.UIURL()+"/api/v1/settings", &settings)
	if settings.DefaultNamespace != cfg.Namespace || settings.Codec.Endpoint != cfg.UICodecEndpoint {
		t.Errorf("settings = %+v, want namespace %q and codec %q", settings, cfg.Namespace, cfg.UICodecEndpoint)
	}

	// The UI's API proxies to the frontend: namespaces...
	var namespaces struct {
		Namespaces []struct{ NamespaceInfo struct{ Name string } }
	}
	getJSON(t, srv.UIURL()+"/api/v1/namespaces", &namespaces)
	var names []string
	for _, ns := range namespaces.Namespaces {
		names = append(names, ns.NamespaceInfo.Name)
	}
	if !contains(names, cfg.Namespace) || !contains(names, "extra-one") {
		t.Errorf("UI lists namespaces %v, want %q and %q among them", names, cfg.Namespace, "extra-one")
	}

	// ...and the workflow list shows the workflow that just ran (visibility is
	// written asynchronously, so allow a moment).
	listURL := fmt.Sprintf("%s/api/v1/namespaces/%s/workflows", srv.UIURL(), cfg.Namespace)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var list struct {
			Executions []struct {
				Execution struct{ WorkflowID string }
				Status    string
			}
		}
		raw := getJSON(t, listURL, &list)
		if len(list.Executions) == 1 && list.Executions[0].Execution.WorkflowID == workflowID &&
			list.Executions[0].Status == "WORKFLOW_EXECUTION_STATUS_COMPLETED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("UI workflow list never showed %s completed: %.500s", workflowID, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Writes through the UI's API work with the CSRF token the UI page sets
	// as a cookie (over plain HTTP), and are refused without it.
	terminateThroughUI(t, c, srv.UIURL(), cfg.Namespace)

	// Stop frees the ports and is idempotent.
	frontend, ui := srv.FrontendAddress(), srv.UIAddress()
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	requireFree(t, "frontend", frontend)
	requireFree(t, "UI", ui)

	// Server logs below the configured level (warn) never reached our logger.
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if logs.lowest < slog.LevelWarn {
		t.Errorf("logLevel warn let a %s record through: %q", logs.lowest, logs.first)
	}
}

// terminateThroughUI starts a workflow nobody works on and terminates it with
// the UI's API, as the UI's Terminate button does.
func terminateThroughUI(t *testing.T, c client.Client, uiURL, namespace string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "terminate-me", TaskQueue: "nobody-polls"}, "GreetWorkflow", "x")
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := browser.Get(uiURL + "/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	_ = resp.Body.Close()
	// Browsers send Secure cookies over plain HTTP only to localhost; with
	// allowNonLoopback the UI is reached by other names, so no Secure flag.
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "_csrf=") && strings.Contains(strings.ToLower(sc), "secure") {
			t.Errorf("the CSRF cookie is Secure, unusable over plain HTTP beyond localhost: %s", sc)
		}
	}
	token := ""
	base, _ := url.Parse(uiURL)
	for _, cookie := range jar.Cookies(base) {
		if cookie.Name == "_csrf" {
			token = cookie.Value
		}
	}
	if token == "" {
		t.Fatalf("the UI set no _csrf cookie usable over http: %v", resp.Header.Values("Set-Cookie"))
	}

	terminate := func(withToken bool) (int, string) {
		endpoint := fmt.Sprintf("%s/api/v1/namespaces/%s/workflows/%s/terminate", uiURL, namespace, run.GetID())
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(`{"reason":"devserver test"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if withToken {
			req.Header.Set("X-CSRF-Token", token)
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", endpoint, err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	status := func() enumspb.WorkflowExecutionStatus {
		desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		if err != nil {
			t.Fatalf("DescribeWorkflowExecution: %v", err)
		}
		return desc.GetWorkflowExecutionInfo().GetStatus()
	}

	if code, body := terminate(false); code < 400 || code >= 500 {
		t.Errorf("terminate without CSRF token = %d %.200s, want a 4xx refusal", code, body)
	}
	if got := status(); got != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("status after a refused terminate = %s, want RUNNING", got)
	}
	if code, body := terminate(true); code != http.StatusOK {
		t.Fatalf("terminate with CSRF token = %d %.300s, want 200", code, body)
	}
	if got := status(); got != enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED {
		t.Fatalf("status after terminate through the UI = %s, want TERMINATED", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestServerLogLevelInfo checks the other side of the level filter: at info,
// the server's start-up records arrive.
func TestServerLogLevelInfo(t *testing.T) {
	cfg := testConfig()
	cfg.UIAddress = ""
	cfg.LogLevel = "info"
	logs := newLevelWatcher()
	srv := startServer(t, cfg, slog.New(logs))
	if srv.UIAddress() != "" || srv.UIURL() != "" {
		t.Errorf("UI address %q / URL %q with the UI disabled", srv.UIAddress(), srv.UIURL())
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if logs.seen == 0 || logs.lowest != slog.LevelInfo {
		t.Errorf("at logLevel info saw %d records, lowest level %s; want info records", logs.seen, logs.lowest)
	}
}

// TestServerPersistent runs a workflow, restarts on the same database file and
// finds the workflow again.
func TestServerPersistent(t *testing.T) {
	dbFile := filepath.Join(t.TempDir(), "temporal-dev.db")
	cfg := testConfig()
	cfg.UIAddress = ""
	cfg.DatabaseFile = dbFile

	first := startServer(t, cfg, nil)
	workflowID, runID := runGreeting(t, dial(t, first), "greet-persistent")
	began := time.Now()
	if err := first.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("first Stop took %s", time.Since(began).Round(time.Millisecond))
	if st, err := os.Stat(dbFile); err != nil || st.Size() == 0 {
		t.Fatalf("database file after Stop: %v, %v", st, err)
	}

	second := startServer(t, cfg, nil)
	c := dial(t, second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	desc, err := c.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		t.Fatalf("the workflow did not survive the restart: %v", err)
	}
	if status := desc.GetWorkflowExecutionInfo().GetStatus(); status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("status after restart = %s, want COMPLETED", status)
	}
	var out string
	if err := c.GetWorkflow(ctx, workflowID, runID).Get(ctx, &out); err != nil || out != "hello, dev server" {
		t.Fatalf("result after restart = %q, %v", out, err)
	}
	stopBegan := time.Now()
	if err := second.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %s", time.Since(stopBegan).Round(time.Millisecond))

	// Stop releases the file: no descriptor of this process points at it
	// after a short while (Linux only: it reads /proc).
	if runtime.GOOS != "linux" {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		open := openDescriptors(t, dbFile)
		if open == 0 {
			t.Logf("database file released %s after Stop", time.Since(stopBegan).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors still open on %s 10s after Stop", open, dbFile)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// openDescriptors counts this process's file descriptors open on path or its
// SQLite side files (journal, WAL).
func openDescriptors(t *testing.T, path string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("reading /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, path) {
			n++
		}
	}
	return n
}

// TestStartPortInUse checks the error when a configured port is taken.
func TestStartPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()

	for _, key := range []string{"frontendAddress", "uiAddress"} {
		t.Run(key, func(t *testing.T) {
			cfg := testConfig()
			if key == "frontendAddress" {
				cfg.FrontendAddress = taken.Addr().String()
			} else {
				cfg.UIAddress = taken.Addr().String()
			}
			srv, err := devserver.Start(context.Background(), cfg, nil)
			if err == nil {
				_ = srv.Stop()
				t.Fatal("Start succeeded on a port in use")
			}
			for _, want := range []string{"in use", key, "temporal-dev.yaml"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// TestStartRejectsInvalidConfig checks that Start validates before binding.
func TestStartRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig()
	cfg.FrontendAddress = "0.0.0.0:0"
	if srv, err := devserver.Start(context.Background(), cfg, nil); err == nil {
		_ = srv.Stop()
		t.Fatal("Start accepted a non-loopback address without allowNonLoopback")
	} else if !strings.Contains(err.Error(), "allowNonLoopback") {
		t.Errorf("error %q does not mention allowNonLoopback", err)
	}

	cfg = testConfig()
	cfg.DatabaseFile = filepath.Join(t.TempDir(), "missing-dir", "dev.db")
	if srv, err := devserver.Start(context.Background(), cfg, nil); err == nil {
		_ = srv.Stop()
		t.Fatal("Start accepted a database file in a missing directory")
	} else if !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error %q does not say the directory does not exist", err)
	}
	cfg = testConfig()
	cfg.TLS = devserver.TLSConfig{CertFile: filepath.Join(t.TempDir(), "missing.pem"), KeyFile: filepath.Join(t.TempDir(), "missing-key.pem")}
	if srv, err := devserver.Start(context.Background(), cfg, nil); err == nil {
		_ = srv.Stop()
		t.Fatal("Start accepted a missing TLS certificate")
	} else if !strings.Contains(err.Error(), "tls.certFile") {
		t.Errorf("error %q does not name tls.certFile", err)
	}
}
