package custom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/secrets"
)

func TestFetchJSONObjectSecret(t *testing.T) {
	const body = `{"username":"app","password":"p@ss"}`
	ts := newTLSServer(t, respond(200, "application/json", "  "+body+"\n", VersionHeader, "v7"))
	s := mustNew(t, ts.config(), testOptions(nil))
	sec, err := fetch(t, s, secrets.Ref{Path: "db/prod"})
	if err != nil {
		t.Fatal(err)
	}
	if got := sec.Value.Reveal(); got != body {
		t.Errorf("value = %q, want %q", got, body)
	}
	if sec.Version != "v7" {
		t.Errorf("version = %q, want v7", sec.Version)
	}
	if p := ts.lastRequest().URL.Path; p != "/db/prod" {
		t.Errorf("path = %q, want /db/prod", p)
	}
}

func TestFetchSingleStringSecret(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body, want string
	}{
		{"plain text kept byte for byte", "text/plain", "s3cret \n", "s3cret \n"},
		{"no content type", "", "\xff\x00raw", "\xff\x00raw"},
		{"octet stream that looks like JSON", "application/octet-stream", `{"a":1}`, `{"a":1}`},
		{"JSON string", "application/json; charset=utf-8", `"pa\"ss\u00e9\ud83d\ude00\n"`, "pa\"ssé😀\n"},
		{"vendor JSON type", "application/vnd.store+json", `"tok"`, "tok"},
		{"JSON number as text", "application/json", `12345`, "12345"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil // no sniffing
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				_, _ = w.Write([]byte(tc.body))
			})
			s := mustNew(t, ts.config(), testOptions(nil))
			sec, err := fetch(t, s, secrets.Ref{Path: "s"})
			if err != nil {
				t.Fatal(err)
			}
			if got := sec.Value.Reveal(); got != tc.want {
				t.Errorf("value = %q, want %q", got, tc.want)
			}
			if sec.Version != "" {
				t.Errorf("version = %q, want empty", sec.Version)
			}
		})
	}
}

func TestFetchValuePath(t *testing.T) {
	const body = `{"data":{"obj":{"k":"v"},"str":"s\u0041","num":1.50,"bool":true,"arr":["a",{"x":"y"}],"dup":"first","dup":"last","nul":null}}`
	for _, tc := range []struct{ path, want string }{
		{"data.obj", `{"k":"v"}`},
		{"data.str", "sA"},
		{"data.num", "1.50"},
		{"data.bool", "true"},
		{"data.arr", `["a",{"x":"y"}]`},
		{"data.arr.1.x", "y"},
		{"data.arr.0", "a"},
		{"data.dup", "last"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			ts := newTLSServer(t, respond(200, "text/plain", body)) // value_path makes the body JSON
			cfg := ts.config()
			cfg.ValuePath = tc.path
			sec, err := fetch(t, mustNew(t, cfg, testOptions(nil)), secrets.Ref{Path: "s"})
			if err != nil {
				t.Fatal(err)
			}
			if got := sec.Value.Reveal(); got != tc.want {
				t.Errorf("value = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("null is not found", func(t *testing.T) {
		ts := newTLSServer(t, respond(200, "application/json", body))
		cfg := ts.config()
		cfg.ValuePath = "data.nul"
		_, err := fetch(t, mustNew(t, cfg, testOptions(nil)), secrets.Ref{Path: "s"})
		wantKind(t, err, secrets.SecretNotFound)
	})
}

func TestFetchVersions(t *testing.T) {
	ts := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if v := r.URL.Query().Get("rev"); v != "" && r.URL.Query().Get("version") == "" {
			_, _ = fmt.Fprintf(w, `{"value":"at-%s","meta":{"rev":%s}}`, v, v)
			return
		}
		if v := r.URL.Query().Get("version"); v != "" {
			w.Header().Set(VersionHeader, "hdr-"+v)
			_, _ = fmt.Fprintf(w, `{"value":"at-%s","meta":{"rev":"body"}}`, v)
			return
		}
		_, _ = fmt.Fprint(w, `{"value":"current","meta":{"rev":"cur-1"}}`)
	})
	cfg := ts.config()
	cfg.ValuePath = "value"
	opts := testOptions(nil)
	opts.VersionPath = versionAt("meta.rev")
	s := mustNew(t, cfg, opts)

	sec, err := fetch(t, s, secrets.Ref{Path: "s"})
	if err != nil || sec.Value.Reveal() != "current" || sec.Version != "cur-1" {
		t.Fatalf("current: %v, %v, version %q", err, sec.Value.Reveal(), sec.Version)
	}
	if q := ts.lastRequest().URL.RawQuery; q != "" {
		t.Errorf("query without version = %q, want none", q)
	}
	sec, err = fetch(t, s, secrets.Ref{Path: "s", Version: "a b&c"})
	if err != nil || sec.Value.Reveal() != "at-a b&c" || sec.Version != "hdr-a b&c" {
		t.Fatalf("version header wins over version_path: %v, %q, %q", err, sec.Value.Reveal(), sec.Version)
	}
	if q := ts.lastRequest().URL.RawQuery; q != "version=a+b%26c" {
		t.Errorf("query = %q, want version=a+b%%26c", q)
	}

	cfg.VersionParam = "rev"
	s = mustNew(t, cfg, opts)
	sec, err = fetch(t, s, secrets.Ref{Path: "s", Version: "42"})
	if err != nil || sec.Value.Reveal() != "at-42" || sec.Version != "42" {
		t.Fatalf("version_param and numeric version_path: %v, %q, %q", err, sec.Value.Reveal(), sec.Version)
	}
}

