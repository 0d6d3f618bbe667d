package adversarial

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// fakePG impersonates a PostgreSQL server on an allowed destination: it refuses TLS ('N' to an
// SSLRequest), reads the StartupMessage, asks for the password in clear text or as MD5, and
// records every byte and message the client sends after that, answering each message with
// 28P01.
type fakePG struct {
	ask  string // "cleartext" or "md5"
	salt [4]byte
	ln   net.Listener

	mu        sync.Mutex
	conns     int
	open      int // connections not ended yet
	sslReqs   int
	startups  int
	asked     int      // authentication requests sent
	raw       []byte   // every byte received after an authentication request
	passwords [][]byte // bodies of the PasswordMessages received
}

func newFakePG(t *testing.T, ask string) *fakePG {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePG{ask: ask, salt: [4]byte{0x3c, 0x91, 0x0e, 0x77}, ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns++
			f.open++
			f.mu.Unlock()
			go func() {
				defer func() {
					c.Close()
					f.mu.Lock()
					f.open--
					f.mu.Unlock()
				}()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return f
}

func (f *fakePG) port() string { return strconv.Itoa(f.ln.Addr().(*net.TCPAddr).Port) }

// afterAuth passes reads through, recording them once the authentication request is sent.
type afterAuth struct {
	f  *fakePG
	r  io.Reader
	on bool
}

func (a *afterAuth) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if a.on && n > 0 {
		a.f.mu.Lock()
		a.f.raw = append(a.f.raw, p[:n]...)
		a.f.mu.Unlock()
	}
	return n, err
}

func (f *fakePG) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	rec := &afterAuth{f: f, r: c}
	be := pgproto3.NewBackend(rec, c)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.SSLRequest); ok {
			f.mu.Lock()
			f.sslReqs++
			f.mu.Unlock()
			if _, err := c.Write([]byte{'N'}); err != nil {
				return
			}
			continue
		}
		if _, ok := msg.(*pgproto3.StartupMessage); !ok {
			return
		}
		break
	}
	f.mu.Lock()
	f.startups++
	f.asked++
	f.mu.Unlock()
	rec.on = true
	if f.ask == "md5" {
		be.Send(&pgproto3.AuthenticationMD5Password{Salt: f.salt})
		_ = be.SetAuthType(pgproto3.AuthTypeMD5Password)
	} else {
		be.Send(&pgproto3.AuthenticationCleartextPassword{})
		_ = be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
	}
	if err := be.Flush(); err != nil {
		return
	}
	for {
		msg, err := be.Receive()
		if err != nil {
			_, _ = io.Copy(io.Discard, rec) // record whatever else arrives
			return
		}
		if pm, ok := msg.(*pgproto3.PasswordMessage); ok {
			f.mu.Lock()
			f.passwords = append(f.passwords, []byte(pm.Password))
			f.mu.Unlock()
		}
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
		_ = be.Flush()
	}
}

// wait waits until every connection so far has ended.
func (f *fakePG) wait(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f.mu.Lock()
		open := f.open
		f.mu.Unlock()
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake server's connections did not end")
		}
	}
}

func hexMD5(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// passwordForms are what a client could send for password as user: the password, MD5's
// inner digest, and the salted MD5 answer to this fake's request.
func (f *fakePG) passwordForms(password, user string) []string {
	inner := hexMD5(password + user)
	return []string{password, inner, "md5" + hexMD5(inner+string(f.salt[:]))}
}

// assertNothingSent fails if the fake received a PasswordMessage, or any byte holding a form of
// the password.
func (f *fakePG) assertNothingSent(t *testing.T, what, password, user string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.passwords) > 0 {
		t.Errorf("%s: the impersonating server received %d PasswordMessage(s)", what, len(f.passwords))
	}
	for i, form := range f.passwordForms(password, user) {
		if bytes.Contains(f.raw, []byte(form)) {
			t.Errorf("%s: the impersonating server received form %d of the password", what, i)
		}
	}
}

