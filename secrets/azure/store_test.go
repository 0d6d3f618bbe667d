package azure

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/secure-agent/secure-agent/secrets"
)

// ---- helpers ----

// newStore builds a Store against the fake, with the credential double unless cfg has one or
// names a method to test for real (real is true).
func newStore(t *testing.T, f *fakeAzure, cfg Config, real bool) *Store {
	t.Helper()
	cfg.HTTPClient = f.httpClient()
	if cfg.Credential == nil && !real {
		cfg.Credential = f.credential()
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func fetch(t *testing.T, s *Store, ref secrets.Ref) (*secrets.Secret, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Fetch(ctx, ref)
}

// mustFetch fetches and checks the value and version.
func mustFetch(t *testing.T, s *Store, ref secrets.Ref, value, version string) {
	t.Helper()
	sec, err := fetch(t, s, ref)
	if err != nil {
		t.Fatalf("Fetch(%v): %v", ref, err)
	}
	if string(sec.Value) != value {
		t.Errorf("Fetch(%v) value mismatch (len %d, want len %d)", ref, len(sec.Value), len(value))
	}
	if sec.Version != version {
		t.Errorf("Fetch(%v) version = %q, want %q", ref, sec.Version, version)
	}
}

// wantError checks err's kind and that neither its message nor its %+v form holds a canary.
func wantError(t *testing.T, err error, kind secrets.Kind, canaries ...string) *secrets.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", kind)
	}
	var e *secrets.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not a *secrets.Error: %v", err, err)
	}
	if e.Kind != kind {
		t.Errorf("kind = %s, want %s (%v)", e.Kind, kind, err)
	}
	if !errors.Is(err, kind) {
		t.Errorf("errors.Is(err, %s) is false", kind)
	}
	if e.Store != Name {
		t.Errorf("Store = %q, want %q", e.Store, Name)
	}
	noCanary(t, err, canaries...)
	return e
}

func noCanary(t *testing.T, err error, canaries ...string) {
	t.Helper()
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%v", err), fmt.Sprintf("%s", err)} {
		for _, c := range canaries {
			if c != "" && strings.Contains(text, c) {
				t.Errorf("error leaks canary %s: %s", c, text)
			}
		}
		if strings.Contains(text, "CANARY") {
			t.Errorf("error leaks a canary: %s", text)
		}
	}
}

func randomGUID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// warm fetches one secret so the client has seen the challenge, then clears the request log.
func warm(t *testing.T, f *fakeAzure, s *Store) {
	t.Helper()
	f.put(testHost, "warm", v1, "w")
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/warm"}, "w", v1)
	f.log()
}

// ---- fetching ----

func TestFetchJSONObjectSecret(t *testing.T) {
	f := newFakeAzure(t)
	value := `{"username":"etl","password":"` + canary(t) + `","port":5432}`
	f.put(testHost, "db-creds", v1, value)
	cred := f.credential()
	s := newStore(t, f, Config{Credential: cred}, false)

	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/db-creds"}, value, v1)

	reqs := f.log()
	if len(reqs) != 2 || reqs[0].Authorized || !reqs[1].Authorized {
		t.Fatalf("requests = %+v, want an unauthenticated challenge request then one authorized request", reqs)
	}
	if reqs[1].Path != "/secrets/db-creds/" && reqs[1].Path != "/secrets/db-creds" {
		t.Errorf("path = %q", reqs[1].Path)
	}
	if reqs[1].APIVersion == "" {
		t.Error("no api-version query parameter")
	}
	if cred.calls.Load() != 1 {
		t.Errorf("credential called %d times, want 1", cred.calls.Load())
	}

	// The client and its challenge are cached: the next Fetch is one request, no new token.
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/db-creds"}, value, v1)
	if reqs := f.log(); len(reqs) != 1 || !reqs[0].Authorized {
		t.Errorf("second Fetch sent %+v, want one authorized request", reqs)
	}
	if cred.calls.Load() != 1 {
		t.Errorf("credential called %d times after two fetches, want 1", cred.calls.Load())
	}
}

