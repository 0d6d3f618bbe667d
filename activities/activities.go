// Package activities holds the agent's Temporal activities: ResolveSecrets on the shared task
// queue; Preflight (which lists the schemas too), ExtractSchemas, Finalize (which can release the
// lease), Publish and ReleaseCredentials on the worker-specific queue named in the credential
// Lease, plus ListSchemas for runs started by older agents; LeaseAlive on that worker's control
// queue; and the in-memory lease store.
//
// Activities never return, heartbeat or log a secret value: results carry names, counts and
// versions; failures are classified ApplicationErrors whose messages come from secrets.Error.
package activities

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/secure-agent/secure-agent/audit"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/connectors/iamauth"
	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
)

// SourceOpener opens a connection to a data source with resolved credentials and the agent-side
// options (the dialer that enforces destination policy, legacy authentication, SQLite dirs).
type SourceOpener func(ctx context.Context, connector string, creds connectors.Credentials, opts connectors.OpenOptions) (connectors.Source, error)

// Activities holds the dependencies of every activity. Register one value with both the shared
// worker (ResolveSecrets) and the worker-specific one (the rest); see worker.Register.
type Activities struct {
	Stores   *stores.Opener
	Resolver *secrets.Resolver
	Leases   *LeaseStore
	// LeaseQueue is this worker's own task queue, where leased activities must run.
	LeaseQueue string
	// OpenSource connects to a source.
	OpenSource SourceOpener
	// OutputRoot is the local output directory.
	OutputRoot string
	// AllowSensitiveLiterals is the development-only policy (see secrets.Request).
	AllowSensitiveLiterals bool
	// Policy is the agent-side policy (nil allows everything the stores allow).
	Policy Policy
	// Audit receives one event per secret access and per denial (nil discards).
	Audit  *audit.Log
	Logger *slog.Logger
	// Metrics receives counts for the agent's metrics (nil: none).
	Metrics Recorder
	// SQLiteDirs are the directories SQLite files may be opened in (absolute, symbolic links
	// resolved); empty: none.
	SQLiteDirs []string
	// Build is the agent's build (its version stamp), part of every incremental state key: a
	// run never reuses output written by another build, which may write entities differently.
	Build string
	// HeartbeatEvery is how often an extraction batch heartbeats (0: every second); tests set
	// it shorter to see counts move inside a small batch.
	HeartbeatEvery time.Duration

	clean cleanRuns
}

// Recorder receives what the activities produce, for metrics. It gets a connector name, entity
// kinds and numbers: never a path, a workflow id, a secret or data.
type Recorder interface {
	// EntitiesExtracted reports the entities of one committed ExtractSchemas batch, per kind.
	EntitiesExtracted(connector string, counts map[string]int64)
	// OutputWritten reports the sizes of one run's finalized output files, per entity kind.
	OutputWritten(connector string, bytes map[string]int64)
	// OutputRedacted reports values of sensitive fields replaced in one batch's extracted text.
	OutputRedacted(connector string, n int)
}

// Policy is the agent-side policy the activities enforce (package policy implements it). Each
// check returns nil or a PolicyDenied *secrets.Error naming the rule.
type Policy interface {
	// CheckStore judges a store type.
	CheckStore(storeType string) error
	// CheckSecret judges a secret reference of a store (see stores.Spec.PolicyRef).
	CheckSecret(storeType, ref string) error
	// CheckDestination judges sending credentials that came from the given secrets to dest,
	// exactly as it is dialled.
	CheckDestination(dest netguard.Destination, secrets []string) error
	// LegacyPasswordAuth reports whether a rule lets the server at dest ask for the password in
	// clear text or as MD5 without verified TLS.
	LegacyPasswordAuth(dest netguard.Destination) bool
	// CheckOutput judges the s3 output writing bucket through the endpoint dest.
	CheckOutput(bucket string, dest netguard.Destination) error
	// CheckCatalog judges a catalog push (output.push) to the endpoint dest.
	CheckCatalog(dest netguard.Destination) error
}

// SinkFieldPrefix marks an output's credential fields in a lease, apart from the source's
// connection fields: extraction activities get only the source fields, Publish only these.
const SinkFieldPrefix = "sink."

// SinkFields are the credential fields an s3 output may have.
var SinkFields = []connectors.FieldSpec{
	{Name: "accessKeyId", Doc: "the access key id (a key of the secret, or a literal)"},
	{Name: "secretAccessKey", Sensitive: true, Doc: "the secret access key (a key of the secret)"},
	{Name: "sessionToken", Sensitive: true, Doc: "a session token for temporary credentials"},
}

// sourceFields and sinkFields split a lease's fields into the source's and the output's.
func sourceFields(fields []string) []string {
	return slices.DeleteFunc(slices.Clone(fields), func(f string) bool { return strings.HasPrefix(f, SinkFieldPrefix) })
}

