package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// noLeak fails the test if err, any error in its chain, or its %+v/%#v forms carry one of the
// values.
func noLeak(t *testing.T, err error, values ...string) {
	t.Helper()
	if err == nil {
		return
	}
	texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%v", err)}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		texts = append(texts, e.Error(), fmt.Sprintf("%+v", e))
	}
	for _, v := range values {
		if v == "" {
			continue
		}
		for _, s := range texts {
			if strings.Contains(s, v) {
				t.Errorf("an error text carries a connection field value %q: %s", v, s)
			}
		}
	}
}

func wantKind(t *testing.T, err error, kind secrets.Kind, detail string) *secrets.Error {
	t.Helper()
	var se *secrets.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *secrets.Error", err, err)
	}
	if se.Kind != kind || (detail != "" && se.Detail != detail) {
		t.Errorf("error %q: kind %s detail %q, want %s %q", se, se.Kind, se.Detail, kind, detail)
	}
	return se
}

// TestAuthAndDatabaseErrors plants canaries in the password, the user name and the database
// name, and checks the classification and that no error carries them (or the host and port).
func TestAuthAndDatabaseErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, []string{"_a", "_locked"})
	f.grantRead(t, "_a")
	_, cfg := admin(t)
	host, port, _ := net.SplitHostPort(cfg.Addr)
	canaryPassword := "CANARY-pw-" + randHex(6)
	canaryUser := "cnryu" + randHex(6)
	canaryDB := "cnrydb_" + randHex(6)
	ctx := context.Background()
	open := func(c connectors.Credentials) error {
		t.Helper()
		start := time.Now()
		s, err := Open(ctx, c, connectors.OpenOptions{})
		if err == nil {
			_ = s.Close()
			t.Fatalf("Open succeeded")
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Open took %s", d)
		}
		noLeak(t, err, canaryPassword, canaryUser, canaryDB, f.user, f.password, host+":", ":"+port, f.db("_locked"))
		return err
	}

	c := f.creds(t)
	c[FieldPassword] = secrets.Value(canaryPassword)
	c[FieldDatabase] = secrets.Value(canaryDB)
	se := wantKind(t, open(c), secrets.SourceAuthFailed, "MySQL 1045")
	if secrets.Retryable(se) {
		t.Errorf("an authentication failure is retried")
	}

	c = f.creds(t)
	c[FieldUsername] = secrets.Value(canaryUser)
	wantKind(t, open(c), secrets.SourceAuthFailed, "MySQL 1045")

	c = f.creds(t)
	c[FieldPassword] = nil // no password at all
	wantKind(t, open(c), secrets.SourceAuthFailed, "MySQL 1045")

	// An unknown database: a user without access to it is told 1044 (the server does not say
	// whether it exists); one with a global read privilege is told 1049.
	c = f.creds(t)
	c[FieldDatabase] = secrets.Value(canaryDB)
	se = wantKind(t, open(c), secrets.InvalidInput, "MySQL 1044")
	if se.Field != FieldDatabase {
		t.Errorf("unknown database: field %q", se.Field)
	}
	reader := "sagl" + randHex(8)
	t.Cleanup(func() { db, _ := admin(t); _, _ = db.Exec("DROP USER IF EXISTS '" + reader + "'@'%'") })
	exec(t, "CREATE USER '"+reader+"'@'%' IDENTIFIED BY '"+f.password+"'", "GRANT SELECT ON *.* TO '"+reader+"'@'%'")
	c[FieldUsername] = secrets.Value(reader)
	se = wantKind(t, open(c), secrets.InvalidInput, "MySQL 1049")
	if se.Field != FieldDatabase {
		t.Errorf("unknown database: field %q", se.Field)
	}

	c = f.creds(t)
	c[FieldDatabase] = secrets.Value(f.db("_locked")) // exists, but no grant
	se = wantKind(t, open(c), secrets.InvalidInput, "MySQL 1044")
	if se.Field != FieldDatabase {
		t.Errorf("database without access: field %q", se.Field)
	}

	// The right database works, and is only the connection's default.
	c = f.creds(t)
	c[FieldDatabase] = secrets.Value(f.db("_a"))
	s, err := Open(ctx, c, connectors.OpenOptions{})
	if err != nil {
		t.Fatalf("Open with a database: %v", err)
	}
	_ = s.Close()
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestUnreachable checks a closed port (SourceUnavailable, retried) and an ended ctx.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	_ = l.Close()
	creds := connectors.Credentials{FieldHost: secrets.Value("127.0.0.1"), FieldPort: secrets.Value(port),
		FieldUsername: secrets.Value("CANARY-user"), FieldPassword: secrets.Value("CANARY-pw")}
	start := time.Now()
	_, err = Open(context.Background(), creds, connectors.OpenOptions{})
	if time.Since(start) > 5*time.Second {
		t.Errorf("a refused connection took %s", time.Since(start))
	}
	se := wantKind(t, err, secrets.SourceUnavailable, "ECONNREFUSED")
	if !secrets.Retryable(se) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("refused connection: %v (retryable %v)", err, secrets.Retryable(se))
	}
	noLeak(t, err, "CANARY", "127.0.0.1", port)

	// A server that accepts the connection and never speaks: bounded by ctx.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }()
		}
	}()
	_, port, _ = net.SplitHostPort(silent.Addr().String())
	creds[FieldPort] = secrets.Value(port)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = Open(ctx, creds, connectors.OpenOptions{})
	if time.Since(start) > 5*time.Second {
		t.Errorf("a silent server held Open for %s", time.Since(start))
	}
	wantKind(t, err, secrets.SourceUnavailable, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent server: %v does not wrap the deadline", err)
	}
	noLeak(t, err, "CANARY", "127.0.0.1", port)

	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_, err = Open(cancelled, creds, connectors.OpenOptions{})
	wantKind(t, err, secrets.SourceUnavailable, "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

// TestFieldValidation checks every malformed field: InvalidInput naming the field, never the
// value.
func TestFieldValidation(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t, "field-validation CA")
	certPEM, keyPEM := ca.issue(t, "client", nil, nil, true)
	_, otherKey := ca.issue(t, "other", nil, nil, true)
	base := func() connectors.Credentials {
		return connectors.Credentials{FieldHost: secrets.Value("db.CANARY.example"), FieldUsername: secrets.Value("CANARY-user"),
			FieldPassword: secrets.Value("CANARY-pw")}
	}
	const canaryPEM = "-----BEGIN CERTIFICATE-----\nQ0FOQVJZLXBlbQ==CANARY\n-----END CERTIFICATE-----\n"
	for _, tc := range []struct {
		name  string
		set   map[string]string
		field string
	}{
		{"no host", map[string]string{FieldHost: ""}, FieldHost},
		{"host with port", map[string]string{FieldHost: "db.CANARY:3306"}, FieldHost},
		{"host with space", map[string]string{FieldHost: "db CANARY"}, FieldHost},
		{"host with user", map[string]string{FieldHost: "CANARY@db"}, FieldHost},
		{"port not a number", map[string]string{FieldPort: "CANARY"}, FieldPort},
		{"port out of range", map[string]string{FieldPort: "70000"}, FieldPort},
		{"port zero", map[string]string{FieldPort: "0"}, FieldPort},
		{"no user", map[string]string{FieldUsername: ""}, FieldUsername},
		{"bad tls mode", map[string]string{FieldTLS: "CANARY"}, FieldTLS},
		{"bad CA PEM", map[string]string{FieldTLS: "verify-full", FieldTLSCA: canaryPEM}, FieldTLSCA},
		{"CA not PEM", map[string]string{FieldTLS: "verify-ca", FieldTLSCA: "CANARY not a pem"}, FieldTLSCA},
		{"key as CA", map[string]string{FieldTLS: "verify-ca", FieldTLSCA: string(keyPEM)}, FieldTLSCA},
		{"cert without key", map[string]string{FieldTLSCert: string(certPEM)}, FieldTLSKey},
		{"key without cert", map[string]string{FieldTLSKey: string(keyPEM)}, FieldTLSCert},
		{"bad cert PEM", map[string]string{FieldTLSCert: canaryPEM, FieldTLSKey: string(keyPEM)}, FieldTLSCert},
		{"key of another cert", map[string]string{FieldTLSCert: string(certPEM), FieldTLSKey: string(otherKey)}, FieldTLSKey},
		{"bad key PEM", map[string]string{FieldTLSCert: string(certPEM), FieldTLSKey: "-----BEGIN PRIVATE KEY-----\nCANARY\n-----END PRIVATE KEY-----\n"}, FieldTLSKey},
		{"PEM with tls disabled", map[string]string{FieldTLS: "disable", FieldTLSCA: string(ca.PEM)}, FieldTLS},
	} {
		c := base()
		for k, v := range tc.set {
			c[k] = secrets.Value(v)
		}
		_, err := Open(context.Background(), c, connectors.OpenOptions{})
		se := wantKind(t, err, secrets.InvalidInput, "")
		if se.Field != tc.field {
			t.Errorf("%s: field %q, want %q (%v)", tc.name, se.Field, tc.field, err)
		}
		noLeak(t, err, "CANARY", "Q0FOQVJZ", string(keyPEM[40:80]), string(certPEM[40:80]))
	}
	// Every mode parses; an upper-case or underscored spelling too.
	for _, m := range []string{"disable", "preferred", "required", "verify-ca", "verify-full", "VERIFY_FULL", " Required ", "", "DISABLED", "VERIFY_IDENTITY"} {
		if _, err := parseMode(m); err != nil {
			t.Errorf("mode %q: %v", m, err)
		}
	}
	// A bracketed IPv6 literal is a host.
	if st, err := parseSettings(connectors.Credentials{FieldHost: secrets.Value("[::1]"), FieldUsername: secrets.Value("u")}); err != nil || st.host != "::1" || st.port != DefaultPort {
		t.Errorf("IPv6 host: %+v %v", st, err)
	}
}

