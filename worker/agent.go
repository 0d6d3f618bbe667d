package worker

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/audit"
	"github.com/secure-agent/secure-agent/codec"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/connectors/mysql"
	"github.com/secure-agent/secure-agent/connectors/postgres"
	"github.com/secure-agent/secure-agent/connectors/sqlite"
	"github.com/secure-agent/secure-agent/policy"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// Dial connects to Temporal as Temporal's own tools do: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TEMPORAL_API_KEY, TEMPORAL_TLS_* (and a TEMPORAL_CONFIG_FILE / TEMPORAL_PROFILE profile), with
// the SDK's logs going to logger and, when the settings hold codec keys, every payload and
// failure message encrypted.
func Dial(ctx context.Context, s Settings, logger *slog.Logger) (client.Client, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return nil, fmt.Errorf("reading the Temporal connection settings (TEMPORAL_*): %w", err)
	}
	return DialWith(ctx, s, opts, logger)
}

// DialWith connects with explicit client options, adding the agent's logger, identity and
// payload encryption, and, when SECURE_AGENT_HTTP_ADDRESS is set (and opts has no metrics handler
// of its own), the Temporal SDK's metrics, which an Agent built on the client serves on /metrics.
// When the OTEL_* variables turn tracing on, the client and the workers built on it trace
// workflows and activities (see tracing.go); invalid OTEL_* values are an error here. Close the
// client with Close, which exports the spans not yet exported.
func DialWith(ctx context.Context, s Settings, opts client.Options, logger *slog.Logger) (client.Client, error) {
	keys, err := s.Codec()
	if err != nil {
		return nil, err
	}
	if keys != nil {
		opts.DataConverter, opts.FailureConverter = codec.ClientOptions(keys)
	}
	if opts.HostPort == "" {
		opts.HostPort = client.DefaultHostPort
	}
	if opts.Namespace == "" {
		opts.Namespace = client.DefaultNamespace
	}
	opts.Logger = log.NewStructuredLogger(logger)
	if opts.Identity == "" {
		opts.Identity = identity()
	}
	tr, err := newTracing(ctx, os.Getenv, logger)
	if err != nil {
		return nil, err
	}
	if tr != nil {
		// First, so the workers' tracing interceptor (the client's come before their own) is
		// outermost: an activity's span covers the result guard and the timer.
		opts.Interceptors = append(tr.interceptors(), opts.Interceptors...)
	}
	var tel *telemetry
	if s.HTTPAddress != "" && opts.MetricsHandler == nil {
		tel, opts.MetricsHandler = newSDKMetrics(s, logger)
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		if tr != nil {
			_ = tr.shutdown()
		}
		return nil, fmt.Errorf("connecting to Temporal at %s (namespace %s): %w; set TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE", opts.HostPort, opts.Namespace, err)
	}
	if tel != nil {
		dialed.Store(c, tel)
	}
	if tr != nil {
		traced.Store(c, tr)
	}
	return c, nil
}

// Agent is the running agent: a worker on the shared task queue (workflows and ResolveSecrets)
// and one on this process's own lease queue (the activities that use credentials).
type Agent struct {
	settings Settings
	logger   *slog.Logger
	client   client.Client
	shared   sdkworker.Worker
	leased   sdkworker.Worker
	control  sdkworker.Worker // answers LeaseAlive even when every leased slot is busy
	leases   *activities.LeaseStore
	acts     *activities.Activities
	resolver *secrets.Resolver
	stores   *stores.Opener
	audit    *audit.Log
	stop     chan struct{}
	done     chan struct{}
	started  atomic.Bool
	// metrics and http are nil unless SECURE_AGENT_HTTP_ADDRESS is set.
	metrics  *agentMetrics
	registry *prometheus.Registry
	http     *httpServer
}

