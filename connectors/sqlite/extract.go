package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// Extract streams the entities of the given schemas ("main" and any attached databases) to w,
// kind by kind, in connectors.AllKinds order:
//
//   - the Database entity, written only by the call whose schemas include the first (in byte
//     order) of the schemas Schemas(ctx, filters) lists, so that a run that extracts each
//     listed schema once writes it once: Encoding is PRAGMA encoding, SizeBytes the main
//     database's page_count times its page_size;
//   - a Schema for each schema, empty ones too, in the order given (a repeated name counts once);
//   - tables and views that pass filters.TableIncluded (type "table" or "view"; a view's
//     Definition is its CREATE VIEW statement; RowCount is sqlite_stat1's estimate, when ANALYZE
//     has run);
//   - their columns, by position;
//   - the keys of those tables: the primary key (pragma_table_info's pk order), UNIQUE
//     constraints (pragma_index_list origin 'u', columns in index order) and foreign keys
//     (pragma_foreign_key_list, columns in seq order; omitted referenced columns resolved to the
//     referenced table's primary key, left out when it has none); the keys of one table come
//     ordered by name;
//   - the CHECK constraints of those tables, read from their CREATE TABLE statements (see
//     Constraints below); those of one table come ordered by name, then by Position;
//   - the indexes of those tables: every index pragma_index_list reports (see Index naming
//     below), with key columns in order;
//   - the triggers of those tables and views (see Triggers below), those of one table ordered
//     by name.
//
// Within a kind, entities come schema by schema in the order given, then by table name (byte
// order, as Go sorts strings). SQLite has no sequences (sqlite_sequence is AUTOINCREMENT's
// bookkeeping, an internal table), user-defined types or routines: no call writes any.
//
// Names. The Database entity's Name and every entity's Database are the base name of the main
// database file, only when field "path" was a literal of the input (see databaseName); otherwise
// "". Attached schemas are entities of the same database. SQLite has no owners.
//
// Each kind is one query for all the schemas (a UNION ALL of one SELECT per schema, joining
// sqlite_schema with the table-valued pragma functions, schema names bound as parameters), and
// all run in one read transaction, so that the kinds describe the same catalog. Rows are written
// as they arrive (a table's keys and checks are gathered first, to be sorted by name); ctx is
// checked between rows. Only when the columns query fails because an object cannot be described
// (a view over a dropped table, a virtual table whose module this build lacks) are the schemas
// retried one by one, and the objects of a schema that still fails described one by one,
// leaving out the columns of the broken ones.
//
// Key naming. SQLite keeps no constraint names in its catalog: a name declared with CONSTRAINT
// in the CREATE TABLE statement is read from that statement; otherwise the primary key is named
// "pk_<table>", a UNIQUE constraint takes the name of the index SQLite made for it
// ("sqlite_autoindex_<table>_<n>", the Index entity of the same name) and a foreign key is named
// "fk_<table>_<n>", n counting the table's foreign keys from 1 in declaration order. A UNIQUE
// constraint on the primary key's columns is merged into the primary key by SQLite, and a
// CREATE UNIQUE INDEX is an index, not a key. RefSchema is the table's own schema (SQLite
// foreign keys cannot leave it); RefTable is the referenced table's name as the catalog spells
// it (as declared when no such table exists).
//
// Index naming. Indexes keep their catalog names, the automatic indexes of PRIMARY KEY and
// UNIQUE constraints included ("sqlite_autoindex_<table>_<n>": they are real b-trees; they have
// no Definition). A WITHOUT ROWID table's primary key index is the table's own b-tree and is
// reported as SQLite reports it (Primary, sqlite_autoindex_<table>_<n>); an INTEGER PRIMARY KEY
// is the rowid and has no index. Columns are column names, or an expression's text as written
// in the CREATE INDEX statement (without COLLATE and ASC/DESC, which Definition keeps); Method is
// "btree"; Predicate is a partial index's WHERE clause as written.
//
// Constraints. Every CHECK constraint of a CREATE TABLE statement, column or table constraint, is
// a Constraint of type "check": Name is its CONSTRAINT name ("" when it has none), Position its
// 1-based order among the table's checks in the statement (named ones counted too), Expression
// the text between its parentheses as written, Definition "CHECK (" + Expression + ")", Columns
// empty (SQLite does not record them) and Validated true (SQLite checks every row it writes,
// unless PRAGMA ignore_check_constraints is set on the writer's connection, which no catalog
// records).
//
// Triggers. Every trigger in a schema's sqlite_schema on a table or view that passes the filters.
// Table is the table's name as the catalog spells it (SQLite records it as the CREATE TRIGGER
// statement wrote it, in any case). Timing, Events (one: "INSERT", "UPDATE", UPDATE OF columns
// included, or "DELETE"), Condition (the WHEN expression) and Body (the statements between BEGIN
// and END) are read from the statement as written (see parseCreateTrigger); Timing is "BEFORE"
// when none is written, as SQLite defaults. Level is "ROW" (SQLite has only FOR EACH ROW
// triggers), Definition the statement as stored and Enabled "enabled" (SQLite cannot disable a
// trigger). A statement the parser cannot follow leaves Timing, Condition and Body empty, and
// Events empty. TEMP triggers live in the connection's temp schema, which is never extracted
// (like temp tables), even those on a table of another schema; every other trigger is in its
// table's schema.
//
// Tables whose columns, keys, constraints, indexes and triggers filters.TableIncluded refuses are
// skipped with them; internal sqlite_% tables are never extracted. An unknown schema is
// InvalidInput, and nothing is written. Writer errors are returned unchanged.
func (s *Source) Extract(ctx context.Context, schemas []string, filters connectors.Filters, w connectors.EntityWriter) error {
	if err := ctx.Err(); err != nil {
		return contextError(err)
	}
	// A deferred, read-only transaction: it takes SQLite's shared lock (or, in WAL mode, a
	// snapshot) with its first query and holds it until the rollback.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.classify(ctx, err)
	}
	defer func() { _ = tx.Rollback() }() // nothing to keep
	x := &extraction{s: s, tx: tx, filters: filters, w: w, database: s.database}
	err = x.run(ctx, schemas)
	var we writeErr
	if errors.As(err, &we) {
		return we.err
	}
	return s.classify(ctx, err)
}