func TestFetchSingleStringSecret(t *testing.T) {
	f := newFakeAzure(t)
	value := "p@ss wörd\n\"quoted\" \\ " + canary(t)
	f.put(testHost, "pg-password", v2, value)
	s := newStore(t, f, Config{VaultName: "MyVault"}, false)
	mustFetch(t, s, secrets.Ref{Path: "pg-password"}, value, v2)
	mustFetch(t, s, secrets.Ref{Path: "https://MYVAULT.vault.azure.net:443/secrets/pg-password/"}, value, v2)
}

func TestFetchEmptySecret(t *testing.T) {
	f := newFakeAzure(t)
	f.put(testHost, "empty", v1, "")
	s := newStore(t, f, Config{}, false)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/empty"}, "", v1)
}

func TestFetchVersions(t *testing.T) {
	f := newFakeAzure(t)
	f.put(testHost, "rotating", v1, "old")
	f.put(testHost, "rotating", v2, "new")
	s := newStore(t, f, Config{VaultName: testVault}, false)

	mustFetch(t, s, secrets.Ref{Path: "rotating"}, "new", v2)
	mustFetch(t, s, secrets.Ref{Path: "rotating/" + v1}, "old", v1)
	mustFetch(t, s, secrets.Ref{Path: "rotating", Version: v1}, "old", v1)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/rotating/" + v1}, "old", v1)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/rotating/" + v1, Version: strings.ToUpper(v1)}, "old", v1)
	for _, r := range f.log() {
		if r.Authorized && strings.Contains(r.Path, "rotating/") && r.Version != v1 && r.Version != "" {
			t.Errorf("unexpected version requested: %+v", r)
		}
	}

	_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/rotating/" + v1, Version: v2})
	wantError(t, err, secrets.InvalidInput)
	if n := len(f.log()); n != 0 {
		t.Errorf("a conflicting version sent %d requests, want 0", n)
	}
}

func TestFetchNotFound(t *testing.T) {
	f := newFakeAzure(t)
	f.put(testHost, "exists", v1, "x")
	s := newStore(t, f, Config{VaultName: testVault}, false)

	_, err := fetch(t, s, secrets.Ref{Path: "missing"})
	e := wantError(t, err, secrets.SecretNotFound)
	if e.Detail != "HTTP 404 SecretNotFound" {
		t.Errorf("Detail = %q", e.Detail)
	}
	if !strings.Contains(e.Msg, testVault) {
		t.Errorf("message does not name the vault: %v", err)
	}
	_, err = fetch(t, s, secrets.Ref{Path: "exists", Version: v2})
	e = wantError(t, err, secrets.SecretNotFound)
	if !strings.Contains(e.Msg, "version") {
		t.Errorf("message does not mention the version: %v", err)
	}
}

func TestFetchAccessDenied(t *testing.T) {
	cases := []struct {
		inner, want string
	}{
		{"ForbiddenByRbac", "Key Vault Secrets User"},
		{"AccessDenied", `secret permission "get"`},
		{"ForbiddenByPolicy", `secret permission "get"`},
		{"ForbiddenByFirewall", "firewall"},
		{"SecretDisabled", "disabled"},
		{"", "Key Vault Secrets User"},
	}
	f := newFakeAzure(t)
	s := newStore(t, f, Config{}, false)
	for _, c := range cases {
		t.Run(c.inner, func(t *testing.T) {
			leak := canary(t)
			f.setVault(func(w http.ResponseWriter, r *http.Request, name, version string) bool {
				writeKVError(w, http.StatusForbidden, "Forbidden", "Caller is not authorized "+leak, c.inner)
				return true
			})
			_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
			e := wantError(t, err, secrets.AccessDenied, leak)
			if !strings.Contains(e.Msg, c.want) {
				t.Errorf("message %q does not say %q", e.Msg, c.want)
			}
			if want := strings.TrimSpace("HTTP 403 Forbidden " + c.inner); e.Detail != want {
				t.Errorf("Detail = %q, want %q", e.Detail, want)
			}
		})
	}
}

