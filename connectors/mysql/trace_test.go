package mysql

import (
	"context"
	"fmt"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/secure-agent/secure-agent/connectors"
)

// TestCatalogQuerySpans: under a recording span, each catalog query step of an extraction is one
// child span, CatalogQuery:<kind>, saying the connector, the kind, the outcome and how many
// entities the step wrote (what the writer received of that kind); Preflight's dry run of the
// queries writes none. No span holds a database, table, user or password.
func TestCatalogQuerySpans(t *testing.T) {
	f := newFixture(t, []string{"_t"})
	db := quoteIdent(f.db("_t"))
	exec(t, "CREATE TABLE "+db+".tracedtbl (id INT PRIMARY KEY, name VARCHAR(20) UNIQUE, parent INT, FOREIGN KEY (parent) REFERENCES "+db+".tracedtbl(id))",
		"CREATE VIEW "+db+".tracedview AS SELECT id FROM "+db+".tracedtbl")
	f.grantRead(t, "_t")
	src := f.open(t)

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "RunActivity:ExtractSchemas")
	var rec recorder
	if err := src.Extract(ctx, []string{f.db("_t")}, connectors.Filters{}, &rec); err != nil {
		t.Fatal(err)
	}
	parent.End()
	written := map[string]int64{}
	for _, e := range rec.entities {
		written[e.Kind()]++
	}
	if written[connectors.KindTables] != 2 || written[connectors.KindColumns] != 4 {
		t.Fatalf("the extraction wrote %v", written)
	}
	kinds := []string{"tables", "columns", "keys", "constraints", "indexes", "sequences", "triggers", "routines", "lineage"}
	spans := exp.GetSpans().Snapshots()
	checkSpans := func(spans []sdktrace.ReadOnlySpan, want func(kind string) int64) {
		t.Helper()
		got := map[string]int{}
		for _, s := range spans {
			kind, ok := strings.CutPrefix(s.Name(), "CatalogQuery:")
			if !ok {
				continue
			}
			got[kind]++
			attrs := map[string]string{}
			for _, a := range s.Attributes() {
				attrs[string(a.Key)] = a.Value.String()
			}
			if s.Parent().SpanID() != parent.SpanContext().SpanID() || attrs["secure_agent.connector"] != "mysql" ||
				attrs["secure_agent.entity_kind"] != kind || attrs["secure_agent.outcome"] != "ok" ||
				attrs["secure_agent.entities"] != fmt.Sprint(want(kind)) {
				t.Errorf("%s: attributes %v, want %d entities", s.Name(), attrs, want(kind))
			}
			text := fmt.Sprintf("%s %v %v %v", s.Name(), s.Attributes(), s.Events(), s.Status())
			for _, secret := range []string{f.prefix, "tracedtbl", "tracedview", f.user, f.password} {
				if strings.Contains(text, secret) {
					t.Errorf("%s holds %q: %s", s.Name(), secret, text)
				}
			}
		}
		for _, kind := range kinds {
			if got[kind] != 1 {
				t.Errorf("%d CatalogQuery:%s spans, want 1", got[kind], kind)
			}
		}
	}
	checkSpans(spans, func(kind string) int64 { return written[kind] })

	exp.Reset()
	ctx, parent = tp.Tracer("test").Start(context.Background(), "RunActivity:Preflight")
	if _, err := src.Preflight(ctx); err != nil {
		t.Fatal(err)
	}
	parent.End()
	checkSpans(exp.GetSpans().Snapshots(), func(string) int64 { return 0 })
}
