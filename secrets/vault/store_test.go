package vault

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/internal/vaulttest"
	"github.com/secure-agent/secure-agent/secrets"
)

// Canaries are unique strings planted as credentials, secret values and Vault's error text; none
// may ever appear in an error.
const (
	canaryToken    = "hvs.CANARYtoken5c1e"
	canarySecretID = "CANARYsecretid9a07"
	canaryJWT      = "eyJCANARYjwt.b3e2.f41d"
	canaryValue    = "CANARYvalue8e41"
	canaryVault    = " CANARYvaulttext2d6b"
	roleID         = "role-id-1234"
)

var canaries = []string{canaryToken, canarySecretID, canaryJWT, canaryValue, strings.TrimSpace(canaryVault)}

func assertNoCanary(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: expected an error", what)
		return
	}
	for _, form := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprint(err)} {
		for _, c := range canaries {
			if strings.Contains(form, c) {
				t.Errorf("%s: error leaks canary %s: %s", what, c, form)
			}
		}
	}
}

func wantKind(t *testing.T, err error, kind secrets.Kind) *secrets.Error {
	t.Helper()
	var e *secrets.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want a *secrets.Error of kind %s", err, err, kind)
	}
	if e.Kind != kind || !errors.Is(err, kind) {
		t.Fatalf("kind = %s, want %s: %v", e.Kind, kind, err)
	}
	if e.Store != Name {
		t.Errorf("Store = %q, want %q", e.Store, Name)
	}
	return e
}

func wantContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// testVault is a fake Vault served over TLS on loopback, with the usual fixtures: an AppRole,
// Kubernetes and JWT login and a token, all allowed to read secret/data/app/*, database/creds/*
// and sys/leases/*, and a KV v2 secret with two versions.
type testVault struct {
	*vaulttest.Server
	ts    *httptest.Server
	caPEM []byte
}

var allowed = []string{"secret/data/app/*", "kv1/app/*", "database/creds/*", "sys/leases/*"}

func newTestVault(t *testing.T) *testVault {
	t.Helper()
	f := vaulttest.New()
	f.ErrorSuffix = canaryVault
	f.AddLogin(vaulttest.Login{Method: vaulttest.MethodAppRole, RoleID: roleID, SecretID: canarySecretID, Paths: allowed})
	f.AddLogin(vaulttest.Login{Method: vaulttest.MethodKubernetes, Role: "agent", JWT: canaryJWT, Paths: allowed})
	f.AddLogin(vaulttest.Login{Method: vaulttest.MethodJWT, Mount: "oidc/ci", Role: "ci", JWT: canaryJWT, Paths: allowed})
	f.AddToken(canaryToken, 0, allowed...)
	f.PutKV("secret", "app/db", map[string]any{"username": "app", "password": "old-" + canaryValue})
	f.PutKV("secret", "app/db", map[string]any{"username": "app", "password": canaryValue})
	f.PutKV("secret", "other/db", map[string]any{"password": canaryValue})
	f.PutKV1("kv1", "app/db", map[string]any{"password": canaryValue})
	f.MountCreds("database")
	ts := httptest.NewUnstartedServer(f)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the tests make fail on purpose
	ts.StartTLS()
	t.Cleanup(ts.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	return &testVault{Server: f, ts: ts, caPEM: caPEM}
}

func (v *testVault) config(auth Auth) Config {
	return Config{Address: v.ts.URL, CACertPEM: v.caPEM, Auth: auth}
}

var (
	appRole    = Auth{Method: AuthAppRole, RoleID: roleID, SecretID: canarySecretID}
	kubernetes = Auth{Method: AuthKubernetes, Role: "agent", JWT: canaryJWT}
	jwtAuth    = Auth{Method: AuthJWT, Mount: "/oidc/ci/", Role: "ci", JWT: canaryJWT + "\n"}
	tokenAuth  = Auth{Method: AuthToken, Token: canaryToken}
)

func mustNew(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func fetch(t *testing.T, s *Store, path, version string) (*secrets.Secret, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Fetch(ctx, secrets.Ref{Path: path, Version: version})
}

// values decodes a secret's JSON object.
func values(t *testing.T, sec *secrets.Secret) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(sec.Value, &m); err != nil {
		t.Fatalf("the value is not a JSON object of strings: %v", err)
	}
	return m
}

func TestAuthMethods(t *testing.T) {
	for name, tc := range map[string]struct {
		auth  Auth
		login string
	}{
		"token":      {tokenAuth, ""},
		"approle":    {appRole, "/v1/auth/approle/login"},
		"kubernetes": {kubernetes, "/v1/auth/kubernetes/login"},
		"jwt":        {jwtAuth, "/v1/auth/oidc/ci/login"},
	} {
		t.Run(name, func(t *testing.T) {
			v := newTestVault(t)
			s := mustNew(t, v.config(tc.auth))
			if n := len(v.Requests()); n != 0 {
				t.Fatalf("New sent %d requests; it must not contact Vault", n)
			}
			for range 3 {
				sec, err := fetch(t, s, "secret/data/app/db", "")
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if got := values(t, sec); got["password"] != canaryValue || got["username"] != "app" || sec.Version != "2" || sec.Lease != nil {
					t.Errorf("secret %v version %q lease %v", got, sec.Version, sec.Lease)
				}
			}
			logins := 0
			for _, r := range v.Requests() {
				switch {
				case r.Path == tc.login:
					logins++
					if r.Token || r.Method != http.MethodPut {
						t.Errorf("login %s carried a token or was not a PUT: %+v", r.Path, r)
					}
				case !r.Token:
					t.Errorf("request without a token: %+v", r)
				}
			}
			if want := map[bool]int{true: 0, false: 1}[tc.login == ""]; logins != want {
				t.Errorf("%d logins, want %d (the token is kept)", logins, want)
			}
		})
	}
}

func TestLoginFailures(t *testing.T) {
	v := newTestVault(t)
	for name, tc := range map[string]struct {
		auth Auth
		want []string
	}{
		"wrong secret id":   {Auth{Method: AuthAppRole, RoleID: roleID, SecretID: canarySecretID + "x"}, []string{"approle login at auth/approle", "secret_id"}},
		"unknown role id":   {Auth{Method: AuthAppRole, RoleID: "nope", SecretID: canarySecretID}, []string{"role_id"}},
		"wrong k8s token":   {Auth{Method: AuthKubernetes, Role: "agent", JWT: canaryJWT + "x"}, []string{"kubernetes login at auth/kubernetes", "service account token"}},
		"unknown k8s role":  {Auth{Method: AuthKubernetes, Role: "nobody", JWT: canaryJWT}, []string{"role"}},
		"wrong jwt":         {Auth{Method: AuthJWT, Mount: "oidc/ci", Role: "ci", JWT: canaryJWT + "x"}, []string{"jwt login at auth/oidc/ci", "JWT"}},
		"no such mount":     {Auth{Method: AuthJWT, JWT: canaryJWT}, []string{"no auth method mounted at auth/jwt", "Auth.Mount"}},
		"dead token":        {Auth{Method: AuthToken, Token: canaryToken + "x"}, []string{"invalid, expired or revoked"}},
		"mount of approle ": {Auth{Method: AuthAppRole, Mount: "kubernetes", RoleID: roleID, SecretID: canarySecretID}, []string{"auth/kubernetes"}},
	} {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, v.config(tc.auth))
			_, err := fetch(t, s, "secret/data/app/db", "")
			wantKind(t, err, secrets.AuthFailed)
			wantContains(t, err, append(tc.want, "secret/data/app/db")...)
			assertNoCanary(t, name, err)
			if secrets.Retryable(err) {
				t.Error("a failed login must be final")
			}
		})
	}
}

