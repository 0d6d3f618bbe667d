package lineage

import (
	"fmt"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
)

// shopRelations is the catalog of the unit tests, in schema: customers, orders and items tables,
// a view over orders (spend), regions, and a table in another schema (ref.regions).
func shopRelations(schema string) []Relation {
	return []Relation{
		{Schema: schema, Name: "customers", Columns: []string{"id", "name", "email", "region"}},
		{Schema: schema, Name: "orders", Columns: []string{"id", "customer_id", "total", "status", "created"}},
		{Schema: schema, Name: "items", Columns: []string{"order_id", "sku", "qty", "price"}},
		{Schema: schema, Name: "spend", Columns: []string{"customer_id", "amount"}},
		{Schema: schema, Name: "regions", Columns: []string{"region", "label"}},
		{Schema: "ref", Name: "regions", Columns: []string{"region", "label"}},
	}
}

// render writes a lineage as lines a test can compare with hand-written ones:
//
//	upstream: s.a s.b
//	col: direct s.t.c
//	col: expression s.t.c s.t.d
//
// or "problem: ..." alone.
func render(l connectors.Lineage) string {
	if l.Problem != "" {
		return "problem: " + l.Problem
	}
	var b strings.Builder
	b.WriteString("upstream:")
	for _, u := range l.Upstream {
		b.WriteString(" " + u.Schema + "." + u.Name)
	}
	for _, c := range l.Columns {
		fmt.Fprintf(&b, "\n%s: %s", c.Column, c.Transformation)
		for _, s := range c.Sources {
			b.WriteString(" " + s.Schema + "." + s.Table + "." + s.Column)
		}
	}
	return b.String()
}

// lines joins hand-written expected lines.
func lines(l ...string) string { return strings.Join(l, "\n") }

// checkLineage compares got with want (render's format); a want starting with "problem: " only
// needs to be a prefix of got's problem, and got must then hold no lineage.
func checkLineage(t *testing.T, got connectors.Lineage, want string) {
	t.Helper()
	if got.Method != Method {
		t.Errorf("Method = %q, want %q", got.Method, Method)
	}
	if strings.HasPrefix(want, "problem: ") {
		if got.Problem == "" || !strings.HasPrefix("problem: "+got.Problem, want) {
			t.Errorf("got\n%s\nwant %s...", render(got), want)
		}
		if len(got.Upstream) != 0 || len(got.Columns) != 0 {
			t.Errorf("a Problem came with lineage: %+v", got)
		}
		return
	}
	if r := render(got); r != want {
		t.Errorf("got\n%s\nwant\n%s", r, want)
	}
}
