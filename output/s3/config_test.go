package s3

import (
	"github.com/secure-agent/secure-agent/internal/awsx"

	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{Bucket: "agent-output", Region: "eu-west-1"}
	with := func(mod func(*Config)) Config { c := ok; mod(&c); return c }
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // one substring per expected problem, in order; nil means valid
	}{
		{"minimal", ok, nil},
		{"dotted bucket", with(func(c *Config) { c.Bucket = "metadata.example.com" }), nil},
		{"63 characters", with(func(c *Config) { c.Bucket = strings.Repeat("a", 63) }), nil},
		{"prefix", with(func(c *Config) { c.Prefix = "team-a/metadata/" }), nil},
		{"prefix with odd but legal characters", with(func(c *Config) { c.Prefix = "équipe a/v1.2_x" }), nil},
		{"minio", Config{Bucket: "meta", Endpoint: "https://minio.internal:9000", PathStyle: true}, nil},
		{"minio with region", Config{Bucket: "meta", Region: "auto", Endpoint: "https://r2.example.com/"}, nil},
		{"loopback http", Config{Bucket: "meta", Endpoint: "http://127.0.0.1:9000"}, nil},
		{"localhost http", Config{Bucket: "meta", Endpoint: "http://localhost:9000"}, nil},
		{"ipv6 loopback http", Config{Bucket: "meta", Endpoint: "http://[::1]:9000"}, nil},

		{"empty", Config{}, []string{"bucket is required", "region is required"}},
		{"short bucket", with(func(c *Config) { c.Bucket = "ab" }), []string{`bucket "ab" is not a valid S3 bucket name`}},
		{"long bucket", with(func(c *Config) { c.Bucket = strings.Repeat("a", 64) }), []string{"not a valid S3 bucket name"}},
		{"upper case bucket", with(func(c *Config) { c.Bucket = "Agent-Output" }), []string{"lower-case"}},
		{"underscore bucket", with(func(c *Config) { c.Bucket = "agent_output" }), []string{"not a valid"}},
		{"bucket starts with hyphen", with(func(c *Config) { c.Bucket = "-agent" }), []string{"start and end with a letter or digit"}},
		{"bucket ends with dot", with(func(c *Config) { c.Bucket = "agent." }), []string{"start and end"}},
		{"adjacent dots", with(func(c *Config) { c.Bucket = "agent..output" }), []string{"next to another dot"}},
		{"dot next to hyphen", with(func(c *Config) { c.Bucket = "agent-.output" }), []string{"next to another dot or a hyphen"}},
		{"ip address", with(func(c *Config) { c.Bucket = "192.168.5.4" }), []string{"IP address"}},
		{"xn-- prefix", with(func(c *Config) { c.Bucket = "xn--agent" }), []string{`prefix "xn--" is reserved`}},
		{"sthree- prefix", with(func(c *Config) { c.Bucket = "sthree-agent" }), []string{"reserved"}},
		{"-s3alias suffix", with(func(c *Config) { c.Bucket = "agent-s3alias" }), []string{`suffix "-s3alias" is reserved`}},
		{"--ol-s3 suffix", with(func(c *Config) { c.Bucket = "agent--ol-s3" }), []string{"reserved"}},
		{"bad aws region", with(func(c *Config) { c.Region = "Europe" }), []string{`region "Europe" is not an AWS region`}},
		{"bad custom region", Config{Bucket: "meta", Region: "EU West", Endpoint: "https://s3.example.com"}, []string{"lower-case letters"}},
		{"http endpoint", Config{Bucket: "meta", Endpoint: "http://minio.internal:9000"}, []string{"endpoint must use https"}},
		{"endpoint with credentials", Config{Bucket: "meta", Endpoint: "https://AKID:CANARYzq@minio.internal"}, []string{"endpoint must not carry user information"}},
		{"endpoint with query", Config{Bucket: "meta", Endpoint: "https://minio.internal/?x=1"}, []string{"query"}},
		{"endpoint with path", Config{Bucket: "meta", Endpoint: "https://minio.internal/s3"}, []string{"must not have a path"}},
		{"relative endpoint", Config{Bucket: "meta", Endpoint: "minio.internal:9000"}, []string{"not an absolute URL"}},
		{"ftp endpoint", Config{Bucket: "meta", Endpoint: "ftp://minio.internal"}, []string{"must use https"}},
		{"absolute prefix", with(func(c *Config) { c.Prefix = "/team" }), []string{`must not start with "/"`}},
		{"dot-dot prefix", with(func(c *Config) { c.Prefix = "team/../other" }), []string{`must not contain ".."`}},
		{"dot-dot inside a segment", with(func(c *Config) { c.Prefix = "v1..2" }), []string{`must not contain ".."`}},
		{"dot segment", with(func(c *Config) { c.Prefix = "team/./x" }), []string{`"." segments`}},
		{"empty segment", with(func(c *Config) { c.Prefix = "team//x" }), []string{"empty segments"}},
		{"control character", with(func(c *Config) { c.Prefix = "team\nx" }), []string{"control characters"}},
		{"nul", with(func(c *Config) { c.Prefix = "team\x00" }), []string{"control characters"}},
		{"not utf-8", with(func(c *Config) { c.Prefix = "team\xff" }), []string{"UTF-8"}},
		{"long prefix", with(func(c *Config) { c.Prefix = strings.Repeat("p", maxPrefix+1) }), []string{"longer than 512 bytes"}},
		{"everything at once", Config{Bucket: "A", Region: "X", Endpoint: "http://example.com", Prefix: "/.."},
			[]string{"bucket", "region", "endpoint", "prefix"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.Validate()
			if len(got) != len(tc.want) {
				t.Fatalf("Validate() = %q, want %d problems like %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
			for _, p := range got {
				if strings.Contains(p, "CANARYzq") {
					t.Errorf("a problem echoes the endpoint's credentials: %q", p)
				}
			}
		})
	}
}

func TestNewRefusesInvalidInput(t *testing.T) {
	t.Parallel()
	cfg := Config{Bucket: "agent-output", Region: "us-east-1"}
	v := func(s string) secrets.Value { return secrets.Value(s) }
	for _, tc := range []struct {
		name  string
		cfg   Config
		creds Credentials
		want  string
	}{
		{"invalid config", Config{Bucket: "x"}, Credentials{}, "not a valid S3 bucket name"},
		{"key id without secret", cfg, Credentials{AccessKeyID: v("AKID")}, "needs both accessKeyId and secretAccessKey"},
		{"secret without key id", cfg, Credentials{SecretAccessKey: v("CANARYzqSecret")}, "needs both"},
		{"token alone", cfg, Credentials{SessionToken: v("CANARYzqToken")}, "sessionToken without accessKeyId"},
		{"newline after the secret", cfg, Credentials{AccessKeyID: v("AKID"), SecretAccessKey: v("CANARYzqSecret\n")}, "secretAccessKey has leading or trailing whitespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), tc.cfg, tc.creds, Options{})
			assertKind(t, err, secrets.InvalidInput, "")
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			assertNoCanary(t, err)
		})
	}
}