func TestFetchUnauthorized(t *testing.T) {
	f := newFakeAzure(t)
	cred := f.credential()
	s := newStore(t, f, Config{Credential: cred}, false)
	warm(t, f, s)
	leak := canary(t)
	f.setVault(func(w http.ResponseWriter, r *http.Request, name, version string) bool {
		w.Header().Set("WWW-Authenticate", `Bearer authorization="https://login.microsoftonline.com/`+testTenant+`", resource="https://vault.azure.net"`)
		writeKVError(w, http.StatusUnauthorized, "Unauthorized", "AKV10032: Invalid issuer "+leak, "")
		return true
	})
	_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
	e := wantError(t, err, secrets.AuthFailed, leak, f.token)
	if e.Detail != "HTTP 401 Unauthorized" {
		t.Errorf("Detail = %q", e.Detail)
	}
	// A 401 to an authorized request makes the SDK get a fresh token once (challenge protocol),
	// never more.
	if n := len(f.log()); n > 2 {
		t.Errorf("sent %d requests, want at most 2", n)
	}
}

func TestFetchThrottled(t *testing.T) {
	cases := []struct {
		header, value string
		want          time.Duration
	}{
		{"Retry-After", "7", 7 * time.Second},
		{"Retry-After", "100000", secrets.MaxRetryAfter},
		{"x-ms-retry-after-ms", "1500", 1500 * time.Millisecond},
		{"Retry-After", time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), 90 * time.Second},
	}
	f := newFakeAzure(t)
	s := newStore(t, f, Config{}, false)
	warm(t, f, s)
	for _, c := range cases {
		t.Run(c.header+"="+c.value, func(t *testing.T) {
			leak := canary(t)
			f.setVault(func(w http.ResponseWriter, r *http.Request, name, version string) bool {
				w.Header().Set(c.header, c.value)
				writeKVError(w, http.StatusTooManyRequests, "Throttled", "Rate limit exceeded "+leak, "")
				return true
			})
			start := time.Now()
			_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
			e := wantError(t, err, secrets.Throttled, leak)
			if time.Since(start) > 2*time.Second {
				t.Errorf("Fetch waited %s: the SDK must not sleep and retry", time.Since(start))
			}
			if d := e.RetryAfter - c.want; d < -2*time.Second || d > 0 {
				t.Errorf("RetryAfter = %s, want about %s", e.RetryAfter, c.want)
			}
			if secrets.RetryAfterOf(err) != e.RetryAfter || !secrets.Retryable(err) {
				t.Error("error is not a retryable Throttled with its delay")
			}
			if reqs := f.log(); len(reqs) != 1 {
				t.Errorf("sent %d requests, want exactly 1 (no SDK retries)", len(reqs))
			}
		})
	}
}

func TestFetchServerErrors(t *testing.T) {
	f := newFakeAzure(t)
	s := newStore(t, f, Config{}, false)
	warm(t, f, s)
	for _, status := range []int{500, 502, 503, 504, 408} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			leak := canary(t)
			f.setVault(func(w http.ResponseWriter, r *http.Request, name, version string) bool {
				w.Header().Set("Retry-After", "3")
				writeKVError(w, status, "InternalServerError", "boom "+leak, "")
				return true
			})
			_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
			e := wantError(t, err, secrets.StoreUnavailable, leak)
			if !secrets.Retryable(err) {
				t.Error("not retryable")
			}
			if want := "HTTP " + strconv.Itoa(status) + " InternalServerError"; e.Detail != want {
				t.Errorf("Detail = %q, want %q", e.Detail, want)
			}
			if reqs := f.log(); len(reqs) != 1 {
				t.Errorf("sent %d requests, want exactly 1 (no SDK retries)", len(reqs))
			}
		})
	}
}

func TestFetchBadRequestAndOddStatuses(t *testing.T) {
	cases := []struct {
		status int
		code   string
		kind   secrets.Kind
		detail string
	}{
		{400, "BadParameter", secrets.InvalidInput, "HTTP 400 BadParameter"},
		{409, "Conflict", secrets.InvalidInput, "HTTP 409 Conflict"},
		{302, "", secrets.StoreUnavailable, "HTTP 302"},
		{418, "Teapot", secrets.InvalidInput, "HTTP 418"}, // unknown codes are not shown
	}
	f := newFakeAzure(t)
	s := newStore(t, f, Config{}, false)
	warm(t, f, s)
	for _, c := range cases {
		t.Run(strconv.Itoa(c.status), func(t *testing.T) {
			leak := canary(t)
			f.setVault(func(w http.ResponseWriter, r *http.Request, name, version string) bool {
				if c.status == 302 {
					w.Header().Set("Location", "https://evil.example.com/?token="+leak)
				}
				writeKVError(w, c.status, c.code, leak, "")
				return true
			})
			_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
			e := wantError(t, err, c.kind, leak)
			if e.Detail != c.detail {
				t.Errorf("Detail = %q, want %q", e.Detail, c.detail)
			}
			if reqs := f.log(); len(reqs) != 1 {
				t.Errorf("sent %d requests, want 1 (no redirects followed)", len(reqs))
			}
		})
	}
}

