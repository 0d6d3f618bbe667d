package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// canary is part of every test database's directory name; it must never appear in an error.
const canary = "CANARY-3f9c2e-secret-dir"

// awkward is a catalog with every naming and typing oddity the connector must survive.
var awkward = []string{
	`CREATE TABLE "Order Items" ("Order ID" INTEGER NOT NULL, "Line" INTEGER NOT NULL,
		qty REAL DEFAULT 1.5, note TEXT DEFAULT 'it''s "quoted"', PRIMARY KEY ("Order ID", "Line"))`,
	`CREATE TABLE "select" ("from" TEXT, "where" INT, "order" BLOB)`, // reserved words, no primary key
	`CREATE TABLE "MixedCase" (Id INTEGER PRIMARY KEY, "Name" TEXT NOT NULL DEFAULT '', "lower" varchar(20))`,
	`CREATE TABLE "café ☕" ("naïve" TEXT, "日本語" BLOB DEFAULT x'00ff')`,
	`CREATE TABLE "we""ird.name" ("a""b" int, "c d" numeric(10,2) DEFAULT (1 + 2))`,
	`CREATE TABLE counted (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT)`, // creates sqlite_sequence
	`CREATE INDEX counted_k ON counted (k)`,
	`CREATE VIEW "v one" AS SELECT "Order ID", qty FROM "Order Items"`,
	`CREATE VIEW "v two" AS SELECT * FROM "v one" WHERE qty > 1`, // a view on a view
	`CREATE TABLE untyped (a, b, c)`,
	`CREATE TABLE strict_t (id INTEGER PRIMARY KEY, body TEXT) STRICT`,
	`CREATE TABLE no_rowid (k TEXT PRIMARY KEY, v) WITHOUT ROWID`,
	// Keys: an INTEGER PRIMARY KEY (the rowid), a self-reference with the referenced column left
	// out, a named single-column UNIQUE, an unnamed composite UNIQUE, a named composite foreign
	// key to another table spelled in another case, and a CHECK after it with no comma.
	`CREATE TABLE "Shipments" (
		id INTEGER PRIMARY KEY,
		"Order ID" INTEGER, "Line" INTEGER,
		parent_id INTEGER REFERENCES "Shipments" ON DELETE SET NULL, -- self-referencing; UNIQUE, PRIMARY KEY
		code TEXT NOT NULL CONSTRAINT "uq code" UNIQUE,
		carrier TEXT COLLATE NOCASE, tracking TEXT /* , CONSTRAINT bogus UNIQUE (tracking) */,
		UNIQUE (carrier, tracking),
		CONSTRAINT fk_items FOREIGN KEY ("Order ID", "Line") REFERENCES "order items" ("order id", "LINE")
			ON UPDATE CASCADE ON DELETE RESTRICT
		CHECK (code <> '')
	)`,
	// A WITHOUT ROWID table with a named composite primary key, a composite foreign key whose
	// referenced columns are left out (the referenced table's primary key), and a foreign key to a
	// table that does not exist.
	`CREATE TABLE "Returns" (
		"Order ID" INTEGER NOT NULL, "Line" INTEGER NOT NULL, shipment INTEGER, reason TEXT,
		CONSTRAINT "returns pk" PRIMARY KEY ("Line", "Order ID"),
		FOREIGN KEY ("Order ID", "Line") REFERENCES "Order Items" ON DELETE CASCADE,
		FOREIGN KEY (shipment) REFERENCES "Shipments" (id),
		FOREIGN KEY (reason) REFERENCES nowhere
	) WITHOUT ROWID`,
	// A partial index, a unique expression index, an index on quoted unicode names.
	`CREATE INDEX shipments_open ON "Shipments" (carrier, "Order ID") WHERE tracking IS NULL AND code <> ''`,
	`CREATE UNIQUE INDEX "Shipments by code" ON "Shipments" (lower(code) COLLATE NOCASE DESC, "Line", carrier || '-' || tracking)`,
	`CREATE INDEX "café index" ON "café ☕" ("日本語" DESC, "naïve" COLLATE NOCASE)`,
}

// makeDB creates a database file in a directory whose name holds the canary, runs stmts and
// returns the file's path. It is closed before returning.
func makeDB(t *testing.T, dirName string, stmts ...string) string {
	t.Helper()
	dir := filepath.Join(realDir(t, t.TempDir()), dirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "catalog.db")
	writeDB(t, path, stmts...)
	return path
}

