package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// portZeroConfig writes a temporal-dev.yaml that picks free ports, so tests never collide with a
// dev server on 7233.
func portZeroConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "temporal-dev.yaml")
	if err := os.WriteFile(path, []byte("frontendAddress: 127.0.0.1:0\nuiAddress: \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDemo runs the README's first command, in process, and checks its promise: a real
// extraction on the embedded server, a summary with the output path, exit code 0.
func TestDemo(t *testing.T) {
	out := t.TempDir()
	t.Setenv("SECURE_AGENT_OUTPUT_DIR", out)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if code := mainWith(ctx, []string{"demo", "--config", portZeroConfig(t)}, &stdout, &stderr); code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "extraction complete") || !strings.Contains(stdout.String(), "tables=7") {
		t.Fatalf("summary missing:\n%s", &stdout)
	}
	manifests, _ := filepath.Glob(filepath.Join(out, "sqlite", "*", "*", "manifest.json"))
	if len(manifests) != 1 || !strings.Contains(stdout.String(), manifests[0]) {
		t.Fatalf("manifests %v not named in the summary:\n%s", manifests, &stdout)
	}
	if strings.Contains(stdout.String()+stderr.String(), "shop.db") {
		t.Errorf("the demo's secret (the database path) was printed")
	}
}

func TestRunFollowsAWorkflowAndSetsTheExitCode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	settings, err := worker.LoadSettings()
	if err != nil {
		t.Fatal(err)
	}
	settings.OutputDir = t.TempDir()
	settings.EnvAllow = []string{"RUN_TEST_*"}
	settings.TaskQueue = "run-test"
	dbDir := t.TempDir()
	settings.SQLiteDirs = []string{dbDir}
	var devLog bytes.Buffer
	d, err := startDev(ctx, portZeroConfig(t), settings, &devLog)
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	t.Setenv("TEMPORAL_ADDRESS", d.server.FrontendAddress())
	t.Setenv("TEMPORAL_NAMESPACE", d.server.Namespace())

	db := filepath.Join(dbDir, "shop.db")
	if err := writeSampleDB(ctx, db); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUN_TEST_DB", db)
	write := func(v any) string {
		p := filepath.Join(t.TempDir(), "input.json")
		b, _ := json.Marshal(v)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write(map[string]any{"connector": "sqlite", "connection": map[string]any{"path": "RUN_TEST_DB"}, "secretStore": map[string]any{"type": "env"}})
	missing := write(map[string]any{"connector": "sqlite", "connection": map[string]any{"path": "RUN_TEST_NOT_SET"}, "secretStore": map[string]any{"type": "env"}})
	invalid := write(map[string]any{"connector": "sqlite", "connection": map[string]any{}})

	var stdout, stderr bytes.Buffer
	if code := mainWith(ctx, []string{"run", "--input", good, "--task-queue", "run-test"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run exited %d: %s", code, &stderr)
	}
	if !strings.Contains(stdout.String(), "extraction complete") {
		t.Fatalf("no summary: %s", &stdout)
	}
	stdout.Reset()
	stderr.Reset()
	if code := mainWith(ctx, []string{"run", "--input", missing, "--task-queue", "run-test"}, &stdout, &stderr); code != 1 {
		t.Fatalf("a failed run exited %d: %s", code, &stderr)
	}
	if !strings.Contains(stderr.String(), "SecretNotFound") || !strings.Contains(stderr.String(), "RUN_TEST_NOT_SET") {
		t.Fatalf("failure not explained: %s", &stderr)
	}
	stderr.Reset()
	if code := mainWith(ctx, []string{"run", "--input", invalid}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "connection.path is required") {
		t.Fatalf("invalid input: exit %d, %s", code, &stderr)
	}

	// --json: the summary, or the failure's kind, as JSON on stdout and nothing else there.
	stdout.Reset()
	if code := mainWith(ctx, []string{"run", "--json", "--input", good, "--task-queue", "run-test"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run --json exited %d: %s", code, &stderr)
	}
	var ok struct {
		WorkflowID string           `json:"workflowId"`
		Summary    workflowsSummary `json:"summary"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &ok); err != nil || ok.WorkflowID == "" || ok.Summary.Counts["tables"] != 7 {
		t.Fatalf("run --json printed %q (%v)", stdout.String(), err)
	}
	stdout.Reset()
	if code := mainWith(ctx, []string{"run", "--json", "--input", missing, "--task-queue", "run-test"}, &stdout, &stderr); code != 1 {
		t.Fatalf("failed run --json exited %d", code)
	}
	var failed struct {
		Error map[string]string `json:"error"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &failed); err != nil || failed.Error["type"] != "SecretNotFound" {
		t.Fatalf("failed run --json printed %q (%v)", stdout.String(), err)
	}
	// --quiet: the summary only, no progress lines.
	stdout.Reset()
	stderr.Reset()
	if code := mainWith(ctx, []string{"run", "--quiet", "--input", good, "--task-queue", "run-test"}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "extraction complete") || strings.Contains(stderr.String(), "schemas") {
		t.Fatalf("run --quiet: stdout %q stderr %q", stdout.String(), stderr.String())
	}
}

// workflowsSummary mirrors the fields of workflows.Summary the tests read.
type workflowsSummary struct {
	Counts map[string]int64 `json:"counts"`
}

func TestRenderProgress(t *testing.T) {
	line := renderProgress(workflows.Progress{Phase: "extracting", SchemasDone: 5, SchemasTotal: 10,
		Counts: map[string]int64{"tables": 100, "columns": 900}}, 2*time.Second)
	for _, want := range []string{"extracting", "[##########----------]", "5/10 schemas  100 tables  columns=900", "500 entities/s"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q does not contain %q", line, want)
		}
	}
	line = renderProgress(workflows.Progress{Phase: "finalizing", LeaseRenewals: 1, WorkerBusyWaits: 2, PartsReextracted: 3, Rotations: 1}, time.Second)
	for _, want := range []string{"resolved again 1×", "waited 2× for a busy worker", "3 batches extracted again", "secrets rotated 1×"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q does not contain %q", line, want)
		}
	}
	var sum bytes.Buffer
	printSummaryBody(&sum, workflows.Summary{Rotations: 1,
		Versions:         []secrets.SecretVersion{{Ref: secrets.Ref{Path: "prod/db"}, Version: "v2"}},
		PreviousVersions: []secrets.SecretVersion{{Ref: secrets.Ref{Path: "prod/db"}, Version: "v1"}}})
	for _, want := range []string{"secret      prod/db version v2", "rotated     1× during the run; replaced: prod/db version v1"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary %q does not contain %q", sum.String(), want)
		}
	}
	var b bytes.Buffer
	bar := newProgressBar(&b, true) // not a terminal: one line per change
	bar.update(workflows.Progress{Phase: "resolving"})
	bar.update(workflows.Progress{Phase: "resolving"})
	bar.update(workflows.Progress{Phase: "preflight"})
	bar.finish()
	if got := strings.Count(b.String(), "\n"); got != 2 {
		t.Fatalf("%d lines for two distinct states:\n%s", got, b.String())
	}
}

func TestUsageAndVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := mainWith(context.Background(), []string{"version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "secure-agent ") {
		t.Fatalf("version: %d %q", code, &stdout)
	}
	if code := mainWith(context.Background(), []string{"frobnicate"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "unknown command") {
		t.Fatalf("unknown command: %d %q", code, &stderr)
	}
	if code := mainWith(context.Background(), nil, &stdout, &stderr); code != 2 {
		t.Fatalf("no command: %d", code)
	}
}

func TestCodecServerCommand(t *testing.T) {
	t.Setenv("SECURE_AGENT_CODEC_KEYS", "k1:"+strings.Repeat("A", 43)+"=")
	t.Setenv("SECURE_AGENT_CODEC_SERVER_TOKEN", "tok-123")
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &testenv.SyncBuffer{}
	done := make(chan int, 1)
	go func() { done <- mainWith(ctx, []string{"codec-server", "--listen", "127.0.0.1:0"}, io.Discard, stderr) }()
	var addr string
	for i := 0; i < 200 && addr == ""; i++ {
		time.Sleep(10 * time.Millisecond)
		if _, rest, ok := strings.Cut(stderr.String(), "codec server on http://"); ok {
			addr, _, _ = strings.Cut(rest, " ")
		}
	}
	if addr == "" {
		t.Fatalf("the codec server did not start: %s", stderr.String())
	}
	body := `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"ImhlbGxvIg=="}]}`
	post := func(path, token string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, _ := post("/encode", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	resp, out := post("/encode", "tok-123")
	if resp.StatusCode != http.StatusOK || !strings.Contains(out, "YmluYXJ5L2VuY3J5cHRlZA==") { // binary/encrypted
		t.Fatalf("encode: %d %s", resp.StatusCode, out)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("codec-server exited %d: %s", code, stderr.String())
	}
}
