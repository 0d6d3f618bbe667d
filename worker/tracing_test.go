package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/otlptest"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestTracingEnvSwitch: tracing is off unless OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint is
// set; OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED=true turn it off; the protocol is
// http/protobuf unless OTEL_EXPORTER_OTLP_PROTOCOL (or its TRACES_ form, which wins) says grpc.
func TestTracingEnvSwitch(t *testing.T) {
	for _, tc := range []struct {
		vars     map[string]string
		on       bool
		protocol string
	}{
		{nil, false, ""},
		{map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_HEADERS": "a=b", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true, protocolHTTP},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c/v1/traces"}, true, protocolHTTP},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, protocolHTTP},
		{map[string]string{"OTEL_TRACES_EXPORTER": "OTLP", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, protocolGRPC},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, true, protocolHTTP},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false, ""},
		{map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, false, ""},
		{map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
			"OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc%2Cdef, x-team = data", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
			"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25",
			"OTEL_BSP_SCHEDULE_DELAY": "0", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "-1", "OTEL_RESOURCE_ATTRIBUTES": "a=b,c=d%20e"}, true, protocolGRPC},
	} {
		env, err := readTracingEnv(envOf(tc.vars))
		if err != nil || env.on != tc.on || env.protocol != tc.protocol {
			t.Errorf("%v: on=%v protocol=%q err=%v, want on=%v protocol=%q", tc.vars, env.on, env.protocol, err, tc.on, tc.protocol)
		}
	}
}

// TestTracingEnvRefusesBadValues: every invalid variable is named in one error, a header's value
// is never shown, and tracing stays off.
func TestTracingEnvRefusesBadValues(t *testing.T) {
	_, err := readTracingEnv(envOf(map[string]string{"OTEL_SDK_DISABLED": "yes", "OTEL_TRACES_EXPORTER": "console"}))
	for _, want := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}

	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	const token = "token-canary-7f3a"
	bad := map[string]string{
		"OTEL_TRACES_EXPORTER":                         "otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL":                  "http/json",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL":           "thrift",
		"OTEL_EXPORTER_OTLP_ENDPOINT":                  "localhost:4317",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":           "ftp://user:" + token + "@collector",
		"OTEL_EXPORTER_OTLP_INSECURE":                  "1",
		"OTEL_EXPORTER_OTLP_HEADERS":                   "Authorization=Bearer%ZZ" + token + ",bad key=v," + token,
		"OTEL_EXPORTER_OTLP_COMPRESSION":               "zstd",
		"OTEL_EXPORTER_OTLP_TIMEOUT":                   "10s",
		"OTEL_EXPORTER_OTLP_CERTIFICATE":               notPEM,
		"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE":        filepath.Join(dir, "missing.pem"),
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE":        notPEM,
		"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY":         notPEM,
		"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": notPEM,
		"OTEL_TRACES_SAMPLER":                          "traceidratio",
		"OTEL_TRACES_SAMPLER_ARG":                      "1.5",
		"OTEL_BSP_SCHEDULE_DELAY":                      "5s",
		"OTEL_BSP_MAX_QUEUE_SIZE":                      "0",
		"OTEL_SPAN_EVENT_COUNT_LIMIT":                  "many",
		"OTEL_RESOURCE_ATTRIBUTES":                     "team",
	}
	env, err := readTracingEnv(envOf(bad))
	if env.on || err == nil {
		t.Fatalf("on=%v err=%v", env.on, err)
	}
	msg := err.Error()
	for name := range bad {
		if name == "OTEL_TRACES_EXPORTER" || name == "OTEL_TRACES_SAMPLER" || name == "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE" {
			continue // valid, or reported under its pair's other name
		}
		if !strings.Contains(msg, name+":") {
			t.Errorf("the error does not name %s:\n%s", name, msg)
		}
	}
	if strings.Contains(msg, token) {
		t.Errorf("the error shows a header value or an endpoint's password:\n%s", msg)
	}
	if _, err := readTracingEnv(envOf(map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "jaeger_remote"})); err == nil ||
		!strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER:") {
		t.Errorf("an unsupported sampler: %v", err)
	}
}

