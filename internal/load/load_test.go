package load

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	loadRuns    = 200
	loadSources = 10
	// goroutineSlack is how many goroutines outside the in-process server (agentGoroutines) may
	// remain above the warm baseline after the load: idle keep-alive connections.
	goroutineSlack = 4
)

// clearAgentEnv unsets every SECURE_AGENT_* variable for the test, so the agent runs with the
// defaults of worker/settings.go except what newEnv sets.
func clearAgentEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "SECURE_AGENT_") {
			t.Setenv(name, "") // restores the value after the test
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestLoad200 is issue 7's acceptance test: 200 concurrent ExtractionWorkflows on small SQLite
// sources with one worker; all complete; active leases return to zero; goroutines return to
// baseline; secret-store calls equal the number of distinct secrets within the cache window.
func TestLoad200(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	clearAgentEnv(t)
	e := newEnv(t, loadSources)
	t.Logf("one agent: %d concurrent activities per worker, %d workflow tasks, secret cache TTL %s",
		e.settings.MaxConcurrentActivities, e.settings.MaxConcurrentWorkflowTasks, e.settings.SecretCacheTTL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Warm up: one run through the whole path, then the baseline.
	if err := e.check(e.extract(ctx, "warmup", e.warmup)); err != nil {
		t.Fatalf("warm-up run: %v\nagent warnings:\n%s", err, e.logs.String())
	}
	if !waitFor(10*time.Second, func() bool { return e.agent.ActiveLeases() == 0 }) {
		t.Fatalf("%d leases still active after the warm-up run", e.agent.ActiveLeases())
	}
	baseline := agentGoroutines()

	results, wall := e.extractMany(ctx, "load", loadRuns)

	// All complete, each with its own source's counts and output.
	failed, renewals := 0, 0
	latencies := make([]time.Duration, 0, len(results))
	for _, r := range results {
		latencies = append(latencies, r.latency)
		renewals += r.summary.LeaseRenewals
		if err := e.check(r); err != nil {
			if failed++; failed <= 10 {
				t.Error(err)
			}
		}
	}
	t.Logf("%d runs in %s (%.1f wf/s): latency p50 %s, p95 %s, max %s; lease renewals %d",
		len(results), wall.Round(time.Millisecond), float64(len(results))/wall.Seconds(),
		percentile(latencies, 50).Round(time.Millisecond), percentile(latencies, 95).Round(time.Millisecond),
		percentile(latencies, 100).Round(time.Millisecond), renewals)
	if failed > 0 {
		t.Errorf("%d of %d runs failed or were wrong\nagent warnings:\n%s", failed, len(results), e.logs.String())
	}

	// One store request per distinct secret: the resolver collapses the concurrent fetches of a
	// secret and caches it for the rest of the window.
	hits, unknown := e.store.counts()
	total := 0
	for _, s := range append(e.sources, e.warmup) {
		total += hits[s.secret]
		if hits[s.secret] != 1 {
			t.Errorf("secret %s was requested from the store %d times, want 1 (cache TTL %s)", s.secret, hits[s.secret], e.settings.SecretCacheTTL)
		}
	}
	if unknown != 0 || len(hits) != len(e.sources)+1 {
		t.Errorf("the store saw %d requests for unknown secrets and requests for %d names, want 0 and %d", unknown, len(hits), len(e.sources)+1)
	}
	t.Logf("secret store: %d requests for %d distinct secrets (%d runs)", total, len(e.sources)+1, len(results)+1)

	// Leases return to zero.
	if !waitFor(10*time.Second, func() bool { return e.agent.ActiveLeases() == 0 }) {
		t.Errorf("%d leases still active 10s after the last run completed", e.agent.ActiveLeases())
	}

	// Goroutines return to the warm baseline.
	var now int
	if !waitFor(30*time.Second, func() bool { now = agentGoroutines(); return now <= baseline+goroutineSlack }) {
		t.Errorf("goroutines outside the server: %d, baseline after the warm-up run %d (+%d allowed), 30s after the load; stacks on stderr", now, baseline, goroutineSlack)
		dumpGoroutines()
	} else {
		t.Logf("goroutines outside the server: baseline %d, after the load %d (process-wide now %d)", baseline, now, goroutines())
	}
}

// TestAgentGoroutineCountSeesALeak: the count the load test checks moves with goroutines that
// are not the server's, so a leak of a few of the agent's fails it.
func TestAgentGoroutineCountSeesALeak(t *testing.T) {
	// A steady count first: goroutines of an earlier test may still be ending.
	before := agentGoroutines()
	waitFor(10*time.Second, func() bool {
		time.Sleep(200 * time.Millisecond)
		now := agentGoroutines()
		steady := now == before
		before = now
		return steady
	})
	stop := make(chan struct{})
	for range 3 {
		go func() { <-stop }()
	}
	if got := agentGoroutines(); got < before+3 {
		t.Errorf("3 leaked goroutines: count %d, before %d", got, before)
	}
	close(stop)
	if !waitFor(5*time.Second, func() bool { return agentGoroutines() <= before }) {
		t.Errorf("the count did not come back to %d", before)
	}
}