func TestFetchErrorCodesAreNotEchoed(t *testing.T) {
	f := newFakeAzure(t)
	s := newStore(t, f, Config{}, false)
	for _, code := range []string{canary(t), "Forbidden " + canary(t), strings.Repeat("A", 500)} {
		leak := canary(t)
		f.setVault(func(w http.ResponseWriter, r *http.Request, name, version string) bool {
			w.Header().Set("x-ms-error-code", code)
			writeKVError(w, http.StatusForbidden, code, leak, code)
			return true
		})
		_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
		e := wantError(t, err, secrets.AccessDenied, leak, code)
		if e.Detail != "HTTP 403" {
			t.Errorf("Detail = %q, want the status only", e.Detail)
		}
	}
}

func TestFetchMalformedResponses(t *testing.T) {
	cases := map[string]func(w http.ResponseWriter, leak string){
		"not JSON": func(w http.ResponseWriter, leak string) {
			_, _ = io.WriteString(w, `{"value": "`+leak+`", "id": `)
		},
		"HTML": func(w http.ResponseWriter, leak string) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>"+leak+"</html>")
		},
		"empty body": func(w http.ResponseWriter, leak string) {},
		"no value": func(w http.ResponseWriter, leak string) {
			_, _ = io.WriteString(w, `{"id": "https://myvault.vault.azure.net/secrets/db/`+v1+`", "tags": {"x": "`+leak+`"}}`)
		},
		"no id": func(w http.ResponseWriter, leak string) {
			_, _ = io.WriteString(w, `{"value": "`+leak+`"}`)
		},
		"id of another secret": func(w http.ResponseWriter, leak string) {
			writeSecret(w, testHost, "other", v1, leak)
		},
		"id without version": func(w http.ResponseWriter, leak string) {
			_, _ = io.WriteString(w, `{"value": "`+leak+`", "id": "https://myvault.vault.azure.net/secrets/db"}`)
		},
		"id not a URL": func(w http.ResponseWriter, leak string) {
			_, _ = io.WriteString(w, `{"value": "`+leak+`", "id": "`+leak+`"}`)
		},
		"value not a string": func(w http.ResponseWriter, leak string) {
			_, _ = io.WriteString(w, `{"value": {"`+leak+`": 1}, "id": "https://myvault.vault.azure.net/secrets/db/`+v1+`"}`)
		},
	}
	f := newFakeAzure(t)
	s := newStore(t, f, Config{}, false)
	warm(t, f, s)
	for name, write := range cases {
		t.Run(name, func(t *testing.T) {
			leak := canary(t)
			f.setVault(func(w http.ResponseWriter, r *http.Request, _, _ string) bool {
				write(w, leak)
				return true
			})
			sec, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
			if sec != nil {
				t.Fatalf("got a secret from a malformed response")
			}
			e := wantError(t, err, secrets.StoreUnavailable, leak)
			if e.Detail != "malformed response" {
				t.Errorf("Detail = %q", e.Detail)
			}
		})
	}
	t.Run("other version than asked", func(t *testing.T) {
		leak := canary(t)
		f.setVault(func(w http.ResponseWriter, r *http.Request, name, _ string) bool {
			writeSecret(w, testHost, name, v2, leak)
			return true
		})
		_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db/" + v1})
		wantError(t, err, secrets.StoreUnavailable, leak)
	})
}