// TestPublishRefusesLocalProblems checks what Publish finds wrong before any upload.
func TestPublishRefusesLocalProblems(t *testing.T) {
	t.Parallel()
	var sent int
	client := clientFunc(func(*http.Request) (*http.Response, error) {
		sent++
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}, nil
	})
	sink, err := New(context.Background(), Config{Bucket: "agent-output", Region: "us-east-1"}, staticCreds(), Options{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		keyPrefix string
		prepare   func(t *testing.T, dir string, m *output.Manifest)
		kind      secrets.Kind
		want      string
	}{
		{"empty key prefix", "", nil, secrets.InvalidInput, "non-empty"},
		{"absolute key prefix", "/a/b", nil, secrets.InvalidInput, `must not start with "/"`},
		{"dot-dot key prefix", "a/../b", nil, secrets.InvalidInput, `".."`},
		{"trailing slash", "a/b/", nil, secrets.InvalidInput, "trailing"},
		{"not finalized", keyPrefix, func(t *testing.T, dir string, _ *output.Manifest) {
			if err := os.Remove(output.ManifestPath(dir)); err != nil {
				t.Fatal(err)
			}
		}, secrets.InvalidInput, "must be finalized"},
		{"broken manifest", keyPrefix, func(t *testing.T, dir string, _ *output.Manifest) {
			if err := os.WriteFile(output.ManifestPath(dir), []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, secrets.InvalidInput, "not valid JSON"},
		{"missing data file", keyPrefix, func(t *testing.T, dir string, m *output.Manifest) {
			if err := os.Remove(filepath.Join(dir, m.Files[0].Name)); err != nil {
				t.Fatal(err)
			}
		}, secrets.OutputUnavailable, "could not be read"},
		{"data file changed size", keyPrefix, func(t *testing.T, dir string, m *output.Manifest) {
			if err := os.WriteFile(filepath.Join(dir, m.Files[2].Name), []byte("short"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, secrets.OutputUnavailable, "changed after it was finalized"},
		{"manifest names a path", keyPrefix, func(t *testing.T, dir string, m *output.Manifest) {
			raw, _ := os.ReadFile(output.ManifestPath(dir))
			raw = []byte(strings.Replace(string(raw), `"name": "columns.jsonl.gz"`, `"name": "../columns.jsonl.gz"`, 1))
			if err := os.WriteFile(output.ManifestPath(dir), raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}, secrets.InvalidInput, "invalid or repeated file name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, m := finalizedRun(t, 5)
			if tc.prepare != nil {
				tc.prepare(t, dir, m)
			}
			_, err := sink.Publish(context.Background(), dir, tc.keyPrefix)
			assertKind(t, err, tc.kind, "")
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	if sent != 0 {
		t.Errorf("%d requests sent for runs that cannot be published", sent)
	}
}

// TestBodyClientHidesWriterTo checks the fix for the SDK's early Close directly: net/http gets a
// body without WriteTo, which reads a closed SDK body as a clean end.
func TestBodyClientHidesWriterTo(t *testing.T) {
	t.Parallel()
	var got io.Reader
	c := &awsx.Client{Max: maxResponseBytes, Next: clientFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Body
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})}
	req, _ := http.NewRequest(http.MethodPut, "http://localhost/b/k", strings.NewReader("data")) // strings.Reader has WriteTo
	req.Body = struct {
		io.Reader
		io.WriterTo
		io.Closer
	}{req.Body, strings.NewReader("data"), io.NopCloser(nil)}
	if _, err := c.Do(req); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.(io.WriterTo); ok {
		t.Error("net/http was given a body with WriteTo")
	}
	if b, _ := io.ReadAll(got); string(b) != "data" {
		t.Errorf("body %q", b)
	}
}

type clientFunc func(*http.Request) (*http.Response, error)

func (f clientFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }
