package worker

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// Metrics. Every label value comes from a small fixed set: a store type, an outcome kind, an
// activity or workflow type, a connector or an entity kind. Anything else becomes "other". No
// label ever holds a secret path, a variable name, a workflow or run id, a host, a database, a
// namespace, a task queue name or any other customer identifier.
const (
	metricSecretResolutions = "secure_agent_secret_resolutions_total"           // {store, outcome}
	metricSecretLatency     = "secure_agent_secret_resolution_duration_seconds" // {store, outcome}, store calls only
	metricSecretCacheHits   = "secure_agent_secret_cache_hits_total"            // {store}
	metricCachedSecrets     = "secure_agent_cached_secrets"                     // gauge
	metricActiveLeases      = "secure_agent_active_leases"                      // gauge
	metricEntities          = "secure_agent_entities_extracted_total"           // {connector, kind}
	metricBytesWritten      = "secure_agent_output_bytes_written_total"         // {connector, kind}
	metricActivityDuration  = "secure_agent_activity_duration_seconds"          // {activity_type, outcome}
	metricLeasesEnded       = "secure_agent_leases_ended_total"                 // {reason}
	metricOutputRedactions  = "secure_agent_output_redactions_total"            // {connector}

	otherLabel = "other"
)

var (
	knownStores     = set(stores.TypeAWS, stores.TypeAzure, stores.TypeGCP, stores.TypeEnv, stores.TypeCustom)
	knownConnectors = set("sqlite", "postgres", "mysql")
	knownWorkflows  = set(workflows.ExtractionWorkflowName, workflows.TestConnectionWorkflowName)
	knownActivities = set("ResolveSecrets", "Preflight", "ListSchemas", "ExtractSchemas", "Finalize", "Publish", "PushCatalog", "ReleaseCredentials", "LeaseAlive")
	knownOutcomes   = set("ok", "canceled", "timeout", activities.ErrTypeInternal,
		string(secrets.InvalidInput), string(secrets.PolicyDenied), string(secrets.SecretNotFound),
		string(secrets.SecretKeyNotFound), string(secrets.AccessDenied), string(secrets.AuthFailed),
		string(secrets.DecryptionFailed), string(secrets.LeaseNotFound), string(secrets.LeaseScopeMismatch),
		string(secrets.SourceAuthFailed), string(secrets.StoreUnavailable), string(secrets.Throttled),
		string(secrets.SourceUnavailable), string(secrets.OutputUnavailable), string(secrets.LeakPrevented),
		string(secrets.LeaseLimit))
	knownLeaseEnds = set(activities.EndReleased, activities.EndRunClosed, activities.EndExpired, activities.EndShutdown)
	// entityKind is the shape of the entity kinds connectors emit ("tables", "columns"...).
	entityKind = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

func set(vals ...string) map[string]bool {
	m := make(map[string]bool, len(vals))
	for _, v := range vals {
		m[v] = true
	}
	return m
}

func bounded(known map[string]bool, v string) string {
	if known[v] {
		return v
	}
	return otherLabel
}

func kindLabel(k string) string {
	if entityKind.MatchString(k) {
		return k
	}
	return otherLabel
}

// telemetry is the Prometheus registry of one dialed client: the Temporal SDK's metrics (through
// tally) and the runtime's; agents built on the client add their own.
type telemetry struct {
	registry *prometheus.Registry
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// dialed maps the clients DialWith made with metrics on to their telemetry, for New. A process
// dials once or a few times, so the map stays small.
var dialed sync.Map // client.Client -> *telemetry

// newSDKMetrics returns a registry and the SDK metrics handler that reports into it.
func newSDKMetrics(s Settings, logger *slog.Logger) (*telemetry, client.MetricsHandler) {
	reg := newRegistry()
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       reg,
		Gatherer:         reg,
		DefaultTimerType: tallyprom.HistogramTimerType,
		OnRegisterError: func(err error) {
			logger.Warn("a Temporal SDK metric could not be registered", "error", err)
		},
	})
	scope, _ := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
		// tally's own cardinality metrics carry "host" and "instance" labels: leave them out.
		OmitCardinalityMetrics: true,
	}, time.Second)
	scope = sdktally.NewPrometheusNamingScope(scope)
	h := &sdkHandler{inner: sdktally.NewMetricsHandler(scope), sharedQueue: s.TaskQueue}
	return &telemetry{registry: reg}, h
}