// vaultKV2 serves GET /v1/secret/data/<path>?version=N like HashiCorp Vault's KV v2 engine.
func vaultKV2(token string) http.HandlerFunc {
	versions := []string{`{"username":"app","password":"v1-pass"}`, `{"username":"app","password":"v2-pass"}`, `{"username":"app","password":"v3-pass"}`}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("X-Vault-Token") != token {
			w.WriteHeader(http.StatusForbidden)
			_, _ = fmt.Fprint(w, `{"errors":["permission denied"]}`)
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != "/v1/secret/data/team/db" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = fmt.Fprint(w, `{"errors":[]}`)
			return
		}
		n := len(versions)
		if v := r.URL.Query().Get("version"); v != "" {
			_, _ = fmt.Sscan(v, &n)
		}
		if n < 1 || n > len(versions) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = fmt.Fprint(w, `{"errors":[]}`)
			return
		}
		_, _ = fmt.Fprintf(w, `{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":%s,"metadata":{"created_time":"2024-01-01T00:00:00Z","deletion_time":"","destroyed":false,"version":%d}},"wrap_info":null,"warnings":null,"auth":null}`, versions[n-1], n)
	}
}

// vaultAgent is the agent-side configuration of the Vault test store: its CA file and the
// version path of KV v2 answers, for 127.0.0.1 on the server's port only.
func vaultAgent(ts *testServer, env map[string]string) Options {
	opts := testOptions(env)
	port := ts.port()
	opts.CAFile = func(host string, p int) string {
		if host == "127.0.0.1" && p == port {
			return ts.caFile
		}
		return ""
	}
	opts.VersionPath = func(host string, p int) string {
		if host == "127.0.0.1" && p == port {
			return "data.metadata.version"
		}
		return ""
	}
	return opts
}

