package mysql

// TestSakila loads a real public sample schema, written by others, with its data, and checks
// what the connector extracts from it against information_schema and SHOW CREATE statements
// read here as the administrator, and against the sample's own SQL text; never against the
// connector's earlier output.
//
// The sample is Sakila 0.8, Copyright (c) 2006, MySQL AB (Mike Hillyer), under the BSD licence
// written in its files' headers: sakila-schema.sql and sakila-data.sql from sakila-db.zip in
// pgloader's Debian source package (test/data/). scripts/samples fetches them (nothing of them
// is in this repository); testenv.Sample finds them. They are loaded as their documentation says,
// with the mariadb command-line client (they use its DELIMITER command), into a database of the
// test's own instead of `sakila`.

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/testenv"
)

func TestSakila(t *testing.T) {
	t.Parallel()
	schemaSQL, dataSQL := readSample(t, "sakila-schema.sql"), readSample(t, "sakila-data.sql")
	f := newFixture(t, nil)
	db := f.db("_sakila")
	t.Cleanup(func() {
		pool, _ := admin(t)
		_, _ = pool.Exec("DROP DATABASE IF EXISTS " + quoteIdent(db))
	})
	loadSakila(t, db, schemaSQL, dataSQL)
	f.grantRead(t, "_sakila")
	rec := extractAll(t, f.open(t), f, connectors.Filters{})
	text := schemaSQL + "\n" + dataSQL

	t.Run("tables and views", func(t *testing.T) { checkSakilaTables(t, db, rec, text) })
	t.Run("columns", func(t *testing.T) { checkSakilaColumns(t, db, rec) })
	t.Run("keys", func(t *testing.T) { checkSakilaKeys(t, db, rec, schemaSQL) })
	t.Run("constraints", func(t *testing.T) { checkSakilaConstraints(t, db, rec) })
	t.Run("triggers", func(t *testing.T) { checkSakilaTriggers(t, db, rec, text) })
	t.Run("routines", func(t *testing.T) { checkSakilaRoutines(t, db, rec, text) })
	t.Run("lineage", func(t *testing.T) { checkSakilaLineage(t, db, rec) })
}

