// Package sqlite is the connector for SQLite database files on the agent's file system.
//
// The file is opened read-only through modernc.org/sqlite (pure Go, no cgo) with a SQLite URI
// (file:...?mode=ro), so a missing file is never created and the database is never written. The
// file's path may come from a secret: it never appears in an error, a log line, a report or the
// output. Errors are *secrets.Error values whose messages say what to fix without naming it.
//
// Catalog queries are set-based: one query per schema lists every table and view with its
// columns (sqlite_schema joined with pragma_table_info) and row-count estimates (sqlite_stat1,
// when ANALYZE has run). Only when that query fails because an object cannot be described (a view
// over a dropped table, a virtual table whose module this build lacks) does the connector fall
// back to describing that schema's objects one by one, skipping the columns of the broken ones.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
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
	// path is kept only to make sure that no error this package returns carries it.
	path string
}

var _ connectors.Source = (*Source)(nil)

// Open opens the database file that creds["path"] names, read-only, and checks that it is a
// SQLite database. It never creates the file.
//
// Errors: a missing or empty field, a path that does not name a readable regular file, a file
// that is not a SQLite database and a malformed database are InvalidInput (final: retrying
// cannot make the file appear or heal); a database locked past the busy timeout, an I/O error
// and the end of ctx are SourceUnavailable (retried). No error names the path.
func Open(ctx context.Context, creds connectors.Credentials) (*Source, error) {
	v, ok := creds[FieldPath]
	if !ok || len(v) == 0 {
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath,
			Msg: "sqlite: the connection needs the path of the database file; set field \"path\""}
	}
	path := v.Reveal()
	if err := ctx.Err(); err != nil {
		return nil, contextError(err)
	}
	if err := checkFile(path); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath,
			Msg: "sqlite: the database path cannot be made absolute; give an absolute path"}
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil { // only for an unknown driver name: a programming error
		return nil, &secrets.Error{Kind: secrets.SourceUnavailable, Cause: errRedacted,
			Msg: "sqlite: the driver is not available in this build"}
	}
	// One connection: a Source is used by one goroutine at a time, ATTACHed schemas live on a
	// connection, and it bounds the file handles held on the customer's file.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	s := &Source{db: db, path: path}
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

