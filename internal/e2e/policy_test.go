package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestPolicyStopsExfiltration: an input that sends an allowed secret to a host the policy does
// not list for it is refused before any connection is opened (a listener there sees nothing),
// the same secret reaches its listed host, and the env store cannot read the agent's own
// credentials. Every denial is audited.
func TestPolicyStopsExfiltration(t *testing.T) {
	_, admin := testenv.PGAdmin(t)
	db, user, password := manySchemas(t, 1, 2)

	// The attacker's host: counts every connection attempt.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()

	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(fmt.Sprintf(`version: 1
stores: [env]
env:
  allow: ["E2E_EXF_*"]
destinations:
  default: deny
  rules:
    - secrets: ["E2E_EXF_PG_PASSWORD"]
      hosts: ["%s:%s"]
`, admin.Hostname(), admin.Port())), 0o600); err != nil {
		t.Fatal(err)
	}
	auditFile := filepath.Join(dir, "audit.jsonl")
	t.Setenv("E2E_EXF_PG_PASSWORD", password)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "agent-own-key-canary")
	h := newHarness(t, func(s *worker.Settings) { s.PolicyFile, s.Audit, s.SQLiteDirs = policyFile, auditFile, nil })

	input := func(host, port, passwordVar string) workflows.Input {
		return workflows.Input{
			Connector: "postgres",
			Connection: map[string]workflows.FieldValue{"host": workflows.FieldValue(host), "port": workflows.FieldValue(port),
				"database": workflows.FieldValue(db), "username": workflows.FieldValue(user), "password": workflows.FieldValue(passwordVar), "sslmode": "disable"},
			SecretStore: &stores.Spec{Type: stores.TypeEnv},
		}
	}
	attackerPort := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)

	// 1. The allowed secret, sent elsewhere: refused, and nothing reached the listener.
	err = h.start(workflows.TestConnectionWorkflowName, input("127.0.0.1", attackerPort, "E2E_EXF_PG_PASSWORD")).Get(context.Background(), nil)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != "PolicyDenied" || !strings.Contains(ae.Error(), "destinations") {
		t.Fatalf("exfiltration attempt: %v", err)
	}
	if strings.Contains(ae.Error(), password) {
		t.Fatal("the denial message carries the secret")
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the attacker's listener saw %d connections", n)
	}

	// 2. The same secret to its listed host works.
	if err := h.start(workflows.TestConnectionWorkflowName, input(admin.Hostname(), admin.Port(), "E2E_EXF_PG_PASSWORD")).Get(context.Background(), nil); err != nil {
		t.Fatalf("allowed destination: %v", err)
	}

	// 3. The env store asked for the agent's own AWS key.
	err = h.start(workflows.TestConnectionWorkflowName, input(admin.Hostname(), admin.Port(), "AWS_SECRET_ACCESS_KEY")).Get(context.Background(), nil)
	if !errors.As(err, &ae) || ae.Type() != "PolicyDenied" || strings.Contains(ae.Error(), "agent-own-key-canary") {
		t.Fatalf("reading AWS_SECRET_ACCESS_KEY: %v", err)
	}

	// 4. A store type the policy does not allow is refused before any store call.
	spec := input(admin.Hostname(), admin.Port(), "password")
	spec.SecretStore = &stores.Spec{Type: stores.TypeGCP, SecretPath: "projects/p-123456/secrets/db"}
	err = h.start(workflows.TestConnectionWorkflowName, spec).Get(context.Background(), nil)
	if !errors.As(err, &ae) || ae.Type() != "PolicyDenied" || !strings.Contains(ae.Error(), "gcp") {
		t.Fatalf("disallowed store: %v", err)
	}

	audit, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(audit), `"event":"policy.denied"`); n < 3 {
		t.Errorf("%d denials audited, want at least 3:\n%s", n, audit)
	}
	for _, leaked := range []string{password, "agent-own-key-canary"} {
		if strings.Contains(string(audit), leaked) || strings.Contains(h.logs.String(), leaked) {
			t.Errorf("a secret value reached the audit trail or the logs")
		}
	}
}
