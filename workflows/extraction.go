// Package workflows holds the agent's deterministic workflow code and the input and result types
// that are its public contract: ExtractionWorkflow and TestConnectionWorkflow.
//
// The flow reads top to bottom: validate the input, resolve secrets into a lease, preflight the
// source with it, extract schema batches with bounded concurrency, finalize the output, and
// release the lease (also after failure or cancellation).
package workflows

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/output/push"
	"github.com/secure-agent/secure-agent/secrets"
)

// Change ids for workflow.GetVersion, one per change to a workflow's command sequence.
const (
	// changePublishToS3 adds the Publish activity after Finalize for s3 outputs.
	changePublishToS3 = "publish-to-s3"
	// changeRefuseUnknownFields makes an unknown input field a validation problem.
	changeRefuseUnknownFields = "refuse-unknown-fields"
	// changeCheckParts has Finalize check that every committed part is on its worker's disk,
	// and extracts again the batches whose parts were committed by a lost worker.
	changeCheckParts = "check-parts"
	// changeStoreFields accepts secretStore.fields (one secret per field) and Azure's
	// workload-identity in validation.
	changeStoreFields = "store-fields"
	// changeSourceLabel accepts the input's source label (written on every entity).
	changeSourceLabel = "source-label"
	// changeEvenBatches splits the schemas evenly over maxConcurrentBatches when the input sets
	// no schemasPerBatch (see evenBatchSize), instead of batches of DefaultSchemasPerBatch.
	changeEvenBatches = "even-batches"
	// changeIncremental accepts options.incremental (see activities.Incremental) in validation.
	// The mode travels in the activities' inputs; the command sequence does not change.
	changeIncremental = "incremental"
	// changeFewerRoundTrips lists the schemas in Preflight (no ListSchemas activity) and, for a
	// local output, releases the lease in Finalize (no ReleaseCredentials activity on success).
	changeFewerRoundTrips = "fewer-round-trips"
	// changeFormats accepts output.formats in validation. The formats travel in Finalize's input;
	// the command sequence does not change.
	changeFormats = "formats"
	// changePush accepts output.push in validation; a run that has it adds PushCatalog after
	// Finalize (and Publish). Runs validated with older rules never have it, so the activity
	// needs no gate of its own.
	changePush = "catalog-push"
	// changeVault accepts the vault store type in validation; the command sequence of a run
	// that uses it is the same as any other store's.
	changeVault = "vault-store"
	// changeIAM accepts the postgres connector's authMethod and awsRegion fields in validation.
	changeIAM = "iam-auth"
)

// validateInput is Input.Validate as of the run's version: a run started before unknown fields
// were refused keeps ignoring them, and one started before secretStore.fields and Azure's
// workload-identity existed keeps refusing them, so its replay decides as it did.
func validateInput(ctx workflow.Context, in Input) []string {
	if workflow.GetVersion(ctx, changeRefuseUnknownFields, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		in.problems.unknownField = ""
	}
	switch {
	case workflow.GetVersion(ctx, changeStoreFields, workflow.DefaultVersion, 1) == workflow.DefaultVersion:
		in.before = rulesBeforeStoreFields
	case workflow.GetVersion(ctx, changeSourceLabel, workflow.DefaultVersion, 1) == workflow.DefaultVersion:
		in.before = rulesBeforeSource
	case workflow.GetVersion(ctx, changeIncremental, workflow.DefaultVersion, 1) == workflow.DefaultVersion:
		in.before = rulesBeforeIncremental
	case workflow.GetVersion(ctx, changeFormats, workflow.DefaultVersion, 1) == workflow.DefaultVersion:
		in.before = rulesBeforeFormats
	case workflow.GetVersion(ctx, changePush, workflow.DefaultVersion, 1) == workflow.DefaultVersion:
		in.before = rulesBeforePush
	case workflow.GetVersion(ctx, changeVault, workflow.DefaultVersion, 1) == workflow.DefaultVersion:
		in.before = rulesBeforeVault
	case workflow.GetVersion(ctx, changeIAM, workflow.DefaultVersion, 1) == workflow.DefaultVersion:
		in.before = rulesBeforeIAM
	}
	return in.Validate()
}

// Workflow type names and the default task queue: the contract users see.
const (
	ExtractionWorkflowName     = "ExtractionWorkflow"
	TestConnectionWorkflowName = "TestConnectionWorkflow"
	DefaultTaskQueue           = "secure-agent"
	// QueryProgress is the query that returns Progress.
	QueryProgress = "progress"
)

