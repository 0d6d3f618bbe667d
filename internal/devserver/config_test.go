package devserver_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/internal/devserver"
)

// writeYAML writes content to a temp temporal-dev.yaml and returns its path.
func writeYAML(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "temporal-dev.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigDefaults(t *testing.T) {
	want := devserver.Config{
		FrontendAddress: "127.0.0.1:7233",
		UIAddress:       "127.0.0.1:8233",
		Namespace:       "default",
		LogLevel:        "error",
		Retention:       24 * time.Hour,
	}
	if got := devserver.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Fatalf("DefaultConfig() = %+v, want %+v", got, want)
	}

	paths := map[string]string{
		"missing file":  filepath.Join(t.TempDir(), "absent.yaml"),
		"empty file":    writeYAML(t, ""),
		"only comments": writeYAML(t, "# nothing set\n# frontendAddress: 1.2.3.4:1\n"),
		// The committed file documents the defaults; it must state them exactly.
		"repository temporal-dev.yaml": filepath.Join("..", "..", "temporal-dev.yaml"),
	}
	for name, path := range paths {
		t.Run(name, func(t *testing.T) {
			got, err := devserver.LoadConfig(path)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("LoadConfig = %+v, want the defaults %+v", got, want)
			}
		})
	}
}

func TestLoadConfigValues(t *testing.T) {
	path := writeYAML(t, `
frontendAddress: localhost:0
uiAddress: ""
namespace: agents
extraNamespaces: [demo, scratch]
databaseFile: state/dev.db
logLevel: debug
retention: 168h
uiCodecEndpoint: http://127.0.0.1:8081
`)
	got, err := devserver.LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	want := devserver.Config{
		FrontendAddress: "localhost:0",
		UIAddress:       "", // explicitly disabled
		Namespace:       "agents",
		ExtraNamespaces: []string{"demo", "scratch"},
		DatabaseFile:    filepath.Join(filepath.Dir(path), "state", "dev.db"), // relative to the file
		LogLevel:        "debug",
		Retention:       7 * 24 * time.Hour,
		UICodecEndpoint: "http://127.0.0.1:8081",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadConfig =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadConfigUnknownKey(t *testing.T) {
	path := writeYAML(t, "frontendAddress: 127.0.0.1:7233\nfronendAdress: 127.0.0.1:7234\n")
	_, err := devserver.LoadConfig(path)
	if err == nil {
		t.Fatal("LoadConfig accepted an unknown key")
	}
	for _, want := range []string{"fronendAdress", path, "frontendAddress"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLoadConfigRejects(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"address without port", "frontendAddress: 127.0.0.1", []string{"frontendAddress", "host:port"}},
		{"port not a number", "uiAddress: 127.0.0.1:http", []string{"uiAddress", "invalid port"}},
		{"port out of range", "frontendAddress: 127.0.0.1:70000", []string{"frontendAddress", "70000"}},
		{"host name", "frontendAddress: temporal.example.com:7233", []string{"frontendAddress", "not an IP address"}},
		{"all interfaces", "frontendAddress: 0.0.0.0:7233", []string{"frontendAddress", "allowNonLoopback"}},
		{"empty host", "uiAddress: :8233", []string{"uiAddress", "allowNonLoopback"}},
		{"LAN address", "uiAddress: 192.0.2.10:8233", []string{"uiAddress", "allowNonLoopback"}},
		{"IPv6 any", "frontendAddress: '[::]:7233'", []string{"frontendAddress", "allowNonLoopback"}},
		{"same port", "frontendAddress: 127.0.0.1:9000\nuiAddress: 127.0.0.1:9000", []string{"same port"}},
		{"log level", "logLevel: verbose", []string{"logLevel", "verbose"}},
		{"retention too short", "retention: 10m", []string{"retention", "1h"}},
		{"retention without unit", "retention: 24", []string{"retention"}},
		{"namespace starting with a dash", `namespace: "-bad"`, []string{"namespace", "-bad"}},
		{"system namespace", "extraNamespaces: [temporal-system]", []string{"extraNamespaces", "reserved"}},
		{"duplicate namespace", "namespace: a\nextraNamespaces: [b, a]", []string{"extraNamespaces", "twice"}},
		{"database URI characters", "databaseFile: dev.db?mode=ro", []string{"databaseFile"}},
		{"codec not a URL", "uiCodecEndpoint: 127.0.0.1:8081", []string{"uiCodecEndpoint"}},
		{"codec with credentials", "uiCodecEndpoint: http://u:p@127.0.0.1:8081", []string{"uiCodecEndpoint", "credentials"}},
		{"tls without certFile", "tls: {keyFile: k.pem}", []string{"tls.certFile"}},
		{"tls without keyFile", "tls: {certFile: c.pem}", []string{"tls.keyFile"}},
		{"client certs without CA", "tls: {certFile: c.pem, keyFile: k.pem, requireClientCert: true}", []string{"tls.clientCAFile"}},
		{"client CA not required", "tls: {certFile: c.pem, keyFile: k.pem, clientCAFile: ca.pem}", []string{"requireClientCert"}},
		{"two documents", "logLevel: info\n---\nlogLevel: debug\n", []string{"more than one YAML document"}},
		{"every problem at once", "frontendAddress: 0.0.0.0:1\nlogLevel: loud\nretention: 1s", []string{"frontendAddress", "logLevel", "retention"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := devserver.LoadConfig(writeYAML(t, tt.yaml))
			if err == nil {
				t.Fatalf("LoadConfig accepted %q", tt.yaml)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestLoadConfigTLSPaths(t *testing.T) {
	path := writeYAML(t, "tls:\n  certFile: certs/server.pem\n  keyFile: /abs/server-key.pem\n  clientCAFile: ca.pem\n  requireClientCert: true\n")
	cfg, err := devserver.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	want := devserver.TLSConfig{
		CertFile:          filepath.Join(dir, "certs", "server.pem"),
		KeyFile:           "/abs/server-key.pem",
		ClientCAFile:      filepath.Join(dir, "ca.pem"),
		RequireClientCert: true,
	}
	if cfg.TLS != want || !cfg.TLS.Enabled() {
		t.Errorf("TLS = %+v, want %+v", cfg.TLS, want)
	}
	if devserver.DefaultConfig().TLS.Enabled() {
		t.Error("TLS is on by default")
	}
}

func TestNonLoopbackNeedsOptIn(t *testing.T) {
	refused := "frontendAddress: 0.0.0.0:7233\nuiAddress: 192.0.2.10:8233\n"
	if _, err := devserver.LoadConfig(writeYAML(t, refused)); err == nil {
		t.Fatal("non-loopback addresses accepted without allowNonLoopback")
	}
	cfg, err := devserver.LoadConfig(writeYAML(t, refused+"allowNonLoopback: true\n"))
	if err != nil {
		t.Fatalf("non-loopback addresses refused despite allowNonLoopback: %v", err)
	}
	if cfg.FrontendAddress != "0.0.0.0:7233" || !cfg.AllowNonLoopback {
		t.Fatalf("LoadConfig = %+v", cfg)
	}
	for _, loopback := range []string{"127.0.0.1:7233", "localhost:7233", "[::1]:7233", "127.0.0.2:7233"} {
		c := devserver.DefaultConfig()
		c.FrontendAddress = loopback
		if err := c.Validate(); err != nil {
			t.Errorf("loopback %s refused: %v", loopback, err)
		}
	}
}
