package load

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// noopWorkflowName and noopActivityName name the floor: a workflow that runs one activity that
// does nothing.
const (
	noopWorkflowName = "LoadNoopWorkflow"
	noopActivityName = "LoadNoopActivity"
)

func noopWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	return workflow.ExecuteActivity(ctx, noopActivityName).Get(ctx, nil)
}

func noopActivity(context.Context) error { return nil }

// benchWorkflows is the batch size: SECURE_AGENT_BENCH_WORKFLOWS, default 200.
func benchWorkflows(b *testing.B) int {
	v := os.Getenv("SECURE_AGENT_BENCH_WORKFLOWS")
	if v == "" {
		return loadRuns
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("SECURE_AGENT_BENCH_WORKFLOWS must be a positive integer, got %q", v)
	}
	return n
}

// serialRuns is how many runs of each kind go one at a time, before the batches: their latency
// is the per-workflow cost without queueing.
const serialRuns = 10

// batch is the measurements of one kind of workflow.
type batch struct {
	latencies []time.Duration
	wall      time.Duration
	cpu       time.Duration // CPU time of the whole process (server, agent, clients)
	runs      int
}

func (s *batch) add(latencies []time.Duration, wall, cpu time.Duration) {
	s.latencies = append(s.latencies, latencies...)
	s.wall += wall
	s.cpu += cpu
	s.runs += len(latencies)
}

// cpuTime returns the CPU time (user and system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (s *batch) perSecond() float64 { return float64(s.runs) / s.wall.Seconds() }

