package postgres

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// The fake server's credentials: the password is a canary that must never reach it unless a rule
// allows it.
const (
	authPassword = "PW-" + canary + "-secret"
	authUser     = "user_" + canary
	authDatabase = "db_" + canary
)

// md5Salt is the salt the fake server sends with AuthenticationMD5Password.
var md5Salt = [4]byte{0x5a, 0x17, 0xc3, 0x09}

func hexMD5(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// passwordForms are every form of authPassword a client could send: the password itself and
// both steps of its MD5 digest.
func passwordForms() []string {
	inner := hexMD5(authPassword + authUser)
	return []string{authPassword, inner, "md5" + hexMD5(inner+string(md5Salt[:]))}
}

// Authentication requests the fake server makes.
const (
	askCleartext = "cleartext"
	askMD5       = "md5"
	askSCRAM     = "scram" // SASL offering SCRAM-SHA-256 only, no SCRAM-SHA-256-PLUS
)

// clientMessage is one message the client sent after the authentication request.
type clientMessage struct {
	typ  byte
	body []byte
}

// session is what the fake server saw on one connection.
type session struct {
	done    chan struct{} // closed when the connection has ended
	tls     bool          // the connection switched to TLS
	startup bool          // a StartupMessage arrived
	raw     []byte        // every byte the client sent after the authentication request
	msgs    []clientMessage
}

// authServer is a fake PostgreSQL server that answers SSLRequest with 'N' (tlsConfig nil) or
// with TLS, reads the StartupMessage, asks for the password as ask says, records everything
// the client sends afterwards, and refuses any answer with 28P01.
type authServer struct {
	ask       string
	tlsConfig *tls.Config
	// errorResponse, when set, is sent instead of the authentication request.
	errorResponse *pgproto3.ErrorResponse

	mu       sync.Mutex
	sessions []*session
}

// listen serves connections from l until the test ends.
func (s *authServer) listen(t *testing.T, l net.Listener) {
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				s.serve(c)
			}()
		}
	}()
}

// startTCP serves on a loopback TCP port and returns it.
func (s *authServer) startTCP(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.listen(t, l)
	return l.Addr().(*net.TCPAddr).Port
}

// readPacket reads a length-prefixed packet (the length counts itself) without a type byte.
func readPacket(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size < 4 || size > 1<<16 {
		return nil, errors.New("bad length")
	}
	body := make([]byte, size-4)
	_, err := io.ReadFull(r, body)
	return body, err
}

func (s *authServer) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Registered before the first answer: a client that got any answer has its session listed.
	sess := &session{done: make(chan struct{})}
	defer close(sess.done)
	s.mu.Lock()
	s.sessions = append(s.sessions, sess)
	s.mu.Unlock()
	record := func(f func()) {
		s.mu.Lock()
		defer s.mu.Unlock()
		f()
	}

	var conn net.Conn = c
	for {
		pkt, err := readPacket(conn)
		if err != nil || len(pkt) < 4 {
			return
		}
		if code := binary.BigEndian.Uint32(pkt); code != 80877103 { // not an SSLRequest
			if code != 196608 { // protocol 3.0
				return
			}
			record(func() { sess.startup = true })
			break
		}
		if s.tlsConfig == nil || conn != c {
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return
			}
			continue
		}
		if _, err := conn.Write([]byte{'S'}); err != nil {
			return
		}
		tc := tls.Server(c, s.tlsConfig)
		if err := tc.Handshake(); err != nil {
			return
		}
		conn = tc
		record(func() { sess.tls = true })
	}

	be := pgproto3.NewBackend(conn, conn)
	switch {
	case s.errorResponse != nil:
		be.Send(s.errorResponse)
	case s.ask == askCleartext:
		be.Send(&pgproto3.AuthenticationCleartextPassword{})
	case s.ask == askMD5:
		be.Send(&pgproto3.AuthenticationMD5Password{Salt: md5Salt})
	case s.ask == askSCRAM:
		be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}})
	}
	if err := be.Flush(); err != nil {
		return
	}
	// Record every byte until the client hangs up; answer its first message with 28P01.
	rec := &recorder{r: conn, record: func(b []byte) { record(func() { sess.raw = append(sess.raw, b...) }) }}
	for {
		var typ [1]byte
		if _, err := io.ReadFull(rec, typ[:]); err != nil {
			return
		}
		body, err := readPacket(rec)
		if err != nil {
			_, _ = io.Copy(io.Discard, rec)
			return
		}
		record(func() { sess.msgs = append(sess.msgs, clientMessage{typ: typ[0], body: body}) })
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
		_ = be.Flush()
	}
}

