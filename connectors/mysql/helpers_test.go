package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// defaultAdminDSN is scripts/test-env's default for SECURE_AGENT_TEST_MYSQL_ADMIN_DSN.
const defaultAdminDSN = "root:secure-agent-test@tcp(127.0.0.1:53306)/?multiStatements=true&parseTime=true"

var (
	adminOnce sync.Once
	adminPool *sql.DB
	adminCfg  *mysql.Config
	adminErr  error
)

// admin returns the administrator's connection to the test server (scripts/services starts it).
// An unreachable server skips the test, or fails it when SECURE_AGENT_REQUIRE_INTEGRATION=1.
func admin(t *testing.T) (*sql.DB, *mysql.Config) {
	t.Helper()
	adminOnce.Do(func() {
		dsn := os.Getenv("SECURE_AGENT_TEST_MYSQL_ADMIN_DSN")
		if dsn == "" {
			dsn = defaultAdminDSN
		}
		adminCfg, adminErr = mysql.ParseDSN(dsn)
		if adminErr != nil {
			return
		}
		adminCfg.Logger = &mysql.NopLogger{}
		adminCfg.MultiStatements = false
		c, err := mysql.NewConnector(adminCfg)
		if err != nil {
			adminErr = err
			return
		}
		adminPool = sql.OpenDB(c)
		adminPool.SetMaxOpenConns(8)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		adminErr = adminPool.PingContext(ctx)
	})
	if adminErr != nil {
		msg := fmt.Sprintf("the MariaDB test server is not reachable (start it with scripts/services mariadb; see scripts/test-env): %v", adminErr)
		if os.Getenv("SECURE_AGENT_REQUIRE_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return adminPool, adminCfg
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// exec runs each statement as the administrator, failing the test on the first error.
func exec(t *testing.T, stmts ...string) {
	t.Helper()
	db, _ := admin(t)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			if len(q) > 300 {
				q = q[:300] + "..."
			}
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// grantPattern is a database name as a GRANT pattern: '_' and '%' escaped.
func grantPattern(db string) string {
	r := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`)
	return quoteIdent(r.Replace(db))
}

// fixture is a set of test databases sharing a random prefix, and a login for the connector.
type fixture struct {
	prefix   string
	user     string
	password string
}

// newFixture creates databases prefix+suffix for each suffix and a user with the given grant
// statements (each a format taking the user's quoted name), and drops all of it after the test.
func newFixture(t *testing.T, suffixes []string) *fixture {
	t.Helper()
	admin(t)
	f := &fixture{prefix: "sa" + randHex(4), user: "saro" + randHex(8), password: "pw-" + randHex(12)}
	t.Cleanup(func() {
		db, _ := admin(t)
		for _, s := range suffixes {
			_, _ = db.Exec("DROP DATABASE IF EXISTS " + quoteIdent(f.prefix+s))
		}
		_, _ = db.Exec("DROP USER IF EXISTS " + f.account())
	})
	for _, s := range suffixes {
		exec(t, "CREATE DATABASE "+quoteIdent(f.prefix+s)+" CHARACTER SET utf8mb4")
	}
	exec(t, fmt.Sprintf("CREATE USER %s IDENTIFIED BY '%s'", f.account(), f.password))
	return f
}

func (f *fixture) db(suffix string) string { return f.prefix + suffix }

func (f *fixture) account() string { return "'" + f.user + "'@'%'" }

// grantRead gives the fixture's user what a complete extraction needs on its databases
// (TRIGGER: the server lists a table's triggers only to users who hold it).
func (f *fixture) grantRead(t *testing.T, suffixes ...string) {
	t.Helper()
	for _, s := range suffixes {
		exec(t, "GRANT SELECT, SHOW VIEW, TRIGGER ON "+grantPattern(f.db(s))+".* TO "+f.account())
	}
	exec(t, "GRANT SELECT ON mysql.proc TO "+f.account())
}

// creds are the connector's fields for the fixture's user. The test server has no TLS, so tls
// is disable (the default, required, would refuse it).
func (f *fixture) creds(t *testing.T) connectors.Credentials {
	_, cfg := admin(t)
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return connectors.Credentials{
		FieldHost:     secrets.Value(host),
		FieldPort:     secrets.Value(port),
		FieldUsername: secrets.Value(f.user),
		FieldPassword: secrets.Value(f.password),
		FieldTLS:      secrets.Value("disable"),
	}
}

func (f *fixture) open(t *testing.T) *Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, f.creds(t), connectors.OpenOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// onlyMine restricts filters without schema includes to the fixture's databases, so that tests
// running at the same time on the same server do not see each other's.
func (f *fixture) onlyMine(filters connectors.Filters) connectors.Filters {
	if len(filters.IncludeSchemas) == 0 {
		filters.IncludeSchemas = []string{f.prefix + "*"}
	}
	return filters
}

// recorder is an EntityWriter that keeps everything.
type recorder struct {
	entities []connectors.Entity
}

func (r *recorder) Write(e connectors.Entity) error {
	r.entities = append(r.entities, e)
	return nil
}

func (r *recorder) databases() []connectors.Database { return only[connectors.Database](r) }
func (r *recorder) schemas() []connectors.Schema     { return only[connectors.Schema](r) }
func (r *recorder) tables() []connectors.Table       { return only[connectors.Table](r) }
func (r *recorder) columns() []connectors.Column     { return only[connectors.Column](r) }
func (r *recorder) keys() []connectors.Key           { return only[connectors.Key](r) }
func (r *recorder) indexes() []connectors.Index      { return only[connectors.Index](r) }
func (r *recorder) routines() []connectors.Routine   { return only[connectors.Routine](r) }

func only[T connectors.Entity](r *recorder) []T {
	var out []T
	for _, e := range r.entities {
		if v, ok := e.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func (r *recorder) table(schema, name string) (connectors.Table, bool) {
	for _, t := range r.tables() {
		if t.Schema == schema && t.Name == name {
			return t, true
		}
	}
	return connectors.Table{}, false
}

func (r *recorder) columnsOf(schema, table string) []connectors.Column {
	var out []connectors.Column
	for _, c := range r.columns() {
		if c.Schema == schema && c.Table == table {
			out = append(out, c)
		}
	}
	return out
}

func (r *recorder) column(schema, table, name string) (connectors.Column, bool) {
	for _, c := range r.columnsOf(schema, table) {
		if c.Name == name {
			return c, true
		}
	}
	return connectors.Column{}, false
}

func (r *recorder) key(schema, table, name string) (connectors.Key, bool) {
	for _, k := range r.keys() {
		if k.Schema == schema && k.Table == table && k.Name == name {
			return k, true
		}
	}
	return connectors.Key{}, false
}

func (r *recorder) index(schema, table, name string) (connectors.Index, bool) {
	for _, ix := range r.indexes() {
		if ix.Schema == schema && ix.Table == table && ix.Name == name {
			return ix, true
		}
	}
	return connectors.Index{}, false
}

// queryStrings runs an admin query and returns its rows as strings (NULL as "<NULL>").
func queryStrings(t *testing.T, q string, args ...any) [][]string {
	t.Helper()
	db, _ := admin(t)
	return queryStringsOn(t, db, q, args...)
}

// queryStringsOn runs q on db and returns its rows, each column as text ("<NULL>" for NULL).
func queryStringsOn(t *testing.T, db *sql.DB, q string, args ...any) [][]string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
			if !v.Valid {
				row[i] = "<NULL>"
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func i64(p *int64) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}
