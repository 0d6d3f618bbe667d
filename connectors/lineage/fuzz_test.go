package lineage

import (
	"slices"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
)

// recordingCatalog is a Catalog that remembers what it answered.
type recordingCatalog struct {
	Catalog
	answered []Relation
}

func (c *recordingCatalog) Lookup(schema, name string) (Relation, bool) {
	r, ok := c.Catalog.Lookup(schema, name)
	if ok {
		c.answered = append(c.answered, r)
	}
	return r, ok
}

// FuzzAnalyze feeds any text to both dialects. The analysis (without Analyze's recover, so that a
// panic fails the target) must not panic, and whatever it returns must name only relations and
// columns the catalog answered for, never the view itself; a Problem comes without lineage.
func FuzzAnalyze(f *testing.F) {
	seeds := []string{
		"select `shop`.`customers`.`id` AS `id` from `shop`.`customers`",
		"with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select n from r",
		"select * from customers join regions using (region) union select * from customers natural join regions",
		"select a from t1 intersect select b from t2 except select c from t3",
		"select (select max(total) from orders o where o.customer_id = c.id) m, row_number() over w from customers c window w as (order by id)",
		"CREATE VIEW \"v\"([a], `b`, 'c') AS SELECT \"id\", [name], `email` FROM customers -- x\n",
		"CREATE VIEW v AS SELECT CAST(total AS INT) || 'x', 1_000, x'00' FROM (SELECT * FROM orders) WHERE id == 1 OR name GLOB 'a'",
		"CREATE VIEW v AS WITH c AS NOT MATERIALIZED (SELECT 1) SELECT * FROM c",
		"select ((((((1))))))", "'", "`", "[", "/*", "--", "select 'a\\' , b from c",
	}
	for _, s := range seeds {
		f.Add(uint8(MySQL), s)
		f.Add(uint8(SQLite), s)
	}
	f.Fuzz(func(t *testing.T, d uint8, definition string) {
		dialect := Dialect(d%2 + 1)
		schema := "main"
		if dialect == MySQL {
			schema = "shop"
		}
		base := NewCatalog(dialect, append(shopRelations(schema), Relation{Schema: schema, Name: "v", Columns: []string{"a", "b"}}))
		cat := &recordingCatalog{Catalog: base}
		upstream, cols, err := analyze(dialect, schema, "v", definition, cat)
		if err != nil {
			if _, ok := err.(*problem); !ok {
				t.Fatalf("analyze returned an error that is not a Problem: %v", err)
			}
			return
		}
		checkNamesAnswered(t, cat.answered, upstream, cols, schema)
		l := Analyze(dialect, schema, "v", definition, base)
		if l.Problem != "" && (len(l.Upstream) != 0 || len(l.Columns) != 0) {
			t.Fatalf("a Problem came with lineage: %+v", l)
		}
	})
}

// checkNamesAnswered fails unless every upstream relation and source column is one the catalog
// answered for, and the view itself is none of them.
func checkNamesAnswered(t *testing.T, answered []Relation, upstream []connectors.RelationRef, cols []connectors.ColumnLineage, schema string) {
	t.Helper()
	find := func(s, n string) (Relation, bool) {
		i := slices.IndexFunc(answered, func(r Relation) bool { return r.Schema == s && r.Name == n })
		if i < 0 {
			return Relation{}, false
		}
		return answered[i], true
	}
	for _, u := range upstream {
		if u.Schema == schema && strings.EqualFold(u.Name, "v") {
			t.Fatalf("the view is its own upstream")
		}
		if _, ok := find(u.Schema, u.Name); !ok {
			t.Fatalf("upstream %s.%s was not answered by the catalog", u.Schema, u.Name)
		}
	}
	for _, c := range cols {
		for _, s := range c.Sources {
			r, ok := find(s.Schema, s.Table)
			if !ok || !slices.Contains(r.Columns, s.Column) {
				t.Fatalf("column %s has source %s.%s.%s, which the catalog did not answer for", c.Column, s.Schema, s.Table, s.Column)
			}
			if !slices.ContainsFunc(upstream, func(u connectors.RelationRef) bool { return u.Schema == s.Schema && u.Name == s.Table }) {
				t.Fatalf("source %s.%s.%s is of no upstream relation", s.Schema, s.Table, s.Column)
			}
		}
		if c.Transformation != connectors.LineageDirect && c.Transformation != connectors.LineageExpression {
			t.Fatalf("column %s has transformation %q", c.Column, c.Transformation)
		}
	}
}
