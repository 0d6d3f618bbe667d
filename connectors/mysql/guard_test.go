package mysql

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/secrets"
)

// authFake is a MySQL server that plays one authentication script after the client's
// HandshakeResponse, then (if the login succeeded) answers COM_PING and COM_QUERY (one row,
// "fake-ok"). It records every byte it receives, before and after TLS decryption.
//
// Scripts:
//
//	fast           caching_sha2_password fast authentication: the scramble must match
//	full           caching_sha2_password "perform full authentication"; on TLS the password
//	               must come in clear, on plain text after a public-key request, RSA-encrypted
//	full-ec        as full, but the public key it sends is an ECDSA key
//	switch-sha256  AuthSwitchRequest to sha256_password, then as full
//	switch-clear   AuthSwitchRequest to mysql_clear_password
//	switch-native  AuthSwitchRequest to mysql_native_password: the scramble must match
//	pubkey         an RSA public key (AuthMoreData) right after the HandshakeResponse
type authFake struct {
	l        net.Listener
	tls      *tls.Config
	plugin   string // the greeting's plugin
	script   string
	password string // the password the fake accepts
	// accepts, when set, decides instead of comparing with password (tokens).
	accepts func(password, user string) bool
	key     *rsa.PrivateKey
	logs    chan *fakeLog
}

// fakeLog is what the fake saw on one connection.
type fakeLog struct {
	raw      []byte   // every byte received, as it came off the network
	packets  [][]byte // every packet payload received (after TLS)
	tls      bool
	response []byte // the HandshakeResponse payload
	plugin   string // the plugin the HandshakeResponse names
	user     string // the user it names
	auth     []byte // its auth data
	afterAsk int    // packets received after the fake's authentication request
	password string // the password received in clear or decrypted, "" for none
	loggedIn bool
	queries  int      // COM_QUERY and COM_PING answered
	problems []string // protocol errors the fake saw (sequence ids)
}

var fakeScramble = []byte("0123456789abcdefghij") // 20 bytes, no NUL

func startAuthFake(t *testing.T, tc *tls.Config, plugin, script, password string, key *rsa.PrivateKey) *authFake {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &authFake{l: l, tls: tc, plugin: plugin, script: script, password: password, key: key, logs: make(chan *fakeLog, 4)}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				log := &fakeLog{}
				f.serve(c, log)
				_ = c.Close()
				f.logs <- log
			}()
		}
	}()
	return f
}

func (f *authFake) port() string {
	_, p, _ := net.SplitHostPort(f.l.Addr().String())
	return p
}

// next waits for the log of the next connection that ended.
func (f *authFake) next(t *testing.T) *fakeLog {
	t.Helper()
	select {
	case l := <-f.logs:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("the fake server saw no connection end")
		return nil
	}
}

// byteRecorder keeps every byte read from a connection.
type byteRecorder struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

func (r *byteRecorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.buf = append(r.buf, p[:n]...)
	r.mu.Unlock()
	return n, err
}

// fakeConn is one connection's packet stream with sequence-id checks.
type fakeConn struct {
	rw   io.ReadWriter
	seq  byte // the last sequence id sent or received
	log  *fakeLog
	asks int // authentication requests sent
}

func (c *fakeConn) read() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(c.rw, h[:]); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	p := make([]byte, n)
	if _, err := io.ReadFull(c.rw, p); err != nil {
		return nil, err
	}
	if h[3] != c.seq+1 {
		c.log.problems = append(c.log.problems, fmt.Sprintf("sequence id %d after %d", h[3], c.seq))
	}
	c.seq = h[3]
	c.log.packets = append(c.log.packets, p)
	if c.asks > 0 {
		c.log.afterAsk++
	}
	return p, nil
}

func (c *fakeConn) write(p []byte) error {
	c.seq++
	h := []byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), c.seq}
	_, err := c.rw.Write(append(h, p...))
	return err
}

// ask sends an authentication request: what the client answers afterwards is counted.
func (c *fakeConn) ask(p []byte) error {
	c.asks++
	return c.write(p)
}

var fakeOK = []byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00}

func fakeERR(number uint16, msg string) []byte {
	e := []byte{0xff}
	e = binary.LittleEndian.AppendUint16(e, number)
	e = append(e, "#28000"...)
	return append(e, msg...)
}