func TestFetchOversizeResponse(t *testing.T) {
	f := newFakeAzure(t)
	s := newStore(t, f, Config{}, false)
	warm(t, f, s)
	big := strings.Repeat("A", MaxResponseBytes+10)
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			leak := canary(t)
			f.setVault(func(w http.ResponseWriter, r *http.Request, name, _ string) bool {
				body := `{"value": "` + leak + big + `", "id": "https://myvault.vault.azure.net/secrets/db/` + v1 + `"}`
				if chunked {
					_, _ = io.WriteString(w, body[:100])
					w.(http.Flusher).Flush()
					_, _ = io.WriteString(w, body[100:])
				} else {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					_, _ = io.WriteString(w, body)
				}
				return true
			})
			_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
			e := wantError(t, err, secrets.StoreUnavailable, leak)
			if e.Detail != "response too large" {
				t.Errorf("Detail = %q", e.Detail)
			}
		})
	}
	// A secret of Key Vault's maximum size (25 KB) is fine.
	value := strings.Repeat("v", 25*1024)
	f.setVault(nil)
	f.put(testHost, "large", v1, value)
	mustFetch(t, s, secrets.Ref{Path: testURL + "/secrets/large"}, value, v1)
}

func TestFetchSlowServerHonoursDeadline(t *testing.T) {
	f := newFakeAzure(t)
	s := newStore(t, f, Config{}, false)
	warm(t, f, s)
	f.setVault(func(w http.ResponseWriter, r *http.Request, _, _ string) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Fetch(ctx, secrets.Ref{Path: testURL + "/secrets/warm"})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Fetch took %s after a 200ms deadline", el)
	}
	wantError(t, err, secrets.StoreUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(err, DeadlineExceeded) is false: %v", err)
	}
	if len(f.log()) != 1 {
		t.Error("want exactly one request")
	}

	// A cancelled context fails at once, without a request.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = s.Fetch(ctx, secrets.Ref{Path: testURL + "/secrets/warm"})
	wantError(t, err, secrets.StoreUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(err, Canceled) is false: %v", err)
	}
	if n := len(f.log()); n != 0 {
		t.Errorf("a cancelled Fetch sent %d requests", n)
	}
}

func TestFetchSlowTokenHonoursDeadline(t *testing.T) {
	f := newFakeAzure(t)
	cred := &blockingCredential{}
	s := newStore(t, f, Config{Credential: cred}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Fetch(ctx, secrets.Ref{Path: testURL + "/secrets/x"})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Fetch took %s after a 200ms deadline", el)
	}
	wantError(t, err, secrets.StoreUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(err, DeadlineExceeded) is false: %v", err)
	}
}

