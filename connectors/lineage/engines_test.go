package lineage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/secure-agent/secure-agent/internal/testenv"
)

// engineTables are the tables both engines' tests create; spend is a view over orders.
var engineTables = []string{
	"CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), email VARCHAR(50), region VARCHAR(10))",
	"CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(10,2), status VARCHAR(10), created DATE)",
	"CREATE TABLE items (order_id INT, sku VARCHAR(10), qty INT, price DECIMAL(10,2))",
	"CREATE TABLE regions (region VARCHAR(10), label VARCHAR(50))",
	"CREATE VIEW spend AS SELECT customer_id, SUM(total) AS amount FROM orders GROUP BY customer_id",
}

// engineView is a view the engine tests create, and its lineage written by hand from its SQL
// (render's format, with "S." standing for the schema). wantMySQL or wantSQLite replace want
// where the engines differ.
type engineView struct {
	name, query           string
	want                  string
	wantMySQL, wantSQLite string
	sqliteOnly, mysqlOnly bool
}

var engineViews = []engineView{
	{name: "v_join", query: "SELECT c.name, o.total AS amount, i.sku, r.label FROM customers c JOIN orders o ON o.customer_id = c.id " +
		"LEFT JOIN items i ON i.order_id = o.id RIGHT JOIN regions r ON r.region = c.region CROSS JOIN spend s",
		want: lines("upstream: S.customers S.items S.orders S.regions S.spend",
			"name: direct S.customers.name", "amount: direct S.orders.total", "sku: direct S.items.sku", "label: direct S.regions.label")},
	{name: "v_using", query: "SELECT * FROM customers JOIN regions USING (region)",
		wantMySQL: lines("upstream: S.customers S.regions",
			"region: direct S.customers.region", "id: direct S.customers.id", "name: direct S.customers.name",
			"email: direct S.customers.email", "label: direct S.regions.label"),
		wantSQLite: lines("upstream: S.customers S.regions",
			"id: direct S.customers.id", "name: direct S.customers.name", "email: direct S.customers.email",
			"region: direct S.customers.region", "label: direct S.regions.label")},
	{name: "v_natural_left", query: "SELECT * FROM customers NATURAL LEFT JOIN regions",
		wantMySQL: lines("upstream: S.customers S.regions",
			"region: direct S.customers.region", "id: direct S.customers.id", "name: direct S.customers.name",
			"email: direct S.customers.email", "label: direct S.regions.label"),
		wantSQLite: lines("upstream: S.customers S.regions",
			"id: direct S.customers.id", "name: direct S.customers.name", "email: direct S.customers.email",
			"region: direct S.customers.region", "label: direct S.regions.label")},
	{name: "v_right_using", query: "SELECT * FROM customers RIGHT JOIN regions USING (region)",
		wantMySQL: lines("upstream: S.customers S.regions",
			"region: direct S.regions.region", "label: direct S.regions.label", "id: direct S.customers.id",
			"name: direct S.customers.name", "email: direct S.customers.email"),
		wantSQLite: lines("upstream: S.customers S.regions",
			"id: direct S.customers.id", "name: direct S.customers.name", "email: direct S.customers.email",
			"region: expression S.customers.region S.regions.region", "label: direct S.regions.label")},
	{name: "v_expr", query: "SELECT o.total * 2 AS dbl, CASE WHEN o.status = 'x' THEN o.total ELSE 0 END AS t2, UPPER(c.name) AS uname, " +
		"COALESCE(c.email, c.name, 'n/a') AS contact, CAST(o.total AS CHAR) AS t_txt, 42 AS answer FROM orders o JOIN customers c ON c.id = o.customer_id",
		want: lines("upstream: S.customers S.orders",
			"dbl: expression S.orders.total", "t2: expression S.orders.status S.orders.total", "uname: expression S.customers.name",
			"contact: expression S.customers.email S.customers.name", "t_txt: expression S.orders.total", "answer: expression")},
	{name: "v_star", query: "SELECT r.*, c.id FROM customers c, regions r",
		want: lines("upstream: S.customers S.regions",
			"region: direct S.regions.region", "label: direct S.regions.label", "id: direct S.customers.id")},
	{name: "v_scalar", query: "SELECT c.id, (SELECT MAX(o.total) FROM orders o WHERE o.customer_id = c.id) AS top FROM customers c",
		want: lines("upstream: S.customers S.orders", "id: direct S.customers.id", "top: expression S.orders.total")},
	{name: "v_derived", query: "SELECT d.cid, d.n FROM (SELECT customer_id AS cid, COUNT(*) AS n FROM orders GROUP BY customer_id) d",
		want: lines("upstream: S.orders", "cid: direct S.orders.customer_id", "n: expression")},
	{name: "v_cte", query: "WITH big AS (SELECT customer_id, total FROM orders WHERE total > 100) SELECT c.name, big.total FROM big JOIN customers c ON c.id = big.customer_id",
		want: lines("upstream: S.customers S.orders", "name: direct S.customers.name", "total: direct S.orders.total")},
	{name: "v_recursive", query: "WITH RECURSIVE r(n, who) AS (SELECT 1, name FROM customers UNION ALL SELECT n + 1, who FROM r WHERE n < 3) SELECT n, who FROM r",
		want: lines("upstream: S.customers", "n: expression", "who: direct S.customers.name")},
	{name: "v_union", query: "SELECT name, email FROM customers UNION ALL SELECT status, 'x' FROM orders",
		want: lines("upstream: S.customers S.orders", "name: direct S.customers.name S.orders.status", "email: expression S.customers.email")},
	{name: "v_setops", query: "SELECT id FROM customers INTERSECT SELECT customer_id FROM orders EXCEPT SELECT customer_id FROM spend",
		want: lines("upstream: S.customers S.orders S.spend", "id: direct S.customers.id S.orders.customer_id S.spend.customer_id")},
	{name: "v_agg", query: "SELECT status, COUNT(*) AS n, SUM(total) AS s FROM orders GROUP BY status",
		want: lines("upstream: S.orders", "status: direct S.orders.status", "n: expression", "s: expression S.orders.total")},
	{name: "v_window", query: "SELECT id, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY created) AS rn, SUM(total) OVER w AS running " +
		"FROM orders WINDOW w AS (PARTITION BY customer_id)",
		want: lines("upstream: S.orders", "id: direct S.orders.id", "rn: expression S.orders.created S.orders.customer_id",
			"running: expression S.orders.customer_id S.orders.total")},
	{name: "v_view_on_view", query: "SELECT customer_id, amount * 2 AS dbl FROM spend",
		want: lines("upstream: S.spend", "customer_id: direct S.spend.customer_id", "dbl: expression S.spend.amount")},
	{name: "v_quoted", sqliteOnly: true,
		query: `SELECT "c"."id" AS "the id", [c].[name], ` + "`c`.`email` 'mail'" + ` FROM customers AS "c" -- a comment
			WHERE c.name GLOB 'a*' OR c.id == 1`,
		want: lines("upstream: S.customers", "the id: direct S.customers.id", "name: direct S.customers.name", "mail: direct S.customers.email")},
	{name: "v_column_list(\"x y\", [z])", sqliteOnly: true, query: "SELECT id, name || email FROM customers",
		want: lines("upstream: S.customers", "x y: direct S.customers.id", "z: expression S.customers.email S.customers.name")},
}