// TestPostgresPasswordNeverInClearToImpersonator (class 3): with the default sslmode (then
// prefer) and no require_auth, the PostgreSQL connector answered a server's clear-text or MD5
// password request, so whoever impersonated an allowed host:port got the password or a digest of
// it. Now, on a destination the policy allows the password to go to:
//
//   - sslmode absent means require: the server refusing TLS ends the run (InvalidInput about
//     TLS) before a StartupMessage is sent;
//   - sslmode disable and prefer: the clear-text or MD5 request is refused (PolicyDenied);
//
// and in every case the server received no PasswordMessage and no byte holding the password or
// its MD5 digests. Only a rule with legacyPasswordAuth for that destination lets the password
// go, which proves the relaxation is the only way.
func TestPostgresPasswordNeverInClearToImpersonator(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	password, user := canary(t, "pgpw"), "catalog_reader"

	type tc struct {
		ask, sslmode string // sslmode "" leaves the field out
		legacy       bool
		fake         *fakePG
	}
	var cases []*tc
	for _, ask := range []string{"cleartext", "md5"} {
		for _, mode := range []string{"", "disable", "prefer"} {
			cases = append(cases, &tc{ask: ask, sslmode: mode, fake: newFakePG(t, ask)})
		}
		cases = append(cases, &tc{ask: ask, sslmode: "disable", legacy: true, fake: newFakePG(t, ask)})
	}
	var strict, legacy []string
	for _, c := range cases {
		hp := strconv.Quote("127.0.0.1:" + c.fake.port())
		if c.legacy {
			legacy = append(legacy, hp)
		} else {
			strict = append(strict, hp)
		}
	}
	a := startAgent(t, server, proctest.AgentOpts{
		Policy: fmt.Sprintf(`version: 1
stores: [env]
env:
  allow: ["ADV_*"]
destinations:
  default: deny
  rules:
    - secrets: ["ADV_PG_PASSWORD"]
      hosts: [%s]
    - secrets: ["ADV_PG_PASSWORD"]
      hosts: [%s]
      legacyPasswordAuth: true
`, strings.Join(strict, ", "), strings.Join(legacy, ", ")),
		Env: map[string]string{"ADV_PG_PASSWORD": password},
	})

	for _, c := range cases {
		what := fmt.Sprintf("%s request, sslmode %q, legacy %v", c.ask, c.sslmode, c.legacy)
		in := workflows.Input{
			Connector: "postgres",
			Connection: map[string]workflows.FieldValue{
				"host": "127.0.0.1", "port": workflows.FieldValue(c.fake.port()),
				"database": "catalog", "username": workflows.FieldValue(user), "password": "ADV_PG_PASSWORD",
			},
			SecretStore: &stores.Spec{Type: stores.TypeEnv},
		}
		if c.sslmode != "" {
			in.Connection["sslmode"] = workflows.FieldValue(c.sslmode)
		}
		ae := a.ExtractFails(in)
		c.fake.wait(t)
		f := c.fake
		f.mu.Lock()
		conns, startups, asked := f.conns, f.startups, f.asked
		passwords := append([][]byte(nil), f.passwords...)
		f.mu.Unlock()

		switch {
		case c.legacy:
			// The relaxation, and only it, lets the password go: the server's 28P01 then ends
			// the run as a failed login.
			if ae.Type() != "SourceAuthFailed" {
				t.Errorf("%s: %s %s, want SourceAuthFailed", what, ae.Type(), ae.Message())
			}
			want := password
			if c.ask == "md5" {
				want = f.passwordForms(password, user)[2]
			}
			if len(passwords) != 1 || string(passwords[0]) != want {
				t.Errorf("%s: the server got %d PasswordMessage(s), want one with the %s password", what, len(passwords), c.ask)
			}
			continue
		case c.sslmode == "":
			// require: no silent fall-back to plain text.
			if ae.Type() != "InvalidInput" || !strings.Contains(ae.Message(), "TLS") {
				t.Errorf("%s: %s %s, want InvalidInput about TLS", what, ae.Type(), ae.Message())
			}
			if conns == 0 || startups != 0 {
				t.Errorf("%s: %d connection(s), %d StartupMessage(s): want the TLS refusal to end it before the startup", what, conns, startups)
			}
		default:
			if ae.Type() != "PolicyDenied" || !strings.Contains(ae.Message(), "legacyPasswordAuth") {
				t.Errorf("%s: %s %s, want PolicyDenied naming legacyPasswordAuth", what, ae.Type(), ae.Message())
			}
			if asked == 0 {
				t.Errorf("%s: the server never got to ask for the password: the refusal proves nothing", what)
			}
		}
		f.assertNothingSent(t, what, password, user)
	}
	a.AssertNowhere(nil, password, hexMD5(password+user))
}