func (f *authFake) serve(nc net.Conn, log *fakeLog) {
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	rec := &byteRecorder{Conn: nc}
	defer func() {
		rec.mu.Lock()
		log.raw = append([]byte{}, rec.buf...)
		rec.mu.Unlock()
	}()
	caps := uint32(0x0001 | 0x0200 | 0x8000 | 0x2000 | 0x80000) // long password, 4.1, secure conn, transactions, plugin auth
	if f.tls != nil {
		caps |= capSSL
	}
	g := []byte{10}
	g = append(g, "8.0.99-fake\x00"...)
	g = binary.LittleEndian.AppendUint32(g, 7)
	g = append(g, fakeScramble[:8]...)
	g = append(g, 0)
	g = binary.LittleEndian.AppendUint16(g, uint16(caps))
	g = append(g, 45)
	g = binary.LittleEndian.AppendUint16(g, 2)
	g = binary.LittleEndian.AppendUint16(g, uint16(caps>>16))
	g = append(g, 21)
	g = append(g, make([]byte, 10)...)
	g = append(g, fakeScramble[8:]...)
	g = append(g, 0)
	g = append(g, f.plugin...)
	g = append(g, 0)
	c := &fakeConn{rw: rec, log: log}
	c.seq = 0xff // the greeting is sequence id 0
	if err := c.write(g); err != nil {
		return
	}
	p, err := c.read()
	if err != nil {
		return
	}
	if len(p) == 32 && binary.LittleEndian.Uint32(p)&capSSL != 0 {
		if f.tls == nil {
			return
		}
		tc := tls.Server(rec, f.tls)
		if err := tc.Handshake(); err != nil {
			return
		}
		log.tls = true
		c.rw = tc
		if p, err = c.read(); err != nil {
			return
		}
	}
	log.response = p
	log.plugin, log.auth = parseResponse(p)
	if len(p) > 32 {
		if i := bytes.IndexByte(p[32:], 0); i >= 0 {
			log.user = string(p[32 : 32+i])
		}
	}
	if !f.authenticate(c, log) {
		return
	}
	log.loggedIn = true
	if err := c.write(fakeOK); err != nil {
		return
	}
	for {
		c.seq = 0xff // a command starts at sequence id 0
		p, err := c.read()
		if err != nil || len(p) == 0 {
			return
		}
		switch p[0] {
		case 0x01: // COM_QUIT
			return
		case 0x0e: // COM_PING
			log.queries++
			_ = c.write(fakeOK)
		case 0x03: // COM_QUERY: one column, one row
			log.queries++
			col := []byte{}
			for _, s := range []string{"def", "", "", "", "v", ""} {
				col = append(col, byte(len(s)))
				col = append(col, s...)
			}
			col = append(col, 0x0c, 45, 0, 64, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0)
			eof := []byte{0xfe, 0, 0, 2, 0}
			for _, pkt := range [][]byte{{1}, col, eof, append([]byte{7}, "fake-ok"...), eof} {
				if c.write(pkt) != nil {
					return
				}
			}
		default:
			_ = c.write(fakeERR(1047, "unknown command"))
		}
	}
}

// parseResponse returns the plugin and auth data of a HandshakeResponse41.
func parseResponse(p []byte) (plugin string, auth []byte) {
	if len(p) < 32 {
		return "", nil
	}
	caps := binary.LittleEndian.Uint32(p)
	rest := p[32:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return "", nil
	}
	rest = rest[i+1:]
	if len(rest) == 0 || int(rest[0]) >= len(rest) {
		return "", nil
	}
	auth, rest = rest[1:1+int(rest[0])], rest[1+int(rest[0]):]
	if caps&0x08 != 0 { // CLIENT_CONNECT_WITH_DB
		if i = bytes.IndexByte(rest, 0); i < 0 {
			return "", auth
		}
		rest = rest[i+1:]
	}
	if i = bytes.IndexByte(rest, 0); i >= 0 {
		rest = rest[:i]
	}
	return string(rest), auth
}

