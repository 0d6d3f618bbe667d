package vaulttest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// client returns the official Vault client for the fake, without retries and with no token.
func client(t *testing.T, f *Server) *api.Client {
	t.Helper()
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	cfg := api.DefaultConfig()
	cfg.Address = ts.URL
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.ClearToken()
	c.ClearNamespace()
	return c
}

func status(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func TestOfficialClientAgainstTheFake(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.LeaseTTL = time.Minute
	f.MaxLeaseTTL = 10 * time.Minute
	var mu sync.Mutex
	var dropped []string
	f.Creds = func(role string) (string, string, error) { return "u-" + role, "p", nil }
	f.Revoke = func(u string) error { mu.Lock(); defer mu.Unlock(); dropped = append(dropped, u); return nil }
	f.AddLogin(Login{Method: MethodAppRole, RoleID: "rid", SecretID: "sid", Paths: []string{"secret/data/*", "kv/*", "database/creds/*", "sys/leases/*"}, TTL: 20 * time.Minute})
	f.AddLogin(Login{Method: MethodKubernetes, Role: "agent", JWT: "k8s-jwt", Paths: []string{"secret/data/*"}})
	f.AddLogin(Login{Method: MethodJWT, Mount: "ci", Role: "ci", JWT: "ci-jwt", Paths: []string{"secret/data/*"}})
	f.PutKV("secret", "app/db", map[string]any{"password": "one"})
	if v := f.PutKV("secret", "app/db", map[string]any{"password": "two"}); v != 2 {
		t.Fatalf("version %d", v)
	}
	f.PutKV1("kv", "app", map[string]any{"k": "v"})
	f.MountCreds("database")
	c := client(t, f)

	login, err := c.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{"role_id": "rid", "secret_id": "sid"})
	if err != nil || login.Auth == nil || !strings.HasPrefix(login.Auth.ClientToken, "hvs.") || login.Auth.LeaseDuration != 1200 || !login.Auth.Renewable {
		t.Fatalf("approle login: %+v, %v", login, err)
	}
	for path, body := range map[string]map[string]any{
		"auth/kubernetes/login": {"role": "agent", "jwt": "k8s-jwt"},
		"auth/ci/login":         {"role": "ci", "jwt": "ci-jwt"},
	} {
		if s, err := c.Logical().WriteWithContext(ctx, path, body); err != nil || s.Auth.ClientToken == "" || s.Auth.LeaseDuration != int(DefaultTokenTTL/time.Second) {
			t.Errorf("%s: %+v, %v", path, s, err)
		}
	}
	c.SetToken(login.Auth.ClientToken)

	self, err := c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil || self.Data["id"] != login.Auth.ClientToken {
		t.Errorf("lookup-self: %v", err)
	}
	kv, err := c.KVv2("secret").Get(ctx, "app/db")
	if err != nil || kv.Data["password"] != "two" || kv.VersionMetadata.Version != 2 {
		t.Fatalf("KVv2 latest: %+v, %v", kv, err)
	}
	kv, err = c.KVv2("secret").GetVersion(ctx, "app/db", 1)
	if err != nil || kv.Data["password"] != "one" || kv.VersionMetadata.Version != 1 {
		t.Fatalf("KVv2 version 1: %+v, %v", kv, err)
	}
	kv1, err := c.KVv1("kv").Get(ctx, "app")
	if err != nil || kv1.Data["k"] != "v" {
		t.Fatalf("KVv1: %v", err)
	}
	f.DeleteKV("secret", "app/db", 1)
	// As from Vault, a deleted version answers 404 with its metadata and no data.
	if kv, err := c.KVv2("secret").GetVersion(ctx, "app/db", 1); err != nil || kv.Data != nil || kv.VersionMetadata.DeletionTime.IsZero() {
		t.Errorf("a deleted version: %+v, %v", kv, err)
	}

	creds, err := c.Logical().ReadWithContext(ctx, "database/creds/reader")
	if err != nil || creds.Data["username"] != "u-reader" || creds.LeaseDuration != 60 || !creds.Renewable ||
		!strings.HasPrefix(creds.LeaseID, "database/creds/reader/") {
		t.Fatalf("creds: %+v, %v", creds, err)
	}
	renewed, err := c.Sys().RenewWithContext(ctx, creds.LeaseID, 300)
	if err != nil || renewed.LeaseDuration != 300 || renewed.LeaseID != creds.LeaseID {
		t.Fatalf("renew: %+v, %v", renewed, err)
	}
	renewed, err = c.Sys().RenewWithContext(ctx, creds.LeaseID, 3600)
	if err != nil || renewed.LeaseDuration > 600 || renewed.LeaseDuration < 590 {
		t.Errorf("renew past the max TTL: %+v, %v", renewed, err)
	}
	if err := c.Sys().RevokeWithContext(ctx, creds.LeaseID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if l, _ := f.Lease(creds.LeaseID); !l.Revoked || l.RevokedBy != "revoke" || l.Renewals != 2 || l.Username != "u-reader" {
		t.Errorf("lease %+v", l)
	}
	err = c.Sys().RevokeWithContext(ctx, creds.LeaseID)
	if status(err) != 400 || !strings.Contains(err.Error(), "invalid lease ID") {
		t.Errorf("second revoke: %v", err)
	}
	if _, err := c.Sys().RenewWithContext(ctx, creds.LeaseID, 60); status(err) != 400 {
		t.Errorf("renewing a revoked lease: %v", err)
	}
	if !slices.Equal(dropped, []string{"u-reader"}) {
		t.Errorf("dropped %v", dropped)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.AddToken("t", 0, "secret/data/app/*")
	f.AddToken("short", time.Minute, "secret/data/app/*")
	f.AddLogin(Login{Method: MethodAppRole, RoleID: "rid", SecretID: "sid"})
	f.PutKV("secret", "app/db", map[string]any{"a": "b"})
	f.PutKV("secret", "other/db", map[string]any{"a": "b"})
	c := client(t, f)

	read := func(token, path string, query ...string) error {
		c.SetToken(token)
		var q map[string][]string
		if len(query) == 2 {
			q = map[string][]string{query[0]: {query[1]}}
		}
		_, err := c.Logical().ReadRawWithDataWithContext(ctx, path, q)
		return err
	}
	for _, tc := range []struct {
		token, path string
		status      int
		text        string
	}{
		{"", "secret/data/app/db", 403, "permission denied"},
		{"nope", "secret/data/app/db", 403, "permission denied"},
		{"t", "secret/data/other/db", 403, "permission denied"},
		{"t", "secret/data/app/missing", 404, ""},
		{"t", "secret/data/app/db", 404, ""},
	} {
		var q []string
		if tc.status == 404 && tc.path == "secret/data/app/db" {
			q = []string{"version", "7"}
		}
		err := read(tc.token, tc.path, q...)
		if status(err) != tc.status || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s with %q: %v", tc.path, tc.token, err)
		}
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{"role_id": "rid", "secret_id": "x"}); status(err) != 400 {
		t.Errorf("wrong secret id: %v", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/nothing/login", map[string]any{}); status(err) != 404 {
		t.Errorf("no such mount: %v", err)
	}
	c.SetToken("t")
	if _, err := c.Logical().WriteWithContext(ctx, "secret/data/app/db", map[string]any{}); status(err) != 405 {
		t.Errorf("write: %v", err)
	}

	// Tokens expire on the server's clock, and can be revoked.
	if err := read("short", "secret/data/app/db"); err != nil {
		t.Fatal(err)
	}
	f.Advance(2 * time.Minute)
	if err := read("short", "secret/data/app/db"); status(err) != 403 {
		t.Errorf("expired token: %v", err)
	}
	f.RevokeTokens()
	if err := read("t", "secret/data/app/db"); status(err) != 403 {
		t.Errorf("revoked token: %v", err)
	}
	f.AddToken("t", 0, "secret/data/app/*")

	f.SetSealed(true)
	if err := read("t", "secret/data/app/db"); status(err) != 503 || !strings.Contains(err.Error(), "Vault is sealed") {
		t.Errorf("sealed: %v", err)
	}
	f.SetSealed(false)

	f.Throttle(1, 3*time.Second)
	c.SetToken("t")
	resp, err := c.Logical().ReadRawWithContext(ctx, "secret/data/app/db")
	if status(err) != 429 || resp == nil || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("throttled: %v", err)
	}
	if err := read("t", "secret/data/app/db"); err != nil {
		t.Errorf("after the throttled request: %v", err)
	}

	f.ErrorSuffix = " (planted)"
	if err := read("t", "secret/data/other/db"); !strings.Contains(err.Error(), "permission denied (planted)") {
		t.Errorf("error suffix: %v", err)
	}

	reqs := f.Requests()
	if len(reqs) == 0 || reqs[0].Token || reqs[0].Status != 403 || reqs[0].Path != "/v1/secret/data/app/db" || reqs[0].Method != http.MethodGet {
		t.Errorf("first request %+v", reqs[0])
	}
	if reqs[4].Query != "version=7" {
		t.Errorf("query %q", reqs[4].Query)
	}
}

func TestNamespace(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.Namespace = "team-a"
	f.AddLogin(Login{Method: MethodAppRole, RoleID: "rid", SecretID: "sid", Paths: []string{"secret/data/*"}})
	f.PutKV("secret", "x", map[string]any{"a": "b"})
	c := client(t, f)
	body := map[string]any{"role_id": "rid", "secret_id": "sid"}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/approle/login", body); status(err) != 404 {
		t.Errorf("login outside the namespace: %v", err)
	}
	c.SetNamespace("team-a/")
	login, err := c.Logical().WriteWithContext(ctx, "auth/approle/login", body)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(login.Auth.ClientToken)
	if _, err := c.KVv2("secret").Get(ctx, "x"); err != nil {
		t.Errorf("read in the namespace: %v", err)
	}
	c.ClearNamespace()
	if _, err := c.KVv2("secret").Get(ctx, "x"); status(err) != 403 {
		t.Errorf("read outside the namespace: %v", err)
	}
	if r := f.Requests()[1]; r.Namespace != "team-a/" || r.Status != 200 {
		t.Errorf("request %+v", r)
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.LeaseTTL = time.Minute
	f.AddToken("t", 0, "database/creds/*", "sys/leases/*")
	f.MountCreds("database")
	failing := true
	var mu sync.Mutex
	var dropped []string
	f.Revoke = func(u string) error {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return errors.New("the database is down")
		}
		dropped = append(dropped, u)
		return nil
	}
	c := client(t, f)
	c.SetToken("t")
	a, err := c.Logical().ReadWithContext(ctx, "database/creds/r")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Logical().ReadWithContext(ctx, "database/creds/r")
	if err != nil {
		t.Fatal(err)
	}
	if ids := f.ExpireDue(); len(ids) != 0 {
		t.Errorf("expired early: %v", ids)
	}
	// A failing hook leaves the lease in place: revoke answers 500, expiry tries again.
	if err := c.Sys().RevokeWithContext(ctx, b.LeaseID); status(err) != 500 {
		t.Errorf("revoke with a failing hook: %v", err)
	}
	f.Advance(2 * time.Minute)
	if ids := f.ExpireDue(); len(ids) != 0 {
		t.Errorf("expired with a failing hook: %v", ids)
	}
	if l, _ := f.Lease(a.LeaseID); l.Revoked || l.RevokeFailures != 1 {
		t.Errorf("lease %+v", l)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	stop := f.StartExpiry(5 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		la, _ := f.Lease(a.LeaseID)
		lb, _ := f.Lease(b.LeaseID)
		if la.Revoked && lb.Revoked {
			if la.RevokedBy != "expiry" {
				t.Errorf("lease %+v", la)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ticker did not expire the leases: %+v %+v", la, lb)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	stop()
	if len(f.Leases()) != 2 || len(dropped) != 2 {
		t.Errorf("leases %v, dropped %v", f.Leases(), dropped)
	}
	if _, err := c.Sys().RenewWithContext(ctx, a.LeaseID, 60); status(err) != 400 {
		t.Errorf("renewing an expired lease: %v", err)
	}
}
