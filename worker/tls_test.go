package worker_test

import (
	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/internal/testpki"

	"context"
	"crypto/x509"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/secure-agent/secure-agent/internal/devserver"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// testCA is a certificate authority made for one test.
type testCA struct{ *testpki.CA }

func newTestCA(t *testing.T, name string) *testCA { return &testCA{testpki.NewCA(t, name)} }

// issue writes a certificate signed by ca and its key to dir/name.pem and dir/name-key.pem.
func (ca *testCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage, dnsNames []string, ips []net.IP) (certPath, keyPath string) {
	t.Helper()
	certPEM, keyPEM := ca.Issue(t, name, usage, dnsNames, ips)
	certPath = filepath.Join(dir, name+".pem")
	keyPath = filepath.Join(dir, name+"-key.pem")
	writeFile(t, certPath, certPEM)
	writeFile(t, keyPath, keyPEM)
	return certPath, keyPath
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// clearTemporalEnv unsets the TEMPORAL_* variables that could change the connection, for the
// duration of the test, and points TEMPORAL_CONFIG_FILE at a file that does not exist.
func clearTemporalEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TEMPORAL_") || strings.HasPrefix(name, "SECURE_AGENT_") {
			t.Setenv(name, "") // restored after the test
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Setenv("TEMPORAL_CONFIG_FILE", filepath.Join(t.TempDir(), "no-such-temporal.toml"))
}

// TestDialMutualTLS runs the agent against a dev server that serves TLS and requires client
// certificates, configured only through Temporal's standard TEMPORAL_* variables.
func TestDialMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	clearTemporalEnv(t)
	dir := t.TempDir()
	ca := newTestCA(t, "secure-agent test CA")
	caPath := filepath.Join(dir, "ca.PEM")
	writeFile(t, caPath, ca.PEM)
	serverCert, serverKey := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth,
		[]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	clientCert, clientKey := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth, nil, nil)

	otherCA := newTestCA(t, "some other CA")
	otherCAPath := filepath.Join(dir, "other-ca.PEM")
	writeFile(t, otherCAPath, otherCA.PEM)

	var serverLog testenv.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Config{
		FrontendAddress: "127.0.0.1:0",
		UIAddress:       "127.0.0.1:0",
		Namespace:       "tls-test",
		TLS: devserver.TLSConfig{
			CertFile:          serverCert,
			KeyFile:           serverKey,
			ClientCAFile:      caPath,
			RequireClientCert: true,
		},
	}, slog.New(slog.NewTextHandler(&serverLog, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stopping the dev server: %v", err)
		}
	})

	t.Setenv("TEMPORAL_ADDRESS", srv.FrontendAddress())
	t.Setenv("TEMPORAL_NAMESPACE", srv.Namespace())
	t.Setenv("TEMPORAL_TLS_SERVER_NAME", "localhost")
	t.Setenv("SECURE_AGENT_TASK_QUEUE", "tls-test")
	t.Setenv("SECURE_AGENT_OUTPUT_DIR", filepath.Join(dir, "out"))
	t.Setenv("SECURE_AGENT_AUDIT", "off")
	t.Setenv("SECURE_AGENT_ENV_ALLOW", "TLS_TEST_*")
	t.Setenv("SECURE_AGENT_LOG_LEVEL", "error")
	settings, err := worker.LoadSettings()
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)

	// dial connects with the current environment; failures are expected to come quickly.
	dial := func(t *testing.T) (client.Client, error) {
		t.Helper()
		dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
		defer dcancel()
		c, err := worker.Dial(dctx, settings, logger)
		if err != nil {
			return nil, err
		}
		if _, err := c.CheckHealth(dctx, &client.CheckHealthRequest{}); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}

	t.Run("without a client certificate", func(t *testing.T) {
		t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", caPath)
		if c, err := dial(t); err == nil {
			c.Close()
			t.Fatal("the server accepted a client without a certificate")
		} else {
			t.Logf("refused as expected: %v", err)
		}
	})

	t.Run("plain gRPC", func(t *testing.T) {
		if c, err := dial(t); err == nil {
			c.Close()
			t.Fatal("the server accepted a plain-text client")
		}
	})

	t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", clientCert)
	t.Setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", clientKey)

	t.Run("wrong server CA", func(t *testing.T) {
		t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", otherCAPath)
		c, err := dial(t)
		if err == nil {
			c.Close()
			t.Fatal("the client trusted a server certificate from an unknown CA")
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error does not mention the certificate: %v", err)
		}
	})

	t.Run("client certificate from another CA", func(t *testing.T) {
		t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", caPath)
		rogueCert, rogueKey := otherCA.issue(t, t.TempDir(), "rogue", x509.ExtKeyUsageClientAuth, nil, nil)
		t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", rogueCert)
		t.Setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", rogueKey)
		if c, err := dial(t); err == nil {
			c.Close()
			t.Fatal("the server accepted a client certificate from an unknown CA")
		}
	})

	t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", caPath)
	c, err := dial(t)
	if err != nil {
		t.Fatalf("mutual TLS connection: %v", err)
	}
	defer c.Close()
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: srv.Namespace()}); err != nil {
		t.Fatalf("DescribeNamespace over mutual TLS: %v", err)
	}

	// The agent itself runs a workflow over the connection.
	db := filepath.Join(dir, "tls.db")
	sdb, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	_ = sdb.Close()
	t.Setenv("TLS_TEST_DB", db)
	settings.SQLiteDirs = []string{dir}

	agent, err := worker.New(c, settings, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       "tls-test-connection",
		TaskQueue:                settings.TaskQueue,
		WorkflowExecutionTimeout: time.Minute,
	}, workflows.TestConnectionWorkflowName, workflows.Input{
		Connector:   "sqlite",
		Connection:  map[string]workflows.FieldValue{"path": "TLS_TEST_DB"},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
	})
	if err != nil {
		t.Fatal(err)
	}
	var report workflows.ConnectionReport
	if err := run.Get(ctx, &report); err != nil {
		t.Fatalf("TestConnectionWorkflow over mutual TLS: %v", err)
	}
	if report.Connector != "sqlite" {
		t.Errorf("report: %+v", report)
	}

	// The Web UI (plain HTTP) reaches the TLS frontend with the dev server's internal identity.
	resp, err := http.Get(srv.UIURL() + "/api/v1/namespaces/" + srv.Namespace())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), srv.Namespace()) {
		t.Errorf("Web UI over a TLS frontend: %s: %s", resp.Status, body)
	}
	if log := serverLog.String(); log != "" {
		t.Logf("server errors:\n%s", log)
	}
}
