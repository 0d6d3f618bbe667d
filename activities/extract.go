package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/secure-agent/secure-agent/audit"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets"
)

// Schema is one schema of a run, with its stable position in the run's sorted schema list. The
// position names the schema's output part, so a retried batch replaces its own parts.
type Schema struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
}

// ExtractInput is one batch of schemas to extract.
type ExtractInput struct {
	LeaseInput
	Schemas []Schema           `json:"schemas"`
	Filters connectors.Filters `json:"filters,omitzero"`
	Prefix  string             `json:"prefix,omitempty"`
	// Source is the input's source label, written on every entity (see connectors: Names and
	// owners).
	Source string `json:"source,omitempty"`
}

// ExtractResult counts what one batch wrote, per entity kind.
type ExtractResult struct {
	Counts map[string]int64 `json:"counts"`
	// Redactions counts the values of the run's sensitive fields found in extracted text
	// (a view's definition, a comment) and replaced by [REDACTED] before it was written.
	Redactions int `json:"redactions,omitempty"`
}

// Cursor is the heartbeat of ExtractSchemas: which schemas of the batch are committed, and what
// they held. It holds positions and counts, never data or credentials.
type Cursor struct {
	// Next is the position in ExtractInput.Schemas of the first schema not yet committed.
	Next int `json:"next"`
	// Counts are the entities of the committed schemas.
	Counts map[string]int64 `json:"counts"`
	// Redactions are the values replaced in the committed schemas (see ExtractResult).
	Redactions int `json:"redactions,omitempty"`
	// Running are the entities the attempt in progress has written so far, per kind, not yet
	// committed: for progress only (`secure-agent run` adds them to the run's counts). A retried
	// attempt ignores them.
	Running map[string]int64 `json:"running,omitempty"`
}

// ExtractSchemas extracts a batch of schemas in one pass (a few set-based catalog queries for the
// whole batch: per-schema queries would each scan the whole catalog) into one output part, named
// by the batch's first schema position, and commits it. It heartbeats a Cursor; a retried
// attempt of a committed batch returns at once, and one that was in progress extracts the batch
// again and replaces its part, so nothing is duplicated or lost. options.schemasPerBatch sets
// the grain of that trade. It stops when cancelled or when the worker shuts down.
func (a *Activities) ExtractSchemas(ctx context.Context, in ExtractInput) (*ExtractResult, error) {
	if err := checkPrefix(in.Prefix); err != nil {
		return nil, appError(err, true)
	}
	if err := checkFilters(in.Filters); err != nil {
		return nil, appError(err, true)
	}
	if len(in.Schemas) == 0 {
		return &ExtractResult{Counts: map[string]int64{}}, nil
	}
	var cur Cursor
	if !activity.HasHeartbeatDetails(ctx) || activity.GetHeartbeatDetails(ctx, &cur) != nil || cur.Next != len(in.Schemas) {
		cur = Cursor{Counts: map[string]int64{}}
	}
	if cur.Next == len(in.Schemas) {
		return &ExtractResult{Counts: cur.Counts, Redactions: cur.Redactions}, nil // committed before the previous attempt ended
	}
	dir := a.runDir(ctx, in.Connector, in.Prefix)

	// Stop promptly when the worker shuts down: cancel our own context.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopping := errors.New("worker stopping")
	go func() {
		select {
		case <-activity.GetWorkerStopChannel(ctx):
			cancel(stopping)
		case <-ctx.Done():
		}
	}()

	err := a.withSource(ctx, in.LeaseInput, func(src connectors.Source) error {
		running := &runningCounts{m: map[string]int64{}}
		stopBeating := keepAlive(ctx, a.heartbeatEvery(), func() {
			activity.RecordHeartbeat(ctx, Cursor{Counts: map[string]int64{}, Running: running.snapshot()})
		})
		res, err := a.extractBatch(ctx, src, dir, in, running)
		stopBeating() // before the commit heartbeat, which no liveness beat may overwrite
		if err != nil {
			return err
		}
		cur = Cursor{Next: len(in.Schemas), Counts: res.Counts, Redactions: res.Redactions}
		activity.RecordHeartbeat(ctx, cur)
		return nil
	})
	if errors.Is(context.Cause(ctx), stopping) {
		// The worker's leases die with it: say so, and the workflow resolves the secrets again on
		// a live worker at once, instead of retrying on this queue until schedule-to-start.
		// Committed batches are kept; this one is extracted again and replaces its own part.
		return nil, appError(&secrets.Error{Kind: secrets.LeaseNotFound,
			Msg: "the worker holding the credentials is shutting down; the workflow resolves them again on another worker and resumes"}, true)
	}
	if err != nil {
		return nil, err
	}
	res := &ExtractResult{Counts: cur.Counts, Redactions: cur.Redactions}
	a.batchDone(ctx, in.Connector, res)
	return res, nil
}