// Phases of a run, as the progress query reports them.
const (
	PhaseValidating = "validating"
	PhaseResolving  = "resolving"
	PhasePreflight  = "preflight"
	PhaseListing    = "listing"
	PhaseExtracting = "extracting"
	PhaseFinalizing = "finalizing"
	PhasePublishing = "publishing"
	PhasePushing    = "pushing"
	PhaseReleasing  = "releasing"
	PhaseDone       = "done"
	PhaseFailed     = "failed"
)

// Progress is the answer to the progress query.
type Progress struct {
	Phase        string           `json:"phase"`
	SchemasDone  int              `json:"schemasDone"`
	SchemasTotal int              `json:"schemasTotal"`
	Counts       map[string]int64 `json:"counts"`
	// LeaseRenewals counts how often the secrets were resolved again after a worker was lost.
	LeaseRenewals int `json:"leaseRenewals"`
	// WorkerBusyWaits counts how often a step did not start in time because the worker holding
	// the lease had no free slot, and was tried again on it.
	WorkerBusyWaits int `json:"workerBusyWaits,omitempty"`
	// PartsReextracted counts the batches extracted again because their parts were committed by
	// a worker that was lost, on a disk the finalizing worker does not see.
	PartsReextracted int `json:"partsReextracted,omitempty"`
	// Redactions counts the values of the run's sensitive fields found in extracted text and
	// written as [REDACTED] instead.
	Redactions int `json:"redactions,omitempty"`
	// Rotations counts how often the source refused the credentials, the secrets read again
	// had changed, and the run went on with the new ones.
	Rotations int `json:"rotations,omitempty"`
	// SchemasReused counts the schemas of an incremental run copied from the previous run
	// (included in SchemasDone).
	SchemasReused int `json:"schemasReused,omitempty"`
}

// Summary is the result of ExtractionWorkflow. It holds counts, locations, timings and secret
// version ids, never a secret.
type Summary struct {
	Connector string `json:"connector"`
	OutputDir string `json:"outputDir"`
	Manifest  string `json:"manifest"`
	// Published is the s3:// URL of the published manifest, for an s3 output.
	Published     string                  `json:"published,omitempty"`
	Counts        map[string]int64        `json:"counts"`
	Schemas       int                     `json:"schemas"`
	ServerVersion string                  `json:"serverVersion,omitempty"`
	Versions      []secrets.SecretVersion `json:"secretVersions,omitempty"`
	// PreviousVersions are the versions a rotation during the run replaced (see Rotations).
	PreviousVersions []secrets.SecretVersion `json:"previousSecretVersions,omitempty"`
	LeaseRenewals    int                     `json:"leaseRenewals"`
	// WorkerBusyWaits, PartsReextracted, Redactions and Rotations: see Progress.
	WorkerBusyWaits  int `json:"workerBusyWaits,omitempty"`
	PartsReextracted int `json:"partsReextracted,omitempty"`
	Redactions       int `json:"redactions,omitempty"`
	Rotations        int `json:"rotations,omitempty"`
	// Durations per phase ("resolve", "preflight", "extract", "finalize", "total"), as text.
	Durations map[string]string `json:"durations"`
	// Changes, for an incremental run that found a previous run of its source, says what it
	// reused and what changed since (names in the manifest's changes and removed.jsonl.gz).
	Changes *activities.ChangesSummary `json:"changes,omitempty"`
	// Formats are the files of the catalog formats the input asked for (output.formats), in
	// OutputDir.
	Formats []string `json:"formats,omitempty"`
	// Pushed counts, per catalog output.push names, the records sent and those skipped because
	// that endpoint already had them.
	Pushed map[string]push.Result `json:"pushed,omitempty"`
}

