package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// ddlStep is one change to a source's catalog, and what an incremental run after it must find.
type ddlStep struct {
	name string
	sql  []string
	// extracted are schemas the run must read again (at least these; the first schema also
	// carries the Database entity, whose size a DDL change may move); reused must be reused.
	extracted, reused []string
	// removed are lines removed.jsonl.gz must hold (in part: "kind schema.table.name").
	removed []string
	// addedSchemas and removedSchemas are the schema changes the run must report.
	addedSchemas, removedSchemas []string
}

// incrementalEngine is one real engine with a catalog of a few schemas, and the DDL steps to
// apply to it in order.
type incrementalEngine struct {
	input func(incremental string) workflows.Input
	exec  func(t *testing.T, stmt string)
	steps []ddlStep
	// reuses is false for an engine without a cheap fingerprint: every schema is read again.
	reuses bool
}

// TestIncrementalMatchesFullRun changes a real catalog step by step (a column added, dropped,
// retyped; a table renamed; a column renamed under a view in another schema; a type renamed
// under a column in another schema; a schema added and dropped; an index added; a comment
// changed) and after each step runs an incremental extraction and a full one on the real
// Temporal server: every data file of the incremental run must be byte-identical to the full
// run's, the schemas the change did not touch must have been reused, and the removed objects
// must be reported. PostgreSQL, MariaDB and SQLite.
func TestIncrementalMatchesFullRun(t *testing.T) {
	for name, setup := range map[string]func(t *testing.T) incrementalEngine{
		"postgres": postgresIncremental, "mariadb": mariadbIncremental, "sqlite": sqliteIncremental,
	} {
		t.Run(name, func(t *testing.T) {
			eng := setup(t)
			h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_INC_*"} })
			run := func(mode string) workflows.Summary {
				t.Helper()
				var sum workflows.Summary
				if err := h.start(workflows.ExtractionWorkflowName, eng.input(mode)).Get(context.Background(), &sum); err != nil {
					t.Fatalf("%s run: %v", mode, err)
				}
				return sum
			}
			base := run("auto")
			if base.Changes != nil {
				t.Fatalf("the first run of a source compared with something: %+v", base.Changes)
			}
			again := run("auto")
			if c := again.Changes; c == nil || (eng.reuses && c.ExtractedSchemas != 0) || c.RemovedObjects != 0 {
				t.Fatalf("an unchanged catalog: changes %+v", again.Changes)
			}
			sameFiles(t, "unchanged incremental", again, "base", base)
			for _, st := range eng.steps {
				for _, stmt := range st.sql {
					eng.exec(t, stmt)
				}
				inc := run("auto")
				full := run("")
				if !sameFiles(t, st.name+": incremental", inc, "full", full) {
					t.Fatalf("%s: the incremental run's output differs from a full run's", st.name)
				}
				checkChanges(t, st, inc, eng.reuses)
			}
		})
	}
}

// sameFiles compares every data file of two runs byte for byte.
func sameFiles(t *testing.T, nameA string, a workflows.Summary, nameB string, b workflows.Summary) bool {
	t.Helper()
	ma, err := output.ReadManifest(a.OutputDir)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := output.ReadManifest(b.OutputDir)
	if err != nil {
		t.Fatal(err)
	}
	ok := true
	if len(ma.Files) != len(mb.Files) {
		t.Errorf("%s has %d files, %s %d", nameA, len(ma.Files), nameB, len(mb.Files))
		ok = false
	}
	for _, f := range mb.Files {
		x, errA := os.ReadFile(filepath.Join(a.OutputDir, f.Name))
		y, errB := os.ReadFile(filepath.Join(b.OutputDir, f.Name))
		if errA != nil || errB != nil || !bytes.Equal(x, y) {
			ok = false
			la, lb := sortedLines(t, filepath.Join(a.OutputDir, f.Name)), sortedLines(t, filepath.Join(b.OutputDir, f.Name))
			var only []string
			for _, l := range la {
				if !slices.Contains(lb, l) {
					only = append(only, "only in "+nameA+": "+l)
				}
			}
			for _, l := range lb {
				if !slices.Contains(la, l) {
					only = append(only, "only in "+nameB+": "+l)
				}
			}
			t.Errorf("%s: %s and %s differ (%v %v):\n%s", f.Name, nameA, nameB, errA, errB, strings.Join(only, "\n"))
		}
	}
	return ok
}