// TestClassify maps errors the server and the network produce without a live failure.
func TestClassify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	canary := "CANARY-host.example"
	for _, tc := range []struct {
		err    error
		kind   secrets.Kind
		detail string
	}{
		{&mysql.MySQLError{Number: 1045, Message: "Access denied for user 'CANARY'@'" + canary + "'"}, secrets.SourceAuthFailed, "MySQL 1045"},
		{&mysql.MySQLError{Number: 1130, Message: "Host '" + canary + "' is not allowed"}, secrets.SourceAuthFailed, "MySQL 1130"},
		{&mysql.MySQLError{Number: 1862}, secrets.SourceAuthFailed, "MySQL 1862"},
		{&mysql.MySQLError{Number: 3118}, secrets.SourceAuthFailed, "MySQL 3118"},
		{&mysql.MySQLError{Number: 4151}, secrets.SourceAuthFailed, "MySQL 4151"},
		{&mysql.MySQLError{Number: 1049, Message: "Unknown database 'CANARY'"}, secrets.InvalidInput, "MySQL 1049"},
		{&mysql.MySQLError{Number: 1142, Message: "SELECT command denied to user 'CANARY'"}, secrets.InvalidInput, "MySQL 1142"},
		{&mysql.MySQLError{Number: 1227}, secrets.InvalidInput, "MySQL 1227"},
		{&mysql.MySQLError{Number: 1040, Message: "Too many connections"}, secrets.SourceUnavailable, "MySQL 1040"},
		{&mysql.MySQLError{Number: 1203}, secrets.SourceUnavailable, "MySQL 1203"},
		{&mysql.MySQLError{Number: 1053}, secrets.SourceUnavailable, "MySQL 1053"},
		{&mysql.MySQLError{Number: 1927}, secrets.SourceUnavailable, "MySQL 1927"},
		{&mysql.MySQLError{Number: 1969}, secrets.SourceUnavailable, "MySQL 1969"},
		{&mysql.MySQLError{Number: 1054}, secrets.InvalidInput, "MySQL 1054"},
		{&mysql.MySQLError{Number: 9999}, secrets.SourceUnavailable, "MySQL 9999"},
		{&net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 9, 8, 7)}, Err: &netErrno{syscall.ECONNREFUSED}}, secrets.SourceUnavailable, "ECONNREFUSED"},
		{&net.OpError{Op: "dial", Err: &netErrno{syscall.EHOSTUNREACH}}, secrets.SourceUnavailable, "EHOSTUNREACH"},
		{&net.OpError{Op: "dial", Err: &netErrno{syscall.ETIMEDOUT}}, secrets.SourceUnavailable, "ETIMEDOUT"},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Name: canary, Err: "no such host", IsNotFound: true}}, secrets.InvalidInput, "ENOTFOUND"},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Name: canary, Err: "server misbehaving", IsTemporary: true}}, secrets.SourceUnavailable, "DNS"},
		{fmt.Errorf("dial tcp %s: %w", canary, context.DeadlineExceeded), secrets.SourceUnavailable, "timeout"},
		{mysql.ErrInvalidConn, secrets.SourceUnavailable, "connection lost"},
		{driver.ErrBadConn, secrets.SourceUnavailable, "connection lost"},
		{io.ErrUnexpectedEOF, secrets.SourceUnavailable, "connection lost"},
		{mysql.ErrNoTLS, secrets.InvalidInput, "tls"},
		{mysql.ErrCleartextPassword, secrets.InvalidInput, "auth plugin"},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, secrets.InvalidInput, "tls"},
		{&tls.CertificateVerificationError{Err: x509.HostnameError{Host: canary}}, secrets.InvalidInput, "tls"},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}, secrets.InvalidInput, "tls"},
		{errors.New("something else about " + canary), secrets.SourceUnavailable, ""},
	} {
		err := classify(ctx, tc.err, false)
		wantKind(t, err, tc.kind, tc.detail)
		noLeak(t, err, canary, "CANARY", "10.9.8.7")
		if me := mysqlNumber(tc.err); me != 0 && mysqlNumber(err) != me {
			t.Errorf("%v: the MySQL error number is not kept for errors.As", err)
		}
	}
	if err := classify(ctx, &mysql.MySQLError{Number: 1044}, true); secrets.KindOf(err) != secrets.InvalidInput {
		t.Errorf("1044 while connecting: %v", err)
	}
	if err := classify(ctx, &net.OpError{Op: "dial", Err: &netErrno{syscall.ECONNREFUSED}}, true); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("the errno is not kept: %v", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := classify(done, &mysql.MySQLError{Number: 1317}, false); !errors.Is(err, context.Canceled) || secrets.KindOf(err) != secrets.SourceUnavailable {
		t.Errorf("ended ctx: %v", err)
	}
}

// netErrno wraps an errno the way the net package's os.SyscallError does.
type netErrno struct{ errno syscall.Errno }

func (e *netErrno) Error() string { return "connect: " + e.errno.Error() }
func (e *netErrno) Unwrap() error { return e.errno }