func TestNamespace(t *testing.T) {
	v := newTestVault(t)
	v.Namespace = "team-a/"
	for _, auth := range []Auth{appRole, tokenAuth} {
		cfg := v.config(auth)
		cfg.Namespace = "/team-a"
		if _, err := fetch(t, mustNew(t, cfg), "secret/data/app/db", ""); err != nil {
			t.Fatalf("%s in the namespace: %v", auth.Method, err)
		}
		cfg.Namespace = ""
		_, err := fetch(t, mustNew(t, cfg), "secret/data/app/db", "")
		wantKind(t, err, secrets.AuthFailed)
		wantContains(t, err, "Namespace")
		assertNoCanary(t, "no namespace", err)
	}
	for _, r := range v.Requests() {
		if r.Namespace != "team-a" && r.Namespace != "" {
			t.Errorf("namespace header %q", r.Namespace)
		}
	}
}

func TestKV(t *testing.T) {
	v := newTestVault(t)
	s := mustNew(t, v.config(appRole))
	sec, err := fetch(t, s, "secret/data/app/db", "1")
	if err != nil || values(t, sec)["password"] != "old-"+canaryValue || sec.Version != "1" {
		t.Fatalf("pinned version: %v", err)
	}
	if q := v.Requests()[len(v.Requests())-1].Query; q != "version=1" {
		t.Errorf("query %q", q)
	}
	sec, err = fetch(t, s, "secret/data/app/db", "")
	if err != nil || sec.Version != "2" {
		t.Fatalf("latest: %v", err)
	}
	sec, err = fetch(t, s, "kv1/app/db", "")
	if err != nil || values(t, sec)["password"] != canaryValue || sec.Version != "" {
		t.Fatalf("KV v1: %v", err)
	}

	v.PutKV("secret", "app/deleted", map[string]any{"password": canaryValue})
	v.DeleteKV("secret", "app/deleted", 1)
	v.AddToken("reader", 0, "nomount/*", "secret/*", "kv1/*")
	for name, tc := range map[string]struct{ path, version string }{
		"missing path":        {"secret/data/app/nope", ""},
		"missing version":     {"secret/data/app/db", "9"},
		"no such mount":       {"nomount/data/app/db", ""},
		"missing kv1 path":    {"kv1/app/nope", ""},
		"deleted the version": {"secret/data/app/deleted", ""},
	} {
		s := mustNew(t, v.config(Auth{Method: AuthToken, Token: "reader"}))
		_, err := fetch(t, s, tc.path, tc.version)
		wantKind(t, err, secrets.SecretNotFound)
		wantContains(t, err, tc.path, "check the path")
		assertNoCanary(t, name, err)
	}
}