// batchDone counts a committed batch in the metrics and audits its redactions.
func (a *Activities) batchDone(ctx context.Context, connector string, res *ExtractResult) {
	if a.Metrics != nil {
		a.Metrics.EntitiesExtracted(connector, res.Counts)
		if res.Redactions > 0 {
			a.Metrics.OutputRedacted(connector, res.Redactions)
		}
	}
	if res.Redactions > 0 {
		a.audit(ctx, audit.Event{Event: audit.OutputRedacted, Count: res.Redactions, Outcome: "ok",
			Reason: "extracted text held values of the run's sensitive fields; they were written as [REDACTED]"})
	}
}

// PartID names a batch's output part by the position of its first schema.
func PartID(batch []Schema) string {
	if len(batch) == 0 {
		return ""
	}
	return fmt.Sprintf("b%06d", batch[0].Index)
}

// extractBatch writes the batch's schemas to its part and commits it, one segment per schema and
// kind (output.Plan). Every entity passes through the run's redactor first: a value of one of
// the run's sensitive fields in extracted text (a view definition with a connection string, a
// comment, a default) is written as [REDACTED].
func (a *Activities) extractBatch(ctx context.Context, src connectors.Source, dir string, in ExtractInput, running *runningCounts) (*ExtractResult, error) {
	if running == nil {
		running = &runningCounts{m: map[string]int64{}}
	}
	names := make([]string, len(in.Schemas))
	for i, s := range in.Schemas {
		names[i] = s.Name
	}
	part, err := output.NewPlannedPartWriter(dir, PartID(in.Schemas), output.Plan{Units: names})
	if err != nil {
		return nil, appError(err, true) // output errors name the agent's own directory: safe
	}
	info := activity.GetInfo(ctx)
	guard := a.Leases.Guard(info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
	defer guard.Zero()
	w := &countingWriter{inner: part, guard: guard, match: guard.Matcher(), source: in.Source, counts: running}
	if err := src.Extract(ctx, names, in.Filters, w); err != nil {
		_ = part.Abort()
		return nil, err
	}
	if err := part.Commit(); err != nil {
		_ = part.Abort()
		return nil, appError(err, true)
	}
	return &ExtractResult{Counts: running.snapshot(), Redactions: w.redactions}, nil
}

// heartbeatEvery is how often a running extraction tells Temporal it is alive, whether or not
// rows are arriving (a large catalog query can take a while before its first row), with the
// entities written so far (Cursor.Running). The activity's heartbeat timeout (workflows: 20 s)
// is many of these, so a killed worker is noticed within it; the worker sends a pending
// heartbeat to the server at most this often too (worker: MaxHeartbeatThrottleInterval), so
// that progress moves inside a batch.
const heartbeatEvery = time.Second

func (a *Activities) heartbeatEvery() time.Duration {
	if a.HeartbeatEvery > 0 {
		return a.HeartbeatEvery
	}
	return heartbeatEvery
}

// runningCounts are the entities a batch's attempt has written so far, per kind: written by the
// extraction, read by the heartbeat, and the batch's counts once it commits.
type runningCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (r *runningCounts) add(kind string) {
	r.mu.Lock()
	r.m[kind]++
	r.mu.Unlock()
}

func (r *runningCounts) snapshot() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.m)
}

