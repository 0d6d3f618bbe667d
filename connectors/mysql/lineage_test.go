package mysql

import (
	"reflect"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
)

// TestLineageThroughExtract extracts views over tables of their own and of another database, a
// view on a view and a view the login user may read but whose table it may not, as a read-only
// user, and checks the lineage entities: written last, one per view the filters include, in the
// views' order, with the lineage written by hand from the views' SQL below. The parser's own
// coverage of SQL shapes is package lineage's test; this one proves the connector reads the
// definitions and the columns of every relation they name (across databases) and never guesses.
func TestLineageThroughExtract(t *testing.T) {
	t.Parallel()
	f := newFixture(t, []string{"_l", "_m", "_hidden"})
	l, m, hidden := f.db("_l"), f.db("_m"), f.db("_hidden")
	q := quoteIdent
	for _, stmt := range []string{
		"CREATE TABLE " + q(l) + ".orders (id INT PRIMARY KEY, cust INT, amount DECIMAL(10,2), note TEXT)",
		"CREATE TABLE " + q(m) + ".customers (id INT PRIMARY KEY, name VARCHAR(50))",
		"CREATE TABLE " + q(hidden) + ".secret (id INT, v INT)",
		"CREATE VIEW " + q(l) + ".big AS SELECT o.id AS order_id, c.name, o.amount * 2 AS doubled FROM " + q(l) + ".orders o JOIN " + q(m) + ".customers c ON c.id = o.cust",
		"CREATE VIEW " + q(l) + ".top AS SELECT name, doubled FROM " + q(l) + ".big WHERE doubled > 10",
		"CREATE VIEW " + q(l) + ".peek AS SELECT v FROM " + q(hidden) + ".secret",
	} {
		exec(t, stmt)
	}
	exec(t, "GRANT SELECT, SHOW VIEW ON "+grantPattern(l)+".* TO "+f.account())
	exec(t, "GRANT SELECT ON "+grantPattern(m)+".* TO "+f.account())

	rec := extractAll(t, f.open(t), f, connectors.Filters{IncludeSchemas: []string{l}})
	var got []connectors.Lineage
	for i, e := range rec.entities {
		if v, ok := e.(connectors.Lineage); ok {
			got = append(got, v)
		} else if len(got) > 0 {
			t.Fatalf("entity %d (%s) written after a lineage entity", i, e.Kind())
		}
	}
	col := func(schema, table, column string) connectors.ColumnRef {
		return connectors.ColumnRef{Schema: schema, Table: table, Column: column}
	}
	want := []connectors.Lineage{
		{Schema: l, View: "big", Method: "parser",
			Upstream: []connectors.RelationRef{{Schema: l, Name: "orders"}, {Schema: m, Name: "customers"}},
			Columns: []connectors.ColumnLineage{
				{Column: "order_id", Sources: []connectors.ColumnRef{col(l, "orders", "id")}, Transformation: connectors.LineageDirect},
				{Column: "name", Sources: []connectors.ColumnRef{col(m, "customers", "name")}, Transformation: connectors.LineageDirect},
				{Column: "doubled", Sources: []connectors.ColumnRef{col(l, "orders", "amount")}, Transformation: connectors.LineageExpression},
			}},
		{Schema: l, View: "peek", Method: "parser", Upstream: []connectors.RelationRef{}, Columns: []connectors.ColumnLineage{}},
		{Schema: l, View: "top", Method: "parser",
			Upstream: []connectors.RelationRef{{Schema: l, Name: "big"}},
			Columns: []connectors.ColumnLineage{
				{Column: "name", Sources: []connectors.ColumnRef{col(l, "big", "name")}, Transformation: connectors.LineageDirect},
				{Column: "doubled", Sources: []connectors.ColumnRef{col(l, "big", "doubled")}, Transformation: connectors.LineageDirect},
			}},
	}
	if len(got) != len(want) {
		t.Fatalf("lineage entities: %+v, want %d", got, len(want))
	}
	for i := range want {
		if want[i].View == "peek" {
			// The user may not see the hidden table's columns: a problem, nothing guessed.
			if got[i].View != "peek" || got[i].Problem == "" || len(got[i].Upstream) != 0 || len(got[i].Columns) != 0 {
				t.Errorf("peek: %+v, want a problem and nothing else", got[i])
			}
			continue
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("lineage %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
