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
// constraints, indexes, triggers) for all the schemas it is given, each reading sqlite_schema,
// joined for most kinds with SQLite's table-valued pragma functions (pragma_table_info,
// pragma_index_list, pragma_index_xinfo, pragma_foreign_key_list), in one read transaction. Only
// when the columns query fails because an object cannot be described (a view over a dropped
// table, a virtual table whose module this build lacks) does the connector fall back to
// describing that schema's objects one by one, skipping the columns of the broken ones.
// Constraint names, CHECK constraints, index expressions and trigger timings, events, conditions
// and bodies, which SQLite keeps only in the text of its CREATE statements, are read from that
// text (ddl.go). Sequences, user-defined types and routines do not exist in SQLite: it writes
// none (connectors.Spec.Kinds leaves them out).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	// path and resolved (the path as given, and the file opened) are kept only to make sure that
	// no error this package returns carries either.
	path, resolved string
	// database is the database's name as Extract writes it (see databaseName).
	database string
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
	s := &Source{db: db, path: path, resolved: resolved, database: databaseName(path, opts)}
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

// databaseName is the name Extract gives the database (the Database entity's Name, every other
// entity's Database): the base name of the file as path names it ("catalog.db"), only when the
// path was a literal of the input (opts.Literal(FieldPath)); otherwise "", since the path may be
// a secret. The name is the path's as given, never the resolved file's: that would be read from
// the file system, not from the literal.
func databaseName(path string, opts connectors.OpenOptions) string {
	if !opts.Literal(FieldPath) {
		return ""
	}
	return filepath.Base(path)
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