// ExtractionWorkflow extracts metadata from one source into the agent's output.
func ExtractionWorkflow(ctx workflow.Context, in Input) (*Summary, error) {
	start := workflow.Now(ctx)
	progress := &Progress{Phase: PhaseValidating, Counts: map[string]int64{}}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return *progress, nil }); err != nil {
		return nil, err
	}
	progress.show(ctx)
	if problems := validateInput(ctx, in); len(problems) > 0 {
		progress.enter(ctx, PhaseFailed)
		return nil, invalidInput(problems)
	}
	opts := in.Options.withDefaults()
	durations := map[string]string{}
	timed := func(name string, since time.Time) {
		durations[name] = workflow.Now(ctx).Sub(since).Round(time.Millisecond).String()
	}

	lease := newLeaseHolder(ctx, in, progress)
	defer lease.release()
	fail := func(err error) (*Summary, error) {
		progress.enter(ctx, PhaseFailed)
		return nil, err
	}

	// Resolve the secrets into a lease held by one worker.
	progress.enter(ctx, PhaseResolving)
	t := workflow.Now(ctx)
	if err := lease.resolve(ctx); err != nil {
		return fail(err)
	}
	timed("resolve", t)

	// Every step costs a round trip through the server; runs started before some steps were
	// merged keep their sequence on replay.
	fewerTrips := workflow.GetVersion(ctx, changeFewerRoundTrips, workflow.DefaultVersion, 1) == 1

	// Incremental runs: Preflight finds the state and the previous run; the batches reuse
	// unchanged schemas from it; Finalize reports the changes and records the new state.
	var incremental *activities.Incremental
	if in.Options.Incremental != "" {
		incremental = &activities.Incremental{Mode: in.Options.Incremental, Source: in.Source, Filters: in.Filters}
	}

	// Preflight: one connection, authentication and catalog probe, and the schemas.
	progress.enter(ctx, PhasePreflight)
	t = workflow.Now(ctx)
	var report activities.PreflightResult
	if err := lease.run(ctx, func(ctx workflow.Context, li activities.LeaseInput) error {
		pin := activities.PreflightInput{LeaseInput: li, Incremental: incremental}
		if incremental != nil {
			pin.Source = in.Source // for a small change Preflight extracts itself (report.Inline)
		}
		if fewerTrips {
			pin.ListSchemas, pin.Filters = true, in.Filters
		}
		return workflow.ExecuteActivity(withOptions(ctx, preflightOptions, li.Lease), acts.Preflight, pin).Get(ctx, &report)
	}); err != nil {
		return fail(err)
	}
	timed("preflight", t)
	if incremental != nil {
		incremental.Key, incremental.Previous, incremental.Reused = report.StateKey, report.Previous, report.Reused
	}

	// Extract the schemas in batches, a bounded number at a time.
	t = workflow.Now(ctx)
	names := report.Schemas
	if !fewerTrips {
		progress.enter(ctx, PhaseListing)
		if err := lease.run(ctx, func(ctx workflow.Context, li activities.LeaseInput) error {
			return workflow.ExecuteActivity(withOptions(ctx, listOptions, li.Lease), acts.ListSchemas,
				activities.ListSchemasInput{LeaseInput: li, Filters: in.Filters}).Get(ctx, &names)
		}); err != nil {
			return fail(err)
		}
	}
	sort.Strings(names)
	progress.SchemasTotal = len(names)
	progress.enter(ctx, PhaseExtracting)
	// An incremental run extracts only the schemas Preflight did not find unchanged; Finalize
	// copies the others from the previous run.
	var reused []string
	var inline *activities.InlineBatch // a small change Preflight extracted itself
	if incremental != nil {
		reused, inline = incremental.Reused, report.Inline
	}
	done := func(name string) bool {
		return slices.Contains(reused, name) || inline != nil && slices.ContainsFunc(inline.Schemas, func(s activities.Schema) bool { return s.Name == name })
	}
	todo := positions(names, func(name string) bool { return !done(name) })
	progress.SchemasDone, progress.SchemasReused = len(reused), len(reused)
	per := opts.SchemasPerBatch
	if in.Options.SchemasPerBatch == 0 && workflow.GetVersion(ctx, changeEvenBatches, workflow.DefaultVersion, 1) == 1 {
		per = evenBatchSize(len(todo), opts.MaxConcurrentBatches)
	}
	batches := cutBatches(todo, per)
	parts, err := extractBatches(ctx, lease, in, opts, batches, progress, true)
	if err != nil {
		return fail(err)
	}
	if inline != nil {
		parts[activities.PartID(inline.Schemas)] = partKinds(inline.Result.Counts)
		batches = append(batches, inline.Schemas) // extracted again like the others if its part is lost
		progress.SchemasDone += len(inline.Schemas)
		progress.Redactions += inline.Result.Redactions
		for k, n := range inline.Result.Counts {
			progress.Counts[k] += n
		}
	}
	timed("extract", t)

	// Finalize: one file per entity kind, manifest last.
	progress.enter(ctx, PhaseFinalizing)
	t = workflow.Now(ctx)
	var fin activities.FinalizeResult
	// Publish and PushCatalog still need the sinks' credentials.
	releaseInFinalize := fewerTrips && in.Output.Type != "s3" && in.Output.Push == nil
	checkParts := workflow.GetVersion(ctx, changeCheckParts, workflow.DefaultVersion, 1) == 1
	for refills := 0; ; refills++ {
		if incremental != nil {
			incremental.ValuesChanged = progress.Rotations > 0 || progress.LeaseRenewals > 0
		}
		if err := lease.run(ctx, func(ctx workflow.Context, li activities.LeaseInput) error {
			fi := activities.FinalizeInput{Connector: in.Connector, Prefix: in.Output.Prefix, Identity: report.Identity, StartedAt: start, Incremental: incremental,
				Formats: in.Output.catalogFormats()}
			if releaseInFinalize {
				fi.Release = &li.Lease
			}
			if checkParts {
				fi.Expected = parts
			}
			fin = activities.FinalizeResult{} // decoding into the last result would keep its Missing
			return workflow.ExecuteActivity(withOptions(ctx, finalizeOptions, li.Lease), acts.Finalize, fi).Get(ctx, &fin)
		}); err != nil {
			return fail(err)
		}
		if fin.ReuseLost {
			// The previous run's output is not on the finalizing worker's disk: extract the
			// schemas it was to provide, then finalize again without reuse.
			progress.enter(ctx, PhaseExtracting)
			redo := cutBatches(positions(names, func(name string) bool { return slices.Contains(incremental.Reused, name) }), per)
			incremental.Reused = nil
			progress.SchemasReused = 0
			more, err := extractBatches(ctx, lease, in, opts, redo, progress, false)
			if err != nil {
				return fail(err)
			}
			maps.Copy(parts, more)
			batches = append(batches, redo...)
			progress.enter(ctx, PhaseFinalizing)
			continue
		}
		if len(fin.Missing) == 0 {
			break
		}
		// The parts of these batches are on the disk of a worker that was lost: extract them
		// again here, then finalize again.
		if refills == maxRefills {
			return fail(temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"%d output parts were still missing on the finalizing worker after extracting them again %d times; check that the agent's output directory is not being cleaned up during runs",
				len(fin.Missing), maxRefills), string(secrets.OutputUnavailable), nil))
		}
		progress.enter(ctx, PhaseExtracting)
		progress.PartsReextracted += len(fin.Missing)
		var redo [][]activities.Schema
		for _, b := range batches {
			if slices.Contains(fin.Missing, activities.PartID(b)) {
				redo = append(redo, b)
			}
		}
		if _, err := extractBatches(ctx, lease, in, opts, redo, progress, false); err != nil {
			return fail(err)
		}
		progress.enter(ctx, PhaseFinalizing)
	}
	if releaseInFinalize {
		lease.releasedElsewhere()
	}
	timed("finalize", t)

	// Publish to object storage, with only the output's credentials.
	var published activities.PublishResult
	if in.Output.Type == "s3" {
		// Gated: runs recorded before s3 output existed never reach this branch.
		if v := workflow.GetVersion(ctx, changePublishToS3, workflow.DefaultVersion, 1); v == 1 {
			progress.enter(ctx, PhasePublishing)
			t = workflow.Now(ctx)
			if err := lease.run(ctx, func(ctx workflow.Context, li activities.LeaseInput) error {
				return workflow.ExecuteActivity(withOptions(ctx, publishOptions, li.Lease), acts.Publish,
					activities.PublishInput{LeaseInput: li, S3: in.Output.s3Config()}).Get(ctx, &published)
			}); err != nil {
				return fail(err)
			}
			timed("publish", t)
		}
	}

	// Send the catalog formats to the catalogs output.push names, with only their fields.
	var pushed activities.PushResult
	if targets := in.Output.Push.targets(); len(targets) > 0 {
		progress.enter(ctx, PhasePushing)
		t = workflow.Now(ctx)
		pi := activities.PushInput{Prefix: in.Output.Prefix, Source: in.Source}
		for _, tg := range targets {
			pi.Targets = append(pi.Targets, tg.name)
		}
		if err := lease.run(ctx, func(ctx workflow.Context, li activities.LeaseInput) error {
			pi.LeaseInput = li
			return workflow.ExecuteActivity(withOptions(ctx, pushOptions, li.Lease), acts.PushCatalog, pi).Get(ctx, &pushed)
		}); err != nil {
			return fail(err)
		}
		timed("push", t)
	}

	progress.enter(ctx, PhaseReleasing)
	lease.release()
	progress.enter(ctx, PhaseDone)
	timed("total", start)
	return &Summary{
		Connector:        in.Connector,
		OutputDir:        fin.Dir,
		Manifest:         fin.Manifest,
		Published:        published.ManifestURL,
		Counts:           fin.Counts,
		Schemas:          len(names),
		ServerVersion:    report.ServerVersion,
		Versions:         lease.versions(),
		PreviousVersions: lease.previousVersions(),
		Rotations:        progress.Rotations,
		LeaseRenewals:    progress.LeaseRenewals,
		WorkerBusyWaits:  progress.WorkerBusyWaits,
		PartsReextracted: progress.PartsReextracted,
		Redactions:       progress.Redactions,
		Durations:        durations,
		Changes:          fin.Changes,
		Formats:          fin.Formats,
		Pushed:           pushed.Targets,
	}, nil
}

