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
}

// makeDB creates a database file in a directory whose name holds the canary, runs stmts and
// returns the file's path. It is closed before returning.
func makeDB(t *testing.T, dirName string, stmts ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), dirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "catalog.db")
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
	return path
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

func open(t *testing.T, path string) *Source {
	t.Helper()
	s, err := Open(context.Background(), creds(path))
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

	// Stream order: each table is followed by its own columns, in position order.
	var curTable string
	lastPos := 0
	for _, e := range c.entities {
		switch v := e.(type) {
		case connectors.Table:
			curTable, lastPos = v.Name, 0
		case connectors.Column:
			if v.Table != curTable || v.Position != lastPos+1 {
				t.Fatalf("column %s.%s (position %d) out of order after table %s", v.Table, v.Name, v.Position, curTable)
			}
			lastPos = v.Position
		}
	}

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
	if _, err := s.db.Exec(objectsQuery("main", false, true), "main"); sqliteCode(err)&0xff != 1 {
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

	s, err := Open(context.Background(), creds(path))
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
	base := filepath.Join(t.TempDir(), canary)
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
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), creds(tc.path))
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
		_, err := Open(context.Background(), c)
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
	_, err := Open(context.Background(), creds(path))
	if secrets.KindOf(err) != secrets.InvalidInput {
		t.Errorf("err = %v", err)
	}
	assertClean(t, err, path)
}

func TestContextEnds(t *testing.T) {
	path := awkwardDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, creds(path)); secrets.KindOf(err) != secrets.SourceUnavailable || !errors.Is(err, context.Canceled) {
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
