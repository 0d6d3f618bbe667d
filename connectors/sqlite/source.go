// Package sqlite is the connector for SQLite database files on the agent's file system.
//
// The file is opened read-only through modernc.org/sqlite (pure Go, no cgo) with a SQLite URI
// (file:...?mode=ro), so a missing file is never created and the database is never written. The
// file's path may come from a secret: it never appears in an error, a log line, a report or the
// output. Errors are *secrets.Error values whose messages say what to fix without naming it.
//
// The path is workflow input, so it is confined: only files strictly inside the directories the
// agent's operator allows (connectors.OpenOptions.SQLiteDirs, from SECURE_AGENT_SQLITE_DIRS or
// sqlite.dirs in the policy file) are opened, after their symbolic links are resolved. Every
// other path, relative ones included, gets one PolicyDenied refusal, the same text whatever is
// there, decided before the file system is asked about the path; no allowed directory, no file.
//
// Catalog queries are set-based: Extract runs one query per entity kind (tables, columns, keys,
// indexes) for all the schemas it is given, each joining sqlite_schema with SQLite's table-valued
// pragma functions (pragma_table_info, pragma_index_list, pragma_index_xinfo,
// pragma_foreign_key_list), in one read transaction. Only when the columns query fails because
// an object cannot be described (a view over a dropped table, a virtual table whose module this
// build lacks) does the connector fall back to describing that schema's objects one by one,
// skipping the columns of the broken ones. Constraint names and index expressions, which SQLite
// keeps only in the text of its CREATE statements, are read from that text.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// BusyTimeoutMillis is how long a query waits for a writer's lock before failing with
// SourceUnavailable (retried).
const BusyTimeoutMillis = 5000

// FieldPath is the connection field that names the database file.
const FieldPath = "path"

// Source is an open, read-only connection to one SQLite database file.
type Source struct {
	db *sql.DB
	// path and resolved (the path as given, and the file opened) are kept only to make sure that
	// no error this package returns carries either.
	path, resolved string
}

var _ connectors.Source = (*Source)(nil)

// Open opens the database file that creds["path"] names, read-only, and checks that it is a
// SQLite database. It never creates the file.
//
// The path must be absolute and lie strictly inside one of opts.SQLiteDirs, both as written
// (after filepath.Clean) and with its symbolic links resolved; the resolved path is what is
// opened. A path that does not (a relative path, one with a NUL byte, a "file:" URI, one that
// climbs out with "..", a symbolic link out, an allowed directory itself, any path when
// opts.SQLiteDirs is empty) is PolicyDenied (final), with one message, byte for byte the same
// whether anything exists there; the lexical part of that check runs before anything looks at
// the file system. Characters that SQLite URIs treat specially ('?', '#', '%') are part of the
// file name, never URI parameters.
//
// Errors inside the allowed directories: a missing or empty field, a path that does not name a
// readable regular file, a file that is not a SQLite database and a malformed database are
// InvalidInput (final: retrying cannot make the file appear or heal); a database locked past the
// busy timeout, an I/O error and the end of ctx are SourceUnavailable (retried). No error names
// the path.
func Open(ctx context.Context, creds connectors.Credentials, opts connectors.OpenOptions) (*Source, error) {
	v, ok := creds[FieldPath]
	if !ok || len(v) == 0 {
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath,
			Msg: "sqlite: the connection needs the path of the database file; set field \"path\""}
	}
	path := v.Reveal()
	if err := ctx.Err(); err != nil {
		return nil, contextError(err)
	}
	resolved, err := confine(path, opts.SQLiteDirs)
	if err != nil {
		return nil, err
	}
	if err := checkFile(resolved); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(resolved))
	if err != nil { // only for an unknown driver name: a programming error
		return nil, &secrets.Error{Kind: secrets.SourceUnavailable, Cause: errRedacted,
			Msg: "sqlite: the driver is not available in this build"}
	}
	// One connection: a Source is used by one goroutine at a time, ATTACHed schemas live on a
	// connection, and it bounds the file handles held on the customer's file.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	s := &Source{db: db, path: path, resolved: resolved}
	// Opening a file read-only does not read it; the schema version is in the header, so this
	// tells a non-database file apart early.
	var version int64
	if err := db.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&version); err != nil {
		cerr := s.classify(ctx, err)
		_ = db.Close()
		return nil, cerr
	}
	return s, nil
}

