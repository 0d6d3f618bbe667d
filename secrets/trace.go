package secrets

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Each store call (a Fetch, or a FetchBatch of several secrets) is one span, FetchSecrets:<store>,
// when the caller's context carries a recording span (the agent's activity span, with tracing on):
// its provider starts it, so without tracing nothing is allocated. Its attributes are the store
// type, the call (fetch or batch), how many secrets it asked for and how many failed, and the
// outcome (ok or the first failure's kind). Never a reference, a key, a version or a message:
// span attributes follow the metrics' rule (fixed words and counts only).

const tracerName = "github.com/secure-agent/secure-agent/secrets"

// Span attribute keys of store calls.
const (
	attrStore   = "secure_agent.store"
	attrCall    = "secure_agent.store_call"
	attrSecrets = "secure_agent.secrets"
	attrFailed  = "secure_agent.secrets_failed"
	attrOutcome = "secure_agent.outcome"
)

// startStoreSpan starts the span of one store call asking for n secrets, or returns nil when ctx
// carries no recording span.
func startStoreSpan(ctx context.Context, store, call string, n int) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	return parent.TracerProvider().Tracer(tracerName).Start(ctx, "FetchSecrets:"+store,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String(attrStore, store), attribute.String(attrCall, call), attribute.Int(attrSecrets, n)))
}

// endStoreSpan ends a store call's span (nil: nothing) with the kinds of its failures, in the
// order of the secrets asked for (empty: ok).
func endStoreSpan(span trace.Span, failures []Kind) {
	if span == nil {
		return
	}
	outcome := "ok"
	if len(failures) > 0 {
		outcome = string(failures[0])
		span.SetStatus(codes.Error, outcome)
	}
	span.SetAttributes(attribute.Int(attrFailed, len(failures)), attribute.String(attrOutcome, outcome))
	span.End()
}

// failureKind is the kind a store call's error is reported by: its own, or StoreUnavailable for
// an unclassified one (as fetchAll reports it).
func failureKind(err error) Kind {
	if k := KindOf(err); k != "" {
		return k
	}
	return StoreUnavailable
}

// batchFailures are the kinds of a store call's failures, in the order of refs: the call's error
// for every secret, or each secret's own (a secret the answer left out, or answered with neither
// a secret nor an error, is StoreUnavailable, as lead reports it).
func batchFailures(refs []Ref, byRef map[Ref]Result, err error) []Kind {
	var kinds []Kind
	for _, ref := range refs {
		res, found := byRef[ref]
		switch {
		case err != nil:
			kinds = append(kinds, failureKind(err))
		case !found:
			kinds = append(kinds, StoreUnavailable)
		case res.Err != nil:
			kinds = append(kinds, failureKind(res.Err))
		case res.Secret == nil:
			kinds = append(kinds, StoreUnavailable)
		}
	}
	return kinds
}
