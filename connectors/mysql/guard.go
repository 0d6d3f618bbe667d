package mysql

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"database/sql/driver"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/secure-agent/secure-agent/secrets"
)

// This file holds the authentication guard: the net.Conn the driver talks through. The driver
// is given no TLS configuration, so it speaks plain MySQL protocol to the guard; the guard does
// the TLS upgrade in the protocol itself, and so sees every packet of the connection phase in
// clear, whatever the channel. It refuses every server request that would make the driver
// reveal the password (see guard.serverPacket) unless the channel is verified TLS or policy
// allows legacy password authentication for the destination.
//
// The driver cannot be given a hook of its own for this (go-sql-driver/mysql has none), and a
// conn below a driver that does TLS itself sees only ciphertext.
//
// Two things rely on how go-sql-driver/mysql v1.10.1 works, and the tests (guard_test.go) fail
// if a new version changes them: its answer to the greeting never holds the password when it
// has no TLS configuration (a challenge-response, or a request for the RSA key), and it reads
// its per-connection copy of the configuration's TLS field only as "the connection is TLS" once
// it has sent that answer (see guard.upgrade).

// guardPolicy is what the guard of every connection of one Source applies.
type guardPolicy struct {
	// tls is the configuration of the TLS upgrade; nil for plain text (tls=disable).
	tls *tls.Config
	// optional continues in plain text when the server offers no TLS (tls=preferred).
	optional bool
	// verified reports that tls authenticates the server (verify-ca, verify-full, or a CA in
	// field "tlsca"), so that what is sent over it reaches only that server.
	verified bool
	// legacy is OpenOptions.LegacyPasswordAuth: the password may be revealed on any channel.
	legacy bool
}

// Protocol constants of the connection phase.
const (
	capProtocol41 = 0x0200 // CLIENT_PROTOCOL_41
	capSSL        = 0x0800 // CLIENT_SSL

	pktOK       = 0x00
	pktMoreData = 0x01 // AuthMoreData
	pktSwitch   = 0xfe // AuthSwitchRequest (EOF after the connection phase)
	pktERR      = 0xff

	sha2FastAuthOK   = 0x03 // caching_sha2_password: the cache knew the user
	sha2FullAuth     = 0x04 // caching_sha2_password: "perform full authentication"
	sslRequestLength = 32   // capabilities, max packet size, charset, 23 reserved bytes

	// maxPhasePacket bounds a packet the server sends during the connection phase (a
	// greeting, an auth switch, a public key, an error: a few hundred bytes each).
	maxPhasePacket = 64 << 10
)

// attempt is one connection the driver makes. guardedConnector.Connect creates it and puts it
// in the context, where beforeConnect (the driver's per-connection copy of the configuration)
// and the dial function (the guard) find it.
type attempt struct {
	cfg *mysql.Config // the driver's copy of the configuration for this connection
	err error         // the first failure of the guard, which the driver replaces by its own
}

type attemptKey struct{}

func attemptOf(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// errUnguarded stops a connection that did not come through guardedConnector.
var errUnguarded = errors.New("mysql: a connection was attempted without the authentication guard")

// beforeConnect records the driver's per-connection configuration in the attempt, so that the
// guard can tell the driver when the channel has become verified TLS (see guard.upgrade).
func beforeConnect(ctx context.Context, cfg *mysql.Config) error {
	a := attemptOf(ctx)
	if a == nil {
		return errUnguarded
	}
	a.cfg = cfg
	return nil
}

// guardedConnector is the driver's connector with one change: when a connection fails because
// of the guard (a refusal, TLS, the network), Connect returns the guard's error instead of the
// driver's (the driver reports a failed read as ErrInvalidConn and a failed write as "bad
// connection", losing the reason), so that classify can tell PolicyDenied, TLS and network
// failures apart, for the first connection and for any later one the pool opens.
type guardedConnector struct{ driver.Connector }

// Connect implements driver.Connector.
func (g guardedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	a := &attempt{}
	conn, err := g.Connector.Connect(context.WithValue(ctx, attemptKey{}, a))
	if err != nil && a.err != nil && ctx.Err() == nil {
		return nil, a.err
	}
	return conn, err
}

// dialer returns the driver's DialFunc: dial through dial (the options' Dialer), then wrap the
// connection in a guard applying p.
func (p guardPolicy) dialer(dial func(ctx context.Context, network, address string) (net.Conn, error)) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		a := attemptOf(ctx)
		if a == nil {
			return nil, errUnguarded
		}
		raw, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if tc, ok := raw.(*net.TCPConn); ok {
			_ = tc.SetKeepAlive(true) // the driver does this for a *net.TCPConn, which it no longer sees
		}
		g := &guard{raw: raw, conn: raw, policy: p, attempt: a}
		if sc, ok := raw.(syscall.Conn); ok {
			return &sysGuard{guard: g, sc: sc}, nil
		}
		return g, nil
	}
}