// checkFile makes sure path, as confine returned it, names an existing regular file the agent
// can read, without creating or opening it for writing. Its errors never carry the path: they
// wrap only the bare errno.
func checkFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		cause := bareErrno(err)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath, Cause: cause, Detail: "ENOENT",
				Msg: "sqlite: no database file exists at the configured path (it is never created); check field \"path\" and that the file is on the agent's file system"}
		case errors.Is(err, fs.ErrPermission):
			return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath, Cause: cause, Detail: "EACCES",
				Msg: "sqlite: the agent may not reach the database file; give the agent's user permission to search its directories and read it"}
		case errors.Is(err, syscall.ENOTDIR):
			return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath, Cause: cause, Detail: "ENOTDIR",
				Msg: "sqlite: a directory component of the configured path is a file; check field \"path\""}
		case errors.Is(err, syscall.ENAMETOOLONG):
			return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath, Cause: cause, Detail: "ENAMETOOLONG",
				Msg: "sqlite: the configured path is too long; check field \"path\""}
		default:
			return &secrets.Error{Kind: secrets.SourceUnavailable, Field: FieldPath, Cause: cause,
				Msg: "sqlite: the database file could not be examined; check the agent's file system"}
		}
	}
	if st.IsDir() {
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath,
			Msg: "sqlite: the configured path names a directory; field \"path\" must name the database file"}
	}
	if !st.Mode().IsRegular() {
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath,
			Msg: "sqlite: the configured path does not name a regular file (a device, pipe or socket); field \"path\" must name the database file"}
	}
	// Read permission, checked without opening the file for anything but reading.
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath, Cause: bareErrno(err), Detail: "EACCES",
				Msg: "sqlite: the agent may not read the database file; give the agent's user read permission"}
		}
		return &secrets.Error{Kind: secrets.SourceUnavailable, Field: FieldPath, Cause: bareErrno(err),
			Msg: "sqlite: the database file could not be opened; check the agent's file system"}
	}
	_ = f.Close()
	return nil
}

// bareErrno strips the path from an *fs.PathError, keeping the errno for errors.Is.
func bareErrno(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return errRedacted
}

// dsn builds the SQLite URI that opens abs read-only, never creating it. In a URI path '%', '?'
// and '#' are special, so they are percent-encoded, as are control bytes; abs is absolute and
// clean, so it starts with exactly one '/' and has no authority part.
func dsn(abs string) string {
	var b strings.Builder
	b.WriteString("file:")
	for i := 0; i < len(abs); i++ {
		c := abs[i]
		if c == '%' || c == '?' || c == '#' || c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	// mode=ro: read-only, and never create. query_only: refuse writes on this connection too.
	fmt.Fprintf(&b, "?mode=ro&_pragma=busy_timeout(%d)&_pragma=query_only(1)", BusyTimeoutMillis)
	return b.String()
}

// Preflight runs select sqlite_version() and reads sqlite_schema. SQLite has no authentication:
// the report never lists missing privileges.
func (s *Source) Preflight(ctx context.Context) (*connectors.PreflightReport, error) {
	var version string
	if err := s.db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&version); err != nil {
		return nil, s.classify(ctx, err)
	}
	var objects int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM main.sqlite_schema").Scan(&objects); err != nil {
		return nil, s.classify(ctx, err)
	}
	// The identity never names the file: its path may be a secret.
	return &connectors.PreflightReport{ServerVersion: version, Identity: "sqlite " + version}, nil
}