// writeErr marks an error from the EntityWriter, which is passed through unclassified.
type writeErr struct{ err error }

func (e writeErr) Error() string { return e.err.Error() }
func (e writeErr) Unwrap() error { return e.err }

// extraction is the state of one Extract call. Its methods return raw errors (and writeErr),
// which Extract classifies.
type extraction struct {
	s       *Source
	tx      *sql.Tx
	filters connectors.Filters
	w       connectors.EntityWriter
	// schemas are the distinct schemas to extract, in the order given. A query's rows name
	// their schema by its 1-based position in this list.
	schemas []string
	// database is every entity's Database (Source.database).
	database string
	// views are the views the tables step wrote, in order, for their lineage (written last).
	views []viewDefinition
}

func (x *extraction) run(ctx context.Context, schemas []string) error {
	known, err := x.s.schemaNames(ctx, x.tx)
	if err != nil {
		return err
	}
	for _, schema := range schemas {
		if !slices.Contains(known, schema) {
			return &secrets.Error{Kind: secrets.InvalidInput,
				Msg: fmt.Sprintf("sqlite: the database has no schema %q; its schemas are %s", schema, strings.Join(quoteAll(known), ", "))}
		}
		if !slices.Contains(x.schemas, schema) {
			x.schemas = append(x.schemas, schema)
		}
	}
	if first := firstSchema(known, x.filters); first != "" && slices.Contains(x.schemas, first) {
		if err := x.databaseEntity(ctx); err != nil {
			return err
		}
	}
	for _, schema := range x.schemas {
		if err := x.emit(ctx, connectors.Schema{Database: x.database, Name: schema}); err != nil {
			return err
		}
	}
	if len(x.schemas) == 0 {
		return nil
	}
	var steps *connectors.Steps
	x.w, steps = connectors.TraceSteps(ctx, "sqlite", x.w) // a span per step, with tracing on
	for _, st := range []struct {
		kind string
		run  func(context.Context) error
	}{
		{connectors.KindTables, x.tables}, {connectors.KindColumns, x.columns}, {connectors.KindKeys, x.keys},
		{connectors.KindConstraints, x.constraints}, {connectors.KindIndexes, x.indexes},
		{connectors.KindTriggers, x.triggers}, {connectors.KindLineage, x.lineage},
	} {
		if err := steps.Run(ctx, st.kind, st.run); err != nil {
			return err
		}
	}
	return nil
}

