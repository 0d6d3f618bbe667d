package postgres

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

const canary = "CANARY7f3a9c"

func TestConnectionErrors(t *testing.T) {
	t.Parallel()
	db := newTestDB(t,
		// Only the test role may connect; and a hardened catalog.
		`DO $$ BEGIN
			EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database());
			EXECUTE format('GRANT CONNECT ON DATABASE %I TO %s', current_database(), 'ROLE');
		END $$`,
		`REVOKE SELECT ON pg_catalog.pg_proc FROM PUBLIC`,
		`REVOKE EXECUTE ON FUNCTION pg_catalog.pg_get_viewdef(oid) FROM PUBLIC`,
	)
	ctx := context.Background()
	// Every field value is a canary: none may appear in any error.
	leaks := []string{db.name, db.role, db.password, db.srv.host, strconv.Itoa(int(db.srv.port)), canary}
	with := func(field, value string) connectors.Credentials {
		c := db.creds()
		if value == "" {
			delete(c, field)
		} else {
			c[field] = secrets.Value(value)
		}
		return c
	}
	openErr := func(t *testing.T, ctx context.Context, creds connectors.Credentials, kind secrets.Kind) *secrets.Error {
		t.Helper()
		s, err := Open(ctx, creds, connectors.OpenOptions{})
		if err == nil {
			_ = s.Close()
			t.Fatalf("Open succeeded, want %s", kind)
		}
		assertNoLeak(t, err, leaks...)
		t.Logf("%v", err)
		return wantKind(t, err, kind)
	}

	t.Run("preflight names missing privileges", func(t *testing.T) {
		s := db.open(t)
		rep, err := s.Preflight(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"SELECT on pg_catalog.pg_proc", "EXECUTE on function pg_catalog.pg_get_viewdef(oid)"}
		if !slices.Equal(rep.MissingPrivileges, want) {
			t.Errorf("MissingPrivileges = %q, want %q", rep.MissingPrivileges, want)
		}
		// Without SELECT on pg_proc the routines cannot be read: final, with the SQLSTATE.
		err = s.Extract(ctx, []string{"public"}, connectors.Filters{}, &collector{})
		assertNoLeak(t, err, leaks...)
		if se := wantKind(t, err, secrets.SourceAuthFailed); se.Detail != "42501" {
			t.Errorf("Detail = %q", se.Detail)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		se := openErr(t, ctx, with("password", "wrong-"+canary), secrets.SourceAuthFailed)
		if se.Detail != "28P01" || se.Kind.Retryable() {
			t.Errorf("%v", se)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		openErr(t, ctx, with("username", "nobody_"+canary), secrets.SourceAuthFailed)
	})
	t.Run("unknown database", func(t *testing.T) {
		se := openErr(t, ctx, with("database", "db_"+canary), secrets.InvalidInput)
		if se.Field != "database" || se.Detail != "3D000" {
			t.Errorf("%v", se)
		}
	})
	t.Run("no CONNECT privilege", func(t *testing.T) {
		other := "sa_pg_noconnect_" + randomHex(6)
		if _, err := db.admin.Exec(ctx, `CREATE ROLE `+quoteIdent(other)+` LOGIN PASSWORD 'x-`+canary+`'`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.admin.Exec(context.Background(), `DROP ROLE `+quoteIdent(other)) })
		c := with("username", other)
		c["password"] = secrets.Value("x-" + canary)
		se := openErr(t, ctx, c, secrets.SourceAuthFailed)
		if se.Detail != "42501" {
			t.Errorf("%v", se)
		}
	})
	t.Run("unreachable port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		_ = l.Close()
		se := openErr(t, ctx, with("port", port), secrets.SourceUnavailable)
		if se.Detail != "ECONNREFUSED" || !se.Kind.Retryable() {
			t.Errorf("%v", se)
		}
	})
	t.Run("bad field values", func(t *testing.T) {
		for _, tc := range []struct{ field, value string }{
			{"port", "port-" + canary},
			{"port", "0"},
			{"port", "65536"},
			{"sslmode", "mode-" + canary},
			{"password", "nul\x00" + canary},
			{"host", ""},
			{"username", ""},
			{"database", ""},
		} {
			se := openErr(t, ctx, with(tc.field, tc.value), secrets.InvalidInput)
			if se.Field != tc.field {
				t.Errorf("%s=%q: Field %q", tc.field, tc.value, se.Field)
			}
		}
	})
	t.Run("server refuses TLS", func(t *testing.T) {
		// The default (sslmode absent) is require: TLS or nothing, never plain text.
		for _, mode := range []string{"require", ""} {
			se := openErr(t, ctx, with("sslmode", mode), secrets.InvalidInput)
			if se.Detail != "tls" || se.Field != "sslmode" {
				t.Errorf("sslmode %q: %v", mode, se)
			}
		}
		// prefer, chosen explicitly, falls back to plain text, where SCRAM is allowed.
		s, err := Open(ctx, with("sslmode", "prefer"), connectors.OpenOptions{})
		if err != nil {
			t.Fatalf("sslmode prefer: %v", err)
		}
		_ = s.Close()
		// The server authenticates with scram-sha-256: allowed over plain text.
		s, err = Open(ctx, with("sslmode", "disable"), connectors.OpenOptions{})
		if err != nil {
			t.Fatalf("sslmode disable: %v", err)
		}
		_ = s.Close()
	})
	t.Run("unresolvable host", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := Open(ctx, with("host", "db-"+canary+".invalid"), connectors.OpenOptions{})
		assertNoLeak(t, err, leaks...)
		t.Logf("%v", err)
		if k := secrets.KindOf(err); k != secrets.InvalidInput && k != secrets.SourceUnavailable {
			t.Errorf("kind %s: %v", k, err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := Open(ctx, db.creds(), connectors.OpenOptions{})
		wantKind(t, err, secrets.SourceUnavailable)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%v does not wrap context.Canceled", err)
		}
	})
	t.Run("server never answers", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn) { time.Sleep(5 * time.Second) })
		c := with("port", strconv.Itoa(addr.Port))
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Open(ctx, c, connectors.OpenOptions{})
		assertNoLeak(t, err, leaks...)
		wantKind(t, err, secrets.SourceUnavailable)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
			t.Errorf("%v after %s", err, time.Since(start))
		}
	})
	t.Run("server hangs up", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn) {})
		se := openErr(t, ctx, with("port", strconv.Itoa(addr.Port)), secrets.SourceUnavailable)
		if se.Detail != "EOF" && se.Detail != "ECONNRESET" {
			t.Errorf("%v", se)
		}
	})
	t.Run("closed source", func(t *testing.T) {
		s := db.open(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wantKind(t, s.Extract(ctx, []string{"public"}, connectors.Filters{}, &collector{}), secrets.SourceUnavailable)
	})
}

// fakeServer accepts connections on a loopback port and hands each to handle, closing it after.
func fakeServer(t *testing.T, handle func(net.Conn)) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				handle(c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr)
}
