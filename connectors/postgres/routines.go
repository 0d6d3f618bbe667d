package postgres

import (
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
)

// routinesQuery is routinesSQL for the server's version: from PostgreSQL 14, a body written in
// SQL-standard form (BEGIN ATOMIC, RETURN) has no prosrc and is deparsed instead
// (pg_get_function_sqlbody, which older servers lack).
func (s *Source) routinesQuery() string {
	body := "p.prosrc"
	if s.versionNum >= 140000 {
		body = "COALESCE(pg_catalog.pg_get_function_sqlbody(p.oid), p.prosrc)"
	}
	return strings.Replace(routinesSQL, "{body}", body, 1)
}

// routinesSQL lists functions (f), window functions (w), procedures (p) and aggregates (a), with
// the full argument list (names, modes, defaults) as the signature, the body ({body}: prosrc, the
// source of an SQL or PL routine, the link symbol of a C one; none for an aggregate), volatility,
// SECURITY DEFINER, owner and extension. Overloads come in the byte order of their identity
// arguments.
const routinesSQL = `SELECT n.nspname::text, p.proname::text, p.prokind::text,
	COALESCE(pg_catalog.pg_get_function_arguments(p.oid), ''),
	CASE WHEN p.prokind = 'p' THEN '' ELSE COALESCE(pg_catalog.pg_get_function_result(p.oid), '') END,
	COALESCE(l.lanname::text, ''), COALESCE(pg_catalog.obj_description(p.oid, 'pg_proc'), ''),
	CASE WHEN p.prokind = 'a' THEN '' ELSE COALESCE({body}, '') END,
	p.provolatile::text, p.prosecdef, pg_catalog.pg_get_userbyid(p.proowner)::text, COALESCE(x.extname::text, '')
FROM pg_catalog.pg_proc AS p
JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
LEFT JOIN pg_catalog.pg_language AS l ON l.oid = p.prolang
LEFT JOIN pg_catalog.pg_depend AS xd ON xd.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
	AND xd.objid = p.oid AND xd.objsubid = 0 AND xd.deptype = 'e'
LEFT JOIN pg_catalog.pg_extension AS x ON x.oid = xd.refobjid
WHERE n.nspname = ANY ($1::text[]) AND p.prokind IN ('f', 'w', 'p', 'a')
ORDER BY array_position($1::text[], n.nspname::text), p.proname,
	pg_catalog.pg_get_function_identity_arguments(p.oid) COLLATE "C", p.oid`

func (s *Source) routineRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		r                connectors.Routine
		kind, volatility string
		owner            string
	)
	if err := rows.Scan(&r.Schema, &r.Name, &kind, &r.Signature, &r.ReturnType, &r.Language, &r.Comment,
		&r.Definition, &volatility, &r.SecurityDefiner, &owner, &r.Extension); err != nil {
		return nil, err
	}
	switch kind {
	case "p":
		r.Type = connectors.RoutineProcedure
	case "a":
		r.Type = connectors.RoutineAggregate
	default:
		r.Type = connectors.RoutineFunction
	}
	switch volatility {
	case "i":
		r.Volatility = "immutable"
	case "s":
		r.Volatility = "stable"
	case "v":
		r.Volatility = "volatile"
	}
	r.Owner, r.OwnerIsLoginRole = s.names.owner(owner)
	return r, nil
}
