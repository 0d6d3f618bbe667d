package worker

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
	_ "modernc.org/sqlite"

	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestMetricsAndHealthOnRealServer runs a real extraction on an in-process Temporal server with
// the HTTP endpoint on, then scrapes it as Prometheus would.
func TestMetricsAndHealthOnRealServer(t *testing.T) {
	begin := time.Now()
	srv := temporaltest.NewServer(temporaltest.WithT(t))
	t.Logf("temporal server up in %s", time.Since(begin).Round(time.Millisecond))

	dir := t.TempDir()
	db := filepath.Join(dir, "metrics-shop.db")
	makeDB(t, db)
	const secretVar = "METRICSTEST_SHOP_DB"
	t.Setenv(secretVar, db)

	settings := Settings{
		TaskQueue: fmt.Sprintf("metrics-test-%d", time.Now().UnixNano()),
		OutputDir: filepath.Join(dir, "out"), LeaseTTL: time.Hour, SecretCacheSize: 16,
		MaxConcurrentActivities: 4, MaxConcurrentWorkflowTasks: 4, StopTimeout: 5 * time.Second,
		LogLevel: "debug", LogFormat: "json", AWSSessionName: "secure-agent", Audit: "off",
		EnvAllow: []string{"METRICSTEST_*"}, HTTPAddress: "127.0.0.1:0", SQLiteDirs: []string{dir},
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := DialWith(context.Background(), settings, client.Options{HostPort: srv.GetFrontendHostPort(), Namespace: srv.GetDefaultNamespace()}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	agent, err := New(c, settings, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()
	base := "http://" + agent.HTTPAddr()
	if strings.HasSuffix(base, ":0") || agent.HTTPAddr() == "" {
		t.Fatalf("HTTPAddr = %q, want the bound address", agent.HTTPAddr())
	}

	expectStatus(t, base+"/healthz", http.StatusOK)
	if body := expectStatus(t, base+"/readyz", http.StatusServiceUnavailable); !strings.Contains(body, "not started") {
		t.Errorf("/readyz before Start says %q", body)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, base+"/readyz", http.StatusOK)

	wfStart := time.Now()
	workflowID := fmt.Sprintf("metrics-wf-%d", time.Now().UnixNano())
	run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: workflowID, TaskQueue: settings.TaskQueue, WorkflowExecutionTimeout: 2 * time.Minute,
	}, workflows.ExtractionWorkflowName, workflows.Input{
		Connector:   "sqlite",
		Connection:  map[string]workflows.FieldValue{"path": workflows.FieldValue(secretVar)},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
	})
	if err != nil {
		t.Fatal(err)
	}
	var sum workflows.Summary
	if err := run.Get(context.Background(), &sum); err != nil {
		t.Fatal(err)
	}
	t.Logf("extraction workflow done in %s: %v", time.Since(wfStart).Round(time.Millisecond), sum.Counts)

	// The SDK's metrics reach the registry on tally's one-second flush.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(15 * time.Second)
	for {
		fams = scrape(t, base+"/metrics")
		if value(fams, "temporal_workflow_completed_total", map[string]string{"workflow_type": workflows.ExtractionWorkflowName}) >= 1 &&
			value(fams, "temporal_request_total", nil) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SDK metrics after 15s; families: %v", names(fams))
		}
		time.Sleep(200 * time.Millisecond)
	}

	if v := value(fams, "secure_agent_secret_resolutions_total", map[string]string{"store": "env", "outcome": "ok"}); v < 1 {
		t.Errorf("secret resolutions store=env outcome=ok = %v, want >= 1", v)
	}
	if v := value(fams, "secure_agent_secret_resolution_duration_seconds", map[string]string{"store": "env", "outcome": "ok"}); v < 1 {
		t.Errorf("resolution latency samples = %v, want >= 1", v)
	}
	for kind, n := range sum.Counts {
		if v := value(fams, "secure_agent_entities_extracted_total", map[string]string{"connector": "sqlite", "kind": kind}); v != float64(n) {
			t.Errorf("entities extracted kind=%s = %v, want %d", kind, v, n)
		}
	}
	if sum.Counts["tables"] == 0 || sum.Counts["columns"] == 0 {
		t.Errorf("summary counts = %v, want tables and columns", sum.Counts)
	}
	if v := value(fams, "secure_agent_output_bytes_written_total", map[string]string{"connector": "sqlite", "kind": "tables"}); v <= 0 {
		t.Errorf("output bytes written for tables = %v, want > 0", v)
	}
	if v := value(fams, "secure_agent_active_leases", nil); v != 0 {
		t.Errorf("active leases = %v after the run, want 0", v)
	}
	if fams["secure_agent_active_leases"] == nil {
		t.Error("secure_agent_active_leases is missing")
	}
	for _, act := range []string{"ResolveSecrets", "Preflight", "ExtractSchemas", "Finalize"} {
		if v := value(fams, "secure_agent_activity_duration_seconds", map[string]string{"activity_type": act, "outcome": "ok"}); v < 1 {
			t.Errorf("activity duration samples for %s = %v, want >= 1", act, v)
		}
	}

	// No label value names the run, the secret, the database, the queue, the namespace or the host.
	forbidden := []string{workflowID, run.GetRunID(), secretVar, db, dir, settings.TaskQueue, srv.GetDefaultNamespace()}
	if h, err := os.Hostname(); err == nil && len(h) >= 4 {
		forbidden = append(forbidden, h)
	}
	labels := 0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels++
				if l.GetName() == "host" || l.GetName() == "instance" || l.GetName() == "namespace" {
					t.Errorf("%s has a %s label", f.GetName(), l.GetName())
				}
				for _, bad := range forbidden {
					if strings.Contains(l.GetValue(), bad) {
						t.Errorf("%s has label %s=%q, which contains %q", f.GetName(), l.GetName(), l.GetValue(), bad)
					}
				}
			}
		}
	}
	t.Logf("%d metric families, %d label values checked", len(fams), labels)

	stopStart := time.Now()
	agent.Stop()
	t.Logf("agent stopped in %s", time.Since(stopStart).Round(time.Millisecond))
	rec := httptest.NewRecorder()
	agent.serveReady(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "stopping") {
		t.Errorf("/readyz after Stop = %d %q, want 503", rec.Code, rec.Body.String())
	}
	if resp, err := http.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("the HTTP endpoint still answers after Stop (%d)", resp.StatusCode)
	}

	// An agent rebuilt on the same client serves again (its metrics registered afresh), and an
	// agent stopped before Start stops at once.
	again, err := New(c, settings, logger)
	if err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, "http://"+again.HTTPAddr()+"/metrics")
	if fams["secure_agent_active_leases"] == nil || fams["temporal_request_total"] == nil {
		t.Errorf("rebuilt agent's /metrics lacks its own or the SDK's metrics: %v", names(fams))
	}
	done := make(chan struct{})
	go func() { again.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop before Start hangs")
	}
	t.Logf("total %s", time.Since(begin).Round(time.Millisecond))
}

