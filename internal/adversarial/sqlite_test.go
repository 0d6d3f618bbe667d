package adversarial

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/workflows"
)

// makeSQLite creates a small SQLite database at path and returns how many tables and views, and
// columns, it has.
func makeSQLite(t *testing.T, path string) (tables, columns int64) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)`,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total NUMERIC(12,2))`,
		`CREATE VIEW totals AS SELECT customer_id, SUM(total) AS spent FROM orders GROUP BY customer_id`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE type IN ('table','view') AND name NOT LIKE 'sqlite_%'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema m, pragma_table_info(m.name) WHERE m.type IN ('table','view') AND m.name NOT LIKE 'sqlite_%'`).Scan(&columns); err != nil {
		t.Fatal(err)
	}
	return tables, columns
}

// sqliteInput is an extraction of the SQLite file at path. The path is a literal: SQLite has no
// sensitive field, so no secret store is needed, and anyone who can start a workflow picks it.
func sqliteInput(path string) workflows.Input {
	return workflows.Input{Connector: "sqlite", Connection: map[string]workflows.FieldValue{"path": workflows.FieldValue(path)}}
}

// TestSQLitePathIsConfined (class 6): the SQLite path used to name any file the agent could read
// (/proc/self/environ extracted "successfully", with the agent's environment in the output), and
// the different answers for a missing file, a directory, a device, a non-database and a database
// mapped the agent's file system. Now the path must lie in a directory the operator allows
// (SECURE_AGENT_SQLITE_DIRS): every path outside, whatever is there, including ".." out of the
// allowed directory and a symbolic link inside it that points out, fails PolicyDenied with the
// same message byte for byte, and with no directory allowed so does every path. The database
// inside the allowed directory extracts. Nothing of the agent's environment is anywhere.
func TestSQLitePathIsConfined(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	envCanary := canary(t, "environ")

	allowed, elsewhere := t.TempDir(), t.TempDir()
	good := filepath.Join(allowed, "shop.db")
	tables, columns := makeSQLite(t, good)
	outside := filepath.Join(elsewhere, "outside.db")
	makeSQLite(t, outside)
	notDB := filepath.Join(elsewhere, "notes.txt")
	if err := os.WriteFile(notDB, []byte("not a database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(allowed, "link.db")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	// allowed/../<elsewhere's name>/outside.db: the same file, written through the allowed
	// directory (both temporary directories have the same parent).
	dotdot := allowed + "/../" + filepath.Base(elsewhere) + "/outside.db"
	if _, err := os.Stat(dotdot); err != nil {
		t.Fatalf("the .. path does not reach the outside database: %v", err)
	}

	env := map[string]string{"ADV_ENV_CANARY": envCanary}
	confined := startAgent(t, server, proctest.AgentOpts{Env: map[string]string{
		"ADV_ENV_CANARY": envCanary, "SECURE_AGENT_SQLITE_DIRS": allowed}})
	unconfigured := startAgent(t, server, proctest.AgentOpts{Env: env})

	var want string
	refused := func(a *proctest.Agent, what, path string) {
		t.Helper()
		ae := a.ExtractFails(sqliteInput(path))
		if ae.Type() != "PolicyDenied" {
			t.Errorf("%s: %s %s, want PolicyDenied", what, ae.Type(), ae.Message())
		}
		if want == "" {
			want = ae.Message()
			return
		}
		if ae.Message() != want {
			t.Errorf("%s: the refusal differs from the others, so it tells what is there:\n%s\nwant\n%s", what, ae.Message(), want)
		}
	}
	for _, tc := range []struct{ what, path string }{
		{"the agent's environment", "/proc/self/environ"},
		{"a missing file", filepath.Join(elsewhere, "missing.db")},
		{"a directory", elsewhere},
		{"a device", "/dev/null"},
		{"a file that is not a database", notDB},
		{"a database in another directory", outside},
		{"a path that leaves the allowed directory with ..", dotdot},
		{"a symbolic link in the allowed directory to the outside database", link},
		{"a relative path", "shop.db"},
	} {
		refused(confined, tc.what, tc.path)
	}
	refused(unconfigured, "no SQLite directory allowed, the good database", good)
	refused(unconfigured, "no SQLite directory allowed, the agent's environment", "/proc/self/environ")

	sum := confined.Succeeds(confined.Start(workflows.ExtractionWorkflowName, sqliteInput(good), 0))
	if sum.Counts["tables"] != tables || sum.Counts["columns"] != columns {
		t.Errorf("the database in the allowed directory: counts %v, want %d tables and %d columns", sum.Counts, tables, columns)
	}

	confined.AssertNowhere(nil, envCanary)
	unconfigured.AssertNowhere(nil, envCanary)
}