// emit writes e, unless ctx has ended.
func (x *extraction) emit(ctx context.Context, e connectors.Entity) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := x.w.Write(e); err != nil {
		return writeErr{err}
	}
	return nil
}

// each runs query and hands each row, scanned into dest, to fn, checking ctx between rows. It
// reports whether a row was read. Errors are raw; fn's are returned as they are.
func each(ctx context.Context, q querier, query string, args []any, dest []any, fn func() error) (bool, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	defer func() { _ = rows.Close() }()
	seen := false
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return seen, err
		}
		seen = true
		if err := rows.Scan(dest...); err != nil {
			return seen, err
		}
		if err := fn(); err != nil {
			return seen, err
		}
	}
	if err := rows.Err(); err != nil {
		return seen, err
	}
	return seen, ctx.Err()
}

// perSchema builds a query over several schemas: one SELECT per schema, joined with UNION ALL,
// sorted by orderBy (names of the first SELECT's result columns). branch gives schema i's
// SELECT, in which {n} stands for i+1 (a literal: the schema's sort key, selected first, and the
// number of the parameter that binds its name), {p} for that parameter (?n) and {schema} for
// its quoted name (a catalog name, which SQLite cannot bind: quoted as an identifier).
func perSchema(schemas []string, branch func(i int) string, orderBy string) string {
	parts := make([]string, len(schemas))
	for i, name := range schemas {
		n := strconv.Itoa(i + 1)
		parts[i] = strings.NewReplacer("{n}", n, "{p}", "?"+n, "{schema}", quoteIdent(name)).Replace(branch(i))
	}
	return strings.Join(parts, "\nUNION ALL\n") + "\nORDER BY " + orderBy
}

// schemaArgs binds the schemas' names to the parameters ?1, ?2, ... of a perSchema query.
func schemaArgs(schemas []string) []any {
	args := make([]any, len(schemas))
	for i, name := range schemas {
		args[i] = name
	}
	return args
}

// userObject selects the tables and views of sqlite_schema AS s, internal sqlite_% tables
// excluded.
const userObject = `s.type IN ('table', 'view') AND s.name NOT LIKE 'sqlite\_%' ESCAPE '\'`

// ordinaryTable selects the ordinary tables of sqlite_schema AS m: not views, not internal
// sqlite_% tables and not virtual tables, the only objects with keys and indexes (and whose
// pragma_table_info cannot fail).
const ordinaryTable = `m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' AND m.sql NOT LIKE 'CREATE VIRTUAL TABLE%'`

// stat1Query names the schemas (by position) where ANALYZE has created sqlite_stat1.
func stat1Query(schemas []string) string {
	return perSchema(schemas, func(int) string {
		return `SELECT {n} AS sch FROM {schema}.sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat1'`
	}, "sch")
}

// tablesQuery lists the schemas' tables and views with, where stats says sqlite_stat1 exists,
// the table's row-count estimate (the first number of stat is the table's row count). A nil
// stats reads no estimates. It has no parameters.
func tablesQuery(schemas []string, stats []bool) string {
	return perSchema(schemas, func(i int) string {
		if i < len(stats) && stats[i] {
			return `SELECT {n} AS sch, s.name AS obj, s.type, CASE WHEN s.type = 'view' THEN s.sql END, st.n
FROM {schema}.sqlite_schema AS s
LEFT JOIN (SELECT tbl, max(CAST(stat AS INTEGER)) AS n FROM {schema}.sqlite_stat1 GROUP BY tbl) AS st ON st.tbl = s.name
WHERE ` + userObject
		}
		return `SELECT {n} AS sch, s.name AS obj, s.type, CASE WHEN s.type = 'view' THEN s.sql END, NULL
FROM {schema}.sqlite_schema AS s
WHERE ` + userObject
	}, "sch, obj")
}