func TestVaultKVv2ThroughConfiguration(t *testing.T) {
	ts := newTLSServer(t, vaultKV2("hvs.vault-token"))
	raw := fmt.Sprintf(`{"store_url":%q,"secret_name":"team/db","version":2,
		"headers":{"X-Vault-Token":"VAULT_TOKEN"},"value_path":"data.data"}`, ts.URL+"/v1/secret/data/")
	cfg, ref, err := ParseConfig([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ref != (secrets.Ref{Path: "team/db", Version: "2"}) {
		t.Fatalf("ref = %+v", ref)
	}
	s := mustNew(t, cfg, vaultAgent(ts, map[string]string{"VAULT_TOKEN": "hvs.vault-token"}))
	sec, err := fetch(t, s, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := sec.Value.Reveal(); got != `{"username":"app","password":"v2-pass"}` || sec.Version != "2" {
		t.Errorf("got %q version %q", got, sec.Version)
	}
	sec, err = fetch(t, s, secrets.Ref{Path: "team/db"})
	if err != nil || !strings.Contains(sec.Value.Reveal(), "v3-pass") || sec.Version != "3" {
		t.Fatalf("latest: %v %q", err, sec.Version)
	}
	_, err = fetch(t, s, secrets.Ref{Path: "team/db", Version: "9"})
	wantKind(t, err, secrets.SecretNotFound)

	wrong := mustNew(t, cfg, vaultAgent(ts, map[string]string{"VAULT_TOKEN": "hvs.other"}))
	_, err = fetch(t, wrong, ref)
	wantKind(t, err, secrets.AccessDenied)
}

func TestRequestShape(t *testing.T) {
	ts := newTLSServer(t, respond(200, "text/plain", "v"))
	cfg := ts.config()
	cfg.StoreURL = ts.URL + "/base%20dir/"
	cfg.Headers = map[string]string{"x-api-key": "API_KEY", "X-Tenant": "TENANT"}
	cfg.BearerTokenEnv = "TOKEN"
	s := mustNew(t, cfg, testOptions(map[string]string{"API_KEY": "k-1", "TENANT": "t\t2", "TOKEN": "tok-3"}))
	if _, err := fetch(t, s, secrets.Ref{Path: "a b/c%d/ü?#;"}); err != nil {
		t.Fatal(err)
	}
	r := ts.lastRequest()
	if r.Method != http.MethodGet {
		t.Errorf("method = %s", r.Method)
	}
	if got, want := r.URL.EscapedPath(), "/base%20dir/a%20b/c%25d/%C3%BC%3F%23%3B"; got != want {
		t.Errorf("escaped path = %q, want %q", got, want)
	}
	for h, want := range map[string]string{
		"Accept": "application/json", "User-Agent": "secure-agent", "X-Api-Key": "k-1",
		"X-Tenant": "t\t2", "Authorization": "Bearer tok-3",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if ae := r.Header.Get("Accept-Encoding"); ae != "" {
		t.Errorf("Accept-Encoding = %q, want none (no transparent decompression)", ae)
	}
}

func TestStatusMapping(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter string
		kind       secrets.Kind
		wantDelay  time.Duration
	}{
		{400, "", secrets.InvalidInput, 0},
		{401, "", secrets.AuthFailed, 0},
		{403, "", secrets.AccessDenied, 0},
		{404, "", secrets.SecretNotFound, 0},
		{405, "", secrets.InvalidInput, 0},
		{408, "", secrets.StoreUnavailable, 0},
		{409, "", secrets.InvalidInput, 0},
		{410, "", secrets.SecretNotFound, 0},
		{418, "", secrets.InvalidInput, 0},
		{429, "7", secrets.Throttled, 7 * time.Second},
		{429, "", secrets.Throttled, 0},
		{429, "100000", secrets.Throttled, secrets.MaxRetryAfter},
		{500, "", secrets.StoreUnavailable, 0},
		{502, "", secrets.StoreUnavailable, 0},
		{503, "3", secrets.StoreUnavailable, 3 * time.Second},
		{504, "", secrets.StoreUnavailable, 0},
		{201, "", secrets.InvalidInput, 0},
		{204, "", secrets.InvalidInput, 0},
		{206, "", secrets.InvalidInput, 0},
	} {
		t.Run(fmt.Sprintf("%d_%s", tc.status, tc.retryAfter), func(t *testing.T) {
			ts := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				_, _ = fmt.Fprint(w, "error body")
			})
			_, err := fetch(t, mustNew(t, ts.config(), testOptions(nil)), secrets.Ref{Path: "s"})
			se := wantKind(t, err, tc.kind)
			if want := fmt.Sprintf("HTTP %d", tc.status); se.Detail != want {
				t.Errorf("detail = %q, want %q", se.Detail, want)
			}
			if se.RetryAfter != tc.wantDelay {
				t.Errorf("RetryAfter = %s, want %s", se.RetryAfter, tc.wantDelay)
			}
			if secrets.Retryable(err) != tc.kind.Retryable() {
				t.Errorf("Retryable = %v", secrets.Retryable(err))
			}
			if se.Store != Name || se.Ref != "s" {
				t.Errorf("store %q ref %q", se.Store, se.Ref)
			}
			if n := ts.requests.Load(); n != 1 {
				t.Errorf("server saw %d requests, want exactly 1 (no retries)", n)
			}
		})
	}
}

func TestRedirectIsRefused(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			target := newTLSServer(t, respond(200, "text/plain", "from target"))
			ts := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/s", status)
			})
			cfg := ts.config()
			cfg.Headers = map[string]string{"X-Token": "TOKEN"}
			s := mustNew(t, cfg, testOptions(map[string]string{"TOKEN": "t"}))
			_, err := fetch(t, s, secrets.Ref{Path: "s"})
			se := wantKind(t, err, secrets.InvalidInput)
			wantContains(t, err, "redirected", "store_url")
			if se.Detail != fmt.Sprintf("HTTP %d", status) {
				t.Errorf("detail = %q", se.Detail)
			}
			if n := target.requests.Load(); n != 0 {
				t.Errorf("redirect target saw %d requests, want 0", n)
			}
			if n := ts.requests.Load(); n != 1 {
				t.Errorf("store saw %d requests, want 1", n)
			}
		})
	}
}