// writeDB creates the database file path, runs stmts and closes it.
func writeDB(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	// One transaction, so that the fixture costs one sync.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func awkwardDB(t *testing.T) string {
	stmts := slices.Clone(awkward)
	for i := range 100 {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO counted (k) VALUES ('k%d')`, i%7))
	}
	stmts = append(stmts, `ANALYZE counted`)
	return makeDB(t, canary, stmts...)
}

func creds(path string) connectors.Credentials {
	return connectors.Credentials{"path": secrets.Value(path)}
}

type collector struct{ entities []connectors.Entity }

func (c *collector) Write(e connectors.Entity) error {
	c.entities = append(c.entities, e)
	return nil
}

func (c *collector) tables() []connectors.Table {
	var out []connectors.Table
	for _, e := range c.entities {
		if t, ok := e.(connectors.Table); ok {
			out = append(out, t)
		}
	}
	return out
}

func (c *collector) columns(table string) []connectors.Column {
	var out []connectors.Column
	for _, e := range c.entities {
		if col, ok := e.(connectors.Column); ok && col.Table == table {
			out = append(out, col)
		}
	}
	return out
}

// realDir is dir with its symbolic links resolved, as the agent passes SQLiteDirs.
func realDir(t *testing.T, dir string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// allow returns the options that allow the directories of paths (and nothing else).
func allow(t *testing.T, paths ...string) connectors.OpenOptions {
	t.Helper()
	var o connectors.OpenOptions
	for _, p := range paths {
		o.SQLiteDirs = append(o.SQLiteDirs, realDir(t, filepath.Dir(p)))
	}
	return o
}

func open(t *testing.T, path string) *Source {
	t.Helper()
	s, err := Open(context.Background(), creds(path), allow(t, path))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func extractAll(t *testing.T, s *Source, filters connectors.Filters) *collector {
	t.Helper()
	ctx := context.Background()
	schemas, err := s.Schemas(ctx, filters)
	if err != nil {
		t.Fatalf("Schemas: %v", err)
	}
	var c collector
	if err := s.Extract(ctx, schemas, filters, &c); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return &c
}

// independent reads the catalog with plain per-table PRAGMA statements on a separate connection:
// object name -> type, and object name -> columns in order.
func independent(t *testing.T, path string) (map[string]string, map[string][]string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	rows, err := db.Query(`SELECT name, type FROM sqlite_master WHERE type IN ('table','view')`)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for rows.Next() {
		var n, ty string
		if err := rows.Scan(&n, &ty); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(strings.ToLower(n), "sqlite_") {
			types[n] = ty
		}
	}
	_ = rows.Close()
	cols := map[string][]string{}
	for n := range types {
		r, err := db.Query(`PRAGMA table_info(` + quoteIdent(n) + `)`)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var cid, notnull, pk int
			var name, typ string
			var dflt sql.NullString
			if err := r.Scan(&cid, &name, &typ, &notnull, &dflt, &pk); err != nil {
				t.Fatal(err)
			}
			cols[n] = append(cols[n], name)
		}
		_ = r.Close()
	}
	return types, cols
}

func TestExtractAwkwardCatalog(t *testing.T) {
	path := awkwardDB(t)
	s := open(t, path)
	ctx := context.Background()

	rep, err := s.Preflight(ctx)
	if err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	if rep.ServerVersion == "" || !strings.HasPrefix(rep.ServerVersion, "3.") {
		t.Errorf("ServerVersion = %q", rep.ServerVersion)
	}
	if rep.Identity != "sqlite "+rep.ServerVersion || strings.Contains(rep.Identity, canary) {
		t.Errorf("Identity = %q", rep.Identity)
	}
	if len(rep.MissingPrivileges) != 0 {
		t.Errorf("MissingPrivileges = %v", rep.MissingPrivileges)
	}

	schemas, err := s.Schemas(ctx, connectors.Filters{})
	if err != nil || !slices.Equal(schemas, []string{"main"}) {
		t.Fatalf("Schemas = %v, %v", schemas, err)
	}

	c := extractAll(t, s, connectors.Filters{})
	wantTypes, wantCols := independent(t, path)

	// Tables: exactly the independent list, sorted by name, no sqlite_% internals.
	var names []string
	for _, tb := range c.tables() {
		names = append(names, tb.Name)
		if tb.Schema != "main" {
			t.Errorf("%s: schema %q", tb.Name, tb.Schema)
		}
		if wantTypes[tb.Name] != tb.Type {
			t.Errorf("%s: type %q, want %q", tb.Name, tb.Type, wantTypes[tb.Name])
		}
		if strings.HasPrefix(tb.Name, "sqlite_") {
			t.Errorf("internal table %s extracted", tb.Name)
		}
	}
	if len(names) != len(wantTypes) || !slices.IsSorted(names) {
		t.Errorf("tables = %q, want the %d of %v sorted", names, len(wantTypes), wantTypes)
	}
	// Columns: per table, exactly the independent list in order, positions 1..n.
	total, wantTotal := 0, 0
	for name, want := range wantCols {
		wantTotal += len(want)
		got := c.columns(name)
		total += len(got)
		var gotNames []string
		for i, col := range got {
			gotNames = append(gotNames, col.Name)
			if col.Position != i+1 || col.Schema != "main" {
				t.Errorf("%s.%s: position %d schema %q", name, col.Name, col.Position, col.Schema)
			}
		}
		if !slices.Equal(gotNames, want) {
			t.Errorf("%s: columns %q, want %q", name, gotNames, want)
		}
	}
	if total != wantTotal || total == 0 {
		t.Errorf("%d columns, want %d", total, wantTotal)
	}

	// Stream order: kind by kind, each kind by table (and columns by position, keys and indexes by
	// name).
	checkStreamOrder(t, c.entities, []string{"main"})

	tables := map[string]connectors.Table{}
	for _, tb := range c.tables() {
		tables[tb.Name] = tb
	}
	col := func(table, name string) connectors.Column {
		for _, c := range c.columns(table) {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no column %s.%s", table, name)
		return connectors.Column{}
	}
	// Composite primary key, NOT NULL, declared types and quoted defaults.
	if c1, c2 := col("Order Items", "Order ID"), col("Order Items", "Line"); !c1.PrimaryKey || !c2.PrimaryKey || c1.Nullable || c1.DataType != "INTEGER" {
		t.Errorf("composite key columns: %+v %+v", c1, c2)
	}
	if n := col("Order Items", "note"); n.Default != `'it''s "quoted"'` || !n.Nullable || n.PrimaryKey || n.DataType != "TEXT" {
		t.Errorf("note = %+v", n)
	}
	if q := col("Order Items", "qty"); q.Default != "1.5" || q.DataType != "REAL" {
		t.Errorf("qty = %+v", q)
	}
	// No primary key; reserved words.
	for _, cc := range c.columns("select") {
		if cc.PrimaryKey {
			t.Errorf("select.%s is a primary key", cc.Name)
		}
	}
	if col("select", "from").DataType != "TEXT" {
		t.Error(`"select"."from" type`)
	}
	if m := col("MixedCase", "Name"); m.Nullable || m.Default != "''" {
		t.Errorf("MixedCase.Name = %+v", m)
	}
	if m := col("MixedCase", "Id"); !m.PrimaryKey {
		t.Errorf("MixedCase.Id = %+v", m)
	}
	if m := col("MixedCase", "lower"); m.DataType != "varchar(20)" {
		t.Errorf("MixedCase.lower = %+v", m)
	}
	if u := col("café ☕", "日本語"); u.DataType != "BLOB" || u.Default != "x'00ff'" {
		t.Errorf("unicode column = %+v", u)
	}
	if w := col(`we"ird.name`, "c d"); w.DataType != "numeric(10,2)" || w.Default != "1 + 2" {
		t.Errorf("weird column = %+v", w)
	}
	if ab := col(`we"ird.name`, `a"b`); !strings.EqualFold(ab.DataType, "int") {
		t.Errorf(`a"b = %+v`, ab)
	}
	if u := col("untyped", "a"); u.DataType != "" || !u.Nullable {
		t.Errorf("untyped.a = %+v", u)
	}
	// Views: definitions, and a view on a view has its columns.
	if v := tables["v two"]; v.Type != "view" || !strings.Contains(v.Definition, `FROM "v one"`) || v.RowCount != nil {
		t.Errorf("v two = %+v", v)
	}
	if len(c.columns("v two")) != 2 || col("v two", "Order ID").Position != 1 {
		t.Errorf("v two columns = %+v", c.columns("v two"))
	}
	if tb := tables["Order Items"]; tb.Definition != "" || tb.Type != "table" {
		t.Errorf("Order Items = %+v", tb)
	}
	// Row-count estimates: from sqlite_stat1 for the analysed table only.
	if rc := tables["counted"].RowCount; rc == nil || *rc != 100 {
		t.Errorf("counted row count = %v", rc)
	}
	if rc := tables["select"].RowCount; rc != nil {
		t.Errorf("select row count = %d, want none", *rc)
	}
}

func TestFilters(t *testing.T) {
	s := open(t, awkwardDB(t))
	ctx := context.Background()

	c := extractAll(t, s, connectors.Filters{IncludeTables: []string{"main.v*", "main.café*"}, ExcludeTables: []string{"main.v two"}})
	var names []string
	for _, tb := range c.tables() {
		names = append(names, tb.Name)
	}
	if !slices.Equal(names, []string{"café ☕", "v one"}) {
		t.Errorf("tables = %q", names)
	}
	for _, e := range c.entities {
		if col, ok := e.(connectors.Column); ok && col.Table != "café ☕" && col.Table != "v one" {
			t.Errorf("column of excluded table: %+v", col)
		}
	}

	schemas, err := s.Schemas(ctx, connectors.Filters{ExcludeSchemas: []string{"ma*"}})
	if err != nil || len(schemas) != 0 {
		t.Errorf("Schemas with main excluded = %v, %v", schemas, err)
	}
	schemas, err = s.Schemas(ctx, connectors.Filters{IncludeSchemas: []string{"other"}})
	if err != nil || len(schemas) != 0 {
		t.Errorf("Schemas with only other included = %v, %v", schemas, err)
	}

	err = s.Extract(ctx, []string{"nope"}, connectors.Filters{}, &collector{})
	if secrets.KindOf(err) != secrets.InvalidInput || !strings.Contains(err.Error(), `"main"`) {
		t.Errorf("unknown schema: %v", err)
	}
}

// TestAttachedSchema attaches a second database under an awkward name, as the connector would
// see one, and extracts it through its quoted identifier.
func TestAttachedSchema(t *testing.T) {
	s := open(t, awkwardDB(t))
	other := makeDB(t, "other", `CREATE TABLE "t ""1""" (x INTEGER PRIMARY KEY, y)`, `CREATE VIEW w AS SELECT y FROM "t ""1"""`)
	conn, err := s.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `ATTACH ? AS "other ""db"""`, dsn(other)); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	ctx := context.Background()
	schemas, err := s.Schemas(ctx, connectors.Filters{})
	if err != nil || !slices.Equal(schemas, []string{"main", `other "db"`}) {
		t.Fatalf("Schemas = %q, %v", schemas, err)
	}
	var c collector
	if err := s.Extract(ctx, []string{`other "db"`}, connectors.Filters{ExcludeTables: []string{"main.*"}}, &c); err != nil {
		t.Fatal(err)
	}
	if tb := c.tables(); len(tb) != 2 || tb[0].Name != `t "1"` || tb[1].Name != "w" || tb[0].Schema != `other "db"` {
		t.Errorf("tables = %+v", tb)
	}
	if cols := c.columns(`t "1"`); len(cols) != 2 || !cols[0].PrimaryKey || cols[1].Schema != `other "db"` {
		t.Errorf("columns = %+v", cols)
	}
}