// TestDialWithRefusesBadOTelEnv: an invalid OTEL_* value stops DialWith before it connects to
// anything, with a message that says which variable to fix.
func TestDialWithRefusesBadOTelEnv(t *testing.T) {
	clearOTelEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")
	_, err := DialWith(context.Background(), Settings{}, client.Options{HostPort: "127.0.0.1:1"}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT:") || !strings.Contains(err.Error(), "fix or unset") ||
		strings.Contains(err.Error(), "connecting to Temporal") {
		t.Fatalf("DialWith: %v", err)
	}
}

// TestRedactedSpans: the interceptor's spans record a failure by its kind only, whatever the
// error's message holds; an unknown kind is "other".
func TestRedactedSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tracer := tp.Tracer("test")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{temporal.NewApplicationError("login for user span-canary at db.internal refused", string(secrets.SourceAuthFailed)), "SourceAuthFailed"},
		{fmt.Errorf("wrapped: %w", temporal.NewApplicationError("span-canary", "SomethingElse")), "other"},
		{temporal.NewCanceledError("span-canary"), "canceled"},
		{errors.New("span-canary"), "other"},
	} {
		exp.Reset()
		span := startRedactedSpan(context.Background(), tracer, "RunActivity:X")
		span.RecordError(tc.err)
		span.SetStatus(codes.Error, tc.err.Error())
		span.End()
		got := exp.GetSpans()
		if len(got) != 1 {
			t.Fatalf("%d spans", len(got))
		}
		s := got[0]
		if s.Status.Code != codes.Error || s.Status.Description != tc.want {
			t.Errorf("%v: status %+v, want %s", tc.err, s.Status, tc.want)
		}
		if len(s.Events) != 1 || len(s.Events[0].Attributes) != 1 || s.Events[0].Attributes[0] != attribute.String("exception.type", tc.want) {
			t.Errorf("%v: events %+v", tc.err, s.Events)
		}
		if strings.Contains(fmt.Sprintf("%+v", s), "span-canary") {
			t.Errorf("the span holds the error's message: %+v", s)
		}
	}
}

// TestSpanGuard: a span holding a value of a sensitive field of a lease held in this process, in
// its name, an attribute, an event or its status, is not exported and a log line names the
// field; other spans are exported.
func TestSpanGuard(t *testing.T) {
	leases := activities.NewLeaseStore(time.Hour, 0, nil)
	if _, _, err := leases.Put(activities.LeaseGrant{WorkflowID: "wf", RunID: "r", Connector: "postgres", Sensitive: []string{"password"},
		Creds: connectors.Credentials{"password": secrets.Value("span-canary-pw"), "host": secrets.Value("db.internal")}}); err != nil {
		t.Fatal(err)
	}
	guardLogs(leases)
	defer unguardLogs(leases)
	exp := tracetest.NewInMemoryExporter()
	var logs bytes.Buffer
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(newSpanGuard(sdktrace.NewSimpleSpanProcessor(exp), slog.New(slog.NewJSONHandler(&logs, nil)))))
	tracer := tp.Tracer("test")
	ctx := context.Background()
	_, s := tracer.Start(ctx, "in the name span-canary-pw")
	s.End()
	_, s = tracer.Start(ctx, "attribute", trace.WithAttributes(attribute.String("dsn", "postgres://u:span-canary-pw@db")))
	s.End()
	_, s = tracer.Start(ctx, "event")
	s.AddEvent("retry", trace.WithAttributes(attribute.String("why", "span-canary-pw")))
	s.End()
	_, s = tracer.Start(ctx, "status")
	s.SetStatus(codes.Error, "password span-canary-pw rejected")
	s.End()
	_, s = tracer.Start(ctx, "clean", trace.WithAttributes(attribute.String("host", "db.internal")))
	s.End()
	got := exp.GetSpans()
	if len(got) != 1 || got[0].Name != "clean" {
		t.Fatalf("exported %d spans (%v), want only the clean one", len(got), got.Snapshots())
	}
	if strings.Count(logs.String(), "a span was withheld") != 4 || !strings.Contains(logs.String(), `"field":"password"`) || strings.Contains(logs.String(), "span-canary-pw") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

