package lineage

import (
	"slices"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
)

// TestReferences lists every relation a definition names, in FROM clauses at any depth, once,
// with the view itself first; a definition that does not parse gives the view alone.
func TestReferences(t *testing.T) {
	rel := func(s, n string) connectors.RelationRef { return connectors.RelationRef{Schema: s, Name: n} }
	for _, c := range []struct {
		dialect    Dialect
		definition string
		want       []connectors.RelationRef
	}{
		{MySQL, "select `a`.`x` AS `x` from `shop`.`orders` `a` join `crm`.`customers` `c` on `a`.`cid` = `c`.`id`",
			[]connectors.RelationRef{rel("shop", "v"), rel("shop", "orders"), rel("crm", "customers")}},
		{MySQL, "with recent as (select id from items) select (select max(id) from recent) as m from items where id in (select item from refunds)",
			[]connectors.RelationRef{rel("shop", "v"), rel("shop", "items"), rel("shop", "recent"), rel("shop", "refunds")}},
		{SQLite, `CREATE VIEW v AS SELECT "t"."a" FROM "t" JOIN [u] USING (a) UNION SELECT a FROM (SELECT a FROM w)`,
			[]connectors.RelationRef{rel("main", "v"), rel("main", "t"), rel("main", "u"), rel("main", "w")}},
		{MySQL, "this is not sql", []connectors.RelationRef{rel("shop", "v")}},
	} {
		schema := "shop"
		if c.dialect == SQLite {
			schema = "main"
		}
		got := References(c.dialect, schema, "v", c.definition)
		slices.SortFunc(got[1:], compareRefs)
		want := slices.Clone(c.want)
		slices.SortFunc(want[1:], compareRefs)
		if !slices.Equal(got, want) {
			t.Errorf("%s %q:\n got %v\nwant %v", c.dialect, c.definition, got, want)
		}
	}
}

func compareRefs(a, b connectors.RelationRef) int {
	if a.Schema != b.Schema {
		if a.Schema < b.Schema {
			return -1
		}
		return 1
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}