// TestBrokenObjects: a view over a dropped table cannot be described; the rest of the schema
// still is, and the broken view is listed without columns.
func TestBrokenObjects(t *testing.T) {
	path := makeDB(t, canary,
		`CREATE TABLE a (x INTEGER PRIMARY KEY, y TEXT)`,
		`CREATE TABLE gone (z)`,
		`CREATE VIEW m_broken AS SELECT z FROM gone`,
		`CREATE VIEW n_ok AS SELECT y FROM a`,
		`DROP TABLE gone`,
		`CREATE TABLE zz (q REAL NOT NULL)`,
	)
	s := open(t, path)
	// The set-based query does fail here, so the slow path is what is tested.
	if _, err := s.db.Exec(columnsQuery([]string{"main"}), "main"); sqliteCode(err)&0xff != 1 {
		t.Fatalf("set-based query on a broken view: %v", err)
	}
	c := extractAll(t, s, connectors.Filters{ExcludeTables: []string{"main.n_ok"}})
	var names []string
	for _, tb := range c.tables() {
		names = append(names, tb.Name)
	}
	if !slices.Equal(names, []string{"a", "m_broken", "zz"}) {
		t.Errorf("tables = %q", names)
	}
	if len(c.columns("a")) != 2 || len(c.columns("zz")) != 1 || len(c.columns("m_broken")) != 0 || len(c.columns("n_ok")) != 0 {
		t.Errorf("entities = %+v", c.entities)
	}
	if zz := c.columns("zz"); len(zz) == 1 && (zz[0].Nullable || zz[0].Position != 1) {
		t.Errorf("zz = %+v", zz)
	}
}

func fileState(t *testing.T, path string) (sum [32]byte, mtime time.Time, entries []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		entries = append(entries, de.Name())
	}
	return sha256.Sum256(b), st.ModTime(), entries
}

func TestReadOnly(t *testing.T) {
	path := awkwardDB(t)
	// An old mtime, so that any write would show.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	sum0, mtime0, entries0 := fileState(t, path)

	s, err := Open(context.Background(), creds(path), allow(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Preflight(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = extractAll(t, s, connectors.Filters{})
	// The connection refuses writes.
	for _, q := range []string{`CREATE TABLE intruder (x)`, `DELETE FROM counted`, `PRAGMA user_version = 7`} {
		if _, err := s.db.Exec(q); err == nil {
			t.Errorf("%s succeeded on the read-only connection", q)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	sum1, mtime1, entries1 := fileState(t, path)
	if sum0 != sum1 || !mtime0.Equal(mtime1) {
		t.Errorf("the database file changed: mtime %v -> %v", mtime0, mtime1)
	}
	if !slices.Equal(entries0, entries1) || !slices.Equal(entries1, []string{"catalog.db"}) {
		t.Errorf("directory entries %q -> %q (no -journal, -wal or -shm may appear)", entries0, entries1)
	}
}

// TestPathNeedsURIEscaping: '?', '#', '%' and spaces in the directory name are literal.
func TestPathNeedsURIEscaping(t *testing.T) {
	made := makeDB(t, "plain", `CREATE TABLE t (x)`)
	dir := filepath.Join(filepath.Dir(filepath.Dir(made)), "odd ?mode=rwc#frag%20x")
	if err := os.Rename(filepath.Dir(made), dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "catalog.db")
	s := open(t, path)
	c := extractAll(t, s, connectors.Filters{})
	if len(c.tables()) != 1 {
		t.Fatalf("tables = %+v", c.tables())
	}
	des, _ := os.ReadDir(filepath.Dir(path))
	if len(des) != 1 {
		t.Errorf("directory has %d entries", len(des))
	}
}

// assertClean fails if err, any error in its chain, or its formatted forms mention the path or
// the canary.
func assertClean(t *testing.T, err error, path string) {
	t.Helper()
	var texts []string
	texts = append(texts, fmt.Sprintf("%v|%+v|%s|%q", err, err, err, err))
	for e := err; e != nil; e = errors.Unwrap(e) {
		texts = append(texts, e.Error())
	}
	var se *secrets.Error
	if errors.As(err, &se) {
		texts = append(texts, se.Msg, se.Detail, se.Ref, se.Field, se.Store)
	}
	for _, s := range texts {
		if strings.Contains(s, canary) || strings.Contains(s, path) {
			t.Errorf("error text reveals the path: %q", s)
		}
	}
}

func TestOpenFailures(t *testing.T) {
	base := filepath.Join(realDir(t, t.TempDir()), canary)
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(base, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database, just text "), 200), 0o644); err != nil {
		t.Fatal(err)
	}
	// A valid database whose header magic is then damaged.
	damaged := makeDB(t, canary+"-damaged", `CREATE TABLE t (x)`)
	b, _ := os.ReadFile(damaged)
	copy(b, "SQLite format 2\x00")
	if err := os.WriteFile(damaged, b, 0o644); err != nil {
		t.Fatal(err)
	}
	plainFile := filepath.Join(base, "plain")
	if err := os.WriteFile(plainFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		path   string
		kind   secrets.Kind
		detail string
	}{
		{"missing file", filepath.Join(base, "missing.db"), secrets.InvalidInput, "ENOENT"},
		{"missing directory", filepath.Join(base, "no-such-dir", "x.db"), secrets.InvalidInput, "ENOENT"},
		{"directory", base, secrets.InvalidInput, ""},
		{"file as directory", filepath.Join(plainFile, "x.db"), secrets.InvalidInput, "ENOTDIR"},
		{"not a database", garbage, secrets.InvalidInput, "SQLITE_NOTADB"},
		{"damaged header", damaged, secrets.InvalidInput, "SQLITE_NOTADB"},
		{"device", "/dev/null", secrets.InvalidInput, ""},
	}
	// Allowed: the directories holding base and damaged (so that base itself is a directory
	// inside an allowed one), and /dev, so that /dev/null reaches the device check.
	opts := allow(t, base, filepath.Dir(damaged), "/dev/null")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), creds(tc.path), opts)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			var se *secrets.Error
			if !errors.As(err, &se) || se.Kind != tc.kind || se.Detail != tc.detail || se.Field != "path" {
				t.Errorf("err = %#v", err)
			}
			if secrets.Retryable(err) {
				t.Errorf("%v is retryable", err)
			}
			assertClean(t, err, tc.path)
		})
	}
	// Nothing was created.
	for _, p := range []string{filepath.Join(base, "missing.db"), filepath.Join(base, "no-such-dir")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed Open: %v", filepath.Base(p), err)
		}
	}
	des, _ := os.ReadDir(base)
	if len(des) != 2 {
		t.Errorf("%d entries in the directory, want 2", len(des))
	}

	// No path at all.
	for _, c := range []connectors.Credentials{{}, {"path": secrets.Value("")}} {
		_, err := Open(context.Background(), c, opts)
		var se *secrets.Error
		if !errors.As(err, &se) || se.Kind != secrets.InvalidInput || se.Field != "path" {
			t.Errorf("no path: %v", err)
		}
	}
}

func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	path := makeDB(t, canary, `CREATE TABLE t (x)`)
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), creds(path), allow(t, path))
	if secrets.KindOf(err) != secrets.InvalidInput {
		t.Errorf("err = %v", err)
	}
	assertClean(t, err, path)
}

