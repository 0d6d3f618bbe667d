package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/secrets"
)

// acts names the activities for ExecuteActivity; only the method names are used.
var acts *activities.Activities

// MaxLeaseRenewals bounds how often one run resolves its secrets again after losing the worker
// that held them.
const MaxLeaseRenewals = 3

// MaxBusyWaits bounds how often one leased step is scheduled again because the worker holding
// the lease was alive but had no free activity slot. Each time the step may wait twice as long
// to start (20 s, 40 s, ... up to maxBusyScheduleToStart), so it does not time out forever behind
// a queue that takes longer than that to drain; 20 waits are about 2.5 hours. After them the
// worker is treated as lost.
const MaxBusyWaits = 20

// maxBusyScheduleToStart caps how long a step waits to start on a worker found busy.
const maxBusyScheduleToStart = 10 * time.Minute

// startTimeoutKey carries, in a workflow context, a longer schedule-to-start for a step that
// found its worker busy; withOptions applies it.
type startTimeoutKey struct{}

// changeAskBusyWorker asks the lease's worker whether it is alive (LeaseAlive) before resolving
// the secrets again after a leased step did not start in time.
const changeAskBusyWorker = "ask-busy-worker"

// Timeouts and retries per activity. The README's table is written from these.
var (
	finalKinds = func() []string {
		var out []string
		for _, k := range secrets.Kinds {
			if !k.Retryable() {
				out = append(out, string(k))
			}
		}
		return out
	}()

	// ResolveSecrets: transient store errors are retried until options.resolveTimeoutSeconds
	// (default 10 minutes) sets ScheduleToCloseTimeout.
	resolveOptions = workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: finalKinds,
		},
	}
	// Activities on the lease's queue start within ScheduleToStart, or the workflow asks the
	// worker (LeaseAlive) whether it is busy or gone.
	leaseScheduleToStart = 10 * time.Second
	aliveOptions         = workflow.ActivityOptions{
		ScheduleToStartTimeout: 5 * time.Second,
		StartToCloseTimeout:    5 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
	}
	preflightOptions = workflow.ActivityOptions{
		ScheduleToStartTimeout: leaseScheduleToStart,
		StartToCloseTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 5, NonRetryableErrorTypes: finalKinds,
		},
	}
	listOptions    = preflightOptions
	extractOptions = workflow.ActivityOptions{
		ScheduleToStartTimeout: leaseScheduleToStart,
		StartToCloseTimeout:    2 * time.Hour,
		HeartbeatTimeout:       20 * time.Second, // the activity beats every SECURE_AGENT_PROGRESS_INTERVAL (1 s) while it runs
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 10, NonRetryableErrorTypes: finalKinds,
		},
	}
	finalizeOptions = workflow.ActivityOptions{
		ScheduleToStartTimeout: leaseScheduleToStart,
		StartToCloseTimeout:    10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: 5, NonRetryableErrorTypes: finalKinds,
		},
	}
	publishOptions = workflow.ActivityOptions{
		ScheduleToStartTimeout: leaseScheduleToStart,
		StartToCloseTimeout:    30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 8, NonRetryableErrorTypes: finalKinds,
		},
	}
	pushOptions = workflow.ActivityOptions{
		ScheduleToStartTimeout: leaseScheduleToStart,
		StartToCloseTimeout:    time.Hour,
		HeartbeatTimeout:       30 * time.Second, // the activity beats every SECURE_AGENT_PROGRESS_INTERVAL while it sends
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 2 * time.Minute,
			MaximumAttempts: 6, NonRetryableErrorTypes: finalKinds,
		},
	}
	releaseOptions = workflow.ActivityOptions{
		ScheduleToStartTimeout: 10 * time.Second,
		StartToCloseTimeout:    10 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: finalKinds},
	}
)

// withOptions applies opts, pinned to the lease's task queue, with the longer schedule-to-start
// that ctx may carry for a step that found its worker busy.
func withOptions(ctx workflow.Context, opts workflow.ActivityOptions, lease activities.Lease) workflow.Context {
	opts.TaskQueue = lease.TaskQueue
	if d, ok := ctx.Value(startTimeoutKey{}).(time.Duration); ok && opts.ScheduleToStartTimeout > 0 && d > opts.ScheduleToStartTimeout {
		opts.ScheduleToStartTimeout = d
	}
	return workflow.WithActivityOptions(ctx, opts)
}

// leaseHolder owns a run's credential lease: it resolves it, runs leased activities with it,
// resolves again (at most MaxLeaseRenewals times) when the worker holding it is gone, reads the
// secrets again when the source refuses them (at most MaxRotations times, and only if they
// changed), and releases it.
type leaseHolder struct {
	rootCtx  workflow.Context
	input    Input
	progress *Progress
	lease    *activities.Lease
	renewing bool
	released bool
	// previous are the versions of the leases that rotations replaced, oldest first.
	previous []secrets.SecretVersion
	// stale is the lease whose secrets were read again after the source refused them and had
	// not changed: other callers refused with it fail at once instead of reading them again.
	stale    *activities.Lease
	staleErr error
}

