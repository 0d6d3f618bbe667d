// Package e2e runs the agent end to end on a real in-process Temporal server (the server's
// temporaltest package): real workers, real stores on loopback, real SQLite, the real temporal
// CLI where a test says so.
package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"
	_ "modernc.org/sqlite"

	"github.com/secure-agent/secure-agent/internal/devserver"
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/worker"
)

// server is one Temporal server shared by every test of the package (each test uses its own
// task queue).
var server *temporaltest.TestServer

func TestMain(m *testing.M) {
	// The dev server's dynamic configuration: without it, dispatch waits on the one history
	// shard's transfer-queue pacing (see devserver.StaticConfig).
	server = temporaltest.NewServer(temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(devserver.StaticConfig())))
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

// harness is one agent on the shared server, logging at debug level into logs.
type harness struct {
	t         *testing.T
	client    client.Client
	agent     *worker.Agent
	settings  worker.Settings
	logs      *testenv.SyncBuffer
	logger    *slog.Logger
	taskQueue string
}

func newHarness(t *testing.T, mutate func(*worker.Settings)) *harness {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	settings := worker.Settings{
		TaskQueue: fmt.Sprintf("e2e-%s-%d", t.Name(), time.Now().UnixNano()),
		OutputDir: filepath.Join(t.TempDir(), "out"), LeaseTTL: time.Hour, SecretCacheSize: 16,
		MaxConcurrentActivities: 4, MaxConcurrentWorkflowTasks: 4, StopTimeout: 5 * time.Second,
		LogLevel: "debug", LogFormat: "json", AWSSessionName: "secure-agent",
		// The tests' SQLite files live in their own temporary directories.
		SQLiteDirs: []string{os.TempDir()},
	}
	if mutate != nil {
		mutate(&settings)
	}
	c, err := worker.DialWith(context.Background(), settings, client.Options{HostPort: server.GetFrontendHostPort(), Namespace: server.GetDefaultNamespace()}, logger)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := worker.New(c, settings, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, client: c, agent: agent, settings: settings, logs: logs, taskQueue: settings.TaskQueue, logger: logger}
	t.Cleanup(func() {
		h.agent.Stop()
		_ = worker.Close(c)
	})
	return h
}

// restartAgent stops the agent (gracefully: running activities see the worker stop) and starts
// a new one on the same task queue and output directory, with a new lease queue.
func (h *harness) restartAgent() {
	h.t.Helper()
	h.agent.Stop()
	agent, err := worker.New(h.client, h.settings, h.logger)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.agent = agent
}

// start starts a workflow on the harness's task queue.
func (h *harness) start(workflowType string, input any) client.WorkflowRun {
	h.t.Helper()
	run, err := h.client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID:        fmt.Sprintf("%s-%d", h.t.Name(), time.Now().UnixNano()),
		TaskQueue: h.taskQueue, WorkflowExecutionTimeout: 2 * time.Minute,
	}, workflowType, input)
	if err != nil {
		h.t.Fatal(err)
	}
	return run
}

// makeShop creates a small SQLite database and returns how many tables, views and columns it has.
func makeShop(t *testing.T, path string) (tables, columns int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)`,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total NUMERIC(12,2))`,
		`CREATE TABLE "line items" ("order" INTEGER, line INTEGER, sku TEXT, PRIMARY KEY ("order", line))`,
		`CREATE VIEW totals AS SELECT customer_id, SUM(total) AS spent FROM orders GROUP BY customer_id`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	// Independent count: everything in sqlite_schema that is a table or view, and their columns.
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE type IN ('table','view') AND name NOT LIKE 'sqlite_%'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema m, pragma_table_info(m.name) WHERE m.type IN ('table','view') AND m.name NOT LIKE 'sqlite_%'`).Scan(&columns); err != nil {
		t.Fatal(err)
	}
	return tables, columns
}
