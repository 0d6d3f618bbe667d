package custom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/secure-agent/secure-agent/secrets"
)

func TestParseConfigValid(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		wantCfg Config
		wantRef secrets.Ref
	}{
		{
			`{"store_url":"https://custom-secret-store.example.com","secret_name":"my-custom-secret"}`,
			Config{StoreURL: "https://custom-secret-store.example.com"},
			secrets.Ref{Path: "my-custom-secret"},
		},
		{
			`{"store_url":"https://vault.example.com:8200/v1/secret/data","secret_name":"team/db","version":3,
			  "version_param":"v","headers":{"X-Vault-Token":"VAULT_TOKEN"},"bearer_token_env":"TOKEN",
			  "ca_file":"/etc/ssl/vault.pem","value_path":"data.data","version_path":"data.metadata.version","timeout":"30s"}`,
			Config{StoreURL: "https://vault.example.com:8200/v1/secret/data", VersionParam: "v",
				Headers: map[string]string{"X-Vault-Token": "VAULT_TOKEN"}, BearerTokenEnv: "TOKEN",
				CAFile: "/etc/ssl/vault.pem", ValuePath: "data.data", VersionPath: "data.metadata.version",
				Timeout: 30 * time.Second},
			secrets.Ref{Path: "team/db", Version: "3"},
		},
		{
			`{"store_url":"http://127.0.0.2:8080","secret_name":"a","version":"v-1"}`,
			Config{StoreURL: "http://127.0.0.2:8080"}, secrets.Ref{Path: "a", Version: "v-1"},
		},
		{`{"store_url":"http://[::1]:1/x","secret_name":"a"}`, Config{StoreURL: "http://[::1]:1/x"}, secrets.Ref{Path: "a"}},
		{`{"store_url":"HTTP://LocalHost","secret_name":"a"}`, Config{StoreURL: "HTTP://LocalHost"}, secrets.Ref{Path: "a"}},
	} {
		cfg, ref, err := ParseConfig([]byte(tc.raw))
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		if !reflect.DeepEqual(cfg, tc.wantCfg) || ref != tc.wantRef {
			t.Errorf("%s:\n got %+v %+v\nwant %+v %+v", tc.raw, cfg, ref, tc.wantCfg, tc.wantRef)
		}
	}
}