// sdkHandler keeps the SDK's metric labels to its fixed vocabulary: it drops the namespace and
// unknown keys, names task queues by role (shared, lease, sticky), and bounds workflow and
// activity types to the agent's own.
type sdkHandler struct {
	inner       client.MetricsHandler
	sharedQueue string
}

var sdkTagsKept = set("client_name", "worker_type", "poller_type", "operation", "status_code",
	"failure_reason", "cause", "workflow_type", "activity_type", "task_queue")

func (h *sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	clean := make(map[string]string, len(tags))
	for k, v := range tags {
		if !sdkTagsKept[k] {
			continue
		}
		switch k {
		case "workflow_type":
			v = sdkType(knownWorkflows, v)
		case "activity_type":
			v = sdkType(knownActivities, v)
		case "task_queue":
			v = h.queueRole(v)
		default:
			v = sdkValue(v)
		}
		clean[k] = v
	}
	return &sdkHandler{inner: h.inner.WithTags(clean), sharedQueue: h.sharedQueue}
}

// sdkType keeps the agent's own workflow and activity types and the SDK's "none".
func sdkType(known map[string]bool, v string) string {
	if v == "none" {
		return v
	}
	return bounded(known, v)
}

func (h *sdkHandler) queueRole(q string) string {
	switch {
	case q == h.sharedQueue:
		return "shared"
	case strings.HasPrefix(q, h.sharedQueue+"/lease/"):
		return "lease"
	case q == "none" || q == "":
		return q
	}
	return otherLabel // sticky queues are named after the host
}

// sdkValue keeps the SDK's own enumerations (RPC names, status codes, worker types...) and
// replaces anything that does not look like one.
var sdkEnum = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

func sdkValue(v string) string {
	if sdkEnum.MatchString(v) {
		return v
	}
	return otherLabel
}

func (h *sdkHandler) Counter(name string) client.MetricsCounter { return h.inner.Counter(name) }
func (h *sdkHandler) Gauge(name string) client.MetricsGauge     { return h.inner.Gauge(name) }
func (h *sdkHandler) Timer(name string) client.MetricsTimer     { return h.inner.Timer(name) }

// agentMetrics are one agent's own metrics. It is a prometheus.Collector, registered by New and
// unregistered by Stop, so an agent rebuilt on the same client starts afresh.
type agentMetrics struct {
	resolutions    *prometheus.CounterVec
	resolutionTime *prometheus.HistogramVec
	cacheHits      *prometheus.CounterVec
	cachedSecrets  prometheus.GaugeFunc
	activeLeases   prometheus.GaugeFunc
	entities       *prometheus.CounterVec
	bytesWritten   *prometheus.CounterVec
	activityTime   *prometheus.HistogramVec
	leasesEnded    *prometheus.CounterVec
	redactions     *prometheus.CounterVec
}

func newAgentMetrics() *agentMetrics {
	return &agentMetrics{
		resolutions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricSecretResolutions,
			Help: "Secret accesses by store type and outcome (ok or the failure kind), cache hits included."}, []string{"store", "outcome"}),
		resolutionTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricSecretLatency,
			Help:    "Latency of secret fetches from the store (cache hits excluded), by store type and outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"store", "outcome"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricSecretCacheHits,
			Help: "Secret accesses answered by the agent's secret cache, by store type."}, []string{"store"}),
		entities: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricEntities,
			Help: "Entities extracted and committed to output parts, by connector and entity kind."}, []string{"connector", "kind"}),
		bytesWritten: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricBytesWritten,
			Help: "Bytes of finalized local output files (compressed), by connector and entity kind."}, []string{"connector", "kind"}),
		activityTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricActivityDuration,
			Help:    "Duration of activity attempts on this agent, by activity type and outcome (ok, canceled, timeout or the failure kind).",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}}, []string{"activity_type", "outcome"}),
		leasesEnded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricLeasesEnded,
			Help: "Credential leases this agent dropped, by reason: released by their run, run_closed (the run ended without releasing), expired, shutdown."}, []string{"reason"}),
		redactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricOutputRedactions,
			Help: "Values of a run's sensitive fields found in extracted text and written as [REDACTED], by connector."}, []string{"connector"}),
	}
}

