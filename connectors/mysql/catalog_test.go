package mysql

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/secrets"

	"github.com/secure-agent/secure-agent/connectors"
)

var (
	long64    = "t" + strings.Repeat("x", 62) + "z"               // a 64-character table name, MySQL's maximum
	longCol   = "c" + strings.Repeat("y", 63)                     // a 64-character column name
	longIndex = "i" + strings.Repeat("w", 63)                     // a 64-character index name
	longFK    = "f" + strings.Repeat("k", 63)                     // a 64-character constraint name
	longUni   = strings.Repeat("é", 63) + "ü"                     // 64 characters, 128 bytes
	weird     = "we`ird\"name"                                    // a backtick and a double quote
	comment1  = "order lines: it's \"quoted\"\nsecond line\\done" // quotes, a newline, a backslash
)

// awkward builds a catalog with every shape the connector must get right, in databases
// prefix_a (most of it), prefix_b (the target of a cross-schema foreign key, with a comment) and
// prefix_empty (nothing at all).
func awkward(t *testing.T) *fixture {
	f := newFixture(t, []string{"_a", "_b", "_empty"})
	a, b := quoteIdent(f.db("_a")), quoteIdent(f.db("_b"))
	q := func(db, s string) string { return strings.ReplaceAll(s, "@", db+".") }
	exec(t,
		"ALTER DATABASE "+b+" COMMENT 'schema ''b'': referenced'",
		q(b, "CREATE TABLE @`Ref Table` (x INT NOT NULL, y INT NOT NULL, z INT, UNIQUE KEY ref_xy (x, y))"),
		q(a, "CREATE TABLE @`Order Items` (`Order ID` INT NOT NULL, `Line` INT NOT NULL, qty DECIMAL(10,2) DEFAULT 1.50, "+
			"note VARCHAR(200) DEFAULT 'it''s \"quoted\"', PRIMARY KEY (`Order ID`, `Line`)) COMMENT "+sqlString(comment1)),
		// Reserved words, no primary key, but a unique NOT NULL key (information_schema calls
		// its column PRI).
		q(a, "CREATE TABLE @`select` (`from` TEXT, `where` INT NOT NULL, `order` BLOB, UNIQUE KEY `where_u` (`where`))"),
		q(a, "CREATE TABLE @`MixedCase` (Id INT PRIMARY KEY, `Name` VARCHAR(50) NOT NULL DEFAULT '')"),
		q(a, "CREATE TABLE @`mixedcase` (id BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT, lower_col VARCHAR(20))"),
		q(a, "CREATE TABLE @`café ☕` (`naïve` TEXT, `日本語` VARCHAR(10) DEFAULT 'ü')"),
		q(a, "CREATE TABLE @"+quoteIdent(long64)+" ("+quoteIdent(longCol)+" INT, KEY "+quoteIdent(longIndex)+" ("+quoteIdent(longCol)+"))"),
		q(a, "CREATE TABLE @"+quoteIdent(longUni)+" ("+quoteIdent(longUni)+" INT)"),
		q(a, "CREATE TABLE @"+quoteIdent(weird)+" (`a``b` INT, `c d` INT)"),
		q(a, "CREATE TABLE @typed (id INT AUTO_INCREMENT PRIMARY KEY, amount DECIMAL(12,3) NOT NULL DEFAULT 0, "+
			"created DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6), kind ENUM('a','b''c') DEFAULT 'a', flags BIT(3) DEFAULT b'101', "+
			"price_cents INT AS (amount * 100) STORED, label VARCHAR(30) AS (CONCAT('#', id)) VIRTUAL, "+
			"body TEXT COMMENT 'column comment: it''s\\nmultiline', nul VARCHAR(5) DEFAULT NULL, "+
			"CONSTRAINT amount_positive CHECK (amount >= 0), UNIQUE KEY uq_amount_created (amount, created), "+
			"KEY ix_body_prefix (body(10)), KEY ix_desc (created DESC, id), FULLTEXT KEY ft_body (body))"),
		q(a, "CREATE TABLE @parent_local (a INT NOT NULL, b INT NOT NULL, PRIMARY KEY (a, b), KEY ba (b, a))"),
		q(a, "CREATE TABLE @child (id INT PRIMARY KEY, pa INT, pb INT, ra INT, rb INT, "+
			"CONSTRAINT fk_local FOREIGN KEY (pb, pa) REFERENCES @parent_local (b, a) ON DELETE CASCADE, "+
			"CONSTRAINT "+quoteIdent(longFK)+" FOREIGN KEY (ra, rb) REFERENCES "+b+".`Ref Table` (x, y) ON UPDATE SET NULL ON DELETE RESTRICT)"),
		q(a, "CREATE TABLE @events (id INT NOT NULL, created DATE NOT NULL, PRIMARY KEY (id, created)) "+
			"PARTITION BY RANGE (YEAR(created)) (PARTITION p2023 VALUES LESS THAN (2024) COMMENT 'old', "+
			"PARTITION p2024 VALUES LESS THAN (2025), PARTITION pmax VALUES LESS THAN MAXVALUE)"),
		q(a, "CREATE TABLE @regions (id INT, region VARCHAR(5)) PARTITION BY LIST COLUMNS (region) "+
			"(PARTITION pe VALUES IN ('eu','uk'), PARTITION pu VALUES IN ('us'))"),
		q(a, "CREATE TABLE @sub (id INT, k INT) PARTITION BY RANGE (k) SUBPARTITION BY HASH (id) SUBPARTITIONS 2 "+
			"(PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN MAXVALUE)"),
		q(a, "CREATE VIEW @`v one` AS SELECT `Order ID`, qty FROM @`Order Items`"),
		q(a, "CREATE VIEW @`v two` AS SELECT * FROM @`v one` WHERE qty > 1"), // a view on a view
		q(a, "CREATE SEQUENCE @seq_ids"),
		q(a, "CREATE TABLE @versioned (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING"),
		q(a, "CREATE TABLE @tmp_scratch (id INT PRIMARY KEY, k INT, KEY k (k))"),
		q(a, "CREATE FUNCTION @`add one`(a INT, `b c` VARCHAR(10)) RETURNS INT DETERMINISTIC COMMENT 'adds ''one''' RETURN a + 1"),
		q(a, "CREATE PROCEDURE @proc_io(IN a INT, OUT b VARCHAR(10), INOUT c DATETIME) BEGIN SET b = 'x'; END"),
		q(a, "CREATE PROCEDURE @`add one`() BEGIN END"), // a procedure named like a function
		q(a, "INSERT INTO @events VALUES (1, '2023-05-01'), (2, '2024-05-01'), (3, '2024-06-01'), (4, '2030-01-01')"),
		q(a, "INSERT INTO @mixedcase (lower_col) VALUES ('a'), ('b'), ('c'), ('d'), ('e'), ('f'), ('g')"),
		q(a, "ANALYZE TABLE @mixedcase, @events"),
	)
	f.grantRead(t, "_a", "_b", "_empty")
	return f
}

