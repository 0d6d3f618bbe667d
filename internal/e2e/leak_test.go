package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestNoSecretLeaks plants canary secret values, runs the success, failure and cancellation
// paths on the real server, then searches everything Temporal and the agent keep — every event
// of every history (payloads decoded), query results, the workers' logs at debug level and the
// output files — for the canaries.
func TestNoSecretLeaks(t *testing.T) { leakScenario(t, false) }

// TestNoSecretLeaksEncrypted runs the same scenario with payload encryption on: the agent and the
// client share codec keys, every payload and failure message in history is ciphertext, and the
// search still finds nothing.
func TestNoSecretLeaksEncrypted(t *testing.T) { leakScenario(t, true) }

func leakScenario(t *testing.T, encrypted bool) {
	canary := "canary-" + randomHex(t)
	dir := filepath.Join(t.TempDir(), canary) // the secret is a path: the canary is in it
	good := filepath.Join(dir, "shop.db")
	makeShop(t, good)
	missing := filepath.Join(dir, "missing.db")
	locked := filepath.Join(dir, "locked.db")
	makeShop(t, locked)

	var flakyHits atomic.Int64
	storeURL := customStore(t, func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		secret := map[string]string{"good": good, "missing": missing, "locked": locked}[name]
		switch {
		case name == "denied":
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error": "denied, and here is a canary in the body: ` + canary + `"}`))
			return
		case name == "flaky" && flakyHits.Add(1) == 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(canary))
			return
		case name == "flaky":
			secret = good
		case secret == "":
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Secret-Version", "v7")
		_ = json.NewEncoder(w).Encode(map[string]string{"db_path": secret, "unused_password": canary + "-pw"})
	})
	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	h := newHarness(t, func(s *worker.Settings) {
		s.CustomStoreHosts = []string{"127.0.0.1:*"}
		s.Audit = auditFile
		if encrypted {
			s.CodecKeys = "e2e-key:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
		}
	})

	var runs []client.WorkflowRun
	// Success, and success after a retried store error.
	for _, name := range []string{"good", "flaky"} {
		run := h.start(workflows.ExtractionWorkflowName, customInput(storeURL, name))
		if err := run.Get(context.Background(), nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		runs = append(runs, run)
	}
	// Failures: the source is missing (the error is about a secret path), and the store refuses.
	for _, name := range []string{"missing", "denied"} {
		run := h.start(workflows.ExtractionWorkflowName, customInput(storeURL, name))
		if err := run.Get(context.Background(), nil); err == nil {
			t.Fatalf("%s: the run succeeded", name)
		}
		runs = append(runs, run)
	}
	// A connection test, which fails the same way.
	run := h.start(workflows.TestConnectionWorkflowName, customInput(storeURL, "missing"))
	_ = run.Get(context.Background(), nil)
	runs = append(runs, run)
	// Cancellation while Preflight waits on a locked database.
	unlock := lockExclusively(t, locked)
	run = h.start(workflows.ExtractionWorkflowName, customInput(storeURL, "locked"))
	waitPhase(t, h, run.GetID(), workflows.PhasePreflight)
	if err := h.client.CancelWorkflow(context.Background(), run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	_ = run.Get(context.Background(), nil)
	unlock()
	runs = append(runs, run)

	// Let late activities (the released lease, the cancelled preflight) finish and log.
	deadline := time.Now().Add(10 * time.Second)
	for h.agent.ActiveLeases() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}

	var where []string
	check := func(what, text string) {
		if strings.Contains(text, canary) {
			i := strings.Index(text, canary)
			where = append(where, what+": …"+text[max(0, i-120):min(len(text), i+len(canary)+40)]+"…")
		}
	}
	for _, run := range runs {
		check("history of "+run.GetID(), haystack(t, history(t, h.client, run)))
		desc, err := h.client.DescribeWorkflowExecution(context.Background(), run.GetID(), run.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		check("description of "+run.GetID(), haystack(t, desc))
		if v, err := h.client.QueryWorkflow(context.Background(), run.GetID(), run.GetRunID(), workflows.QueryProgress); err == nil {
			var p any
			_ = v.Get(&p)
			js, _ := json.Marshal(p)
			check("progress query of "+run.GetID(), string(js))
		}
	}
	check("agent logs", h.logs.String())
	auditText, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	check("audit trail", string(auditText))
	checkAudit(t, string(auditText), runs[0].GetID())
	if encrypted {
		first := history(t, h.client, runs[0]).Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
		if string(first.GetMetadata()["encoding"]) != "binary/encrypted" {
			t.Fatalf("encrypted mode, but the input is stored as %q", first.GetMetadata()["encoding"])
		}
	}
	check("output", outputText(t, h.settings.OutputDir))
	for _, w := range where {
		t.Errorf("canary leaked in %s", w)
	}
	if !strings.Contains(h.logs.String(), `"secret access"`) {
		t.Error("the leak scan saw no secret-access log lines: the logger is not capturing debug output")
	}
}

func randomHex(t *testing.T) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// checkAudit checks that the successful run's secret read is in the audit trail with the run,
// activity, store, secret, key and field names and version, and that reads and denials are
// JSON lines.
func checkAudit(t *testing.T, text, workflowID string) {
	t.Helper()
	found := false
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line is not JSON: %q", line)
		}
		if ev["workflowId"] == workflowID && ev["event"] == "secret.read" && ev["outcome"] == "ok" {
			found = ev["activity"] == "ResolveSecrets" && ev["store"] == "custom" && ev["secret"] == "good" &&
				ev["version"] == "v7" && fmt.Sprint(ev["keys"]) == "[db_path]" && fmt.Sprint(ev["fields"]) == "[path]" && ev["runId"] != ""
			if !found {
				t.Fatalf("incomplete audit line: %s", line)
			}
		}
	}
	if !found {
		t.Fatalf("no audit line for the successful read of run %s:\n%s", workflowID, text)
	}
	if !strings.Contains(text, `"outcome":"AccessDenied"`) {
		t.Errorf("the refused read is not audited:\n%s", text)
	}
}
