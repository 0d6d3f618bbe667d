package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
)

// The tests of the Database entity, CHECK constraints and triggers. Expected values come from
// the parts the tests build their DDL from, and names are checked against sqlite_master, read on
// a connection of the test's own.

func (c *collector) databases() []connectors.Database {
	var out []connectors.Database
	for _, e := range c.entities {
		if d, ok := e.(connectors.Database); ok {
			out = append(out, d)
		}
	}
	return out
}

func (c *collector) constraints(table string) []connectors.Constraint {
	var out []connectors.Constraint
	for _, e := range c.entities {
		if k, ok := e.(connectors.Constraint); ok && (table == "" || k.Table == table) {
			out = append(out, k)
		}
	}
	return out
}

func (c *collector) triggers() []connectors.Trigger {
	var out []connectors.Trigger
	for _, e := range c.entities {
		if tr, ok := e.(connectors.Trigger); ok {
			out = append(out, tr)
		}
	}
	return out
}

// catalogRow is one row of sqlite_master.
type catalogRow struct{ typ, name, table, sql string }

// masterRows reads sqlite_master of the file at path on a connection of the test's own, by name.
func masterRows(t *testing.T, path string) map[string]catalogRow {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	rows, err := db.Query(`SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]catalogRow{}
	for rows.Next() {
		var r catalogRow
		if err := rows.Scan(&r.typ, &r.name, &r.table, &r.sql); err != nil {
			t.Fatal(err)
		}
		out[r.name] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openWith opens path with the given literal fields.
func openWith(t *testing.T, path string, literals ...string) *Source {
	t.Helper()
	opts := allow(t, path)
	opts.Literals = literals
	s, err := Open(context.Background(), creds(path), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// triggerCase is one trigger a test creates. Its DDL is built from the parts, and the expected
// entity comes from the same parts.
type triggerCase struct {
	name  string // the trigger's name
	ident string // the name as the DDL writes it
	table string // the catalog name of its table or view
	on    string // the table as the ON clause writes it
	// timing and event as the DDL writes them (timing "" for none); forEach adds FOR EACH ROW.
	timing, event string
	forEach       bool
	when          string // the WHEN expression, "" for none
	body          string // the statements between BEGIN and END
	// wantTiming and wantEvent are what the entity must say.
	wantTiming, wantEvent string
}

// ddl is the CREATE TRIGGER statement, with comments around every part. It starts with
// "CREATE TRIGGER <ident>", as SQLite stores a trigger's statement.
func (c triggerCase) ddl() string {
	var b strings.Builder
	b.WriteString("CREATE TRIGGER " + c.ident + " /* BEGIN */ ")
	if c.timing != "" {
		b.WriteString(c.timing + " -- END;\n\t")
	}
	b.WriteString(c.event + " ON " + c.on)
	if c.forEach {
		b.WriteString(" FOR EACH ROW")
	}
	if c.when != "" {
		b.WriteString("\n\tWHEN /* ( */ " + c.when + " -- BEGIN\n")
	}
	b.WriteString(" BEGIN -- the body\n\t" + c.body + "\n\t/* END; */ END")
	return b.String()
}

var triggerTables = []string{
	`CREATE TABLE "t""x" (a INTEGER PRIMARY KEY, "b c" TEXT, [end] TEXT)`,
	`CREATE TABLE x (v)`,
	`CREATE TABLE log (msg TEXT, at INT, begin INT)`,
	`CREATE VIEW "v w" AS SELECT a, "b c" FROM "t""x"`,
	`CREATE TABLE hidden (h)`,
	`CREATE TRIGGER hidden_ai AFTER INSERT ON hidden BEGIN DELETE FROM hidden; END`,
}

// triggerCases cover every timing and event, UPDATE OF, WHEN, INSTEAD OF on a view, bodies of
// several statements with semicolons, END and BEGIN in strings, a CASE ... END, comments, and
// names quoted every way.
var triggerCases = []triggerCase{
	{name: `t"x before insert`, ident: `"t""x before insert"`, table: `t"x`, on: `"t""x"`, timing: "BEFORE", event: "INSERT", forEach: true,
		body:       `INSERT INTO log (msg, at) VALUES ('END', 1); INSERT INTO log (msg, at) VALUES (';', 2);`,
		wantTiming: "BEFORE", wantEvent: "INSERT"},
	{name: "bu", ident: "[bu]", table: `t"x`, on: `"T""X"`, timing: "before", event: `UPDATE OF "b c", [end]`,
		when:       `new.a > (SELECT count(*) FROM log WHERE msg <> ')') AND new."b c" <> 'BEGIN'`,
		body:       `UPDATE log SET msg = CASE WHEN old.a IS NULL THEN 'END;' ELSE 'BEGIN' END; /* END; */ DELETE FROM log WHERE msg = 'x';`,
		wantTiming: "BEFORE", wantEvent: "UPDATE"},
	{name: "bd", ident: "`bd`", table: "x", on: "`x`", event: "DELETE",
		body:       `SELECT RAISE(ABORT, 'no END here');`,
		wantTiming: "BEFORE", wantEvent: "DELETE"},
	{name: "ai", ident: "ai", table: "log", on: "log", timing: "AFTER", event: "insert", forEach: true,
		when:       `new.begin IS NOT NULL`,
		body:       `UPDATE log SET at = new.begin WHERE rowid = new.rowid;`,
		wantTiming: "AFTER", wantEvent: "INSERT"},
	{name: "au", ident: "au", table: "x", on: "X", timing: "after", event: "UPDATE",
		body:       "INSERT INTO log (msg) VALUES (old.v || ' -- not a comment');\n\tINSERT INTO log (msg) VALUES ('/* nor this */');",
		wantTiming: "AFTER", wantEvent: "UPDATE"},
	{name: `a"d`, ident: `"a""d"`, table: `t"x`, on: `"t""x"`, timing: "AFTER", event: "DELETE",
		body:       `DELETE FROM log WHERE at = old.a; SELECT 'BEGIN END;';`,
		wantTiming: "AFTER", wantEvent: "DELETE"},
	{name: "vi", ident: "vi", table: "v w", on: `"v w"`, timing: "INSTEAD OF", event: "INSERT",
		body:       `INSERT INTO "t""x" (a, "b c") VALUES (new.a, new."b c");`,
		wantTiming: "INSTEAD OF", wantEvent: "INSERT"},
	{name: "vu", ident: "[vu]", table: "v w", on: "[v w]", timing: "INSTEAD OF", event: "UPDATE OF a", forEach: true,
		when:       `old.a <> new.a`,
		body:       `UPDATE "t""x" SET a = new.a WHERE a = old.a;`,
		wantTiming: "INSTEAD OF", wantEvent: "UPDATE"},
	{name: "vd", ident: "vd", table: "v w", on: "`v w`", timing: "instead  of", event: "delete",
		body:       `DELETE FROM "t""x" WHERE a = old.a;`,
		wantTiming: "INSTEAD OF", wantEvent: "DELETE"},
}

