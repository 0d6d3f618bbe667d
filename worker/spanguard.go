package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/temporal"
)

// What a span may hold follows the metrics' rule: span names and attributes hold only fixed
// words (an activity or workflow type, a store type, a connector, an entity kind, an outcome),
// counts, and the run's identifiers that the Temporal SDK adds (workflow, run and activity ids).
// Error messages are not recorded: they name secret references, hosts and schemas to help the
// user who started the run, and the workflow history already holds them for that user. A
// failed span's status says the failure's kind (SourceAuthFailed, timeout...) instead.

// redactedSpan is a span of the Temporal SDK's tracing interceptor with its error recorded by
// kind: the interceptor would record the error's message as the status and as an exception
// event.
type redactedSpan struct {
	trace.Span
	outcome string // the kind of the error RecordError saw last
}

// startRedactedSpan is the interceptor's SpanStarter.
func startRedactedSpan(ctx context.Context, t trace.Tracer, name string, opts ...trace.SpanStartOption) trace.Span {
	_, span := t.Start(ctx, name, opts...)
	return &redactedSpan{Span: span}
}

// RecordError records an exception event with the error's kind as exception.type, and no
// message.
func (s *redactedSpan) RecordError(err error, _ ...trace.EventOption) {
	if err == nil {
		return
	}
	s.outcome = errorOutcome(err)
	s.Span.AddEvent("exception", trace.WithAttributes(attribute.String("exception.type", s.outcome)))
}

// SetStatus sets the status with, for an error, the kind of the error recorded last as its
// description, whatever description was given.
func (s *redactedSpan) SetStatus(code codes.Code, _ string) {
	if code != codes.Error {
		s.Span.SetStatus(code, "")
		return
	}
	if s.outcome == "" {
		s.outcome = otherLabel
	}
	s.Span.SetStatus(codes.Error, s.outcome)
}

// errorOutcome names a workflow's or an activity's failure by a word of a fixed set, as the
// metrics do: canceled, timeout, terminated, an error kind (ApplicationError type), or other.
func errorOutcome(err error) string {
	var canceled *temporal.CanceledError
	var timeout *temporal.TimeoutError
	var terminated *temporal.TerminatedError
	switch {
	case errors.As(err, &canceled):
		return "canceled"
	case errors.As(err, &timeout):
		return "timeout"
	case errors.As(err, &terminated):
		return "terminated"
	}
	return activityOutcome(err)
}

// spanGuard is the log guard's counterpart for spans: a span that ends holding the value of a
// sensitive field of a lease held in this process (in its name, an attribute, an event, a link or
// its status) is not exported, and a log line names the field. Nothing the agent puts in a span
// is meant to hold a value; this catches what a bug would otherwise send to the collector.
type spanGuard struct {
	next   sdktrace.SpanProcessor
	logger *slog.Logger
}

func newSpanGuard(next sdktrace.SpanProcessor, logger *slog.Logger) *spanGuard {
	return &spanGuard{next: next, logger: logger}
}

func (g *spanGuard) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) { g.next.OnStart(ctx, s) }

func (g *spanGuard) OnEnd(s sdktrace.ReadOnlySpan) {
	text := spanText(s)
	field, found := findLeased(text)
	clear(text)
	if found {
		g.logger.Warn("a span was withheld from the trace exporter: it held the value of a sensitive field; please report this bug",
			"field", field, "traceId", s.SpanContext().TraceID().String(), "spanId", s.SpanContext().SpanID().String())
		return
	}
	g.next.OnEnd(s)
}

func (g *spanGuard) Shutdown(ctx context.Context) error   { return g.next.Shutdown(ctx) }
func (g *spanGuard) ForceFlush(ctx context.Context) error { return g.next.ForceFlush(ctx) }

// spanText is every string a span would export, but for its resource (the operator's settings).
func spanText(s sdktrace.ReadOnlySpan) []byte {
	text := []byte(s.Name())
	add := func(attrs []attribute.KeyValue) {
		for _, a := range attrs {
			text = fmt.Appendf(text, " %s=%s", a.Key, a.Value.String())
		}
	}
	add(s.Attributes())
	for _, e := range s.Events() {
		text = append(append(text, ' '), e.Name...)
		add(e.Attributes)
	}
	for _, l := range s.Links() {
		add(l.Attributes)
	}
	text = append(append(text, ' '), s.Status().Description...)
	return text
}

var _ sdktrace.SpanProcessor = (*spanGuard)(nil)
