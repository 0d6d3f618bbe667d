package lineage

import (
	"slices"

	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/secure-agent/secure-agent/connectors"
)

// References returns the relations a definition names, so that a connector can read their
// columns with one catalog query before it calls Analyze: every table name of its FROM clauses
// (subqueries and CTEs included), unqualified ones in schema, plus the view itself (schema.view),
// whose columns name the lineage's. It over-approximates (a CTE's name is listed as if it were a
// table; the catalog simply has no such relation) and lists each name once, as written. A
// definition that does not parse gives just the view: Analyze then reports the problem.
func References(dialect Dialect, schema, view, definition string) (refs []connectors.RelationRef) {
	refs = []connectors.RelationRef{{Schema: schema, Name: view}}
	defer func() {
		if recover() != nil {
			refs = []connectors.RelationRef{{Schema: schema, Name: view}}
		}
	}()
	if len(definition) > MaxDefinitionBytes {
		return refs
	}
	var q parsedView
	var err error
	switch dialect {
	case MySQL:
		q, err = parseMySQL(definition)
	case SQLite:
		q, err = parseSQLite(definition)
	default:
		return refs
	}
	if err != nil {
		return refs
	}
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		t, ok := node.(*sqlparser.AliasedTableExpr)
		if !ok {
			return true, nil
		}
		if tn, ok := t.Expr.(sqlparser.TableName); ok {
			ref := connectors.RelationRef{Schema: tn.Qualifier.String(), Name: tn.Name.String()}
			if ref.Schema == "" {
				ref.Schema = schema
			}
			if !slices.Contains(refs, ref) {
				refs = append(refs, ref)
			}
		}
		return true, nil
	}, q.stmt)
	return refs
}