// New builds the agent on c. No worker polls until Start; when SECURE_AGENT_HTTP_ADDRESS is
// set, the metrics and health endpoint serves from New on (/readyz says 503 until Start returns)
// until Stop.
func New(c client.Client, s Settings, logger *slog.Logger) (*Agent, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	deployment, err := s.deployment()
	if err != nil {
		return nil, err
	}
	pol, err := s.Policy()
	if err != nil {
		return nil, err
	}
	sqliteDirs, err := ResolveSQLiteDirs(pol.SQLiteDirs())
	if err != nil {
		return nil, err
	}
	opener, err := stores.NewOpener(StoreOptions(s, pol))
	if err != nil {
		return nil, err
	}
	auditLog, err := audit.Open(s.Audit)
	if err != nil {
		return nil, err
	}
	logger.Info("agent policy", "policy", pol.Describe())
	a := &Agent{
		settings: s,
		logger:   logger,
		client:   c,
		leases:   activities.NewLeaseStore(s.LeaseTTL, s.MaxLeases, nil),
		stores:   opener,
		audit:    auditLog,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	resolverOpts := secrets.ResolverOptions{CacheTTL: s.SecretCacheTTL, CacheSize: s.SecretCacheSize, Logger: logger}
	if s.HTTPAddress != "" {
		a.metrics = newAgentMetrics()
		resolverOpts.OnFetch = a.metrics.onFetch
	}
	a.resolver = secrets.NewResolver(resolverOpts)
	a.leases.OnRevoke(a.revoked)
	guardLogs(a.leases)
	leaseQueue := LeaseQueue(s.TaskQueue)
	acts := &activities.Activities{
		Stores:                 a.stores,
		Resolver:               a.resolver,
		Leases:                 a.leases,
		LeaseQueue:             leaseQueue,
		OpenSource:             OpenSource,
		OutputRoot:             s.OutputDir,
		AllowSensitiveLiterals: pol.AllowSensitiveLiterals(),
		Policy:                 pol,
		Audit:                  auditLog,
		Logger:                 logger,
		SQLiteDirs:             sqliteDirs,
		Build:                  s.BuildID,
		HeartbeatEvery:         s.progressInterval(),
	}
	if acts.Build == "" {
		bi, _ := debug.ReadBuildInfo()
		acts.Build = BuildIDFromStamp("", bi) // "" for a modified tree: see README, incremental runs
	}
	a.acts = acts
	opts := sdkworker.Options{
		MaxConcurrentActivityExecutionSize:     s.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskExecutionSize: s.MaxConcurrentWorkflowTasks,
		WorkerStopTimeout:                      s.StopTimeout,
		// Extraction batches heartbeat their running counts every ProgressInterval; send them
		// that often (the SDK's default holds a heartbeat up to 80% of the heartbeat timeout,
		// 16 s), so `run` shows movement inside a batch. One small RPC per interval per batch.
		MaxHeartbeatThrottleInterval: s.progressInterval(),
		// The result guard runs innermost: what it withholds is what the timer sees as failed.
		Interceptors: []interceptor.WorkerInterceptor{acts.ResultGuard()},
	}
	if a.metrics != nil {
		acts.Metrics = a.metrics
		a.leases.OnEnd(a.metrics.leaseEnded)
		opts.Interceptors = []interceptor.WorkerInterceptor{&activityTimer{m: a.metrics}, acts.ResultGuard()}
	}
	sharedOpts := opts // only the shared queue is versioned: see deployment.go
	sharedOpts.DeploymentOptions = deployment
	if deployment.UseVersioning {
		logger.Info("worker versioning on: runs stay on the build they started on; new runs come to this build once it is the deployment's current version (temporal worker deployment set-current-version)",
			"deploymentName", s.DeploymentName, "buildId", s.BuildID)
	}
	a.shared = sdkworker.New(c, s.TaskQueue, sharedOpts)
	Register(a.shared, nil, nil, acts)
	a.leased = sdkworker.New(c, leaseQueue, opts)
	Register(nil, a.leased, nil, acts)
	a.control = sdkworker.New(c, activities.ControlQueue(leaseQueue), sdkworker.Options{
		MaxConcurrentActivityExecutionSize: controlSlots, WorkerStopTimeout: time.Second,
		MaxConcurrentActivityTaskPollers: 1, Interceptors: opts.Interceptors,
	})
	Register(nil, nil, a.control, acts)
	if a.metrics != nil {
		if err := a.serveMetrics(); err != nil {
			_ = auditLog.Close()
			opener.Close()
			return nil, err
		}
	}
	return a, nil
}

// serveMetrics registers the agent's metrics with its client's registry (a new one when the
// client was not made by Dial or DialWith: then the SDK's metrics are missing) and starts the
// HTTP endpoint.
func (a *Agent) serveMetrics() error {
	if tel, ok := dialed.Load(a.client); ok {
		a.registry = tel.(*telemetry).registry
	} else {
		a.logger.Warn("the Temporal client was not made by worker.Dial with " + EnvPrefix + "_HTTP_ADDRESS set: /metrics has the agent's metrics but not the Temporal SDK's")
		a.registry = newRegistry()
	}
	a.metrics.watch(a.leases.Active, a.resolver.CachedSecrets)
	if err := a.registry.Register(a.metrics); err != nil {
		return fmt.Errorf("registering the agent's metrics (is another agent on this client still running? Stop it first): %w", err)
	}
	if err := a.startHTTP(a.settings.HTTPAddress, a.registry); err != nil {
		a.registry.Unregister(a.metrics)
		return err
	}
	return nil
}

// defaultLeaseCheckInterval is how often the agent checks the runs holding its leases when the
// settings leave it zero (SECURE_AGENT_LEASE_CHECK_INTERVAL's default).
const defaultLeaseCheckInterval = 20 * time.Second

// controlSlots is how many LeaseAlive questions one agent answers at once; each takes
// microseconds.
const controlSlots = 16

// Register registers the workflows and ResolveSecrets on shared, the leased activities on
// leased, and LeaseAlive on control; any may be nil. Tests use it with their own workers.
func Register(shared, leased, control sdkworker.Registry, acts *activities.Activities) {
	if shared != nil {
		shared.RegisterWorkflowWithOptions(workflows.ExtractionWorkflow, workflow.RegisterOptions{Name: workflows.ExtractionWorkflowName})
		shared.RegisterWorkflowWithOptions(workflows.TestConnectionWorkflow, workflow.RegisterOptions{Name: workflows.TestConnectionWorkflowName})
		shared.RegisterActivityWithOptions(acts.ResolveSecrets, activity.RegisterOptions{Name: "ResolveSecrets"})
	}
	if leased != nil {
		leased.RegisterActivityWithOptions(acts.Preflight, activity.RegisterOptions{Name: "Preflight"})
		leased.RegisterActivityWithOptions(acts.ListSchemas, activity.RegisterOptions{Name: "ListSchemas"})
		leased.RegisterActivityWithOptions(acts.ExtractSchemas, activity.RegisterOptions{Name: "ExtractSchemas"})
		leased.RegisterActivityWithOptions(acts.Finalize, activity.RegisterOptions{Name: "Finalize"})
		leased.RegisterActivityWithOptions(acts.Publish, activity.RegisterOptions{Name: "Publish"})
		leased.RegisterActivityWithOptions(acts.PushCatalog, activity.RegisterOptions{Name: "PushCatalog"})
		leased.RegisterActivityWithOptions(acts.ReleaseCredentials, activity.RegisterOptions{Name: "ReleaseCredentials"})
	}
	if control != nil {
		control.RegisterActivityWithOptions(acts.LeaseAlive, activity.RegisterOptions{Name: "LeaseAlive"})
	}
}

// StoreOptions are the secret stores' agent-side settings, from the settings and the policy.
func StoreOptions(s Settings, pol *policy.Policy) stores.Options {
	return stores.Options{
		EnvAllow:            pol.EnvAllow(),
		CustomStoreEnvAllow: pol.CustomHeaderEnv(),
		CustomStoreHosts:    pol.CustomHosts(),
		CustomVersionPath:   pol.CustomVersionPath,
		CustomCAFile:        pol.CustomCAFile,
		AWSSessionName:      s.AWSSessionName,
		Vault:               vaultStore(s),
	}
}

// OpenSource opens the named connector's source with resolved credentials.
func OpenSource(ctx context.Context, connector string, creds connectors.Credentials, opts connectors.OpenOptions) (connectors.Source, error) {
	switch connector {
	case "sqlite":
		return sqlite.Open(ctx, creds, opts)
	case "postgres":
		return postgres.Open(ctx, creds, opts)
	case "mysql":
		return mysql.Open(ctx, creds, opts)
	}
	return nil, &secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("connector %q is not supported by this agent", connector)}
}

