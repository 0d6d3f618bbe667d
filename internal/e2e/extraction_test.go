package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

func envInput(variable string) workflows.Input {
	return workflows.Input{
		Connector:   "sqlite",
		Connection:  map[string]workflows.FieldValue{"path": workflows.FieldValue(variable)},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
	}
}

func TestExtractionOnRealServer(t *testing.T) {
	db := filepath.Join(t.TempDir(), "shop.db")
	tables, columns := makeShop(t, db)
	t.Setenv("E2E_SHOP_DB", db)
	h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_*"} })

	run := h.start(workflows.ExtractionWorkflowName, envInput("E2E_SHOP_DB"))
	var sum workflows.Summary
	if err := run.Get(context.Background(), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Counts["tables"] != int64(tables) || sum.Counts["columns"] != int64(columns) {
		t.Fatalf("counts = %v, want %d tables and %d columns (independent catalog query)", sum.Counts, tables, columns)
	}
	want := filepath.Join(h.settings.OutputDir, "sqlite", run.GetID(), run.GetRunID())
	if sum.OutputDir != want {
		t.Errorf("output dir = %s, want %s", sum.OutputDir, want)
	}
	var m output.Manifest
	data, err := os.ReadFile(sum.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.WorkflowID != run.GetID() || m.RunID != run.GetRunID() || m.Counts["tables"] != int64(tables) {
		t.Errorf("manifest = %+v", m)
	}
	if n := h.agent.ActiveLeases(); n != 0 {
		t.Errorf("%d leases held after the run", n)
	}
	// The lease-holding activities ran on the agent's own queue, not the shared one.
	hist := history(t, h.client, run)
	for _, ev := range hist.Events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			onShared := a.GetTaskQueue().GetName() == h.taskQueue
			if (a.GetActivityType().GetName() == "ResolveSecrets") != onShared {
				t.Errorf("%s scheduled on %s", a.GetActivityType().GetName(), a.GetTaskQueue().GetName())
			}
		}
	}
}

func TestInvalidInputOnRealServer(t *testing.T) {
	h := newHarness(t, nil)
	run := h.start(workflows.ExtractionWorkflowName, map[string]any{"connector": "oracle", "connection": map[string]any{}})
	err := run.Get(context.Background(), nil)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != "InvalidInput" || !strings.Contains(ae.Error(), `connector "oracle" is not supported`) {
		t.Fatalf("err = %v", err)
	}
	// Failed at once: no activity was ever scheduled.
	for _, ev := range history(t, h.client, run).Events {
		if ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
			t.Fatal("an activity was scheduled for invalid input")
		}
	}
}

func TestStartWithTemporalCLI(t *testing.T) {
	cli := testenv.TemporalCLI(t)
	db := filepath.Join(t.TempDir(), "shop.db")
	tables, _ := makeShop(t, db)
	t.Setenv("E2E_CLI_DB", db)
	h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_CLI_*"} })

	id := fmt.Sprintf("cli-%d", time.Now().UnixNano())
	input := `{"connector": "sqlite", "connection": {"path": "E2E_CLI_DB"}, "secretStore": {"type": "env"}}`
	cmd := exec.Command(cli, "workflow", "start",
		"--address", server.GetFrontendHostPort(), "--namespace", server.GetDefaultNamespace(),
		"--type", workflows.ExtractionWorkflowName, "--task-queue", h.taskQueue,
		"--workflow-id", id, "--input", input)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow start: %v\n%s", err, out)
	}
	var sum workflows.Summary
	if err := h.client.GetWorkflow(context.Background(), id, "").Get(context.Background(), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Counts["tables"] != int64(tables) {
		t.Fatalf("counts = %v", sum.Counts)
	}
	// The CLI reads the result too.
	out, err = exec.Command(cli, "workflow", "result", "--address", server.GetFrontendHostPort(),
		"--namespace", server.GetDefaultNamespace(), "--workflow-id", id, "--output", "json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"tables"`) {
		t.Fatalf("temporal workflow result: %v\n%s", err, out)
	}
}

// TestCancellationReleasesLease cancels a run while its Preflight waits on a locked database,
// then checks that ReleaseCredentials ran and the worker holds no lease.
func TestCancellationReleasesLease(t *testing.T) {
	db := filepath.Join(t.TempDir(), "shop.db")
	makeShop(t, db)
	t.Setenv("E2E_LOCKED_DB", db)
	h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_LOCKED_*"} })

	unlock := lockExclusively(t, db)
	defer unlock()
	run := h.start(workflows.ExtractionWorkflowName, envInput("E2E_LOCKED_DB"))
	waitPhase(t, h, run.GetID(), workflows.PhasePreflight)
	if err := h.client.CancelWorkflow(context.Background(), run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	err := run.Get(context.Background(), nil)
	var ce *temporal.CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want cancelled", err)
	}
	released := false
	for _, ev := range history(t, h.client, run).Events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "ReleaseCredentials" {
			released = true
		}
	}
	if !released {
		t.Fatal("ReleaseCredentials was not scheduled after cancellation")
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.agent.ActiveLeases() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d leases still held after cancellation", h.agent.ActiveLeases())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockExclusively holds an exclusive lock on a SQLite file, so readers wait.
func lockExclusively(t *testing.T, path string) func() {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

func waitPhase(t *testing.T, h *harness, id, phase string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := h.client.QueryWorkflow(context.Background(), id, "", workflows.QueryProgress); err == nil {
			var p workflows.Progress
			if v.Get(&p) == nil && p.Phase == phase {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("workflow %s never reached phase %s", id, phase)
}

// customStore serves secrets over HTTP on loopback, the way a customer's own store would.
func customStore(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

func customInput(storeURL, secretName string) workflows.Input {
	return workflows.Input{
		Connector:  "sqlite",
		Connection: map[string]workflows.FieldValue{"path": "db_path"},
		SecretStore: &stores.Spec{Type: stores.TypeCustom,
			Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q, "secret_name": %q}`, storeURL, secretName))},
	}
}