// leaseEnded counts one lease that ended (activities.LeaseStore.OnEnd).
func (m *agentMetrics) leaseEnded(reason string) {
	m.leasesEnded.WithLabelValues(bounded(knownLeaseEnds, reason)).Inc()
}

// watch adds the gauges read from the agent's lease store and resolver.
func (m *agentMetrics) watch(leases func() int, cached func() int) {
	m.activeLeases = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricActiveLeases,
		Help: "Live credential leases held in this agent's memory."}, func() float64 { return float64(leases()) })
	m.cachedSecrets = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricCachedSecrets,
		Help: "Secrets held in this agent's secret cache (0 when the cache is off)."}, func() float64 { return float64(cached()) })
}

func (m *agentMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.resolutions, m.resolutionTime, m.cacheHits, m.cachedSecrets, m.activeLeases,
		m.entities, m.bytesWritten, m.activityTime, m.leasesEnded, m.redactions}
}

// Describe implements prometheus.Collector.
func (m *agentMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *agentMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// onFetch records one secret access (secrets.ResolverOptions.OnFetch). The event's reference and
// version are not used.
func (m *agentMetrics) onFetch(ev secrets.FetchEvent) {
	store := bounded(knownStores, ev.Store)
	outcome := "ok"
	if ev.Kind != "" {
		outcome = bounded(knownOutcomes, string(ev.Kind))
	}
	m.resolutions.WithLabelValues(store, outcome).Inc()
	if ev.Cached {
		m.cacheHits.WithLabelValues(store).Inc()
		return
	}
	m.resolutionTime.WithLabelValues(store, outcome).Observe(ev.Duration.Seconds())
}

var _ activities.Recorder = (*agentMetrics)(nil)

// EntitiesExtracted implements activities.Recorder.
func (m *agentMetrics) EntitiesExtracted(connector string, counts map[string]int64) {
	c := bounded(knownConnectors, connector)
	for kind, n := range counts {
		m.entities.WithLabelValues(c, kindLabel(kind)).Add(float64(n))
	}
}

// OutputRedacted implements activities.Recorder.
func (m *agentMetrics) OutputRedacted(connector string, n int) {
	m.redactions.WithLabelValues(bounded(knownConnectors, connector)).Add(float64(n))
}

// OutputWritten implements activities.Recorder.
func (m *agentMetrics) OutputWritten(connector string, bytes map[string]int64) {
	c := bounded(knownConnectors, connector)
	for kind, n := range bytes {
		m.bytesWritten.WithLabelValues(c, kindLabel(kind)).Add(float64(n))
	}
}

// activityTimer is a worker interceptor timing every activity attempt.
type activityTimer struct {
	interceptor.WorkerInterceptorBase
	m *agentMetrics
}

func (t *activityTimer) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &activityTimerInbound{m: t.m}
	i.Next = next
	return i
}

type activityTimerInbound struct {
	interceptor.ActivityInboundInterceptorBase
	m *agentMetrics
}

func (i *activityTimerInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	start := time.Now()
	res, err := i.Next.ExecuteActivity(ctx, in)
	name := bounded(knownActivities, activityType(ctx))
	i.m.activityTime.WithLabelValues(name, activityOutcome(err)).Observe(time.Since(start).Seconds())
	return res, err
}

func activityType(ctx context.Context) (name string) {
	defer func() {
		if recover() != nil {
			name = ""
		}
	}()
	return activity.GetInfo(ctx).ActivityType.Name
}

// activityOutcome is "ok", "canceled", "timeout", or the ApplicationError type when it is a
// known failure kind; anything else is "other".
func activityOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return bounded(knownOutcomes, ae.Type())
	}
	return otherLabel
}
