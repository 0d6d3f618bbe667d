package postgres

import (
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
)

// constraintsQuery lists the CHECK (c) and exclusion (x) constraints of relations (a domain's
// checks have no relation: they are in its Type), with the columns each refers to in table
// order (conkey sorted; an exclusion constraint's expressions have none), the whole clause
// (pg_get_constraintdef, with NOT VALID or NO INHERIT where they apply) and convalidated. A
// check's expression is taken from the clause (see checkExpression), not deparsed a second time
// with pg_get_expr: deparsing is most of the query's cost. Inherited checks are listed on each
// table that has them, as PostgreSQL keeps them.
const constraintsQuery = `SELECT n.nspname::text, c.relname::text, k.conname::text, k.contype::text,
	COALESCE((SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_catalog.pg_attribute AS a
		WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) AND a.attnum > 0), '{}'),
	pg_catalog.pg_get_constraintdef(k.oid), k.convalidated
FROM pg_catalog.pg_constraint AS k
JOIN pg_catalog.pg_class AS c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.oid = ANY ($2::pg_catalog.oid[]) AND n.nspname = ANY ($1::text[]) AND k.contype IN ('c', 'x')
ORDER BY array_position($1::text[], n.nspname::text), c.relname, k.conname`

func constraintRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		k    connectors.Constraint
		kind string
	)
	if err := rows.Scan(&k.Schema, &k.Table, &k.Name, &kind, &k.Columns, &k.Definition, &k.Validated); err != nil {
		return nil, err
	}
	k.Type = connectors.ConstraintCheck
	if kind == "x" {
		k.Type = connectors.ConstraintExclusion
	} else {
		k.Expression = checkExpression(k.Definition)
	}
	if k.Columns == nil {
		k.Columns = []string{}
	}
	return k, nil
}

// checkClauseFlags are what pg_get_constraintdef appends after a CHECK clause's closing
// parenthesis (NO INHERIT; NOT ENFORCED from PostgreSQL 18; NOT VALID).
var checkClauseFlags = []string{" NOT VALID", " NOT ENFORCED", " NO INHERIT"}

// checkExpression returns the expression of a CHECK constraint from its clause as
// pg_get_constraintdef prints it: "CHECK (" + the expression as pg_get_expr prints it + ")",
// then the flags (both functions deparse conbin the same way, with the relation's context and
// the same pretty-printing flags). The flags come after the last parenthesis and the expression
// cannot end inside one, so stripping them from the end is exact. A clause of another shape
// gives "" (no expression rather than a wrong one).
func checkExpression(def string) string {
	d := def
	for !strings.HasSuffix(d, ")") {
		i := slices.IndexFunc(checkClauseFlags, func(f string) bool { return strings.HasSuffix(d, f) })
		if i < 0 {
			return ""
		}
		d = strings.TrimSuffix(d, checkClauseFlags[i])
	}
	const open = "CHECK ("
	if !strings.HasPrefix(d, open) || len(d) < len(open)+1 {
		return ""
	}
	return d[len(open) : len(d)-1]
}