func TestContextEnds(t *testing.T) {
	path := awkwardDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, creds(path), allow(t, path)); secrets.KindOf(err) != secrets.SourceUnavailable || !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}

	s := open(t, path)
	for name, call := range map[string]func(context.Context) error{
		"Preflight": func(ctx context.Context) error { _, err := s.Preflight(ctx); return err },
		"Schemas":   func(ctx context.Context) error { _, err := s.Schemas(ctx, connectors.Filters{}); return err },
		"Extract": func(ctx context.Context) error {
			return s.Extract(ctx, []string{"main"}, connectors.Filters{}, &collector{})
		},
	} {
		err := call(ctx)
		if secrets.KindOf(err) != secrets.SourceUnavailable || !errors.Is(err, context.Canceled) || !secrets.Retryable(err) {
			t.Errorf("%s with a cancelled context: %v", name, err)
		}
		assertClean(t, err, path)
	}

	// Cancelled between rows: the writer cancels after the third entity.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	n := 0
	w := writerFunc(func(connectors.Entity) error {
		n++
		if n == 3 {
			cancel2()
		}
		return nil
	})
	err := s.Extract(ctx2, []string{"main"}, connectors.Filters{}, w)
	if !errors.Is(err, context.Canceled) || secrets.KindOf(err) != secrets.SourceUnavailable || n != 3 {
		t.Errorf("cancelled mid-stream after %d entities: %v", n, err)
	}

	// A deadline that passed.
	ctx3, cancel3 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel3()
	err = s.Extract(ctx3, []string{"main"}, connectors.Filters{}, &collector{})
	if !errors.Is(err, context.DeadlineExceeded) || secrets.KindOf(err) != secrets.SourceUnavailable {
		t.Errorf("past deadline: %v", err)
	}

	// The source still works afterwards.
	if c := extractAll(t, s, connectors.Filters{}); len(c.tables()) == 0 {
		t.Error("no tables after cancellations")
	}
}

type writerFunc func(connectors.Entity) error

func (f writerFunc) Write(e connectors.Entity) error { return f(e) }

func TestWriterErrorPassesThrough(t *testing.T) {
	s := open(t, awkwardDB(t))
	boom := errors.New("disk full")
	err := s.Extract(context.Background(), []string{"main"}, connectors.Filters{}, writerFunc(func(connectors.Entity) error { return boom }))
	if !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
}

func TestDSN(t *testing.T) {
	got := dsn("/a b/c?d#e%f\x01.db")
	want := "file:/a b/c%3Fd%23e%25f%01.db?mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)"
	if got != want {
		t.Errorf("dsn = %q, want %q", got, want)
	}
}

// TestWALDatabase: a database in WAL mode is read through its -wal file, and its main file is not
// changed. SQLite keeps (or creates) the -shm and -wal files beside it, as every reader of a WAL
// database must.
func TestWALDatabase(t *testing.T) {
	path := makeDB(t, canary)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(1)
	for _, q := range []string{`PRAGMA journal_mode = WAL`, `PRAGMA wal_autocheckpoint = 0`, `CREATE TABLE in_wal (x INTEGER PRIMARY KEY)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	sum0, _, entries0 := fileState(t, path)
	s := open(t, path)
	c := extractAll(t, s, connectors.Filters{})
	if tb := c.tables(); len(tb) != 1 || tb[0].Name != "in_wal" {
		t.Errorf("tables = %+v", tb)
	}
	_ = s.Close()
	sum1, _, entries1 := fileState(t, path)
	if sum0 != sum1 {
		t.Error("the main database file changed")
	}
	t.Logf("writer open: entries before %q, after %q", entries0, entries1)

	// With the writer gone, its last close checkpointed and removed -wal and -shm.
	_ = db.Close()
	sum0, _, entries0 = fileState(t, path)
	s = open(t, path)
	if c := extractAll(t, s, connectors.Filters{}); len(c.tables()) != 1 {
		t.Errorf("tables = %+v", c.tables())
	}
	_ = s.Close()
	sum1, _, entries1 = fileState(t, path)
	if sum0 != sum1 {
		t.Error("the main database file changed")
	}
	t.Logf("writer closed: entries before %q, after %q", entries0, entries1)
	if st, err := os.Stat(path + "-wal"); err == nil && st.Size() != 0 {
		t.Errorf("the reader wrote %d bytes of WAL", st.Size())
	}
}

func (c *collector) keys(table string) []connectors.Key {
	var out []connectors.Key
	for _, e := range c.entities {
		if k, ok := e.(connectors.Key); ok && (table == "" || k.Table == table) {
			out = append(out, k)
		}
	}
	return out
}

func (c *collector) indexes(table string) []connectors.Index {
	var out []connectors.Index
	for _, e := range c.entities {
		if ix, ok := e.(connectors.Index); ok && (table == "" || ix.Table == table) {
			out = append(out, ix)
		}
	}
	return out
}

func (c *collector) key(t *testing.T, table, name string) connectors.Key {
	t.Helper()
	for _, k := range c.keys(table) {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no key %s on %s; keys: %+v", name, table, c.keys(table))
	return connectors.Key{}
}

func (c *collector) index(t *testing.T, table, name string) connectors.Index {
	t.Helper()
	for _, ix := range c.indexes(table) {
		if ix.Name == name {
			return ix
		}
	}
	t.Fatalf("no index %s on %s; indexes: %+v", name, table, c.indexes(table))
	return connectors.Index{}
}

// checkStreamOrder checks that entities come kind by kind in connectors.AllKinds order (at most
// one database, schemas, tables, columns, keys, constraints, indexes, triggers: the kinds SQLite
// extracts, lineage aside), schema by schema in the order given within a kind, then by table
// name (byte order); columns by position, keys, indexes and triggers by name within their table,
// constraints by name, then position.
func checkStreamOrder(t *testing.T, entities []connectors.Entity, schemas []string) {
	t.Helper()
	rank := map[string]int{}
	for _, k := range []string{connectors.KindDatabases, connectors.KindSchemas, connectors.KindTables, connectors.KindColumns,
		connectors.KindKeys, connectors.KindConstraints, connectors.KindIndexes, connectors.KindTriggers, connectors.KindLineage} {
		rank[k] = slices.Index(connectors.AllKinds, k)
	}
	type place struct {
		sch         int
		table, name string
		pos         int
	}
	less := func(a, b place) bool { // a strictly before b
		if a.sch != b.sch {
			return a.sch < b.sch
		}
		if a.table != b.table {
			return a.table < b.table
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.pos < b.pos
	}
	lastKind := -1
	var last place
	for i, e := range entities {
		k, ok := rank[e.Kind()]
		if !ok {
			t.Fatalf("entity %d: unexpected kind %s", i, e.Kind())
		}
		var p place
		switch v := e.(type) {
		case connectors.Database:
			if i != 0 || lastKind >= 0 {
				t.Fatalf("entity %d: a database after a %s", i, entities[i-1].Kind())
			}
			lastKind = k
			continue
		case connectors.Schema:
			p = place{sch: slices.Index(schemas, v.Name)}
		case connectors.Table:
			p = place{sch: slices.Index(schemas, v.Schema), table: v.Name}
		case connectors.Column:
			p = place{sch: slices.Index(schemas, v.Schema), table: v.Table, pos: v.Position}
		case connectors.Key:
			p = place{sch: slices.Index(schemas, v.Schema), table: v.Table, name: v.Name}
		case connectors.Index:
			p = place{sch: slices.Index(schemas, v.Schema), table: v.Table, name: v.Name}
		case connectors.Constraint:
			p = place{sch: slices.Index(schemas, v.Schema), table: v.Table, name: v.Name, pos: v.Position}
		case connectors.Trigger:
			p = place{sch: slices.Index(schemas, v.Schema), table: v.Table, name: v.Name}
		case connectors.Lineage:
			p = place{sch: slices.Index(schemas, v.Schema), table: v.View}
		}
		if p.sch < 0 {
			t.Fatalf("entity %d (%+v) is of a schema not asked for", i, e)
		}
		switch {
		case k < lastKind:
			t.Fatalf("entity %d (%s %+v) after a %s", i, e.Kind(), e, entities[i-1].Kind())
		case k == lastKind && !less(last, p):
			t.Fatalf("entity %d (%+v) out of order after %+v", i, e, entities[i-1])
		}
		lastKind, last = k, p
	}
}

// pragmaKey is a key or index as independent per-table PRAGMA statements describe it.
type pragmaIndex struct {
	name            string
	unique, partial bool
	origin          string
	columns         []string // "" for an expression
}

type pragmaFK struct {
	columns            []string
	table              string
	to                 []sql.NullString
	onUpdate, onDelete string
}

type pragmaTable struct {
	primary []string
	indexes []pragmaIndex
	foreign []pragmaFK
}

// independentKeys reads, with plain per-table PRAGMA statements on a separate connection, the
// primary key, indexes and foreign keys of every ordinary table of the main schema.
func independentKeys(t *testing.T, path string) map[string]*pragmaTable {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(1)
	query := func(q string, fn func(*sql.Rows)) {
		t.Helper()
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			fn(rows)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var names []string
	query(`SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'`, func(r *sql.Rows) {
		var n string
		if err := r.Scan(&n); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(strings.ToLower(n), "sqlite_") {
			names = append(names, n)
		}
	})
	out := map[string]*pragmaTable{}
	for _, n := range names {
		pt := &pragmaTable{}
		out[n] = pt
		pk := map[int]string{}
		query(`PRAGMA table_info(`+quoteIdent(n)+`)`, func(r *sql.Rows) {
			var cid, notnull, pos int
			var name, typ string
			var dflt sql.NullString
			if err := r.Scan(&cid, &name, &typ, &notnull, &dflt, &pos); err != nil {
				t.Fatal(err)
			}
			if pos > 0 {
				pk[pos] = name
			}
		})
		for i := 1; i <= len(pk); i++ {
			pt.primary = append(pt.primary, pk[i])
		}
		query(`PRAGMA index_list(`+quoteIdent(n)+`)`, func(r *sql.Rows) {
			var seq int
			var ix pragmaIndex
			if err := r.Scan(&seq, &ix.name, &ix.unique, &ix.origin, &ix.partial); err != nil {
				t.Fatal(err)
			}
			pt.indexes = append(pt.indexes, ix)
		})
		for i := range pt.indexes {
			ix := &pt.indexes[i]
			query(`PRAGMA index_xinfo(`+quoteIdent(ix.name)+`)`, func(r *sql.Rows) {
				var seqno, cid, desc, key int
				var name sql.NullString
				var coll string
				if err := r.Scan(&seqno, &cid, &name, &desc, &coll, &key); err != nil {
					t.Fatal(err)
				}
				if key == 1 {
					ix.columns = append(ix.columns, name.String)
				}
			})
		}
		byID := map[int]*pragmaFK{}
		var ids []int
		query(`PRAGMA foreign_key_list(`+quoteIdent(n)+`)`, func(r *sql.Rows) {
			var id, seq int
			var table, from, onUpdate, onDelete, match string
			var to sql.NullString
			if err := r.Scan(&id, &seq, &table, &from, &to, &onUpdate, &onDelete, &match); err != nil {
				t.Fatal(err)
			}
			fk := byID[id]
			if fk == nil {
				fk = &pragmaFK{table: table, onUpdate: onUpdate, onDelete: onDelete}
				byID[id] = fk
				ids = append(ids, id)
			}
			fk.columns = append(fk.columns, from)
			fk.to = append(fk.to, to)
		})
		for _, id := range ids {
			pt.foreign = append(pt.foreign, *byID[id])
		}
	}
	return out
}