// authenticate plays the script; it reports whether the login succeeded (the caller sends OK).
func (f *authFake) authenticate(c *fakeConn, log *fakeLog) bool {
	deny := func() bool {
		_ = c.write(fakeERR(1045, "Access denied"))
		return false
	}
	switch f.script {
	case "fast":
		if !bytes.Equal(log.auth, sha2Scramble(f.password, fakeScramble)) {
			return deny()
		}
		return c.write([]byte{0x01, 0x03}) == nil
	case "switch-native":
		if c.ask(append(append([]byte("\xfemysql_native_password\x00"), fakeScramble...), 0)) != nil {
			return false
		}
		p, err := c.read()
		if err != nil {
			return false
		}
		if !bytes.Equal(p, nativeScramble(f.password, fakeScramble)) {
			return deny()
		}
		return true
	case "switch-clear":
		if c.ask([]byte("\xfemysql_clear_password\x00")) != nil {
			return false
		}
		p, err := c.read()
		if err != nil {
			return false
		}
		log.password = string(bytes.TrimSuffix(p, []byte{0}))
		if f.accepts != nil {
			return f.accepts(log.password, log.user) || deny()
		}
		return log.password == f.password || deny()
	case "pubkey":
		if c.ask(append([]byte{0x01}, f.publicPEM(false)...)) != nil {
			return false
		}
		_, _ = c.read()
		return deny()
	case "full", "full-ec", "switch-sha256":
		ask := []byte{0x01, 0x04}
		if f.script == "switch-sha256" {
			ask = append(append([]byte("\xfesha256_password\x00"), fakeScramble...), 0)
		}
		if c.ask(ask) != nil {
			return false
		}
		p, err := c.read()
		if err != nil {
			return false
		}
		if !log.tls {
			// Plain text: a public-key request (caching_sha2_password 0x02, sha256_password
			// 0x01), then the password encrypted to the key.
			if len(p) != 1 || (p[0] != 0x02 && p[0] != 0x01) {
				return deny()
			}
			if c.write(append([]byte{0x01}, f.publicPEM(f.script == "full-ec")...)) != nil {
				return false
			}
			if p, err = c.read(); err != nil {
				return false
			}
			plain, err := rsa.DecryptOAEP(sha1.New(), nil, f.key, p, nil)
			if err != nil {
				return deny()
			}
			for i := range plain {
				plain[i] ^= fakeScramble[i%len(fakeScramble)]
			}
			p = plain
		}
		log.password = string(bytes.TrimSuffix(p, []byte{0}))
		return log.password == f.password || deny()
	}
	return deny()
}

// publicPEM is the fake's RSA public key, or a fresh ECDSA key, as PEM.
func (f *authFake) publicPEM(ec bool) []byte {
	var pub any = &f.key.PublicKey
	if ec {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		pub = &k.PublicKey
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// sha2Scramble is caching_sha2_password's answer: XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)), nonce)).
func sha2Scramble(password string, nonce []byte) []byte {
	m1 := sha256.Sum256([]byte(password))
	m2 := sha256.Sum256(m1[:])
	h := sha256.New()
	h.Write(m2[:])
	h.Write(nonce)
	x := h.Sum(nil)
	for i := range x {
		x[i] ^= m1[i]
	}
	return x
}

// nativeScramble is mysql_native_password's answer: XOR(SHA1(pw), SHA1(nonce, SHA1(SHA1(pw)))).
func nativeScramble(password string, nonce []byte) []byte {
	s1 := sha1.Sum([]byte(password))
	s2 := sha1.Sum(s1[:])
	h := sha1.New()
	h.Write(nonce)
	h.Write(s2[:])
	x := h.Sum(nil)
	for i := range x {
		x[i] ^= s1[i]
	}
	return x
}

// guardTestKit is what the guard tests share: a CA, a server certificate for 127.0.0.1, an RSA
// key for the fake, and a canary password.
type guardTestKit struct {
	ca       *testCA
	server   *tls.Config
	key      *rsa.PrivateKey
	password string
}

func newGuardKit(t *testing.T) *guardTestKit {
	ca, _ := newCA(t, "guard CA")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &guardTestKit{
		ca:       ca,
		server:   &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t, nil, []net.IP{net.IPv4(127, 0, 0, 1)})}},
		key:      key,
		password: "CANARY-pw-" + randHex(8),
	}
}

