package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/secrets"
)

// ---- real credentials against local identity endpoints ----

// clearAzureEnv unsets every variable that selects a credential or managed identity source.
func clearAzureEnv(t *testing.T) {
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
		"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_AUTHORITY_HOST",
		"AZURE_REGIONAL_AUTHORITY_NAME", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT",
		"MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
		"AZURE_FEDERATED_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
}

func TestServicePrincipalClientSecret(t *testing.T) {
	clearAzureEnv(t)
	clientID, secret := randomGUID(t), canary(t)
	t.Setenv("AZURE_TENANT_ID", testTenant)
	t.Setenv("AZURE_CLIENT_ID", clientID)
	t.Setenv("AZURE_CLIENT_SECRET", secret)
	f := newFakeAzure(t)
	f.put(testHost, "db", v1, "value")
	tokenRequests := 0
	f.login = entraID(t, testTenant, func(w http.ResponseWriter, form url.Values) string {
		tokenRequests++
		if form.Get("client_id") != clientID || form.Get("client_secret") != secret ||
			form.Get("grant_type") != "client_credentials" {
			t.Errorf("token request: client_id=%q grant_type=%q, secret sent=%v", form.Get("client_id"),
				form.Get("grant_type"), form.Get("client_secret") == secret)
		}
		if !strings.Contains(form.Get("scope"), "https://vault.azure.net/.default") {
			t.Errorf("scope = %q", form.Get("scope"))
		}
		return f.token
	})
	s := newStore(t, f, Config{AuthMethod: AuthServicePrincipal, ClientID: strings.ToUpper(clientID)}, true)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"}, "value", v1)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"}, "value", v1)
	if tokenRequests != 1 {
		t.Errorf("token requests = %d, want 1 (cached)", tokenRequests)
	}
}

func TestServicePrincipalFailures(t *testing.T) {
	clearAzureEnv(t)
	secret := canary(t)
	t.Setenv("AZURE_TENANT_ID", testTenant)
	t.Setenv("AZURE_CLIENT_ID", randomGUID(t))
	t.Setenv("AZURE_CLIENT_SECRET", secret)
	cases := []struct {
		name   string
		status int
		code   string
		kind   secrets.Kind
		detail string
	}{
		{"bad secret", 401, "invalid_client", secrets.AuthFailed, "token HTTP 401 invalid_client AADSTS7000215"},
		{"outage", 503, "temporarily_unavailable", secrets.StoreUnavailable, "token HTTP 503 temporarily_unavailable AADSTS7000215"},
		{"odd code", 400, secret, secrets.AuthFailed, "token HTTP 400 AADSTS7000215"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeAzure(t)
			leak := canary(t)
			tokenRequests := 0
			f.login = entraID(t, testTenant, func(w http.ResponseWriter, form url.Values) string {
				tokenRequests++
				entraError(w, c.status, c.code, 7000215, "Invalid client secret provided "+leak+" "+form.Get("client_secret"))
				return ""
			})
			s := newStore(t, f, Config{AuthMethod: AuthServicePrincipal}, true)
			_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
			e := wantError(t, err, c.kind, leak, secret, f.token)
			if e.Detail != c.detail {
				t.Errorf("Detail = %q, want %q", e.Detail, c.detail)
			}
			if c.kind == secrets.AuthFailed && !strings.Contains(e.Msg, "AZURE_CLIENT_SECRET") {
				t.Errorf("message does not say how to fix: %v", err)
			}
			if tokenRequests != 1 {
				t.Errorf("token requests = %d, want exactly 1 (no retries)", tokenRequests)
			}
		})
	}
	t.Run("tenant mismatch", func(t *testing.T) {
		// The vault's challenge names testTenant; the credential refuses another tenant locally.
		t.Setenv("AZURE_TENANT_ID", randomGUID(t))
		f := newFakeAzure(t)
		f.login = func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("token requested from another tenant: %s", r.URL.Path)
		}
		s := newStore(t, f, Config{AuthMethod: AuthServicePrincipal}, true)
		_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
		e := wantError(t, err, secrets.AuthFailed, secret)
		if !strings.Contains(e.Msg, "vault's tenant") {
			t.Errorf("message does not mention the tenant: %v", err)
		}
	})
	t.Run("login unreachable", func(t *testing.T) {
		f := newFakeAzure(t)
		f.dialOverride = func(host string) error {
			if strings.HasPrefix(host, "login.") {
				return &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
			}
			return nil
		}
		s := newStore(t, f, Config{AuthMethod: AuthServicePrincipal}, true)
		_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
		e := wantError(t, err, secrets.StoreUnavailable, secret)
		if !strings.Contains(e.Msg, "login.microsoftonline.com") {
			t.Errorf("message does not name the identity endpoint: %v", err)
		}
	})
}