// resolveRefColumns gives a foreign key's referenced columns as the pragmas give them: declared
// ones as spelled in the referenced table, omitted ones as its primary key; nil when the
// referenced table or the primary key is missing.
func resolveRefColumns(all map[string]*pragmaTable, fk pragmaFK, columnsOf map[string][]string) []string {
	var parent string
	for name := range all {
		if strings.EqualFold(name, fk.table) {
			parent = name
		}
	}
	if parent == "" {
		if fk.to[0].Valid {
			out := make([]string, len(fk.to))
			for i, c := range fk.to {
				out[i] = c.String
			}
			return out
		}
		return nil
	}
	var out []string
	for i, c := range fk.to {
		if !c.Valid {
			if i >= len(all[parent].primary) {
				return nil
			}
			out = append(out, all[parent].primary[i])
			continue
		}
		spelled := c.String
		for _, col := range columnsOf[parent] {
			if strings.EqualFold(col, c.String) {
				spelled = col
			}
		}
		out = append(out, spelled)
	}
	return out
}

func TestKeysAndIndexes(t *testing.T) {
	path := awkwardDB(t)
	s := open(t, path)
	c := extractAll(t, s, connectors.Filters{})
	want := independentKeys(t, path)
	_, columnsOf := independent(t, path)

	// The database, then exactly one schema.
	if db, ok := c.entities[0].(connectors.Database); !ok || db.Name != "" {
		t.Errorf("first entity = %+v", c.entities[0])
	}
	if sc, ok := c.entities[1].(connectors.Schema); !ok || sc.Name != "main" || sc.Database != "" {
		t.Errorf("second entity = %+v", c.entities[1])
	}

	// Every table's keys and indexes agree with the independent pragmas.
	wantKeys, wantIndexes := 0, 0
	for table, pt := range want {
		keys := c.keys(table)
		var primary, unique, foreign []connectors.Key
		for _, k := range keys {
			if k.Schema != "main" || k.Name == "" {
				t.Errorf("%s: key %+v", table, k)
			}
			switch k.Type {
			case connectors.KeyPrimary:
				primary = append(primary, k)
			case connectors.KeyUnique:
				unique = append(unique, k)
			case connectors.KeyForeign:
				foreign = append(foreign, k)
			default:
				t.Errorf("%s: key type %q", table, k.Type)
			}
		}
		if !slices.IsSortedFunc(keys, func(a, b connectors.Key) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("%s: keys not sorted by name: %+v", table, keys)
		}
		// Primary key.
		if len(pt.primary) == 0 {
			if len(primary) != 0 {
				t.Errorf("%s: primary key %+v, want none", table, primary)
			}
		} else if len(primary) != 1 || !slices.Equal(primary[0].Columns, pt.primary) {
			t.Errorf("%s: primary key %+v, want columns %q", table, primary, pt.primary)
		}
		// UNIQUE constraints: the indexes of origin 'u'.
		var wantUnique [][]string
		for _, ix := range pt.indexes {
			if ix.origin == "u" {
				wantUnique = append(wantUnique, ix.columns)
			}
		}
		var gotUnique [][]string
		for _, k := range unique {
			gotUnique = append(gotUnique, k.Columns)
			if k.RefTable != "" || k.RefColumns != nil || k.OnDelete != "" {
				t.Errorf("%s: unique key with references: %+v", table, k)
			}
		}
		cmp := func(a, b []string) int { return strings.Compare(strings.Join(a, "\x00"), strings.Join(b, "\x00")) }
		slices.SortFunc(wantUnique, cmp)
		slices.SortFunc(gotUnique, cmp)
		if !slices.EqualFunc(gotUnique, wantUnique, slices.Equal) {
			t.Errorf("%s: unique keys %q, want %q", table, gotUnique, wantUnique)
		}
		// Foreign keys: one per id, columns in seq order.
		if len(foreign) != len(pt.foreign) {
			t.Errorf("%s: %d foreign keys, want %d", table, len(foreign), len(pt.foreign))
		}
		for _, fk := range pt.foreign {
			found := false
			for _, k := range foreign {
				if slices.Equal(k.Columns, fk.columns) && strings.EqualFold(k.RefTable, fk.table) {
					found = true
					wantRef := resolveRefColumns(want, fk, columnsOf)
					if !slices.Equal(k.RefColumns, wantRef) || k.RefSchema != "main" || k.OnUpdate != fk.onUpdate || k.OnDelete != fk.onDelete {
						t.Errorf("%s: foreign key %+v, want %+v referencing %q", table, k, fk, wantRef)
					}
				}
			}
			if !found {
				t.Errorf("%s: no foreign key %+v in %+v", table, fk, foreign)
			}
		}
		wantKeys += len(pt.foreign) + len(wantUnique)
		if len(pt.primary) > 0 {
			wantKeys++
		}

		// Indexes: every one pragma_index_list reports, by name.
		indexes := c.indexes(table)
		var gotNames, wantNames []string
		for _, ix := range indexes {
			gotNames = append(gotNames, ix.Name)
		}
		for _, ix := range pt.indexes {
			wantNames = append(wantNames, ix.name)
			got := c.index(t, table, ix.name)
			if got.Unique != ix.unique || got.Primary != (ix.origin == "pk") || (got.Predicate != "") != ix.partial ||
				got.Method != "btree" || got.Schema != "main" || len(got.Columns) != len(ix.columns) {
				t.Errorf("%s: index %+v, want %+v", table, got, ix)
				continue
			}
			for i, col := range ix.columns {
				if col != "" && got.Columns[i] != col || col == "" && got.Columns[i] == "" {
					t.Errorf("%s: index %s column %d = %q, want %q", table, ix.name, i, got.Columns[i], col)
				}
			}
			if auto := strings.HasPrefix(ix.name, "sqlite_autoindex_"); auto != (got.Definition == "") {
				t.Errorf("%s: index %s definition %q", table, ix.name, got.Definition)
			}
		}
		slices.Sort(wantNames)
		if !slices.Equal(gotNames, wantNames) {
			t.Errorf("%s: indexes %q, want %q (sorted)", table, gotNames, wantNames)
		}
		wantIndexes += len(pt.indexes)
	}
	if got := len(c.keys("")); got != wantKeys || got != 14 {
		t.Errorf("%d keys, want %d", got, wantKeys)
	}
	if got := len(c.indexes("")); got != wantIndexes || got != 9 {
		t.Errorf("%d indexes, want %d", got, wantIndexes)
	}
	for _, k := range c.keys("") {
		if _, ok := want[k.Table]; !ok {
			t.Errorf("key of a view or internal table: %+v", k)
		}
	}

	// Names: declared constraint names where the statement has them; otherwise pk_<table>, the
	// UNIQUE constraint's automatic index, fk_<table>_<n> in declaration order.
	var names []string
	for _, k := range c.keys("Shipments") {
		names = append(names, k.Name)
	}
	if w := []string{"fk_Shipments_1", "fk_items", "pk_Shipments", "sqlite_autoindex_Shipments_2", "uq code"}; !slices.Equal(names, w) {
		t.Errorf("Shipments keys %q, want %q", names, w)
	}
	if k := c.key(t, "Shipments", "pk_Shipments"); !slices.Equal(k.Columns, []string{"id"}) {
		t.Errorf("INTEGER PRIMARY KEY: %+v", k)
	}
	if k := c.key(t, "Shipments", "fk_Shipments_1"); k.RefTable != "Shipments" || !slices.Equal(k.RefColumns, []string{"id"}) ||
		!slices.Equal(k.Columns, []string{"parent_id"}) || k.OnDelete != "SET NULL" || k.OnUpdate != "NO ACTION" {
		t.Errorf("self-reference: %+v", k)
	}
	if k := c.key(t, "Shipments", "fk_items"); k.RefTable != "Order Items" || !slices.Equal(k.RefColumns, []string{"Order ID", "Line"}) ||
		!slices.Equal(k.Columns, []string{"Order ID", "Line"}) || k.OnUpdate != "CASCADE" || k.OnDelete != "RESTRICT" || k.RefSchema != "main" {
		t.Errorf("named composite foreign key: %+v", k)
	}
	if k := c.key(t, "Shipments", "uq code"); k.Type != connectors.KeyUnique || !slices.Equal(k.Columns, []string{"code"}) {
		t.Errorf("named unique: %+v", k)
	}
	if k := c.key(t, "Shipments", "sqlite_autoindex_Shipments_2"); !slices.Equal(k.Columns, []string{"carrier", "tracking"}) {
		t.Errorf("composite unique: %+v", k)
	}
	names = names[:0]
	for _, k := range c.keys("Returns") {
		names = append(names, k.Name)
	}
	if w := []string{"fk_Returns_1", "fk_Returns_2", "fk_Returns_3", "returns pk"}; !slices.Equal(names, w) {
		t.Errorf("Returns keys %q, want %q", names, w)
	}
	if k := c.key(t, "Returns", "returns pk"); k.Type != connectors.KeyPrimary || !slices.Equal(k.Columns, []string{"Line", "Order ID"}) {
		t.Errorf("WITHOUT ROWID composite primary key: %+v", k)
	}
	if k := c.key(t, "Returns", "fk_Returns_1"); k.RefTable != "Order Items" || !slices.Equal(k.RefColumns, []string{"Order ID", "Line"}) ||
		!slices.Equal(k.Columns, []string{"Order ID", "Line"}) || k.OnDelete != "CASCADE" {
		t.Errorf("referenced columns left out: %+v", k)
	}
	if k := c.key(t, "Returns", "fk_Returns_2"); k.RefTable != "Shipments" || !slices.Equal(k.RefColumns, []string{"id"}) {
		t.Errorf("foreign key to another table: %+v", k)
	}
	if k := c.key(t, "Returns", "fk_Returns_3"); k.RefTable != "nowhere" || k.RefColumns != nil {
		t.Errorf("foreign key to a missing table: %+v", k)
	}
	if k := c.key(t, "Order Items", "pk_Order Items"); !slices.Equal(k.Columns, []string{"Order ID", "Line"}) {
		t.Errorf("composite primary key: %+v", k)
	}
	if k := c.key(t, "no_rowid", "pk_no_rowid"); !slices.Equal(k.Columns, []string{"k"}) {
		t.Errorf("WITHOUT ROWID primary key: %+v", k)
	}
	if len(c.keys("select")) != 0 || len(c.keys("v one")) != 0 || len(c.indexes("v one")) != 0 {
		t.Error("keys or indexes for a table without any, or for a view")
	}

	// Indexes.
	if ix := c.index(t, "Shipments", "shipments_open"); ix.Predicate != "tracking IS NULL AND code <> ''" || ix.Unique ||
		!slices.Equal(ix.Columns, []string{"carrier", "Order ID"}) || !strings.HasPrefix(ix.Definition, "CREATE INDEX shipments_open ON") {
		t.Errorf("partial index: %+v", ix)
	}
	if ix := c.index(t, "Shipments", "Shipments by code"); !ix.Unique || ix.Primary || ix.Predicate != "" ||
		!slices.Equal(ix.Columns, []string{"lower(code)", "Line", "carrier || '-' || tracking"}) ||
		!strings.Contains(ix.Definition, "COLLATE NOCASE DESC") {
		t.Errorf("expression index: %+v", ix)
	}
	if ix := c.index(t, "café ☕", "café index"); !slices.Equal(ix.Columns, []string{"日本語", "naïve"}) || ix.Unique ||
		ix.Definition != `CREATE INDEX "café index" ON "café ☕" ("日本語" DESC, "naïve" COLLATE NOCASE)` {
		t.Errorf("unicode index: %+v", ix)
	}
	if ix := c.index(t, "Shipments", "sqlite_autoindex_Shipments_1"); !ix.Unique || ix.Primary || ix.Definition != "" ||
		!slices.Equal(ix.Columns, []string{"code"}) {
		t.Errorf("automatic index of a UNIQUE constraint: %+v", ix)
	}
	for _, ix := range c.indexes("Shipments") {
		if ix.Primary {
			t.Errorf("an INTEGER PRIMARY KEY has no index: %+v", ix)
		}
	}
	if ix := c.index(t, "Returns", "sqlite_autoindex_Returns_1"); !ix.Primary || !ix.Unique || !slices.Equal(ix.Columns, []string{"Line", "Order ID"}) {
		t.Errorf("WITHOUT ROWID primary key index: %+v", ix)
	}
	if ix := c.index(t, "Order Items", "sqlite_autoindex_Order Items_1"); !ix.Primary || !slices.Equal(ix.Columns, []string{"Order ID", "Line"}) {
		t.Errorf("composite primary key index: %+v", ix)
	}
	if ix := c.index(t, "counted", "counted_k"); ix.Definition != "CREATE INDEX counted_k ON counted (k)" || ix.Unique {
		t.Errorf("counted_k: %+v", ix)
	}
}