// sinkFields are the s3 output's fields of a lease (not the catalog pushes').
func sinkFields(fields []string) []string {
	return slices.DeleteFunc(slices.Clone(fields), func(f string) bool { return !strings.HasPrefix(f, SinkFieldPrefix) || isPushField(f) })
}

// LeaseInput names a lease and the connector it is for.
type LeaseInput struct {
	Lease     Lease  `json:"lease"`
	Connector string `json:"connector"`
	// OutputPrefix is the run's output prefix, for Preflight's check that the output is writable.
	OutputPrefix string `json:"outputPrefix,omitempty"`
}

// PreflightInput is the input of Preflight: the lease, and whether to list the schemas on the
// same connection. (Its JSON form is a LeaseInput's plus two fields, so inputs recorded before
// they existed still decode.)
type PreflightInput struct {
	LeaseInput
	// ListSchemas asks Preflight to return the schemas that pass Filters too, saving the run a
	// round trip through the server.
	ListSchemas bool               `json:"listSchemas,omitempty"`
	Filters     connectors.Filters `json:"filters,omitzero"`
	// Incremental, when set, has Preflight look for the previous run to reuse from.
	Incremental *Incremental `json:"incremental,omitempty"`
	// Source is the input's source label, for a batch Preflight extracts itself (see Inline).
	Source string `json:"source,omitempty"`
}

// PreflightResult is what Preflight found. No credentials.
type PreflightResult struct {
	connectors.PreflightReport
	// OutputProblem says why this worker cannot write the run's output, if it cannot.
	OutputProblem string `json:"outputProblem,omitempty"`
	// Schemas are the schemas that pass the filters, sorted, when ListSchemas was asked.
	Schemas []string `json:"schemas,omitempty"`
	// StateKey, Previous and Reused, for an incremental run: the key of its source's state, the
	// run it reuses from, and the schemas it reuses (see Incremental).
	StateKey string         `json:"stateKey,omitempty"`
	Previous *output.RunRef `json:"previous,omitempty"`
	Reused   []string       `json:"reused,omitempty"`
	// Inline, for an incremental run whose only change is one small schema: Preflight extracted
	// it itself, on its connection, and committed its part (saving the run a batch's round trip
	// and connection). The workflow counts it as a committed batch.
	Inline *InlineBatch `json:"inline,omitempty"`
}

// InlineBatch is a batch Preflight extracted and committed.
type InlineBatch struct {
	Schemas []Schema      `json:"schemas"`
	Result  ExtractResult `json:"result"`
}