func TestServicePrincipalCertificate(t *testing.T) {
	clearAzureEnv(t)
	clientID := randomGUID(t)
	path := filepath.Join(t.TempDir(), "agent.pem")
	writePEM(t, path)
	t.Setenv("AZURE_TENANT_ID", testTenant)
	t.Setenv("AZURE_CLIENT_ID", clientID)
	t.Setenv("AZURE_CLIENT_CERTIFICATE_PATH", path)
	f := newFakeAzure(t)
	f.put(testHost, "db", v1, "value")
	f.login = entraID(t, testTenant, func(w http.ResponseWriter, form url.Values) string {
		if form.Get("client_id") != clientID ||
			form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			strings.Count(form.Get("client_assertion"), ".") != 2 || form.Has("client_secret") {
			t.Errorf("token request is not a certificate client assertion: %v", form)
		}
		return f.token
	})
	s := newStore(t, f, Config{AuthMethod: AuthServicePrincipal}, true)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"}, "value", v1)
}

func TestManagedIdentityAppService(t *testing.T) {
	clearAzureEnv(t)
	clientID, header := randomGUID(t), canary(t)
	f := newFakeAzure(t)
	f.put(testHost, "db", v1, "value")
	calls := 0
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		q := r.URL.Query()
		if r.Header.Get("X-IDENTITY-HEADER") != header || q.Get("api-version") != "2019-08-01" ||
			q.Get("resource") != "https://vault.azure.net" || q.Get("client_id") != clientID {
			t.Errorf("App Service token request: %v (identity header sent: %v)", q, r.Header.Get("X-IDENTITY-HEADER") == header)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_on":"%d","resource":"https://vault.azure.net","token_type":"Bearer","client_id":%q}`,
			f.token, time.Now().Add(time.Hour).Unix(), clientID)
	}))
	defer endpoint.Close()
	t.Setenv("IDENTITY_ENDPOINT", endpoint.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", header)
	s := newStore(t, f, Config{ClientID: clientID}, true)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"}, "value", v1)
	if calls != 1 {
		t.Errorf("identity endpoint calls = %d, want 1", calls)
	}
}

func TestManagedIdentityIMDS(t *testing.T) {
	clearAzureEnv(t)
	assigned := randomGUID(t)
	f := newFakeAzure(t)
	f.put(testHost, "db", v1, "value")
	leak := canary(t)
	imdsCalls := 0
	f.imds = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imdsCalls++
		q := r.URL.Query()
		if r.URL.Path != "/metadata/identity/oauth2/token" || r.Header.Get("Metadata") != "true" ||
			q.Get("resource") != "https://vault.azure.net" {
			t.Errorf("IMDS request %s %v", r.URL.Path, q)
		}
		w.Header().Set("Content-Type", "application/json")
		if !q.Has("client_id") {
			_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":"3600","expires_on":"%d","resource":"https://vault.azure.net","token_type":"Bearer"}`,
				systemAssignedToken, time.Now().Add(time.Hour).Unix())
			return
		}
		if q.Get("client_id") != assigned {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_request","error_description":"Identity not found `+leak+`"}`)
			return
		}
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":"3600","expires_on":"%d","resource":"https://vault.azure.net","token_type":"Bearer","client_id":%q}`,
			f.token, time.Now().Add(time.Hour).Unix(), assigned)
	}))
	defer f.imds.Close()

	s := newStore(t, f, Config{ClientID: assigned}, true)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"}, "value", v1)

	if imdsCalls != 1 {
		t.Errorf("IMDS calls = %d, want 1", imdsCalls)
	}

	// The system-assigned identity: no client_id parameter (checked by the handler).
	s = newStore(t, f, Config{}, true)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"}, "value", v1)

	imdsCalls = 0
	other := randomGUID(t)
	s = newStore(t, f, Config{ClientID: other}, true)
	_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
	e := wantError(t, err, secrets.AuthFailed, leak, f.token)
	if !strings.Contains(e.Msg, other) || e.Detail != "token HTTP 400 invalid_request" {
		t.Errorf("error should name the identity and the IMDS code: %v", err)
	}
	if imdsCalls != 1 {
		t.Errorf("IMDS calls = %d, want exactly 1 (no retries)", imdsCalls)
	}
}

func TestManagedIdentityNotOnAzure(t *testing.T) {
	clearAzureEnv(t)
	f := newFakeAzure(t) // no IMDS: the dialer fails 169.254.169.254
	s := newStore(t, f, Config{ClientID: randomGUID(t)}, true)
	_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
	e := wantError(t, err, secrets.AuthFailed)
	if e.Detail != "IMDS unreachable" || !strings.Contains(e.Msg, AuthServicePrincipal) {
		t.Errorf("error should say no managed identity is available: %v", err)
	}
}

// ---- configuration ----

