package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
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
func TestNoSecretLeaks(t *testing.T) {
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
	h := newHarness(t, func(s *worker.Settings) { s.CustomStoreHosts = []string{"127.0.0.1:*"} })

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