func TestTriggers(t *testing.T) {
	stmts := slices.Clone(triggerTables)
	for _, c := range triggerCases {
		stmts = append(stmts, c.ddl())
	}
	path := makeDB(t, canary, stmts...)
	master := masterRows(t, path)
	s := open(t, path)
	c := extractAll(t, s, connectors.Filters{ExcludeTables: []string{"main.hidden"}})
	checkStreamOrder(t, c.entities, []string{"main"})

	got := map[string]connectors.Trigger{}
	for _, tr := range c.triggers() {
		got[tr.Name] = tr
	}
	if len(got) != len(triggerCases) {
		t.Errorf("%d triggers, want %d: %+v", len(got), len(triggerCases), c.triggers())
	}
	for _, tc := range triggerCases {
		tr, ok := got[tc.name]
		if !ok {
			t.Errorf("no trigger %q", tc.name)
			continue
		}
		want := connectors.Trigger{Schema: "main", Table: tc.table, Name: tc.name, Timing: tc.wantTiming,
			Events: []string{tc.wantEvent}, Level: "ROW", Condition: tc.when, Body: tc.body,
			Definition: tc.ddl(), Enabled: "enabled"}
		if !triggerEqual(tr, want) {
			t.Errorf("trigger %q:\n got %#v\nwant %#v", tc.name, tr, want)
		}
		// The catalog agrees: the statement as stored, and the table (which sqlite_master spells
		// as the statement did) is a table or view of that name.
		m := master[tc.name]
		if m.typ != "trigger" || m.sql != tr.Definition || !strings.EqualFold(m.table, tr.Table) {
			t.Errorf("trigger %q: sqlite_master has %+v", tc.name, m)
		}
		if o := master[tr.Table]; o.typ != "table" && o.typ != "view" {
			t.Errorf("trigger %q: table %q is not in sqlite_master", tc.name, tr.Table)
		}
	}
	if _, ok := got["hidden_ai"]; ok {
		t.Error("the trigger of an excluded table was extracted")
	}
	// Every trigger in sqlite_master is extracted, but the excluded table's.
	for name, m := range master {
		if _, ok := got[name]; m.typ == "trigger" && !ok && m.table != "hidden" {
			t.Errorf("trigger %q of sqlite_master not extracted", name)
		}
	}
}