// columnsQuery lists the columns of the schemas' tables and views from pragma_table_info. Its
// parameters are the schema names (schemaArgs). It sorts, so a failure to describe an object
// fails it before its first row.
func columnsQuery(schemas []string) string {
	return perSchema(schemas, func(int) string {
		return `SELECT {n} AS sch, s.name AS obj, p.cid AS pos, p.name, p.type, p."notnull", p.dflt_value, p.pk
FROM {schema}.sqlite_schema AS s
JOIN pragma_table_info(s.name, {p}) AS p
WHERE ` + userObject
	}, "sch, obj, pos")
}

// keysQuery lists the key columns of the schemas' ordinary tables, one row per column of a
// primary key (kind 'p', from pragma_table_info), a UNIQUE constraint ('u', from the index of
// pragma_index_list origin 'u', by name, and pragma_index_info) or a foreign key ('f', from
// pragma_foreign_key_list, by id). A foreign key's referenced table is looked up in the same
// schema (ASCII case-insensitively, as SQLite does) for its catalog spelling and for its
// columns: the declared ones' spelling, or, when the declaration omits them, its primary key's
// columns in order. The CREATE TABLE statement is selected only with the first column of each
// key, and only when it can declare a constraint name. Its parameters are the schema names.
func keysQuery(schemas []string) string {
	// The statement can declare a constraint name only if it has the word.
	const named = `m.sql LIKE '%constraint%' THEN m.sql END`
	return perSchema(schemas, func(int) string {
		return `SELECT {n} AS sch, m.name AS tbl, 'p' AS kind, NULL AS idx, NULL AS fk, p.pk AS pos,
	CASE WHEN p.pk = 1 AND ` + named + `, p.name, NULL, NULL, NULL, NULL
FROM {schema}.sqlite_schema AS m
JOIN pragma_table_info(m.name, {p}) AS p
WHERE ` + ordinaryTable + ` AND p.pk > 0
UNION ALL
SELECT {n}, m.name, 'u', l.name, NULL, i.seqno, CASE WHEN i.seqno = 0 AND ` + named + `, i.name, NULL, NULL, NULL, NULL
FROM {schema}.sqlite_schema AS m
JOIN pragma_index_list(m.name, {p}) AS l
JOIN pragma_index_info(l.name, {p}) AS i
WHERE ` + ordinaryTable + ` AND l.origin = 'u'
UNION ALL
SELECT {n}, m.name, 'f', NULL, f.id, f.seq, CASE WHEN f.seq = 0 AND ` + named + `, f."from",
	COALESCE(r.name, f."table"), COALESCE(rc.name, f."to"), f.on_update, f.on_delete
FROM {schema}.sqlite_schema AS m
JOIN pragma_foreign_key_list(m.name, {p}) AS f
LEFT JOIN {schema}.sqlite_schema AS r ON r.type = 'table' AND r.name = f."table" COLLATE NOCASE
	AND r.sql NOT LIKE 'CREATE VIRTUAL TABLE%'
LEFT JOIN pragma_table_info(r.name, {p}) AS rc
	ON CASE WHEN f."to" IS NULL THEN rc.pk = f.seq + 1 ELSE rc.name = f."to" COLLATE NOCASE END
WHERE ` + ordinaryTable
	}, "sch, tbl, kind, idx, fk, pos")
}

// indexesQuery lists the key columns of every index of the schemas' ordinary tables:
// pragma_index_list, pragma_index_xinfo (key columns only: cid is -2 for an expression, -1 for
// the rowid) and, with the first column, the CREATE INDEX statement from sqlite_schema (none for
// automatic indexes). Its parameters are the schema names.
func indexesQuery(schemas []string) string {
	return perSchema(schemas, func(int) string {
		return `SELECT {n} AS sch, m.name AS tbl, l.name AS idx, l."unique", l.origin, l.partial, x.seqno AS pos,
	x.cid, x.name, CASE WHEN x.seqno = 0 THEN i.sql END
FROM {schema}.sqlite_schema AS m
JOIN pragma_index_list(m.name, {p}) AS l
JOIN pragma_index_xinfo(l.name, {p}) AS x
LEFT JOIN {schema}.sqlite_schema AS i ON i.type = 'index' AND i.name = l.name
WHERE ` + ordinaryTable + ` AND x.key = 1`
	}, "sch, tbl, idx, pos")
}