// LeaseQueue returns a task queue name unique to this process, derived from the shared queue.
func LeaseQueue(shared string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/lease/%s-%s", shared, hostLabel(), hex.EncodeToString(b[:]))
}

// Start starts the workers (control, leased, then shared, so no run is taken before its
// lease can be served) and the lease janitor.
func (a *Agent) Start() error {
	if err := a.control.Start(); err != nil {
		return fmt.Errorf("starting the lease control worker: %w", err)
	}
	if err := a.leased.Start(); err != nil {
		a.control.Stop()
		return fmt.Errorf("starting the lease worker: %w", err)
	}
	if err := a.shared.Start(); err != nil {
		a.leased.Stop()
		a.control.Stop()
		return fmt.Errorf("starting the worker on task queue %s: %w", a.settings.TaskQueue, err)
	}
	a.started.Store(true)
	go a.janitor()
	a.logger.Info("agent started", "taskQueue", a.settings.TaskQueue, "outputDir", a.settings.OutputDir)
	return nil
}

// Stop stops polling, lets running activities finish within the stop timeout, and zeroes every
// lease and cached secret. With tracing on, it exports the spans ended so far (the tracer
// provider stays up for the client: Close stops it). /readyz says 503 from the start of Stop;
// the HTTP endpoint shuts down last.
func (a *Agent) Stop() {
	select {
	case <-a.stop:
		return
	default:
	}
	close(a.stop)
	a.shared.Stop()
	a.leased.Stop()
	a.control.Stop()
	if a.started.Load() {
		<-a.done
	}
	flushTraces(a.client, a.logger)
	a.leases.Close()
	unguardLogs(a.leases)
	a.resolver.Purge(false)
	a.stores.Close()
	_ = a.audit.Close()
	a.stopHTTP()
	if a.registry != nil {
		a.registry.Unregister(a.metrics)
	}
	a.logger.Info("agent stopped")
}