// viewName is the name of an engine view (its CREATE VIEW may give a column list after it).
func (v engineView) viewName() string {
	name, _, _ := strings.Cut(v.name, "(")
	return name
}

func (v engineView) expected(d Dialect, schema string) string {
	w := v.want
	if d == MySQL && v.wantMySQL != "" {
		w = v.wantMySQL
	}
	if d == SQLite && v.wantSQLite != "" {
		w = v.wantSQLite
	}
	return strings.ReplaceAll(w, "S.", schema+".")
}

// TestSQLiteEngine creates the views in a real SQLite database, reads their definitions back from
// sqlite_schema and their relations' columns from pragma_table_info, and compares the analysis
// with the lineage written by hand.
func TestSQLiteEngine(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "lineage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	for _, stmt := range engineTables {
		mustExec(t, db, stmt)
	}
	for _, v := range engineViews {
		if !v.mysqlOnly {
			mustExec(t, db, "CREATE VIEW "+v.name+" AS "+v.query)
		}
	}
	cat := NewCatalog(SQLite, sqliteRelations(t, db))
	defs := queryPairs(t, db, "SELECT name, sql FROM sqlite_schema WHERE type = 'view'")
	for _, v := range engineViews {
		if v.mysqlOnly {
			continue
		}
		t.Run(v.viewName(), func(t *testing.T) {
			def, ok := defs[v.viewName()]
			if !ok {
				t.Fatalf("sqlite_schema has no view %s", v.viewName())
			}
			checkLineage(t, Analyze(SQLite, "main", v.viewName(), def, cat), v.expected(SQLite, "main"))
		})
	}
	// The claim behind v_right_using: SQLite's merged column of a RIGHT JOIN is the right
	// side's value where the left side has no row (a coalesce of both), MySQL's the right's.
	mustExec(t, db, "INSERT INTO regions VALUES ('north', 'North')")
	var region sql.NullString
	if err := db.QueryRow("SELECT region FROM v_right_using").Scan(&region); err != nil || region.String != "north" {
		t.Fatalf("v_right_using region = %v, %v; want north (the right side's)", region, err)
	}
}

