package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/testpki"
	"github.com/secure-agent/secure-agent/secrets"
)

// testCA is a certificate authority made for one test.
type testCA struct{ *testpki.CA }

func newCA(t *testing.T, name string) (*testCA, *x509.CertPool) {
	ca := testpki.NewCA(t, name)
	return &testCA{ca}, ca.Pool()
}

// issue makes a certificate signed by the CA, for a server (DNS names, IPs) or a client.
func (ca *testCA) issue(t *testing.T, cn string, dns []string, ips []net.IP, client bool) (certPEM, keyPEM []byte) {
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	return ca.Issue(t, cn, usage, dns, ips)
}

func (ca *testCA) serverCert(t *testing.T, dns []string, ips []net.IP) tls.Certificate {
	certPEM, keyPEM := ca.issue(t, "server", dns, ips, false)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// fakeServer speaks the first steps of the MySQL protocol: a greeting (offering TLS when it has
// a TLS config), the TLS upgrade, and then an "access denied" for any login. A test reaching
// that error knows the TLS part succeeded.
type fakeServer struct {
	l      net.Listener
	tls    *tls.Config
	events chan string // "plain", "tls", "tls+client-cert", "handshake failed"
}

const fakeDenied = "Access denied for user 'CANARY-fake'@'CANARY-host'"

func startFake(t *testing.T, tc *tls.Config) *fakeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{l: l, tls: tc, events: make(chan string, 16)}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go fs.serve(c)
		}
	}()
	return fs
}

func (fs *fakeServer) port() string {
	_, p, _ := net.SplitHostPort(fs.l.Addr().String())
	return p
}

func (fs *fakeServer) serve(c net.Conn) {
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	caps := uint32(0x0001 | 0x0200 | 0x8000 | 0x2000 | 0x80000) // long password, 4.1, secure conn, transactions, plugin auth
	if fs.tls != nil {
		caps |= 0x0800 // SSL
	}
	g := []byte{10}
	g = append(g, "5.7.99-fake\x00"...)
	g = binary.LittleEndian.AppendUint32(g, 1)
	g = append(g, "abcdefgh"...)
	g = append(g, 0)
	g = binary.LittleEndian.AppendUint16(g, uint16(caps))
	g = append(g, 33)
	g = binary.LittleEndian.AppendUint16(g, 2)
	g = binary.LittleEndian.AppendUint16(g, uint16(caps>>16))
	g = append(g, 21)
	g = append(g, make([]byte, 10)...)
	g = append(g, "ijklmnopqrst\x00"...)
	g = append(g, "mysql_native_password\x00"...)
	if err := writePacket(c, 0, g); err != nil {
		return
	}
	var rw io.ReadWriter = c
	seq, payload, err := readPacket(rw)
	if err != nil {
		return
	}
	event := "plain"
	if len(payload) >= 4 && binary.LittleEndian.Uint32(payload)&0x0800 != 0 && len(payload) == 32 {
		tc := tls.Server(c, fs.tls)
		if err := tc.Handshake(); err != nil {
			fs.events <- "handshake failed"
			return
		}
		event = "tls"
		if len(tc.ConnectionState().PeerCertificates) > 0 {
			event = "tls+client-cert"
		}
		rw = tc
		if seq, _, err = readPacket(rw); err != nil {
			fs.events <- "handshake failed"
			return
		}
	}
	fs.events <- event
	e := []byte{0xff}
	e = binary.LittleEndian.AppendUint16(e, 1045)
	e = append(e, "#28000"...)
	e = append(e, fakeDenied...)
	_ = writePacket(rw, seq+1, e)
}

func writePacket(w io.Writer, seq byte, payload []byte) error {
	h := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
	_, err := w.Write(append(h, payload...))
	return err
}

func readPacket(r io.Reader) (byte, []byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return h[3], p, err
}

