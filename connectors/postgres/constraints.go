package postgres

import (
	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
)

// constraintsQuery lists the CHECK (c) and exclusion (x) constraints of relations (a domain's
// checks have no relation: they are in its Type), with the columns each refers to in table
// order (conkey sorted; an exclusion constraint's expressions have none), a check's expression
// (pg_get_expr of conbin, without the CHECK wrapper), the whole clause (pg_get_constraintdef,
// with NOT VALID or NO INHERIT where they apply) and convalidated. Inherited checks are listed
// on each table that has them, as PostgreSQL keeps them.
const constraintsQuery = `SELECT n.nspname::text, c.relname::text, k.conname::text, k.contype::text,
	COALESCE((SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_catalog.pg_attribute AS a
		WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) AND a.attnum > 0), '{}'),
	CASE WHEN k.contype = 'c' THEN COALESCE(pg_catalog.pg_get_expr(k.conbin, k.conrelid), '') ELSE '' END,
	pg_catalog.pg_get_constraintdef(k.oid), k.convalidated
FROM pg_catalog.pg_constraint AS k
JOIN pg_catalog.pg_class AS c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1::text[]) AND k.contype IN ('c', 'x')
ORDER BY array_position($1::text[], n.nspname::text), c.relname, k.conname`

func constraintRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		k    connectors.Constraint
		kind string
	)
	if err := rows.Scan(&k.Schema, &k.Table, &k.Name, &kind, &k.Columns, &k.Expression, &k.Definition, &k.Validated); err != nil {
		return nil, err
	}
	k.Type = connectors.ConstraintCheck
	if kind == "x" {
		k.Type = connectors.ConstraintExclusion
	}
	if k.Columns == nil {
		k.Columns = []string{}
	}
	return k, nil
}