func TestAccessDenied(t *testing.T) {
	v := newTestVault(t)
	s := mustNew(t, v.config(appRole))
	_, err := fetch(t, s, "secret/data/other/db", "")
	wantKind(t, err, secrets.AccessDenied)
	wantContains(t, err, "secret/data/other/db", "policy")
	assertNoCanary(t, "denied", err)
	// A 403 logs in again once, in case the token died; the fresh token is denied too.
	if n := v.Count(http.MethodPut, "/v1/auth/approle/login"); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
	if n := v.Count(http.MethodGet, "/v1/secret/data/other/db"); n != 2 {
		t.Errorf("%d reads, want 2", n)
	}

	// The token method cannot log in again: it looks the token up, finds it alive, and reports
	// the path as denied.
	s = mustNew(t, v.config(tokenAuth))
	_, err = fetch(t, s, "secret/data/other/db", "")
	wantKind(t, err, secrets.AccessDenied)
	if n := v.Count(http.MethodGet, "/v1/auth/token/lookup-self"); n != 1 {
		t.Errorf("%d lookups, want 1", n)
	}
}

func TestExpiredTokenLogsInAgain(t *testing.T) {
	v := newTestVault(t)
	s := mustNew(t, v.config(appRole))
	if _, err := fetch(t, s, "secret/data/app/db", ""); err != nil {
		t.Fatal(err)
	}
	// Vault forgets the token (it expired on Vault's clock, or was revoked): the next read is
	// denied, the store logs in again and reads with the new token.
	v.Advance(2 * vaulttest.DefaultTokenTTL)
	if _, err := fetch(t, s, "secret/data/app/db", ""); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	v.RevokeTokens()
	if _, err := fetch(t, s, "secret/data/app/db", ""); err != nil {
		t.Fatalf("after the token was revoked: %v", err)
	}
	var statuses []int
	for _, r := range v.Requests() {
		if r.Path == "/v1/secret/data/app/db" {
			statuses = append(statuses, r.Status)
		}
	}
	if fmt.Sprint(statuses) != "[200 403 200 403 200]" {
		t.Errorf("read statuses %v", statuses)
	}
	if n := v.Count(http.MethodPut, "/v1/auth/approle/login"); n != 3 {
		t.Errorf("%d logins, want 3", n)
	}
}

func TestTokenRefreshedBeforeItsTTLEnds(t *testing.T) {
	v := newTestVault(t)
	s := mustNew(t, v.config(appRole))
	var mu sync.Mutex
	now := time.Now()
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	if _, err := fetch(t, s, "secret/data/app/db", ""); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(vaulttest.DefaultTokenTTL - 30*time.Second) // within the refresh margin
	mu.Unlock()
	if _, err := fetch(t, s, "secret/data/app/db", ""); err != nil {
		t.Fatal(err)
	}
	if n := v.Count(http.MethodPut, "/v1/auth/approle/login"); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
	for _, r := range v.Requests() {
		if r.Status != http.StatusOK {
			t.Errorf("a request failed: %+v (the refresh must come before the token expires)", r)
		}
	}
}

func TestConcurrentFetchesLogInOnce(t *testing.T) {
	v := newTestVault(t)
	s := mustNew(t, v.config(kubernetes))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := s.Fetch(context.Background(), secrets.Ref{Path: "secret/data/app/db"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := v.Count(http.MethodPut, "/v1/auth/kubernetes/login"); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
}

func TestSealedAndThrottled(t *testing.T) {
	v := newTestVault(t)
	s := mustNew(t, v.config(appRole))
	v.SetSealed(true)
	_, err := fetch(t, s, "secret/data/app/db", "")
	e := wantKind(t, err, secrets.StoreUnavailable)
	wantContains(t, err, "sealed", "secret/data/app/db")
	if e.Detail != "HTTP 503" || !secrets.Retryable(err) {
		t.Errorf("detail %q retryable %v", e.Detail, secrets.Retryable(err))
	}
	assertNoCanary(t, "sealed", err)
	v.SetSealed(false)

	if _, err := fetch(t, s, "secret/data/app/db", ""); err != nil {
		t.Fatal(err)
	}
	v.Throttle(1, 7*time.Second)
	_, err = fetch(t, s, "secret/data/app/db", "")
	e = wantKind(t, err, secrets.Throttled)
	if e.RetryAfter != 7*time.Second {
		t.Errorf("RetryAfter = %s", e.RetryAfter)
	}
	assertNoCanary(t, "throttled", err)
}

func TestDynamicCredentials(t *testing.T) {
	v := newTestVault(t)
	v.LeaseTTL = 10 * time.Minute
	v.MaxLeaseTTL = time.Hour
	var mu sync.Mutex
	var created, dropped []string
	v.Creds = func(role string) (string, string, error) {
		mu.Lock()
		defer mu.Unlock()
		u := fmt.Sprintf("v-%s-%d", role, len(created))
		created = append(created, u)
		return u, canaryValue, nil
	}
	v.Revoke = func(username string) error {
		mu.Lock()
		defer mu.Unlock()
		dropped = append(dropped, username)
		return nil
	}
	s := mustNew(t, v.config(appRole))
	sec, err := fetch(t, s, "database/creds/catalog-reader", "")
	if err != nil {
		t.Fatal(err)
	}
	got := values(t, sec)
	if got["username"] != "v-catalog-reader-0" || got["password"] != canaryValue {
		t.Errorf("credentials %v", got)
	}
	l := sec.Lease
	if l == nil || !strings.HasPrefix(l.ID, "database/creds/catalog-reader/") || l.TTL != 10*time.Minute || !l.Renewable {
		t.Fatalf("lease %+v", l)
	}
	if s := fmt.Sprint(sec); strings.Contains(s, canaryValue) {
		t.Errorf("the formatted secret leaks: %s", s)
	}

	ctx := context.Background()
	before, _ := v.Lease(l.ID)
	ttl, err := s.Renew(ctx, l.ID, 30*time.Minute)
	if err != nil || ttl != 30*time.Minute {
		t.Fatalf("Renew: %s, %v", ttl, err)
	}
	after, _ := v.Lease(l.ID)
	if after.Renewals != 1 || !after.Expires.After(before.Expires) {
		t.Errorf("lease after renewal: %+v", after)
	}
	// The max TTL caps a renewal.
	if ttl, err = s.Renew(ctx, l.ID, 5*time.Hour); err != nil || ttl > time.Hour || ttl < 59*time.Minute {
		t.Errorf("Renew past the max TTL: %s, %v", ttl, err)
	}

	if err := s.Revoke(ctx, l.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if fmt.Sprint(dropped) != "[v-catalog-reader-0]" {
		t.Errorf("the Revoke hook dropped %v", dropped)
	}
	if st, _ := v.Lease(l.ID); !st.Revoked || st.RevokedBy != "revoke" || st.Renewals != 2 {
		t.Errorf("lease %+v", st)
	}
	if err := s.Revoke(ctx, l.ID); err != nil {
		t.Errorf("a second Revoke: %v", err)
	}
	if len(dropped) != 1 {
		t.Errorf("the hook ran again: %v", dropped)
	}
	_, err = s.Renew(ctx, l.ID, time.Minute)
	wantKind(t, err, secrets.LeaseNotFound)
	wantContains(t, err, l.ID)
	assertNoCanary(t, "renew revoked", err)

	// A lease whose TTL passed is expired by Vault; renewing it fails, revoking it is a no-op.
	sec, err = fetch(t, s, "database/creds/catalog-reader", "")
	if err != nil {
		t.Fatal(err)
	}
	v.Advance(11 * time.Minute)
	if ids := v.ExpireDue(); len(ids) != 1 || ids[0] != sec.Lease.ID {
		t.Errorf("expired %v", ids)
	}
	_, err = s.Renew(ctx, sec.Lease.ID, time.Minute)
	wantKind(t, err, secrets.LeaseNotFound)
	if err := s.Revoke(ctx, sec.Lease.ID); err != nil {
		t.Errorf("revoking an expired lease: %v", err)
	}
	if fmt.Sprint(dropped) != "[v-catalog-reader-0 v-catalog-reader-1]" {
		t.Errorf("dropped %v", dropped)
	}
}

func TestLeaseOperationErrors(t *testing.T) {
	v := newTestVault(t)
	v.AddToken("no-leases", 0, "database/creds/*")
	s := mustNew(t, v.config(Auth{Method: AuthToken, Token: "no-leases"}))
	sec, err := fetch(t, s, "database/creds/r", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = s.Renew(ctx, sec.Lease.ID, time.Minute)
	wantKind(t, err, secrets.AccessDenied)
	wantContains(t, err, "sys/leases/renew", sec.Lease.ID)
	err = s.Revoke(ctx, sec.Lease.ID)
	wantKind(t, err, secrets.AccessDenied)
	wantContains(t, err, "sys/leases/revoke")

	for _, id := range []string{"", "a b", "x\n", strings.Repeat("x", MaxLeaseIDLen+1), canaryToken + "\x00"} {
		_, err := s.Renew(ctx, id, time.Minute)
		wantKind(t, err, secrets.InvalidInput)
		assertNoCanary(t, "lease id", err)
		wantKind(t, s.Revoke(ctx, id), secrets.InvalidInput)
	}
	_, err = s.Renew(ctx, sec.Lease.ID, -time.Second)
	wantKind(t, err, secrets.InvalidInput)
}

func TestPathChecks(t *testing.T) {
	v := newTestVault(t)
	v.AddToken("root", 0, "*")
	s := mustNew(t, v.config(Auth{Method: AuthToken, Token: "root"}))
	for _, ref := range []secrets.Ref{
		{Path: ""},
		{Path: "/secret/data/app/db"},
		{Path: "v1/../secret/data/app/db"},
		{Path: "secret/data/app/../../../auth/token/lookup-self"},
		{Path: "secret/data/app/db/"},
		{Path: "secret//data/app/db"},
		{Path: "secret/data/app/db?version=1"},
		{Path: "secret/data/app/db#x"},
		{Path: "secret/data/app%2Fdb"},
		{Path: "secret/data/app\ndb"},
		{Path: "auth/token/lookup-self"},
		{Path: "team-a/auth/token/lookup-self"},
		{Path: "sys/leases/lookup"},
		{Path: "identity/entity/name/x"},
		{Path: strings.Repeat("a/", MaxPathLen)},
		{Path: "secret/data/app/db", Stage: "AWSCURRENT"},
		{Path: "secret/data/app/db", Version: "latest"},
		{Path: "secret/data/app/db", Version: "0"},
		{Path: "secret/data/app/db", Version: "01"},
		{Path: "secret/data/app/db", Version: "-1"},
		{Path: "kv1/app/db", Version: "1"},
		{Path: "database/creds/r", Version: "1"},
	} {
		_, err := s.Fetch(context.Background(), ref)
		wantKind(t, err, secrets.InvalidInput)
	}
	if n := len(v.Requests()); n != 0 {
		t.Errorf("%d requests sent for refused paths", n)
	}
	// A segment named like Vault's API after the data segment is an ordinary secret name.
	v.PutKV("secret", "app/auth", map[string]any{"k": "v"})
	if _, err := fetch(t, s, "secret/data/app/auth", ""); err != nil {
		t.Errorf("secret/data/app/auth: %v", err)
	}
	// A hidden reference is never shown.
	_, err := s.Fetch(context.Background(), secrets.Ref{Path: canaryValue + "/../x", Hidden: true})
	wantKind(t, err, secrets.InvalidInput)
	assertNoCanary(t, "hidden", err)
}

func TestNewRefuses(t *testing.T) {
	ok := Config{Address: "https://vault.internal:8200", Auth: appRole}
	if _, err := New(context.Background(), ok); err != nil {
		t.Fatalf("a valid configuration: %v", err)
	}
	for _, addr := range []string{"http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200", "https://10.0.0.1", "https://[2001:db8::1]:8200/"} {
		cfg := ok
		cfg.Address = addr
		if _, err := New(context.Background(), cfg); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"plain http":          {func(c *Config) { c.Address = "http://vault.internal:8200" }, "plain http is allowed only to a loopback host"},
		"plain http to an IP": {func(c *Config) { c.Address = "http://10.0.0.1:8200" }, "must use https"},
		"numeric loopback":    {func(c *Config) { c.Address = "http://127.1:8200" }, "does not connect to"},
		"other scheme":        {func(c *Config) { c.Address = "unix:///run/vault.sock" }, "Address"},
		"no address":          {func(c *Config) { c.Address = "" }, "Address"},
		"user info":           {func(c *Config) { c.Address = "https://u:" + canaryToken + "@vault.internal" }, "user name or password"},
		"path":                {func(c *Config) { c.Address = "https://vault.internal/v1" }, "path"},
		"query":               {func(c *Config) { c.Address = "https://vault.internal/?token=" + canaryToken }, "query"},
		"bad port":            {func(c *Config) { c.Address = "https://vault.internal:99999" }, "port"},
		"zone":                {func(c *Config) { c.Address = "https://[fe80::1%25eth0]:8200" }, "zone"},
		"namespace":           {func(c *Config) { c.Namespace = "a/../b" }, "Namespace"},
		"CA":                  {func(c *Config) { c.CACertPEM = []byte("not pem " + canaryToken) }, "CACertPEM"},
		"method":              {func(c *Config) { c.Auth.Method = canaryToken }, "Auth.Method"},
		"no method":           {func(c *Config) { c.Auth = Auth{Token: canaryToken} }, "Auth.Method is empty"},
		"token missing":       {func(c *Config) { c.Auth = Auth{Method: AuthToken} }, "Auth.Token is required"},
		"token with space":    {func(c *Config) { c.Auth = Auth{Method: AuthToken, Token: "hvs.a " + canaryToken} }, "Auth.Token"},
		"token with approle":  {func(c *Config) { c.Auth.Token = canaryToken }, "Auth.Token is not used by the approle method"},
		"no role id":          {func(c *Config) { c.Auth.RoleID = "" }, "Auth.RoleID is required"},
		"k8s without role":    {func(c *Config) { c.Auth = Auth{Method: AuthKubernetes, JWT: canaryJWT} }, "Auth.Role is required"},
		"k8s without jwt":     {func(c *Config) { c.Auth = Auth{Method: AuthKubernetes, Role: "r"} }, "Auth.JWT is required"},
		"jwt with secret id":  {func(c *Config) { c.Auth = Auth{Method: AuthJWT, JWT: canaryJWT, SecretID: canarySecretID} }, "Auth.SecretID is not used"},
		"jwt control":         {func(c *Config) { c.Auth = Auth{Method: AuthJWT, JWT: canaryJWT + "\x00x"} }, "Auth.JWT"},
		"bad mount":           {func(c *Config) { c.Auth.Mount = "app role" }, "Auth.Mount"},
		"token method mount":  {func(c *Config) { c.Auth = Auth{Method: AuthToken, Token: canaryToken, Mount: "x"} }, "Auth.Mount is not used"},
		"transport and CA": {func(c *Config) {
			c.CACertPEM = newTestVault(t).caPEM
			c.HTTPClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("x") })}
		}, "not an *http.Transport"},
	} {
		cfg := ok
		tc.mutate(&cfg)
		_, err := New(context.Background(), cfg)
		if err == nil {
			t.Errorf("%s: New accepted it", name)
			continue
		}
		wantKind(t, err, secrets.InvalidInput)
		wantContains(t, err, tc.want)
		assertNoCanary(t, name, err)
		if name != "transport and CA" {
			if verr := cfg.Validate(); verr == nil || verr.Error() != err.Error() {
				t.Errorf("%s: Validate = %v, New = %v", name, verr, err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(ctx, ok)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("New with a cancelled ctx: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestPlainHTTPToLoopback(t *testing.T) {
	f := vaulttest.New()
	f.AddToken(canaryToken, 0, "secret/*")
	f.PutKV("secret", "x", map[string]any{"a": "b"})
	ts := httptest.NewServer(f)
	defer ts.Close()
	s := mustNew(t, Config{Address: ts.URL, Auth: tokenAuth})
	if _, err := fetch(t, s, "secret/data/x", ""); err != nil {
		t.Fatal(err)
	}
}

func TestCanariesNeverInErrors(t *testing.T) {
	v := newTestVault(t)
	for _, auth := range []Auth{appRole, kubernetes, jwtAuth, tokenAuth} {
		s := mustNew(t, v.config(auth))
		for _, p := range []string{"secret/data/other/db", "secret/data/app/nope", "database/creds/x"} {
			v.Throttle(0, 0)
			_, err := fetch(t, s, p, "")
			if p == "database/creds/x" {
				if err != nil {
					t.Fatal(err)
				}
				continue
			}
			assertNoCanary(t, auth.Method+" "+p, err)
		}
		v.SetSealed(true)
		_, err := fetch(t, s, "secret/data/app/db", "")
		assertNoCanary(t, "sealed", err)
		v.SetSealed(false)
		v.Throttle(1, time.Second)
		_, err = fetch(t, s, "secret/data/app/db", "")
		assertNoCanary(t, "throttled", err)
	}
	// Every wrong credential, echoed in Vault's text by a careless proxy.
	echo := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", canaryValue)
		status := map[bool]int{true: 400, false: 403}[strings.HasSuffix(r.URL.Path, "/login")]
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []string{fmt.Sprint(body, r.Header, canaryValue)}})
	}))
	defer echo.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: echo.Certificate().Raw})
	for _, auth := range []Auth{appRole, kubernetes, jwtAuth, tokenAuth} {
		s := mustNew(t, Config{Address: echo.URL, CACertPEM: caPEM, Auth: auth})
		_, err := fetch(t, s, "secret/data/app/db", "")
		assertNoCanary(t, "echo "+auth.Method, err)
		_, err = s.Renew(context.Background(), "database/creds/x/1", time.Minute)
		assertNoCanary(t, "echo renew "+auth.Method, err)
		assertNoCanary(t, "echo revoke "+auth.Method, s.Revoke(context.Background(), "database/creds/x/1"))
	}
	// Answers that carry the value but cannot be used.
	for name, body := range map[string]string{
		"value not an object":    `{"data":{"data":"` + canaryValue + `","metadata":{"version":1}}}`,
		"not JSON":               `{"data":{"data":{"password":"` + canaryValue + `"}`,
		"bad lease":              `{"lease_id":"a b ` + canaryValue + `","lease_duration":60,"data":{"password":"` + canaryValue + `"}}`,
		"wrapped":                `{"wrap_info":{"token":"` + canaryToken + `"},"data":{"password":"` + canaryValue + `"}}`,
		"other version":          `{"data":{"data":{"password":"` + canaryValue + `"},"metadata":{"version":"` + canaryValue + `"}}}`,
		"string data":            `{"data":"` + canaryValue + `"}`,
		"login without a token":  `{"auth":{"client_token":"","lease_duration":60}}`,
		"login with a bad token": `{"auth":{"client_token":"a b ` + canaryValue + `","lease_duration":60}}`,
	} {
		ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if strings.HasSuffix(r.URL.Path, "/login") && !strings.HasPrefix(name, "login") {
				_, _ = w.Write([]byte(`{"auth":{"client_token":"hvs.ok","lease_duration":60}}`))
				return
			}
			_, _ = w.Write([]byte(body))
		}))
		caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
		s := mustNew(t, Config{Address: ts.URL, CACertPEM: caPEM, Auth: appRole})
		_, err := fetch(t, s, "secret/data/app/db", "")
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			assertNoCanary(t, name, err)
		}
		ts.Close()
	}
}

