package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/secrets"
)

// defaultAdminURL is scripts/test-env's default: a loopback test server, no real secret.
const defaultAdminURL = "postgres://postgres:secure-agent-test@127.0.0.1:55432/postgres?sslmode=disable"

type server struct {
	adminURL string
	host     string
	port     uint16
}

var (
	serverOnce sync.Once
	serverInfo *server
	serverErr  error
)

// testServer returns the test server, skipping the test (or failing it when
// SECURE_AGENT_REQUIRE_INTEGRATION=1) when it is not reachable.
func testServer(t testing.TB) *server {
	t.Helper()
	serverOnce.Do(func() {
		url := os.Getenv("SECURE_AGENT_TEST_PG_ADMIN_URL")
		if url == "" {
			url = defaultAdminURL
		}
		cfg, err := pgconn.ParseConfig(url)
		if err != nil {
			serverErr = fmt.Errorf("SECURE_AGENT_TEST_PG_ADMIN_URL does not parse")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			serverErr = fmt.Errorf("connecting as the admin: %w", err)
			return
		}
		_ = conn.Close(ctx)
		serverInfo = &server{adminURL: url, host: cfg.Host, port: cfg.Port}
	})
	if serverErr != nil {
		testenv.RequireOrSkip(t, fmt.Sprintf("PostgreSQL test server not reachable (start it with scripts/services postgres): %v", serverErr))
	}
	return serverInfo
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// testDB is a database of its own, with a read-only login role to run the connector as.
type testDB struct {
	srv      *server
	name     string
	role     string
	password string
	// admin is a superuser connection to the test database.
	admin *pgx.Conn
}

// newTestDB creates a database with a random name and a login role that may connect to it, runs
// setup in it as the admin (ROLE in a statement is replaced by the quoted role name), and drops
// both when the test ends.
func newTestDB(t testing.TB, setup ...string) *testDB {
	t.Helper()
	srv := testServer(t)
	ctx := context.Background()
	suffix := randomHex(6)
	db := &testDB{srv: srv, name: "sa_pg_test_" + suffix, role: "sa_pg_ro_" + suffix, password: "pw-" + randomHex(12)}
	root, err := pgx.Connect(ctx, srv.adminURL)
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	defer func() { _ = root.Close(ctx) }()
	for _, q := range []string{
		"CREATE DATABASE " + quoteIdent(db.name) + " ENCODING 'UTF8' TEMPLATE template0",
		"CREATE ROLE " + quoteIdent(db.role) + " LOGIN PASSWORD " + quoteLiteral(db.password),
	} {
		if _, err := root.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if db.admin != nil {
			_ = db.admin.Close(ctx)
		}
		root, err := pgx.Connect(ctx, srv.adminURL)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer func() { _ = root.Close(ctx) }()
		for _, q := range []string{
			"DROP DATABASE IF EXISTS " + quoteIdent(db.name) + " WITH (FORCE)",
			"DROP ROLE IF EXISTS " + quoteIdent(db.role),
		} {
			if _, err := root.Exec(ctx, q); err != nil {
				t.Errorf("cleanup %s: %v", q, err)
			}
		}
	})
	db.admin = db.adminConn(t)
	for _, q := range setup {
		q = strings.ReplaceAll(q, "ROLE", quoteIdent(db.role))
		if _, err := db.admin.Exec(ctx, q); err != nil {
			t.Fatalf("setup %.200s: %v", q, err)
		}
	}
	return db
}

// adminConn opens another superuser connection to the test database.
func (db *testDB) adminConn(t testing.TB) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(db.srv.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = db.name
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("admin connection to the test database: %v", err)
	}
	return conn
}

// creds are the read-only role's fields. sslmode is disable: the test server has no TLS, and
// its scram-sha-256 authentication is what the connector allows over plain text.
func (db *testDB) creds() connectors.Credentials {
	return connectors.Credentials{
		"host":     secrets.Value(db.srv.host),
		"port":     secrets.Value(strconv.Itoa(int(db.srv.port))),
		"database": secrets.Value(db.name),
		"username": secrets.Value(db.role),
		"password": secrets.Value(db.password),
		"sslmode":  secrets.Value("disable"),
	}
}

func (db *testDB) open(t testing.TB) *Source {
	t.Helper()
	return db.openWith(t, connectors.OpenOptions{})
}

// openWith opens the test database as the read-only role with opts.
func (db *testDB) openWith(t testing.TB, opts connectors.OpenOptions) *Source {
	t.Helper()
	s, err := Open(context.Background(), db.creds(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// queryRows runs q as the admin and returns each row's columns formatted with %v, joined by
// " | ".
func (db *testDB) queryRows(t *testing.T, q string, args ...any) []string {
	t.Helper()
	return rowStrings(t, db.admin, q, args...)
}

// pinnedRows is queryRows with search_path set to pg_catalog alone, as Extract sets it: the
// server then prints every user-defined name schema-qualified.
func (db *testDB) pinnedRows(t *testing.T, q string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	tx, err := db.admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET LOCAL search_path = pg_catalog`); err != nil {
		t.Fatal(err)
	}
	return rowStrings(t, tx, q, args...)
}

func rowStrings(t *testing.T, conn querier, q string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, " | "))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// collector keeps every entity written to it.
type collector struct {
	mu       sync.Mutex
	entities []connectors.Entity
}

func (c *collector) Write(e connectors.Entity) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entities = append(c.entities, e)
	return nil
}

func collect[T connectors.Entity](c *collector) []T {
	var out []T
	for _, e := range c.entities {
		if v, ok := e.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// extractEach extracts the schemas one Extract call each, as the extraction activity does.
func extractEach(t *testing.T, s *Source, filters connectors.Filters) *collector {
	t.Helper()
	ctx := context.Background()
	schemas, err := s.Schemas(ctx, filters)
	if err != nil {
		t.Fatalf("Schemas: %v", err)
	}
	c := &collector{}
	for _, name := range schemas {
		if err := s.Extract(ctx, []string{name}, filters, c); err != nil {
			t.Fatalf("Extract(%q): %v", name, err)
		}
	}
	return c
}

// assertNoLeak fails if any form of err, or of any error in its chain, contains a canary.
func assertNoLeak(t *testing.T, err error, canaries ...string) {
	t.Helper()
	var texts []string
	var walk func(e error, depth int)
	walk = func(e error, depth int) {
		if e == nil || depth > 20 {
			return
		}
		texts = append(texts, e.Error(), fmt.Sprintf("%v|%+v|%s|%q", e, e, e, e))
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				walk(inner, depth+1)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap(), depth+1)
		}
	}
	walk(err, 0)
	for _, text := range texts {
		for _, c := range canaries {
			if c != "" && strings.Contains(text, c) {
				t.Fatalf("error leaks a field value %q: %s", c, text)
			}
		}
	}
}

// wantKind fails unless err is a *secrets.Error of the kind.
func wantKind(t *testing.T, err error, kind secrets.Kind) *secrets.Error {
	t.Helper()
	var se *secrets.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *secrets.Error", err, err)
	}
	if se.Kind != kind {
		t.Fatalf("kind = %s, want %s (%v)", se.Kind, kind, err)
	}
	return se
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
