package adversarial

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/secure-agent/secure-agent/internal/proctest"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// versionStore is a customer's HTTP secret store in the shape of Vault's KV v2 API: the
// secret's JSON under data.data, its version under data.metadata.version. It counts the requests
// it gets.
type versionStore struct {
	srv      *httptest.Server
	requests atomic.Int64
}

func newVersionStore(t *testing.T, src proctest.Source) *versionStore {
	t.Helper()
	body, err := json.Marshal(map[string]any{"data": map[string]any{
		"data":     map[string]string{"password": src.Password, "username": src.User},
		"metadata": map[string]any{"version": 3},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := &versionStore{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// hostPort is the store's "127.0.0.1:<port>", as policy patterns name it.
func (s *versionStore) hostPort() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// input is an extraction of src whose username and password are keys of the store's secret,
// with extra keys (workflow input, attacker-chosen) added to the store's JSON configuration.
func (s *versionStore) input(src proctest.Source, extra string) workflows.Input {
	return workflows.Input{
		Connector: "postgres",
		Connection: map[string]workflows.FieldValue{
			"host": workflows.FieldValue(src.Host), "port": workflows.FieldValue(src.Port),
			"database": workflows.FieldValue(src.DB), "username": "username", "password": "password",
			"sslmode": "disable",
		},
		SecretStore: &stores.Spec{Type: stores.TypeCustom, Config: json.RawMessage(fmt.Sprintf(
			`{"store_url": %q, "secret_name": "team/catalog-db", "value_path": "data.data"%s}`, s.srv.URL+"/v1/secret/data", extra))},
	}
}

// TestVersionCannotCarryTheSecret (class 1): the custom store's version_path used to be workflow
// input, and "data.data.password" made the recorded version id the password: in the
// ResolveSecrets result, the summary, the audit line and the log. Now where the version lies is
// the operator's setting per store host (customStores.versionPaths), and:
//
//   - input that sets version_path (or ca_file, a file-system oracle and a trust anchor chosen by
//     the input) is refused on the agent before the store is asked anything;
//   - an operator who points versionPaths into the secret by mistake gets a refusal, not a
//     password recorded as a version;
//   - a versionPaths entry that names the store's metadata records the version.
//
// The password and the agent's environment (what /proc/self/environ holds) are nowhere.
func TestVersionCannotCarryTheSecret(t *testing.T) {
	t.Parallel()
	server := proctest.StartDevServer(t)
	src := proctest.PGSource(t)
	envCanary := canary(t, "environ")
	attacked, misconfigured, good := newVersionStore(t, src), newVersionStore(t, src), newVersionStore(t, src)

	var hosts, secretPats []string
	for _, s := range []*versionStore{attacked, misconfigured, good} {
		hosts = append(hosts, strconv.Quote(s.hostPort()))
		secretPats = append(secretPats, strconv.Quote(s.hostPort()+"/*"))
	}
	a := startAgent(t, server, proctest.AgentOpts{
		Policy: fmt.Sprintf(`version: 1
stores: [custom]
secrets:
  custom: [%[1]s]
customStores:
  hosts: [%[2]s]
  versionPaths:
    %[3]q: data.data.password
    %[4]q: data.metadata.version
destinations:
  default: deny
  rules:
    - secrets: [%[1]s]
      hosts: ["%[5]s:%[6]s"]
`, strings.Join(secretPats, ", "), strings.Join(hosts, ", "), misconfigured.hostPort(), good.hostPort(), src.Host, src.Port),
		Env: map[string]string{"ADV_ENV_CANARY": envCanary},
	})

	// Input that sets agent configuration: refused before the store is asked anything, and the
	// answer does not depend on the file named.
	{
		var caMessages []string
		for _, tc := range []struct{ extra, want string }{
			{`, "version_path": "data.data.password"`, "version_path is agent configuration"},
			{`, "version_path": "data.metadata.version"`, "version_path is agent configuration"},
			{`, "ca_file": "/proc/self/environ"`, "ca_file is agent configuration"},
			{`, "ca_file": "/nonexistent/ca.pem"`, "ca_file is agent configuration"},
		} {
			ae := a.ExtractFails(attacked.input(src, tc.extra))
			if ae.Type() != "InvalidInput" || !strings.Contains(ae.Message(), tc.want) {
				t.Errorf("config%s: %s %s, want InvalidInput saying %q", tc.extra, ae.Type(), ae.Message(), tc.want)
			}
			if strings.Contains(tc.extra, "ca_file") {
				caMessages = append(caMessages, ae.Message())
			}
		}
		// Whether the file exists, and what it holds, shows in no answer.
		if caMessages[0] != caMessages[1] {
			t.Errorf("ca_file answers differ with the file:\n%s\n%s", caMessages[0], caMessages[1])
		}
		if n := attacked.requests.Load(); n != 0 {
			t.Errorf("the store got %d request(s) for input that sets agent configuration", n)
		}
	}

	// The operator's version path points into the secret: refused, not recorded.
	{
		ae := a.ExtractFails(misconfigured.input(src, ""))
		if ae.Type() != "InvalidInput" || !strings.Contains(ae.Message(), "version id the store reported equals or contains part of the secret") {
			t.Errorf("%s %s, want InvalidInput refusing the version", ae.Type(), ae.Message())
		}
		if misconfigured.requests.Load() == 0 {
			t.Error("the store was never asked: the refusal proves nothing about the version")
		}
	}

	// The operator's version path names the store's metadata: the version is recorded.
	{
		sum := a.Succeeds(a.Start(workflows.ExtractionWorkflowName, good.input(src, ""), 0))
		if len(sum.Versions) != 1 || sum.Versions[0].Version != "3" {
			t.Errorf("secret versions %+v, want one, version 3", sum.Versions)
		}
		if sum.Counts["tables"] != 3 {
			t.Errorf("counts %v", sum.Counts)
		}
	}

	a.AssertNowhere(nil, src.Password, envCanary)
}