func TestFetchConcurrent(t *testing.T) {
	f := newFakeAzure(t)
	for i := range 4 {
		f.put(fmt.Sprintf("vault%d.vault.azure.net", i), "db", v1, strconv.Itoa(i))
	}
	s := newStore(t, f, Config{}, false)
	errs := make(chan error, 40)
	for g := range 40 {
		go func() {
			i := g % 4
			sec, err := fetch(t, s, secrets.Ref{Path: fmt.Sprintf("https://vault%d.vault.azure.net/secrets/db", i)})
			if err == nil && string(sec.Value) != strconv.Itoa(i) {
				err = fmt.Errorf("vault%d: wrong value", i)
			}
			errs <- err
		}()
	}
	for range 40 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// ---- authentication challenge, clouds and vaults ----

func TestFetchChallengeResourceMismatch(t *testing.T) {
	f := newFakeAzure(t)
	f.challenge = `Bearer authorization="https://login.microsoftonline.com/` + testTenant + `", resource="https://vault.attacker.example"`
	cred := f.credential()
	s := newStore(t, f, Config{Credential: cred}, false)
	_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
	e := wantError(t, err, secrets.StoreUnavailable)
	if e.Detail != "HTTP 401 challenge" {
		t.Errorf("Detail = %q", e.Detail)
	}
	if cred.calls.Load() != 0 {
		t.Error("a token was requested for a challenge naming another resource")
	}
}

func TestFetchMalformedChallengeDoesNotPanic(t *testing.T) {
	f := newFakeAzure(t)
	// The SDK indexes the 4th "/"-separated part of the authorization URL without checking.
	f.challenge = `Bearer authorization="x", resource="https://vault.azure.net"`
	s := newStore(t, f, Config{}, false)
	_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
	e := wantError(t, err, secrets.StoreUnavailable)
	if e.Detail != "malformed challenge" {
		t.Errorf("Detail = %q", e.Detail)
	}
}

func TestFetchChallengeWithoutHeader(t *testing.T) {
	f := newFakeAzure(t)
	f.challenge = " " // a 401 without a usable WWW-Authenticate header
	s := newStore(t, f, Config{}, false)
	_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
	wantError(t, err, secrets.AuthFailed)
}

func TestFetchSovereignClouds(t *testing.T) {
	for _, c := range []struct{ host, scope string }{
		{"cnvault.vault.azure.cn", "https://vault.azure.cn/.default"},
		{"govvault.vault.usgovcloudapi.net", "https://vault.usgovcloudapi.net/.default"},
		{"devault.vault.microsoftazure.de", "https://vault.microsoftazure.de/.default"},
	} {
		t.Run(c.host, func(t *testing.T) {
			f := newFakeAzure(t)
			f.put(c.host, "db", v1, "value")
			cred := f.credential()
			cred.scope = c.scope
			s := newStore(t, f, Config{Credential: cred}, false)
			mustFetch(t, s, secrets.Ref{Path: "https://" + c.host + "/secrets/db"}, "value", v1)
			if cred.calls.Load() != 1 {
				t.Errorf("credential calls = %d", cred.calls.Load())
			}
		})
	}
}

func TestFetchSeveralVaults(t *testing.T) {
	f := newFakeAzure(t)
	hosts := make([]string, maxCachedVaults+2)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("vault%d.vault.azure.net", i)
		f.put(hosts[i], "db", v1, hosts[i])
	}
	s := newStore(t, f, Config{}, false)
	for round := 0; round < 2; round++ {
		for _, h := range hosts {
			mustFetch(t, s, secrets.Ref{Path: "https://" + h + "/secrets/db"}, h, v1)
		}
	}
	if len(s.clients) != maxCachedVaults {
		t.Errorf("cached %d clients, want %d", len(s.clients), maxCachedVaults)
	}
	// Cached vaults answer in one request; vaults beyond the cache pay a challenge each time.
	f.log()
	mustFetch(t, s, secrets.Ref{Path: "https://" + hosts[0] + "/secrets/db"}, hosts[0], v1)
	if n := len(f.log()); n != 1 {
		t.Errorf("cached vault: %d requests, want 1", n)
	}
}

func TestFetchVaultNameMismatch(t *testing.T) {
	f := newFakeAzure(t)
	s := newStore(t, f, Config{VaultName: "othervault"}, false)
	_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
	e := wantError(t, err, secrets.InvalidInput)
	if !strings.Contains(e.Msg, "othervault") || !strings.Contains(e.Msg, testVault) {
		t.Errorf("message should name both vaults: %v", err)
	}
	if n := len(f.log()); n != 0 {
		t.Errorf("sent %d requests", n)
	}
}

func TestFetchNetworkFailures(t *testing.T) {
	f := newFakeAzure(t)
	f.dialOverride = func(host string) error {
		switch host {
		case "nosuchvault.vault.azure.net":
			return &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		case "flaky.vault.azure.net":
			return &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
		case "down.vault.azure.net":
			return &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		}
		return nil
	}
	s := newStore(t, f, Config{}, false)
	for host, want := range map[string]struct {
		kind   secrets.Kind
		detail string
	}{
		"nosuchvault.vault.azure.net": {secrets.SecretNotFound, "DNS not found"},
		"flaky.vault.azure.net":       {secrets.StoreUnavailable, "DNS"},
		"down.vault.azure.net":        {secrets.StoreUnavailable, "network"},
	} {
		_, err := fetch(t, s, secrets.Ref{Path: "https://" + host + "/secrets/db"})
		e := wantError(t, err, want.kind)
		if e.Detail != want.detail {
			t.Errorf("%s: Detail = %q, want %q", host, e.Detail, want.detail)
		}
		if !strings.Contains(e.Msg, host) {
			t.Errorf("%s: message does not name the host: %v", host, err)
		}
	}
}