func (k *guardTestKit) open(t *testing.T, f *authFake, fields map[string]string, opts connectors.OpenOptions) (*Source, error) {
	t.Helper()
	creds := connectors.Credentials{FieldHost: secrets.Value("127.0.0.1"), FieldPort: secrets.Value(f.port()),
		FieldUsername: secrets.Value("CANARY-user"), FieldPassword: secrets.Value(k.password)}
	for name, v := range fields {
		creds[name] = secrets.Value(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return Open(ctx, creds, opts)
}

// noCanary fails the test if the fake received the password in any form it can read: in the
// raw bytes, in a decrypted packet, or as the answer to its request (an RSA-encrypted blob
// included: the client must have sent nothing after the request).
func (k *guardTestKit) noCanary(t *testing.T, log *fakeLog) {
	t.Helper()
	if bytes.Contains(log.raw, []byte(k.password)) {
		t.Errorf("the server received the password in its raw bytes")
	}
	for _, p := range log.packets {
		if bytes.Contains(p, []byte(k.password)) {
			t.Errorf("the server received the password in a packet")
		}
	}
	if log.afterAsk != 0 || log.password != "" {
		t.Errorf("the client answered the server's request with %d packet(s) (password %q)", log.afterAsk, log.password)
	}
	if log.response == nil {
		t.Errorf("the server saw no HandshakeResponse: the test did not reach the authentication step")
	}
}

// TestGuardRefusesRevealingRequests plays every request that would reveal the password against
// plain text and unverified TLS: each fails with PolicyDenied before the client answers, and the
// server has received nothing it could read the password from.
func TestGuardRefusesRevealingRequests(t *testing.T) {
	t.Parallel()
	k := newGuardKit(t)
	for _, ch := range []struct {
		name    string
		tls     bool // the fake offers TLS
		fields  map[string]string
		wantTLS bool
	}{
		{"disable", true, map[string]string{FieldTLS: "disable"}, false},
		{"preferred without server TLS", false, map[string]string{FieldTLS: "preferred"}, false},
		{"preferred", true, map[string]string{FieldTLS: "preferred"}, true},
		{"required", true, map[string]string{FieldTLS: "required"}, true},
		{"default", true, map[string]string{}, true},
	} {
		for _, sc := range []struct{ plugin, script string }{
			{"caching_sha2_password", "full"},
			{"caching_sha2_password", "switch-sha256"},
			{"mysql_native_password", "switch-clear"},
			{"caching_sha2_password", "pubkey"},
			{"sha256_password", "pubkey"},
		} {
			t.Run(ch.name+"/"+sc.plugin+"/"+sc.script, func(t *testing.T) {
				t.Parallel()
				var tc *tls.Config
				if ch.tls {
					tc = k.server
				}
				f := startAuthFake(t, tc, sc.plugin, sc.script, k.password, k.key)
				_, err := k.open(t, f, ch.fields, connectors.OpenOptions{})
				se := wantKind(t, err, secrets.PolicyDenied, "auth_plugin")
				if secrets.Retryable(se) {
					t.Errorf("a refused authentication request is retried")
				}
				for _, s := range []string{"verify-full", "tlsca", "mysql_native_password", "client_ed25519", "caching_sha2_password", "destinations.rules[].legacyPasswordAuth"} {
					if !bytes.Contains([]byte(se.Msg), []byte(s)) {
						t.Errorf("the message does not name %q: %s", s, se.Msg)
					}
				}
				noLeak(t, err, k.password, "CANARY", "127.0.0.1", f.port())
				log := f.next(t)
				if log.tls != ch.wantTLS {
					t.Errorf("TLS %v, want %v", log.tls, ch.wantTLS)
				}
				k.noCanary(t, log)
				if len(log.problems) > 0 {
					t.Errorf("protocol problems: %v", log.problems)
				}
				if sc.plugin == "sha256_password" && (log.plugin != "caching_sha2_password" || len(log.auth) != 32) {
					// The guard presents a sha256_password greeting as caching_sha2_password.
					t.Errorf("answer to a sha256_password greeting: plugin %q, %d bytes of auth data", log.plugin, len(log.auth))
				}
			})
		}
	}
}

// TestGuardAllowsOnVerifiedTLS checks that on verified TLS the requests the guard refuses
// elsewhere proceed, with the password in clear inside the TLS as servers expect there, and
// that it never shows on the wire. mysql_clear_password is still refused by the driver.
func TestGuardAllowsOnVerifiedTLS(t *testing.T) {
	t.Parallel()
	k := newGuardKit(t)
	verifyFull := map[string]string{FieldTLS: "verify-full", FieldTLSCA: string(k.ca.PEM)}
	verifyCA := map[string]string{FieldTLS: "verify-ca", FieldTLSCA: string(k.ca.PEM)}
	requiredCA := map[string]string{FieldTLS: "required", FieldTLSCA: string(k.ca.PEM)}
	for _, tc := range []struct {
		name   string
		fields map[string]string
		plugin string
		script string
	}{
		{"verify-full full auth", verifyFull, "caching_sha2_password", "full"},
		{"verify-full switch to sha256_password", verifyFull, "caching_sha2_password", "switch-sha256"},
		{"verify-full sha256_password greeting", verifyFull, "sha256_password", "switch-sha256"},
		{"verify-ca full auth", verifyCA, "caching_sha2_password", "full"},
		{"required with CA full auth", requiredCA, "caching_sha2_password", "full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startAuthFake(t, k.server, tc.plugin, tc.script, k.password, k.key)
			s, err := k.open(t, f, tc.fields, connectors.OpenOptions{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			log := f.next(t)
			if !log.tls || !log.loggedIn || log.password != k.password {
				t.Errorf("TLS %v, logged in %v, password received %v", log.tls, log.loggedIn, log.password == k.password)
			}
			if bytes.Contains(log.raw, []byte(k.password)) {
				t.Errorf("the password is visible on the wire")
			}
			if len(log.problems) > 0 {
				t.Errorf("protocol problems: %v", log.problems)
			}
		})
	}
	t.Run("mysql_clear_password", func(t *testing.T) {
		t.Parallel()
		f := startAuthFake(t, k.server, "mysql_native_password", "switch-clear", k.password, k.key)
		_, err := k.open(t, f, verifyFull, connectors.OpenOptions{})
		wantKind(t, err, secrets.InvalidInput, "auth plugin")
		if !errors.Is(err, secrets.InvalidInput) {
			t.Errorf("%v", err)
		}
		log := f.next(t)
		k.noCanary(t, log)
	})
}

// TestGuardLegacyPasswordAuth checks that OpenOptions.LegacyPasswordAuth lets the requests
// proceed on plain text (the password RSA-encrypted to the server's key, never in clear) and
// on unverified TLS, and that a key that is not RSA is refused (the driver would panic on it).
func TestGuardLegacyPasswordAuth(t *testing.T) {
	t.Parallel()
	k := newGuardKit(t)
	legacy := connectors.OpenOptions{LegacyPasswordAuth: true}
	for _, tc := range []struct {
		name    string
		tls     bool
		fields  map[string]string
		script  string
		wantTLS bool
	}{
		{"plain full auth", false, map[string]string{FieldTLS: "disable"}, "full", false},
		{"plain switch to sha256_password", false, map[string]string{FieldTLS: "preferred"}, "switch-sha256", false},
		{"unverified TLS full auth", true, map[string]string{FieldTLS: "required"}, "full", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sc *tls.Config
			if tc.tls {
				sc = k.server
			}
			f := startAuthFake(t, sc, "caching_sha2_password", tc.script, k.password, k.key)
			s, err := k.open(t, f, tc.fields, legacy)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			_ = s.Close()
			log := f.next(t)
			if log.tls != tc.wantTLS || !log.loggedIn || log.password != k.password {
				t.Errorf("TLS %v, logged in %v, password received %v", log.tls, log.loggedIn, log.password == k.password)
			}
			if bytes.Contains(log.raw, []byte(k.password)) {
				t.Errorf("the password is visible on the wire")
			}
		})
	}
	t.Run("ECDSA key", func(t *testing.T) {
		t.Parallel()
		f := startAuthFake(t, nil, "caching_sha2_password", "full-ec", k.password, k.key)
		_, err := k.open(t, f, map[string]string{FieldTLS: "disable"}, legacy)
		wantKind(t, err, secrets.SourceUnavailable, "")
		if !errors.Is(err, secrets.SourceUnavailable) {
			t.Errorf("%v", err)
		}
		log := f.next(t)
		if log.password != "" || log.loggedIn {
			t.Errorf("the client answered a non-RSA key")
		}
	})
}

// TestGuardLoginAndQueries runs successful logins through the guard (TLS upgrade and sequence
// renumbering, or plain text), then a ping and a query round trip.
func TestGuardLoginAndQueries(t *testing.T) {
	t.Parallel()
	k := newGuardKit(t)
	for _, tc := range []struct {
		name    string
		tls     bool
		fields  map[string]string
		plugin  string
		script  string
		wantTLS bool
	}{
		{"verify-full fast auth", true, map[string]string{FieldTLS: "verify-full", FieldTLSCA: string(k.ca.PEM)}, "caching_sha2_password", "fast", true},
		{"required switch to native", true, map[string]string{FieldTLS: "required"}, "caching_sha2_password", "switch-native", true},
		{"disable fast auth", true, map[string]string{FieldTLS: "disable"}, "caching_sha2_password", "fast", false},
		{"preferred without server TLS, native", false, map[string]string{FieldTLS: "preferred"}, "caching_sha2_password", "switch-native", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sc *tls.Config
			if tc.tls {
				sc = k.server
			}
			f := startAuthFake(t, sc, tc.plugin, tc.script, k.password, k.key)
			s, err := k.open(t, f, tc.fields, connectors.OpenOptions{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.db.PingContext(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
			var v string
			if err := s.db.QueryRowContext(ctx, "SELECT 'round trip'").Scan(&v); err != nil || v != "fake-ok" {
				t.Errorf("query: %q, %v", v, err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			log := f.next(t)
			if log.tls != tc.wantTLS || !log.loggedIn || log.queries < 2 {
				t.Errorf("TLS %v, logged in %v, %d commands answered", log.tls, log.loggedIn, log.queries)
			}
			if len(log.problems) > 0 {
				t.Errorf("protocol problems: %v", log.problems)
			}
			if bytes.Contains(log.raw, []byte(k.password)) {
				t.Errorf("the password is visible on the wire")
			}
		})
	}
}

// TestGuardNeedsConnector checks that the dial function refuses a connection that did not come
// through guardedConnector (no way around the guard).
func TestGuardNeedsConnector(t *testing.T) {
	t.Parallel()
	dialled := false
	dial := guardPolicy{}.dialer(func(context.Context, string, string) (net.Conn, error) {
		dialled = true
		return nil, errors.New("dialled")
	})
	if _, err := dial(context.Background(), "tcp", "127.0.0.1:1"); !errors.Is(err, errUnguarded) || dialled {
		t.Errorf("dial without an attempt: %v (dialled %v)", err, dialled)
	}
	if err := beforeConnect(context.Background(), mysql.NewConfig()); !errors.Is(err, errUnguarded) {
		t.Errorf("beforeConnect without an attempt: %v", err)
	}
}

// TestGuardRealServerSwitch logs in to the MariaDB test server as a user identified via
// ed25519: the server answers the driver's mysql_native_password with an AuthSwitchRequest to
// client_ed25519, a challenge-response the guard lets through on plain text.
func TestGuardRealServerSwitch(t *testing.T) {
	t.Parallel()
	db, _ := admin(t)
	var status string
	if err := db.QueryRow("SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'").Scan(&status); err != nil {
		if _, err := db.Exec("INSTALL SONAME 'auth_ed25519'"); err != nil {
			testenv.RequireOrSkip(t, fmt.Sprintf("the test server has no ed25519 plugin: %v", err))
		}
	}
	f := newFixture(t, []string{"_a"})
	user := "saed" + randHex(8)
	t.Cleanup(func() { _, _ = db.Exec("DROP USER IF EXISTS '" + user + "'@'%'") })
	exec(t, "CREATE USER '"+user+"'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('"+f.password+"')")
	c := f.creds(t)
	c[FieldUsername] = secrets.Value(user)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, c, connectors.OpenOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() { _ = s.Close() }()
	if _, err := s.capabilities(ctx); err != nil {
		t.Errorf("a query after an ed25519 login: %v", err)
	}
	c[FieldPassword] = secrets.Value("CANARY-wrong-" + randHex(4))
	_, err = Open(ctx, c, connectors.OpenOptions{})
	wantKind(t, err, secrets.SourceAuthFailed, "MySQL 1045")
}
