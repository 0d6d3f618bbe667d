package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/internal/vaulttest"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestVaultDynamicCredentials runs extractions with credentials from Vault's database secrets
// engine, on the real Temporal server against real PostgreSQL: the test's Vault (internal/vaulttest,
// Vault's HTTP API) creates a real PostgreSQL role when credentials are asked for and drops it on
// revoke. Each run gets a role of its own, extracts with it, and the role is gone soon after the
// run ends: when it succeeds (released with the lease), when it is cancelled, and when it is
// terminated (the agent finds the run closed). The audit names the Vault lease, never the
// password; the password appears in no history.
func TestVaultDynamicCredentials(t *testing.T) {
	db, user, _ := manySchemas(t, 12, 30)
	admin, u := testenv.PGAdmin(t)
	ctx := context.Background()
	var mu sync.Mutex
	made := map[string]string{} // role -> password
	vs := vaulttest.New()
	vs.MountCreds("database")
	vs.AddToken("agent-token", 0, "database/creds/*", "sys/leases/renew", "sys/leases/revoke")
	vs.Creds = func(role string) (string, string, error) {
		name := "v_" + role + "_" + randomHex(t)[:10]
		pw := "vpw-" + randomHex(t)
		if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE %s`, name, pw, user)); err != nil {
			return "", "", err
		}
		mu.Lock()
		made[name] = pw
		mu.Unlock()
		return name, pw, nil
	}
	vs.Revoke = func(name string) error {
		_, _ = admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, name)
		_, err := admin.Exec(ctx, "DROP ROLE IF EXISTS "+name)
		return err
	}
	srv := httptest.NewServer(vs)
	defer srv.Close()
	t.Cleanup(func() {
		for name := range made {
			_, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+name)
		}
	})
	auditFile := t.TempDir() + "/audit.jsonl"
	h := newHarness(t, func(s *worker.Settings) {
		s.VaultAddr, s.VaultAuth, s.VaultToken = srv.URL, "token", "agent-token"
		s.LeaseCheckInterval = time.Second
		s.Audit = auditFile
	})
	in := workflows.Input{
		Connector: "postgres", Source: "vault-pg",
		Connection: map[string]workflows.FieldValue{
			"host": workflows.FieldValue(u.Hostname()), "port": workflows.FieldValue(u.Port()), "database": workflows.FieldValue(db),
			"username": "username", "password": "password", "sslmode": "disable",
		},
		SecretStore: &stores.Spec{Type: stores.TypeVault, SecretPath: "database/creds/reader"},
		Options:     workflows.RunOptions{SchemasPerBatch: 1, MaxConcurrentBatches: 1},
	}
	roleGone := func(name string) bool {
		var n int
		_ = admin.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = $1`, name).Scan(&n)
		return n == 0
	}
	waitGone := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			all := true
			for name := range made {
				all = all && roleGone(name)
			}
			mu.Unlock()
			if all {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: a role Vault made for the run still exists 60 s after it ended", what)
	}

	// Success: one role, used, then dropped with the lease.
	run := h.start(workflows.ExtractionWorkflowName, in)
	var sum workflows.Summary
	if err := run.Get(ctx, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Counts["tables"] != 12*30 || len(made) != 1 {
		t.Fatalf("extracted %v with %d roles made", sum.Counts, len(made))
	}
	waitGone("a run that succeeded")
	leases := vs.Leases()
	if len(leases) != 1 || !leases[0].Revoked || leases[0].RevokedBy != "revoke" {
		t.Fatalf("the run's Vault lease: %+v", leases)
	}
	audit, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), `"event":"credentials.revoked"`) || !strings.Contains(string(audit), leases[0].ID) {
		t.Errorf("the audit does not record the revocation of lease %s", leases[0].ID)
	}
	for name, pw := range made {
		if strings.Contains(string(audit), pw) || strings.Contains(haystack(t, history(t, h.client, run)), pw) {
			t.Errorf("the password of %s is in the audit or the history", name)
		}
	}

	// Cancelled and terminated while extracting: the role goes too.
	for _, end := range []string{"cancel", "terminate"} {
		run := h.start(workflows.ExtractionWorkflowName, in)
		waitPhase(t, h, run.GetID(), workflows.PhaseExtracting)
		var err error
		if end == "cancel" {
			err = h.client.CancelWorkflow(ctx, run.GetID(), "")
		} else {
			err = h.client.TerminateWorkflow(ctx, run.GetID(), "", "test")
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = run.Get(ctx, nil)
		waitGone("a run " + end + "ed")
	}
	if n := len(vs.Leases()); n != 3 {
		t.Errorf("%d Vault leases for 3 runs", n)
	}
	for _, l := range vs.Leases() {
		if !l.Revoked {
			t.Errorf("lease %s was not revoked", l.ID)
		}
	}
}
