package gcp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// testToken is the OAuth2 access token the test client sends.
const testToken = "test-access-token"

// testLocations are the regions the test certificate covers as regional endpoints.
var testLocations = []string{
	"us-east1", "europe-west4", "loc-a", "loc-b", "loc-c", "loc-d", "loc-e", "loc-f", "loc-g",
	"loc-h", "loc-i", "loc-j", "loc-k", "loc-l", "loc-m", "loc-n", "loc-o", "loc-p",
}

var (
	pkiOnce    sync.Once
	serverCert tls.Certificate
	caPool     *x509.CertPool
	caPEM      []byte // the CA certificate, PEM-encoded
)

// testPKI creates, once per test binary, a CA and a server certificate for loopback, the global
// Secret Manager host and the regional hosts of testLocations.
func testPKI(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	return loadPKI()
}

// loadPKI is testPKI for callers without a *testing.T (TestMain).
func loadPKI() (tls.Certificate, *x509.CertPool) {
	pkiOnce.Do(func() {
		caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		now := time.Now()
		caTmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gcp test CA"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		ca, _ := x509.ParseCertificate(caDER)
		leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		names := []string{"localhost", "secretmanager.googleapis.com"}
		for _, l := range testLocations {
			names = append(names, "secretmanager."+l+".rep.googleapis.com")
		}
		leafTmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "secretmanager test"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			DNSNames: names, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		serverCert = tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
		caPool = x509.NewCertPool()
		caPool.AddCert(ca)
		caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	})
	return serverCert, caPool
}

// call is what the test server saw of one AccessSecretVersion request.
type call struct {
	Name          string
	Authorization []string
	Authority     []string
}

// handler answers one AccessSecretVersion request.
type handler func(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error)

// fakeSM is a Secret Manager gRPC server on a loopback TLS listener.
type fakeSM struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	Addr string

	mu     sync.Mutex
	handle handler
	calls  []call
}

// newFakeSM starts a server answering with h and stops it when the test ends.
func newFakeSM(t *testing.T, h handler) *fakeSM {
	t.Helper()
	cert, _ := testPKI(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	})))
	f := &fakeSM{Addr: lis.Addr().String(), handle: h}
	secretmanagerpb.RegisterSecretManagerServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f
}

// AccessSecretVersion records the request and delegates to the handler.
func (f *fakeSM) AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.calls = append(f.calls, call{Name: req.GetName(), Authorization: md.Get("authorization"), Authority: md.Get(":authority")})
	h := f.handle
	f.mu.Unlock()
	return h(ctx, req)
}

// Calls returns the requests seen so far.
func (f *fakeSM) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// tlsOption makes the client trust the test CA.
func tlsOption(t *testing.T) option.ClientOption {
	_, pool := testPKI(t)
	return option.WithGRPCDialOption(grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: pool, MinVersion: tls.VersionTLS12,
	})))
}

// tokenOption sends testToken.
func tokenOption() option.ClientOption {
	return option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testToken}))
}

// newTestStore builds a Store talking to f through the real client, with TLS and a static token.
func newTestStore(t *testing.T, f *fakeSM, extra ...option.ClientOption) *Store {
	t.Helper()
	opts := append([]option.ClientOption{option.WithEndpoint(f.Addr), tlsOption(t), tokenOption()}, extra...)
	s, err := New(context.Background(), Config{ClientOptions: opts})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// respond returns a handler that answers every request with data as version 7 of the
// requested secret, with a correct CRC32C.
func respond(data string) handler {
	return func(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
		return okResponse(req.GetName(), "7", []byte(data)), nil
	}
}

// okResponse builds a response for requested (its version replaced by version) with a correct
// checksum, naming the project by number as Secret Manager does.
func okResponse(requested, version string, data []byte) *secretmanagerpb.AccessSecretVersionResponse {
	p, err := ParsePath(requested)
	if err != nil {
		panic(err)
	}
	p.Project, p.Version = "123456789012", version
	crc := crc32c64(data)
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    p.Name(),
		Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &crc},
	}
}