// phase is where a guarded connection stands.
type phase int

const (
	phaseGreeting phase = iota // waiting for the server's greeting
	phaseResponse              // waiting for the driver's HandshakeResponse
	phaseAuth                  // authentication exchange
	phaseDone                  // connection phase over (OK or ERR): bytes pass through unchanged
)

// guard is a net.Conn between the driver and the server. During the connection phase it reads
// and writes whole packets, upgrades to TLS when the policy asks for it, renumbers sequence ids
// around the SSLRequest it adds (server to driver -1, driver to server +1), and checks every
// server packet. Once the server ends the phase (OK or ERR), it passes bytes through.
//
// Read and Write are called by the driver's goroutine only; Close may be called from another
// (the driver closes the connection when the context ends) and closes the raw connection, which
// ends any read, write or TLS handshake in progress.
type guard struct {
	raw     net.Conn // the dialled connection
	conn    net.Conn // raw, or the TLS connection over it
	policy  guardPolicy
	attempt *attempt

	phase    phase
	tlsUp    bool // the connection is TLS
	verified bool // the connection is TLS that authenticated the server
	shift    byte // the sequence ids the SSLRequest took (0 or 1)

	in  []byte // a packet for the driver, not yet read
	out []byte // the start of a packet the driver is writing
	err error  // the guard's failure; every later Read and Write returns it
}

var _ net.Conn = (*guard)(nil)

// sysGuard is a guard over a connection with a file descriptor: the driver checks an idle
// connection's liveness on it, as it did on the raw connection before.
type sysGuard struct {
	*guard
	sc syscall.Conn
}

// SyscallConn implements syscall.Conn with the raw connection's.
func (s *sysGuard) SyscallConn() (syscall.RawConn, error) { return s.sc.SyscallConn() }

// Read implements net.Conn.
func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if len(g.in) == 0 {
		if g.phase == phaseDone {
			return g.conn.Read(p)
		}
		if err := g.serverPacket(); err != nil {
			return 0, g.fail(err)
		}
	}
	n := copy(p, g.in)
	g.in = g.in[n:]
	return n, nil
}

// Write implements net.Conn. The driver writes whole packets; during the connection phase a
// packet is forwarded (renumbered, and after the TLS upgrade for the HandshakeResponse) once it
// is complete.
func (g *guard) Write(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.phase == phaseDone && len(g.out) == 0 {
		return g.conn.Write(p)
	}
	g.out = append(g.out, p...)
	for len(g.out) >= 4 {
		n := int(g.out[0]) | int(g.out[1])<<8 | int(g.out[2])<<16
		if n == 0xffffff {
			return 0, g.fail(mysql.ErrMalformPkt) // no packet of the connection phase is that long
		}
		if len(g.out) < 4+n {
			break
		}
		pkt := g.out[:4+n]
		var err error
		switch g.phase {
		case phaseResponse:
			err = g.handshakeResponse(pkt[3], pkt[4:])
		case phaseDone:
			err = g.send(g.conn, pkt[3], pkt[4:])
		default:
			err = g.send(g.conn, pkt[3]+g.shift, pkt[4:])
		}
		if err != nil {
			return 0, g.fail(err)
		}
		g.out = g.out[4+n:]
	}
	if len(g.out) == 0 {
		g.out = nil
	}
	return len(p), nil
}

// Close implements net.Conn: it closes the raw connection.
func (g *guard) Close() error { return g.raw.Close() }

// LocalAddr implements net.Conn.
func (g *guard) LocalAddr() net.Addr { return g.raw.LocalAddr() }

// RemoteAddr implements net.Conn.
func (g *guard) RemoteAddr() net.Addr { return g.raw.RemoteAddr() }

// SetDeadline implements net.Conn (a TLS connection's deadlines are its raw connection's).
func (g *guard) SetDeadline(t time.Time) error { return g.raw.SetDeadline(t) }