func TestEnvironmentIsIgnored(t *testing.T) {
	v := newTestVault(t)
	t.Setenv("VAULT_TOKEN", canaryToken)
	t.Setenv("VAULT_NAMESPACE", "elsewhere")
	t.Setenv("VAULT_WRAP_TTL", "5m")
	t.Setenv("VAULT_HEADERS", `{"X-Extra":"`+canaryValue+`"}`)
	t.Setenv("VAULT_ADDR", "https://elsewhere.example.com")
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_MAX_RETRIES", "5")
	var headers []http.Header
	var mu sync.Mutex
	inner := v.ts.Config.Handler
	v.ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Clone())
		mu.Unlock()
		inner.ServeHTTP(w, r)
	})
	s := mustNew(t, v.config(appRole))
	if _, err := fetch(t, s, "secret/data/app/db", ""); err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		if h.Get("X-Vault-Wrap-TTL") != "" || h.Get("X-Extra") != "" || h.Get("X-Vault-Namespace") != "" || h.Get("X-Vault-Token") == canaryToken {
			t.Errorf("the environment leaked into a request: %v", h)
		}
	}
	// Retries are off: a 503 is asked once.
	v.SetSealed(true)
	before := len(v.Requests())
	_, err := fetch(t, s, "secret/data/app/db", "")
	wantKind(t, err, secrets.StoreUnavailable)
	if n := len(v.Requests()) - before; n != 1 {
		t.Errorf("%d requests for one Fetch against a sealed Vault", n)
	}
	// And a malformed variable the library cannot read fails New without quoting it.
	t.Setenv("VAULT_HEADERS", `{"X-Vault-Token":"`+canaryToken+`"}`)
	_, err = New(context.Background(), v.config(appRole))
	wantKind(t, err, secrets.InvalidInput)
	wantContains(t, err, "VAULT_")
	assertNoCanary(t, "env", err)
}