func TestParseConfigInvalid(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		mention []string
	}{
		{``, []string{"JSON object"}},
		{`[]`, []string{"JSON object"}},
		{`{"store_url":`, []string{"JSON object", "invalid"}},
		{`{"store_url":"https://a"} {}`, []string{"after the object"}},
		{`{"secret_name":"a"}`, []string{"store_url is required"}},
		{`{"store_url":"https://a"}`, []string{"secret_name is required"}},
		{`{"store_url":"http://example.com","secret_name":"a"}`, []string{"must use https", "loopback"}},
		{`{"store_url":"http://127.example.com","secret_name":"a"}`, []string{"must use https"}},
		{`{"store_url":"ftp://example.com","secret_name":"a"}`, []string{"must use https"}},
		{`{"store_url":"example.com/x","secret_name":"a"}`, []string{"absolute URL"}},
		{`{"store_url":"https://u:p@example.com","secret_name":"a"}`, []string{"user name or password"}},
		{`{"store_url":"https://example.com?token=x","secret_name":"a"}`, []string{"query"}},
		{`{"store_url":"https://example.com/#frag","secret_name":"a"}`, []string{"fragment"}},
		{`{"store_url":"https://example.com:99999","secret_name":"a"}`, []string{"port"}},
		{`{"store_url":"https://a","secret_name":"a","token":"x","Store_URL":"y"}`, []string{`unknown key "token"`, `unknown key "Store_URL"`, "valid keys are store_url, secret_name, version, version_param, headers, bearer_token_env, ca_file, value_path, version_path, timeout"}},
		{`{"store_url":"https://a","secret_name":"a","secret_name":"b"}`, []string{`"secret_name" appears more than once`}},
		{`{"store_url":1,"secret_name":["a"],"version":true,"headers":"X","timeout":30}`, []string{"store_url must be a JSON string", "secret_name must be a JSON string", "version must be", "headers must be an object", "timeout must be"}},
		{`{"store_url":"https://a","secret_name":"../x"}`, []string{"'..'"}},
		{`{"store_url":"https://a","secret_name":"a","timeout":"3m"}`, []string{"timeout"}},
		{`{"store_url":"https://a","secret_name":"a","timeout":"-1s"}`, []string{"timeout"}},
		{`{"store_url":"https://a","secret_name":"a","version_param":"a b"}`, []string{"version_param"}},
		{`{"store_url":"https://a","secret_name":"a","value_path":"data..x","version_path":".v"}`, []string{"value_path must", "version_path must"}},
		{`{"store_url":"https://a","secret_name":"a","ca_file":"certs/ca.pem"}`, []string{"ca_file must be an absolute path"}},
		{`{"store_url":"https://a","secret_name":"a","headers":{"Bad Header":"X","Host":"H","x-a":"A","X-A":"B"}}`, []string{`"Bad Header" is not a valid`, `"Host" is set by the agent`, `"X-A" appears more than once`}},
		{`{"store_url":"https://a","secret_name":"a","headers":{"Authorization":"A"},"bearer_token_env":"T"}`, []string{"Authorization cannot be configured together"}},
		{`{"store_url":"https://a","secret_name":"a","headers":{"X-Token":"1TOKEN"},"bearer_token_env":"x-y"}`, []string{`value for "X-Token" must name an agent environment variable`, "bearer_token_env must name"}},
	} {
		cfg, ref, err := ParseConfig([]byte(tc.raw))
		if err == nil {
			t.Errorf("%s: no error", tc.raw)
			continue
		}
		var se *secrets.Error
		if !errors.As(err, &se) || se.Kind != secrets.InvalidInput || se.Store != Name {
			t.Errorf("%s: %v is not an InvalidInput *secrets.Error of the custom store", tc.raw, err)
		}
		for _, m := range tc.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s:\n error %q\n does not mention %q", tc.raw, err, m)
			}
		}
		if !reflect.DeepEqual(cfg, Config{}) || ref != (secrets.Ref{}) {
			t.Errorf("%s: returned a partial config %+v %+v", tc.raw, cfg, ref)
		}
	}
}