func TestKeysAndIndexesFiltered(t *testing.T) {
	s := open(t, awkwardDB(t))
	all := extractAll(t, s, connectors.Filters{})
	for _, f := range []connectors.Filters{
		{ExcludeTables: []string{"main.Shipments", "main.Order*"}},
		{IncludeTables: []string{"main.Returns", "main.café*"}},
		{TempTables: []string{"Ship*"}},
	} {
		c := extractAll(t, s, f)
		checkStreamOrder(t, c.entities, []string{"main"})
		kept := map[string]bool{}
		for _, tb := range c.tables() {
			kept[tb.Name] = true
		}
		var keys, indexes int
		for _, k := range all.keys("") {
			if kept[k.Table] {
				keys++
			}
		}
		for _, ix := range all.indexes("") {
			if kept[ix.Table] {
				indexes++
			}
		}
		for _, k := range c.keys("") {
			if !f.TableIncluded(k.Schema, k.Table) || !kept[k.Table] {
				t.Errorf("%+v: key of an excluded table: %+v", f, k)
			}
		}
		for _, ix := range c.indexes("") {
			if !f.TableIncluded(ix.Schema, ix.Table) || !kept[ix.Table] {
				t.Errorf("%+v: index of an excluded table: %+v", f, ix)
			}
		}
		if len(c.keys("")) != keys || len(c.indexes("")) != indexes || len(c.tables()) == len(all.tables()) {
			t.Errorf("%+v: %d keys and %d indexes, want %d and %d", f, len(c.keys("")), len(c.indexes("")), keys, indexes)
		}
	}
	// A foreign key belongs to its referencing table: excluding the referenced one keeps it.
	c := extractAll(t, s, connectors.Filters{ExcludeTables: []string{"main.Shipments"}})
	if k := c.key(t, "Returns", "fk_Returns_2"); k.RefTable != "Shipments" {
		t.Errorf("fk_Returns_2 = %+v", k)
	}
	if len(c.keys("Shipments")) != 0 || len(c.indexes("Shipments")) != 0 {
		t.Error("keys or indexes of an excluded table")
	}
}

