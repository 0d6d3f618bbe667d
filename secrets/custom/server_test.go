package custom

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/secrets"
)

// testServer is an in-process HTTPS (or loopback HTTP) store that counts requests and records
// the last one.
type testServer struct {
	*httptest.Server
	caFile   string
	requests atomic.Int32
	mu       sync.Mutex
	last     *http.Request
}

// caFiles maps a test TLS server's port to its CA file: the agent-side CA configuration that
// testOptions gives every store, per port, as an operator gives one per store host.
var caFiles sync.Map // int -> string

// newTLSServer starts an httptest TLS server and writes its certificate, as a CA bundle, to a
// temporary file that testOptions' CAFile returns for the server's port.
func newTLSServer(t *testing.T, h http.HandlerFunc) *testServer {
	t.Helper()
	ts := &testServer{}
	ts.Server = httptest.NewTLSServer(ts.record(h))
	t.Cleanup(ts.Close)
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	ts.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ts.caFile, block, 0o600); err != nil {
		t.Fatal(err)
	}
	port := ts.port()
	caFiles.Store(port, ts.caFile)
	t.Cleanup(func() { caFiles.Delete(port) })
	return ts
}

// port is the server's TCP port.
func (ts *testServer) port() int {
	return ts.Listener.Addr().(*net.TCPAddr).Port
}

// newHTTPServer starts a plain-HTTP loopback server.
func newHTTPServer(t *testing.T, h http.HandlerFunc) *testServer {
	t.Helper()
	ts := &testServer{}
	ts.Server = httptest.NewServer(ts.record(h))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) record(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ts.requests.Add(1)
		ts.mu.Lock()
		ts.last = r.Clone(context.Background())
		ts.mu.Unlock()
		h(w, r)
	}
}

func (ts *testServer) lastRequest() *http.Request {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.last
}

// config is a Config for the server (testOptions trusts its CA).
func (ts *testServer) config() Config {
	return Config{StoreURL: ts.URL}
}

// testOptions reads env from a map, allows every variable and URL, and trusts each test TLS
// server's CA for its port.
func testOptions(env map[string]string) Options {
	return Options{
		LookupEnv: func(name string) (string, bool) {
			v, ok := env[name]
			return v, ok
		},
		AllowEnv:      func(string) error { return nil },
		AllowStoreURL: func(*url.URL) error { return nil },
		CAFile: func(_ string, port int) string {
			f, _ := caFiles.Load(port)
			s, _ := f.(string)
			return s
		},
	}
}

// versionAt is an agent-side VersionPath that answers path for every host.
func versionAt(path string) func(string, int) string {
	return func(string, int) string { return path }
}

func mustNew(t *testing.T, cfg Config, opts Options) *Store {
	t.Helper()
	s, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func fetch(t *testing.T, s *Store, ref secrets.Ref) (*secrets.Secret, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Fetch(ctx, ref)
}

// respond writes a body with a content type and status.
func respond(status int, contentType, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = fmt.Fprint(w, body)
	}
}

// wantKind fails unless err is a *secrets.Error of kind from the custom store.
func wantKind(t *testing.T, err error, kind secrets.Kind) *secrets.Error {
	t.Helper()
	var se *secrets.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *secrets.Error", err, err)
	}
	if se.Kind != kind {
		t.Fatalf("kind = %s, want %s (error: %v)", se.Kind, kind, err)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("errors.Is(err, %s) is false", kind)
	}
	return se
}

// wantContains fails unless the error message holds every part.
func wantContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}