func TestParseConfigReportsAllProblemsAtOnce(t *testing.T) {
	_, _, err := ParseConfig([]byte(`{"store_url":"http://example.com?x=1","secret_name":"/a","timeout":"1h","extra":1}`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, m := range []string{"must use https", "query", "must not start with '/'", "timeout", `unknown key "extra"`} {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}

func TestParsePath(t *testing.T) {
	valid := map[string][]string{
		"my-custom-secret":       {"my-custom-secret"},
		"team/db/prod":           {"team", "db", "prod"},
		"a.b/c_d/e f/ü":          {"a.b", "c_d", "e f", "ü"},
		"...x":                   nil, // refused: contains ".."
		strings.Repeat("é", 512): {strings.Repeat("é", 512)},
	}
	for name, want := range valid {
		segs, err := ParsePath(name)
		if want == nil {
			if err == nil {
				t.Errorf("ParsePath(%q) accepted", name)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(segs, want) {
			t.Errorf("ParsePath(%q) = %q, %v", name, segs, err)
		}
	}
	for _, name := range []string{
		"", "/abs", "a/../b", "..", "a//b", "a/", "./a", "a/./b", "a\x00b", "a\nb", "a\u0085b",
		"\xff", strings.Repeat("a", 513), strings.Repeat("é", 513),
	} {
		segs, err := ParsePath(name)
		if err == nil {
			t.Errorf("ParsePath(%q) = %q, want error", name, segs)
			continue
		}
		if secrets.KindOf(err) != secrets.InvalidInput {
			t.Errorf("ParsePath(%q): kind %s", name, secrets.KindOf(err))
		}
		if len(name) > 3 && strings.Contains(err.Error(), name) {
			t.Errorf("ParsePath(%q) error quotes the name: %v", name, err)
		}
	}
}

func TestConfigValidateAndKey(t *testing.T) {
	good := Config{StoreURL: "https://s.example.com", Headers: map[string]string{"X-A": "A"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{StoreURL: "", Timeout: -time.Second, ValuePath: "a."}
	err := bad.Validate()
	if secrets.KindOf(err) != secrets.InvalidInput {
		t.Fatalf("kind %v", err)
	}
	wantContains(t, err, "store_url is required", "timeout", "value_path")

	same := Config{StoreURL: "https://s.example.com", Headers: map[string]string{"X-A": "A"}}
	if good.Key() != same.Key() {
		t.Error("equal configs have different keys")
	}
	for _, other := range []Config{
		{StoreURL: "https://s.example.com", Headers: map[string]string{"X-A": "B"}},
		{StoreURL: "https://s.example.com", Headers: map[string]string{"X-A": "A"}, ValuePath: "data"},
		{StoreURL: "https://t.example.com", Headers: map[string]string{"X-A": "A"}},
	} {
		if other.Key() == good.Key() {
			t.Errorf("different configs share the key %s", good.Key())
		}
	}
}

func TestNewChecksPolicy(t *testing.T) {
	cfg := Config{StoreURL: "https://vault.example.com", Headers: map[string]string{"X-Vault-Token": "VAULT_TOKEN"}, BearerTokenEnv: "AWS_SECRET_ACCESS_KEY"}
	ctx := context.Background()

	_, err := New(ctx, cfg, Options{AllowStoreURL: func(*url.URL) error { return nil }})
	wantKind(t, err, secrets.PolicyDenied)
	wantContains(t, err, `"VAULT_TOKEN"`, `"AWS_SECRET_ACCESS_KEY"`, "operator must allow")

	refuse := func(name string) error {
		if name == "AWS_SECRET_ACCESS_KEY" {
			return &secrets.Error{Kind: secrets.PolicyDenied, Store: Name, Msg: "variable AWS_SECRET_ACCESS_KEY is the agent's own credential"}
		}
		return nil
	}
	_, err = New(ctx, cfg, Options{AllowEnv: refuse, AllowStoreURL: func(*url.URL) error { return nil }})
	wantKind(t, err, secrets.PolicyDenied)
	wantContains(t, err, "agent's own credential")
	if strings.Contains(err.Error(), "VAULT_TOKEN") {
		t.Errorf("allowed variable reported as refused: %v", err)
	}

	_, err = New(ctx, cfg, Options{AllowEnv: func(string) error { return errors.New("no") }, AllowStoreURL: func(*url.URL) error { return nil }})
	wantKind(t, err, secrets.PolicyDenied)

	allowAll := func(string) error { return nil }
	_, err = New(ctx, cfg, Options{AllowEnv: allowAll})
	wantKind(t, err, secrets.PolicyDenied)
	wantContains(t, err, `host "vault.example.com"`)

	_, err = New(ctx, cfg, Options{AllowEnv: allowAll, AllowStoreURL: func(u *url.URL) error {
		if u.Hostname() != "vault.internal" {
			return errors.New("not allowed")
		}
		return nil
	}})
	wantKind(t, err, secrets.PolicyDenied)

	// Without credentials, a nil AllowStoreURL allows the URL.
	if _, err := New(ctx, Config{StoreURL: "https://s.example.com"}, Options{}); err != nil {
		t.Errorf("credential-free config refused: %v", err)
	}
	// Configuration problems come before policy.
	_, err = New(ctx, Config{StoreURL: "http://example.com", Headers: map[string]string{"X": "X"}}, Options{})
	wantKind(t, err, secrets.InvalidInput)
}

func TestNewLoadsCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, maxCAFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, mention := range map[string]string{
		filepath.Join(dir, "missing.pem"): "does not exist",
		dir:                               "not a regular file",
		notPEM:                            "no PEM certificate",
		big:                               "larger than 1 MiB",
		"/dev/zero":                       "not a regular file",
		fifo:                              "not a regular file",
	} {
		_, err := New(context.Background(), Config{StoreURL: "https://s.example.com"}, Options{CAFile: func(string, int) string { return path }})
		wantKind(t, err, secrets.InvalidInput)
		wantContains(t, err, mention, "the agent's CA file")
	}
	custom := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("x") })}
	_, err := New(context.Background(), Config{StoreURL: "https://s.example.com"}, Options{HTTPClient: custom, CAFile: func(string, int) string { return notPEM }})
	wantKind(t, err, secrets.InvalidInput)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a//b", "/a", "\x00", "é/ü", strings.Repeat("x/", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		segs, err := ParsePath(name)
		if err != nil {
			if secrets.KindOf(err) != secrets.InvalidInput || err.Error() == "" {
				t.Fatalf("kind %s: %q", secrets.KindOf(err), err)
			}
			return
		}
		if strings.Join(segs, "/") != name || !utf8.ValidString(name) || strings.Contains(name, "..") {
			t.Fatalf("accepted %q as %q", name, segs)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"store_url":"https://custom-secret-store.example.com","secret_name":"my-custom-secret"}`))
	f.Add([]byte(`{"store_url":"http://localhost","secret_name":"a","version":1e3,"headers":{"A":"B"},"timeout":"1s"}`))
	f.Add([]byte(`{"store_url":"https://a","secret_name":"a","value_path":"a.0.b"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, ref, err := ParseConfig(raw)
		if err != nil {
			if secrets.KindOf(err) != secrets.InvalidInput || err.Error() == "" {
				t.Fatalf("kind %s: %q", secrets.KindOf(err), err)
			}
			return
		}
		if cfg.Validate() != nil {
			t.Fatalf("ParseConfig accepted an invalid config: %v", cfg.Validate())
		}
		if _, err := ParsePath(ref.Path); err != nil {
			t.Fatalf("ParseConfig accepted secret_name %q", ref.Path)
		}
	})
}

// FuzzLookup checks lookup and unquote against encoding/json on valid JSON.
func FuzzLookup(f *testing.F) {
	f.Add([]byte(`{"data":{"data":{"k":"v"},"metadata":{"version":3}}}`), "data.data")
	f.Add([]byte(`{"a":[1,{"b":"\u00e9\ud83d\ude00\ud800x"}],"a":[2]}`), "a.0")
	f.Add([]byte(`{"a":[1,{"b":"\"\\\/\b\f\n\r\t"}]}`), "a.1.b")
	f.Add([]byte(` [ {"x" : null} , "s" ] `), "0.x")
	f.Add([]byte(`1E700`), "0")
	f.Add([]byte(`{"":{"a":-0.5e+3}}`), ".a")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		segs := strings.Split(path, ".")
		raw, found := lookup(data, segs)
		if !json.Valid(data) || !utf8.Valid(data) {
			return
		}
		doc, err := decodeNumbers(data)
		if err != nil {
			t.Fatal(err)
		}
		want, wantFound := navigate(doc, segs)
		if found != wantFound {
			t.Fatalf("lookup(%q, %q) found=%v, encoding/json found=%v", data, path, found, wantFound)
		}
		if !found {
			return
		}
		got, err := decodeNumbers(raw)
		if err != nil {
			t.Fatalf("lookup returned invalid JSON %q: %v", raw, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("lookup(%q, %q) = %v, want %v", data, path, got, want)
		}
		if s, ok := want.(string); ok {
			if u, ok := unquote(raw); !ok || string(u) != s {
				t.Fatalf("unquote(%q) = %q, %v; want %q", raw, u, ok, s)
			}
		}
	})
}

// decodeNumbers decodes JSON keeping numbers as their text.
func decodeNumbers(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// navigate follows a dot path through a value decoded by encoding/json.
func navigate(v any, segs []string) (any, bool) {
	for _, seg := range segs {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[seg]; !ok {
				return nil, false
			}
		case []any:
			n, ok := index(seg)
			if !ok || n >= len(x) {
				return nil, false
			}
			v = x[n]
		default:
			return nil, false
		}
	}
	return v, true
}