// TestSeveralSchemas extracts an attached schema and main in one call: one query per kind for
// both, kind by kind, schemas in the order given, and foreign keys within their own schema.
func TestSeveralSchemas(t *testing.T) {
	s := open(t, awkwardDB(t))
	other := makeDB(t, "other",
		`CREATE TABLE "t ""1""" (x INTEGER PRIMARY KEY, y)`,
		`CREATE TABLE u (a REFERENCES "t ""1""", b UNIQUE, "Shipments" INT)`,
		`CREATE INDEX "u a" ON u (a) WHERE a > 0`,
		`CREATE TABLE empty_ish (z)`)
	const attached = `other "db" {n}{p}{schema}` // the placeholders of perSchema, literally
	attach(t, s, other, attached)
	// An unknown schema writes nothing.
	var none collector
	if err := s.Extract(context.Background(), []string{"main", "nope"}, connectors.Filters{}, &none); secrets.KindOf(err) != secrets.InvalidInput || len(none.entities) != 0 {
		t.Errorf("unknown schema: %v, %d entities", err, len(none.entities))
	}
	schemas := []string{attached, "main", attached}
	var c collector
	if err := s.Extract(context.Background(), schemas, connectors.Filters{}, &c); err != nil {
		t.Fatal(err)
	}
	order := []string{attached, "main"}
	checkStreamOrder(t, c.entities, order)
	var got []string
	for _, e := range c.entities {
		if sc, ok := e.(connectors.Schema); ok {
			got = append(got, sc.Name)
		}
	}
	if !slices.Equal(got, order) {
		t.Errorf("schemas = %q, want %q", got, order)
	}
	if k := c.key(t, "u", "fk_u_1"); k.Schema != attached || k.RefSchema != attached || k.RefTable != `t "1"` ||
		!slices.Equal(k.RefColumns, []string{"x"}) {
		t.Errorf("foreign key in the attached schema: %+v", k)
	}
	if ix := c.index(t, "u", "u a"); ix.Schema != attached || ix.Predicate != "a > 0" {
		t.Errorf("index in the attached schema: %+v", ix)
	}
	main := extractAll(t, s, connectors.Filters{ExcludeSchemas: []string{"other*"}})
	count := func(c *collector, schema, kind string) int {
		n := 0
		for _, e := range c.entities {
			var sch string
			switch v := e.(type) {
			case connectors.Table:
				sch = v.Schema
			case connectors.Column:
				sch = v.Schema
			case connectors.Key:
				sch = v.Schema
			case connectors.Index:
				sch = v.Schema
			}
			if e.Kind() == kind && sch == schema {
				n++
			}
		}
		return n
	}
	for _, kind := range []string{connectors.KindTables, connectors.KindColumns, connectors.KindKeys, connectors.KindIndexes} {
		if a, b := count(&c, "main", kind), count(main, "main", kind); a != b || a == 0 {
			t.Errorf("main %s: %d extracted with the other schema, %d alone", kind, a, b)
		}
	}
	if n := count(&c, attached, connectors.KindKeys); n != 3 { // t "1" primary; u foreign and unique
		t.Errorf("%d keys in the attached schema, want 3: %+v", n, c.keys(""))
	}
}

// attach attaches the database file at path to s's connection as schema name.
func attach(t *testing.T, s *Source, path, name string) {
	t.Helper()
	conn, err := s.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(context.Background(), `ATTACH ? AS `+quoteIdent(name), dsn(path)); err != nil {
		t.Fatal(err)
	}
}

// TestBrokenObjectsAmongSchemas: a broken view in an attached schema fails the set-based columns
// query of both schemas; main's columns are still read set-based, once each, the attached
// schema's object by object, and keys and indexes of both are unaffected (a foreign key that
// names the broken view included).
func TestBrokenObjectsAmongSchemas(t *testing.T) {
	s := open(t, awkwardDB(t))
	broken := makeDB(t, "broken",
		`CREATE TABLE a (x INTEGER PRIMARY KEY, y TEXT UNIQUE)`,
		`CREATE TABLE gone (z)`,
		`CREATE VIEW m_broken AS SELECT z FROM gone`,
		`DROP TABLE gone`,
		`CREATE TABLE zz (q REAL NOT NULL REFERENCES m_broken, r REFERENCES a)`,
		`CREATE INDEX zz_q ON zz (q)`)
	attach(t, s, broken, "b")
	if _, err := s.db.Exec(columnsQuery([]string{"main", "b"}), "main", "b"); sqliteCode(err)&0xff != 1 {
		t.Fatalf("set-based query on a broken view: %v", err)
	}
	var c collector
	if err := s.Extract(context.Background(), []string{"main", "b"}, connectors.Filters{}, &c); err != nil {
		t.Fatal(err)
	}
	checkStreamOrder(t, c.entities, []string{"main", "b"})
	alone := extractAll(t, s, connectors.Filters{ExcludeSchemas: []string{"b"}})
	if got, want := len(c.columns("counted")), len(alone.columns("counted")); got != want || got == 0 {
		t.Errorf("main's columns: %d, want %d", got, want)
	}
	var bCols []string
	for _, e := range c.entities {
		if col, ok := e.(connectors.Column); ok && col.Schema == "b" {
			bCols = append(bCols, col.Table+"."+col.Name)
		}
	}
	if w := []string{"a.x", "a.y", "zz.q", "zz.r"}; !slices.Equal(bCols, w) {
		t.Errorf("b's columns = %q, want %q", bCols, w)
	}
	if k := c.key(t, "zz", "fk_zz_1"); k.Schema != "b" || k.RefTable != "m_broken" || k.RefColumns != nil {
		t.Errorf("foreign key to a broken view: %+v", k)
	}
	if k := c.key(t, "zz", "fk_zz_2"); !slices.Equal(k.RefColumns, []string{"x"}) {
		t.Errorf("fk_zz_2 = %+v", k)
	}
	if ix := c.index(t, "zz", "zz_q"); ix.Schema != "b" || !slices.Equal(ix.Columns, []string{"q"}) {
		t.Errorf("zz_q = %+v", ix)
	}
	if len(c.keys("a")) != 2 || len(c.indexes("a")) != 1 {
		t.Errorf("a: keys %+v, indexes %+v", c.keys("a"), c.indexes("a"))
	}
}