// recorder passes reads through and records the bytes read.
type recorder struct {
	r      io.Reader
	record func([]byte)
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.record(append([]byte(nil), p[:n]...))
	}
	return n, err
}

// seen waits for every connection to end and returns what the server saw.
func (s *authServer) seen(t *testing.T) []*session {
	t.Helper()
	s.mu.Lock()
	sessions := append([]*session(nil), s.sessions...)
	s.mu.Unlock()
	timeout := time.After(15 * time.Second)
	for _, sess := range sessions {
		select {
		case <-sess.done:
		case <-timeout:
			t.Fatal("the fake server's connections did not end")
		}
	}
	return sessions
}

// serverTLS is a TLS configuration for a server certificate for 127.0.0.1 issued by ca.
func serverTLS(t *testing.T, ca *testCA) *tls.Config {
	cp, kp := ca.issue(t, x509.ExtKeyUsageServerAuth, "127.0.0.1")
	cert, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

func authCreds(host, port string, fields map[string]string) connectors.Credentials {
	c := connectors.Credentials{
		"host": secrets.Value(host), "port": secrets.Value(port),
		"database": secrets.Value(authDatabase), "username": secrets.Value(authUser),
		"password": secrets.Value(authPassword),
	}
	for k, v := range fields {
		if v == "" {
			delete(c, k)
		} else {
			c[k] = secrets.Value(v)
		}
	}
	return c
}

// assertNothingSent fails if the client sent the server any message after its authentication
// request, or any byte that holds a form of the password.
func assertNothingSent(t *testing.T, sessions []*session) {
	t.Helper()
	for i, sess := range sessions {
		for _, m := range sess.msgs {
			t.Errorf("connection %d: the client answered the authentication request with a %q message", i, m.typ)
		}
		for _, form := range passwordForms() {
			if bytes.Contains(sess.raw, []byte(form)) {
				t.Fatalf("connection %d: the server received a form of the password", i)
			}
		}
	}
}

// assertRefused checks a refusal by the password rule: PolicyDenied, final, the detail, a
// message that says what to do, and no field value or driver text in it.
func assertRefused(t *testing.T, err error, detail, port string) {
	t.Helper()
	if err == nil {
		t.Fatal("Open succeeded against a fake server")
	}
	se := wantKind(t, err, secrets.PolicyDenied)
	if se.Kind.Retryable() || se.Detail != detail {
		t.Errorf("kind %s, detail %q, want %q: %v", se.Kind, se.Detail, detail, err)
	}
	for _, want := range []string{"not verified TLS", "verify-full", "scram-sha-256", "destinations.rules[].legacyPasswordAuth"} {
		if !strings.Contains(se.Msg, want) {
			t.Errorf("the message does not mention %q: %s", want, se.Msg)
		}
	}
	for _, driver := range []string{"require_auth check failed", "channel binding required", "authentication method requirement", "failed to connect"} {
		if strings.Contains(err.Error(), driver) {
			t.Errorf("the message holds the driver's text %q: %v", driver, err)
		}
	}
	assertNoLeak(t, err, append(passwordForms(), authUser, authDatabase, "127.0.0.1", port, canary)...)
}

func TestPasswordRules(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	withTLS := serverTLS(t, ca)

	for _, tc := range []struct {
		name   string
		tls    bool   // the server speaks TLS
		ask    string // what it asks for
		fields map[string]string
		legacy bool
		// want: PolicyDenied with this Detail, or "" when the client answers the request (and
		// then the server's 28P01 makes it SourceAuthFailed).
		detail string
		conns  int    // connections the server sees
		answer string // with detail "": the body of the client's answer, "" for SCRAM
	}{
		// Refused: nothing derived from the password may be sent.
		{name: "default sslmode, cleartext over unverified TLS", tls: true, ask: askCleartext, detail: "channel_binding", conns: 1},
		{name: "default sslmode, md5 over unverified TLS", tls: true, ask: askMD5, detail: "channel_binding", conns: 1},
		{name: "default sslmode, SCRAM without PLUS over unverified TLS", tls: true, ask: askSCRAM, detail: "channel_binding", conns: 1},
		{name: "require, cleartext", tls: true, ask: askCleartext, fields: map[string]string{"sslmode": "require"}, detail: "channel_binding", conns: 1},
		{name: "require, SCRAM without PLUS", tls: true, ask: askSCRAM, fields: map[string]string{"sslmode": "require"}, detail: "channel_binding", conns: 1},
		{name: "disable, cleartext", ask: askCleartext, fields: map[string]string{"sslmode": "disable"}, detail: "require_auth", conns: 1},
		{name: "disable, md5", ask: askMD5, fields: map[string]string{"sslmode": "disable"}, detail: "require_auth", conns: 1},
		// prefer: TLS refused, then plain text, where clear text is refused.
		{name: "prefer, no TLS, cleartext", ask: askCleartext, fields: map[string]string{"sslmode": "prefer"}, detail: "require_auth", conns: 2},
		// prefer over TLS: the refusal ends the attempts; plain text is not tried.
		{name: "prefer, TLS, md5", tls: true, ask: askMD5, fields: map[string]string{"sslmode": "prefer"}, detail: "channel_binding", conns: 1},
		// allow: plain text first; the refusal ends the attempts.
		{name: "allow, cleartext", tls: true, ask: askCleartext, fields: map[string]string{"sslmode": "allow"}, detail: "require_auth", conns: 1},

		// Answered.
		{name: "legacy, disable, cleartext", ask: askCleartext, fields: map[string]string{"sslmode": "disable"}, legacy: true, conns: 1, answer: authPassword},
		{name: "legacy, default sslmode, cleartext", tls: true, ask: askCleartext, legacy: true, conns: 1, answer: authPassword},
		{name: "legacy, disable, md5", ask: askMD5, fields: map[string]string{"sslmode": "disable"}, legacy: true, conns: 1, answer: passwordForms()[2]},
		{name: "legacy, require, SCRAM without PLUS", tls: true, ask: askSCRAM, fields: map[string]string{"sslmode": "require"}, legacy: true, conns: 1},
		{name: "verified TLS, cleartext", tls: true, ask: askCleartext, fields: map[string]string{"sslmode": "verify-full", "sslrootcert": string(ca.PEM)}, conns: 1, answer: authPassword},
		{name: "require with a root verifies, md5", tls: true, ask: askMD5, fields: map[string]string{"sslmode": "require", "sslrootcert": string(ca.PEM)}, conns: 1, answer: passwordForms()[2]},
		{name: "disable, SCRAM", ask: askSCRAM, fields: map[string]string{"sslmode": "disable"}, conns: 1},
		{name: "no password, cleartext over unverified TLS", tls: true, ask: askCleartext, fields: map[string]string{"password": ""}, conns: 1, answer: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &authServer{ask: tc.ask}
			if tc.tls {
				srv.tlsConfig = withTLS
			}
			port := strconv.Itoa(srv.startTCP(t))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := Open(ctx, authCreds("127.0.0.1", port, tc.fields), connectors.OpenOptions{LegacyPasswordAuth: tc.legacy})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded against a fake server")
			}
			t.Logf("%v", err)
			sessions := srv.seen(t)
			if len(sessions) != tc.conns {
				t.Errorf("the server saw %d connections, want %d", len(sessions), tc.conns)
			}
			last := sessions[len(sessions)-1]
			if !last.startup || last.tls != (tc.tls && tc.fields["sslmode"] != "disable" && tc.fields["sslmode"] != "allow") {
				t.Errorf("last connection: startup %v, TLS %v", last.startup, last.tls)
			}
			if tc.detail != "" {
				assertRefused(t, err, tc.detail, port)
				assertNothingSent(t, sessions)
				return
			}
			wantKind(t, err, secrets.SourceAuthFailed)
			assertNoLeak(t, err, append(passwordForms(), authUser, authDatabase, "127.0.0.1", port)...)
			if len(last.msgs) != 1 || last.msgs[0].typ != 'p' {
				t.Fatalf("the client did not answer the authentication request: %d messages", len(last.msgs))
			}
			body := string(last.msgs[0].body)
			if tc.ask == askSCRAM {
				// SASLInitialResponse: the mechanism, then the client-first-message, which holds
				// no form of the password.
				if !strings.HasPrefix(body, "SCRAM-SHA-256\x00") {
					t.Errorf("SASLInitialResponse for %q", strings.SplitN(body, "\x00", 2)[0])
				}
				assertNothingSent(t, []*session{{raw: last.raw}})
				return
			}
			if body != tc.answer+"\x00" {
				t.Errorf("the client answered with a password message of %d bytes, not the expected one", len(body))
			}
		})
	}
}