func makeDB(t *testing.T, path string) {
	t.Helper()
	d, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, stmt := range []string{
		`CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)`,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total NUMERIC(12,2))`,
	} {
		if _, err := d.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

func expectStatus(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Errorf("GET %s = %d %q, want %d", url, resp.StatusCode, body, want)
	}
	if strings.Count(strings.TrimSpace(string(body)), "\n") != 0 {
		t.Errorf("GET %s body is not one line: %q", url, body)
	}
	return string(body)
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

func names(fams map[string]*dto.MetricFamily) []string {
	var out []string
	for n := range fams {
		out = append(out, n)
	}
	return out
}

// value sums the samples of name whose labels include want: counter and gauge values, histogram
// sample counts.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

func TestSDKTagsAreBounded(t *testing.T) {
	rec := &tagRecorder{}
	h := &sdkHandler{inner: rec, sharedQueue: "acme-queue"}
	h.WithTags(map[string]string{
		"namespace": "acme-prod", "task_queue": "acme-queue/lease/db-host-7-abcdef", "workflow_type": "EvilWorkflow",
		"activity_type": "ExtractSchemas", "operation": "PollActivityTaskQueue", "worker_type": "ActivityWorker",
		"workflow_id": "wf-secret", "status_code": "has space/slash",
	})
	want := map[string]string{"task_queue": "lease", "workflow_type": "other", "activity_type": "ExtractSchemas",
		"operation": "PollActivityTaskQueue", "worker_type": "ActivityWorker", "status_code": "other"}
	if fmt.Sprint(rec.tags) != fmt.Sprint(want) {
		t.Errorf("tags = %v, want %v", rec.tags, want)
	}
	h.WithTags(map[string]string{"task_queue": "acme-queue"})
	if rec.tags["task_queue"] != "shared" {
		t.Errorf("shared queue tag = %q", rec.tags["task_queue"])
	}
	h.WithTags(map[string]string{"task_queue": "db-host-7:1234-abcd-sticky"})
	if rec.tags["task_queue"] != "other" {
		t.Errorf("sticky queue tag = %q", rec.tags["task_queue"])
	}
}

type tagRecorder struct {
	client.MetricsHandler
	tags map[string]string
}

func (r *tagRecorder) WithTags(tags map[string]string) client.MetricsHandler {
	r.tags = tags
	return r
}

// TestMetricLabelVocabularyCoversRegistrations keeps the label allow-lists in step with Register.
func TestMetricLabelVocabularyCoversRegistrations(t *testing.T) {
	reg := &nameRecorder{}
	Register(reg, reg, reg, nil)
	if len(reg.activities) == 0 || len(reg.workflows) == 0 {
		t.Fatal("nothing registered")
	}
	for _, n := range reg.activities {
		if !knownActivities[n] {
			t.Errorf("activity %s is registered but its metrics would say activity_type=other", n)
		}
	}
	for _, n := range reg.workflows {
		if !knownWorkflows[n] {
			t.Errorf("workflow %s is registered but its metrics would say workflow_type=other", n)
		}
	}
}

type nameRecorder struct {
	sdkworker.Registry
	activities, workflows []string
}

func (r *nameRecorder) RegisterWorkflowWithOptions(_ any, o workflow.RegisterOptions) {
	r.workflows = append(r.workflows, o.Name)
}

func (r *nameRecorder) RegisterActivityWithOptions(_ any, o activity.RegisterOptions) {
	r.activities = append(r.activities, o.Name)
}

func TestHTTPAddressValidation(t *testing.T) {
	s := Settings{TaskQueue: "q", OutputDir: "o", LeaseTTL: time.Hour, SecretCacheSize: 1, MaxConcurrentActivities: 1,
		MaxConcurrentWorkflowTasks: 2, LogLevel: "info", LogFormat: "json"}
	for addr, ok := range map[string]bool{"": true, ":9090": true, "127.0.0.1:9090": true, "9090": false, "http://x:1": false} {
		s.HTTPAddress = addr
		if err := s.Validate(); (err == nil) != ok {
			t.Errorf("HTTP_ADDRESS %q: %v", addr, err)
		}
	}
}
