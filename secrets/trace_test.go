package secrets_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/secure-agent/secure-agent/secrets"
)

// TestStoreCallSpans: under a recording span, each store call is one child span saying the store
// type, the call, how many secrets it asked for and how many failed, and the outcome; never a
// secret's path, key, version or value.
func TestStoreCallSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "RunActivity:ResolveSecrets")

	mem := newMem(map[string]string{"path-canary-one": `{"u":"value-canary-1"}`, "path-canary-two": `{"p":"value-canary-2"}`})
	r := secrets.NewResolver(secrets.ResolverOptions{})
	batch := secrets.Request{
		Secret: &secrets.Ref{Path: "path-canary-one"},
		Fields: []secrets.Field{
			{Name: "user", Value: "u"},
			{Name: "password", Value: "p", Secret: &secrets.Ref{Path: "path-canary-two"}, Sensitive: true},
		},
	}
	if _, err := r.Resolve(ctx, src(batchMem{mem}), batch); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(ctx, src(mem), secrets.Request{Secret: &secrets.Ref{Path: "path-canary-missing"},
		Fields: []secrets.Field{{Name: "user", Value: "u"}}}); err == nil {
		t.Fatal("a missing secret resolved")
	}
	parent.End()

	var calls []sdktrace.ReadOnlySpan
	for _, s := range exp.GetSpans().Snapshots() {
		if s.Name() == "FetchSecrets:mem" {
			calls = append(calls, s)
			if s.Parent().SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("a store call span is not under the caller's span")
			}
		}
		if text := fmt.Sprintf("%s %v %v %v", s.Name(), s.Attributes(), s.Events(), s.Status()); strings.Contains(text, "canary") {
			t.Errorf("a span holds a path or a value: %s", text)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("%d store call spans, want 2 (a batch, a fetch)", len(calls))
	}
	want := [][]attribute.KeyValue{
		{attribute.String("secure_agent.store", "mem"), attribute.String("secure_agent.store_call", "batch"), attribute.Int("secure_agent.secrets", 2),
			attribute.Int("secure_agent.secrets_failed", 0), attribute.String("secure_agent.outcome", "ok")},
		{attribute.String("secure_agent.store", "mem"), attribute.String("secure_agent.store_call", "fetch"), attribute.Int("secure_agent.secrets", 1),
			attribute.Int("secure_agent.secrets_failed", 1), attribute.String("secure_agent.outcome", "SecretNotFound")},
	}
	for i, s := range calls {
		if fmt.Sprint(s.Attributes()) != fmt.Sprint(want[i]) {
			t.Errorf("store call %d attributes %v, want %v", i, s.Attributes(), want[i])
		}
	}
	if calls[0].Status().Code != codes.Unset || calls[1].Status() != (sdktrace.Status{Code: codes.Error, Description: "SecretNotFound"}) {
		t.Errorf("statuses %v and %v", calls[0].Status(), calls[1].Status())
	}

	// Without a span in the context (tracing off), the resolver starts none and works as before.
	exp.Reset()
	if _, err := r.Resolve(context.Background(), src(mem), batch); err != nil {
		t.Fatal(err)
	}
}