// Preflight connects once with the leased credentials and checks authentication and catalog
// access, then lists the schemas when asked. An authentication failure is final: retrying could
// lock the account. The output check judges only the directory the run would write, inside the
// agent's output directory, and creates nothing outside it.
func (a *Activities) Preflight(ctx context.Context, in PreflightInput) (*PreflightResult, error) {
	if err := checkPrefix(in.OutputPrefix); err != nil {
		return nil, appError(err, true)
	}
	if in.ListSchemas {
		if err := checkFilters(in.Filters); err != nil {
			return nil, appError(err, true)
		}
	}
	res := &PreflightResult{}
	var prev *previousOutput
	if in.Incremental != nil {
		var err error
		if res.StateKey, err = a.stateKey(ctx, in.LeaseInput, in.OutputPrefix, in.Incremental); err != nil {
			return nil, appError(err, true)
		}
		if prev, err = a.previousRun(in.Connector, in.OutputPrefix, res.StateKey, in.Incremental.Mode); err != nil {
			return nil, appError(err, true)
		}
		if prev != nil {
			res.Previous = &prev.ref
		}
	}
	var report *connectors.PreflightReport
	err := a.withSource(ctx, in.LeaseInput, func(src connectors.Source) error {
		var err error
		if report, err = src.Preflight(ctx); err != nil || !in.ListSchemas {
			return err
		}
		if res.Schemas, err = src.Schemas(ctx, in.Filters); err != nil || in.Incremental == nil {
			return err
		}
		var small []Schema
		res.Reused, small, err = a.incrementalPreflight(ctx, src, in, res.Schemas, prev)
		if err != nil || small == nil {
			return err
		}
		ex := ExtractInput{LeaseInput: in.LeaseInput, Schemas: small, Filters: in.Filters, Prefix: in.OutputPrefix, Source: in.Source}
		r, err := a.extractBatch(ctx, src, a.runDir(ctx, in.Connector, in.OutputPrefix), ex, nil)
		if err != nil {
			return err
		}
		a.batchDone(ctx, in.Connector, r)
		res.Inline = &InlineBatch{Schemas: small, Result: *r}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.PreflightReport = *report
	if err := output.CheckWritable(output.PrefixDir(a.OutputRoot, in.OutputPrefix)); err != nil {
		res.OutputProblem = err.Error() // the agent's own directory: no secret in it
	}
	return res, nil
}

// checkPrefix enforces, on the agent, the rule the workflow's validation states for output
// prefixes: a relative path inside the output directory. (The prefix is also escaped component
// by component wherever it becomes a path, so this is the clear refusal, not the only guard.)
func checkPrefix(prefix string) error {
	if msg := output.PrefixProblem(prefix); msg != "" {
		return &secrets.Error{Kind: secrets.InvalidInput, Msg: "output.prefix " + msg}
	}
	return nil
}

// checkFilters enforces the filters' own validation on the agent.
func checkFilters(f connectors.Filters) error {
	if problems := f.Validate(); len(problems) > 0 {
		return &secrets.Error{Kind: secrets.InvalidInput, Msg: strings.Join(problems, "; ")}
	}
	return nil
}

// identityOrigins names, as origins for the destination rules, the agent's own identities a
// connection sends a token of (authMethod aws-iam, gcp-iam, azure-entra): "iam:<method>". A
// token minted from the agent's identity goes, like a secret's credentials, only where a rule
// allows it (a Google access token is not bound to the host it is sent to).
func identityOrigins(creds connectors.Credentials) []string {
	if m := strings.TrimSpace(creds["authMethod"].Reveal()); iamauth.IsMethod(m) {
		return []string{"iam:" + m}
	}
	return nil
}

// ListSchemasInput is the input of ListSchemas.
type ListSchemasInput struct {
	LeaseInput
	Filters connectors.Filters `json:"filters,omitzero"`
}

// ListSchemas returns the schemas that pass the filters, sorted.
func (a *Activities) ListSchemas(ctx context.Context, in ListSchemasInput) ([]string, error) {
	if err := checkFilters(in.Filters); err != nil {
		return nil, appError(err, true)
	}
	var schemas []string
	err := a.withSource(ctx, in.LeaseInput, func(src connectors.Source) error {
		var err error
		schemas, err = src.Schemas(ctx, in.Filters)
		return err
	})
	return schemas, err
}

// ControlQueue is the task queue on which the worker with lease queue leaseQueue answers
// LeaseAlive. Its own worker serves it, apart from the leased activities, so it answers even
// when every activity slot is busy.
func ControlQueue(leaseQueue string) string { return leaseQueue + "/control" }

// LeaseAlive reports whether this worker still holds the run's lease. The workflow asks it (on
// ControlQueue) when a leased activity did not start in time, to tell a busy worker, whose
// activities wait for a free slot, from a dead one, whose lease must be resolved again.
func (a *Activities) LeaseAlive(ctx context.Context, in LeaseInput) (bool, error) {
	info := activity.GetInfo(ctx)
	return a.Leases.Holds(in.Lease.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID), nil
}

// ReleaseCredentials zeroes and drops the lease. The workflow calls it after success, failure
// and cancellation; leases also expire on their own.
func (a *Activities) ReleaseCredentials(ctx context.Context, in LeaseInput) error {
	info := activity.GetInfo(ctx)
	if err := a.Leases.Release(in.Lease.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID); err != nil {
		return appError(err, true)
	}
	a.logger().Info("credentials released", "workflowId", info.WorkflowExecution.ID, "runId", info.WorkflowExecution.RunID)
	return nil
}

// withSource fetches the leased source credentials (never the output's) for the calling run,
// opens the source with a dialer that judges every destination it dials against the policy,
// runs fn and closes it, zeroing the credentials.
func (a *Activities) withSource(ctx context.Context, in LeaseInput, fn func(connectors.Source) error) error {
	info := activity.GetInfo(ctx)
	if _, ok := connectors.Lookup(in.Connector); !ok {
		return appError(&secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("connector %q is not supported", in.Connector)}, true)
	}
	creds, origins, literals, err := a.Leases.GetWithOrigins(in.Lease.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, in.Connector, sourceFields(in.Lease.Fields))
	if err != nil {
		return appError(err, true)
	}
	defer zeroCreds(creds)
	origins = append(origins, identityOrigins(creds)...)
	// Policy again, right before the connection: where may these credentials go? This early
	// check gives the clear message; the dialer checks again what it actually dials.
	dest, hasDest, err := a.checkDestination(ctx, in.Connector, creds, origins)
	if err != nil {
		return appError(err, true)
	}
	opts := connectors.OpenOptions{
		Dialer:     &netguard.Dialer{Check: a.destinationCheck(ctx, origins)},
		SQLiteDirs: a.SQLiteDirs,
		Literals:   literals,
	}
	if hasDest && a.Policy != nil {
		opts.LegacyPasswordAuth = a.Policy.LegacyPasswordAuth(dest)
	}
	src, err := a.OpenSource(ctx, in.Connector, creds, opts)
	if err != nil {
		return appError(err, false)
	}
	defer func() { _ = src.Close() }()
	return appError(fn(src), false)
}

func (a *Activities) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// runDir is where this run's output goes.
func (a *Activities) runDir(ctx context.Context, connector, prefix string) string {
	info := activity.GetInfo(ctx)
	return output.RunDir(a.OutputRoot, prefix, connector, info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
}
