package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// otherDefinerHost is the host part of the definer that is not the login user: it must never
// reach the output.
const otherDefinerHost = "10.9.8.7"

// triggerDDL is one trigger the kinds fixture creates on `orders`: its expected Order is the
// position the FOLLOWS and PRECEDES clauses give it among the triggers of its timing and event.
type triggerDDL struct {
	name, timing, event, ordering, body string
	order                               int
}

// kindsTriggers are created in this order. The BEFORE INSERT ones are ordered against their
// names: c (created first), then a PRECEDES c, then b FOLLOWS a, so a=1, b=2, c=3.
var kindsTriggers = []triggerDDL{
	{"c_ins", "BEFORE", "INSERT", "", "SET NEW.qty = NEW.qty + 0", 3},
	{"a_ins", "BEFORE", "INSERT", "PRECEDES `c_ins`", "SET NEW.price = NEW.price * 1", 1},
	{"b_ins", "BEFORE", "INSERT", "FOLLOWS `a_ins`", "SET NEW.note = CONCAT('it''s ', NEW.note)", 2},
	{"z_after_ins", "AFTER", "INSERT", "", "INSERT INTO `audit` (what) VALUES ('ins')", 1},
	{"upd before", "BEFORE", "UPDATE", "", "BEGIN\n  SET NEW.qty = OLD.qty;\n  SET NEW.note = 'u';\nEND", 1},
	{"upd_after", "AFTER", "UPDATE", "", "INSERT INTO `audit` (what) VALUES ('upd')", 1},
	{"del_before", "BEFORE", "DELETE", "", "SET @deleting = OLD.id", 1},
	{"del_after", "AFTER", "DELETE", "", "INSERT INTO `audit` (what) VALUES ('del')", 1},
}

// routineDDL is one routine the kinds fixture creates.
type routineDDL struct {
	name, typ, definer, header, body string
}

// kindsFixture builds, in database prefix_k, tables with table-level and column-level checks,
// triggers of every timing and event with FOLLOWS/PRECEDES, sequences, and functions and
// procedures (deterministic or not, SQL SECURITY DEFINER or INVOKER) defined by the login user
// and by another user; prefix_k2 holds a second schema with a check and a sequence. It returns
// the fixture, the other definer's user name and the routines created.
func kindsFixture(t *testing.T) (*fixture, string, []routineDDL) {
	t.Helper()
	f := newFixture(t, []string{"_k", "_k2"})
	k, k2 := quoteIdent(f.db("_k")), quoteIdent(f.db("_k2"))
	other := "saother" + randHex(6)
	login := quoteIdent(f.user) + "@'%'"
	otherAccount := quoteIdent(other) + "@" + quoteIdent(otherDefinerHost)
	exec(t,
		"CREATE TABLE "+k+".orders (id INT PRIMARY KEY, qty INT CHECK (qty > 0), price DECIMAL(10,2), "+
			"note VARCHAR(40) CHECK (note <> 'x'), CONSTRAINT `price positive` CHECK (price >= 0), "+
			"CONSTRAINT qty_price CHECK (qty * price < 100000))",
		"CREATE TABLE "+k+".audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(50), CONSTRAINT audit_what CHECK (what IN ('ins', 'upd', 'del')))",
		"CREATE TABLE "+k2+".t (a INT, b INT, CONSTRAINT a_lt_b CHECK (a < b))",
		"CREATE SEQUENCE "+k+".seq_cycle START WITH 10 MINVALUE 5 MAXVALUE 50 INCREMENT BY 5 CACHE 3 CYCLE",
		"CREATE SEQUENCE "+k+".seq_default",
		"CREATE SEQUENCE "+k+".`seq down` START WITH -1 MINVALUE -1000 MAXVALUE -1 INCREMENT BY -1 NOCACHE NOCYCLE COMMENT 'counts down'",
		"CREATE SEQUENCE "+k+".`se``q` START WITH 7",
		"CREATE SEQUENCE "+k2+".s2 START WITH 100 MAXVALUE 1000",
	)
	// Unqualified names, as SHOW CREATE TRIGGER repeats the statement as it was written.
	var triggers []string
	for _, tr := range kindsTriggers {
		definer := ""
		if tr.name == "upd before" {
			definer = "DEFINER=" + login + " " // a trigger of the login user: its definer is not written
		}
		triggers = append(triggers, "CREATE "+definer+"TRIGGER "+quoteIdent(tr.name)+" "+tr.timing+" "+tr.event+
			" ON `orders` FOR EACH ROW "+strings.TrimSpace(tr.ordering+" "+tr.body))
	}
	execIn(t, f.db("_k"), triggers...)
	routines := []routineDDL{
		{"det_fn", "FUNCTION", login, "(a INT) RETURNS INT DETERMINISTIC SQL SECURITY INVOKER", "RETURN a * 2"},
		{"vol_fn", "FUNCTION", otherAccount, "() RETURNS DOUBLE NOT DETERMINISTIC SQL SECURITY DEFINER", "RETURN RAND()"},
		{"proc_definer", "PROCEDURE", login, "(IN x INT) SQL SECURITY DEFINER", "BEGIN\n  SELECT x;\nEND"},
		{"proc invoker", "PROCEDURE", otherAccount, "() DETERMINISTIC SQL SECURITY INVOKER", "BEGIN END"},
	}
	for _, r := range routines {
		exec(t, "CREATE DEFINER="+r.definer+" "+r.typ+" "+k+"."+quoteIdent(r.name)+r.header+" "+r.body)
	}
	f.grantRead(t, "_k", "_k2")
	return f, other, routines
}