func TestParseCreateTable(t *testing.T) {
	stmt := `CREATE TEMP TABLE IF NOT EXISTS "main"."t(" (
		a INT /* PRIMARY KEY, UNIQUE */ CONSTRAINT "a nn" NOT NULL, -- UNIQUE, ( CONSTRAINT x
		b INT CONSTRAINT [b pk] PRIMARY KEY DESC ON CONFLICT ABORT,
		c TEXT DEFAULT ')(,' CONSTRAINT 'c uq' UNIQUE CHECK (c <> 'UNIQUE') COLLATE NOCASE,
		d REFERENCES p ON DELETE SET NULL NOT DEFERRABLE CONSTRAINT d_uq UNIQUE,
		"e""" CONSTRAINT named_ref REFERENCES "p""2" (x, y) UNIQUE,
		CONSTRAINT "u""q" UNIQUE (a COLLATE NOCASE DESC, "c") CONSTRAINT fk FOREIGN KEY (a, [d]) REFERENCES "p" (x, "y")
			ON DELETE SET NULL MATCH SIMPLE DEFERRABLE INITIALLY DEFERRED
		CHECK (a > (b + 1)), UNIQUE ('b', d), FOREIGN KEY (b) REFERENCES q
	) STRICT, WITHOUT ROWID`
	d := parseCreateTable(stmt)
	if d.primary == nil || d.primary.name != "b pk" || !slices.Equal(d.primary.columns, []string{"b"}) {
		t.Errorf("primary = %+v", d.primary)
	}
	wantU := []declaredKey{
		{name: "c uq", columns: []string{"c"}},
		{name: "d_uq", columns: []string{"d"}},
		{columns: []string{`e"`}},
		{name: `u"q`, columns: []string{"a", "c"}},
		{columns: []string{"b", "d"}},
	}
	wantF := []declaredKey{
		{columns: []string{"d"}, refTable: "p"},
		{name: "named_ref", columns: []string{`e"`}, refTable: `p"2`},
		{name: "fk", columns: []string{"a", "d"}, refTable: "p"},
		{columns: []string{"b"}, refTable: "q"},
	}
	eq := func(a, b declaredKey) bool {
		return a.name == b.name && a.refTable == b.refTable && slices.Equal(a.columns, b.columns)
	}
	if !slices.EqualFunc(d.uniques, wantU, eq) {
		t.Errorf("uniques = %+v\nwant %+v", d.uniques, wantU)
	}
	if !slices.EqualFunc(d.foreign, wantF, eq) {
		t.Errorf("foreign = %+v\nwant %+v", d.foreign, wantF)
	}
	if n := d.uniqueName([]string{"A", "C"}); n != `u"q` {
		t.Errorf("uniqueName = %q", n)
	}
	if n := d.foreignName(3, 4, []string{"a", "D"}, "P"); n != "fk" {
		t.Errorf("foreignName = %q", n)
	}
	// A named constraint before NOT NULL does not name the PRIMARY KEY after it.
	if d := parseCreateTable(`CREATE TABLE t (a CONSTRAINT n NOT NULL PRIMARY KEY)`); d.primary == nil || d.primary.name != "" {
		t.Errorf("primary = %+v", d.primary)
	}
	for _, bad := range []string{"", "CREATE VIEW v AS SELECT 1", "CREATE TABLE", `CREATE TABLE t (a CONSTRAINT`,
		`CREATE TABLE t (CONSTRAINT`, `CREATE TABLE t (a, PRIMARY KEY (`, `CREATE TABLE "unterminated (a`, `CREATE TABLE t AS SELECT 1`} {
		_ = parseCreateTable(bad) // must not panic
		_ = parseCreateIndex(bad)
	}
}

func TestParseCreateIndex(t *testing.T) {
	stmt := `CREATE UNIQUE INDEX IF NOT EXISTS "s"."i" ON "t" (lower("a,b") COLLATE NOCASE DESC, b ASC, (c + 1), "d" COLLATE "x y")
		WHERE a IN (1, 2) AND b <> ')' -- done`
	d := parseCreateIndex(stmt)
	if w := []string{`lower("a,b")`, "b", "(c + 1)", `"d"`}; !slices.Equal(d.columns, w) {
		t.Errorf("columns = %q, want %q", d.columns, w)
	}
	if d.predicate != "a IN (1, 2) AND b <> ')'" {
		t.Errorf("predicate = %q", d.predicate)
	}
	if d := parseCreateIndex(`create index i on t(a)`); !slices.Equal(d.columns, []string{"a"}) || d.predicate != "" {
		t.Errorf("lower case: %+v", d)
	}
}

// TestManyTables: a catalog of a few hundred tables with keys, checks, indexes and triggers
// extracts quickly (one query per kind, not one per table).
func TestManyTables(t *testing.T) {
	const n = 300
	stmts := []string{`CREATE TABLE root (id INTEGER PRIMARY KEY, name TEXT UNIQUE)`}
	for i := range n {
		stmts = append(stmts,
			fmt.Sprintf(`CREATE TABLE t%03d (id INTEGER PRIMARY KEY, root_id INTEGER REFERENCES root, a TEXT, b TEXT,
				CONSTRAINT t%03d_ab UNIQUE (a, b), FOREIGN KEY (b) REFERENCES root (name), CHECK (a <> b))`, i, i),
			fmt.Sprintf(`CREATE INDEX t%03d_root ON t%03d (root_id) WHERE root_id IS NOT NULL`, i, i),
			fmt.Sprintf(`CREATE TRIGGER t%03d_ai AFTER INSERT ON T%03d BEGIN UPDATE root SET name = new.a; END`, i, i))
	}
	s := open(t, makeDB(t, "many", stmts...))
	start := time.Now()
	c := extractAll(t, s, connectors.Filters{})
	elapsed := time.Since(start)
	if len(c.tables()) != n+1 || len(c.keys("")) != 2+4*n || len(c.indexes("")) != 1+2*n ||
		len(c.constraints("")) != n || len(c.triggers()) != n {
		t.Errorf("%d tables, %d keys, %d indexes, %d constraints, %d triggers",
			len(c.tables()), len(c.keys("")), len(c.indexes("")), len(c.constraints("")), len(c.triggers()))
	}
	t.Logf("%d tables, %d entities in %v", n+1, len(c.entities), elapsed)
	if elapsed > 10*time.Second {
		t.Errorf("extraction took %v", elapsed)
	}
}

// FuzzParseDDL: the statement parsers never panic, whatever the text, and every piece of text
// they return (a check's expression, a trigger's condition and body) is a piece of the statement.
func FuzzParseDDL(f *testing.F) {
	for _, stmt := range awkward {
		f.Add(stmt)
	}
	for _, c := range triggerCases {
		f.Add(c.ddl())
	}
	f.Add(`CREATE TABLE t (a CONSTRAINT n REFERENCES`)
	f.Add(`CREATE UNIQUE INDEX i ON t ((a), b COLLATE`)
	f.Add("CREATE TABLE [t (a '\x00")
	f.Add(`CREATE TABLE t (a CHECK (a > ')'), CONSTRAINT c CHECK ((a) <> 0) CHECK (`)
	f.Add(`CREATE TRIGGER t INSTEAD OF UPDATE OF a ON v WHEN (SELECT 1) BEGIN SELECT 'END'; END`)
	f.Add("CREATE TRIGGER t BEGIN END")
	f.Fuzz(func(t *testing.T, stmt string) {
		d := parseCreateTable(stmt)
		_ = d.uniqueName([]string{"a"})
		_ = d.foreignName(1, 1, []string{"a"}, "t")
		for _, c := range d.checks {
			if !strings.Contains(stmt, c.expression) {
				t.Errorf("check expression %q is not in the statement", c.expression)
			}
		}
		_ = parseCreateIndex(stmt)
		tr, ok := parseCreateTrigger(stmt)
		if !strings.Contains(stmt, tr.condition) || !strings.Contains(stmt, tr.body) {
			t.Errorf("trigger %+v: condition or body not in the statement", tr)
		}
		if !ok && tr != (triggerDDL{}) || ok && (tr.timing == "" || tr.event == "") {
			t.Errorf("trigger %+v, %v", tr, ok)
		}
	})
}
