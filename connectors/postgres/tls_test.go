package postgres

import (
	"github.com/secure-agent/secure-agent/internal/testpki"

	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// testCA is a certificate authority made for one test.
type testCA struct{ *testpki.CA }

func newCA(t *testing.T) *testCA { return &testCA{testpki.NewCA(t, "test CA")} }

// issue makes a leaf certificate for the names (DNS names or IP addresses); it returns the
// certificate and key PEMs.
func (ca *testCA) issue(t *testing.T, usage x509.ExtKeyUsage, names ...string) (certPEM, keyPEM []byte) {
	var dns []string
	var ips []net.IP
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return ca.Issue(t, "leaf", usage, dns, ips)
}

// tlsPostgres is a fake server that accepts PostgreSQL's SSLRequest, completes a TLS handshake
// with cfg and then refuses the login with 28P01: a SourceAuthFailed from it proves that the TLS
// handshake succeeded. It reports on clientCert whether the client presented a certificate.
func tlsPostgres(t *testing.T, cfg *tls.Config, clientCert chan<- bool) *net.TCPAddr {
	return fakeServer(t, func(c net.Conn) {
		tc, ok := acceptTLS(c, cfg)
		if !ok {
			return
		}
		be := pgproto3.NewBackend(tc, tc)
		if _, err := be.ReceiveStartupMessage(); err != nil {
			return
		}
		if clientCert != nil {
			select {
			case clientCert <- len(tc.ConnectionState().PeerCertificates) > 0:
			default:
			}
		}
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
		_ = be.Flush()
	})
}

// acceptTLS answers a PostgreSQL client's SSLRequest and completes the TLS handshake with cfg,
// within 10 s.
func acceptTLS(c net.Conn, cfg *tls.Config) (*tls.Conn, bool) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req [8]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || binary.BigEndian.Uint32(req[4:]) != 80877103 {
		return nil, false
	}
	if _, err := c.Write([]byte{'S'}); err != nil {
		return nil, false
	}
	tc := tls.Server(c, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, false
	}
	return tc, true
}

func tlsCreds(addr *net.TCPAddr, fields map[string]string) connectors.Credentials {
	c := connectors.Credentials{
		"host": secrets.Value("127.0.0.1"), "port": secrets.Value(strconv.Itoa(addr.Port)),
		"database": secrets.Value("db"), "username": secrets.Value("user"), "password": secrets.Value("pw"),
	}
	for k, v := range fields {
		c[k] = secrets.Value(v)
	}
	return c
}