// TestTLSModes runs every mode against the fake server: certificate and host name
// verification, client certificates, and servers without TLS.
func TestTLSModes(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t, "test CA")
	other, _ := newCA(t, "another CA")
	ipCert := ca.serverCert(t, nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	nameCert := ca.serverCert(t, []string{"db.internal"}, nil)
	clientPEM, clientKey := ca.issue(t, "agent", nil, nil, true)
	clientPool := x509.NewCertPool()
	clientPool.AddCert(ca.Cert)

	withIP := startFake(t, &tls.Config{Certificates: []tls.Certificate{ipCert}})
	withName := startFake(t, &tls.Config{Certificates: []tls.Certificate{nameCert}})
	needsClient := startFake(t, &tls.Config{Certificates: []tls.Certificate{ipCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool})
	needsClient12 := startFake(t, &tls.Config{Certificates: []tls.Certificate{ipCert}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: clientPool, MaxVersion: tls.VersionTLS12})
	noTLS := startFake(t, nil)

	for _, tc := range []struct {
		name   string
		server *fakeServer
		fields map[string]string
		kind   secrets.Kind
		detail string
		event  string // what the server saw, "" for nothing
	}{
		{"verify-full", withIP, map[string]string{FieldTLS: "verify-full", FieldTLSCA: string(ca.PEM)}, secrets.SourceAuthFailed, "MySQL 1045", "tls"},
		{"verify-full wrong CA", withIP, map[string]string{FieldTLS: "verify-full", FieldTLSCA: string(other.PEM)}, secrets.InvalidInput, "tls", "handshake failed"},
		{"verify-full system roots", withIP, map[string]string{FieldTLS: "verify-full"}, secrets.InvalidInput, "tls", "handshake failed"},
		{"verify-full wrong host", withName, map[string]string{FieldTLS: "verify-full", FieldTLSCA: string(ca.PEM)}, secrets.InvalidInput, "tls", "handshake failed"},
		{"verify-ca other host", withName, map[string]string{FieldTLS: "verify-ca", FieldTLSCA: string(ca.PEM)}, secrets.SourceAuthFailed, "MySQL 1045", "tls"},
		{"verify-ca wrong CA", withName, map[string]string{FieldTLS: "verify-ca", FieldTLSCA: string(other.PEM)}, secrets.InvalidInput, "tls", "handshake failed"},
		{"required unverified", withName, map[string]string{FieldTLS: "required"}, secrets.SourceAuthFailed, "MySQL 1045", "tls"},
		{"required with CA verifies", withName, map[string]string{FieldTLS: "required", FieldTLSCA: string(other.PEM)}, secrets.InvalidInput, "tls", "handshake failed"},
		{"default (required) uses TLS", withName, map[string]string{}, secrets.SourceAuthFailed, "MySQL 1045", "tls"},
		{"default (required) without server TLS", noTLS, map[string]string{}, secrets.InvalidInput, "tls", ""},
		{"preferred uses TLS", withName, map[string]string{FieldTLS: "preferred"}, secrets.SourceAuthFailed, "MySQL 1045", "tls"},
		{"preferred falls back", noTLS, map[string]string{FieldTLS: "preferred"}, secrets.SourceAuthFailed, "MySQL 1045", "plain"},
		{"required without server TLS", noTLS, map[string]string{FieldTLS: "required"}, secrets.InvalidInput, "tls", ""},
		{"disable", withIP, map[string]string{FieldTLS: "disable"}, secrets.SourceAuthFailed, "MySQL 1045", "plain"},
		{"client cert", needsClient, map[string]string{FieldTLS: "verify-full", FieldTLSCA: string(ca.PEM), FieldTLSCert: string(clientPEM), FieldTLSKey: string(clientKey)},
			secrets.SourceAuthFailed, "MySQL 1045", "tls+client-cert"},
		{"client cert missing (TLS 1.3)", needsClient, map[string]string{FieldTLS: "verify-full", FieldTLSCA: string(ca.PEM)}, secrets.InvalidInput, "tls", "handshake failed"},
		{"client cert missing (TLS 1.2)", needsClient12, map[string]string{FieldTLS: "verify-full", FieldTLSCA: string(ca.PEM)}, secrets.InvalidInput, "tls", "handshake failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds := connectors.Credentials{FieldHost: secrets.Value("127.0.0.1"), FieldPort: secrets.Value(tc.server.port()),
				FieldUsername: secrets.Value("CANARY-user"), FieldPassword: secrets.Value("CANARY-pw")}
			for k, v := range tc.fields {
				creds[k] = secrets.Value(v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := Open(ctx, creds, connectors.OpenOptions{})
			wantKind(t, err, tc.kind, tc.detail)
			noLeak(t, err, "CANARY", "127.0.0.1", tc.server.port(), string(clientKey[40:80]))
			if tc.event == "" {
				return
			}
			select {
			case ev := <-tc.server.events:
				if ev != tc.event {
					t.Errorf("the server saw %q, want %q", ev, tc.event)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("the server saw nothing, want %q", tc.event)
			}
		})
	}
}

// TestTLSWithoutServerTLS runs the modes against the MariaDB test server, which has no TLS: the
// default (required) refuses it before anything is sent; preferred and disable log in in plain
// text (mysql_native_password, a challenge-response the guard lets through) and read the
// catalog.
func TestTLSWithoutServerTLS(t *testing.T) {
	t.Parallel()
	f := newFixture(t, []string{"_a"})
	f.grantRead(t, "_a")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := f.creds(t)
	delete(c, FieldTLS)
	_, err := Open(ctx, c, connectors.OpenOptions{})
	se := wantKind(t, err, secrets.InvalidInput, "tls")
	if se.Field != FieldTLS || !errors.Is(err, mysql.ErrNoTLS) {
		t.Errorf("default mode against a server without TLS: %v (field %q)", err, se.Field)
	}
	noLeak(t, err, f.user, f.password)
	for _, mode := range []string{"preferred", "disable"} {
		c[FieldTLS] = secrets.Value(mode)
		s, err := Open(ctx, c, connectors.OpenOptions{})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if _, err := s.Preflight(ctx); err != nil {
			t.Errorf("%s: Preflight: %v", mode, err)
		}
		names, err := s.Schemas(ctx, f.onlyMine(connectors.Filters{}))
		if err != nil || len(names) != 1 || names[0] != f.db("_a") {
			t.Errorf("%s: Schemas = %v, %v", mode, names, err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("%s: Close: %v", mode, err)
		}
	}
}