// MaxRotations bounds how often one run reads its secrets again because the source refused
// them and the secrets had changed (a rotation while the run was in flight).
const MaxRotations = 3

// changeRotateOnAuthFailure reads the secrets again (bypassing the cache) when the source
// refuses the credentials, and continues with them if they changed.
const changeRotateOnAuthFailure = "rotate-on-auth-failure"

func newLeaseHolder(ctx workflow.Context, in Input, progress *Progress) *leaseHolder {
	return &leaseHolder{rootCtx: ctx, input: in, progress: progress}
}

// resolve runs ResolveSecrets on the shared queue and keeps the lease.
func (h *leaseHolder) resolve(ctx workflow.Context) error {
	var lease activities.Lease
	if err := h.executeResolve(ctx, nil, &lease); err != nil {
		return err
	}
	h.lease = &lease
	return nil
}

// executeResolve runs ResolveSecrets on the shared queue, reading the secrets again for refresh
// when it is set, and decodes its answer into lease.
func (h *leaseHolder) executeResolve(ctx workflow.Context, refresh *activities.Lease, lease *activities.Lease) error {
	conn := make(map[string]string, len(h.input.Connection))
	for k, v := range h.input.Connection {
		conn[k] = string(v)
	}
	var sink map[string]string
	for k, v := range h.input.Output.Credentials {
		if sink == nil {
			sink = make(map[string]string, len(h.input.Output.Credentials))
		}
		sink[k] = string(v)
	}
	var pushFields map[string]string
	for _, t := range h.input.Output.Push.targets() {
		for k, v := range t.fields {
			if pushFields == nil {
				pushFields = map[string]string{}
			}
			pushFields[t.name+"."+k] = string(v)
		}
	}
	opts := resolveOptions
	opts.ScheduleToCloseTimeout = time.Duration(h.input.Options.withDefaults().ResolveTimeoutSeconds) * time.Second
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), acts.ResolveSecrets, activities.ResolveInput{
		Connector: h.input.Connector, Connection: conn, Sink: sink, Push: pushFields, SecretStore: h.input.SecretStore, Refresh: refresh,
	}).Get(ctx, lease)
	if err != nil {
		return storeGaveUp(err, opts.ScheduleToCloseTimeout)
	}
	return nil
}

// storeGaveUp turns a ResolveSecrets failure that ran out of retry time into a final
// StoreUnavailable error that says so: the store kept failing with retryable errors
// (unavailable, throttled) for the whole bound. Any other failure is returned as it is.
func storeGaveUp(err error, bound time.Duration) error {
	var actErr *temporal.ActivityError
	var timeout *temporal.TimeoutError
	if !errors.As(err, &actErr) || !(errors.As(err, &timeout) || actErr.RetryState() == enumspb.RETRY_STATE_TIMEOUT) {
		return err
	}
	last := "no attempt finished in time"
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		last = ae.Message() // the store error's own safe message (it names its kind), already in history
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"the secret store was unavailable for longer than the retry bound of %s (options.resolveTimeoutSeconds); last error: %s. "+
			"Check that the store is reachable from the agent, or raise the bound", bound, last),
		string(secrets.StoreUnavailable), err)
}

// run calls fn with the current lease. If fn fails because the lease is lost, it resolves a new
// lease (once for all concurrent callers) and calls fn again.
func (h *leaseHolder) run(ctx workflow.Context, fn func(workflow.Context, activities.LeaseInput) error) error {
	busy, wait := 0, time.Duration(0)
	for {
		if err := workflow.Await(ctx, func() bool { return !h.renewing }); err != nil {
			return err
		}
		used := h.lease
		if h.stale != nil && h.stale == used {
			return h.staleErr // refused, read again, unchanged: another login would fail the same way
		}
		callCtx := ctx
		if wait > 0 {
			callCtx = workflow.WithValue(ctx, startTimeoutKey{}, wait)
		}
		err := fn(callCtx, activities.LeaseInput{Lease: *used, Connector: h.input.Connector, OutputPrefix: h.input.Output.Prefix})
		if sourceRefused(err) {
			switch {
			case h.lease != used || h.renewing:
				continue // the secrets were read again meanwhile, or are being read: try with them
			case h.progress.Rotations >= MaxRotations:
				return err
			}
			if workflow.GetVersion(ctx, changeRotateOnAuthFailure, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
				return err // a run from before rotations were followed
			}
			h.renewing = true
			rotated, rerr := h.refresh(ctx, *used)
			h.renewing = false
			switch {
			case rerr != nil:
				return rerr
			case !rotated:
				h.stale, h.staleErr = used, err // the same credentials: a second login would fail the same way
				return err
			}
			continue
		}
		if err == nil || !leaseLost(err) {
			return err
		}
		if h.lease != used || h.renewing {
			continue // another caller already renewed, or is renewing: use its lease
		}
		if startTimedOut(err) && busy < MaxBusyWaits && h.workerBusy(ctx, *used) {
			// Alive and holding the lease, its slots all taken: wait for a turn, longer each time.
			busy++
			h.progress.WorkerBusyWaits++
			wait = min(max(2*wait, 2*leaseScheduleToStart), maxBusyScheduleToStart)
			continue
		}
		if h.lease != used || h.renewing {
			continue // renewed by another caller while this one asked
		}
		if h.progress.LeaseRenewals >= MaxLeaseRenewals {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("the worker holding the credentials was lost %d times; check that the agent's workers stay up", MaxLeaseRenewals+1),
				string(secrets.LeaseNotFound), err)
		}
		h.progress.LeaseRenewals++
		h.renewing = true
		rerr := h.resolve(ctx)
		h.renewing = false
		if rerr != nil {
			return rerr
		}
	}
}