// included decides, once per table, whether the rows of (schema position, table) are written.
type included struct {
	started bool
	sch     int
	table   string
	include bool
}

// next reports whether the row's table passes the filters, and whether it starts a new table.
func (g *included) next(x *extraction, sch int, table string) (include, first bool) {
	if !g.started || g.sch != sch || g.table != table {
		g.started, g.sch, g.table = true, sch, table
		g.include = x.filters.TableIncluded(x.schemas[sch-1], table)
		return g.include, true
	}
	return g.include, false
}

func (x *extraction) tables(ctx context.Context) error {
	stats := make([]bool, len(x.schemas))
	var sch int
	if _, err := each(ctx, x.tx, stat1Query(x.schemas), nil, []any{&sch}, func() error {
		stats[sch-1] = true
		return nil
	}); err != nil {
		return err
	}
	var (
		name, typ string
		def       sql.NullString
		rowCount  sql.NullInt64
	)
	_, err := each(ctx, x.tx, tablesQuery(x.schemas, stats), nil, []any{&sch, &name, &typ, &def, &rowCount}, func() error {
		schema := x.schemas[sch-1]
		if !x.filters.TableIncluded(schema, name) {
			return nil
		}
		t := connectors.Table{Database: x.database, Schema: schema, Name: name, Type: typ, Definition: def.String}
		if typ == connectors.TableTypeView {
			x.views = append(x.views, viewDefinition{schema: schema, name: name, sql: def.String})
		}
		if rowCount.Valid && typ == connectors.TableTypeTable {
			n := rowCount.Int64
			t.RowCount = &n
		}
		return x.emit(ctx, t)
	})
	return err
}

// columns writes the columns of every object with one set-based query. Should it fail before its
// first row because an object cannot be described, it is run again schema by schema, and the
// objects of a schema where it still fails are described one by one.
func (x *extraction) columns(ctx context.Context) error {
	seen, err := x.columnsOf(ctx, x.schemas)
	if err == nil || seen || !undescribable(ctx, err) {
		return err
	}
	for _, schema := range x.schemas {
		seen, err := x.columnsOf(ctx, []string{schema})
		if err == nil {
			continue
		}
		if seen || !undescribable(ctx, err) {
			return err
		}
		if err := x.columnsSlowly(ctx, schema); err != nil {
			return err
		}
	}
	return nil
}

// undescribable reports whether err is SQLite's generic error, the one pragma_table_info gives
// for an object it cannot describe (a view over a dropped table: "no such table"; a virtual
// table of a missing module: "no such module").
func undescribable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && sqliteCode(err)&0xff == sqlite3.SQLITE_ERROR
}

// columnsOf writes the columns of the given schemas (a sublist of x.schemas, in its order) with
// one query, reporting whether it read a row.
func (x *extraction) columnsOf(ctx context.Context, schemas []string) (bool, error) {
	var (
		sch           int
		obj           string
		col           columnRow
		g             included
		firstPosition = slices.Index(x.schemas, schemas[0])
	)
	return each(ctx, x.tx, columnsQuery(schemas), schemaArgs(schemas), col.dest(&sch, &obj), func() error {
		sch += firstPosition // the query numbers the schemas it was given from 1
		if include, _ := g.next(x, sch, obj); !include {
			return nil
		}
		return x.emit(ctx, col.column(x.database, x.schemas[sch-1], obj))
	})
}

