package azure

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// This file holds an in-process Key Vault and Entra ID: one TLS server whose certificate (from a
// test CA) is valid for the real vault and login hosts, and an HTTP client whose dialer sends those
// hosts to it. The SDK therefore talks to the real URLs, verifies TLS and checks the challenge's
// resource against the real vault domain.

const (
	testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testVault  = "myvault"
	testHost   = testVault + ".vault.azure.net"
	testURL    = "https://" + testHost
	// versions are 32 hex digits, as Key Vault issues them.
	v1 = "0123456789abcdef0123456789abcdef"
	v2 = "fedcba9876543210fedcba9876543210"
)

// systemAssignedToken is what the fake IMDS issues to the system-assigned identity. MSAL caches
// managed identity tokens process-wide, so it is the same for every test in the process.
var systemAssignedToken = "system-" + randomHex(8)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tlsHosts are the names the test certificate is valid for.
var tlsHosts = []string{
	"*.vault.azure.net", "*.vault.azure.cn", "*.vault.usgovcloudapi.net", "*.vault.microsoftazure.de",
	"login.microsoftonline.com", "login.chinacloudapi.cn", "login.microsoftonline.us", "login.microsoftonline.de",
}

var (
	pkiOnce sync.Once
	pkiPool *x509.CertPool
	pkiCert tls.Certificate
)

// testPKI returns a CA pool and a server certificate for tlsHosts, made once per test binary.
func testPKI(t *testing.T) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	pkiOnce.Do(func() {
		caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		caTmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		caCert, _ := x509.ParseCertificate(caDER)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "vault"}, DNSNames: tlsHosts,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},

			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, // identity endpoints on httptest servers
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		pkiPool = x509.NewCertPool()
		pkiPool.AddCert(caCert)
		pkiCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return pkiPool, pkiCert
}

// canary returns a unique marker string; tests put it where a secret or a raw body would be and
// assert it never appears in an error.
func canary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "CANARY" + hex.EncodeToString(b)
}

// request is one request the fake vault received.
type request struct {
	Host, Path, Version, APIVersion string
	Authorized                      bool
}

// fakeAzure is the in-process Key Vault and Entra ID.
type fakeAzure struct {
	t     *testing.T
	srv   *httptest.Server
	token string // the bearer token Key Vault accepts

	mu       sync.Mutex
	secrets  map[string]map[string]string // host/name -> version -> value
	current  map[string]string            // host/name -> current version
	requests []request
	// vault, when set, answers Key Vault requests that carry the right token instead of the
	// secret store. It returns false to fall through to the default behaviour.
	vault func(w http.ResponseWriter, r *http.Request, name, version string) bool
	// accept, when set, decides which bearer tokens Key Vault accepts, instead of token and
	// systemAssignedToken.
	accept func(token string) bool
	// challenge overrides the WWW-Authenticate header of the 401 challenge.
	challenge string
	// login handles requests to the Entra ID hosts.
	login http.HandlerFunc

	// dialOverride lets a test fail a dial (DNS errors); returning nil falls through.
	dialOverride func(host string) error
	// imds, when set, receives connections to 169.254.169.254:80.
	imds *httptest.Server
	// imdsDials counts every connection attempt to 169.254.169.254, on any port.
	imdsDials atomic.Int32
}

func newFakeAzure(t *testing.T) *fakeAzure {
	t.Helper()
	_, cert := testPKI(t)
	f := &fakeAzure{
		t:       t,
		token:   canary(t), // a token is a credential: errors must never show it either
		secrets: map[string]map[string]string{},
		current: map[string]string{},
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS tests provoke handshake errors
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// put stores a secret version and makes it current.
func (f *fakeAzure) put(host, name, version, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := host + "/" + name
	if f.secrets[k] == nil {
		f.secrets[k] = map[string]string{}
	}
	f.secrets[k][version] = value
	f.current[k] = version
}

func (f *fakeAzure) setVault(h func(w http.ResponseWriter, r *http.Request, name, version string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vault = h
}

// log returns the Key Vault requests received so far and forgets them.
func (f *fakeAzure) log() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

// httpClient is the agent's HTTP client in tests: it trusts the test CA and routes Azure hosts to
// the fake. Any other host but loopback is refused, so no test reaches the internet.
func (f *fakeAzure) httpClient() *http.Client {
	pool, _ := testPKI(f.t)
	addr := f.srv.Listener.Addr().String()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		DisableKeepAlives: false,
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(a)
			if f.dialOverride != nil {
				if err := f.dialOverride(host); err != nil {
					return nil, err
				}
			}
			var d net.Dialer
			if host == imdsHost {
				f.imdsDials.Add(1)
			}
			switch {
			case port == "443" && f.routed(host):
				return d.DialContext(ctx, network, addr)
			case host == imdsHost && port == "80" && f.imds != nil:
				return d.DialContext(ctx, network, f.imds.Listener.Addr().String())
			case host == imdsHost:
				return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("connect: no route to host")}
			case host == "127.0.0.1" || host == "localhost":
				return d.DialContext(ctx, network, a)
			}
			return nil, fmt.Errorf("test dialer: refusing %s", a)
		},
	}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (f *fakeAzure) routed(host string) bool {
	for _, h := range tlsHosts {
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}

func (f *fakeAzure) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.Host, "login.") {
		if f.login == nil {
			http.Error(w, "no login handler", http.StatusNotFound)
			return
		}
		f.login(w, r)
		return
	}
	f.serveVault(w, r)
}