// execIn runs each statement as the administrator with schema as the default database.
func execIn(t *testing.T, schema string, stmts ...string) {
	t.Helper()
	db, _ := admin(t)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	for _, q := range append([]string{"USE " + quoteIdent(schema)}, stmts...) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// openWith opens a Source for the fixture's user with field "database" set to database and the
// given fields marked as literals.
func (f *fixture) openWith(t *testing.T, database string, literals ...string) *Source {
	t.Helper()
	creds := f.creds(t)
	if database != "" {
		creds[FieldDatabase] = secrets.Value(database)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, creds, connectors.OpenOptions{Literals: literals})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// showCreate returns the statement column of a SHOW CREATE statement run by the administrator.
func showCreate(t *testing.T, what, schema, name string, column int) string {
	t.Helper()
	rows := queryStrings(t, "SHOW CREATE "+what+" "+quoteIdent(schema)+"."+quoteIdent(name))
	if len(rows) != 1 {
		t.Fatalf("SHOW CREATE %s %s.%s: %d rows", what, schema, name, len(rows))
	}
	return rows[0][column]
}

// definerClause matches SHOW CREATE's DEFINER clause, capturing the user and host.
var definerClause = regexp.MustCompile("DEFINER=`((?:[^`]|``)*)`@`((?:[^`]|``)*)` ")

func unquote(s string) string { return strings.ReplaceAll(s, "``", "`") }

// TestKinds extracts the kinds fixture and checks constraints, sequences, triggers and
// routines against SHOW CREATE statements run by the administrator and the fixture's own DDL.
func TestKinds(t *testing.T) {
	t.Parallel()
	f, other, routines := kindsFixture(t)
	k, k2 := f.db("_k"), f.db("_k2")
	rec := extractAll(t, f.open(t), f, connectors.Filters{})

	t.Run("kinds in AllKinds order", func(t *testing.T) {
		var kinds []string
		for _, e := range rec.entities {
			if len(kinds) == 0 || kinds[len(kinds)-1] != e.Kind() {
				kinds = append(kinds, e.Kind())
			}
		}
		want := []string{connectors.KindDatabases, connectors.KindSchemas, connectors.KindTables, connectors.KindColumns,
			connectors.KindKeys, connectors.KindConstraints, connectors.KindIndexes, connectors.KindSequences,
			connectors.KindTriggers, connectors.KindRoutines}
		if !slices.Equal(kinds, want) {
			t.Errorf("kinds in the order written: %q, want %q", kinds, want)
		}
	})

	t.Run("checks against SHOW CREATE TABLE", func(t *testing.T) {
		columnCheck := regexp.MustCompile("^\\s+`((?:[^`]|``)+)` .* CHECK \\((.*)\\),?$")
		tableCheck := regexp.MustCompile("^\\s+CONSTRAINT `((?:[^`]|``)+)` CHECK \\((.*)\\),?$")
		var want []string
		for _, tb := range []connectors.RelationRef{{Schema: k, Name: "audit"}, {Schema: k, Name: "orders"}, {Schema: k2, Name: "t"}} {
			var checks []string
			for _, line := range strings.Split(showCreate(t, "TABLE", tb.Schema, tb.Name, 1), "\n") {
				// MariaDB names a column-level check after its column.
				for _, re := range []*regexp.Regexp{columnCheck, tableCheck} {
					if m := re.FindStringSubmatch(line); m != nil {
						checks = append(checks, tb.Schema+"."+tb.Name+"."+unquote(m[1])+" = CHECK ("+m[2]+")")
					}
				}
			}
			slices.Sort(checks)
			want = append(want, checks...)
		}
		if len(want) != 6 {
			t.Fatalf("SHOW CREATE TABLE shows %d checks, the DDL made 6: %q", len(want), want)
		}
		var got []string
		for _, c := range only[connectors.Constraint](rec) {
			got = append(got, c.Schema+"."+c.Table+"."+c.Name+" = "+c.Definition)
			if c.Type != connectors.ConstraintCheck || c.Definition != "CHECK ("+c.Expression+")" || !c.Validated ||
				c.Columns == nil || len(c.Columns) != 0 || c.Database != "" {
				t.Errorf("check %+v", c)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("checks\n got %q\nwant %q", got, want)
		}
	})

	t.Run("sequences against SHOW CREATE SEQUENCE", func(t *testing.T) {
		params := regexp.MustCompile(`start with (\S+) minvalue (\S+) maxvalue (\S+) increment by (\S+) (?:cache (\S+)|nocache) (nocycle|cycle)`)
		var want []string
		for _, row := range queryStrings(t, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?, ?) AND TABLE_TYPE = 'SEQUENCE'", k, k2) {
			m := params.FindStringSubmatch(showCreate(t, "SEQUENCE", row[0], row[1], 1))
			if m == nil {
				t.Fatalf("SHOW CREATE SEQUENCE %s.%s: unexpected form", row[0], row[1])
			}
			cache := m[5]
			if cache == "" {
				cache = "0" // nocache
			}
			want = append(want, fmt.Sprintf("%s.%s start=%s min=%s max=%s inc=%s cache=%s cycle=%v", row[0], row[1],
				m[1], m[2], m[3], m[4], cache, m[6] == "cycle"))
		}
		slices.Sort(want)
		if len(want) != 5 {
			t.Fatalf("%d sequences, the DDL made 5", len(want))
		}
		var got []string
		for _, s := range only[connectors.Sequence](rec) {
			got = append(got, fmt.Sprintf("%s.%s start=%s min=%s max=%s inc=%s cache=%s cycle=%v", s.Schema, s.Name,
				s.Start, s.Min, s.Max, s.Increment, s.Cache, s.Cycle))
			if s.DataType != "bigint" || s.Database != "" {
				t.Errorf("sequence %+v", s)
			}
			if _, ok := rec.table(s.Schema, s.Name); ok || len(rec.columnsOf(s.Schema, s.Name)) > 0 {
				t.Errorf("sequence %s.%s also extracted as a table or with columns", s.Schema, s.Name)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("sequences\n got %q\nwant %q", got, want)
		}
		// The DDL, for the one with every parameter set.
		if !slices.Contains(got, k+".seq_cycle start=10 min=5 max=50 inc=5 cache=3 cycle=true") {
			t.Errorf("seq_cycle does not have the parameters its DDL gave: %q", got)
		}
		for _, s := range only[connectors.Sequence](rec) {
			if s.Name == "seq down" && s.Comment != "counts down" {
				t.Errorf("sequence comment %q", s.Comment)
			}
		}
	})

	t.Run("triggers against SHOW CREATE TRIGGER and the DDL", func(t *testing.T) {
		want := slices.Clone(kindsTriggers)
		slices.SortFunc(want, func(a, b triggerDDL) int { return strings.Compare(a.name, b.name) })
		got := only[connectors.Trigger](rec)
		if len(got) != len(want) {
			t.Fatalf("%d triggers, want %d: %+v", len(got), len(want), got)
		}
		for i, tr := range got {
			w := want[i]
			original := showCreate(t, "TRIGGER", k, w.name, 2)
			m := definerClause.FindStringSubmatch(original)
			if m == nil {
				t.Fatalf("SHOW CREATE TRIGGER %s: no DEFINER clause in %q", w.name, original)
			}
			definition := strings.Replace(original, m[0], "", 1)
			if tr.Schema != k || tr.Table != "orders" || tr.Name != w.name || tr.Timing != w.timing ||
				!slices.Equal(tr.Events, []string{w.event}) || tr.Level != "ROW" || tr.Body != w.body ||
				tr.Order != w.order || tr.Enabled != "enabled" || tr.Definition != definition || tr.Database != "" {
				t.Errorf("trigger %d:\n got %+v\nwant %+v with definition %q", i, tr, w, definition)
			}
		}
	})

	t.Run("routines against SHOW CREATE and the DDL", func(t *testing.T) {
		got := only[connectors.Routine](rec)
		if len(got) != len(routines) {
			t.Fatalf("%d routines, want %d", len(got), len(routines))
		}
		for _, r := range got {
			i := slices.IndexFunc(routines, func(d routineDDL) bool { return d.name == r.Name })
			if i < 0 {
				t.Fatalf("unexpected routine %+v", r)
			}
			d := routines[i]
			show := showCreate(t, d.typ, k, d.name, 2)
			m := definerClause.FindStringSubmatch(show)
			if m == nil {
				t.Fatalf("SHOW CREATE %s %s: no DEFINER clause", d.typ, d.name)
			}
			// MariaDB prints DETERMINISTIC and SQL SECURITY INVOKER as lines of their own when
			// they apply.
			head, _, _ := strings.Cut(show, d.body)
			deterministic := regexp.MustCompile(`(?m)^\s*DETERMINISTIC$`).MatchString(head)
			invoker := strings.Contains(head, "SQL SECURITY INVOKER")
			volatility := map[bool]string{true: "immutable", false: "volatile"}[deterministic]
			wantOwner, wantLogin := unquote(m[1]), unquote(m[1]) == f.user
			if wantLogin {
				wantOwner = "" // username is no literal here
			}
			if r.Type != strings.ToLower(d.typ) || r.Definition != d.body || !strings.HasSuffix(show, d.body) ||
				r.Volatility != volatility || r.SecurityDefiner == invoker || r.Owner != wantOwner ||
				r.OwnerIsLoginRole != wantLogin || r.Database != "" {
				t.Errorf("routine %+v; SHOW CREATE says definer %s@%s deterministic=%v invoker=%v", r, m[1], m[2], deterministic, invoker)
			}
		}
		// Both definers appear, and each routine's expected values differ from another's.
		owners := map[string]bool{}
		for _, r := range got {
			owners[r.Owner+"/"+fmt.Sprint(r.OwnerIsLoginRole)+"/"+r.Volatility+"/"+fmt.Sprint(r.SecurityDefiner)] = true
		}
		for _, o := range []string{"/true/immutable/false", other + "/false/volatile/true", "/true/volatile/true", other + "/false/immutable/false"} {
			if !owners[o] {
				t.Errorf("no routine with owner/login/volatility/definer %s: %v", o, owners)
			}
		}
	})

	t.Run("no login user, definer host or database name in the output", func(t *testing.T) {
		out := dump(t, rec)
		for _, v := range []string{f.user, otherDefinerHost, "DEFINER", `"database":"`} {
			if strings.Contains(out, v) {
				t.Errorf("the output carries %q", v)
			}
		}
	})
}

// dump is the recorded entities as JSON lines.
func dump(t *testing.T, rec *recorder) string {
	t.Helper()
	var b strings.Builder
	for _, e := range rec.entities {
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(e.Kind() + " " + string(j) + "\n")
	}
	return b.String()
}

// TestLiteralDatabaseAndOwner checks the rules for the database's name and the login user's
// name both ways: written when the input gave them as literals, never otherwise.
func TestLiteralDatabaseAndOwner(t *testing.T) {
	t.Parallel()
	f, other, _ := kindsFixture(t)
	k := f.db("_k")
	secret := extractAll(t, f.openWith(t, k), f, connectors.Filters{})
	literal := extractAll(t, f.openWith(t, k, FieldDatabase, FieldUsername), f, connectors.Filters{})

	databases := func(rec *recorder) map[string]int {
		out := map[string]int{}
		for _, e := range rec.entities {
			var v struct {
				Name     string `json:"name"`
				Database string `json:"database"`
			}
			j, _ := json.Marshal(e)
			_ = json.Unmarshal(j, &v)
			if e.Kind() == connectors.KindDatabases {
				out["name="+v.Name]++
			} else {
				out[v.Database]++
			}
		}
		return out
	}
	if got := databases(secret); len(got) != 2 || got["name="] != 1 || got[""] != len(secret.entities)-1 {
		t.Errorf("database from a secret: %v; want no name anywhere", got)
	}
	if got := databases(literal); len(got) != 2 || got["name="+k] != 1 || got[k] != len(literal.entities)-1 {
		t.Errorf("literal database: %v; want %q everywhere", got, k)
	}
	if out := dump(t, secret); strings.Contains(out, f.user) {
		t.Errorf("the login user's name is written when it may be a secret")
	}

	owners := func(rec *recorder) map[string]string {
		out := map[string]string{}
		for _, r := range rec.routines() {
			out[r.Name] = fmt.Sprintf("%s/%v", r.Owner, r.OwnerIsLoginRole)
		}
		return out
	}
	// The definers, from mysql.proc (user@host), read by the administrator.
	wantSecret, wantLiteral := map[string]string{}, map[string]string{}
	for _, row := range queryStrings(t, "SELECT name, definer FROM mysql.proc WHERE db = ?", k) {
		user, _, _ := strings.Cut(row[1], "@")
		switch user {
		case f.user:
			wantSecret[row[0]], wantLiteral[row[0]] = "/true", f.user+"/true"
		case other:
			wantSecret[row[0]], wantLiteral[row[0]] = other+"/false", other+"/false"
		default:
			t.Fatalf("unexpected definer %q", row[1])
		}
	}
	if got := owners(secret); fmt.Sprint(got) != fmt.Sprint(wantSecret) {
		t.Errorf("owners, username from a secret: %v, want %v", got, wantSecret)
	}
	if got := owners(literal); fmt.Sprint(got) != fmt.Sprint(wantLiteral) {
		t.Errorf("owners, literal username: %v, want %v", got, wantLiteral)
	}
}

// TestChecksByTableConstraints runs the path MySQL 8 takes (CHECK_CONSTRAINTS without table
// names, joined to TABLE_CONSTRAINTS) on MariaDB, whose check names in the fixture are unique per
// schema, and expects what MariaDB's own path gives.
func TestChecksByTableConstraints(t *testing.T) {
	t.Parallel()
	f, _, _ := kindsFixture(t)
	s := f.open(t)
	want := only[connectors.Constraint](extractAll(t, s, f, connectors.Filters{}))
	if len(want) == 0 {
		t.Fatal("no checks")
	}
	s.caps.checkTable = false
	got := only[connectors.Constraint](extractAll(t, s, f, connectors.Filters{}))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("checks through TABLE_CONSTRAINTS:\n%+v\nwant\n%+v", got, want)
	}
	// Filters apply to checks and triggers, as to the tables they belong to.
	rec := extractAll(t, s, f, connectors.Filters{ExcludeTables: []string{"*.orders"}})
	for _, c := range only[connectors.Constraint](rec) {
		if c.Table == "orders" {
			t.Errorf("check of an excluded table: %+v", c)
		}
	}
	if n := len(only[connectors.Trigger](rec)); n != 0 {
		t.Errorf("%d triggers of an excluded table", n)
	}
	rec = extractAll(t, s, f, connectors.Filters{ExcludeTables: []string{"*.seq_*"}})
	for _, sq := range only[connectors.Sequence](rec) {
		if strings.HasPrefix(sq.Name, "seq_") {
			t.Errorf("excluded sequence: %+v", sq)
		}
	}
}

// TestSequenceBatches checks that sequences read in batches of any size give the same entities,
// and that a sequence the user may see but not read is written with its parameters empty while
// the others keep theirs.
func TestSequenceBatches(t *testing.T) {
	t.Parallel()
	f, _, _ := kindsFixture(t)
	s := f.open(t)
	want := only[connectors.Sequence](extractAll(t, s, f, connectors.Filters{}))
	for _, size := range []int{1, 2, 3} {
		s.sequenceBatch = size
		if got := only[connectors.Sequence](extractAll(t, s, f, connectors.Filters{})); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%d sequences per query:\n%+v\nwant\n%+v", size, got, want)
		}
	}

	// A user with SELECT on some sequences and only INSERT (which makes it visible) on one.
	k := f.db("_k")
	exec(t, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM "+f.account())
	for _, seq := range []string{"seq_cycle", "seq_default", "seq down", "se`q"} {
		priv := "SELECT"
		if seq == "seq_default" {
			priv = "INSERT"
		}
		exec(t, "GRANT "+priv+" ON "+quoteIdent(k)+"."+quoteIdent(seq)+" TO "+f.account())
	}
	for _, size := range []int{0, 2} {
		s := f.open(t)
		s.sequenceBatch = size
		got := only[connectors.Sequence](extractAll(t, s, f, connectors.Filters{}))
		var wantVisible []connectors.Sequence
		for _, sq := range want {
			if sq.Schema != k {
				continue
			}
			if sq.Name == "seq_default" {
				sq.Start, sq.Increment, sq.Min, sq.Max, sq.Cache, sq.Cycle = "", "", "", "", "", false
			}
			wantVisible = append(wantVisible, sq)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantVisible) {
			t.Errorf("batch %d, one sequence not readable:\n%+v\nwant\n%+v", size, got, wantVisible)
		}
	}
}

// TestSessionDefaults gives the login user odd session defaults (through init_connect, which
// runs at every login of a user without CONNECTION ADMIN; the statement changes the session
// only for this test's user, so other users, and other tests, keep theirs) and checks that the
// extraction is byte for byte the same as without them. It changes a GLOBAL variable: it does
// not run in parallel with this package's other tests, and restores the old value.
func TestSessionDefaults(t *testing.T) {
	f := newFixture(t, []string{"_odd"})
	db := quoteIdent(f.db("_odd"))
	long := strings.Repeat("l", 62) // names that differ after 64 bytes, where a short max_sort_length stops
	exec(t,
		"CREATE TABLE "+db+".`café ☕` (id INT PRIMARY KEY, `naïve` TEXT, ts TIMESTAMP NULL DEFAULT '2020-01-01 00:00:00', "+
			"doubled INT AS (id * 2) VIRTUAL, s VARCHAR(20) DEFAULT 'a\\\\b', CHECK (id > 0 AND `naïve` <> 'x'))",
		"CREATE TABLE "+db+"."+quoteIdent(long+"_b")+" (id INT)",
		"CREATE TABLE "+db+"."+quoteIdent(long+"_a")+" (id INT)",
		"CREATE TABLE "+db+".`Zed` (id INT)",
		"CREATE TABLE "+db+".`alpha` (id INT)",
		"CREATE VIEW "+db+".`v` AS SELECT id, CONCAT('x', `naïve`) AS c FROM "+db+".`café ☕`",
		"CREATE SEQUENCE "+db+".`séq` START WITH 3",
		"CREATE TRIGGER "+db+".`trig` BEFORE INSERT ON "+db+".`café ☕` FOR EACH ROW SET NEW.`naïve` = CONCAT('«', NEW.`naïve`, '»')",
		"CREATE FUNCTION "+db+".`fn` (a INT) RETURNS VARCHAR(10) DETERMINISTIC RETURN CONCAT('ü', a)",
	)
	f.grantRead(t, "_odd")
	baseline := dump(t, extractAll(t, f.open(t), f, connectors.Filters{}))

	var old string
	adminDB, _ := admin(t)
	if err := adminDB.QueryRow("SELECT @@GLOBAL.init_connect").Scan(&old); err != nil {
		t.Fatal(err)
	}
	is := "SUBSTRING_INDEX(USER(), '@', 1) = '" + f.user + "'"
	odd := func(variable, value string) string {
		return variable + " = IF(" + is + ", " + value + ", @@" + variable + ")"
	}
	initConnect := "SET " + strings.Join([]string{
		odd("sql_mode", "'ANSI,NO_BACKSLASH_ESCAPES'"),
		odd("time_zone", "'+13:00'"),
		odd("character_set_results", "'latin1'"),
		odd("collation_connection", "'latin1_swedish_ci'"),
		odd("sql_quote_show_create", "0"),
		odd("max_sort_length", "8"),
		odd("sql_select_limit", "2"),
		odd("character_set_server", "'latin1'"),
		odd("collation_server", "'latin1_swedish_ci'"),
	}, ", ")
	if old != "" {
		initConnect = old + "; " + initConnect
	}
	t.Cleanup(func() {
		if _, err := adminDB.Exec("SET GLOBAL init_connect = ?", old); err != nil {
			t.Errorf("restoring init_connect: %v", err)
		}
	})
	exec(t, "SET GLOBAL init_connect = "+sqlString(initConnect))

	// The odd defaults are in force for the user's own connections: a connection without the
	// connector's settings sees them, and what they change.
	raw := f.rawConn(t)
	var mode, zone, limit, charset string
	if err := raw.QueryRow("SELECT @@sql_mode, @@time_zone, @@sql_select_limit, @@character_set_server").Scan(&mode, &zone, &limit, &charset); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mode, "ANSI_QUOTES") || zone != "+13:00" || limit != "2" || charset != "latin1" {
		t.Fatalf("odd defaults not in force: sql_mode %q, time_zone %q, sql_select_limit %q, character_set_server %q", mode, zone, limit, charset)
	}
	var clause string
	if err := raw.QueryRow("SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?", f.db("_odd")).Scan(&clause); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(clause, "`") {
		t.Fatalf("the odd defaults do not change the check's text: %q", clause)
	}

	got := dump(t, extractAll(t, f.open(t), f, connectors.Filters{}))
	if got != baseline {
		t.Errorf("the output depends on the user's session defaults:\n--- odd\n%s\n--- default\n%s", got, baseline)
	}
	if !strings.Contains(baseline, "café ☕") || !strings.Contains(baseline, "'2020-01-01 00:00:00'") ||
		!strings.Contains(baseline, "CHECK (`id`") || strings.Count(baseline, "tables {") < 6 {
		t.Errorf("the baseline lacks what the odd defaults would change:\n%s", baseline)
	}
}

// rawConn is a connection of the fixture's user through the driver alone, without the
// connector's session settings.
func (f *fixture) rawConn(t *testing.T) *sql.DB {
	t.Helper()
	_, adminCfg := admin(t)
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd = "tcp", adminCfg.Addr, f.user, f.password
	cfg.Logger = &mysql.NopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestKindHelpers covers the pieces that need no server: the owner rule, definer parsing, the
// trigger's statement and the quoting of names in the sequences' query.
func TestKindHelpers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s          Source
		name       string
		owner      string
		loginOwner bool
	}{
		{Source{login: "bob"}, "bob", "", true},
		{Source{login: "bob", loginLiteral: true}, "bob", "bob", true},
		{Source{login: "bob"}, "alice", "alice", false},
		{Source{login: "bob", loginLiteral: true}, "Bob", "Bob", false},
		{Source{login: "bob"}, "", "", false},
	} {
		if o, l := tc.s.owner(tc.name); o != tc.owner || l != tc.loginOwner {
			t.Errorf("owner(%q) with login %q literal=%v = %q, %v; want %q, %v", tc.name, tc.s.login, tc.s.loginLiteral, o, l, tc.owner, tc.loginOwner)
		}
	}
	for in, want := range map[string]string{"root@localhost": "root", "a@b@10.0.0.1": "a@b", "role_only": "role_only", "@%": ""} {
		if got := definerUser(in); got != want {
			t.Errorf("definerUser(%q) = %q, want %q", in, got, want)
		}
	}
	if got := triggerDefinition("t`r", "AFTER", "DELETE", "my table", "SET @x = 1"); got != "CREATE TRIGGER `t``r` AFTER DELETE ON `my table` FOR EACH ROW SET @x = 1" {
		t.Errorf("triggerDefinition = %q", got)
	}
	q := sequenceParamsQuery([]listedSequence{{key: tableKey{"d`b", "s 1"}}, {key: tableKey{"db", "x"}}})
	if !strings.Contains(q, "SELECT 0, ") || !strings.Contains(q, " FROM `d``b`.`s 1`\nUNION ALL SELECT 1, ") || !strings.HasSuffix(q, " FROM `db`.`x`") {
		t.Errorf("sequenceParamsQuery = %q", q)
	}
}