// Schemas lists "main" and any attached databases that pass filters, sorted. The connection-local
// "temp" schema is never listed.
func (s *Source) Schemas(ctx context.Context, filters connectors.Filters) ([]string, error) {
	all, err := s.schemaNames(ctx, s.db)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range all {
		if filters.SchemaIncluded(name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// querier is a *sql.DB or the *sql.Tx of an extraction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Source) schemaNames(ctx context.Context, q querier) ([]string, error) {
	// pragma_database_list also has the file of each database: never selected.
	rows, err := q.QueryContext(ctx, "SELECT name FROM pragma_database_list WHERE name <> 'temp' ORDER BY seq")
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	defer func() { _ = rows.Close() }()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, s.classify(ctx, err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, s.classify(ctx, err)
	}
	return names, nil
}

// Extract streams the entities of the given schemas ("main" and any attached databases) to w,
// kind by kind:
//
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
//   - the indexes of those tables: every index pragma_index_list reports (see Index naming
//     below), with key columns in order.
//
// Within a kind, entities come schema by schema in the order given, then by table name (byte
// order, as Go sorts strings). SQLite has no Database entity to write: no Extract call writes one.
//
// Each kind is one query for all the schemas (a UNION ALL of one SELECT per schema, joining
// sqlite_schema with the table-valued pragma functions, schema names bound as parameters), and
// all run in one read transaction, so that the kinds describe the same catalog. Rows are written
// as they arrive (a table's keys are gathered first, to be sorted by name); ctx is checked
// between rows. Only when the columns query fails because an object cannot be described (a view
// over a dropped table, a virtual table whose module this build lacks) are the schemas retried
// one by one, and the objects of a schema that still fails described one by one, leaving out
// the columns of the broken ones.
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
// Tables whose columns, keys and indexes filters.TableIncluded refuses are skipped with them;
// internal sqlite_% tables are never extracted. An unknown schema is InvalidInput, and nothing
// is written. Writer errors are returned unchanged.
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
	x := &extraction{s: s, tx: tx, filters: filters, w: w}
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
	for _, schema := range x.schemas {
		if err := x.emit(ctx, connectors.Schema{Name: schema}); err != nil {
			return err
		}
	}
	if len(x.schemas) == 0 {
		return nil
	}
	for _, step := range []func(context.Context) error{x.tables, x.columns, x.keys, x.indexes} {
		if err := step(ctx); err != nil {
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
		t := connectors.Table{Schema: schema, Name: name, Type: typ, Definition: def.String}
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
		return x.emit(ctx, col.column(x.schemas[sch-1], obj))
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
			cols = append(cols, col.column(schema, name))
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

func (c *columnRow) column(schema, table string) connectors.Column {
	return connectors.Column{
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
	schema, table string
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
				cur = &tableKeys{schema: x.schemas[sch-1], table: tbl}
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
		out = append(out, connectors.Key{Schema: t.schema, Table: t.table, Name: name, Type: connectors.KeyPrimary, Columns: t.primary})
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
		out = append(out, connectors.Key{Schema: t.schema, Table: t.table, Name: name, Type: connectors.KeyUnique, Columns: u.columns})
	}
	for i, f := range t.foreign {
		ordinal := len(t.foreign) - i // ids count from the last declared key
		name := d.foreignName(ordinal, len(t.foreign), f.columns, f.refTable)
		if name == "" {
			name = "fk_" + t.table + "_" + strconv.Itoa(ordinal)
		}
		k := connectors.Key{Schema: t.schema, Table: t.table, Name: name, Type: connectors.KeyForeign, Columns: f.columns,
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
			cur = &connectors.Index{Schema: x.schemas[sch-1], Table: tbl, Name: name, Unique: unique,
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

// Close releases the connection. It is safe to call more than once.
func (s *Source) Close() error {
	if s == nil || s.db == nil {
		return nil
	}
	err := s.db.Close()
	if err != nil {
		return s.classify(context.Background(), err)
	}
	return nil
}

// classify turns a driver error into a *secrets.Error. The result never carries the path: the
// driver's error is kept as the cause only when its text contains neither the path as given nor
// the resolved path that was opened.
func (s *Source) classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var se *secrets.Error
	if errors.As(err, &se) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return contextError(ctxErr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return contextError(err)
	}
	cause := err
	if text := err.Error(); s.path != "" && strings.Contains(text, s.path) || s.resolved != "" && strings.Contains(text, s.resolved) {
		cause = errRedacted
	}
	code := sqliteCode(err)
	e := &secrets.Error{Kind: secrets.SourceUnavailable, Cause: cause, Detail: codeName(code)}
	switch code & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		e.Msg = "sqlite: another process held a lock on the database for longer than the busy timeout; the step is retried"
	case sqlite3.SQLITE_NOTADB:
		e.Kind, e.Field = secrets.InvalidInput, FieldPath
		e.Msg = "sqlite: the file is not a SQLite 3 database (or it is encrypted); field \"path\" must name a SQLite database file"
	case sqlite3.SQLITE_CORRUPT:
		e.Kind, e.Field = secrets.InvalidInput, FieldPath
		e.Msg = "sqlite: the database file is malformed; repair it (for example with the sqlite3 shell's .recover) or point field \"path\" at an intact copy"
	case sqlite3.SQLITE_CANTOPEN:
		e.Kind, e.Field = secrets.InvalidInput, FieldPath
		e.Msg = "sqlite: SQLite cannot open the database file read-only; check that field \"path\" names a database file the agent can read"
	case sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH, sqlite3.SQLITE_READONLY:
		e.Kind, e.Field = secrets.InvalidInput, FieldPath
		e.Msg = "sqlite: access to the database was refused; give the agent's user read access to the database file (and, for a WAL database, to its -wal and -shm files and their directory)"
	case sqlite3.SQLITE_INTERRUPT:
		e.Msg = "sqlite: the query was interrupted; the step is retried"
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
		e.Msg = "sqlite: an I/O error occurred while reading the database; check the agent's file system (the step is retried)"
	default:
		e.Msg = "sqlite: reading the catalog failed; the step is retried"
	}
	return e
}

// contextError is the error for a ctx that ended: SourceUnavailable, wrapping ctxErr.
func contextError(ctxErr error) error { return connectors.ContextError("sqlite", ctxErr) }

// errRedacted replaces a cause whose text would reveal the database path.
var errRedacted = errors.New("sqlite: driver error (text withheld: it named the database path)")

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// codeName is the SQLite result code's name, such as "SQLITE_NOTADB", or "" if there is none.
func codeName(code int) string {
	if code == 0 {
		return ""
	}
	for _, c := range []int{code, code & 0xff} {
		if s, ok := sqlite.ErrorCodeString[c]; ok {
			if i := strings.LastIndex(s, "(SQLITE_"); i >= 0 && strings.HasSuffix(s, ")") {
				return s[i+1 : len(s)-1]
			}
		}
	}
	return fmt.Sprintf("SQLite result code %d", code)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}

// SQLite keeps constraint names and index expressions only in the text of the CREATE TABLE and
// CREATE INDEX statements in sqlite_schema. What follows reads those statements just enough to
// find them: a tokenizer that knows SQLite's quoting and comments, and parsers for the parts of
// the two statements that hold names, column lists and expressions. A statement they cannot
// follow yields nothing (the names Extract makes up, an empty expression), never an error.

type tokenKind int

const (
	tokWord   tokenKind = iota // a keyword or a bare identifier
	tokQuoted                  // a "quoted", `quoted` or [quoted] identifier
	tokString                  // a 'string' (SQLite also takes one as an identifier)
	tokNumber
	tokPunct // one character of punctuation or an operator
)

type token struct {
	kind       tokenKind
	start, end int    // byte offsets in the statement
	text       string // a word as written; a quoted identifier or string unquoted
}

// tokenize splits an SQL statement into tokens, leaving out spaces and comments.
func tokenize(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(s)
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			if j := strings.Index(s[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(s)
			}
		case c == '"' || c == '`' || c == '\'' || c == '[':
			closer := c
			if c == '[' {
				closer = ']'
			}
			var b strings.Builder
			j := i + 1
			for j < len(s) {
				if s[j] != closer {
					b.WriteByte(s[j])
					j++
					continue
				}
				if closer != ']' && j+1 < len(s) && s[j+1] == closer { // a doubled quote
					b.WriteByte(closer)
					j += 2
					continue
				}
				j++
				break
			}
			kind := tokQuoted
			if c == '\'' {
				kind = tokString
			}
			toks = append(toks, token{kind: kind, start: i, end: j, text: b.String()})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && (wordByte(s[j]) || s[j] == '.') {
				j++
			}
			toks = append(toks, token{kind: tokNumber, start: i, end: j, text: s[i:j]})
			i = j
		case wordByte(c):
			j := i + 1
			for j < len(s) && (wordByte(s[j]) || s[j] == '$') {
				j++
			}
			toks = append(toks, token{kind: tokWord, start: i, end: j, text: s[i:j]})
			i = j
		default:
			toks = append(toks, token{kind: tokPunct, start: i, end: i + 1, text: s[i : i+1]})
			i++
		}
	}
	return toks
}

// wordByte reports whether c may be part of a bare identifier: SQLite takes every byte of a
// multi-byte UTF-8 character as one.
func wordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// is reports whether t is the keyword kw (in upper case).
func (t token) is(kw string) bool { return t.kind == tokWord && asciiEqualFold(t.text, kw) }

func (t token) isPunct(c byte) bool { return t.kind == tokPunct && t.text[0] == c }

// name is the identifier t stands for, if it can stand for one.
func (t token) name() (string, bool) {
	switch t.kind {
	case tokWord, tokQuoted, tokString:
		return t.text, true
	}
	return "", false
}

// closing returns the position of the ')' that closes the '(' at toks[i], or len(toks).
func closing(toks []token, i int) int {
	depth := 0
	for j := i; j < len(toks); j++ {
		switch {
		case toks[j].isPunct('('):
			depth++
		case toks[j].isPunct(')'):
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return len(toks)
}

// splitCommas splits toks at the commas outside parentheses.
func splitCommas(toks []token) [][]token {
	var items [][]token
	depth, start := 0, 0
	for j, t := range toks {
		switch {
		case t.isPunct('('):
			depth++
		case t.isPunct(')'):
			depth--
		case t.isPunct(',') && depth == 0:
			items = append(items, toks[start:j])
			start = j + 1
		}
	}
	return append(items, toks[start:])
}

// nameList reads the parenthesized column list at toks[i] (each item's first name: a column,
// perhaps followed by COLLATE and ASC or DESC) and returns the position after it.
func nameList(toks []token, i int) ([]string, int) {
	if i >= len(toks) || !toks[i].isPunct('(') {
		return nil, i
	}
	end := closing(toks, i)
	var names []string
	for _, item := range splitCommas(toks[i+1 : end]) {
		n := ""
		for _, t := range item {
			if v, ok := t.name(); ok {
				n = v
				break
			}
		}
		names = append(names, n)
	}
	return names, end + 1
}

// headerEnd skips "CREATE [TEMP|TEMPORARY|UNIQUE] <object> [IF NOT EXISTS] [schema.]name" and
// returns the position after it, or -1 if toks does not start so.
func headerEnd(toks []token, object string) int {
	i := 0
	next := func(kw string) bool {
		if i < len(toks) && toks[i].is(kw) {
			i++
			return true
		}
		return false
	}
	if !next("CREATE") {
		return -1
	}
	_ = next("TEMP") || next("TEMPORARY") || next("UNIQUE")
	if !next(object) {
		return -1
	}
	if next("IF") && !(next("NOT") && next("EXISTS")) {
		return -1
	}
	if i >= len(toks) {
		return -1
	}
	if _, ok := toks[i].name(); !ok {
		return -1
	}
	i++
	if i+1 < len(toks) && toks[i].isPunct('.') {
		i += 2
	}
	return i
}

// declaredKey is a PRIMARY KEY, UNIQUE or FOREIGN KEY constraint as a CREATE TABLE statement
// declares it; name is "" when it has no CONSTRAINT name.
type declaredKey struct {
	name     string
	columns  []string
	refTable string
}

// tableDDL holds the key constraints of a CREATE TABLE statement, each kind in declaration
// order.
type tableDDL struct {
	primary *declaredKey
	uniques []declaredKey
	foreign []declaredKey
}

// parseCreateTable reads the key constraints of a CREATE TABLE statement: column constraints
// ("CONSTRAINT n PRIMARY KEY", "UNIQUE", "REFERENCES t") and table constraints ("CONSTRAINT n
// UNIQUE (a, b)", ...; SQLite lets them go without commas between them).
func parseCreateTable(stmt string) tableDDL {
	var d tableDDL
	toks := tokenize(stmt)
	i := headerEnd(toks, "TABLE")
	if i < 0 || i >= len(toks) || !toks[i].isPunct('(') {
		return d // CREATE TABLE ... AS SELECT is stored as a column list, so this is not it
	}
	for _, item := range splitCommas(toks[i+1 : closing(toks, i)]) {
		if len(item) == 0 {
			continue
		}
		if tableConstraintStart(item[0]) {
			d.tableConstraints(item)
		} else {
			d.columnConstraints(item)
		}
	}
	return d
}

// tableConstraintStart reports whether t starts a table constraint. None of these keywords can
// be a bare column name.
func tableConstraintStart(t token) bool {
	return t.is("CONSTRAINT") || t.is("PRIMARY") || t.is("UNIQUE") || t.is("CHECK") || t.is("FOREIGN")
}

func (d *tableDDL) tableConstraints(toks []token) {
	for i := 0; i < len(toks); {
		name := ""
		if toks[i].is("CONSTRAINT") {
			if i+1 < len(toks) {
				name, _ = toks[i+1].name()
			}
			i += 2
			if i >= len(toks) {
				return
			}
		}
		switch t := toks[i]; {
		case t.is("PRIMARY"):
			i++
			if i < len(toks) && toks[i].is("KEY") {
				i++
			}
			var cols []string
			cols, i = nameList(toks, i)
			d.primary = &declaredKey{name: name, columns: cols}
		case t.is("UNIQUE"):
			var cols []string
			cols, i = nameList(toks, i+1)
			d.uniques = append(d.uniques, declaredKey{name: name, columns: cols})
		case t.is("FOREIGN"):
			i++
			if i < len(toks) && toks[i].is("KEY") {
				i++
			}
			var cols []string
			cols, i = nameList(toks, i)
			ref := ""
			if i+1 < len(toks) && toks[i].is("REFERENCES") {
				ref, _ = toks[i+1].name()
				i += 2
			}
			d.foreign = append(d.foreign, declaredKey{name: name, columns: cols, refTable: ref})
		default: // CHECK, or something this parser does not know
			i++
		}
		// The rest of the constraint: up to the next one, outside parentheses.
		for i < len(toks) && !tableConstraintStart(toks[i]) {
			if toks[i].isPunct('(') {
				i = closing(toks, i)
			}
			i++
		}
	}
}

func (d *tableDDL) columnConstraints(toks []token) {
	column, ok := toks[0].name()
	if !ok {
		return
	}
	pending := "" // the CONSTRAINT name of the next constraint
	for i := 1; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.isPunct('('):
			i = closing(toks, i)
			continue
		case t.is("CONSTRAINT"):
			if i+1 < len(toks) {
				pending, _ = toks[i+1].name()
			}
			i++
			continue
		case t.is("PRIMARY"):
			d.primary = &declaredKey{name: pending, columns: []string{column}}
		case t.is("UNIQUE"):
			d.uniques = append(d.uniques, declaredKey{name: pending, columns: []string{column}})
		case t.is("REFERENCES"):
			ref := ""
			if i+1 < len(toks) {
				ref, _ = toks[i+1].name()
				i++
			}
			d.foreign = append(d.foreign, declaredKey{name: pending, columns: []string{column}, refTable: ref})
		case t.is("NOT"), t.is("NULL"), t.is("CHECK"), t.is("DEFAULT"), t.is("COLLATE"), t.is("GENERATED"), t.is("AS"):
			// another constraint, which takes the pending name
		default:
			continue // the type, or the rest of a constraint
		}
		pending = ""
	}
}

// uniqueName is the CONSTRAINT name of the UNIQUE constraint on columns, if exactly one name is
// declared for those columns.
func (d tableDDL) uniqueName(columns []string) string {
	name := ""
	for _, u := range d.uniques {
		if u.name == "" || !sameNames(u.columns, columns) {
			continue
		}
		if name != "" && name != u.name {
			return ""
		}
		name = u.name
	}
	return name
}

// foreignName is the CONSTRAINT name of the foreign key that is the ordinal-th (from 1) of total
// in declaration order, with columns and refTable. When the statement declares total foreign
// keys, the ordinal-th is it if it matches; otherwise the only one that matches is.
func (d tableDDL) foreignName(ordinal, total int, columns []string, refTable string) string {
	matches := func(k declaredKey) bool {
		return sameNames(k.columns, columns) && asciiEqualFold(k.refTable, refTable)
	}
	if len(d.foreign) == total && matches(d.foreign[ordinal-1]) {
		return d.foreign[ordinal-1].name
	}
	name, n := "", 0
	for _, k := range d.foreign {
		if matches(k) {
			name, n = k.name, n+1
		}
	}
	if n == 1 {
		return name
	}
	return ""
}

// indexDDL is what a CREATE INDEX statement says beyond the pragmas: each key column's text as
// written (COLLATE and ASC or DESC left out), and a partial index's WHERE clause.
type indexDDL struct {
	columns   []string
	predicate string
}

func parseCreateIndex(stmt string) indexDDL {
	var d indexDDL
	toks := tokenize(stmt)
	i := headerEnd(toks, "INDEX")
	if i < 0 || i+2 >= len(toks) || !toks[i].is("ON") || !toks[i+2].isPunct('(') {
		return d
	}
	i += 2
	end := closing(toks, i)
	if end >= len(toks) {
		return d
	}
	for _, item := range splitCommas(toks[i+1 : end]) {
		if n := len(item); n > 0 && (item[n-1].is("ASC") || item[n-1].is("DESC")) {
			item = item[:n-1]
		}
		if n := len(item); n > 1 && item[n-2].is("COLLATE") {
			item = item[:n-2]
		}
		text := ""
		if len(item) > 0 {
			text = stmt[item[0].start:item[len(item)-1].end]
		}
		d.columns = append(d.columns, text)
	}
	rest := toks[end+1:]
	if n := len(rest); n > 0 && rest[n-1].isPunct(';') {
		rest = rest[:n-1]
	}
	if len(rest) > 1 && rest[0].is("WHERE") {
		d.predicate = stmt[rest[1].start:rest[len(rest)-1].end]
	}
	return d
}

// sameNames reports whether a and b name the same columns in the same order, as SQLite
// compares names: ASCII case-insensitively.
func sameNames(a, b []string) bool {
	return slices.EqualFunc(a, b, asciiEqualFold)
}

// asciiEqualFold is SQLite's name comparison: ASCII letters in either case, every other byte
// itself.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
