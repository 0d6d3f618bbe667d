package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
)

// firstNormalOID is PostgreSQL's FirstNormalObjectId: objects with a smaller OID were made by
// initdb (the built-in range types, information_schema's domains), not by users.
const firstNormalOID = "16384"

// userTypeFilter is the condition on pg_type t that makes it a Type entity: an enum, a domain, a
// range type or a standalone composite type (CREATE TYPE ... AS, not a table's row type),
// created after initdb. Arrays and multiranges are not Type entities.
const userTypeFilter = `t.oid >= ` + firstNormalOID + ` AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c'
	AND EXISTS (SELECT 1 FROM pg_catalog.pg_class AS tc WHERE tc.oid = t.typrelid AND tc.relkind = 'c')))`

// userType selects the schema and name of the type whose OID follows it, if that is a Type
// entity, for a column to point to. OFFSET 0 keeps it a subquery that the planner evaluates once
// per type (Memoize), not a join over every type of the database.
const userType = `SELECT tn.nspname::text AS nspname, t.typname::text AS typname
	FROM pg_catalog.pg_type AS t
	JOIN pg_catalog.pg_namespace AS tn ON tn.oid = t.typnamespace
	WHERE ` + userTypeFilter + ` AND t.oid = `

// typesQuery lists the user-defined types (userTypeFilter) with what each kind has: an enum's
// labels by enumsortorder; a domain's base type (format_type, with its modifier), NOT NULL,
// default and CHECK constraints by name (expression without CHECK, validated); a composite
// type's live attributes in order; a range type's subtype. Defaults and checks are deparsed now
// (under the transaction's pinned settings), not taken from typdefault's text of creation time.
const typesQuery = `SELECT n.nspname::text, t.typname::text, t.typtype::text,
	COALESCE((SELECT pg_catalog.array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
		FROM pg_catalog.pg_enum AS e WHERE e.enumtypid = t.oid), '{}'),
	CASE t.typtype WHEN 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod)
		WHEN 'r' THEN pg_catalog.format_type(r.rngsubtype, NULL) ELSE '' END,
	t.typnotnull, COALESCE(pg_catalog.pg_get_expr(t.typdefaultbin, 0), ''),
	COALESCE(ck.names, '{}'), COALESCE(ck.exprs, '{}'), COALESCE(ck.validated, '{}'),
	COALESCE(at.names, '{}'), COALESCE(at.types, '{}'),
	pg_catalog.pg_get_userbyid(t.typowner)::text, COALESCE(td.description, ''), COALESCE(x.extname::text, '')
FROM pg_catalog.pg_type AS t
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_range AS r ON r.rngtypid = t.oid
LEFT JOIN LATERAL (SELECT pg_catalog.array_agg(k.conname::text ORDER BY k.conname) AS names,
		pg_catalog.array_agg(COALESCE(pg_catalog.pg_get_expr(k.conbin, 0), '') ORDER BY k.conname) AS exprs,
		pg_catalog.array_agg(k.convalidated ORDER BY k.conname) AS validated
	FROM pg_catalog.pg_constraint AS k WHERE k.contypid = t.oid AND k.contype = 'c') AS ck ON t.typtype = 'd'
LEFT JOIN LATERAL (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) AS names,
		pg_catalog.array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) AS types
	FROM pg_catalog.pg_attribute AS a
	WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS at ON t.typtype = 'c'
LEFT JOIN pg_catalog.pg_description AS td ON td.objoid = t.oid
	AND td.classoid = 'pg_catalog.pg_type'::pg_catalog.regclass AND td.objsubid = 0
LEFT JOIN pg_catalog.pg_depend AS xd ON xd.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
	AND xd.objid = t.oid AND xd.objsubid = 0 AND xd.deptype = 'e'
LEFT JOIN pg_catalog.pg_extension AS x ON x.oid = xd.refobjid
WHERE n.nspname = ANY ($1::text[]) AND ` + userTypeFilter + `
ORDER BY array_position($1::text[], n.nspname::text), t.typname`

// errMisaligned reports arrays of a row that should pair up position by position and do not.
var errMisaligned = errors.New("postgres: a catalog row's arrays do not pair up")

func (s *Source) typeRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		t                       connectors.Type
		kind, owner             string
		checkNames, checkExprs  []string
		checksValid             []bool
		attrNames, attrDataType []string
	)
	if err := rows.Scan(&t.Schema, &t.Name, &kind, &t.Labels, &t.BaseType, &t.NotNull, &t.Default,
		&checkNames, &checkExprs, &checksValid, &attrNames, &attrDataType, &owner, &t.Comment, &t.Extension); err != nil {
		return nil, err
	}
	switch kind {
	case "e":
		t.Type = connectors.TypeEnum
	case "d":
		t.Type = connectors.TypeDomain
	case "c":
		t.Type = connectors.TypeComposite
	case "r":
		t.Type = connectors.TypeRange
	}
	if len(checkExprs) != len(checkNames) || len(checksValid) != len(checkNames) || len(attrDataType) != len(attrNames) {
		return nil, errMisaligned // cannot happen: each array comes from the same rows
	}
	for i, name := range checkNames {
		t.Checks = append(t.Checks, connectors.TypeCheck{Name: name, Expression: checkExprs[i], Validated: checksValid[i]})
	}
	for i, name := range attrNames {
		t.Attributes = append(t.Attributes, connectors.TypeAttribute{Name: name, DataType: attrDataType[i]})
	}
	t.Owner, t.OwnerIsLoginRole = s.names.owner(owner)
	return t, nil
}