// sqliteRelations reads every table's and view's columns with pragma_table_info.
func sqliteRelations(t *testing.T, db *sql.DB) []Relation {
	t.Helper()
	rows, err := db.Query(`SELECT m.name, p.name FROM sqlite_schema m JOIN pragma_table_info(m.name) p
		WHERE m.type IN ('table', 'view') ORDER BY m.name, p.cid`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var out []Relation
	for rows.Next() {
		var rel, col string
		if err := rows.Scan(&rel, &col); err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 || out[len(out)-1].Name != rel {
			out = append(out, Relation{Schema: "main", Name: rel})
		}
		out[len(out)-1].Columns = append(out[len(out)-1].Columns, col)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMariaDBEngine creates the views in a database of the real MariaDB test server, reads their
// definitions from information_schema.VIEWS (MariaDB's normalised text) and the relations'
// columns from information_schema.COLUMNS, and compares the analysis with the lineage written by
// hand.
func TestMariaDBEngine(t *testing.T) {
	db, schema := mariaDBDatabase(t)
	for _, stmt := range engineTables {
		mustExec(t, db, stmt)
	}
	for _, v := range engineViews {
		if !v.sqliteOnly {
			mustExec(t, db, "CREATE VIEW "+v.name+" AS "+v.query)
		}
	}
	cat := NewCatalog(MySQL, mariaDBRelations(t, db, schema))
	defs := queryPairs(t, db, "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?", schema)
	for _, v := range engineViews {
		if v.sqliteOnly {
			continue
		}
		t.Run(v.viewName(), func(t *testing.T) {
			def, ok := defs[v.viewName()]
			if !ok {
				t.Fatalf("information_schema.VIEWS has no view %s", v.viewName())
			}
			checkLineage(t, Analyze(MySQL, schema, v.viewName(), def, cat), v.expected(MySQL, schema))
		})
	}
}

// mariaDBDatabase creates a database with a random name on the MariaDB test server (scripts/
// services starts it; SECURE_AGENT_TEST_MYSQL_ADMIN_DSN says where) and returns a connection
// to it; both go when the test ends.
func mariaDBDatabase(t *testing.T) (*sql.DB, string) {
	t.Helper()
	dsn := os.Getenv("SECURE_AGENT_TEST_MYSQL_ADMIN_DSN")
	if dsn == "" {
		dsn = "root:secure-agent-test@tcp(127.0.0.1:53306)/?multiStatements=true&parseTime=true"
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("SECURE_AGENT_TEST_MYSQL_ADMIN_DSN: %v", err)
	}
	cfg.Logger = &mysql.NopLogger{}
	cfg.MultiStatements = false
	admin, err := openMySQL(cfg)
	if err != nil {
		testenv.RequireOrSkip(t, "the MariaDB test server is not reachable (start it with scripts/services mariadb; see scripts/test-env): "+err.Error())
	}
	t.Cleanup(func() { _ = admin.Close() })
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "salineage" + hex.EncodeToString(b)
	mustExec(t, admin, "CREATE DATABASE "+schema+" CHARACTER SET utf8mb4")
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + schema) })
	cfg.DBName = schema
	db, err := openMySQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, schema
}

func openMySQL(cfg *mysql.Config) (*sql.DB, error) {
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// mariaDBRelations reads the columns of schema's tables and views from information_schema.
func mariaDBRelations(t *testing.T, db *sql.DB, schema string) []Relation {
	t.Helper()
	rows, err := db.Query(`SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var out []Relation
	for rows.Next() {
		var rel, col string
		if err := rows.Scan(&rel, &col); err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 || out[len(out)-1].Name != rel {
			out = append(out, Relation{Schema: schema, Name: rel})
		}
		out[len(out)-1].Columns = append(out[len(out)-1].Columns, col)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustExec(t *testing.T, db *sql.DB, stmt string) {
	t.Helper()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// queryPairs runs a query of two string columns and returns the first's values mapped to the
// second's.
func queryPairs(t *testing.T, db *sql.DB, q string, args ...any) map[string]string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