// BenchmarkLoad runs N (SECURE_AGENT_BENCH_WORKFLOWS, default 200) small extractions at once on
// one agent, then N no-op workflows (one no-op activity each) at once on a plain SDK worker with
// the same concurrency limits, on the same server, and reports throughput and latency of both.
// The agent's settings are the defaults of worker/settings.go unless SECURE_AGENT_* variables
// say otherwise. Run it with -benchtime 1x (bench/load.sh does).
func BenchmarkLoad(b *testing.B) {
	n := benchWorkflows(b)
	e := newEnv(b, loadSources)
	noopQueue := e.settings.TaskQueue + "-noop"
	w := sdkworker.New(e.client, noopQueue, sdkworker.Options{
		MaxConcurrentActivityExecutionSize:     e.settings.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskExecutionSize: e.settings.MaxConcurrentWorkflowTasks,
	})
	w.RegisterWorkflowWithOptions(noopWorkflow, workflow.RegisterOptions{Name: noopWorkflowName})
	w.RegisterActivityWithOptions(noopActivity, activity.RegisterOptions{Name: noopActivityName})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()

	// Warm both paths once (connections, sticky caches, the first store client).
	if err := e.check(e.extract(ctx, "warmup", e.warmup)); err != nil {
		b.Fatalf("warm-up extraction: %v\nagent warnings:\n%s", err, e.logs.String())
	}
	if _, _, err := runOne(ctx, e.client, noopQueue+"-warmup", noopQueue, noopWorkflowName, nil, nil); err != nil {
		b.Fatalf("warm-up no-op: %v", err)
	}

	// One at a time: the latency of each kind without queueing.
	var serialExtraction, serialNoop batch
	for i := range serialRuns {
		cpu := cpuTime()
		r := e.extract(ctx, fmt.Sprintf("serial-%03d", i), e.sources[i%len(e.sources)])
		if err := e.check(r); err != nil {
			b.Fatalf("%v\nagent warnings:\n%s", err, e.logs.String())
		}
		serialExtraction.add([]time.Duration{r.latency}, r.latency, cpuTime()-cpu)
		cpu = cpuTime()
		_, lat, err := runOne(ctx, e.client, fmt.Sprintf("%s-serial-%03d", noopQueue, i), noopQueue, noopWorkflowName, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		serialNoop.add([]time.Duration{lat}, lat, cpuTime()-cpu)
	}

	var extraction, noop batch
	renewals := 0
	b.ResetTimer()
	for i := range b.N {
		cpu := cpuTime()
		results, wall := e.extractMany(ctx, fmt.Sprintf("bench-%d", i), n)
		lat := make([]time.Duration, len(results))
		for j, r := range results {
			if err := e.check(r); err != nil {
				b.Fatalf("%v\nagent warnings:\n%s", err, e.logs.String())
			}
			lat[j] = r.latency
			renewals += r.summary.LeaseRenewals
		}
		extraction.add(lat, wall, cpuTime()-cpu)

		cpu = cpuTime()
		lat, wall, err := noopMany(ctx, e, noopQueue, fmt.Sprintf("%s-%d", noopQueue, i), n)
		if err != nil {
			b.Fatal(err)
		}
		noop.add(lat, wall, cpuTime()-cpu)
	}
	b.StopTimer()

	ep50, ep95 := percentile(extraction.latencies, 50), percentile(extraction.latencies, 95)
	np50, np95 := percentile(noop.latencies, 50), percentile(noop.latencies, 95)
	ratio := ms(ep95) / ms(np95)
	b.ReportMetric(extraction.perSecond(), "extract-wf/s")
	b.ReportMetric(ms(ep50), "extract-p50-ms")
	b.ReportMetric(ms(ep95), "extract-p95-ms")
	b.ReportMetric(noop.perSecond(), "noop-wf/s")
	b.ReportMetric(ms(np50), "noop-p50-ms")
	b.ReportMetric(ms(np95), "noop-p95-ms")
	b.ReportMetric(ratio, "p95-ratio")

	hits, _ := e.store.counts()
	calls := 0
	for _, c := range hits {
		calls += c
	}
	fmt.Printf("\nload: %d concurrent workflows x %d batch(es), one agent (%d activities, %d workflow tasks per worker), %d SQLite sources\n",
		n, b.N, e.settings.MaxConcurrentActivities, e.settings.MaxConcurrentWorkflowTasks, len(e.sources))
	fmt.Printf("%-24s %6s %8s %8s %8s %8s %10s\n", "workflow", "runs", "wall s", "wf/s", "p50 ms", "p95 ms", "cpu cores")
	for _, row := range []struct {
		name string
		s    *batch
	}{{fmt.Sprintf("extraction, %d at once", n), &extraction}, {fmt.Sprintf("no-op, %d at once", n), &noop},
		{"extraction, 1 at a time", &serialExtraction}, {"no-op, 1 at a time", &serialNoop}} {
		fmt.Printf("%-24s %6d %8.2f %8.1f %8.0f %8.0f %10.2f\n", row.name, row.s.runs, row.s.wall.Seconds(), row.s.perSecond(),
			ms(percentile(row.s.latencies, 50)), ms(percentile(row.s.latencies, 95)), row.s.cpu.Seconds()/row.s.wall.Seconds())
	}
	verdict := "within"
	if ratio > 4 {
		verdict = "NOT within"
	}
	serialRatio := ms(percentile(serialExtraction.latencies, 95)) / ms(percentile(serialNoop.latencies, 95))
	b.ReportMetric(serialRatio, "serial-p95-ratio")
	fmt.Printf("p95 extraction / p95 no-op = %.2f at %d at once (%s the 4x target), %.2f one at a time\n", ratio, n, verdict, serialRatio)
	fmt.Printf("lease renewals %d; secret store calls %d for %d distinct secrets; %d CPUs\n\n", renewals, calls, len(hits), runtime.NumCPU())
}

// noopMany starts n no-op workflows at once and waits for all of them.
func noopMany(ctx context.Context, e *env, queue, prefix string, n int) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, lat[i], errs[i] = runOne(ctx, e.client, fmt.Sprintf("%s-%03d", prefix, i), queue, noopWorkflowName, nil, nil)
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return nil, 0, err
		}
	}
	return lat, wall, nil
}