func TestFetchUntrustedCertificate(t *testing.T) {
	f := newFakeAzure(t)
	hc := f.httpClient()
	hc.Transport.(*http.Transport).TLSClientConfig.RootCAs = nil // the system pool lacks the test CA
	s, err := New(context.Background(), Config{Credential: f.credential(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	_, err = fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
	e := wantError(t, err, secrets.StoreUnavailable)
	if e.Detail != "TLS" {
		t.Errorf("Detail = %q", e.Detail)
	}
}

// ---- credential failures (double) ----

func TestFetchCredentialFailures(t *testing.T) {
	leak := canary(t)
	resp := func(status int, header http.Header) *http.Response {
		return &http.Response{StatusCode: status, Header: header,
			Body: io.NopCloser(strings.NewReader(`{"error":"invalid_client","error_description":"` + leak + `"}`))}
	}
	cases := []struct {
		name   string
		err    error
		kind   secrets.Kind
		detail string
		after  time.Duration
	}{
		{"unavailable", azidentity.NewCredentialUnavailableError("no identity " + leak), secrets.AuthFailed, "", 0},
		{"plain", errors.New("boom " + leak), secrets.AuthFailed, "", 0},
		{"auth failed 401", &azidentity.AuthenticationFailedError{RawResponse: resp(401, http.Header{})}, secrets.AuthFailed, "token HTTP 401 invalid_client", 0},
		{"auth failed 503", &azidentity.AuthenticationFailedError{RawResponse: resp(503, http.Header{})}, secrets.StoreUnavailable, "token HTTP 503 invalid_client", 0},
		{"auth failed 429", &azidentity.AuthenticationFailedError{RawResponse: resp(429, http.Header{"Retry-After": {"11"}})}, secrets.Throttled, "token HTTP 429 invalid_client", 11 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeAzure(t)
			cred := f.credential()
			cred.err = c.err
			s := newStore(t, f, Config{Credential: cred}, false)
			_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
			e := wantError(t, err, c.kind, leak)
			if e.Detail != c.detail || e.RetryAfter != c.after {
				t.Errorf("Detail, RetryAfter = %q, %s; want %q, %s", e.Detail, e.RetryAfter, c.detail, c.after)
			}
			if !errors.Is(err, c.err) {
				t.Error("the credential's error is not the cause")
			}
		})
	}
}

// TestCanariesNeverInErrors drives Key Vault's answers across statuses with canaries as the
// secret value and in every place a response can carry text (error code, message, inner error,
// headers, redirect target, challenge parameters), and checks that no error shows one. Every
// other error test also checks, through wantError, that no "CANARY" string is ever shown.
func TestCanariesNeverInErrors(t *testing.T) {
	f := newFakeAzure(t)
	value := canary(t)
	f.put(testHost, "db", v1, value)
	s := newStore(t, f, Config{}, false)
	warm(t, f, s)
	for _, status := range []int{200, 201, 301, 302, 400, 401, 403, 404, 405, 409, 410, 412, 429, 500, 501, 502, 503, 504, 599} {
		leak := canary(t)
		f.setVault(func(w http.ResponseWriter, r *http.Request, _, _ string) bool {
			h := w.Header()
			for _, k := range []string{"x-ms-request-id", "x-ms-error-code", "Retry-After", "Content-Type"} {
				h.Set(k, leak)
			}
			h.Set("Location", "https://user:"+leak+"@example.com/?sig="+leak)
			if status == http.StatusUnauthorized {
				h.Set("WWW-Authenticate", `Bearer authorization="https://login.microsoftonline.com/`+testTenant+
					`", resource="https://vault.azure.net", error_description="`+leak+`"`)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"error":{"code":"`+leak+`","message":"`+value+` `+leak+
				`","innererror":{"code":"`+leak+`"}},"value":"`+value+`","id":"`+leak+`"}`)
			return true
		})
		_, err := fetch(t, s, secrets.Ref{Path: testURL + "/secrets/db"})
		if err == nil {
			t.Errorf("status %d: no error", status)
			continue
		}
		if secrets.KindOf(err) == "" {
			t.Errorf("status %d: unclassified error %v", status, err)
		}
		noCanary(t, err, value, leak, f.token)
	}
}

// blockingCredential never answers until its context ends.
type blockingCredential struct{}

func (blockingCredential) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	<-ctx.Done()
	return azcore.AccessToken{}, ctx.Err()
}