func TestMalformedResponses(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body, valuePath, versionPath string
		headers                                         []string
		kind                                            secrets.Kind
		mention                                         string
	}{
		{"invalid JSON", "application/json", `{"a":`, "", "", nil, secrets.InvalidInput, "not valid JSON"},
		{"value_path on text", "text/plain", `hello`, "data", "", nil, secrets.InvalidInput, "not valid JSON"},
		{"missing value_path", "application/json", `{"data":{}}`, "data.data", "", nil, secrets.InvalidInput, "value_path"},
		{"value_path through a string", "application/json", `{"data":"x"}`, "data.value", "", nil, secrets.InvalidInput, "value_path"},
		{"index out of range", "application/json", `{"a":[1]}`, "a.1", "", nil, secrets.InvalidInput, "value_path"},
		{"missing version_path", "application/json", `{"v":"x"}`, "v", "meta.version", nil, secrets.InvalidInput, "version path"},
		{"version_path on object", "application/json", `{"v":"x","m":{}}`, "v", "m", nil, secrets.InvalidInput, "version path"},
		{"version_path on text", "text/plain", `x`, "", "m", nil, secrets.InvalidInput, "not valid JSON"},
		{"empty body", "text/plain", ``, "", "", nil, secrets.InvalidInput, "empty"},
		{"empty JSON string", "application/json", `""`, "", "", nil, secrets.InvalidInput, "empty"},
		{"JSON null body", "application/json", `null`, "", "", nil, secrets.SecretNotFound, "null"},
		{"overlong version header", "text/plain", `x`, "", "", []string{VersionHeader, strings.Repeat("v", 300)}, secrets.InvalidInput, VersionHeader},
		{"compressed body", "text/plain", `x`, "", "", []string{"Content-Encoding", "gzip"}, secrets.InvalidInput, "compressed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTLSServer(t, respond(200, tc.contentType, tc.body, tc.headers...))
			cfg := ts.config()
			cfg.ValuePath = tc.valuePath
			opts := testOptions(nil)
			opts.VersionPath = versionAt(tc.versionPath)
			_, err := fetch(t, mustNew(t, cfg, opts), secrets.Ref{Path: "s"})
			wantKind(t, err, tc.kind)
			wantContains(t, err, tc.mention)
		})
	}
}

