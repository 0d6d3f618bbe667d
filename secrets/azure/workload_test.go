package azure

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/secure-agent/secure-agent/secrets"
)

// These tests run the real azidentity and azsecrets SDKs against a local Microsoft Entra ID token
// endpoint (its own TLS server, reached through AZURE_AUTHORITY_HOST) and the local Key Vault of
// server_test.go, which accepts only tokens that endpoint issued and that have not expired.

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// entraWI is Entra ID for one workload identity. Like Entra ID checking a federated identity
// credential, it issues a token only when client_assertion is the service account token the
// kubelet last wrote, which here means: the token file's contents at the moment of the request.
type entraWI struct {
	t                      *testing.T
	srv                    *httptest.Server
	tenant, clientID, file string
	// ttl is the lifetime of issued tokens: one second, the shortest expires_in there is. The SDK
	// keeps a token until it expires (azcore refreshes early at most every 30 seconds), so tests
	// wait for expiry (waitExpiry) to make the next Fetch ask for a new one.
	ttl time.Duration

	mu         sync.Mutex
	hosts      []string             // Host of every request
	assertions []string             // client_assertion of every token request
	issued     map[string]time.Time // token -> expiry
	refused    int                  // token requests refused
	refuse     string               // when set, an OAuth error code every token request gets
}

func newEntraWI(t *testing.T, clientID, file string) *entraWI {
	t.Helper()
	_, cert := testPKI(t)
	e := &entraWI{t: t, tenant: testTenant, clientID: clientID, file: file, ttl: time.Second,
		issued: map[string]time.Time{}}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(e.serve))
	e.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}

// authority is the value for AZURE_AUTHORITY_HOST.
func (e *entraWI) authority() string { return e.srv.URL + "/" }

func (e *entraWI) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.hosts = append(e.hosts, r.Host)
	e.mu.Unlock()
	base := "https://" + r.Host + "/" + e.tenant
	switch r.URL.Path {
	case "/" + e.tenant + "/v2.0/.well-known/openid-configuration":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"issuer":                 "https://login.microsoftonline.com/" + e.tenant + "/v2.0",
		})
	case "/" + e.tenant + "/oauth2/v2.0/token":
		e.token(w, r)
	default:
		// Instance discovery (/common/discovery/instance) is off for workload identity.
		e.t.Errorf("unexpected Entra ID request %s %s%s", r.Method, r.Host, r.URL.Path)
		http.NotFound(w, r)
	}
}

func (e *entraWI) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		e.t.Errorf("token request form: %v", err)
	}
	form := r.PostForm
	current, err := os.ReadFile(e.file)
	e.mu.Lock()
	defer e.mu.Unlock()
	assertion := form.Get("client_assertion")
	e.assertions = append(e.assertions, assertion)
	if form.Get("grant_type") != "client_credentials" || form.Get("client_assertion_type") != jwtBearer ||
		form.Get("client_id") != e.clientID || form.Has("client_secret") ||
		!strings.HasPrefix(form.Get("scope"), "https://vault.azure.") || !strings.Contains(form.Get("scope"), "/.default") {
		e.t.Errorf("not a client credentials request with a jwt-bearer assertion for %s: grant_type=%q client_assertion_type=%q client_id=%q scope=%q",
			e.clientID, form.Get("grant_type"), form.Get("client_assertion_type"), form.Get("client_id"), form.Get("scope"))
	}
	switch {
	case e.refuse != "":
		e.refused++
		entraError(w, http.StatusBadRequest, e.refuse, 70021, "No matching federated identity record found for presented assertion "+assertion)
		return
	case err != nil || assertion != string(current):
		// Entra ID echoes parts of a refused assertion; errors must not show them.
		e.refused++
		entraError(w, http.StatusBadRequest, "invalid_client", 700024, "Client assertion is not within its valid time range: "+assertion)
		return
	}
	tok := canary(e.t)
	e.issued[tok] = time.Now().Add(e.ttl)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token_type": "Bearer", "expires_in": int(e.ttl.Seconds()), "ext_expires_in": int(e.ttl.Seconds()), "access_token": tok,
	})
}

// accepts is Key Vault's check: a token this endpoint issued, not yet expired.
func (e *entraWI) accepts(tok string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.issued[tok]
	return ok && time.Now().Before(exp)
}

// waitExpiry returns once every token issued so far has expired.
func (e *entraWI) waitExpiry() {
	e.mu.Lock()
	var last time.Time
	for _, exp := range e.issued {
		if exp.After(last) {
			last = exp
		}
	}
	e.mu.Unlock()
	time.Sleep(time.Until(last) + 10*time.Millisecond)
}