func TestTLSHandshakes(t *testing.T) {
	t.Parallel()
	ca, otherCA := newCA(t), newCA(t)
	serverCert := func(names ...string) tls.Certificate {
		cp, kp := ca.issue(t, x509.ExtKeyUsageServerAuth, names...)
		c, err := tls.X509KeyPair(cp, kp)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	byIP := tlsPostgres(t, &tls.Config{Certificates: []tls.Certificate{serverCert("127.0.0.1")}}, nil)
	byName := tlsPostgres(t, &tls.Config{Certificates: []tls.Certificate{serverCert("db.internal")}}, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	sawCert := make(chan bool, 1)
	mtls := tlsPostgres(t, &tls.Config{Certificates: []tls.Certificate{serverCert("127.0.0.1")},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}, sawCert)
	clientCert, clientKey := ca.issue(t, x509.ExtKeyUsageClientAuth, "client")

	for _, tc := range []struct {
		name   string
		addr   *net.TCPAddr
		fields map[string]string
		want   secrets.Kind // SourceAuthFailed: the handshake succeeded
	}{
		{"verify-full", byIP, map[string]string{"sslmode": "verify-full", "sslrootcert": string(ca.PEM)}, secrets.SourceAuthFailed},
		{"verify-full wrong name", byName, map[string]string{"sslmode": "verify-full", "sslrootcert": string(ca.PEM)}, secrets.InvalidInput},
		{"verify-full system roots", byIP, map[string]string{"sslmode": "verify-full", "sslrootcert": "system"}, secrets.InvalidInput},
		{"verify-ca ignores the name", byName, map[string]string{"sslmode": "verify-ca", "sslrootcert": string(ca.PEM)}, secrets.SourceAuthFailed},
		{"verify-ca wrong CA", byName, map[string]string{"sslmode": "verify-ca", "sslrootcert": string(otherCA.PEM)}, secrets.InvalidInput},
		{"require without CA", byName, map[string]string{"sslmode": "require"}, secrets.SourceAuthFailed},
		{"require with a CA verifies it", byName, map[string]string{"sslmode": "require", "sslrootcert": string(otherCA.PEM)}, secrets.InvalidInput},
		{"prefer", byName, map[string]string{"sslmode": "prefer"}, secrets.SourceAuthFailed},
		{"default is require", byName, map[string]string{}, secrets.SourceAuthFailed},
		{"client certificate missing", mtls, map[string]string{"sslmode": "verify-full", "sslrootcert": string(ca.PEM)}, secrets.InvalidInput},
		{"client certificate", mtls, map[string]string{"sslmode": "verify-full", "sslrootcert": string(ca.PEM),
			"sslcert": string(clientCert), "sslkey": string(clientKey)}, secrets.SourceAuthFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := Open(ctx, tlsCreds(tc.addr, tc.fields), connectors.OpenOptions{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded against a fake server")
			}
			t.Logf("%v", err)
			se := wantKind(t, err, tc.want)
			if tc.want == secrets.InvalidInput && se.Detail != "tls" {
				t.Errorf("Detail = %q", se.Detail)
			}
			assertNoLeak(t, err, "127.0.0.1", "db.internal", "-----BEGIN")
		})
	}
	select {
	case saw := <-sawCert:
		if !saw {
			t.Errorf("the server saw no client certificate")
		}
	default:
		t.Errorf("the mutual-TLS server never completed a login")
	}
}

func TestTLSFieldValidation(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	cert, key := ca.issue(t, x509.ExtKeyUsageClientAuth, "client")
	_, otherKey := ca.issue(t, x509.ExtKeyUsageClientAuth, "other")
	garbage := "-----BEGIN CERTIFICATE-----\n" + canary + "\n-----END CERTIFICATE-----\n"
	badDER := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(canary)}))
	encrypted := string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte(canary)}))
	for _, tc := range []struct {
		name   string
		fields map[string]string
		field  string
	}{
		{"root not PEM", map[string]string{"sslrootcert": "not a PEM " + canary}, "sslrootcert"},
		{"root not base64", map[string]string{"sslrootcert": garbage}, "sslrootcert"},
		{"root bad DER", map[string]string{"sslrootcert": badDER, "sslmode": "disable"}, "sslrootcert"},
		{"cert without key", map[string]string{"sslcert": string(cert)}, "sslkey"},
		{"key without cert", map[string]string{"sslkey": string(key)}, "sslcert"},
		{"cert not PEM", map[string]string{"sslcert": canary, "sslkey": string(key)}, "sslcert"},
		{"key not PEM", map[string]string{"sslcert": string(cert), "sslkey": canary}, "sslkey"},
		{"key of another cert", map[string]string{"sslcert": string(cert), "sslkey": string(otherKey)}, "sslkey"},
		{"encrypted key", map[string]string{"sslcert": string(cert), "sslkey": encrypted}, "sslkey"},
		{"verify-full without CA", map[string]string{"sslmode": "verify-full"}, "sslrootcert"},
		{"verify-ca without CA", map[string]string{"sslmode": "verify-ca"}, "sslrootcert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No server: the fields are checked before any connection is made.
			creds := tlsCreds(&net.TCPAddr{Port: 1}, tc.fields)
			_, err := Open(context.Background(), creds, connectors.OpenOptions{})
			assertNoLeak(t, err, canary, "-----BEGIN", string(key[40:80]))
			if se := wantKind(t, err, secrets.InvalidInput); se.Field != tc.field {
				t.Errorf("Field = %q, want %q (%v)", se.Field, tc.field, err)
			}
		})
	}

	t.Run("modes", func(t *testing.T) {
		for _, tc := range []struct {
			host, mode string
			root       []byte
			want       string // n: plaintext, t: TLS, v: verified TLS, in the order tried
		}{
			{"db.example", "disable", ca.PEM, "n"},
			{"db.example", "allow", ca.PEM, "nt"},
			{"db.example", "prefer", ca.PEM, "tn"},
			{"db.example", "require", ca.PEM, "v"}, // require with a root verifies like verify-ca
			{"db.example", "require", nil, "t"},
			{"db.example", "require", []byte("system"), "v"}, // as libpq: verify-full
			{"db.example", "prefer", nil, "tn"},
			{"db.example", "verify-ca", ca.PEM, "v"},
			{"db.example", "verify-full", ca.PEM, "v"},
			{"/var/run/postgresql", "require", ca.PEM, "n"}, // a Unix socket never uses TLS
		} {
			attempts, err := buildTLS(tc.host, tc.mode, tc.root, nil, nil)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.host, tc.mode, err)
			}
			var got strings.Builder
			for _, a := range attempts {
				c := a.config
				if c == nil {
					if a.verified {
						t.Errorf("%s: a plain-text attempt is marked verified", tc.mode)
					}
					got.WriteByte('n')
					continue
				}
				if a.verified {
					got.WriteByte('v')
				} else {
					got.WriteByte('t')
				}
				if c.ServerName != tc.host || c.MinVersion != tls.VersionTLS12 {
					t.Errorf("%s: ServerName %q", tc.mode, c.ServerName)
				}
				// Verified: crypto/tls checks the chain and name, or VerifyConnection the chain.
				if a.verified != (!c.InsecureSkipVerify || c.VerifyConnection != nil) {
					t.Errorf("%s: verified %v, InsecureSkipVerify %v", tc.mode, a.verified, c.InsecureSkipVerify)
				}
			}
			if got.String() != tc.want {
				t.Errorf("%s %s: %s, want %s", tc.host, tc.mode, got.String(), tc.want)
			}
		}
		attempts, err := buildTLS("10.0.0.1", "require", nil, cert, key)
		if err != nil || len(attempts) != 1 || attempts[0].verified || attempts[0].config.ServerName != "" ||
			len(attempts[0].config.Certificates) != 1 {
			t.Errorf("require by IP with a client certificate: %+v, %v", attempts, err)
		}
	})
}