// maxRefills bounds how often Finalize may find parts missing and have them extracted again.
const maxRefills = 2

// evenBatchSize is the default batch size: the schemas split evenly over maxConcurrent batches,
// so that a catalog that fits in one round of batches takes one round (with batches of ten, 51
// schemas on four slots took two rounds, the second with one slot busy and three idle), with
// at most MaxEvenSchemasPerBatch per batch, so that a large catalog still makes batches that a
// retry can redo cheaply. Every batch costs a fixed set of catalog queries, so fewer, fuller
// batches also cost less in all.
func evenBatchSize(schemas, maxConcurrent int) int {
	slots := max(maxConcurrent, 1)
	per := (schemas + slots - 1) / slots
	return min(max(per, 1), MaxEvenSchemasPerBatch)
}

// makeBatches cuts the sorted schema names into batches of at most per schemas, each schema with
// its position.
func makeBatches(names []string, per int) [][]activities.Schema {
	return cutBatches(positions(names, func(string) bool { return true }), per)
}

// positions lists the sorted schema names that keep selects, each with its position among all.
func positions(names []string, keep func(string) bool) []activities.Schema {
	var out []activities.Schema
	for i, n := range names {
		if keep(n) {
			out = append(out, activities.Schema{Index: i, Name: n})
		}
	}
	return out
}