// sent returns the client assertions received so far.
func (e *entraWI) sent() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.assertions...)
}

// requests returns how many requests of any kind the endpoint received.
func (e *entraWI) requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.hosts)
}

// tokensIssued returns every token the endpoint issued.
func (e *entraWI) tokensIssued() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var toks []string
	for tok := range e.issued {
		toks = append(toks, tok)
	}
	return toks
}

// writeToken replaces the token file as the kubelet does: a new file renamed over the old one.
func writeToken(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// serviceAccountToken returns a distinct fake service account token (a canary shaped as a JWT).
func serviceAccountToken(t *testing.T) string {
	return "eyJhbGciOiJSUzI1NiJ9." + canary(t) + ".c2lnbmF0dXJl"
}

// standInIMDS is a managed identity endpoint that counts its requests and issues tokens Key
// Vault accepts only when the test lets it.
type standInIMDS struct {
	requests atomic.Int32
}

func (m *standInIMDS) install(t *testing.T, f *fakeAzure, token string) {
	f.imds = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":"3600","expires_on":"%d","resource":"https://vault.azure.net","token_type":"Bearer","client_id":%q}`,
			token, time.Now().Add(time.Hour).Unix(), r.URL.Query().Get("client_id"))
	}))
	t.Cleanup(f.imds.Close)
}

// wiSetup is an agent pod with a workload identity: the webhook's variables, a token file, a
// local Entra ID at AZURE_AUTHORITY_HOST, a Key Vault that accepts only its tokens, and a
// stand-in IMDS (the node's) that must never be asked.
type wiSetup struct {
	f        *fakeAzure
	entra    *entraWI
	imds     *standInIMDS
	clientID string
	file     string
}

func newWISetup(t *testing.T) *wiSetup {
	t.Helper()
	clearAzureEnv(t)
	w := &wiSetup{f: newFakeAzure(t), imds: &standInIMDS{}, clientID: randomGUID(t),
		file: filepath.Join(t.TempDir(), "azure-identity-token")}
	writeToken(t, w.file, serviceAccountToken(t))
	w.entra = newEntraWI(t, w.clientID, w.file)
	w.f.put(testHost, "db", v1, "value")
	w.f.accept = w.entra.accepts
	w.f.login = func(rw http.ResponseWriter, r *http.Request) {
		t.Errorf("request to %s%s: with AZURE_AUTHORITY_HOST set, sign-in must go there", r.Host, r.URL.Path)
		http.NotFound(rw, r)
	}
	w.imds.install(t, w.f, w.f.token)
	t.Setenv("AZURE_CLIENT_ID", w.clientID)
	t.Setenv("AZURE_TENANT_ID", testTenant)
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", w.file)
	t.Setenv("AZURE_AUTHORITY_HOST", w.entra.authority())
	return w
}

// noIMDS checks that nothing reached for the node's managed identity endpoint.
func (w *wiSetup) noIMDS(t *testing.T) {
	t.Helper()
	if n, d := w.imds.requests.Load(), w.f.imdsDials.Load(); n != 0 || d != 0 {
		t.Errorf("IMDS received %d requests (%d connection attempts); want none with a workload identity", n, d)
	}
}

func TestWorkloadIdentitySendsTheCurrentTokenFile(t *testing.T) {
	for _, method := range []string{AuthWorkloadIdentity, AuthManagedIdentity, ""} {
		t.Run("authMethod="+method, func(t *testing.T) {
			w := newWISetup(t)
			first, _ := os.ReadFile(w.file)
			s := newStore(t, w.f, Config{AuthMethod: method, ClientID: strings.ToUpper(w.clientID)}, true)
			ref := secrets.Ref{Path: testURL + "/secrets/db"}
			mustFetch(t, s, ref, "value", v1)
			if got := w.entra.sent(); len(got) != 1 || got[0] != string(first) {
				t.Fatalf("first token request: %d assertions, want 1 equal to the token file", len(got))
			}

			// The kubelet rotates the token; once the access token has expired, the next Fetch
			// asks Entra ID for a new one.
			rotated := serviceAccountToken(t)
			writeToken(t, w.file, rotated)
			w.entra.waitExpiry()
			mustFetch(t, s, ref, "value", v1)
			got := w.entra.sent()
			if len(got) != 2 {
				t.Fatalf("token requests = %d, want 2", len(got))
			}
			if got[1] != rotated {
				t.Errorf("after rotation the assertion sent is the old token file (stale: %v), want the new contents", got[1] == string(first))
			}

			// A Store made after the rotation sends the new contents too.
			mustFetch(t, newStore(t, w.f, Config{AuthMethod: method}, true), ref, "value", v1)
			if got := w.entra.sent(); len(got) != 3 || got[2] != rotated {
				t.Errorf("a new Store did not send the current token file")
			}
			if n := len(w.entra.tokensIssued()); n != 3 {
				t.Errorf("tokens issued = %d, want 3", n)
			}
			w.noIMDS(t)
		})
	}
}