func TestOversizeResponse(t *testing.T) {
	const limit = 1000
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
		ok      bool
	}{
		{"exactly the limit", limit, false, true},
		{"exactly the limit, chunked", limit, true, true},
		{"one byte over, with Content-Length", limit + 1, false, false},
		{"one byte over, chunked", limit + 1, true, false},
		{"far over, chunked", 50 * limit, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Repeat("x", tc.size)
			ts := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				if !tc.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				}
				for i := 0; i < len(body); i += 100 {
					_, _ = w.Write([]byte(body[i:min(i+100, len(body))]))
					if tc.chunked {
						w.(http.Flusher).Flush()
					}
				}
			})
			opts := testOptions(nil)
			opts.MaxResponseBytes = limit
			sec, err := fetch(t, mustNew(t, ts.config(), opts), secrets.Ref{Path: "s"})
			if tc.ok {
				if err != nil || len(sec.Value) != tc.size {
					t.Fatalf("err %v", err)
				}
				return
			}
			wantKind(t, err, secrets.InvalidInput)
			wantContains(t, err, "exceeds 1000 bytes")
		})
	}
}

// stall blocks until the client goes away (or 5 s), optionally after sending headers.
func stall(sendHeaders bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if sendHeaders {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
}

func TestSlowServerAgainstDeadline(t *testing.T) {
	for _, tc := range []struct {
		name        string
		sendHeaders bool
		timeout     time.Duration // config timeout; 0 uses the ctx deadline
		mention     string
	}{
		{"ctx deadline before headers", false, 0, "deadline"},
		{"ctx deadline during body", true, 0, "deadline"},
		{"configured timeout", false, 150 * time.Millisecond, "configured timeout of 150ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTLSServer(t, stall(tc.sendHeaders))
			cfg := ts.config()
			cfg.Timeout = tc.timeout
			s := mustNew(t, cfg, testOptions(nil))
			ctx := context.Background()
			if tc.timeout == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 150*time.Millisecond)
				defer cancel()
			}
			start := time.Now()
			_, err := s.Fetch(ctx, secrets.Ref{Path: "s"})
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Fetch took %s", d)
			}
			wantKind(t, err, secrets.StoreUnavailable)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("errors.Is(err, DeadlineExceeded) is false: %v", err)
			}
			wantContains(t, err, tc.mention)
			if n := ts.requests.Load(); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ts := newTLSServer(t, stall(false))
		s := mustNew(t, ts.config(), testOptions(nil))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := s.Fetch(ctx, secrets.Ref{Path: "s"})
		wantKind(t, err, secrets.StoreUnavailable)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("errors.Is(err, Canceled) is false: %v", err)
		}
	})
	t.Run("already done", func(t *testing.T) {
		ts := newTLSServer(t, respond(200, "text/plain", "v"))
		s := mustNew(t, ts.config(), testOptions(nil))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Fetch(ctx, secrets.Ref{Path: "s"})
		if !errors.Is(err, context.Canceled) || ts.requests.Load() != 0 {
			t.Errorf("err %v, requests %d", err, ts.requests.Load())
		}
	})
}

func TestTLSFailures(t *testing.T) {
	ts := newTLSServer(t, respond(200, "text/plain", "v"))
	plain := newHTTPServer(t, respond(200, "text/plain", "v"))
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	for _, tc := range []struct {
		name, url string
		trustCA   bool
		detail    string
		mention   []string
	}{
		{"unknown authority", ts.URL, false, "TLS unknown authority", []string{"customStores.caFiles", "SECURE_AGENT_CUSTOM_STORE_CA_FILES"}},
		{"hostname mismatch", "https://localhost:" + port, true, "TLS hostname mismatch", []string{"localhost"}},
		{"not TLS", strings.Replace(plain.URL, "http:", "https:", 1), false, "TLS handshake", []string{"scheme"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(nil)
			if !tc.trustCA {
				opts.CAFile = nil
			}
			s := mustNew(t, Config{StoreURL: tc.url}, opts)
			_, err := fetch(t, s, secrets.Ref{Path: "s"})
			se := wantKind(t, err, secrets.InvalidInput)
			if se.Detail != tc.detail {
				t.Errorf("detail = %q, want %q", se.Detail, tc.detail)
			}
			wantContains(t, err, tc.mention...)
		})
	}
	if n := ts.requests.Load(); n != 0 {
		t.Errorf("server answered %d requests despite TLS failures", n)
	}
}