// columnsSlowly lists the schema's objects, then describes each with its own pragma_table_info
// query, leaving out the columns of an object that cannot be described (its table entity is
// already written).
func (x *extraction) columnsSlowly(ctx context.Context, schema string) error {
	var (
		sch       int
		name, typ string
		def       sql.NullString
		rowCount  sql.NullInt64
		names     []string
	)
	_, err := each(ctx, x.tx, tablesQuery([]string{schema}, nil), nil, []any{&sch, &name, &typ, &def, &rowCount}, func() error {
		if x.filters.TableIncluded(schema, name) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range names {
		cols, err := x.describe(ctx, schema, name)
		if err != nil {
			if undescribable(ctx, err) {
				continue
			}
			return err
		}
		for _, c := range cols {
			if err := x.emit(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// describe reads one object's columns. They are gathered before any is written: the pragma can
// fail after its first row.
func (x *extraction) describe(ctx context.Context, schema, name string) ([]connectors.Column, error) {
	var (
		cols []connectors.Column
		col  columnRow
		sch  int
		obj  string
	)
	dest := col.dest(&sch, &obj)[2:]
	_, err := each(ctx, x.tx, `SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_info(?, ?) ORDER BY cid`,
		[]any{name, schema}, dest, func() error {
			cols = append(cols, col.column(x.database, schema, name))
			return nil
		})
	return cols, err
}

// columnRow is one row of pragma_table_info.
type columnRow struct {
	cid                  int64
	name, typ, dflt      sql.NullString
	notNull, primaryPart sql.NullInt64
}

// dest scans a columnsQuery row: the schema position, the object, then the pragma's columns.
func (c *columnRow) dest(sch *int, obj *string) []any {
	return []any{sch, obj, &c.cid, &c.name, &c.typ, &c.notNull, &c.dflt, &c.primaryPart}
}

func (c *columnRow) column(database, schema, table string) connectors.Column {
	return connectors.Column{
		Database:   database,
		Schema:     schema,
		Table:      table,
		Name:       c.name.String,
		Position:   int(c.cid) + 1,
		DataType:   c.typ.String,
		Nullable:   c.notNull.Int64 == 0,
		Default:    c.dflt.String,
		PrimaryKey: c.primaryPart.Int64 > 0,
	}
}

// tableKeys gathers the keys of one table from consecutive keysQuery rows.
type tableKeys struct {
	database, schema, table string
	// ddl is the CREATE TABLE statement, when it may declare constraint names.
	ddl     string
	primary []string
	uniques []uniqueKey  // by index name
	foreign []foreignKey // by pragma_foreign_key_list id: the last declared first
}

type uniqueKey struct {
	index   string
	columns []string
}

type foreignKey struct {
	id                 int64
	columns, refCols   []string
	refTable           string
	onUpdate, onDelete string
	// unresolved: a referenced column is neither declared nor found in a primary key.
	unresolved bool
}

func (x *extraction) keys(ctx context.Context) error {
	var (
		sch                                  int
		tbl, kind                            string
		idx, ddl, col, ref, refCol, upd, del sql.NullString
		fk                                   sql.NullInt64
		pos                                  int64
		g                                    included
		cur                                  *tableKeys
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		keys := cur.keys()
		cur = nil
		for _, k := range keys {
			if err := x.emit(ctx, k); err != nil {
				return err
			}
		}
		return nil
	}
	dest := []any{&sch, &tbl, &kind, &idx, &fk, &pos, &ddl, &col, &ref, &refCol, &upd, &del}
	_, err := each(ctx, x.tx, keysQuery(x.schemas), schemaArgs(x.schemas), dest, func() error {
		include, first := g.next(x, sch, tbl)
		if first {
			if err := flush(); err != nil {
				return err
			}
			if include {
				cur = &tableKeys{database: x.database, schema: x.schemas[sch-1], table: tbl}
			}
		}
		if !include {
			return nil
		}
		if ddl.Valid && cur.ddl == "" {
			cur.ddl = ddl.String
		}
		switch kind {
		case "p":
			cur.primary = append(cur.primary, col.String)
		case "u":
			if n := len(cur.uniques); n == 0 || cur.uniques[n-1].index != idx.String {
				cur.uniques = append(cur.uniques, uniqueKey{index: idx.String})
			}
			u := &cur.uniques[len(cur.uniques)-1]
			u.columns = append(u.columns, col.String)
		case "f":
			if n := len(cur.foreign); n == 0 || cur.foreign[n-1].id != fk.Int64 {
				cur.foreign = append(cur.foreign, foreignKey{id: fk.Int64, refTable: ref.String, onUpdate: upd.String, onDelete: del.String})
			}
			f := &cur.foreign[len(cur.foreign)-1]
			f.columns = append(f.columns, col.String)
			f.refCols = append(f.refCols, refCol.String)
			if !refCol.Valid {
				f.unresolved = true
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// keys names the table's keys (see Extract) and sorts them by name.
func (t *tableKeys) keys() []connectors.Key {
	var d tableDDL
	if t.ddl != "" {
		d = parseCreateTable(t.ddl)
	}
	var out []connectors.Key
	if len(t.primary) > 0 {
		name := "pk_" + t.table
		if d.primary != nil && d.primary.name != "" {
			name = d.primary.name
		}
		out = append(out, connectors.Key{Database: t.database, Schema: t.schema, Table: t.table, Name: name, Type: connectors.KeyPrimary, Columns: t.primary})
	}
	for _, u := range t.uniques {
		same := 0 // indexes of UNIQUE constraints on the same columns (different collations or orders)
		for _, v := range t.uniques {
			if sameNames(u.columns, v.columns) {
				same++
			}
		}
		name := u.index
		if n := d.uniqueName(u.columns); n != "" && same == 1 {
			name = n
		}
		out = append(out, connectors.Key{Database: t.database, Schema: t.schema, Table: t.table, Name: name, Type: connectors.KeyUnique, Columns: u.columns})
	}
	for i, f := range t.foreign {
		ordinal := len(t.foreign) - i // ids count from the last declared key
		name := d.foreignName(ordinal, len(t.foreign), f.columns, f.refTable)
		if name == "" {
			name = "fk_" + t.table + "_" + strconv.Itoa(ordinal)
		}
		k := connectors.Key{Database: t.database, Schema: t.schema, Table: t.table, Name: name, Type: connectors.KeyForeign, Columns: f.columns,
			RefSchema: t.schema, RefTable: f.refTable, RefColumns: f.refCols, OnUpdate: f.onUpdate, OnDelete: f.onDelete}
		if f.unresolved {
			k.RefColumns = nil
		}
		out = append(out, k)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (x *extraction) indexes(ctx context.Context) error {
	var (
		sch               int
		tbl, name, origin string
		unique, partial   bool
		pos, cid          int64
		col, ddl          sql.NullString
		g                 included
		cur               *connectors.Index
		curPartial        bool
		curDDL            string
		parts             []indexPart
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		ix := *cur
		cur = nil
		var parsed indexDDL
		if curDDL != "" {
			parsed = parseCreateIndex(curDDL)
			ix.Definition = curDDL
		}
		ix.Columns = make([]string, len(parts))
		for i, p := range parts {
			switch {
			case p.cid == -2: // an expression: its text is only in the statement
				if len(parsed.columns) == len(parts) {
					ix.Columns[i] = parsed.columns[i]
				}
			case p.cid == -1:
				ix.Columns[i] = "rowid"
			default:
				ix.Columns[i] = p.name
			}
		}
		if curPartial {
			ix.Predicate = parsed.predicate
		}
		return x.emit(ctx, ix)
	}
	dest := []any{&sch, &tbl, &name, &unique, &origin, &partial, &pos, &cid, &col, &ddl}
	_, err := each(ctx, x.tx, indexesQuery(x.schemas), schemaArgs(x.schemas), dest, func() error {
		include, _ := g.next(x, sch, tbl)
		if !include {
			return flush()
		}
		if cur == nil || cur.Table != tbl || cur.Name != name || cur.Schema != x.schemas[sch-1] {
			if err := flush(); err != nil {
				return err
			}
			cur = &connectors.Index{Database: x.database, Schema: x.schemas[sch-1], Table: tbl, Name: name, Unique: unique,
				Primary: origin == "pk", Method: "btree"}
			curPartial, curDDL, parts = partial, ddl.String, parts[:0]
		}
		parts = append(parts, indexPart{cid: cid, name: col.String})
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// indexPart is one key column of an index, from pragma_index_xinfo.
type indexPart struct {
	cid  int64
	name string
}