// TestWorkloadIdentityStaleAssertionIsRefused shows what the agent avoids: azidentity's own
// WorkloadIdentityCredential keeps the file's contents for 10 minutes, so right after a rotation
// it sends the old token, which this Entra ID (like the real one once the old token has expired)
// refuses. The refusal is a final AuthFailed that shows neither token.
func TestWorkloadIdentityStaleAssertionIsRefused(t *testing.T) {
	w := newWISetup(t)
	first, _ := os.ReadFile(w.file)
	sdk, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: w.entra.authority()},
			Transport: w.f.httpClient(),
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, w.f, Config{Credential: sdk}, true)
	ref := secrets.Ref{Path: testURL + "/secrets/db"}
	mustFetch(t, s, ref, "value", v1)
	rotated := serviceAccountToken(t)
	writeToken(t, w.file, rotated)
	w.entra.waitExpiry()
	_, err = fetch(t, s, ref)
	e := wantError(t, err, secrets.AuthFailed, string(first), rotated)
	if e.Detail != "token HTTP 400 invalid_client AADSTS700024" {
		t.Errorf("Detail = %q", e.Detail)
	}
	noCanary(t, err, w.entra.tokensIssued()...)
	if got := w.entra.sent(); len(got) != 2 || got[1] != string(first) {
		t.Errorf("the SDK's credential was expected to resend the old token file")
	}
}

func TestWorkloadIdentityNeverAsksIMDS(t *testing.T) {
	ref := secrets.Ref{Path: testURL + "/secrets/db"}
	t.Run("identity not federated", func(t *testing.T) {
		w := newWISetup(t)
		w.entra.mu.Lock()
		w.entra.refuse = "invalid_client"
		w.entra.mu.Unlock()
		for _, method := range []string{AuthWorkloadIdentity, AuthManagedIdentity} {
			s := newStore(t, w.f, Config{AuthMethod: method}, true)
			_, err := fetch(t, s, ref)
			e := wantError(t, err, secrets.AuthFailed)
			if e.Detail != "token HTTP 400 invalid_client AADSTS70021" || !strings.Contains(e.Msg, w.clientID) ||
				!strings.Contains(e.Msg, "federated identity credential") {
				t.Errorf("error should name the identity and say what to fix: %v", err)
			}
		}
		w.noIMDS(t)
	})
	t.Run("clientId of another identity", func(t *testing.T) {
		w := newWISetup(t)
		for _, method := range []string{AuthWorkloadIdentity, AuthManagedIdentity} {
			_, err := New(context.Background(), Config{AuthMethod: method, ClientID: randomGUID(t), HTTPClient: w.f.httpClient()})
			e := wantError(t, err, secrets.InvalidInput)
			if !strings.Contains(e.Msg, "AZURE_CLIENT_ID") {
				t.Errorf("error should say clientId must be AZURE_CLIENT_ID: %v", err)
			}
		}
		if n := w.entra.requests(); n != 0 {
			t.Errorf("Entra ID received %d requests", n)
		}
		w.noIMDS(t)
	})
	t.Run("incomplete workload identity", func(t *testing.T) {
		w := newWISetup(t)
		t.Setenv("AZURE_TENANT_ID", "")
		_, err := New(context.Background(), Config{HTTPClient: w.f.httpClient()})
		e := wantError(t, err, secrets.AuthFailed)
		if !strings.Contains(e.Msg, "set AZURE_TENANT_ID") || !strings.Contains(e.Msg, "never the node's managed identity") {
			t.Errorf("error should name the missing variable and why IMDS is not used: %v", err)
		}
		w.noIMDS(t)
	})
	t.Run("control: without AZURE_FEDERATED_TOKEN_FILE managed-identity asks IMDS", func(t *testing.T) {
		w := newWISetup(t)
		t.Setenv("AZURE_FEDERATED_TOKEN_FILE", "")
		w.f.mu.Lock()
		w.f.accept = func(tok string) bool { return tok == w.f.token }
		w.f.mu.Unlock()
		// A user-assigned identity: MSAL caches system-assigned tokens process-wide.
		mustFetch(t, newStore(t, w.f, Config{ClientID: randomGUID(t)}, true), ref, "value", v1)
		if n := w.imds.requests.Load(); n != 1 {
			t.Errorf("IMDS requests = %d, want 1: the stand-in is not where the SDK looks", n)
		}
		if n := w.entra.requests(); n != 0 {
			t.Errorf("Entra ID received %d requests", n)
		}
	})
}