// checkFile makes sure path names an existing regular file the agent can read, without creating
// or opening it for writing. Its errors never carry the path: they wrap only the bare errno.
func checkFile(path string) error {
	if strings.ContainsRune(path, 0) {
		return &secrets.Error{Kind: secrets.InvalidInput, Field: FieldPath,
			Msg: "sqlite: the database path contains a NUL byte; fix the value of field \"path\""}
	}
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
	all, err := s.schemaNames(ctx)
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

func (s *Source) schemaNames(ctx context.Context) ([]string, error) {
	// pragma_database_list also has the file of each database: never selected.
	rows, err := s.db.QueryContext(ctx, "SELECT name FROM pragma_database_list WHERE name <> 'temp' ORDER BY seq")
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

// Extract streams, schema by schema in the order given, each table and view that passes
// filters.TableIncluded followed by its columns: tables in name order (byte order, as Go sorts
// strings), columns by position. An unknown schema is InvalidInput.
func (s *Source) Extract(ctx context.Context, schemas []string, filters connectors.Filters, w connectors.EntityWriter) error {
	known, err := s.schemaNames(ctx)
	if err != nil {
		return err
	}
	for _, schema := range schemas {
		if !slices.Contains(known, schema) {
			return &secrets.Error{Kind: secrets.InvalidInput,
				Msg: fmt.Sprintf("sqlite: the database has no schema %q; its schemas are %s", schema, strings.Join(quoteAll(known), ", "))}
		}
		if err := s.extractSchema(ctx, schema, filters, w); err != nil {
			return err
		}
	}
	return nil
}

// object is one row of the set-based catalog query: a table or view, and one of its columns
// if it has any.
type object struct {
	typ, name string
	sql       sql.NullString
	rows      sql.NullInt64
	cid       sql.NullInt64
	col       sql.NullString
	colType   sql.NullString
	notNull   sql.NullInt64
	dflt      sql.NullString
	pk        sql.NullInt64
}

// writeErr marks an error from the EntityWriter, which is passed through unclassified.
type writeErr struct{ err error }

func (e writeErr) Error() string { return e.err.Error() }
func (e writeErr) Unwrap() error { return e.err }

func (s *Source) extractSchema(ctx context.Context, schema string, filters connectors.Filters, w connectors.EntityWriter) error {
	stats, err := s.hasStat1(ctx, schema)
	if err != nil {
		return err
	}
	var (
		rowsSeen bool
		cur      string
		included bool
	)
	err = s.objects(ctx, objectsQuery(schema, stats, true), []any{schema}, func(o object) error {
		if !rowsSeen || o.name != cur {
			rowsSeen, cur = true, o.name
			included = filters.TableIncluded(schema, o.name)
			if included {
				if err := w.Write(table(schema, o)); err != nil {
					return writeErr{err}
				}
			}
		}
		if included && o.cid.Valid {
			if err := w.Write(column(schema, o)); err != nil {
				return writeErr{err}
			}
		}
		return nil
	})
	if err == nil {
		return nil
	}
	var we writeErr
	if errors.As(err, &we) {
		return we.err
	}
	// A view over a dropped table or a virtual table of a module this build lacks makes
	// pragma_table_info fail, and with it the whole set-based query. The query sorts, so it
	// fails before its first row: then describe the objects one by one instead.
	if !rowsSeen && ctx.Err() == nil && sqliteCode(err)&0xff == sqlite3.SQLITE_ERROR {
		return s.extractSchemaSlowly(ctx, schema, stats, filters, w)
	}
	return s.classify(ctx, err)
}

// objects runs q and hands each row to fn, checking ctx between rows. Errors are raw.
func (s *Source) objects(ctx context.Context, q string, args []any, fn func(object) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		var o object
		if err := rows.Scan(&o.typ, &o.name, &o.sql, &o.rows, &o.cid, &o.col, &o.colType, &o.notNull, &o.dflt, &o.pk); err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return ctx.Err()
}

// extractSchemaSlowly lists the schema's objects in one query, then describes each with its own
// pragma_table_info query, emitting an object that cannot be described without columns.
func (s *Source) extractSchemaSlowly(ctx context.Context, schema string, stats bool, filters connectors.Filters, w connectors.EntityWriter) error {
	var objs []object
	err := s.objects(ctx, objectsQuery(schema, stats, false), nil, func(o object) error {
		if filters.TableIncluded(schema, o.name) {
			objs = append(objs, o)
		}
		return nil
	})
	if err != nil {
		return s.classify(ctx, err)
	}
	for _, o := range objs {
		if err := ctx.Err(); err != nil {
			return contextError(err)
		}
		if err := w.Write(table(schema, o)); err != nil {
			return err
		}
		cols, err := s.columnsOf(ctx, schema, o)
		if err != nil {
			if ctx.Err() == nil && sqliteCode(err)&0xff == sqlite3.SQLITE_ERROR {
				continue // this object cannot be described; its table entity stands alone
			}
			return s.classify(ctx, err)
		}
		for _, c := range cols {
			if err := w.Write(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Source) columnsOf(ctx context.Context, schema string, o object) ([]connectors.Column, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_info(?, ?) ORDER BY cid`, o.name, schema)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var cols []connectors.Column
	for rows.Next() {
		c := o
		if err := rows.Scan(&c.cid, &c.col, &c.colType, &c.notNull, &c.dflt, &c.pk); err != nil {
			return nil, err
		}
		cols = append(cols, column(schema, c))
	}
	return cols, rows.Err()
}

// hasStat1 reports whether ANALYZE has created the schema's sqlite_stat1 table.
func (s *Source) hasStat1(ctx context.Context, schema string) (bool, error) {
	var n int64
	q := "SELECT count(*) FROM " + quoteIdent(schema) + ".sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat1'"
	if err := s.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return false, s.classify(ctx, err)
	}
	return n > 0, nil
}

// objectsQuery is the set-based catalog query of one schema: every table and view (internal
// sqlite_% tables excluded), with its row-count estimate from sqlite_stat1 (the first number of
// stat is the table's row count) and, if withColumns, one row per column from pragma_table_info.
// With columns, its one parameter is the schema name; without, it has none.
func objectsQuery(schema string, stats, withColumns bool) string {
	sch := quoteIdent(schema)
	var b strings.Builder
	b.WriteString("SELECT s.type, s.name, s.sql, ")
	if stats {
		b.WriteString("st.n, ")
	} else {
		b.WriteString("NULL, ")
	}
	if withColumns {
		b.WriteString(`p.cid, p.name, p.type, p."notnull", p.dflt_value, p.pk`)
	} else {
		b.WriteString("NULL, NULL, NULL, NULL, NULL, NULL")
	}
	b.WriteString(" FROM " + sch + ".sqlite_schema AS s")
	if stats {
		b.WriteString(" LEFT JOIN (SELECT tbl, max(CAST(stat AS INTEGER)) AS n FROM " + sch +
			".sqlite_stat1 GROUP BY tbl) AS st ON st.tbl = s.name")
	}
	if withColumns {
		b.WriteString(" LEFT JOIN pragma_table_info(s.name, ?1) AS p")
	}
	b.WriteString(" WHERE s.type IN ('table', 'view') AND s.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
	b.WriteString(" ORDER BY s.name")
	if withColumns {
		b.WriteString(", p.cid")
	}
	return b.String()
}

func table(schema string, o object) connectors.Table {
	t := connectors.Table{Schema: schema, Name: o.name, Type: o.typ}
	if o.typ == "view" {
		t.Definition = o.sql.String
	}
	if o.rows.Valid && o.typ == "table" {
		n := o.rows.Int64
		t.RowCount = &n
	}
	return t
}

func column(schema string, o object) connectors.Column {
	return connectors.Column{
		Schema:     schema,
		Table:      o.name,
		Name:       o.col.String,
		Position:   int(o.cid.Int64) + 1,
		DataType:   o.colType.String,
		Nullable:   o.notNull.Int64 == 0,
		Default:    o.dflt.String,
		PrimaryKey: o.pk.Int64 > 0,
	}
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
// driver's error is kept as the cause only when its text does not contain it.
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
	if s.path != "" && strings.Contains(err.Error(), s.path) {
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
func contextError(ctxErr error) error {
	msg := "sqlite: the step was cancelled before the catalog was read"
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		msg = "sqlite: the catalog was not read before the deadline; raise the activity timeout for a large database"
	}
	return &secrets.Error{Kind: secrets.SourceUnavailable, Msg: msg, Cause: ctxErr}
}

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