// A Unix socket never uses TLS, so with a password only SCRAM is answered there, whatever
// sslmode says.
func TestPasswordRulesUnixSocket(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "pgsock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	srv := &authServer{ask: askCleartext}
	l, err := net.Listen("unix", filepath.Join(dir, ".s.PGSQL.5432"))
	if err != nil {
		t.Fatal(err)
	}
	srv.listen(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, legacy := range []bool{false, true} {
		_, err := Open(ctx, authCreds(dir, "5432", map[string]string{"sslmode": "require"}), connectors.OpenOptions{LegacyPasswordAuth: legacy})
		t.Logf("legacy %v: %v", legacy, err)
		sessions := srv.seen(t)
		if legacy {
			wantKind(t, err, secrets.SourceAuthFailed)
			last := sessions[len(sessions)-1]
			if len(last.msgs) != 1 || string(last.msgs[0].body) != authPassword+"\x00" {
				t.Errorf("with legacy password authentication the password was not sent")
			}
			continue
		}
		assertRefused(t, err, "require_auth", "5432")
		assertNoLeak(t, err, dir)
		assertNothingSent(t, sessions)
	}
}

// The server's own error text cannot pass for a refusal by the password rule.
func TestPasswordRulesServerTextIsNotARefusal(t *testing.T) {
	t.Parallel()
	srv := &authServer{errorResponse: &pgproto3.ErrorResponse{Severity: pgxRequireAuthFailed, Code: "28P01",
		Message: pgxChannelBindingMissing + pgxChannelBindingFailed}}
	port := strconv.Itoa(srv.startTCP(t))
	_, err := Open(context.Background(), authCreds("127.0.0.1", port, map[string]string{"sslmode": "disable"}), connectors.OpenOptions{})
	if se := wantKind(t, err, secrets.SourceAuthFailed); se.Detail != "28P01" {
		t.Errorf("%v", se)
	}
	srv.seen(t)
}

func TestAuthRule(t *testing.T) {
	t.Parallel()
	unverified, verified, plain := attempt{config: &tls.Config{}}, attempt{config: &tls.Config{}, verified: true}, attempt{}
	for _, tc := range []struct {
		a                  attempt
		password, legacy   bool
		requireAuth, cbind string
	}{
		{verified, true, false, "", "prefer"},
		{unverified, true, false, "scram-sha-256", "require"},
		{plain, true, false, "scram-sha-256", "prefer"},
		{unverified, false, false, "", "prefer"},
		{plain, false, false, "", "prefer"},
		{unverified, true, true, "", "prefer"},
		{plain, true, true, "", "prefer"},
	} {
		ra, cb := authRule(tc.a, tc.password, tc.legacy)
		if ra != tc.requireAuth || cb != tc.cbind {
			t.Errorf("%+v password %v legacy %v: %q %q, want %q %q", tc.a, tc.password, tc.legacy, ra, cb, tc.requireAuth, tc.cbind)
		}
	}
}
