package sqlite

import (
	"reflect"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
)

// TestLineageThroughExtract extracts views (a join, a view on a view, names spelled in another
// case, a view over a dropped table, one the filters exclude) and checks the lineage entities:
// written last, one per included view, in the tables' order, with the lineage written by hand
// from the views' SQL below. The parser's coverage of SQL shapes is package lineage's test; this
// one proves the connector reads the definitions and the columns of every relation they name,
// survives a relation it cannot describe (a Problem, never a guess) and applies the filters.
func TestLineageThroughExtract(t *testing.T) {
	path := makeDB(t, canary,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, cust INTEGER, amount REAL)`,
		`CREATE TABLE "Customers" (id INTEGER PRIMARY KEY, name TEXT)`,
		`CREATE TABLE gone (z)`,
		`CREATE VIEW big AS SELECT o.id AS order_id, c.NAME, o.amount * 2 AS doubled FROM ORDERS o JOIN customers c ON c.id = o.cust`,
		`CREATE VIEW broken AS SELECT z FROM gone`,
		`CREATE VIEW excluded AS SELECT id FROM orders`,
		`CREATE VIEW top AS SELECT name, doubled FROM big WHERE doubled > 10`,
		`DROP TABLE gone`,
	)
	c := extractAll(t, open(t, path), connectors.Filters{ExcludeTables: []string{"main.excluded"}})
	var got []connectors.Lineage
	for i, e := range c.entities {
		if v, ok := e.(connectors.Lineage); ok {
			got = append(got, v)
		} else if len(got) > 0 {
			t.Fatalf("entity %d (%s) written after a lineage entity", i, e.Kind())
		}
	}
	col := func(table, column string) connectors.ColumnRef {
		return connectors.ColumnRef{Schema: "main", Table: table, Column: column}
	}
	want := []connectors.Lineage{
		{Schema: "main", View: "big", Method: "parser",
			Upstream: []connectors.RelationRef{{Schema: "main", Name: "Customers"}, {Schema: "main", Name: "orders"}},
			Columns: []connectors.ColumnLineage{
				{Column: "order_id", Sources: []connectors.ColumnRef{col("orders", "id")}, Transformation: connectors.LineageDirect},
				{Column: "name", Sources: []connectors.ColumnRef{col("Customers", "name")}, Transformation: connectors.LineageDirect},
				{Column: "doubled", Sources: []connectors.ColumnRef{col("orders", "amount")}, Transformation: connectors.LineageExpression},
			}},
		{Schema: "main", View: "broken"},
		{Schema: "main", View: "top", Method: "parser",
			Upstream: []connectors.RelationRef{{Schema: "main", Name: "big"}},
			Columns: []connectors.ColumnLineage{
				{Column: "name", Sources: []connectors.ColumnRef{col("big", "name")}, Transformation: connectors.LineageDirect},
				{Column: "doubled", Sources: []connectors.ColumnRef{col("big", "doubled")}, Transformation: connectors.LineageDirect},
			}},
	}
	if len(got) != len(want) {
		t.Fatalf("lineage entities: %+v, want %d", got, len(want))
	}
	for i := range want {
		if want[i].View == "broken" {
			if got[i].View != "broken" || got[i].Problem == "" || len(got[i].Upstream) != 0 || len(got[i].Columns) != 0 {
				t.Errorf("broken: %+v, want a problem and nothing else", got[i])
			}
			continue
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("lineage %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