// readSample returns the text of a sample file that scripts/samples fetched.
func readSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(testenv.Sample(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The sample's files name their database `sakila` in DROP SCHEMA IF EXISTS, CREATE SCHEMA and
// USE statements (sakilaStatement; sakila-data.sql's USE ends with a carriage return) and in
// names qualified with it (sakilaQualifier: actor_info's). Nothing else in them is the word
// sakila in lower case (sakilaWord), which loadSakila checks after rewriting.
var (
	sakilaStatement = regexp.MustCompile(`(?m)^(DROP SCHEMA IF EXISTS|CREATE SCHEMA|USE) sakila;(\r?)$`)
	sakilaQualifier = regexp.MustCompile(`\bsakila\.`)
	sakilaWord      = regexp.MustCompile(`\bsakila\b`)
)

// loadSakila runs the sample's files with the mariadb client, as the administrator, with every
// reference to the database `sakila` made one to db.
func loadSakila(t *testing.T, db string, files ...string) {
	t.Helper()
	client, err := osexec.LookPath("mariadb")
	if err != nil {
		if client, err = osexec.LookPath("mysql"); err != nil {
			testenv.RequireOrSkip(t, "the mariadb client is not installed: run scripts/services (installs mariadb-client)")
		}
	}
	_, cfg := admin(t)
	host, port, ok := strings.Cut(cfg.Addr, ":")
	if !ok || cfg.Net != "tcp" {
		t.Fatalf("the admin DSN's address %q is not host:port over TCP", cfg.Addr)
	}
	// The password goes in an option file, not on the command line.
	options := filepath.Join(t.TempDir(), "client.cnf")
	if err := os.WriteFile(options, []byte(fmt.Sprintf("[client]\nuser=%s\npassword=%s\nhost=%s\nport=%s\nprotocol=tcp\n",
		cfg.User, cfg.Passwd, host, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	statements, qualifiers := 0, 0
	for _, text := range files {
		statements += len(sakilaStatement.FindAllString(text, -1))
		qualifiers += len(sakilaQualifier.FindAllString(text, -1))
		text = sakilaStatement.ReplaceAllString(text, "$1 "+quoteIdent(db)+";$2")
		text = sakilaQualifier.ReplaceAllString(text, quoteIdent(db)+".")
		if sakilaWord.MatchString(text) {
			t.Fatalf("the sample names database sakila in a way the test does not rewrite")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := osexec.CommandContext(ctx, client, "--defaults-extra-file="+options, "--batch")
		cmd.Stdin = strings.NewReader(text)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("loading sakila with %s: %v\n%s", client, err, out.String())
		}
	}
	// sakila-schema.sql: DROP SCHEMA, CREATE SCHEMA, USE and seven sakila.-qualified names in
	// actor_info; sakila-data.sql: USE.
	if statements != 4 || qualifiers != 7 {
		t.Fatalf("the sample names database sakila in %d statements and %d qualified names; the test expects 4 and 7", statements, qualifiers)
	}
}

func checkSakilaTables(t *testing.T, db string, rec *recorder, text string) {
	got := map[string]string{}
	for _, tb := range rec.tables() {
		got[tb.Schema+"."+tb.Name] = strings.TrimSpace(tb.Type + " " + tb.Engine)
	}
	// Independent: information_schema.TABLES.
	want := map[string]string{}
	for _, r := range queryStrings(t, `SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, COALESCE(ENGINE, '')
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`, db) {
		kind := map[string]string{"BASE TABLE": connectors.TableTypeTable, "VIEW": connectors.TableTypeView}[r[2]]
		want[r[0]+"."+r[1]] = strings.TrimSpace(kind + " " + r[3])
	}
	testenv.CompareMaps(t, "relation", got, want)

	// The sample's text: 16 CREATE TABLE and 7 CREATE VIEW statements.
	tables := textMatches(text, `(?m)^CREATE TABLE (\w+) \(`)
	views := textMatches(text, `(?m)^CREATE (?:DEFINER=\w+ SQL SECURITY \w+ )?VIEW (\w+)\s`)
	if len(tables) != 16 || len(views) != 7 {
		t.Fatalf("sakila-schema.sql has %d tables and %d views as this test reads it; sakila has 16 and 7", len(tables), len(views))
	}
	for _, m := range tables {
		if g := got[db+"."+m[1]]; !strings.HasPrefix(g, "table ") {
			t.Errorf("table %s: %q", m[1], g)
		}
	}
	for _, m := range views {
		if g := got[db+"."+m[1]]; g != "view" {
			t.Errorf("view %s: %q", m[1], g)
		}
	}
	if len(got) != 23 {
		t.Errorf("%d relations extracted; sakila has 23", len(got))
	}
}

func checkSakilaColumns(t *testing.T, db string, rec *recorder) {
	got := map[string]string{}
	for _, c := range rec.columns() {
		got[fmt.Sprintf("%s.%s.%02d", c.Table, c.Name, c.Position)] = fmt.Sprintf("%s null=%t pk=%t identity=%s default=%s",
			c.DataType, c.Nullable, c.PrimaryKey, c.Identity, c.Default)
	}
	// Independent: information_schema.COLUMNS, read with the session the connector documents
	// (sql_mode decides whether the server calls a view's CONCAT column nullable); MariaDB's
	// COLUMN_DEFAULT is already an expression, NULL for a default of NULL. The primary keys'
	// columns from KEY_COLUMN_USAGE.
	primary := map[string]bool{}
	for _, r := range queryStrings(t, `SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
		WHERE TABLE_SCHEMA = ? AND CONSTRAINT_NAME = 'PRIMARY'`, db) {
		primary[r[0]+"."+r[1]] = true
	}
	want := map[string]string{}
	for _, r := range pinnedStrings(t, `SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE,
			EXTRA LIKE '%auto_increment%', COALESCE(COLUMN_DEFAULT, 'NULL')
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?`, db) {
		pos, err := strconv.Atoi(r[2])
		if err != nil {
			t.Fatal(err)
		}
		identity := ""
		if r[5] == "1" {
			identity = "auto_increment"
		}
		def := r[6]
		if def == "NULL" {
			def = ""
		}
		want[fmt.Sprintf("%s.%s.%02d", r[0], r[1], pos)] = fmt.Sprintf("%s null=%t pk=%t identity=%s default=%s",
			r[3], r[4] == "YES", primary[r[0]+"."+r[1]], identity, def)
	}
	testenv.CompareMaps(t, "column", got, want)
	// The sample's text: film.rating and special_features, rental's key.
	for col, w := range map[string]string{
		"film.rating.11":           "enum('G','PG','PG-13','R','NC-17') null=true pk=false identity= default='G'",
		"film.special_features.12": "set('Trailers','Commentaries','Deleted Scenes','Behind the Scenes') null=true pk=false identity= default=",
		"rental.rental_id.01":      "int(11) null=false pk=true identity=auto_increment default=",
	} {
		if got[col] != w {
			t.Errorf("column %s = %q, want %q (sakila-schema.sql)", col, got[col], w)
		}
	}
}

// pinnedStrings is queryStrings on an administrator's connection of its own with the session
// settings the connector documents for its own (source.go): utf8mb4, an empty sql_mode, quoted
// identifiers, UTC.
func pinnedStrings(t *testing.T, q string, args ...any) [][]string {
	t.Helper()
	_, adminCfg := admin(t)
	cfg := adminCfg.Clone()
	cfg.Collation = "utf8mb4_general_ci"
	cfg.Params = map[string]string{"sql_mode": "''", "sql_quote_show_create": "1", "time_zone": "'+00:00'"}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := sql.OpenDB(c)
	defer func() { _ = pool.Close() }()
	return queryStringsOn(t, pool, q, args...)
}

func checkSakilaKeys(t *testing.T, db string, rec *recorder, text string) {
	got := map[string]string{}
	for _, k := range rec.keys() {
		got[k.Table+"."+k.Name] = fmt.Sprintf("%s(%s) -> %s.%s(%s) update=%s delete=%s", k.Type, strings.Join(k.Columns, ","),
			k.RefSchema, k.RefTable, strings.Join(k.RefColumns, ","), k.OnUpdate, k.OnDelete)
	}
	// Independent: TABLE_CONSTRAINTS for the kind, KEY_COLUMN_USAGE for the columns in order,
	// REFERENTIAL_CONSTRAINTS for a foreign key's rules.
	want := map[string]string{}
	for _, r := range queryStrings(t, `SELECT tc.TABLE_NAME, tc.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE,
			GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION),
			COALESCE(MAX(k.REFERENCED_TABLE_SCHEMA), ''), COALESCE(MAX(k.REFERENCED_TABLE_NAME), ''),
			COALESCE(GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION), ''),
			COALESCE(MAX(rc.UPDATE_RULE), ''), COALESCE(MAX(rc.DELETE_RULE), '')
		FROM information_schema.TABLE_CONSTRAINTS AS tc
		JOIN information_schema.KEY_COLUMN_USAGE AS k ON k.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA
			AND k.TABLE_NAME = tc.TABLE_NAME AND k.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
		LEFT JOIN information_schema.REFERENTIAL_CONSTRAINTS AS rc ON rc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA
			AND rc.TABLE_NAME = tc.TABLE_NAME AND rc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
		WHERE tc.TABLE_SCHEMA = ? AND tc.CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')
		GROUP BY tc.TABLE_NAME, tc.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE`, db) {
		kind := map[string]string{"PRIMARY KEY": connectors.KeyPrimary, "UNIQUE": connectors.KeyUnique,
			"FOREIGN KEY": connectors.KeyForeign}[r[2]]
		want[r[0]+"."+r[1]] = fmt.Sprintf("%s(%s) -> %s.%s(%s) update=%s delete=%s", kind, r[3], r[4], r[5], r[6], r[7], r[8])
	}
	testenv.CompareMaps(t, "key", got, want)
	// The sample's text: 16 primary keys, 2 unique keys (rental's and store's) and 22 foreign
	// keys, each of one column, with their rules.
	foreign := map[string]string{}
	for _, k := range rec.keys() {
		if k.Type == connectors.KeyForeign {
			foreign[k.Name] = fmt.Sprintf("%s -> %s(%s) delete=%s update=%s", strings.Join(k.Columns, ","), k.RefTable,
				strings.Join(k.RefColumns, ","), k.OnDelete, k.OnUpdate)
		}
	}
	fromText := map[string]string{}
	for _, m := range textMatches(text, "CONSTRAINT `?(\\w+)`? FOREIGN KEY"+` \((\w+)\) REFERENCES (\w+) \((\w+)\) ON DELETE (RESTRICT|SET NULL|CASCADE) ON UPDATE (RESTRICT|SET NULL|CASCADE)[,\n]`) {
		fromText[m[1]] = fmt.Sprintf("%s -> %s(%s) delete=%s update=%s", m[2], m[3], m[4], m[5], m[6])
	}
	if len(fromText) != 22 {
		t.Errorf("sakila-schema.sql has %d foreign keys as this test reads it; sakila has 22", len(fromText))
	}
	testenv.CompareMaps(t, "foreign key (sakila-schema.sql)", foreign, fromText)
	counts := map[string]int{}
	for _, k := range rec.keys() {
		counts[k.Type]++
	}
	if counts[connectors.KeyPrimary] != 16 || counts[connectors.KeyUnique] != 2 {
		t.Errorf("keys by type %v; sakila-schema.sql has 16 primary and 2 unique", counts)
	}
}

func checkSakilaConstraints(t *testing.T, db string, rec *recorder) {
	// Independent: information_schema.CHECK_CONSTRAINTS. Sakila 0.8 declares no CHECK
	// constraint (MySQL 5 ignored them); MariaDB adds none of its own for its columns.
	want := queryStrings(t, `SELECT CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?`, db)
	got := only[connectors.Constraint](rec)
	if len(got) != len(want) || len(want) != 0 {
		t.Errorf("%d constraints extracted, information_schema has %q; sakila has none", len(got), want)
	}
}

func checkSakilaTriggers(t *testing.T, db string, rec *recorder, text string) {
	got := map[string]string{}
	for _, tr := range only[connectors.Trigger](rec) {
		got[tr.Table+"."+tr.Name] = fmt.Sprintf("%s %s %s order=%d enabled=%s",
			tr.Timing, strings.Join(tr.Events, ","), tr.Level, tr.Order, tr.Enabled)
	}
	// Independent: information_schema.TRIGGERS, and SHOW CREATE TRIGGER for the statement,
	// without its DEFINER clause (which the connector never writes). SHOW CREATE TRIGGER
	// repeats the statement as it was written; the connector writes it from TRIGGERS' columns
	// with the names quoted and single spaces after the body's start (triggers.go), so the two
	// are compared without backquotes and with runs of white space as one space.
	want := map[string]string{}
	shown := map[string]string{}
	for _, r := range queryStrings(t, `SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION,
			ACTION_ORIENTATION, ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?`, db) {
		show := showCreate(t, "TRIGGER", db, r[1], 2)
		m := definerClause.FindStringSubmatch(show)
		if m == nil {
			t.Fatalf("SHOW CREATE TRIGGER %s: no DEFINER clause in %q", r[1], show)
		}
		want[r[0]+"."+r[1]] = fmt.Sprintf("%s %s %s order=%s enabled=enabled", r[2], r[3], r[4], r[5])
		shown[r[0]+"."+r[1]] = strings.Replace(show, m[0], "", 1)
	}
	gotDefs := map[string]string{}
	for _, tr := range only[connectors.Trigger](rec) {
		gotDefs[tr.Table+"."+tr.Name] = tr.Definition
	}
	for name, show := range shown {
		if g, w := looseSQL(gotDefs[name]), looseSQL(show); g != w {
			t.Errorf("trigger %s definition\n got %q\nwant %q (SHOW CREATE TRIGGER)", name, gotDefs[name], show)
		}
	}
	testenv.CompareMaps(t, "trigger", got, want)

	// The sample's text: three triggers on film in sakila-schema.sql, three in sakila-data.sql.
	fromText := map[string]string{}
	for _, m := range textMatches(text, "(?m)^CREATE TRIGGER `?(\\w+)`? (BEFORE|AFTER) (INSERT|UPDATE|DELETE) ON `?(\\w+)`?\\s") {
		fromText[m[4]+"."+m[1]] = m[2] + " " + m[3] + " ROW"
	}
	if len(fromText) != 6 {
		t.Fatalf("the sample has %d triggers as this test reads it; sakila has 6: %q", len(fromText), fromText)
	}
	for name, w := range fromText {
		if got[name] != w+" order=1 enabled=enabled" {
			t.Errorf("trigger %s = %q, want %s (the sample's text)", name, got[name], w)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d triggers extracted; sakila has 6", len(got))
	}
}

func checkSakilaRoutines(t *testing.T, db string, rec *recorder, text string) {
	got := map[string]string{}
	for _, r := range only[connectors.Routine](rec) {
		got[r.Type+" "+r.Name] = fmt.Sprintf("%s definer=%t returns=%s body=%d bytes", r.Volatility, r.SecurityDefiner,
			r.ReturnType, len(r.Definition))
	}
	// Independent: information_schema.ROUTINES.
	want := map[string]string{}
	for _, r := range queryStrings(t, `SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME, IS_DETERMINISTIC, SECURITY_TYPE,
			COALESCE(DTD_IDENTIFIER, ''), LENGTH(ROUTINE_DEFINITION)
		FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?`, db) {
		volatility := map[string]string{"YES": "immutable", "NO": "volatile"}[r[2]]
		want[r[0]+" "+r[1]] = fmt.Sprintf("%s definer=%t returns=%s body=%s bytes", volatility, r[3] == "DEFINER", r[4], r[5])
	}
	testenv.CompareMaps(t, "routine", got, want)

	// The sample's text: three procedures and three functions; get_customer_balance alone is
	// DETERMINISTIC; none says SQL SECURITY INVOKER (DEFINER is the default).
	fromText := map[string]string{}
	for _, m := range textMatches(text, `(?m)^CREATE (PROCEDURE|FUNCTION) (\w+)\s*\(`) {
		fromText[strings.ToLower(m[1])+" "+m[2]] = "volatile definer=true"
	}
	fromText["function get_customer_balance"] = "immutable definer=true"
	if len(fromText) != 6 || strings.Count(text, "SQL SECURITY INVOKER\n") != 0 {
		t.Fatalf("the sample has %d routines as this test reads it; sakila has 6: %q", len(fromText), fromText)
	}
	for name, w := range fromText {
		if !strings.HasPrefix(got[name], w+" ") {
			t.Errorf("routine %s = %q, want %s (sakila-schema.sql)", name, got[name], w)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d routines extracted; sakila has 6", len(got))
	}
}

func checkSakilaLineage(t *testing.T, db string, rec *recorder) {
	got := map[string]connectors.Lineage{}
	for _, l := range only[connectors.Lineage](rec) {
		got[l.View] = l
	}
	// Independent: information_schema.VIEWS.
	var views []string
	for _, r := range queryStrings(t, `SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?`, db) {
		views = append(views, r[0])
	}
	var names []string
	for name := range got {
		names = append(names, name)
	}
	sort.Strings(views)
	sort.Strings(names)
	if !slices.Equal(names, views) || len(views) != 7 {
		t.Fatalf("lineage for %q, information_schema.VIEWS has %q; sakila has 7 views", names, views)
	}
	for _, l := range got {
		if l.Problem != "" || l.Method != "parser" || len(l.Upstream) == 0 || len(l.Columns) == 0 {
			t.Errorf("view %s: method %q, problem %q, %d upstream, %d columns", l.View, l.Method, l.Problem, len(l.Upstream), len(l.Columns))
		}
		// Every source is a column of an upstream relation (information_schema.COLUMNS).
		for _, c := range l.Columns {
			for _, s := range c.Sources {
				if !slices.Contains(l.Upstream, connectors.RelationRef{Schema: s.Schema, Name: s.Table}) {
					t.Errorf("view %s column %s: source %s.%s is not upstream", l.View, c.Column, s.Table, s.Column)
				}
				if n := queryStrings(t, `SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?
					AND TABLE_NAME = ? AND COLUMN_NAME = ?`, s.Schema, s.Table, s.Column); n[0][0] != "1" {
					t.Errorf("view %s column %s: source %s.%s.%s is no column", l.View, c.Column, s.Schema, s.Table, s.Column)
				}
			}
		}
	}

	// Upstream relations, read by hand from the views' definitions in sakila-schema.sql (the
	// tables each FROM clause and subquery names).
	for view, want := range map[string][]string{
		"actor_info":             {"actor", "category", "film", "film_actor", "film_category"},
		"customer_list":          {"address", "city", "country", "customer"},
		"film_list":              {"actor", "category", "film", "film_actor", "film_category"},
		"sales_by_film_category": {"category", "film", "film_category", "inventory", "payment", "rental"},
		"sales_by_store":         {"address", "city", "country", "inventory", "payment", "rental", "staff", "store"},
		"staff_list":             {"address", "city", "country", "staff"},
	} {
		var up []string
		for _, r := range got[view].Upstream {
			if r.Schema != db {
				t.Errorf("view %s: upstream %s.%s in another database", view, r.Schema, r.Name)
			}
			up = append(up, r.Name)
		}
		sort.Strings(up)
		if !slices.Equal(up, want) {
			t.Errorf("view %s: upstream %q, want %q (sakila-schema.sql)", view, up, want)
		}
	}
	// Two views' columns, read by hand from their definitions in sakila-schema.sql.
	for view, want := range map[string][]string{
		"customer_list": {"ID = direct: customer.customer_id", "name = expression: customer.first_name, customer.last_name",
			"address = direct: address.address", "zip code = direct: address.postal_code", "phone = direct: address.phone",
			"city = direct: city.city", "country = direct: country.country",
			"notes = expression: customer.active", "SID = direct: customer.store_id"},
		"sales_by_store": {"store = expression: city.city, country.country",
			"manager = expression: staff.first_name, staff.last_name", "total_sales = expression: payment.amount"},
	} {
		var cols []string
		for _, c := range got[view].Columns {
			var src []string
			for _, s := range c.Sources {
				src = append(src, s.Table+"."+s.Column)
			}
			cols = append(cols, c.Column+" = "+c.Transformation+": "+strings.Join(src, ", "))
		}
		if !slices.Equal(cols, want) {
			t.Errorf("view %s columns\n got %q\nwant %q (sakila-schema.sql)", view, cols, want)
		}
	}
}

// looseSQL is statement text without backquotes, with each run of white space one space.
func looseSQL(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "`", "")), " ")
}

// textMatches returns the submatches of every match of re in text.
func textMatches(text, re string) [][]string {
	return regexp.MustCompile(re).FindAllStringSubmatch(text, -1)
}