func TestUnreachableStore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := mustNew(t, Config{StoreURL: "http://" + addr}, testOptions(nil))
	_, err = fetch(t, s, secrets.Ref{Path: "s"})
	se := wantKind(t, err, secrets.StoreUnavailable)
	if se.Detail != "connection refused" {
		t.Errorf("detail = %q", se.Detail)
	}

	opts := testOptions(nil)
	opts.HTTPClient = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, &net.DNSError{Err: "no such host", Name: "store.invalid", IsNotFound: true}
		},
	}}
	s = mustNew(t, Config{StoreURL: "https://store.invalid"}, opts)
	_, err = fetch(t, s, secrets.Ref{Path: "s"})
	se = wantKind(t, err, secrets.StoreUnavailable)
	if se.Detail != "DNS" {
		t.Errorf("detail = %q", se.Detail)
	}
	wantContains(t, err, "store.invalid")
}

func TestPlainHTTPToLoopback(t *testing.T) {
	ts := newHTTPServer(t, respond(200, "text/plain", "loopback-value"))
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	for _, u := range []string{ts.URL, "http://localhost:" + port} {
		cfg, ref, err := ParseConfig([]byte(fmt.Sprintf(`{"store_url":%q,"secret_name":"dev"}`, u)))
		if err != nil {
			t.Fatal(err)
		}
		sec, err := fetch(t, mustNew(t, cfg, testOptions(nil)), ref)
		if err != nil || sec.Value.Reveal() != "loopback-value" {
			t.Fatalf("%s: %v", u, err)
		}
	}
}

func TestEnvironmentAtFetch(t *testing.T) {
	ts := newTLSServer(t, respond(200, "text/plain", "v"))
	cfg := ts.config()
	cfg.Headers = map[string]string{"X-A": "VAR_A", "X-B": "VAR_B"}
	cfg.BearerTokenEnv = "VAR_T"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		mention []string
	}{
		{"missing", map[string]string{"VAR_A": "a"}, []string{`"VAR_B"`, `"VAR_T"`, "not set"}},
		{"empty", map[string]string{"VAR_A": "a", "VAR_B": "", "VAR_T": "t"}, []string{`"VAR_B"`, "empty"}},
		{"newline", map[string]string{"VAR_A": "a\r\nX-Evil: 1", "VAR_B": "b", "VAR_T": "t"}, []string{`"VAR_A"`, "not allowed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fetch(t, mustNew(t, cfg, testOptions(tc.env)), secrets.Ref{Path: "s"})
			wantKind(t, err, secrets.AuthFailed)
			wantContains(t, err, tc.mention...)
		})
	}
	if n := ts.requests.Load(); n != 0 {
		t.Errorf("server saw %d requests; a fetch without credentials must not be sent", n)
	}
}

func TestFetchValidatesRef(t *testing.T) {
	ts := newTLSServer(t, respond(200, "text/plain", "v"))
	s := mustNew(t, ts.config(), testOptions(nil))
	for _, ref := range []secrets.Ref{
		{Path: ""}, {Path: "../etc"}, {Path: "/abs"}, {Path: "a\nb"}, {Path: "s", Stage: "AWSCURRENT"},
		{Path: "s", Version: "v\x00"}, {Path: strings.Repeat("n", 5000)},
	} {
		_, err := fetch(t, s, ref)
		se := wantKind(t, err, secrets.InvalidInput)
		if len(se.Ref) > 700 {
			t.Errorf("Ref in error is %d bytes long", len(se.Ref))
		}
	}
	if n := ts.requests.Load(); n != 0 {
		t.Errorf("server saw %d requests for invalid references", n)
	}
}

func TestConcurrentFetches(t *testing.T) {
	ts := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, "value-of-"+r.URL.Path[1:])
	})
	s := mustNew(t, ts.config(), testOptions(nil))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			name := fmt.Sprint("s", i)
			sec, err := fetch(t, s, secrets.Ref{Path: name})
			if err != nil || sec.Value.Reveal() != "value-of-"+name {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	wg.Wait()
	if n := ts.requests.Load(); n != 16 {
		t.Errorf("requests = %d, want 16", n)
	}
}