func TestHTTPClientIsUsedAndNotModified(t *testing.T) {
	v := newTestVault(t)
	var dials atomic.Int32
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	cfg := v.config(tokenAuth)
	cfg.HTTPClient = &http.Client{Transport: base}
	s := mustNew(t, cfg)
	if _, err := fetch(t, s, "secret/data/app/db", ""); err != nil {
		t.Fatal(err)
	}
	if dials.Load() == 0 {
		t.Error("the caller's dialer was not used")
	}
	if base.TLSClientConfig != nil || cfg.HTTPClient.CheckRedirect != nil {
		t.Error("the caller's client was modified")
	}
	// Without CACertPEM the fake's certificate is not trusted.
	cfg.CACertPEM = nil
	_, err := fetch(t, mustNew(t, cfg), "secret/data/app/db", "")
	e := wantKind(t, err, secrets.InvalidInput)
	if e.Detail != "TLS unknown authority" {
		t.Errorf("detail %q", e.Detail)
	}
	wantContains(t, err, "CACertPEM")
	assertNoCanary(t, "TLS", err)
}

func TestDialerRefusalIsFinal(t *testing.T) {
	v := newTestVault(t)
	cfg := v.config(tokenAuth)
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, &secrets.Error{Kind: secrets.PolicyDenied, Msg: "destination not allowed by the agent's policy"}
	}}}
	_, err := fetch(t, mustNew(t, cfg), "secret/data/app/db", "")
	e := wantKind(t, err, secrets.PolicyDenied)
	if e.Detail != "destination refused" || secrets.Retryable(err) {
		t.Errorf("detail %q", e.Detail)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer ts.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	s := mustNew(t, Config{Address: ts.URL, CACertPEM: caPEM, Auth: tokenAuth})
	_, err := fetch(t, s, "secret/data/app/db", "")
	wantKind(t, err, secrets.StoreUnavailable)
	wantContains(t, err, "redirect")
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

func TestNetworkFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := mustNew(t, Config{Address: "http://" + addr, Auth: appRole})
	_, err = fetch(t, s, "secret/data/app/db", "")
	e := wantKind(t, err, secrets.StoreUnavailable)
	if e.Detail != "connection refused" {
		t.Errorf("detail %q", e.Detail)
	}
	assertNoCanary(t, "refused", err)

	// A deadline while Vault does not answer wraps the context's error.
	block := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer ts.Close()
	defer close(block)
	s = mustNew(t, Config{Address: ts.URL, Auth: tokenAuth})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = s.Fetch(ctx, secrets.Ref{Path: "secret/data/app/db"})
	wantKind(t, err, secrets.StoreUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the error does not wrap the deadline: %v", err)
	}
	wantContains(t, err, "secret/data/app/db")
	_, err = s.Renew(ctx, "database/creds/x/1", time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Renew: %v", err)
	}

	// An answer larger than the limit is refused.
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"password":"` + strings.Repeat(canaryValue, MaxResponseBytes/len(canaryValue)+1) + `"}}`))
	}))
	defer big.Close()
	_, err = fetch(t, mustNew(t, Config{Address: big.URL, Auth: tokenAuth}), "secret/data/app/db", "")
	e = wantKind(t, err, secrets.StoreUnavailable)
	if e.Detail != "oversize" {
		t.Errorf("detail %q", e.Detail)
	}
	assertNoCanary(t, "oversize", err)
}

func TestClose(t *testing.T) {
	v := newTestVault(t)
	for _, auth := range []Auth{tokenAuth, appRole} {
		s := mustNew(t, v.config(auth))
		if _, err := fetch(t, s, "secret/data/app/db", ""); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		if auth.Method == AuthToken {
			_, err := fetch(t, s, "secret/data/app/db", "")
			wantKind(t, err, secrets.StoreUnavailable)
		}
	}
}

func TestStatusClassification(t *testing.T) {
	type answer struct {
		status int
		errors string
	}
	var mu sync.Mutex
	current := answer{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a := current
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/login") {
			_, _ = w.Write([]byte(`{"auth":{"client_token":"hvs.ok","lease_duration":3600}}`))
			return
		}
		w.Header().Set("Retry-After", "4")
		w.WriteHeader(a.status)
		if a.status != http.StatusNoContent {
			_, _ = w.Write([]byte(`{"errors":["` + a.errors + canaryValue + `"]}`))
		}
	}))
	defer ts.Close()
	s := mustNew(t, Config{Address: ts.URL, Auth: appRole})
	ctx := context.Background()
	lease := "database/creds/r/abc"
	for _, tc := range []struct {
		answer
		fetch, renew, revoke secrets.Kind
		retryAfter           bool
	}{
		{answer{400, "bad"}, secrets.InvalidInput, secrets.LeaseNotFound, secrets.InvalidInput, false},
		{answer{400, "invalid lease ID"}, secrets.InvalidInput, secrets.LeaseNotFound, "", false},
		{answer{401, ""}, secrets.AuthFailed, secrets.AuthFailed, secrets.AuthFailed, false},
		{answer{404, ""}, secrets.SecretNotFound, secrets.LeaseNotFound, secrets.InvalidInput, false},
		{answer{405, ""}, secrets.InvalidInput, secrets.InvalidInput, secrets.InvalidInput, false},
		{answer{412, ""}, secrets.StoreUnavailable, secrets.StoreUnavailable, secrets.StoreUnavailable, true},
		{answer{418, ""}, secrets.InvalidInput, secrets.InvalidInput, secrets.InvalidInput, false},
		{answer{429, ""}, secrets.Throttled, secrets.Throttled, secrets.Throttled, true},
		{answer{500, ""}, secrets.StoreUnavailable, secrets.StoreUnavailable, secrets.StoreUnavailable, true},
		{answer{502, ""}, secrets.StoreUnavailable, secrets.StoreUnavailable, secrets.StoreUnavailable, true},
		{answer{503, "standby"}, secrets.StoreUnavailable, secrets.StoreUnavailable, secrets.StoreUnavailable, true},
		{answer{204, ""}, secrets.SecretNotFound, secrets.StoreUnavailable, "", false},
	} {
		mu.Lock()
		current = tc.answer
		mu.Unlock()
		name := fmt.Sprintf("HTTP %d %s", tc.status, tc.errors)
		_, err := fetch(t, s, "secret/data/app/db", "")
		e := wantKind(t, err, tc.fetch)
		if want := fmt.Sprintf("HTTP %d", tc.status); e.Detail != want && tc.status != 204 {
			t.Errorf("%s: detail %q", name, e.Detail)
		}
		if got := e.RetryAfter == 4*time.Second; got != tc.retryAfter {
			t.Errorf("%s: RetryAfter %s", name, e.RetryAfter)
		}
		assertNoCanary(t, name, err)
		_, err = s.Renew(ctx, lease, time.Minute)
		wantKind(t, err, tc.renew)
		wantContains(t, err, "renewing lease \""+lease+"\"")
		assertNoCanary(t, name, err)
		err = s.Revoke(ctx, lease)
		if tc.revoke == "" {
			if err != nil {
				t.Errorf("%s: Revoke: %v", name, err)
			}
		} else {
			wantKind(t, err, tc.revoke)
			assertNoCanary(t, name, err)
		}
	}
}