func triggerEqual(a, b connectors.Trigger) bool {
	return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

// TestTriggersAmongSchemas: triggers of an attached schema come with its name, after main's when
// main is given first, and trigger on the tables they name (looked up in their own schema).
func TestTriggersAmongSchemas(t *testing.T) {
	s := open(t, makeDB(t, canary, triggerTables[0], triggerCases[0].ddl()))
	other := makeDB(t, "other",
		`CREATE TABLE "t""x" (a)`, // the same name as main's
		`CREATE TABLE b (z)`,
		`CREATE TRIGGER zz AFTER INSERT ON "T""X" BEGIN SELECT 1; END`,
		`CREATE TRIGGER aa BEFORE DELETE ON b BEGIN SELECT 2; END`)
	attach(t, s, other, "aux")
	var c collector
	if err := s.Extract(context.Background(), []string{"main", "aux"}, connectors.Filters{}, &c); err != nil {
		t.Fatal(err)
	}
	checkStreamOrder(t, c.entities, []string{"main", "aux"})
	var got []string
	for _, tr := range c.triggers() {
		got = append(got, tr.Schema+"."+tr.Table+"."+tr.Name+":"+tr.Timing+" "+strings.Join(tr.Events, ","))
	}
	want := []string{
		`main.t"x.t"x before insert:BEFORE INSERT`,
		`aux.b.aa:BEFORE DELETE`,
		`aux.t"x.zz:AFTER INSERT`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("triggers = %q\nwant %q", got, want)
	}
}

// checkCase is one CHECK constraint of the table TestCheckConstraints creates.
type checkCase struct {
	name string // its CONSTRAINT name, "" for none
	expr string // its expression as written
	pos  int    // its order among the table's checks
}

func TestCheckConstraints(t *testing.T) {
	e := []checkCase{
		{expr: `a > 0`, pos: 1},
		{name: "b ok", expr: `b <> ')' AND length(b) < (3 * (2 + 1))`, pos: 2},
		{expr: `c IN (1.5, 2.5)`, pos: 3},
		{expr: "c /* ) */ >= 0", pos: 4},
		{name: `t "ok"`, expr: `a < 1000 OR b = 'it''s )'`, pos: 5},
		{expr: `((c < 10)) AND (a, c) IS NOT (0, 0.0)`, pos: 6},
		{name: "last", expr: `a <> 42 AND "b" <> 'CHECK (x)'`, pos: 7},
	}
	// Column and table checks, named and not, written with and without a space after CHECK,
	// with spaces and comments inside the parentheses, and a table constraint without a comma.
	checked := `CREATE TABLE "c""k" (
		a INTEGER CHECK (` + e[0].expr + `) CONSTRAINT "a nn" NOT NULL,
		b TEXT CONSTRAINT [b ok] CHECK(` + e[1].expr + `),
		c REAL DEFAULT (1.5) CHECK ( /* lead */ ` + e[2].expr + ` -- trail
		) CHECK (` + e[3].expr + `),
		CONSTRAINT "t ""ok""" CHECK (` + e[4].expr + `)
		CHECK (` + e[5].expr + `),
		UNIQUE (a, b) CONSTRAINT last check (` + e[6].expr + `)
	)`
	path := makeDB(t, canary,
		checked,
		`CREATE TABLE checked ("check" TEXT, "CHECK (x)" TEXT DEFAULT 'CHECK (y)')`, // the word, but no check
		`CREATE TABLE strict_one (id INTEGER PRIMARY KEY, n INT CHECK (n BETWEEN -1 AND 1)) STRICT`,
		`CREATE TABLE hidden (h CHECK (h))`,
		`CREATE VIEW v AS SELECT 1 AS "CHECK"`)
	master := masterRows(t, path)
	s := open(t, path)
	c := extractAll(t, s, connectors.Filters{ExcludeTables: []string{"main.hidden"}})
	checkStreamOrder(t, c.entities, []string{"main"})

	// Expected order: by name, then position.
	slices.SortStableFunc(e, func(a, b checkCase) int { return strings.Compare(a.name, b.name) })
	got := c.constraints(`c"k`)
	if len(got) != len(e) {
		t.Fatalf("%d checks on c\"k, want %d: %+v", len(got), len(e), got)
	}
	for i, want := range e {
		k := got[i]
		if k.Schema != "main" || k.Table != `c"k` || k.Name != want.name || k.Type != connectors.ConstraintCheck ||
			k.Expression != want.expr || k.Definition != "CHECK ("+want.expr+")" || !k.Validated ||
			k.Position != want.pos || k.Columns == nil || len(k.Columns) != 0 || k.Database != "" {
			t.Errorf("check %d = %#v\nwant %+v", i, k, want)
		}
	}
	if k := c.constraints("strict_one"); len(k) != 1 || k[0].Expression != "n BETWEEN -1 AND 1" || k[0].Position != 1 || k[0].Name != "" {
		t.Errorf("strict_one: %+v", k)
	}
	for _, k := range c.constraints("") {
		if m := master[k.Table]; m.typ != "table" {
			t.Errorf("a check of %q, which sqlite_master does not list as a table", k.Table)
		}
		if k.Table != `c"k` && k.Table != "strict_one" {
			t.Errorf("unexpected check %+v", k)
		}
	}
}

// databaseFile creates a database of the given text encoding at a path whose directory holds the
// canary and whose file has a name of its own, and returns the path.
func databaseFile(t *testing.T, encoding string) string {
	t.Helper()
	dir := filepath.Join(realDir(t, t.TempDir()), canary)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "inventory v2.db")
	stmts := []string{`PRAGMA encoding = '` + encoding + `'`, `CREATE TABLE t (a INTEGER PRIMARY KEY CHECK (a > 0), b TEXT UNIQUE)`,
		`CREATE INDEX t_b ON t (b DESC)`, `CREATE VIEW v AS SELECT a FROM t`,
		`CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END`}
	for i := range 200 {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO t (b) VALUES ('%0100d')`, i))
	}
	writeDB(t, path, stmts...)
	return path
}

// databaseFields are the database names an entity carries.
func databaseFields(e connectors.Entity) []string {
	switch v := e.(type) {
	case connectors.Database:
		return []string{v.Name}
	case connectors.Schema:
		return []string{v.Database}
	case connectors.Table:
		return []string{v.Database}
	case connectors.Column:
		return []string{v.Database}
	case connectors.Key:
		return []string{v.Database}
	case connectors.Constraint:
		return []string{v.Database}
	case connectors.Index:
		return []string{v.Database}
	case connectors.Trigger:
		return []string{v.Database}
	case connectors.Lineage:
		return []string{v.Database}
	}
	return []string{"unexpected kind " + e.Kind()}
}

func TestDatabaseEntity(t *testing.T) {
	path := databaseFile(t, "UTF-16le")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		literals []string
		want     string
	}{
		{[]string{"path"}, "inventory v2.db"},
		{nil, ""},
		{[]string{"database", "username", "host"}, ""}, // other connectors' fields name nothing here
	} {
		s := openWith(t, path, tc.literals...)
		c := extractAll(t, s, connectors.Filters{})
		checkStreamOrder(t, c.entities, []string{"main"})
		dbs := c.databases()
		if len(dbs) != 1 {
			t.Fatalf("literals %q: %d databases", tc.literals, len(dbs))
		}
		d := dbs[0]
		// The encoding the test set; the size of the file (no journal, no WAL: it is all pages).
		if d.Name != tc.want || d.Encoding != "UTF-16le" || d.SizeBytes == nil || *d.SizeBytes != st.Size() ||
			d.Owner != "" || d.OwnerIsLoginRole {
			t.Errorf("literals %q: database %+v (size %v), want name %q, file size %d", tc.literals, d, d.SizeBytes, tc.want, st.Size())
		}
		kinds := map[string]bool{}
		for _, e := range c.entities {
			kinds[e.Kind()] = true
			for _, name := range databaseFields(e) {
				if name != tc.want {
					t.Errorf("literals %q: %s entity with database %q, want %q", tc.literals, e.Kind(), name, tc.want)
				}
			}
			text := fmt.Sprintf("%+v", e)
			if strings.Contains(text, canary) || tc.want == "" && strings.Contains(text, "inventory") {
				t.Errorf("literals %q: %s entity names the path: %s", tc.literals, e.Kind(), text)
			}
		}
		for _, k := range []string{connectors.KindDatabases, connectors.KindSchemas, connectors.KindTables, connectors.KindColumns,
			connectors.KindKeys, connectors.KindConstraints, connectors.KindIndexes, connectors.KindTriggers} {
			if !kinds[k] {
				t.Errorf("literals %q: no %s entity", tc.literals, k)
			}
		}
	}
}

// TestDatabaseWrittenOnce: of the Extract calls of a run, only the one whose schemas hold the
// first listed schema (byte order) writes the Database entity, whatever the calls' order.
func TestDatabaseWrittenOnce(t *testing.T) {
	// Attached databases have main's encoding.
	s := openWith(t, databaseFile(t, "UTF-8"), "path")
	attach(t, s, makeDB(t, "aux", `CREATE TABLE a (x)`), "aux")
	attach(t, s, makeDB(t, "zeta", `CREATE TABLE z (x)`), "zeta")
	ctx := context.Background()
	for _, tc := range []struct {
		filters connectors.Filters
		calls   [][]string
		writer  int // the call that writes it
	}{
		{connectors.Filters{}, [][]string{{"main"}, {"aux"}, {"zeta"}}, 1},
		{connectors.Filters{}, [][]string{{"zeta"}, {"main", "aux"}}, 1},
		{connectors.Filters{ExcludeSchemas: []string{"aux"}}, [][]string{{"zeta"}, {"main"}}, 1},
		{connectors.Filters{IncludeSchemas: []string{"zeta"}}, [][]string{{"zeta"}}, 0},
		{connectors.Filters{}, [][]string{{"aux", "zeta", "main"}}, 0},
	} {
		listed, err := s.Schemas(ctx, tc.filters)
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for i, schemas := range tc.calls {
			all = append(all, schemas...)
			var c collector
			if err := s.Extract(ctx, schemas, tc.filters, &c); err != nil {
				t.Fatal(err)
			}
			n := len(c.databases())
			if want := map[bool]int{true: 1, false: 0}[i == tc.writer]; n != want {
				t.Errorf("filters %+v, call %d (%q): %d databases, want %d", tc.filters, i, schemas, n, want)
			}
			if n == 1 && c.databases()[0].Name != "inventory v2.db" {
				t.Errorf("database %+v", c.databases()[0])
			}
		}
		slices.Sort(all)
		if !slices.Equal(all, listed) {
			t.Fatalf("test case: the calls %q do not extract the listed schemas %q", tc.calls, listed)
		}
	}
}

func TestParseCreateTrigger(t *testing.T) {
	for _, tc := range []struct {
		stmt string
		want triggerDDL
	}{
		{`CREATE TEMP TRIGGER IF NOT EXISTS "main"."t r" INSTEAD OF UPDATE OF a, "on" ON main.v FOR EACH ROW WHEN (1) BEGIN SELECT 1; END;`,
			triggerDDL{timing: "INSTEAD OF", event: "UPDATE", condition: "(1)", body: "SELECT 1;"}},
		{"create trigger if insert on t begin select new.begin; end -- done",
			triggerDDL{timing: "BEFORE", event: "INSERT", body: "select new.begin;"}},
		{`CREATE TRIGGER begin AFTER DELETE ON "begin" WHEN old.begin AND (SELECT begin FROM x) BEGIN DELETE FROM x; DELETE FROM y; END`,
			triggerDDL{timing: "AFTER", event: "DELETE", condition: "old.begin AND (SELECT begin FROM x)", body: "DELETE FROM x; DELETE FROM y;"}},
		{`CREATE TRIGGER t AFTER UPDATE ON x BEGIN UPDATE x SET a = CASE a WHEN 1 THEN 2 END; END`,
			triggerDDL{timing: "AFTER", event: "UPDATE", body: "UPDATE x SET a = CASE a WHEN 1 THEN 2 END;"}},
	} {
		got, ok := parseCreateTrigger(tc.stmt)
		if !ok || got != tc.want {
			t.Errorf("%s:\n got %+v, %v\nwant %+v", tc.stmt, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "CREATE TRIGGER", "CREATE TRIGGER t", "CREATE TRIGGER t AFTER", "CREATE TRIGGER t AFTER TRUNCATE ON x BEGIN END",
		"CREATE TRIGGER t INSERT ON", "CREATE TRIGGER t INSERT ON x", "CREATE TRIGGER t INSERT ON x BEGIN SELECT 1;",
		"CREATE TRIGGER t INSERT ON x WHEN 1 SELECT 1; END", "CREATE TRIGGER t INSERT ON x FOR EACH STATEMENT BEGIN SELECT 1; END",
		"CREATE TABLE t (a)", "CREATE TRIGGER t INSERT ON x WHEN (BEGIN SELECT 1; END"} {
		if got, ok := parseCreateTrigger(bad); ok || got != (triggerDDL{}) {
			t.Errorf("%q: %+v, %v; want nothing", bad, got, ok)
		}
	}
}

func TestParseChecks(t *testing.T) {
	d := parseCreateTable(`CREATE TABLE if (a CHECK (a) CHECK ((a)), CONSTRAINT n CHECK ( a -- x
		), CHECK (')'), b CONSTRAINT m CHECK (b = 'CHECK (') NOT NULL CHECK (b) CONSTRAINT unused, CHECK, CHECK (unclosed`)
	want := []declaredCheck{{expression: "a"}, {expression: "(a)"}, {name: "n", expression: "a"}, {expression: "')'"},
		{name: "m", expression: "b = 'CHECK ('"}, {expression: "b"}}
	if !slices.Equal(d.checks, want) {
		t.Errorf("checks = %+v\nwant %+v", d.checks, want)
	}
}