// serveVault speaks the Key Vault Get Secret protocol, with its challenge-based authentication.
func (f *fakeAzure) serveVault(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(strings.Split(r.Host, ":")[0])
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	name, version := "", ""
	if len(parts) >= 2 && parts[0] == "secrets" {
		name = parts[1]
	}
	if len(parts) == 3 {
		version = parts[2]
	}
	auth := r.Header.Get("Authorization")
	f.mu.Lock()
	accept := f.accept
	f.mu.Unlock()
	authorized := auth == "Bearer "+f.token || auth == "Bearer "+systemAssignedToken
	if accept != nil {
		token, ok := strings.CutPrefix(auth, "Bearer ")
		authorized = ok && accept(token)
	}
	f.mu.Lock()
	f.requests = append(f.requests, request{Host: host, Path: r.URL.Path, Version: version,
		APIVersion: r.URL.Query().Get("api-version"), Authorized: authorized})
	hook, challenge := f.vault, f.challenge
	f.mu.Unlock()

	if r.Method != http.MethodGet || name == "" || r.URL.Query().Get("api-version") == "" {
		writeKVError(w, http.StatusBadRequest, "BadParameter", "bad request", "")
		return
	}
	if !authorized {
		if challenge == "" {
			resource := "https://" + strings.SplitN(host, ".", 2)[1]
			challenge = fmt.Sprintf(`Bearer authorization="https://login.microsoftonline.com/%s", resource="%s"`, testTenant, resource)
		}
		w.Header().Set("WWW-Authenticate", challenge)
		msg := "AKV10000: Request is missing a Bearer or PoP token."
		if auth != "" {
			msg = "AKV10032: Invalid token " + auth // a real vault does not echo it; a canary test wants it to
		}
		writeKVError(w, http.StatusUnauthorized, "Unauthorized", msg, "")
		return
	}
	if hook != nil && hook(w, r, name, version) {
		return
	}
	f.mu.Lock()
	k := host + "/" + name
	if version == "" {
		version = f.current[k]
	}
	value, ok := f.secrets[k][version]
	f.mu.Unlock()
	if !ok {
		writeKVError(w, http.StatusNotFound, "SecretNotFound",
			fmt.Sprintf("A secret with (name/id) %s/%s was not found in this key vault.", name, version), "")
		return
	}
	writeSecret(w, host, name, version, value)
}

// writeSecret answers as Key Vault does for Get Secret.
func writeSecret(w http.ResponseWriter, host, name, version, value string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"value": value,
		"id":    "https://" + host + "/secrets/" + name + "/" + version,
		"attributes": map[string]any{
			"enabled": true, "created": 1700000000, "updated": 1700000000, "recoveryLevel": "Recoverable+Purgeable",
		},
		"tags": map[string]string{},
	})
}

// writeKVError answers with Key Vault's error body.
func writeKVError(w http.ResponseWriter, status int, code, msg, inner string) {
	body := map[string]any{"code": code, "message": msg}
	if inner != "" {
		body["innererror"] = map[string]string{"code": inner}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
}

// fakeCredential is a TokenCredential double that checks what the challenge policy asks for.
type fakeCredential struct {
	t      *testing.T
	token  string
	scope  string // expected scope
	tenant string // expected tenant (from the challenge)
	err    error  // returned instead of a token when set
	calls  atomic.Int32
}

func (f *fakeAzure) credential() *fakeCredential {
	return &fakeCredential{t: f.t, token: f.token, scope: "https://vault.azure.net/.default", tenant: testTenant}
}

// GetToken implements azcore.TokenCredential.
func (c *fakeCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.calls.Add(1)
	if len(opts.Scopes) != 1 || opts.Scopes[0] != c.scope {
		c.t.Errorf("GetToken scopes = %q, want [%q]", opts.Scopes, c.scope)
	}
	if opts.TenantID != c.tenant {
		c.t.Errorf("GetToken tenant = %q, want %q (from the challenge)", opts.TenantID, c.tenant)
	}
	if c.err != nil {
		return azcore.AccessToken{}, c.err
	}
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// entraID answers MSAL's OpenID discovery and token requests for tenant like Entra ID does. check
// sees each token request's form; token returns the access token to issue, or "" with an error
// status and body already written.
func entraID(t *testing.T, tenant string, token func(w http.ResponseWriter, form url.Values) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		base := "https://" + r.Host + "/" + tenant
		switch r.URL.Path {
		case "/common/discovery/instance":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"tenant_discovery_endpoint": base + "/v2.0/.well-known/openid-configuration",
				"api-version":               "1.1",
				"metadata": []map[string]any{{
					"preferred_network": r.Host, "preferred_cache": r.Host, "aliases": []string{r.Host},
				}},
			})
		case "/" + tenant + "/v2.0/.well-known/openid-configuration":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"authorization_endpoint": base + "/oauth2/v2.0/authorize",
				"token_endpoint":         base + "/oauth2/v2.0/token",
				"issuer":                 base + "/v2.0",
			})
		case "/" + tenant + "/oauth2/v2.0/token":
			if err := r.ParseForm(); err != nil {
				t.Errorf("token request form: %v", err)
			}
			tok := token(w, r.PostForm)
			if tok == "" {
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": tok,
			})
		default:
			t.Errorf("unexpected Entra ID request %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
		}
	}
}

// entraError writes an Entra ID OAuth error.
func entraError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": code, "error_description": fmt.Sprintf("AADSTS%d: %s", aadsts, desc),
		"error_codes": []int{aadsts}, "timestamp": "2024-01-01 00:00:00Z",
	})
}

// writePEM writes a self-signed client certificate and its key as one PEM file.
func writePEM(t *testing.T, path string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "agent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