// sourceRefused reports whether the source refused the leased credentials.
func sourceRefused(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == string(secrets.SourceAuthFailed)
}

// refresh reads the secrets of a refused lease again (ResolveSecrets with Refresh, which
// bypasses the cache). If they changed, the new lease replaces it, the refused one is released
// and the rotation counted; if not, nothing changes and it reports false.
func (h *leaseHolder) refresh(ctx workflow.Context, refused activities.Lease) (bool, error) {
	var fresh activities.Lease
	if err := h.executeResolve(ctx, &refused, &fresh); err != nil {
		return false, err
	}
	if fresh.Unchanged {
		return false, nil
	}
	h.previous = append(h.previous, refused.Versions...)
	h.lease = &fresh
	h.progress.Rotations++
	h.releaseLease(ctx, refused)
	workflow.GetLogger(ctx).Info("the source refused the credentials and the secrets had changed: continuing with the new ones",
		"rotations", h.progress.Rotations)
	return true, nil
}

// leaseLost reports whether err may mean the worker holding the lease is gone: the activity
// could not start on its queue in time, or the worker no longer knows the lease.
func leaseLost(err error) bool {
	var ae *temporal.ApplicationError
	return startTimedOut(err) || errors.As(err, &ae) && ae.Type() == string(secrets.LeaseNotFound)
}

// startTimedOut reports whether the activity did not start on its queue in time.
func startTimedOut(err error) bool {
	var te *temporal.TimeoutError
	return errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START
}

// workerBusy asks the worker that holds lease, on its control queue, whether it is alive and
// still holds the lease. Yes means its activity slots are all taken: the step waits for a turn
// instead of resolving the secrets again on whichever worker comes first. No answer within 5 s
// means the worker is gone. Runs recorded before the question existed never ask.
func (h *leaseHolder) workerBusy(ctx workflow.Context, lease activities.Lease) bool {
	if workflow.GetVersion(ctx, changeAskBusyWorker, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return false
	}
	opts := aliveOptions
	opts.TaskQueue = activities.ControlQueue(lease.TaskQueue)
	var holds bool
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), acts.LeaseAlive,
		activities.LeaseInput{Lease: lease, Connector: h.input.Connector}).Get(ctx, &holds)
	if err == nil && holds {
		workflow.GetLogger(ctx).Info("the worker holding the credentials is busy; the step waits for a free slot",
			"busyWaits", h.progress.WorkerBusyWaits+1)
	}
	return err == nil && holds
}

// release asks the holding worker to zero the lease. It runs in a disconnected context so it
// also happens when the workflow is cancelled, and it never fails the workflow: the lease
// expires on its own if the worker cannot be reached.
func (h *leaseHolder) release() {
	if h.lease == nil || h.released {
		return
	}
	h.released = true
	h.releaseLease(h.rootCtx, *h.lease)
}

// releaseLease asks the worker holding lease to zero it, even when ctx is cancelled. It blocks
// the coroutine of ctx (a workflow context must only be blocked on by its own coroutine).
func (h *leaseHolder) releaseLease(ctx workflow.Context, lease activities.Lease) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	err := workflow.ExecuteActivity(withOptions(ctx, releaseOptions, lease), acts.ReleaseCredentials,
		activities.LeaseInput{Lease: lease, Connector: h.input.Connector}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("could not release the credential lease; it expires on its own", "error", err)
	}
}

// releasedElsewhere records that an activity (Finalize) released the lease, so release does not
// schedule ReleaseCredentials.
func (h *leaseHolder) releasedElsewhere() {
	h.released = true
}

// previousVersions returns the versions of the leases rotations replaced.
func (h *leaseHolder) previousVersions() []secrets.SecretVersion { return h.previous }

// versions returns the secret versions read by the current lease.
func (h *leaseHolder) versions() []secrets.SecretVersion {
	if h.lease == nil {
		return nil
	}
	return h.lease.Versions
}