func TestWorkloadIdentityEnvironmentErrors(t *testing.T) {
	const fixTenant = "set AZURE_TENANT_ID"
	cases := []struct {
		name   string
		method string
		setup  func(t *testing.T, w *wiSetup)
		kind   secrets.Kind
		msgs   []string
	}{
		{"missing tenant", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) { t.Setenv("AZURE_TENANT_ID", "") },
			secrets.AuthFailed, []string{fixTenant, "azure.workload.identity/use"}},
		{"missing tenant, managed-identity", AuthManagedIdentity, func(t *testing.T, w *wiSetup) { t.Setenv("AZURE_TENANT_ID", "") },
			secrets.AuthFailed, []string{fixTenant, "AZURE_FEDERATED_TOKEN_FILE is set"}},
		{"missing client id", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) { t.Setenv("AZURE_CLIENT_ID", "") },
			secrets.AuthFailed, []string{"set AZURE_CLIENT_ID"}},
		{"missing token file variable", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) { t.Setenv("AZURE_FEDERATED_TOKEN_FILE", "") },
			secrets.AuthFailed, []string{"set AZURE_FEDERATED_TOKEN_FILE"}},
		{"missing token file", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) { _ = os.Remove(w.file) },
			secrets.AuthFailed, []string{"AZURE_FEDERATED_TOKEN_FILE", "azure-identity-token", "does not exist"}},
		{"missing token file, managed-identity", "", func(t *testing.T, w *wiSetup) { _ = os.Remove(w.file) },
			secrets.AuthFailed, []string{"AZURE_FEDERATED_TOKEN_FILE", "does not exist"}},
		{"unreadable token file", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) {
			_ = os.Remove(w.file)
			if err := os.Mkdir(w.file, 0o700); err != nil {
				t.Fatal(err)
			}
		}, secrets.AuthFailed, []string{"AZURE_FEDERATED_TOKEN_FILE", "cannot be read"}},
		{"empty token file", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) { writeToken(t, w.file, "\n") },
			secrets.AuthFailed, []string{"AZURE_FEDERATED_TOKEN_FILE", "is empty"}},
		{"huge token file", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) {
			writeToken(t, w.file, canary(t)+strings.Repeat("x", maxTokenFileBytes))
		}, secrets.AuthFailed, []string{"AZURE_FEDERATED_TOKEN_FILE", "larger than"}},
		{"bad tenant", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) { t.Setenv("AZURE_TENANT_ID", "a/b") },
			secrets.AuthFailed, []string{"AZURE_TENANT_ID on the agent"}},
		{"bad client id", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) { t.Setenv("AZURE_CLIENT_ID", "agent") },
			secrets.AuthFailed, []string{"AZURE_CLIENT_ID on the agent"}},
		{"http authority", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) {
			t.Setenv("AZURE_AUTHORITY_HOST", "http://login.microsoftonline.com/")
		}, secrets.AuthFailed, []string{"AZURE_AUTHORITY_HOST"}},
		{"authority with user info", AuthWorkloadIdentity, func(t *testing.T, w *wiSetup) {
			t.Setenv("AZURE_AUTHORITY_HOST", "https://user:"+canary(t)+"@login.microsoftonline.com/")
		}, secrets.AuthFailed, []string{"AZURE_AUTHORITY_HOST"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWISetup(t)
			contents, _ := os.ReadFile(w.file)
			c.setup(t, w)
			s, err := New(context.Background(), Config{AuthMethod: c.method, HTTPClient: w.f.httpClient()})
			if s != nil {
				t.Error("New returned a Store with an error")
			}
			wantError(t, err, c.kind, string(contents))
			for _, m := range c.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if n := w.entra.requests(); n != 0 {
				t.Errorf("Entra ID received %d requests, want none", n)
			}
			w.noIMDS(t)
		})
	}
}