// ActiveLeases returns the number of live credential leases.
func (a *Agent) ActiveLeases() int { return a.leases.Active() }

// janitor, every LeaseCheckInterval until Stop, ends the leases whose run has closed, renews
// those whose run still runs, and sweeps expired leases and cache entries.
func (a *Agent) janitor() {
	defer close(a.done)
	t := time.NewTicker(cmp.Or(a.settings.LeaseCheckInterval, defaultLeaseCheckInterval))
	defer t.Stop()
	clean := time.NewTicker(cleanupInterval)
	defer clean.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-a.stop
		cancel()
	}()
	a.cleanOutput(ctx)
	for {
		select {
		case <-a.stop:
			return
		case <-clean.C:
			a.cleanOutput(ctx)
		case <-t.C:
			a.checkRuns()
			a.leases.Sweep()
			a.resolver.Purge(true)
		}
	}
}

// cleanOutput runs CleanOutput and logs what it removed.
func (a *Agent) cleanOutput(ctx context.Context) {
	if r := a.CleanOutput(ctx); r.Finished+r.Orphaned > 0 {
		a.logger.Info("output directory cleaned", "finishedRuns", r.Finished, "orphanedRuns", r.Orphaned)
	}
}

// checkRuns asks Temporal about every run that holds a lease here. A run that is no longer
// running (completed, failed, cancelled, terminated, timed out, continued as new, reset) or no
// longer exists loses its leases at once: its workflow code, which would have released them,
// may never run again (a terminated run runs nothing). A running one has its leases renewed.
// When Temporal cannot be asked, nothing changes and the leases' TTL still bounds them.
func (a *Agent) checkRuns() {
	for _, r := range a.leases.Runs() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		desc, err := a.client.DescribeWorkflowExecution(ctx, r[0], r[1])
		cancel()
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			a.endRun(r[0], r[1], "the run no longer exists")
		case err != nil:
			a.logger.Debug("could not ask Temporal whether a run holding a lease is still running; its leases keep their TTL",
				"workflowId", r[0], "runId", r[1], "error", err)
		case desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			a.leases.Renew(r[0], r[1])
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			a.leases.RenewDynamic(rctx, r[0], r[1])
			rcancel()
		default:
			a.endRun(r[0], r[1], "the run is "+strings.ToLower(strings.TrimPrefix(desc.GetWorkflowExecutionInfo().GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")))
		}
	}
}

// revoked audits the revocation of dynamic credentials (and logs a failed one: the store's TTL
// then ends them).
func (a *Agent) revoked(d *activities.DynamicCreds, reason string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = string(secrets.KindOf(err))
		if outcome == "" {
			outcome = string(secrets.StoreUnavailable)
		}
		a.logger.Warn("revoking dynamic credentials failed; the store's lease TTL ends them", "workflowId", d.WorkflowID, "runId", d.RunID,
			"leaseId", d.Lease.ID, "kind", outcome)
	}
	if aerr := a.audit.Record(audit.Event{Event: audit.CredentialsRevoked, WorkflowID: d.WorkflowID, RunID: d.RunID,
		Secret: d.Secret, LeaseID: d.Lease.ID, Outcome: outcome, Reason: reason}); aerr != nil {
		a.logger.Error("writing the audit trail failed", "error", aerr)
	}
}

// endRun drops a closed run's leases, logged and audited.
func (a *Agent) endRun(workflowID, runID, why string) {
	n := a.leases.EndRun(workflowID, runID, activities.EndRunClosed)
	if n == 0 {
		return
	}
	a.logger.Info("credentials of a closed run released", "workflowId", workflowID, "runId", runID, "leases", n, "reason", why)
	if err := a.audit.Record(audit.Event{Event: audit.LeaseEnded, WorkflowID: workflowID, RunID: runID,
		Outcome: activities.EndRunClosed, Reason: why}); err != nil {
		a.logger.Error("writing the audit trail failed", "error", err)
	}
}

func identity() string {
	return fmt.Sprintf("secure-agent@%s/%d", hostLabel(), os.Getpid())
}

func hostLabel() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "host"
	}
	return strings.ReplaceAll(h, "/", "-")
}

// progressInterval is ProgressInterval, 1s when unset.
func (s Settings) progressInterval() time.Duration {
	if s.ProgressInterval > 0 {
		return s.ProgressInterval
	}
	return time.Second
}