// keepAlive calls beat (a heartbeat of an empty cursor: nothing committed yet) at once and then
// every interval, until ctx ends or stop is called; stop returns once beat will not be called
// again.
func keepAlive(ctx context.Context, every time.Duration, beat func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		beat()
		for {
			select {
			case <-tick.C:
				beat()
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// countingWriter redacts the entities it passes on and counts them, per kind.
type countingWriter struct {
	inner      connectors.EntityWriter
	guard      *secrets.Guard
	match      secrets.Matcher // guard's view, valid until the batch's guard is zeroed
	redactions int
	// source is the run's source label, set on each entity after redaction.
	source string
	// counts are the entities written, per kind (the heartbeat reads them as they grow).
	counts *runningCounts
}

func (w *countingWriter) Write(e connectors.Entity) error {
	e, n := redactEntity(e, w.guard, w.match)
	w.redactions += n
	e = withSource(e, w.source)
	if err := w.inner.Write(e); err != nil {
		return appError(err, true) // an output error names the agent's own directory: safe to show
	}
	w.counts.add(e.Kind())
	return nil
}

// FinalizeInput is the input of Finalize.
type FinalizeInput struct {
	Connector string    `json:"connector"`
	Prefix    string    `json:"prefix,omitempty"`
	Identity  string    `json:"identity,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	// Release, when set, is the run's lease: Finalize releases it once the manifest is written,
	// saving the run a round trip through the server when nothing else needs the credentials.
	Release *Lease `json:"release,omitempty"`
	// Expected, when set, lists the parts the run's batches committed (part id -> kinds with at
	// least one entity). Finalize writes nothing and returns the missing ones when some are not
	// on this worker's disk: they were committed by a worker that was lost.
	Expected map[string][]string `json:"expected,omitempty"`
	// Incremental, when set, has Finalize report the changes against Incremental.Previous and
	// record the run as its source's state.
	Incremental *Incremental `json:"incremental,omitempty"`
	// Formats are the catalog formats (output.FormatOpenLineage, output.FormatDataHub) Finalize
	// also writes the run in, listed in the manifest's formats.
	Formats []string `json:"formats,omitempty"`
}

// FinalizeResult says where the output is.
type FinalizeResult struct {
	Dir      string           `json:"dir"`
	Manifest string           `json:"manifest"`
	Counts   map[string]int64 `json:"counts"`
	Files    int              `json:"files"`
	// Missing are the expected parts this worker does not have, sorted; when set, nothing was
	// written and the lease was not released.
	Missing []string `json:"missing,omitempty"`
	// Changes, for an incremental run with a previous run, says what changed since it.
	Changes *ChangesSummary `json:"changes,omitempty"`
	// Formats are the files of the catalog formats the input asked for, in the run directory.
	Formats []string `json:"formats,omitempty"`
	// ReuseLost says that the previous run's output to reuse is not on this worker's disk (or no
	// longer complete): nothing was written, and the run must extract Incremental.Reused.
	ReuseLost bool `json:"reuseLost,omitempty"`
}

// ChangesSummary is output.Changes in counts (the names are in the manifest).
type ChangesSummary struct {
	Previous         output.RunRef `json:"previous"`
	ReusedSchemas    int           `json:"reusedSchemas"`
	ExtractedSchemas int           `json:"extractedSchemas"`
	AddedSchemas     int           `json:"addedSchemas"`
	RemovedSchemas   int           `json:"removedSchemas"`
	RemovedObjects   int64         `json:"removedObjects"`
}

// Finalize joins the committed parts into one file per entity kind and writes manifest.json
// last, then releases the lease when asked. It runs on the lease's queue, where the parts are.
func (a *Activities) Finalize(ctx context.Context, in FinalizeInput) (*FinalizeResult, error) {
	info := activity.GetInfo(ctx)
	if err := checkPrefix(in.Prefix); err != nil {
		return nil, appError(err, true)
	}
	spec, ok := connectors.Lookup(in.Connector)
	if !ok {
		return nil, appError(&secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("connector %q is not supported", in.Connector)}, true)
	}
	dir := a.runDir(ctx, in.Connector, in.Prefix)
	if in.Expected != nil {
		missing, err := output.MissingParts(dir, in.Expected)
		if err != nil {
			return nil, appError(err, true)
		}
		if len(missing) > 0 {
			a.logger().Warn("parts committed by a lost worker are not on this worker's disk; the workflow extracts them again",
				"workflowId", info.WorkflowExecution.ID, "runId", info.WorkflowExecution.RunID, "parts", len(missing))
			return &FinalizeResult{Dir: dir, Missing: missing}, nil
		}
	}
	meta := output.ManifestMeta{
		Connector:   in.Connector,
		WorkflowID:  info.WorkflowExecution.ID,
		RunID:       info.WorkflowExecution.RunID,
		Identity:    in.Identity,
		StartedAt:   in.StartedAt,
		Kinds:       spec.Kinds,
		Unsupported: spec.Unsupported(),
	}
	if inc := in.Incremental; inc != nil && inc.Previous != nil {
		meta.Reuse = &output.Reuse{Previous: *inc.Previous, Schemas: inc.Reused,
			PreviousDir: output.RunDir(a.OutputRoot, in.Prefix, in.Connector, inc.Previous.WorkflowID, inc.Previous.RunID)}
	}
	// Names Finalize writes itself (the schemas' index, the changes) get the run's redaction, as
	// every entity did.
	guard := a.Leases.Guard(info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
	defer guard.Zero()
	meta.Redact = func(s string) string {
		r, _ := guard.Redact(s)
		return r
	}
	if len(in.Formats) > 0 {
		meta.Formats = a.catalogFormats(in.Connector, in.Formats, guard)
	}
	m, err := output.Finalize(dir, meta)
	if errors.Is(err, output.ErrReuseUnavailable) {
		a.logger().Warn("the previous run's output to reuse is not on this worker's disk; the workflow extracts those schemas",
			"workflowId", info.WorkflowExecution.ID, "runId", info.WorkflowExecution.RunID)
		return &FinalizeResult{Dir: dir, ReuseLost: true}, nil
	}
	if err != nil {
		return nil, appError(err, true)
	}
	if inc := in.Incremental; inc != nil && inc.Key != "" {
		// The next auto run of this source compares with this one.
		run := output.RunRef{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID}
		if !inc.ValuesChanged {
			a.clean.remember(run, guard)
		}
		if err := output.WriteState(a.OutputRoot, in.Prefix, in.Connector, inc.Key, run, m.FinishedAt); err != nil {
			return nil, appError(err, true)
		}
	}
	if in.Release != nil {
		// Idempotent: a retried Finalize finds the lease already gone, which is what it wants.
		if err := a.Leases.Release(in.Release.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID); err != nil {
			return nil, appError(err, true)
		}
		a.logger().Info("credentials released", "workflowId", info.WorkflowExecution.ID, "runId", info.WorkflowExecution.RunID)
	}
	if a.Metrics != nil {
		bytes := make(map[string]int64, len(m.Files))
		for _, f := range m.Files {
			bytes[f.Entity] += f.Bytes
		}
		a.Metrics.OutputWritten(in.Connector, bytes)
	}
	res := &FinalizeResult{Dir: dir, Manifest: output.ManifestPath(dir), Counts: m.Counts, Files: len(m.Files)}
	for _, f := range m.Formats {
		res.Formats = append(res.Formats, f.Name)
	}
	if c := m.Changes; c != nil {
		res.Changes = &ChangesSummary{Previous: c.Previous, ReusedSchemas: c.Reused, ExtractedSchemas: c.Extracted,
			AddedSchemas: len(c.Added), RemovedSchemas: len(c.Removed), RemovedObjects: c.RemovedObjects}
	}
	return res, nil
}
