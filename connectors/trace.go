package connectors

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/secure-agent/secure-agent/secrets"
)

// Each catalog query step of an extraction (one entity kind's queries for a batch of schemas) is
// one span, CatalogQuery:<kind>, when the caller's context carries a recording span (the agent's
// activity span, with tracing on): its provider starts it, so without tracing nothing is
// allocated. Its attributes are the connector, the entity kind, how many entities the step wrote,
// and the outcome (ok, canceled, timeout, a failure kind, or error). Never a schema, a name, a
// query's text or arguments, or an error message: span attributes follow the metrics' rule.

const tracerName = "github.com/secure-agent/secure-agent/connectors"

// Span attribute keys of catalog query steps.
const (
	attrConnector = "secure_agent.connector"
	attrKind      = "secure_agent.entity_kind"
	attrEntities  = "secure_agent.entities"
	attrOutcome   = "secure_agent.outcome"
)

// Steps traces the steps of one extraction.
type Steps struct {
	tracer    trace.Tracer // nil when tracing is off
	connector string
	counter   *entityCounter
}

// TraceSteps prepares the tracing of one extraction's steps: it returns the writer the steps
// write through (w itself when ctx carries no recording span, else w with a count of the
// entities written) and the Steps that run them.
func TraceSteps(ctx context.Context, connector string, w EntityWriter) (EntityWriter, *Steps) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return w, &Steps{}
	}
	c := &entityCounter{w: w}
	return c, &Steps{tracer: parent.TracerProvider().Tracer(tracerName), connector: connector, counter: c}
}

// Run runs one step, writing entities of the given kind, in its own span; it returns the step's
// error unchanged.
func (s *Steps) Run(ctx context.Context, kind string, step func(context.Context) error) error {
	if s.tracer == nil {
		return step(ctx)
	}
	ctx, span := s.tracer.Start(ctx, "CatalogQuery:"+kind, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String(attrConnector, s.connector), attribute.String(attrKind, kind)))
	before := s.counter.n
	err := step(ctx)
	outcome := stepOutcome(err)
	if err != nil {
		span.SetStatus(codes.Error, outcome)
	}
	span.SetAttributes(attribute.Int64(attrEntities, s.counter.n-before), attribute.String(attrOutcome, outcome))
	span.End()
	return err
}

// stepOutcome names a step's failure by a fixed word: canceled, timeout, the error's kind when it
// has one, or error.
func stepOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	if k := secrets.KindOf(err); k != "" {
		return string(k)
	}
	return "error"
}

// entityCounter counts the entities written through it. Steps run one after the other.
type entityCounter struct {
	w EntityWriter
	n int64
}

func (c *entityCounter) Write(e Entity) error {
	if err := c.w.Write(e); err != nil {
		return err
	}
	c.n++
	return nil
}