// TestWorkloadIdentityTokenFileGoneLater: a file that disappears after New fails the next token
// request before anything is sent to the token endpoint.
func TestWorkloadIdentityTokenFileGoneLater(t *testing.T) {
	w := newWISetup(t)
	contents, _ := os.ReadFile(w.file)
	s := newStore(t, w.f, Config{AuthMethod: AuthWorkloadIdentity}, true)
	ref := secrets.Ref{Path: testURL + "/secrets/db"}
	mustFetch(t, s, ref, "value", v1)
	if err := os.Remove(w.file); err != nil {
		t.Fatal(err)
	}
	w.entra.waitExpiry()
	_, err := fetch(t, s, ref)
	e := wantError(t, err, secrets.AuthFailed, string(contents))
	noCanary(t, err, w.entra.tokensIssued()...)
	if !strings.Contains(e.Msg, w.file) || !strings.Contains(e.Msg, "AZURE_FEDERATED_TOKEN_FILE") || !strings.Contains(e.Msg, "does not exist") {
		t.Errorf("error should name the token file: %v", err)
	}
	if e.Ref == "" {
		t.Error("error does not name the secret reference")
	}
	if n := len(w.entra.sent()); n != 1 {
		t.Errorf("token requests = %d, want 1 (none after the file went)", n)
	}
	w.noIMDS(t)
}

// TestWorkloadIdentityAuthorityFollowsTheVaultsCloud: without AZURE_AUTHORITY_HOST the sign-in
// host is the vault's cloud's, as for a service principal.
func TestWorkloadIdentityAuthorityFollowsTheVaultsCloud(t *testing.T) {
	w := newWISetup(t)
	t.Setenv("AZURE_AUTHORITY_HOST", "")
	w.f.login = w.entra.serve
	w.f.put("myvault.vault.azure.cn", "db", v2, "cn-value")
	s := newStore(t, w.f, Config{AuthMethod: AuthWorkloadIdentity}, true)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"}, "value", v1)
	mustFetch(t, s, secrets.Ref{Path: "https://myvault.vault.azure.cn/secrets/db"}, "cn-value", v2)
	w.entra.mu.Lock()
	hosts := strings.Join(w.entra.hosts, " ")
	w.entra.mu.Unlock()
	if !strings.Contains(hosts, "login.microsoftonline.com") || !strings.Contains(hosts, "login.chinacloudapi.cn") {
		t.Errorf("sign-in hosts = %s; want each vault's cloud's authority", hosts)
	}
	w.noIMDS(t)
}

// TestWorkloadIdentityErrorsCarryNoTokens: neither the token file's contents nor an issued access
// token appears in an error, even when Key Vault or Entra ID echo them.
func TestWorkloadIdentityErrorsCarryNoTokens(t *testing.T) {
	w := newWISetup(t)
	contents, _ := os.ReadFile(w.file)
	s := newStore(t, w.f, Config{AuthMethod: AuthWorkloadIdentity}, true)
	ref := secrets.Ref{Path: testURL + "/secrets/db"}
	mustFetch(t, s, ref, "value", v1)

	// Key Vault refuses the token and echoes it in its body.
	w.f.mu.Lock()
	w.f.accept = func(string) bool { return false }
	w.f.mu.Unlock()
	_, err := fetch(t, s, ref)
	wantError(t, err, secrets.AuthFailed, string(contents))
	noCanary(t, err, w.entra.tokensIssued()...)

	// Key Vault denies access and its body carries the token.
	w.f.mu.Lock()
	w.f.accept = w.entra.accepts
	w.f.mu.Unlock()
	w.f.setVault(func(rw http.ResponseWriter, r *http.Request, _, _ string) bool {
		writeKVError(rw, http.StatusForbidden, "Forbidden", "Caller is not authorized: "+r.Header.Get("Authorization"), "ForbiddenByRbac")
		return true
	})
	_, err = fetch(t, s, ref)
	wantError(t, err, secrets.AccessDenied, string(contents))
	noCanary(t, err, w.entra.tokensIssued()...)

	// Entra ID refuses and echoes the assertion.
	w.entra.mu.Lock()
	w.entra.refuse = "invalid_grant"
	w.entra.mu.Unlock()
	w.entra.waitExpiry()
	_, err = fetch(t, s, ref)
	wantError(t, err, secrets.AuthFailed, string(contents))
	noCanary(t, err, w.entra.tokensIssued()...)
	w.noIMDS(t)
}