// cutBatches cuts schemas into batches of at most per, in order.
func cutBatches(schemas []activities.Schema, per int) [][]activities.Schema {
	var batches [][]activities.Schema
	for i := 0; i < len(schemas); i += per {
		batches = append(batches, schemas[i:min(i+per, len(schemas))])
	}
	return batches
}

// extractBatches runs one ExtractSchemas activity per batch, at most opts.MaxConcurrentBatches at
// once, and stops at the first failure. It returns the parts the batches committed (part id ->
// the kinds with at least one entity, sorted); count adds the batches to progress (not when
// batches are extracted again).
func extractBatches(ctx workflow.Context, lease *leaseHolder, in Input, opts RunOptions, batches [][]activities.Schema, progress *Progress, count bool) (map[string][]string, error) {
	parts := map[string][]string{}
	batchCtx, cancelBatches := workflow.WithCancel(ctx)
	defer cancelBatches()
	running := 0
	var firstErr error
	for _, b := range batches {
		if err := workflow.Await(ctx, func() bool { return running < opts.MaxConcurrentBatches || firstErr != nil }); err != nil {
			return nil, err
		}
		if firstErr != nil {
			break
		}
		running++
		workflow.Go(batchCtx, func(ctx workflow.Context) {
			defer func() { running-- }()
			var res activities.ExtractResult
			err := lease.run(ctx, func(ctx workflow.Context, li activities.LeaseInput) error {
				return workflow.ExecuteActivity(withOptions(ctx, extractOptions, li.Lease), acts.ExtractSchemas, activities.ExtractInput{
					LeaseInput: li, Schemas: b, Filters: in.Filters, Prefix: in.Output.Prefix, Source: in.Source,
				}).Get(ctx, &res)
			})
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancelBatches()
				}
				return
			}
			if count {
				for k, n := range res.Counts {
					progress.Counts[k] += n
				}
			}
			parts[activities.PartID(b)] = partKinds(res.Counts)
			if count { // a batch extracted again replaces its part: count it once
				progress.SchemasDone += len(b)
				progress.Redactions += res.Redactions
				progress.show(ctx)
			}
		})
	}
	// Wait for every started batch, even after a failure, so none outlives the workflow's view.
	if err := workflow.Await(ctx, func() bool { return running == 0 }); err != nil {
		return nil, err
	}
	return parts, firstErr
}

// partKinds are the kinds a committed part has entities of, sorted (what Finalize checks is on
// its disk).
func partKinds(counts map[string]int64) []string {
	kinds := []string{}
	for k, n := range counts {
		if n > 0 {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	return kinds
}

// invalidInput is the single, final error that lists every problem of an input.
func invalidInput(problems []string) error {
	msg := fmt.Sprintf("the workflow input has %d problem(s): %s", len(problems), strings.Join(problems, "; "))
	return temporal.NewNonRetryableApplicationError(msg, string(secrets.InvalidInput), nil, problems)
}