// SetReadDeadline implements net.Conn.
func (g *guard) SetReadDeadline(t time.Time) error { return g.raw.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn.
func (g *guard) SetWriteDeadline(t time.Time) error { return g.raw.SetWriteDeadline(t) }

// fail makes err the guard's failure, records it for guardedConnector, closes the connection
// and returns err.
func (g *guard) fail(err error) error {
	if g.err == nil {
		g.err = err
		if g.attempt.err == nil {
			g.attempt.err = err
		}
		_ = g.raw.Close()
	}
	return g.err
}

// send writes one packet.
func (g *guard) send(w io.Writer, seq byte, payload []byte) error {
	b := make([]byte, 0, 4+len(payload))
	b = append(b, byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), seq)
	b = append(b, payload...)
	_, err := w.Write(b)
	return err
}

// serverPacket reads one packet from the server, checks it and queues it for the driver.
func (g *guard) serverPacket() error {
	var h [4]byte
	if _, err := io.ReadFull(g.conn, h[:]); err != nil {
		return err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if n == 0 || n > maxPhasePacket {
		return mysql.ErrMalformPkt
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(g.conn, payload); err != nil {
		return err
	}
	seq := h[3]
	switch g.phase {
	case phaseGreeting:
		var err error
		if payload, err = g.greeting(payload); err != nil {
			return err
		}
	default:
		seq -= g.shift
		if err := g.check(payload); err != nil {
			return err
		}
	}
	g.in = append(g.in[:0], byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), seq)
	g.in = append(g.in, payload...)
	return nil
}

// greeting checks the server's greeting, decides on TLS and returns the greeting the driver is
// given. It fails, before the driver answers, when the policy requires TLS and the server
// offers none.
//
// A greeting whose default plugin is sha256_password is given to the driver as
// caching_sha2_password: without a TLS configuration of its own, the driver would answer
// sha256_password with a request for the server's RSA key, which a server on a TLS connection
// takes for the password itself. Answered with caching_sha2_password, a server whose user has
// sha256_password switches to it (a request the guard then judges like any other).
func (g *guard) greeting(p []byte) ([]byte, error) {
	if p[0] == pktERR {
		g.phase = phaseDone // too many connections, host blocked, ...: the driver reports it
		return p, nil
	}
	// protocol version, server version (NUL-terminated), connection id, 8 bytes of scramble,
	// a filler, the capabilities' low 16 bits: as the driver reads them.
	end := bytes.IndexByte(p[1:], 0)
	if end < 0 {
		return nil, mysql.ErrMalformPkt
	}
	pos := 1 + end + 1 + 4 + 8 + 1
	if len(p) < pos+2 {
		return nil, mysql.ErrMalformPkt
	}
	caps := binary.LittleEndian.Uint16(p[pos:])
	pos += 2
	if caps&capProtocol41 == 0 {
		g.phase = phaseDone // the driver refuses a pre-4.1 server before it answers
		return p, nil
	}
	if len(p) > pos {
		// charset, status, capabilities' high 16 bits, scramble length, 10 reserved bytes,
		// the scramble's second part (12 bytes and a NUL), then the plugin name. The driver
		// reads all of it without checking the length.
		pos += 1 + 2 + 2 + 1 + 10 + 13
		if len(p) < pos {
			return nil, mysql.ErrMalformPkt
		}
		name := p[pos:]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if string(name) == "sha256_password" {
			q := append([]byte{}, p[:pos]...)
			q = append(q, "caching_sha2_password"...)
			p = append(q, p[pos+len(name):]...)
		}
	}
	switch {
	case g.policy.tls == nil:
	case caps&capSSL != 0:
		g.tlsUp = true // the upgrade happens when the driver answers
	case g.policy.optional:
	default:
		return nil, mysql.ErrNoTLS
	}
	g.phase = phaseResponse
	return p, nil
}

// handshakeResponse forwards the driver's HandshakeResponse41. With TLS, it first sends the
// SSLRequest (the response's first 32 bytes, CLIENT_SSL set), upgrades the connection, and
// sends the response over TLS with CLIENT_SSL set and the next sequence id.
func (g *guard) handshakeResponse(seq byte, payload []byte) error {
	if len(payload) < sslRequestLength {
		return mysql.ErrMalformPkt
	}
	g.phase = phaseAuth
	if !g.tlsUp {
		return g.send(g.raw, seq, payload)
	}
	resp := append([]byte{}, payload...)
	binary.LittleEndian.PutUint32(resp, binary.LittleEndian.Uint32(resp)|capSSL)
	if err := g.send(g.raw, seq, resp[:sslRequestLength]); err != nil {
		return err
	}
	if err := g.upgrade(); err != nil {
		return err
	}
	g.shift = 1
	return g.send(g.conn, seq+g.shift, resp)
}

// upgrade runs the TLS handshake over the raw connection. On a channel that may carry the
// password (verified TLS, or legacy authentication allowed), it then tells the driver that the
// connection is TLS (its copy of the configuration gets a TLS configuration it will not use for
// anything else): the driver then sends the password in clear inside the TLS for
// caching_sha2_password's full authentication and for sha256_password, as servers expect on a
// TLS connection, instead of asking for the server's RSA key, which they do not send on one.
func (g *guard) upgrade() error {
	tc := tls.Client(g.raw, g.policy.tls)
	if err := tc.Handshake(); err != nil {
		return err
	}
	g.conn = tc
	g.verified = g.policy.verified
	if g.mayReveal() && g.attempt.cfg != nil {
		g.attempt.cfg.TLS = g.policy.tls
	}
	return nil
}

// mayReveal reports whether the server may ask for the password in a form it can read.
func (g *guard) mayReveal() bool { return g.verified || g.policy.legacy }

// check judges a packet the server sends after the greeting, before the driver sees it.
//
//   - OK and ERR end the connection phase.
//   - An AuthSwitchRequest to mysql_native_password, caching_sha2_password or client_ed25519
//     (challenge-response: the password never leaves the agent) passes; to sha256_password or
//     mysql_clear_password (the password in clear, or encrypted to a key the server sends) it
//     is refused unless mayReveal; to any other plugin it is refused as the driver would
//     refuse it (mysql_old_password, an unknown plugin).
//   - AuthMoreData "fast authentication succeeded" passes; "perform full authentication" is
//     refused unless mayReveal; anything else is an RSA public key, refused unless mayReveal
//     and, when allowed, refused unless it is a PEM RSA public key (the driver would panic on
//     another kind of key).
//   - Any other packet passes: the driver refuses it.
func (g *guard) check(p []byte) error {
	switch p[0] {
	case pktOK, pktERR:
		g.phase = phaseDone
	case pktSwitch:
		if len(p) == 1 {
			return mysql.ErrOldPassword // the pre-4.1 switch request
		}
		end := bytes.IndexByte(p[1:], 0)
		if end < 0 {
			return mysql.ErrMalformPkt
		}
		switch plugin := string(p[1 : 1+end]); plugin {
		case "mysql_native_password", "caching_sha2_password", "client_ed25519":
		case "sha256_password", "mysql_clear_password":
			if !g.mayReveal() {
				return revealRefused("asked to switch to " + plugin)
			}
		case "mysql_old_password":
			return mysql.ErrOldPassword
		default:
			return mysql.ErrUnknownPlugin
		}
	case pktMoreData:
		switch {
		case len(p) == 2 && p[1] == sha2FastAuthOK:
		case len(p) == 2 && p[1] == sha2FullAuth:
			if !g.mayReveal() {
				return revealRefused("asked for caching_sha2_password full authentication (the server's cache holds no entry for the user)")
			}
		default:
			if !g.mayReveal() {
				return revealRefused("sent an RSA public key to encrypt the password with")
			}
			if !isRSAPublicKey(p[1:]) {
				return mysql.ErrMalformPkt
			}
		}
	}
	return nil
}

// isRSAPublicKey reports whether b is a PEM RSA public key, as the driver parses it.
func isRSAPublicKey(b []byte) bool {
	block, _ := pem.Decode(b)
	if block == nil {
		return false
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return false
	}
	_, ok := k.(*rsa.PublicKey)
	return ok
}

// revealRefused is the PolicyDenied error for a server request that would reveal the password
// on a channel that may not carry it. what says what the server did; it names no value.
func revealRefused(what string) error {
	return &secrets.Error{Kind: secrets.PolicyDenied, Detail: "auth_plugin", Cause: errRevealRefused,
		Msg: "mysql: the server " + what + ", which would reveal the password to whoever answers, over a connection that is not verified TLS; " +
			"the agent refused before sending it, because an impersonating server could read it: use field \"tls\" verify-full with the server's CA in field \"tlsca\", " +
			"give the user an authentication plugin that does not reveal the password (mysql_native_password, client_ed25519, or caching_sha2_password with its cache warm), " +
			"or allow legacy password authentication for this destination in the agent's policy (destinations.rules[].legacyPasswordAuth)"}
}

// errRevealRefused is the cause of a PolicyDenied from the guard.
var errRevealRefused = errors.New("mysql: the server's authentication request was refused by the agent")
