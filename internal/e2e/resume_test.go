package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// manySchemas creates a database with n schemas of tables tables each, and a read-only login.
func manySchemas(t *testing.T, n, tables int) (db, user, password string) {
	t.Helper()
	password = "pw-" + randomHex(t)
	pg := newPGDatabase(t, "resume", password)
	db, user = pg.name, pg.user
	conn := pg.conn
	var b strings.Builder
	for s := range n {
		fmt.Fprintf(&b, "CREATE SCHEMA s%02d; GRANT USAGE ON SCHEMA s%02d TO %s;\n", s, s, user)
		for tb := range tables {
			fmt.Fprintf(&b, "CREATE TABLE s%02d.t%03d (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2) DEFAULT 0, created timestamptz, parent bigint REFERENCES s%02d.t%03d(id)) WITH (autovacuum_enabled = false);\n", s, tb, s, tb)
			fmt.Fprintf(&b, "CREATE INDEX ON s%02d.t%03d (name, created);\nCOMMENT ON TABLE s%02d.t%03d IS 'table %d of schema %d';\n", s, tb, s, tb, tb, s)
		}
	}
	mustExec(t, conn, b.String())
	// Settle the catalog before anyone reads it: statistics and sizes (row estimates, relpages,
	// the database's size) must not change between the runs a test compares, so autovacuum is
	// off for these tables and one VACUUM ANALYZE sets what it would have set later.
	mustExec(t, conn, "VACUUM ANALYZE")
	mustExec(t, conn, "CHECKPOINT")
	return db, user, password
}

// pgDatabase is a database of the test PostgreSQL made for one test, with a login role of its
// own; both are dropped when the test ends.
type pgDatabase struct {
	name, user string
	// conn is the administrator's connection to the database, url its address.
	conn *pgx.Conn
	url  *url.URL
	// admin is the administrator's connection to the server.
	admin *pgx.Conn
}

// newPGDatabase creates a database named prefix_<random>, and a role that logs in with password.
func newPGDatabase(t *testing.T, prefix, password string) *pgDatabase {
	t.Helper()
	admin, u := testenv.PGAdmin(t)
	ctx := context.Background()
	suffix := randomHex(t)[:8]
	d := &pgDatabase{name: prefix + "_" + suffix, user: prefix + "_reader_" + suffix, admin: admin}
	mustExec(t, admin, fmt.Sprintf(`CREATE DATABASE %s`, d.name))
	mustExec(t, admin, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, d.user, password))
	t.Cleanup(func() {
		_, _ = admin.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, d.name))
		_, _ = admin.Exec(ctx, fmt.Sprintf(`DROP ROLE IF EXISTS %s`, d.user))
	})
	dbURL := *u
	dbURL.Path = "/" + d.name
	d.url = &dbURL
	conn, err := pgx.Connect(ctx, dbURL.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	d.conn = conn
	return d
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%.80s...: %v", sql, err)
	}
}

// TestExtractionResumesAfterWorkerStops stops the agent in the middle of an extraction, starts a
// new one, and checks that the run completes with output identical, line for line after
// sorting, to a clean run's: nothing lost, nothing duplicated.
func TestExtractionResumesAfterWorkerStops(t *testing.T) {
	db, user, password := manySchemas(t, 24, 15)
	_, admin := testenv.PGAdmin(t)
	t.Setenv("E2E_RESUME_PG_PASSWORD", password)
	h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_RESUME_*"} })
	in := workflows.Input{
		Connector: "postgres",
		Connection: map[string]workflows.FieldValue{
			"host": workflows.FieldValue(admin.Hostname()), "port": workflows.FieldValue(admin.Port()),
			"database": workflows.FieldValue(db), "username": workflows.FieldValue(user),
			"password": "E2E_RESUME_PG_PASSWORD", "sslmode": "disable",
		},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
		Options:     workflows.RunOptions{SchemasPerBatch: 2, MaxConcurrentBatches: 1},
	}

	interrupted := h.start(workflows.ExtractionWorkflowName, in)
	waitSchemasDone(t, h, interrupted.GetID(), 4)
	h.restartAgent() // graceful stop mid-extraction: its leases die with it; then a new worker
	var sumA workflows.Summary
	if err := interrupted.Get(context.Background(), &sumA); err != nil {
		t.Fatal(err)
	}
	if sumA.LeaseRenewals < 1 {
		t.Fatalf("the interrupted run never renewed its lease (renewals %d): the stop came too late to test anything", sumA.LeaseRenewals)
	}

	clean := h.start(workflows.ExtractionWorkflowName, in)
	var sumB workflows.Summary
	if err := clean.Get(context.Background(), &sumB); err != nil {
		t.Fatal(err)
	}
	if sumB.Counts["tables"] != 24*15 || sumB.Counts["schemas"] != 24+1 { // and public
		t.Fatalf("clean run counts = %v", sumB.Counts)
	}
	sameOutput(t, "interrupted", sumA, "clean", sumB)
	m, err := output.ReadManifest(sumA.OutputDir)
	if err != nil || m.Counts["columns"] != sumB.Counts["columns"] {
		t.Fatalf("manifest of the interrupted run: %+v, %v", m, err)
	}
}

// sameOutput checks that two runs wrote the same counts and, line for line after sorting, the
// same output files.
func sameOutput(t *testing.T, nameA string, a workflows.Summary, nameB string, b workflows.Summary) {
	t.Helper()
	for kind, n := range b.Counts {
		if a.Counts[kind] != n {
			t.Errorf("%s: %s run wrote %d, %s run %d", kind, nameA, a.Counts[kind], nameB, n)
		}
		la, lb := sortedLines(t, filepath.Join(a.OutputDir, kind+".jsonl.gz")), sortedLines(t, filepath.Join(b.OutputDir, kind+".jsonl.gz"))
		if !slices.Equal(la, lb) {
			t.Errorf("%s: %s and %s runs differ after sorting (%d vs %d lines)", kind, nameA, nameB, len(la), len(lb))
		}
	}
}

func waitSchemasDone(t *testing.T, h *harness, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := h.client.QueryWorkflow(context.Background(), id, "", workflows.QueryProgress); err == nil {
			var p workflows.Progress
			if v.Get(&p) == nil && p.SchemasDone >= n {
				if p.SchemasDone >= p.SchemasTotal {
					t.Fatalf("the run finished before it could be interrupted (%d schemas)", p.SchemasTotal)
				}
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("workflow %s never got %d schemas done", id, n)
}

func sortedLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(plain), "\n"), "\n")
	slices.Sort(lines)
	return lines
}
