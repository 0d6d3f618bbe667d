package worker

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// Tracing. When the OTEL_* variables ask for it (see readTracingEnv), DialWith builds a tracer
// provider that exports over OTLP and puts the Temporal SDK's OpenTelemetry interceptor on the
// client: workflow starts carry the trace context in their headers, and the workers built on the
// client (which take the client's interceptors) continue it, so a run's workflow, its activities,
// their store calls (package secrets) and catalog queries (package connectors) are one trace.
// Those packages start their spans from the span in their context, with its provider: nothing
// is registered globally, so libraries that trace through OpenTelemetry's global provider (the
// cloud SDKs' HTTP and gRPC clients) still trace nothing, and agents of one process each export
// to their own provider. Off (the default), the contexts carry no span and every span started
// from them is OpenTelemetry's no-op one.

// defaultServiceName is the resource's service.name unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES says otherwise.
const defaultServiceName = "secure-agent"

// flushTimeout bounds the export of the remaining spans on Agent.Stop and Close.
const flushTimeout = 5 * time.Second

// tracing is one dialed client's tracer provider and the Temporal interceptor that uses it.
type tracing struct {
	provider    *sdktrace.TracerProvider
	interceptor interceptor.Interceptor
}

// traced maps the clients DialWith made with tracing on to their tracing.
var traced sync.Map // client.Client -> *tracing

// errorHandlerOnce installs OpenTelemetry's error handler (export failures) once per process.
var errorHandlerOnce sync.Once

// newTracing returns the tracing the OTEL_* variables (read through getenv) ask for, or nil when
// they ask for none. Nothing is dialled here: the exporter connects on its first export.
func newTracing(ctx context.Context, getenv func(string) string, logger *slog.Logger) (*tracing, error) {
	env, err := readTracingEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("the OpenTelemetry settings (OTEL_*) are invalid; fix or unset them:\n%w", err)
	}
	if !env.on {
		return nil, nil
	}
	var exporter sdktrace.SpanExporter
	if env.protocol == protocolGRPC {
		exporter, err = otlptracegrpc.New(ctx)
	} else {
		exporter, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the OTLP trace exporter (OTEL_EXPORTER_OTLP_*): %w", err)
	}
	res, err := newResource(ctx)
	if err != nil {
		_ = exporter.Shutdown(ctx)
		return nil, err
	}
	errorHandlerOnce.Do(func() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			logger.Warn("OpenTelemetry: exporting traces failed; spans may be lost", "error", err)
		}))
	})
	provider := sdktrace.NewTracerProvider(sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(newSpanGuard(sdktrace.NewBatchSpanProcessor(exporter), logger)))
	icpt, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: provider.Tracer("temporal-sdk-go"),
		// Queries are not traced: `secure-agent run` asks for progress every second, and each
		// question would be a trace of its own.
		DisableQueryTracing: true,
		// Baggage is the starter's free-form data: nothing here reads it, so it is not carried.
		DisableBaggage:    true,
		TextMapPropagator: propagation.TraceContext{},
		HeaderKey:         tracerHeaderKey,
		SpanStarter:       startRedactedSpan,
	})
	if err != nil {
		_ = provider.Shutdown(ctx)
		return nil, fmt.Errorf("creating the Temporal tracing interceptor: %w", err)
	}
	logger.Info("tracing on: spans are exported over OTLP", "protocol", env.protocol)
	return &tracing{provider: provider, interceptor: icpt}, nil
}

// interceptors are the client interceptors of the tracing, outermost first.
func (t *tracing) interceptors() []interceptor.ClientInterceptor {
	return []interceptor.ClientInterceptor{t.interceptor, &untracedSchedules{}}
}

// tracerHeaderKey is the Temporal header the trace context travels in (the SDKs' default).
const tracerHeaderKey = "_tracer-data"

// untracedSchedules keeps the trace context of a schedule's creation out of the schedule: the
// SDK stores the creating call's headers in the schedule's start-workflow action, which would
// make every run the schedule ever starts a part of the CreateSchedule trace. Each scheduled run
// is a trace of its own instead, rooted at its workflow span.
type untracedSchedules struct {
	interceptor.ClientInterceptorBase
}

func (*untracedSchedules) InterceptClient(next interceptor.ClientOutboundInterceptor) interceptor.ClientOutboundInterceptor {
	return &untracedSchedulesOutbound{ClientOutboundInterceptorBase: interceptor.ClientOutboundInterceptorBase{Next: next}}
}

type untracedSchedulesOutbound struct {
	interceptor.ClientOutboundInterceptorBase
}

func (o *untracedSchedulesOutbound) CreateSchedule(ctx context.Context, in *interceptor.ScheduleClientCreateInput) (client.ScheduleHandle, error) {
	delete(interceptor.Header(ctx), tracerHeaderKey)
	return o.Next.CreateSchedule(ctx, in)
}

// newResource describes the agent: service.name secure-agent (OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES override it), service.version when the binary knows its version, the
// SDK's own attributes, and OTEL_RESOURCE_ATTRIBUTES. No host detector runs: the resource holds
// what the operator sets and nothing else.
func newResource(ctx context.Context) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", defaultServiceName)}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		attrs = append(attrs, attribute.String("service.version", bi.Main.Version))
	}
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("reading OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return res, nil
}

// flush exports the spans ended so far, waiting at most flushTimeout.
func (t *tracing) flush() error {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	return t.provider.ForceFlush(ctx)
}

// shutdown exports the remaining spans and stops the exporter, waiting at most flushTimeout.
func (t *tracing) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	return t.provider.Shutdown(ctx)
}

// flushTraces exports the spans of c's tracing, if it has any, logging a failure.
func flushTraces(c client.Client, logger *slog.Logger) {
	if t, ok := traced.Load(c); ok {
		if err := t.(*tracing).flush(); err != nil {
			logger.Warn("OpenTelemetry: exporting the remaining spans failed", "error", err)
		}
	}
}

// Close closes a client made by Dial or DialWith: with tracing on, it first exports the spans
// not yet exported (waiting at most 5 s) and stops the exporter. Processes that only start
// workflows (run, schedule) call it before they exit, or their spans may be lost; an agent
// exports its own on Stop.
func Close(c client.Client) error {
	var err error
	if t, ok := traced.LoadAndDelete(c); ok {
		if e := t.(*tracing).shutdown(); e != nil {
			err = fmt.Errorf("exporting the remaining spans: %w", e)
		}
	}
	c.Close()
	return err
}
