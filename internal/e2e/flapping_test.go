package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// scriptedStore is a custom HTTP secret store whose answers follow a script per secret name:
// each request for a name takes the next status of its script (the last one repeats). It
// records when each request arrived.
type scriptedStore struct {
	mu      sync.Mutex
	scripts map[string][]answer
	paths   map[string]string // secret name -> the SQLite path its JSON holds
	seen    map[string][]time.Time
}

// answer is one scripted response: a status and, for failures, an optional Retry-After.
type answer struct {
	status     int
	retryAfter int // seconds; 0 sends no header
}

func (s *scriptedStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	n := len(s.seen[name])
	s.seen[name] = append(s.seen[name], time.Now())
	script := s.scripts[name]
	s.mu.Unlock()
	if len(script) == 0 {
		http.NotFound(w, r)
		return
	}
	a := script[min(n, len(script)-1)]
	if a.status != http.StatusOK {
		if a.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(a.retryAfter))
		}
		w.WriteHeader(a.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"db_path": s.paths[name]})
}

// requests returns the arrival times of the requests for name.
func (s *scriptedStore) requests(name string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.seen[name]...)
}

var (
	ans503 = answer{status: http.StatusServiceUnavailable}
	ans429 = answer{status: http.StatusTooManyRequests, retryAfter: 3}
	ans200 = answer{status: http.StatusOK}
)

// TestStoreFlapping runs extractions against a store that fails half of its requests, with 503
// and with 429 plus Retry-After. Every run completes, each secret is requested exactly as often
// as its script needs (one store call per attempt, no hidden retries), and every retry waits as
// the README's table says: the first retry 1 s after a 503, and the store's Retry-After (3 s,
// longer than any backoff here) after a 429.
func TestStoreFlapping(t *testing.T) {
	store := &scriptedStore{
		scripts: map[string][]answer{
			"a": {ans503, ans200},
			"b": {ans429, ans200},
			"c": {ans503, ans429, ans200},
			"d": {ans200},
		},
		paths: map[string]string{}, seen: map[string][]time.Time{},
	}
	tables := map[string]int{}
	for name := range store.scripts {
		store.paths[name] = filepath.Join(t.TempDir(), name+".db")
		tables[name], _ = makeShop(t, store.paths[name])
	}
	storeURL := customStore(t, store.ServeHTTP)
	h := newHarness(t, func(s *worker.Settings) { s.CustomStoreHosts = []string{"127.0.0.1:*"} })

	runs := map[string]client.WorkflowRun{}
	for name := range store.scripts {
		runs[name] = h.start(workflows.ExtractionWorkflowName, customInput(storeURL, name))
	}
	for name, run := range runs {
		var sum workflows.Summary
		if err := run.Get(context.Background(), &sum); err != nil {
			t.Fatalf("run on secret %s: %v", name, err)
		}
		if sum.Counts["tables"] != int64(tables[name]) {
			t.Errorf("run on secret %s: %d tables, want %d", name, sum.Counts["tables"], tables[name])
		}
	}

	failures, total := 0, 0
	for name, script := range store.scripts {
		seen := store.requests(name)
		want := 1
		for _, a := range script {
			if a.status == http.StatusOK {
				break
			}
			want++
		}
		if len(seen) != want {
			t.Errorf("secret %s: %d store requests, want %d (one per attempt)", name, len(seen), want)
			continue
		}
		total += len(seen)
		failures += len(seen) - 1
		for i := 1; i < len(seen); i++ {
			gap, prev := seen[i].Sub(seen[i-1]), script[i-1]
			// The retry policy's first interval is 1 s, the second 2 s; a Retry-After replaces it.
			lo := time.Duration(1<<(i-1)) * time.Second
			if prev.retryAfter > 0 {
				lo = time.Duration(prev.retryAfter) * time.Second
			}
			if gap < lo-100*time.Millisecond || gap > lo+3*time.Second {
				t.Errorf("secret %s: retry %d came %v after a %d answer, want about %v", name, i, gap.Round(time.Millisecond), prev.status, lo)
			}
		}
	}
	if failures*2 != total {
		t.Fatalf("the store failed %d of %d requests; the scripts were meant to fail half", failures, total)
	}
}

// TestStoreDownLongerThanBound keeps the store failing for longer than the run's retry bound
// (options.resolveTimeoutSeconds = 10): the run fails with StoreUnavailable, says that the bound
// ran out, and does so within the bound, after a bounded number of attempts.
func TestStoreDownLongerThanBound(t *testing.T) {
	store := &scriptedStore{
		scripts: map[string][]answer{"down": {ans503}, "throttling": {ans429}},
		paths:   map[string]string{}, seen: map[string][]time.Time{},
	}
	storeURL := customStore(t, store.ServeHTTP)
	h := newHarness(t, func(s *worker.Settings) { s.CustomStoreHosts = []string{"127.0.0.1:*"} })
	const bound = 10 * time.Second

	for _, c := range []struct {
		name               string
		minCalls, maxCalls int
		lastKind           secrets.Kind
	}{
		{"down", 3, 5, secrets.StoreUnavailable}, // attempts at 0, 1, 3, 7 s; the next would be at 15 s
		{"throttling", 3, 5, secrets.Throttled},  // attempts every 3 s (Retry-After)
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := customInput(storeURL, c.name)
			in.Options.ResolveTimeoutSeconds = int(bound / time.Second)
			start := time.Now()
			err := h.start(workflows.ExtractionWorkflowName, in).Get(context.Background(), nil)
			elapsed := time.Since(start)
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) || ae.Type() != string(secrets.StoreUnavailable) {
				t.Fatalf("the run ended with %v, want a StoreUnavailable failure", err)
			}
			for _, want := range []string{"longer than the retry bound of 10s", "resolveTimeoutSeconds", string(c.lastKind)} {
				if !strings.Contains(ae.Message(), want) {
					t.Errorf("message %q does not say %q", ae.Message(), want)
				}
			}
			t.Logf("after %v: %s", elapsed.Round(time.Millisecond), ae.Message())
			if !ae.NonRetryable() {
				t.Error("the failure is retryable; the bound is final")
			}
			if elapsed > bound+5*time.Second {
				t.Errorf("the run failed after %v, outside its bound of %v", elapsed.Round(time.Millisecond), bound)
			}
			if n := len(store.requests(c.name)); n < c.minCalls || n > c.maxCalls {
				t.Errorf("%d store requests within the bound, want %d to %d", n, c.minCalls, c.maxCalls)
			}
			if h.agent.ActiveLeases() != 0 {
				t.Errorf("%d leases active after a run that never resolved", h.agent.ActiveLeases())
			}
		})
	}
}