func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`, "\n", `\n`).Replace(s) + "'"
}

func extractAll(t *testing.T, s *Source, f *fixture, filters connectors.Filters) *recorder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names, err := s.Schemas(ctx, f.onlyMine(filters))
	if err != nil {
		t.Fatalf("Schemas: %v", err)
	}
	rec := &recorder{}
	if err := s.Extract(ctx, names, f.onlyMine(filters), rec); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return rec
}

// TestAwkwardCatalog extracts the awkward catalog as a read-only user and checks every entity
// kind, against hand-written expectations and against independent catalog reads (SHOW
// statements, TABLE_CONSTRAINTS and mysql.proc as the administrator).
func TestAwkwardCatalog(t *testing.T) {
	t.Parallel()
	f := awkward(t)
	s := f.open(t)
	rec := extractAll(t, s, f, connectors.Filters{})
	a, b, empty := f.db("_a"), f.db("_b"), f.db("_empty")

	t.Run("database and schemas", func(t *testing.T) {
		dbs := rec.databases()
		// Field "database" is not a literal here (no OpenOptions.Literals): no name.
		if len(dbs) != 1 || dbs[0].Name != "" || dbs[0].Encoding == "" || dbs[0].Collation == "" {
			t.Fatalf("databases = %+v, want one without a name, with its character set and collation", dbs)
		}
		var names []string
		for _, sc := range rec.schemas() {
			names = append(names, sc.Name)
			if sc.Database != "" {
				t.Errorf("schema %q: database %q", sc.Name, sc.Database)
			}
			if sc.Name == b && sc.Comment != "schema 'b': referenced" {
				t.Errorf("schema comment = %q", sc.Comment)
			}
		}
		if want := []string{a, b, empty}; !slices.Equal(names, want) {
			t.Fatalf("schemas = %q, want %q (the empty one too)", names, want)
		}
		if rec.entities[0].Kind() != connectors.KindDatabases {
			t.Errorf("the database entity is not written first")
		}
	})

	t.Run("tables", func(t *testing.T) {
		want := map[string]string{
			"MixedCase": "table", "mixedcase": "table", "Order Items": "table", "select": "table", "café ☕": "table",
			long64: "table", longUni: "table", weird: "table", "typed": "table", "parent_local": "table",
			"child": "table", "events": "partitioned_table", "regions": "partitioned_table", "sub": "partitioned_table",
			"v one": "view", "v two": "view", "versioned": "table", "tmp_scratch": "table",
			"events#p#p2023": "partition", "events#p#p2024": "partition", "events#p#pmax": "partition",
			"regions#p#pe": "partition", "regions#p#pu": "partition",
			"sub#p#p0": "partition", "sub#p#p0#sp#p0sp0": "partition", "sub#p#p0#sp#p0sp1": "partition",
			"sub#p#p1": "partition", "sub#p#p1#sp#p1sp0": "partition", "sub#p#p1#sp#p1sp1": "partition",
		}
		got := map[string]string{}
		var order []string
		for _, tb := range rec.tables() {
			if tb.Schema != a {
				continue
			}
			if _, dup := got[tb.Name]; dup {
				t.Errorf("table %q written twice", tb.Name)
			}
			got[tb.Name] = tb.Type
			order = append(order, tb.Name)
		}
		for name, typ := range want {
			if got[name] != typ {
				t.Errorf("table %q: type %q, want %q", name, got[name], typ)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("unexpected table %q (type %q); sequences are not tables", name, got[name])
			}
		}
		if !slices.IsSortedFunc(order, func(x, y string) int { return strings.Compare(parentOf(x), parentOf(y)) }) {
			t.Errorf("tables not in byte order of name: %q", order)
		}
		if tb, _ := rec.table(b, "Ref Table"); tb.Type != "table" {
			t.Errorf("%s.`Ref Table` missing", b)
		}

		oi, _ := rec.table(a, "Order Items")
		if oi.Comment != comment1 || oi.Engine != "InnoDB" || oi.Database != "" {
			t.Errorf("Order Items = %+v; comment want %q", oi, comment1)
		}
		v1, _ := rec.table(a, "v one")
		v2, _ := rec.table(a, "v two")
		if !strings.Contains(v1.Definition, "`Order Items`") || !strings.Contains(v2.Definition, "`v one`") {
			t.Errorf("view definitions: %q / %q", v1.Definition, v2.Definition)
		}
		if v1.RowCount != nil || v1.SizeBytes != nil || v1.Comment != "" {
			t.Errorf("a view has no row count, size or comment: %+v", v1)
		}
		ev, _ := rec.table(a, "events")
		if ev.PartitionKey != "RANGE (year(`created`))" {
			t.Errorf("events partition key = %q", ev.PartitionKey)
		}
		p23, _ := rec.table(a, "events#p#p2023")
		pmax, _ := rec.table(a, "events#p#pmax")
		if p23.ParentSchema != a || p23.ParentTable != "events" || p23.PartitionBound != "VALUES LESS THAN (2024)" ||
			p23.Comment != "old" || i64(p23.RowCount) != "1" {
			t.Errorf("events#p#p2023 = %+v", p23)
		}
		if pmax.PartitionBound != "VALUES LESS THAN MAXVALUE" {
			t.Errorf("pmax bound = %q", pmax.PartitionBound)
		}
		pe, _ := rec.table(a, "regions#p#pe")
		if pe.PartitionBound != "VALUES IN ('eu','uk')" {
			t.Errorf("regions#p#pe bound = %q", pe.PartitionBound)
		}
		sub, _ := rec.table(a, "sub")
		p0, _ := rec.table(a, "sub#p#p0")
		sp, _ := rec.table(a, "sub#p#p0#sp#p0sp1")
		if sub.PartitionKey != "RANGE (`k`) SUBPARTITION BY HASH (`id`)" || p0.PartitionKey != "HASH (`id`)" ||
			p0.ParentTable != "sub" || sp.ParentTable != "sub#p#p0" {
			t.Errorf("subpartitions: %+v / %+v / %+v", sub, p0, sp)
		}
	})

	t.Run("row counts and sizes against SHOW TABLE STATUS", func(t *testing.T) {
		for _, row := range queryStrings(t, "SHOW TABLE STATUS FROM "+quoteIdent(a)) {
			name, engine, rows, dataLen, indexLen, comment := row[0], row[1], row[4], row[6], row[8], row[17]
			if comment == "VIEW" || engine == "<NULL>" {
				continue
			}
			tb, ok := rec.table(a, name)
			if name == "seq_ids" {
				if ok {
					t.Errorf("the sequence was extracted as a table")
				}
				continue
			}
			if !ok {
				t.Errorf("SHOW TABLE STATUS lists %q; the connector did not", name)
				continue
			}
			var d, ix int64
			fmt.Sscan(dataLen, &d)
			fmt.Sscan(indexLen, &ix)
			if i64(tb.RowCount) != rows || i64(tb.SizeBytes) != fmt.Sprint(d+ix) {
				t.Errorf("%q: rows %s size %s, SHOW TABLE STATUS says %s and %d", name, i64(tb.RowCount), i64(tb.SizeBytes), rows, d+ix)
			}
		}
		if mc, _ := rec.table(a, "mixedcase"); i64(mc.RowCount) != "7" {
			t.Errorf("mixedcase row count %s, want 7 after ANALYZE", i64(mc.RowCount))
		}
	})

	t.Run("columns against SHOW FULL COLUMNS", func(t *testing.T) {
		for _, row := range queryStrings(t, "SHOW FULL TABLES FROM "+quoteIdent(a)) {
			name := row[0]
			if row[1] == "SEQUENCE" {
				if len(rec.columnsOf(a, name)) > 0 {
					t.Errorf("columns of the sequence were extracted")
				}
				continue
			}
			cols := rec.columnsOf(a, name)
			show := queryStrings(t, "SHOW FULL COLUMNS FROM "+quoteIdent(a)+"."+quoteIdent(name))
			if len(cols) != len(show) {
				t.Errorf("%q: %d columns, SHOW FULL COLUMNS has %d", name, len(cols), len(show))
				continue
			}
			pk := map[string]bool{}
			for _, ix := range queryStrings(t, "SHOW INDEX FROM "+quoteIdent(a)+"."+quoteIdent(name)) {
				if ix[2] == "PRIMARY" {
					pk[ix[4]] = true
				}
			}
			for i, c := range cols {
				field, typ, null, comment := show[i][0], show[i][1], show[i][3], show[i][8]
				if c.Name != field || c.Position != i+1 || c.DataType != typ || c.Nullable != (null == "YES") ||
					c.Comment != comment || c.PrimaryKey != pk[field] {
					t.Errorf("%q column %d = %+v; SHOW says %q %q null=%s comment=%q pk=%v", name, i+1, c, field, typ, null, comment, pk[field])
				}
			}
		}
		want := map[string]string{ // defaults, as SQL expressions
			"Order Items.qty": "1.50", "Order Items.note": `'it''s "quoted"'`, "MixedCase.Name": "''",
			"typed.amount": "0.000", "typed.created": "current_timestamp(6)", "typed.kind": "'a'",
			"typed.flags": "b'101'", "typed.nul": "", "typed.body": "", "café ☕.日本語": "'ü'", "child.pa": "",
		}
		for tc, def := range want {
			tbl, col, _ := strings.Cut(tc, ".")
			c, ok := rec.column(a, tbl, col)
			if !ok || c.Default != def {
				t.Errorf("%s default = %q, want %q", tc, c.Default, def)
			}
		}
		check := func(tbl, col string, ok func(c connectors.Column) bool) {
			t.Helper()
			c, found := rec.column(a, tbl, col)
			if !found || !ok(c) {
				t.Errorf("%s.%s = %+v", tbl, col, c)
			}
		}
		check("typed", "id", func(c connectors.Column) bool { return c.Identity == "auto_increment" && c.PrimaryKey })
		check("typed", "price_cents", func(c connectors.Column) bool {
			return c.Generated == "`amount` * 100" && c.GeneratedKind == "stored"
		})
		check("typed", "label", func(c connectors.Column) bool { return c.GeneratedKind == "virtual" && c.Generated != "" })
		check("typed", "amount", func(c connectors.Column) bool {
			return i64(c.Precision) == "12" && i64(c.Scale) == "3" && c.DataType == "decimal(12,3)" && !c.Nullable
		})
		check("typed", "created", func(c connectors.Column) bool { return i64(c.Precision) == "6" })
		check("typed", "body", func(c connectors.Column) bool { return c.Comment == "column comment: it's\nmultiline" })
		check("mixedcase", "id", func(c connectors.Column) bool { return c.DataType == "bigint(20) unsigned" })
		check("select", "where", func(c connectors.Column) bool { return !c.PrimaryKey && !c.Nullable }) // PRI in COLUMN_KEY, but no primary key
		check(weird, "a`b", func(c connectors.Column) bool { return c.Position == 1 })
		check(long64, longCol, func(c connectors.Column) bool { return c.Position == 1 })
		check(longUni, longUni, func(c connectors.Column) bool { return c.DataType == "int(11)" })
		check("v two", "qty", func(c connectors.Column) bool { return c.DataType == "decimal(10,2)" })
		for _, c := range rec.columns() {
			if strings.Contains(c.Table, partitionSep) {
				t.Errorf("a partition has columns: %+v", c)
			}
		}
	})

	t.Run("keys against TABLE_CONSTRAINTS", func(t *testing.T) {
		want := map[string]string{}
		for _, row := range queryStrings(t, `SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE
			FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA IN (?, ?, ?) AND CONSTRAINT_TYPE <> 'CHECK'`, a, b, empty) {
			want[row[0]+"."+row[1]+"."+row[2]] = map[string]string{
				"PRIMARY KEY": connectors.KeyPrimary, "UNIQUE": connectors.KeyUnique, "FOREIGN KEY": connectors.KeyForeign}[row[3]]
		}
		got := map[string]string{}
		for _, k := range rec.keys() {
			got[k.Schema+"."+k.Table+"."+k.Name] = k.Type
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("keys:\n got %v\nwant %v", got, want)
		}
		fk, _ := rec.key(a, "child", "fk_local")
		if fk.Type != connectors.KeyForeign || !slices.Equal(fk.Columns, []string{"pb", "pa"}) || fk.RefSchema != a ||
			fk.RefTable != "parent_local" || !slices.Equal(fk.RefColumns, []string{"b", "a"}) || fk.OnDelete != "CASCADE" {
			t.Errorf("fk_local = %+v", fk)
		}
		cross, _ := rec.key(a, "child", longFK)
		if cross.RefSchema != b || cross.RefTable != "Ref Table" || !slices.Equal(cross.Columns, []string{"ra", "rb"}) ||
			!slices.Equal(cross.RefColumns, []string{"x", "y"}) || cross.OnUpdate != "SET NULL" || cross.OnDelete != "RESTRICT" {
			t.Errorf("cross-schema foreign key = %+v", cross)
		}
		pk, _ := rec.key(a, "Order Items", "PRIMARY")
		if pk.Type != connectors.KeyPrimary || !slices.Equal(pk.Columns, []string{"Order ID", "Line"}) {
			t.Errorf("composite primary key = %+v", pk)
		}
		if vk, _ := rec.key(a, "versioned", "PRIMARY"); !slices.Equal(vk.Columns, []string{"id"}) {
			t.Errorf("system-versioned primary key = %+v (MariaDB's hidden row_end must not show)", vk)
		}
		if _, ok := rec.key(a, "select", "PRIMARY"); ok {
			t.Errorf("`select` has no primary key")
		}
	})

	t.Run("indexes against SHOW INDEX", func(t *testing.T) {
		for _, tb := range rec.tables() {
			if tb.Type == "view" || tb.Type == "partition" {
				continue
			}
			want := map[string][]string{}
			unique := map[string]bool{}
			for _, row := range queryStrings(t, "SHOW INDEX FROM "+quoteIdent(tb.Schema)+"."+quoteIdent(tb.Name)) {
				col := row[4]
				if row[7] != "<NULL>" {
					col += "(" + row[7] + ")"
				}
				if row[5] == "D" {
					col += " DESC"
				}
				want[row[2]] = append(want[row[2]], col)
				unique[row[2]] = row[1] == "0"
			}
			got := map[string][]string{}
			for _, ix := range rec.indexes() {
				if ix.Schema == tb.Schema && ix.Table == tb.Name {
					got[ix.Name] = ix.Columns
					if ix.Unique != unique[ix.Name] || ix.Primary != (ix.Name == "PRIMARY") {
						t.Errorf("%s.%s index %+v: unique should be %v", tb.Schema, tb.Name, ix, unique[ix.Name])
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s.%s indexes:\n got %v\nwant %v", tb.Schema, tb.Name, got, want)
			}
		}
		if ix, _ := rec.index(a, "typed", "ft_body"); ix.Method != "fulltext" {
			t.Errorf("ft_body = %+v", ix)
		}
		if ix, _ := rec.index(a, long64, longIndex); !slices.Equal(ix.Columns, []string{longCol}) {
			t.Errorf("64-character index = %+v", ix)
		}
	})

	t.Run("routines against mysql.proc", func(t *testing.T) {
		var want, got []string
		for _, row := range queryStrings(t, "SELECT name, type FROM mysql.proc WHERE db = ?", a) {
			want = append(want, row[0]+"/"+strings.ToLower(row[1]))
		}
		for _, r := range rec.routines() {
			got = append(got, r.Name+"/"+r.Type)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("routines %q, mysql.proc has %q", got, want)
		}
		for _, r := range rec.routines() {
			var ok bool
			switch r.Name + "/" + r.Type {
			case "add one/function":
				ok = r.Signature == "a int(11), `b c` varchar(10)" && r.ReturnType == "int(11)" && r.Comment == "adds 'one'" && r.Language == "sql"
			case "add one/procedure":
				ok = r.Signature == "" && r.ReturnType == ""
			case "proc_io/procedure":
				ok = r.Signature == "a int(11), OUT b varchar(10), INOUT c datetime"
			}
			if !ok {
				t.Errorf("routine %+v", r)
			}
		}
	})
}

// TestChunks checks that splitting the schemas over several rounds of catalog queries changes
// nothing but the interleaving of entity kinds.
func TestChunks(t *testing.T) {
	t.Parallel()
	f := awkward(t)
	s := f.open(t)
	whole := extractAll(t, s, f, connectors.Filters{})
	s.chunkSize = 1
	split := extractAll(t, s, f, connectors.Filters{})
	byKind := func(r *recorder) map[string][]string {
		out := map[string][]string{}
		for _, e := range r.entities {
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			out[e.Kind()] = append(out[e.Kind()], string(b))
		}
		return out
	}
	w, sp := byKind(whole), byKind(split)
	// Every kind but triggers (awkward has none) and types (MySQL has none).
	if want := []string{connectors.KindDatabases, connectors.KindSchemas, connectors.KindTables, connectors.KindColumns,
		connectors.KindKeys, connectors.KindConstraints, connectors.KindIndexes, connectors.KindSequences,
		connectors.KindRoutines, connectors.KindLineage}; len(w) != len(want) {
		t.Errorf("entity kinds: %d, want %d (%q)", len(w), len(want), want)
	}
	for kind, list := range w {
		if !slices.Equal(list, sp[kind]) {
			t.Errorf("%s differ when the schemas are extracted one per query (%d and %d entities)", kind, len(list), len(sp[kind]))
		}
	}
}

// parentOf is the table a partition entity's name belongs to.
func parentOf(name string) string {
	base, _, _ := strings.Cut(name, partitionSep)
	return base
}

// TestFilters checks schema filters (with databases as aliases), system schemas, table
// filters and temp tables, and that Extract refuses schemas it cannot see without naming them.
func TestFilters(t *testing.T) {
	t.Parallel()
	f := awkward(t)
	s := f.open(t)
	ctx := context.Background()
	a, b, empty := f.db("_a"), f.db("_b"), f.db("_empty")

	schemas := func(filters connectors.Filters) []string {
		t.Helper()
		got, err := s.Schemas(ctx, filters)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, tc := range []struct {
		name    string
		filters connectors.Filters
		want    []string
	}{
		{"all mine", connectors.Filters{}, []string{a, b, empty}},
		{"include schema", connectors.Filters{IncludeSchemas: []string{f.prefix + "*_a"}}, []string{a}},
		{"exclude schema", connectors.Filters{ExcludeSchemas: []string{"*_empty"}}, []string{a, b}},
		{"include database", connectors.Filters{IncludeDatabases: []string{"*_b"}}, []string{b}},
		{"exclude database", connectors.Filters{ExcludeDatabases: []string{"*_a", "*_b"}}, []string{empty}},
		{"both must pass", connectors.Filters{IncludeDatabases: []string{"*_a"}, IncludeSchemas: []string{f.prefix + "*_b"}}, nil},
	} {
		if got := schemas(f.onlyMine(tc.filters)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Schemas = %q, want %q", tc.name, got, tc.want)
		}
	}

	all := schemas(connectors.Filters{})
	if slices.Contains(all, "information_schema") || slices.Contains(all, "mysql") {
		t.Errorf("system schemas listed by default: %q", all)
	}
	if !slices.IsSorted(all) {
		t.Errorf("Schemas not sorted: %q", all)
	}
	sys := schemas(connectors.Filters{IncludeSystemSchemas: true})
	if !slices.Contains(sys, "information_schema") || !slices.Contains(sys, "mysql") {
		t.Errorf("IncludeSystemSchemas: %q lacks information_schema or mysql", sys)
	}
	rec := &recorder{}
	if err := s.Extract(ctx, []string{"information_schema"}, connectors.Filters{IncludeSystemSchemas: true, IncludeTables: []string{"information_schema.T*"}}, rec); err != nil {
		t.Fatalf("extracting information_schema: %v", err)
	}
	if tb, ok := rec.table("information_schema", "TABLES"); !ok || tb.Type != "view" || len(rec.columnsOf("information_schema", "TABLES")) < 10 {
		t.Errorf("information_schema.TABLES = %+v with %d columns", tb, len(rec.columnsOf("information_schema", "TABLES")))
	}

	tablesOf := func(filters connectors.Filters) *recorder {
		t.Helper()
		return extractAll(t, s, f, filters)
	}
	rec = tablesOf(connectors.Filters{TempTables: []string{"tmp_*"}})
	if _, ok := rec.table(a, "tmp_scratch"); ok {
		t.Errorf("temp table extracted")
	}
	for _, e := range rec.entities {
		if strings.Contains(fmt.Sprintf("%+v", e), "tmp_scratch") {
			t.Errorf("temp table's entity extracted: %+v", e)
		}
	}
	rec = tablesOf(connectors.Filters{IncludeTables: []string{a + ".typed", "*.Ref*"}})
	var names []string
	for _, tb := range rec.tables() {
		names = append(names, tb.Schema+"."+tb.Name)
	}
	if want := []string{a + ".typed", b + ".Ref Table"}; !slices.Equal(names, want) {
		t.Errorf("IncludeTables: tables %q, want %q", names, want)
	}
	for _, c := range rec.columns() {
		if c.Table != "typed" && c.Table != "Ref Table" {
			t.Errorf("column of a filtered-out table: %+v", c)
		}
	}
	if len(rec.keys()) != 3 || len(rec.indexes()) != 6 || len(rec.routines()) != 3 {
		t.Errorf("IncludeTables: %d keys, %d indexes, %d routines; want 3, 6 and 3 (routines are not tables)",
			len(rec.keys()), len(rec.indexes()), len(rec.routines()))
	}
	rec = tablesOf(connectors.Filters{ExcludeTables: []string{"*.events", "*.MixedCase"}})
	for _, tb := range rec.tables() {
		if tb.Name == "MixedCase" || parentOf(tb.Name) == "events" {
			t.Errorf("excluded table extracted: %q", tb.Name)
		}
	}
	if _, ok := rec.table(a, "mixedcase"); !ok {
		t.Errorf("excluding `MixedCase` dropped `mixedcase` too")
	}
	if len(rec.columnsOf(a, "events")) != 0 || len(rec.columnsOf(a, "MixedCase")) != 0 {
		t.Errorf("columns of excluded tables extracted")
	}

	// The database entity: only the call whose schemas hold the first listed schema writes it.
	first, rest := &recorder{}, &recorder{}
	if err := s.Extract(ctx, []string{b, empty}, f.onlyMine(connectors.Filters{}), rest); err != nil {
		t.Fatal(err)
	}
	if err := s.Extract(ctx, []string{a}, f.onlyMine(connectors.Filters{}), first); err != nil {
		t.Fatal(err)
	}
	if len(first.databases()) != 1 || len(rest.databases()) != 0 {
		t.Errorf("database entities: %d with the first schema, %d without; want 1 and 0", len(first.databases()), len(rest.databases()))
	}
	if got := len(rest.schemas()); got != 2 {
		t.Errorf("%d schema entities for two schemas", got)
	}

	// A schema that does not exist (or is not visible) is InvalidInput, not named.
	ghost := f.prefix + "_ghost_CANARY"
	err := s.Extract(ctx, []string{a, ghost}, connectors.Filters{}, &recorder{})
	if secrets.KindOf(err) != secrets.InvalidInput || strings.Contains(err.Error(), "CANARY") {
		t.Errorf("unknown schema: %v", err)
	}
	if err := s.Extract(ctx, nil, connectors.Filters{}, &recorder{}); err != nil {
		t.Errorf("no schemas: %v", err)
	}
}

// TestPreflight checks the version report and the missing privileges, named.
func TestPreflight(t *testing.T) {
	t.Parallel()
	f := newFixture(t, []string{"_a", "_b", "_c"})
	a, b, c := f.db("_a"), f.db("_b"), f.db("_c")
	exec(t,
		"CREATE TABLE "+quoteIdent(a)+".t (id INT PRIMARY KEY)",
		"CREATE VIEW "+quoteIdent(a)+".v AS SELECT id FROM "+quoteIdent(a)+".t",
		"CREATE TABLE "+quoteIdent(b)+".t (id INT PRIMARY KEY)",
		"CREATE TABLE "+quoteIdent(c)+".t (id INT PRIMARY KEY)",
	)
	ctx := context.Background()

	// Everything granted.
	f.grantRead(t, "_a", "_b", "_c")
	s := f.open(t)
	rep, err := s.Preflight(ctx)
	if err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	if len(rep.MissingPrivileges) != 0 {
		t.Errorf("missing privileges with every grant: %q", rep.MissingPrivileges)
	}
	if !regexp.MustCompile(`^mariadb \d+\.\d+\.\d+$`).MatchString(rep.Identity) || !strings.Contains(rep.ServerVersion, "MariaDB") {
		t.Errorf("identity %q, version %q", rep.Identity, rep.ServerVersion)
	}
	_, cfg := admin(t)
	for _, v := range []string{f.user, f.password, cfg.Addr, "127.0.0.1"} {
		if strings.Contains(fmt.Sprintf("%+v", rep), v) {
			t.Errorf("the report names a connection field value: %+v", rep)
		}
	}
	_ = s.Close()

	// SELECT without SHOW VIEW on _a, only SHOW VIEW on _b (tables visible, columns not), _c
	// through a role, and no mysql.proc.
	exec(t, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM "+f.account())
	role := "sarole" + randHex(6)
	t.Cleanup(func() { db, _ := admin(t); _, _ = db.Exec("DROP ROLE IF EXISTS " + role) })
	exec(t,
		"GRANT SELECT ON "+grantPattern(a)+".* TO "+f.account(),
		"GRANT SHOW VIEW ON "+grantPattern(b)+".* TO "+f.account(),
		"CREATE ROLE "+role,
		"GRANT SELECT ON "+grantPattern(c)+".* TO "+role,
		"GRANT "+role+" TO "+f.account(),
		"SET DEFAULT ROLE "+role+" FOR "+f.account(),
	)
	s = f.open(t)
	rep, err = s.Preflight(ctx)
	if err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	// (The user sees no other test's databases: only its own are checked.)
	want := []string{"SELECT on " + quoteIdent(b) + ".*", "SHOW VIEW on " + quoteIdent(a) + ".*", "SELECT on mysql.proc"}
	if !slices.Equal(rep.MissingPrivileges, want) {
		t.Errorf("missing privileges = %q, want %q", rep.MissingPrivileges, want)
	}
	// Extraction still works and gives what the user can see.
	rec := &recorder{}
	if err := s.Extract(ctx, []string{a, b, c}, connectors.Filters{}, rec); err != nil {
		t.Fatalf("Extract with missing privileges: %v", err)
	}
	if v, _ := rec.table(a, "v"); v.Type != "view" || v.Definition != "" {
		t.Errorf("view without SHOW VIEW: %+v", v)
	}
	if len(rec.columnsOf(b, "t")) != 0 || len(rec.columnsOf(c, "t")) != 1 {
		t.Errorf("columns: %d of %s.t (SHOW VIEW only), %d of %s.t (role)", len(rec.columnsOf(b, "t")), b, len(rec.columnsOf(c, "t")), c)
	}
}

// TestViewsAndPartitions checks the tables that wait for their view definitions and partitions
// (read by queries of their own, after the tables): views and partitioned tables in several
// schemas, between plain tables and next to names that differ only in case, come with their
// definitions and partitions, in byte order, however the schemas are split over queries.
func TestViewsAndPartitions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, []string{"_a", "_b", "_c"})
	a, b, c := f.db("_a"), f.db("_b"), f.db("_c")
	qa, qb, qc := quoteIdent(a), quoteIdent(b), quoteIdent(c)
	exec(t,
		"CREATE TABLE "+qa+".`A plain` (id INT)",
		"CREATE TABLE "+qa+".`B part` (id INT) PARTITION BY HASH (id) PARTITIONS 2",
		"CREATE VIEW "+qa+".`C view` AS SELECT id FROM "+qa+".`A plain`",
		"CREATE TABLE "+qa+".`D plain` (id INT)",
		"CREATE TABLE "+qa+".`b part` (id INT) PARTITION BY KEY (id) PARTITIONS 3",
		"CREATE TABLE "+qb+".`A part` (id INT, k INT) PARTITION BY RANGE (k) SUBPARTITION BY HASH (id) SUBPARTITIONS 2 "+
			"(PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN MAXVALUE)",
		"CREATE VIEW "+qb+".`B view` AS SELECT 1 AS one",
		"CREATE TABLE "+qc+".`Z plain` (id INT)",
		"CREATE VIEW "+qc+".`z view` AS SELECT 2 AS two",
	)
	f.grantRead(t, "_a", "_b", "_c")
	s := f.open(t)
	describe := func(rec *recorder) []string {
		var out []string
		for _, tb := range rec.tables() {
			d := tb.Schema + "." + tb.Name + " " + tb.Type
			if tb.PartitionKey != "" {
				d += " " + tb.PartitionKey
			}
			if tb.ParentTable != "" {
				d += " of " + tb.ParentTable
			}
			if tb.Definition != "" {
				d += " as " + strings.ReplaceAll(tb.Definition, f.prefix, "")
			}
			out = append(out, d)
		}
		return out
	}
	want := []string{
		a + ".A plain table",
		a + ".B part partitioned_table HASH (`id`)",
		a + ".B part#p#p0 partition of B part",
		a + ".B part#p#p1 partition of B part",
		a + ".C view view as select `_a`.`A plain`.`id` AS `id` from `_a`.`A plain`",
		a + ".D plain table",
		a + ".b part partitioned_table KEY (`id`)",
		a + ".b part#p#p0 partition of b part",
		a + ".b part#p#p1 partition of b part",
		a + ".b part#p#p2 partition of b part",
		b + ".A part partitioned_table RANGE (`k`) SUBPARTITION BY HASH (`id`)",
		b + ".A part#p#p0 partition HASH (`id`) of A part",
		b + ".A part#p#p0#sp#p0sp0 partition of A part#p#p0",
		b + ".A part#p#p0#sp#p0sp1 partition of A part#p#p0",
		b + ".A part#p#p1 partition HASH (`id`) of A part",
		b + ".A part#p#p1#sp#p1sp0 partition of A part#p#p1",
		b + ".A part#p#p1#sp#p1sp1 partition of A part#p#p1",
		b + ".B view view as select 1 AS `one`",
		c + ".Z plain table",
		c + ".z view view as select 2 AS `two`",
	}
	for _, size := range []int{0, 1, 2} {
		s.chunkSize = size
		got := describe(extractAll(t, s, f, connectors.Filters{}))
		if !slices.Equal(got, want) {
			t.Errorf("%d schemas per query: tables\n%s\nwant\n%s", size, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// Filtered out: a view and a partitioned table; those left keep their definitions and
	// partitions.
	s.chunkSize = 0
	got := describe(extractAll(t, s, f, connectors.Filters{ExcludeTables: []string{"*.C view", "*.B part", "*_c.Z*"}}))
	var wantFiltered []string
	for _, d := range want {
		if !strings.HasPrefix(d, a+".C view ") && !strings.HasPrefix(d, a+".B part") && !strings.HasPrefix(d, c+".Z plain") {
			wantFiltered = append(wantFiltered, d)
		}
	}
	if !slices.Equal(got, wantFiltered) {
		t.Errorf("filtered: tables\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantFiltered, "\n"))
	}
}
