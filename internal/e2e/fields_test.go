package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestOneSecretPerField runs an extraction whose connection fields each name a secret of their
// own (secretStore.fields), on the real server against real PostgreSQL: the login secret is a
// JSON object read for two keys, the password a single value. Each distinct secret is read
// exactly once, judged by the policy's path rules on its own, audited on its own, and listed
// with its version in the summary; a field naming a secret the policy does not allow is
// refused before the store is asked anything.
func TestOneSecretPerField(t *testing.T) {
	_, admin := testenv.PGAdmin(t)
	db, user, password := manySchemas(t, 1, 2)
	// One table owned by the login role, whose name comes from a secret below.
	dbURL := *admin
	dbURL.Path = "/" + db
	conn, err := pgx.Connect(context.Background(), dbURL.String())
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, fmt.Sprintf(`CREATE TABLE s00.mine (id int); ALTER TABLE s00.mine OWNER TO %s`, user))
	conn.Close(context.Background())

	var mu sync.Mutex
	requests := map[string]int{}
	storeURL := customStore(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests[r.URL.Path]++
		mu.Unlock()
		switch r.URL.Path {
		case "/catalog/login":
			w.Header().Set("X-Secret-Version", "7")
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"username": user, "host": admin.Hostname()})
		case "/catalog/password", "/catalog/other-password":
			w.Header().Set("X-Secret-Version", "12")
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(password))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	su, _ := url.Parse(storeURL)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(fmt.Sprintf(`version: 1
stores: [custom]
secrets:
  custom: ["%[1]s/catalog/*"]
customStores:
  hosts: ["%[1]s"]
destinations:
  default: deny
  rules:
    - secrets: ["%[1]s/catalog/login", "%[1]s/catalog/password"]
      hosts: ["%[2]s:%[3]s"]
`, su.Host, admin.Hostname(), admin.Port())), 0o600); err != nil {
		t.Fatal(err)
	}
	auditFile := filepath.Join(dir, "audit.jsonl")
	h := newHarness(t, func(s *worker.Settings) { s.PolicyFile, s.Audit, s.SQLiteDirs = policyFile, auditFile, nil })

	input := func(passwordSecret string) workflows.Input {
		return workflows.Input{
			Connector:  "postgres",
			Source:     "warehouse-eu",
			Connection: map[string]workflows.FieldValue{"port": workflows.FieldValue(admin.Port()), "database": workflows.FieldValue(db), "sslmode": "disable"},
			SecretStore: &stores.Spec{Type: stores.TypeCustom, Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q}`, storeURL)),
				Fields: map[string]stores.SecretField{
					"host":     {Secret: "catalog/login", Key: "host"},
					"username": {Secret: "catalog/login", Key: "username"},
					"password": {Secret: passwordSecret},
				}},
		}
	}
	var ae *temporal.ApplicationError
	var sum workflows.Summary
	if err := h.start(workflows.ExtractionWorkflowName, input("catalog/password")).Get(context.Background(), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Counts["tables"] != 3 {
		t.Errorf("counts %v", sum.Counts)
	}
	checkNames(t, sum.OutputDir, "warehouse-eu", db, user, admin.User.Username())
	versions := map[string]string{}
	for _, v := range sum.Versions {
		versions[v.Ref.Path] = v.Version
	}
	if len(versions) != 2 || versions["catalog/login"] != "7" || versions["catalog/password"] != "12" {
		t.Errorf("summary versions %+v, want catalog/login 7 and catalog/password 12", sum.Versions)
	}
	mu.Lock()
	if requests["/catalog/login"] != 1 || requests["/catalog/password"] != 1 {
		t.Errorf("store requests %v, want one per secret", requests)
	}
	mu.Unlock()
	audit, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"catalog/login", "catalog/password"} {
		if !strings.Contains(string(audit), `"secret":"`+secret+`"`) {
			t.Errorf("no audit event for %s:\n%s", secret, audit)
		}
	}
	if strings.Contains(string(audit), password) {
		t.Error("the audit holds the password")
	}

	// Destination rules apply per secret: the same password under a secret that no rule sends
	// to this host is refused before any login, though the login secret's rule allows it.
	err = h.start(workflows.ExtractionWorkflowName, input("catalog/other-password")).Get(context.Background(), nil)
	if !errors.As(err, &ae) || ae.Type() != "PolicyDenied" || !strings.Contains(ae.Message(), "catalog/other-password") {
		t.Fatalf("a field's secret with no destination rule for the host: %v", err)
	}

	// A field naming a secret the policy does not allow: refused before any store call.
	err = h.start(workflows.ExtractionWorkflowName, input("other/password")).Get(context.Background(), nil)
	if !errors.As(err, &ae) || ae.Type() != "PolicyDenied" || !strings.Contains(ae.Message(), "secrets.custom") {
		t.Fatalf("a field's secret outside the policy: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests["/other/password"] != 0 || requests["/catalog/login"] != 2 {
		t.Errorf("the store was asked after the policy refused a field's secret: %v", requests)
	}
}

// checkNames checks the names written in a PostgreSQL run's output: every entity carries the
// input's source label; the database, given as a literal, names the database entity and every
// other entity; the login role's name, read from a secret, appears nowhere, and the table it
// owns (s00.mine) is marked as the login role's, while the others name their owner.
func checkNames(t *testing.T, dir, source, db, loginRole, otherOwner string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl.gz"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no output files in %s: %v", dir, err)
	}
	tables := 0
	for _, f := range files {
		kind := strings.TrimSuffix(filepath.Base(f), ".jsonl.gz")
		for _, line := range sortedLines(t, f) {
			if line == "" {
				continue
			}
			if strings.Contains(line, loginRole) {
				t.Errorf("%s names the login role: %s", kind, line)
			}
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			if e["source"] != source {
				t.Errorf("%s: source %v, want %q: %s", kind, e["source"], source, line)
			}
			name := "database"
			if kind == "databases" {
				name = "name"
			}
			if e[name] != db {
				t.Errorf("%s: %s %v, want the literal %q: %s", kind, name, e[name], db, line)
			}
			if kind != "tables" {
				continue
			}
			tables++
			if e["name"] == "mine" {
				if e["owner"] != nil || e["ownerIsLoginRole"] != true {
					t.Errorf("the login role's table: %s", line)
				}
			} else if e["owner"] != otherOwner || e["ownerIsLoginRole"] != nil {
				t.Errorf("a table of %s: %s", otherOwner, line)
			}
		}
	}
	if tables != 3 {
		t.Errorf("%d tables checked, want 3", tables)
	}
}