func TestNewValidatesConfig(t *testing.T) {
	clearAzureEnv(t)
	cases := []struct {
		name string
		cfg  Config
		kind secrets.Kind
		msgs []string
	}{
		{"defaults", Config{}, "", nil},
		{"user-assigned", Config{VaultName: "kv-prod-01", ClientID: "6a8f9c2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b"}, "", nil},
		{"vault short", Config{VaultName: "ab"}, secrets.InvalidInput, []string{"vaultName must be 3-24"}},
		{"vault long", Config{VaultName: strings.Repeat("a", 25)}, secrets.InvalidInput, []string{"3-24"}},
		{"vault digit first", Config{VaultName: "1vault"}, secrets.InvalidInput, []string{"start with a letter"}},
		{"vault hyphen end", Config{VaultName: "vault-"}, secrets.InvalidInput, []string{"end with a letter or digit"}},
		{"vault double hyphen", Config{VaultName: "my--vault"}, secrets.InvalidInput, []string{"consecutive hyphens"}},
		{"vault dot", Config{VaultName: "my.vault"}, secrets.InvalidInput, []string{"only letters, digits and hyphens"}},
		{"vault URL", Config{VaultName: "https://myvault.vault.azure.net"}, secrets.InvalidInput, []string{"vaultName"}},
		{"method", Config{AuthMethod: "client-secret"}, secrets.InvalidInput, []string{`authMethod "client-secret"`, AuthManagedIdentity, AuthWorkloadIdentity, AuthServicePrincipal}},
		{"workload identity without env", Config{AuthMethod: AuthWorkloadIdentity, ClientID: "6a8f9c2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b"}, secrets.AuthFailed,
			[]string{"set AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE"}},
		{"client id", Config{ClientID: "my-identity"}, secrets.InvalidInput, []string{"clientId must be the client id"}},
		{"all at once", Config{VaultName: "x", AuthMethod: "password", ClientID: "nope"}, secrets.InvalidInput,
			[]string{"vaultName", "authMethod", "clientId"}},
		{"sp without env", Config{AuthMethod: AuthServicePrincipal}, secrets.AuthFailed,
			[]string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"}},
		{"input and env problems together", Config{VaultName: "x", AuthMethod: AuthServicePrincipal}, secrets.InvalidInput,
			[]string{"vaultName", "AZURE_TENANT_ID"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if verr := c.cfg.Validate(); (verr == nil) != (c.kind != secrets.InvalidInput) {
				t.Errorf("Validate() = %v; want an error only for input problems", verr)
			}
			s, err := New(context.Background(), c.cfg)
			if c.kind == "" {
				if err != nil || s == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if s != nil {
				t.Error("New returned a Store with an error")
			}
			wantError(t, err, c.kind)
			for _, m := range c.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestNewServicePrincipalEnvironment(t *testing.T) {
	secret := canary(t)
	cases := []struct {
		name string
		env  map[string]string
		cfg  Config
		kind secrets.Kind
		msgs []string
	}{
		{"missing secret", map[string]string{"AZURE_TENANT_ID": testTenant, "AZURE_CLIENT_ID": "6a8f9c2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b"},
			Config{}, secrets.AuthFailed, []string{"set AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH)"}},
		{"missing tenant", map[string]string{"AZURE_CLIENT_ID": "6a8f9c2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b", "AZURE_CLIENT_SECRET": secret},
			Config{}, secrets.AuthFailed, []string{"set AZURE_TENANT_ID"}},
		{"bad client id", map[string]string{"AZURE_TENANT_ID": testTenant, "AZURE_CLIENT_ID": "app", "AZURE_CLIENT_SECRET": secret},
			Config{}, secrets.AuthFailed, []string{"AZURE_CLIENT_ID on the agent must be"}},
		{"bad tenant", map[string]string{"AZURE_TENANT_ID": "a/b", "AZURE_CLIENT_ID": "6a8f9c2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b", "AZURE_CLIENT_SECRET": secret},
			Config{}, secrets.AuthFailed, []string{"AZURE_TENANT_ID on the agent"}},
		{"other client id in input", map[string]string{"AZURE_TENANT_ID": testTenant, "AZURE_CLIENT_ID": "6a8f9c2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b", "AZURE_CLIENT_SECRET": secret},
			Config{ClientID: "00000000-0000-0000-0000-000000000001"}, secrets.InvalidInput, []string{"clientId names a different application"}},
		{"unreadable certificate", map[string]string{"AZURE_TENANT_ID": testTenant, "AZURE_CLIENT_ID": "6a8f9c2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b", "AZURE_CLIENT_CERTIFICATE_PATH": "/nonexistent/" + secret},
			Config{}, secrets.AuthFailed, []string{"cannot read the certificate"}},
		{"bad certificate", map[string]string{"AZURE_TENANT_ID": testTenant, "AZURE_CLIENT_ID": "6a8f9c2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b", "AZURE_CLIENT_CERTIFICATE_PATH": "server_test.go"},
			Config{}, secrets.AuthFailed, []string{"PEM or PKCS#12"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearAzureEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			c.cfg.AuthMethod = AuthServicePrincipal
			_, err := New(context.Background(), c.cfg)
			wantError(t, err, c.kind, secret)
			for _, m := range c.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestConfigIsComparable(t *testing.T) {
	cache := map[Config]bool{{VaultName: "a"}: true}
	if !cache[Config{VaultName: "a"}] {
		t.Error("equal configs are not the same map key")
	}
}