// TestTracingOffByDefault runs an extraction with no OTEL_* variable set while OTLP receivers
// listen on the default endpoints (localhost:4317 and :4318): no tracing is set up and nothing
// connects to them. Then a client dialled with only OTEL_TRACES_EXPORTER=otlp (and insecure)
// starts a run: its span reaches the default endpoint, which shows the receivers would have seen
// a connection.
func TestTracingOffByDefault(t *testing.T) {
	clearOTelEnv(t)
	var grpcLs, httpLs []net.Listener
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		for port, ls := range map[string]*[]net.Listener{"4317": &grpcLs, "4318": &httpLs} {
			l, err := net.Listen("tcp", host+":"+port)
			if err != nil {
				if host == "127.0.0.1" {
					t.Fatalf("the default OTLP port %s is taken (%v): this test needs it free", port, err)
				}
				continue // no IPv6 loopback here
			}
			*ls = append(*ls, l)
		}
	}
	recv := otlptest.StartOn(t, grpcLs, httpLs)

	srv := temporaltest.NewServer(temporaltest.WithT(t))
	dir := t.TempDir()
	db := filepath.Join(dir, "shop.db")
	makeDB(t, db)
	t.Setenv("TRACETEST_SHOP_DB", db)
	settings := Settings{
		TaskQueue: fmt.Sprintf("tracing-off-%d", time.Now().UnixNano()),
		OutputDir: filepath.Join(dir, "out"), LeaseTTL: time.Hour, SecretCacheSize: 16,
		MaxConcurrentActivities: 4, MaxConcurrentWorkflowTasks: 4, StopTimeout: 5 * time.Second,
		LogLevel: "debug", LogFormat: "json", AWSSessionName: "secure-agent", Audit: "off",
		EnvAllow: []string{"TRACETEST_*"}, SQLiteDirs: []string{dir},
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := client.Options{HostPort: srv.GetFrontendHostPort(), Namespace: srv.GetDefaultNamespace()}
	c, err := DialWith(context.Background(), settings, opts, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(c)
	if _, ok := traced.Load(c); ok {
		t.Fatal("tracing was set up with no OTEL_* variable set")
	}
	agent, err := New(c, settings, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	input := workflows.Input{Connector: "sqlite", Connection: map[string]workflows.FieldValue{"path": "TRACETEST_SHOP_DB"},
		SecretStore: &stores.Spec{Type: stores.TypeEnv}}
	start := func(c client.Client) {
		t.Helper()
		run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
			ID: fmt.Sprintf("tracing-%d", time.Now().UnixNano()), TaskQueue: settings.TaskQueue, WorkflowExecutionTimeout: time.Minute,
		}, workflows.ExtractionWorkflowName, input)
		if err != nil {
			t.Fatal(err)
		}
		var sum workflows.Summary
		if err := run.Get(context.Background(), &sum); err != nil || sum.Counts["tables"] != 2 {
			t.Fatalf("run: %v, counts %v", err, sum.Counts)
		}
	}
	start(c)
	agent.Stop()
	if n := recv.Connections(); n != 0 {
		t.Fatalf("with no OTEL_* variable set, %d connections reached the default OTLP endpoints", n)
	}

	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	traced2, err := DialWith(context.Background(), settings, opts, logger)
	if err != nil {
		t.Fatal(err)
	}
	agent2, err := New(c, settings, logger) // the untraced client's agent runs a traced start
	if err != nil {
		t.Fatal(err)
	}
	defer agent2.Stop()
	if err := agent2.Start(); err != nil {
		t.Fatal(err)
	}
	start(traced2)
	if err := Close(traced2); err != nil {
		t.Fatal(err)
	}
	if recv.Connections() == 0 || len(recv.Spans()) != 1 || recv.Spans()[0].GetName() != "StartWorkflow:"+workflows.ExtractionWorkflowName {
		t.Fatalf("with OTEL_TRACES_EXPORTER=otlp the default endpoint got %d connections and spans %v", recv.Connections(), recv.Spans())
	}
}

// clearOTelEnv unsets every OTEL_* variable of the process for the test.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "OTEL_") {
			t.Setenv(name, "")
		}
	}
}

// TestScheduleCreationIsNotInheritedByItsRuns: a schedule created by a traced client holds no
// trace context in its start-workflow action (each run it starts is a trace of its own), though
// the creation itself is traced.
func TestScheduleCreationIsNotInheritedByItsRuns(t *testing.T) {
	clearOTelEnv(t)
	recv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.GRPCEndpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	srv := temporaltest.NewServer(temporaltest.WithT(t))
	c, err := DialWith(context.Background(), Settings{}, client.Options{HostPort: srv.GetFrontendHostPort(), Namespace: srv.GetDefaultNamespace()},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("traced-schedule-%d", time.Now().UnixNano())
	if _, err := c.ScheduleClient().Create(context.Background(), client.ScheduleOptions{
		ID: id, Paused: true, Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
		Action: &client.ScheduleWorkflowAction{Workflow: workflows.ExtractionWorkflowName, TaskQueue: "nowhere", Args: []any{"x"}},
	}); err != nil {
		t.Fatal(err)
	}
	desc, err := c.WorkflowService().DescribeSchedule(context.Background(), &workflowservice.DescribeScheduleRequest{
		Namespace: srv.GetDefaultNamespace(), ScheduleId: id})
	if err != nil {
		t.Fatal(err)
	}
	if h := desc.GetSchedule().GetAction().GetStartWorkflow().GetHeader().GetFields(); h[tracerHeaderKey] != nil {
		t.Errorf("the schedule's action carries the creation's trace context: %v", h)
	}
	if err := Close(c); err != nil {
		t.Fatal(err)
	}
	if spans := recv.Spans(); len(spans) != 1 || spans[0].GetName() != "CreateSchedule:"+id {
		t.Errorf("spans %v, want the CreateSchedule span", spans)
	}
}