func checkChanges(t *testing.T, st ddlStep, sum workflows.Summary, reuses bool) {
	t.Helper()
	m, err := output.ReadManifest(sum.OutputDir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Changes == nil {
		t.Fatalf("%s: no changes reported", st.name)
	}
	reused := map[string]bool{}
	for _, s := range m.Schemas {
		reused[s.Name] = s.Reused
	}
	for _, s := range st.extracted {
		if reused[s] {
			t.Errorf("%s: schema %s was reused, though the change touched it", st.name, s)
		}
	}
	if reuses {
		for _, s := range st.reused {
			if r, ok := reused[s]; !ok || !r {
				t.Errorf("%s: schema %s was extracted again, though the change did not touch it", st.name, s)
			}
		}
	}
	if !slices.Equal(m.Changes.Added, orEmpty(st.addedSchemas)) || !slices.Equal(m.Changes.Removed, orEmpty(st.removedSchemas)) {
		t.Errorf("%s: schemas added %v removed %v, want %v and %v", st.name, m.Changes.Added, m.Changes.Removed, st.addedSchemas, st.removedSchemas)
	}
	var removed []string
	for _, l := range sortedLines(t, filepath.Join(sum.OutputDir, output.RemovedName)) {
		if l != "" {
			removed = append(removed, l)
		}
	}
	for _, want := range st.removed {
		kind, name, _ := strings.Cut(want, " ")
		parts := strings.Split(name, ".")
		found := false
		for _, l := range removed {
			if strings.Contains(l, `"kind":"`+kind+`"`) && strings.Contains(l, `"schema":"`+parts[0]+`"`) && strings.Contains(l, `"name":"`+parts[len(parts)-1]+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %s is not among the removed objects:\n%s", st.name, want, strings.Join(removed, "\n"))
		}
	}
	if int64(len(removed)) != m.Changes.RemovedObjects || sum.Changes == nil || sum.Changes.RemovedObjects != m.Changes.RemovedObjects {
		t.Errorf("%s: %d removed lines, manifest says %d, summary %+v", st.name, len(removed), m.Changes.RemovedObjects, sum.Changes)
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// commonSteps are the DDL steps every engine runs, in its own dialect (a schema is a database
// in MariaDB; SQLite has one schema, main).
func postgresIncremental(t *testing.T) incrementalEngine {
	password := "pw-" + randomHex(t)
	pg := newPGDatabase(t, "inc", password)
	db, user, conn, u := pg.name, pg.user, pg.conn, pg.url
	mustExec(t, conn, `
		CREATE SCHEMA a; CREATE SCHEMA b; CREATE SCHEMA c; DROP SCHEMA public;
		CREATE TYPE a.mood AS ENUM ('ok', 'sad');
		CREATE TABLE a.t (id int PRIMARY KEY, x text, m a.mood) WITH (autovacuum_enabled = false);
		CREATE TABLE b.u (id int PRIMARY KEY, t_id int REFERENCES a.t(id)) WITH (autovacuum_enabled = false);
		CREATE VIEW b.v AS SELECT t.id, t.x AS label FROM a.t AS t JOIN b.u ON u.t_id = t.id;
		CREATE TABLE c.t1 (id int PRIMARY KEY, name text, m a.mood) WITH (autovacuum_enabled = false);
		CREATE TABLE c.t2 (id int PRIMARY KEY) WITH (autovacuum_enabled = false);`)
	mustExec(t, conn, "VACUUM ANALYZE")
	settle := "VACUUM ANALYZE"
	return incrementalEngine{
		reuses: true,
		input: func(mode string) workflows.Input {
			t.Setenv("E2E_INC_PG_PASSWORD", password)
			return workflows.Input{
				Connector: "postgres", Source: "inc-pg",
				Connection: map[string]workflows.FieldValue{
					"host": workflows.FieldValue(u.Hostname()), "port": workflows.FieldValue(u.Port()),
					"database": workflows.FieldValue(db), "username": workflows.FieldValue(user),
					"password": "E2E_INC_PG_PASSWORD", "sslmode": "disable",
				},
				SecretStore: &stores.Spec{Type: stores.TypeEnv},
				Options:     workflows.RunOptions{SchemasPerBatch: 1, Incremental: mode},
			}
		},
		exec: func(t *testing.T, stmt string) { mustExec(t, conn, stmt); mustExec(t, conn, settle) },
		steps: []ddlStep{
			{name: "column added", sql: []string{`ALTER TABLE c.t1 ADD COLUMN note text`}, extracted: []string{"c"}, reused: []string{"b"}},
			{name: "column dropped", sql: []string{`ALTER TABLE c.t1 DROP COLUMN note`}, extracted: []string{"c"}, reused: []string{"b"},
				removed: []string{"columns c.t1.note"}},
			{name: "column retyped", sql: []string{`ALTER TABLE c.t1 ALTER COLUMN name TYPE varchar(50)`}, extracted: []string{"c"}, reused: []string{"b"}},
			{name: "index added", sql: []string{`CREATE INDEX t1_name ON c.t1 (name)`}, extracted: []string{"c"}, reused: []string{"b"}},
			{name: "comment changed", sql: []string{`COMMENT ON TABLE c.t2 IS 'second'`}, extracted: []string{"c"}, reused: []string{"b"}},
			{name: "table renamed under a view and a key of another schema", sql: []string{`ALTER TABLE a.t RENAME TO t_renamed`},
				extracted: []string{"a", "b"}, reused: []string{"c"}, removed: []string{"tables a.t"}},
			{name: "column renamed under a view of another schema", sql: []string{`ALTER TABLE a.t_renamed RENAME COLUMN x TO y`},
				extracted: []string{"a", "b"}, reused: []string{"c"}, removed: []string{"columns a.t_renamed.x"}},
			{name: "type renamed under a column of another schema", sql: []string{`ALTER TYPE a.mood RENAME TO feeling`},
				extracted: []string{"a", "c"}, reused: []string{"b"}, removed: []string{"types a.mood"}},
			{name: "schema added", sql: []string{`CREATE SCHEMA d; CREATE TABLE d.x (id int) WITH (autovacuum_enabled = false)`},
				extracted: []string{"d"}, reused: []string{"b", "c"}, addedSchemas: []string{"d"}},
			{name: "schema dropped", sql: []string{`DROP SCHEMA d CASCADE`}, reused: []string{"b", "c"},
				removedSchemas: []string{"d"}, removed: []string{"schemas d.d"}},
		},
	}
}

func mariadbIncremental(t *testing.T) incrementalEngine {
	dsn := os.Getenv("SECURE_AGENT_TEST_MYSQL_ADMIN_DSN")
	if dsn == "" {
		dsn = "root:secure-agent-test@tcp(127.0.0.1:53306)/?multiStatements=true&parseTime=true"
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MultiStatements = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Ping(); err != nil {
		testenv.RequireOrSkip(t, "MariaDB is not reachable: run scripts/services ("+err.Error()+")")
	}
	suffix := randomHex(t)[:8]
	a, b, c, d := "inca_"+suffix, "incb_"+suffix, "incc_"+suffix, "incd_"+suffix
	user, password := "inc_"+suffix, "pw-"+randomHex(t)
	exec := func(t *testing.T, stmt string) {
		t.Helper()
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%.80s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		for _, s := range []string{a, b, c, d} {
			_, _ = db.Exec("DROP DATABASE IF EXISTS " + s)
		}
		_, _ = db.Exec("DROP USER IF EXISTS '" + user + "'@'%'")
	})
	exec(t, fmt.Sprintf(`CREATE DATABASE %[1]s; CREATE DATABASE %[2]s; CREATE DATABASE %[3]s;
		CREATE TABLE %[1]s.t (id int PRIMARY KEY, x text);
		CREATE TABLE %[2]s.u (id int PRIMARY KEY, t_id int, FOREIGN KEY (t_id) REFERENCES %[1]s.t (id));
		CREATE VIEW %[2]s.v AS SELECT t.id, t.x AS label FROM %[1]s.t AS t JOIN %[2]s.u AS u ON u.t_id = t.id;
		CREATE TABLE %[3]s.t1 (id int PRIMARY KEY, name text);
		CREATE TABLE %[3]s.t2 (id int PRIMARY KEY);
		CREATE USER '%[4]s'@'%%' IDENTIFIED BY '%[5]s';
		GRANT SELECT, SHOW VIEW, TRIGGER ON *.* TO '%[4]s'@'%%'`, a, b, c, user, password))
	return incrementalEngine{
		input: func(mode string) workflows.Input {
			t.Setenv("E2E_INC_MYSQL_PASSWORD", password)
			return workflows.Input{
				Connector: "mysql", Source: "inc-mariadb",
				Connection: map[string]workflows.FieldValue{
					"host": "127.0.0.1", "port": workflows.FieldValue(strings.TrimPrefix(cfg.Addr, "127.0.0.1:")),
					"username": workflows.FieldValue(user), "password": "E2E_INC_MYSQL_PASSWORD", "tls": "disable",
				},
				SecretStore: &stores.Spec{Type: stores.TypeEnv},
				Filters:     connectors.Filters{IncludeSchemas: []string{"inc?_" + suffix}},
				Options:     workflows.RunOptions{SchemasPerBatch: 1, Incremental: mode},
			}
		},
		exec: exec,
		steps: []ddlStep{
			{name: "column added", sql: []string{`ALTER TABLE ` + c + `.t1 ADD COLUMN note text`}, extracted: []string{c}, reused: []string{b}},
			{name: "column dropped", sql: []string{`ALTER TABLE ` + c + `.t1 DROP COLUMN note`}, extracted: []string{c}, reused: []string{b},
				removed: []string{"columns " + c + ".t1.note"}},
			{name: "column retyped", sql: []string{`ALTER TABLE ` + c + `.t1 MODIFY name varchar(50)`}, extracted: []string{c}, reused: []string{b}},
			{name: "index added", sql: []string{`CREATE INDEX t1_name ON ` + c + `.t1 (name)`}, extracted: []string{c}, reused: []string{b}},
			{name: "comment changed", sql: []string{`ALTER TABLE ` + c + `.t2 COMMENT 'second'`}, extracted: []string{c}, reused: []string{b}},
			{name: "table renamed under a view and a key of another schema", sql: []string{`RENAME TABLE ` + a + `.t TO ` + a + `.t_renamed`},
				extracted: []string{a, b}, reused: []string{c}, removed: []string{"tables " + a + ".t"}},
			{name: "schema added", sql: []string{`CREATE DATABASE ` + d + `; CREATE TABLE ` + d + `.x (id int)`},
				extracted: []string{d}, reused: []string{b, c}, addedSchemas: []string{d}},
			{name: "schema dropped", sql: []string{`DROP DATABASE ` + d}, reused: []string{b, c},
				removedSchemas: []string{d}, removed: []string{"schemas " + d + "." + d}},
		},
	}
}

func sqliteIncremental(t *testing.T) incrementalEngine {
	path := filepath.Join(t.TempDir(), "inc.db")
	makeShop(t, path)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	exec := func(t *testing.T, stmt string) {
		t.Helper()
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%.80s: %v", stmt, err)
		}
	}
	return incrementalEngine{
		reuses: true,
		input: func(mode string) workflows.Input {
			return workflows.Input{
				Connector: "sqlite", Source: "inc-sqlite",
				Connection:  map[string]workflows.FieldValue{"path": workflows.FieldValue(path)},
				SecretStore: &stores.Spec{Type: stores.TypeEnv},
				Options:     workflows.RunOptions{Incremental: mode},
			}
		},
		exec: exec,
		steps: []ddlStep{
			{name: "column added", sql: []string{`ALTER TABLE customers ADD COLUMN note TEXT`}, extracted: []string{"main"}},
			{name: "column dropped", sql: []string{`ALTER TABLE customers DROP COLUMN note`}, extracted: []string{"main"},
				removed: []string{"columns main.customers.note"}},
			{name: "index added", sql: []string{`CREATE INDEX customers_name ON customers (name)`}, extracted: []string{"main"}},
			{name: "table renamed", sql: []string{`ALTER TABLE customers RENAME TO clients`}, extracted: []string{"main"},
				removed: []string{"tables main.customers"}},
			{name: "statistics gathered", sql: []string{`ANALYZE`}, extracted: []string{"main"}},
		},
	}
}

// TestIncrementalReuseIsGuarded is the attacker's view of incremental runs, on the real server
// and real PostgreSQL:
//   - output reused from an earlier run is searched for the current run's sensitive values: a
//     password rotated to a string that the earlier output holds (a table comment) makes the
//     schema be extracted again, redacted, and the output equals a full run's;
//   - the search leaves out the source label, which the starter chose: a label equal to the
//     password does not stop reuse, so reuse does not tell a starter whether a guess is right;
//   - runs with another source label, or other filters, never reuse each other's output.
func TestIncrementalReuseIsGuarded(t *testing.T) {
	ctx := context.Background()
	first, rotated := "pw-first-"+randomHex(t), "rotated-canary-"+randomHex(t)
	pg := newPGDatabase(t, "incsec", first)
	db, user, conn, u, admin := pg.name, pg.user, pg.conn, pg.url, pg.admin
	mustExec(t, conn, fmt.Sprintf(`CREATE SCHEMA a; CREATE SCHEMA b; DROP SCHEMA public;
		CREATE TABLE a.t (id int) WITH (autovacuum_enabled = false);
		CREATE TABLE b.t (id int) WITH (autovacuum_enabled = false);
		COMMENT ON TABLE b.t IS 'legacy loader, see %s';
		CREATE TABLE b.%q (id int) WITH (autovacuum_enabled = false);`, rotated, rotated))
	mustExec(t, conn, "VACUUM ANALYZE")

	t.Setenv("E2E_INC_SEC_PASSWORD", first)
	h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_INC_*"} })
	input := func(source, mode string) workflows.Input {
		return workflows.Input{
			Connector: "postgres", Source: source,
			Connection: map[string]workflows.FieldValue{
				"host": workflows.FieldValue(u.Hostname()), "port": workflows.FieldValue(u.Port()),
				"database": workflows.FieldValue(db), "username": workflows.FieldValue(user),
				"password": "E2E_INC_SEC_PASSWORD", "sslmode": "disable",
			},
			SecretStore: &stores.Spec{Type: stores.TypeEnv},
			Options:     workflows.RunOptions{Incremental: mode},
		}
	}
	run := func(in workflows.Input) workflows.Summary {
		t.Helper()
		var sum workflows.Summary
		if err := h.start(workflows.ExtractionWorkflowName, in).Get(ctx, &sum); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	run(input("sec", "auto"))
	if sum := run(input("sec", "auto")); sum.Changes == nil || sum.Changes.ReusedSchemas != 2 {
		t.Fatalf("unchanged: %+v", sum.Changes)
	}
	// Another label, other filters: their own state, nothing reused.
	if sum := run(input("other", "auto")); sum.Changes != nil {
		t.Fatalf("a run with another source label compared with %+v", sum.Changes.Previous)
	}
	filtered := input("sec", "auto")
	filtered.Filters = connectors.Filters{ExcludeTables: []string{"nothing"}}
	if sum := run(filtered); sum.Changes != nil {
		t.Fatalf("a run with other filters compared with %+v", sum.Changes.Previous)
	}

	// The password becomes the text the reused comment holds. A new agent process, so that no
	// memory of the earlier run's values spares the search.
	mustExec(t, admin, fmt.Sprintf(`ALTER ROLE %s PASSWORD '%s'`, user, rotated))
	t.Setenv("E2E_INC_SEC_PASSWORD", rotated)
	// The table named like the new password goes away: removed.jsonl.gz, which Finalize writes
	// from the earlier output, must name it redacted, like the entities.
	mustExec(t, conn, fmt.Sprintf(`DROP TABLE b.%q`, rotated))
	h.restartAgent()
	inc := run(input("sec", "auto"))
	m, err := output.ReadManifest(inc.OutputDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Schemas {
		if s.Reused != (s.Name == "a") {
			t.Errorf("after the rotation, schema %s reused %v (b's comment holds the new password: it must be extracted again)", s.Name, s.Reused)
		}
	}
	if inc.Redactions == 0 {
		t.Error("the new password in b's comment was not redacted")
	}
	scanRunForCanary(t, inc.OutputDir, rotated)
	full := run(input("sec", ""))
	if !sameFiles(t, "incremental after rotation", inc, "full", full) {
		t.Fatal("the incremental run's output differs from a full run's")
	}

	// A label equal to the password: the agent writes it as given (it is the starter's text),
	// and reuse goes on as if it were any other label.
	h.restartAgent()
	run(input(rotated, "auto"))
	h.restartAgent()
	if sum := run(input(rotated, "auto")); sum.Changes == nil || sum.Changes.ReusedSchemas != 2 {
		t.Fatalf("a label equal to the password changed what was reused: %+v", sum.Changes)
	}
}

// scanRunForCanary fails when any file of a run directory holds canary, decompressed or not,
// outside the source label ("source" fields).
func scanRunForCanary(t *testing.T, dir, canary string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var text []string
		if strings.HasSuffix(e.Name(), ".gz") {
			text = sortedLines(t, p)
		} else {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			text = []string{string(b)}
		}
		for _, l := range text {
			if strings.Contains(l, canary) {
				t.Errorf("%s holds the canary: %.200s", e.Name(), l)
			}
		}
	}
}
