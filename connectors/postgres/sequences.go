package postgres

import (
	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
)

// sequencesQuery lists sequences with their parameters as pg_sequence records them (the
// sequence itself is never read: that would need a privilege on it, and take its lock), and the
// column that owns the sequence: pg_depend deptype 'a' for a serial column or OWNED BY, 'i' for
// an identity column.
const sequencesQuery = `SELECT n.nspname::text, c.relname::text, pg_catalog.format_type(s.seqtypid, NULL),
	s.seqstart::text, s.seqincrement::text, s.seqmin::text, s.seqmax::text, s.seqcache::text, s.seqcycle,
	COALESCE(on_.nspname::text, ''), COALESCE(oc.relname::text, ''), COALESCE(oa.attname::text, ''),
	COALESCE(od.deptype = 'i', false),
	pg_catalog.pg_get_userbyid(c.relowner)::text, COALESCE(sd.description, ''), COALESCE(x.extname::text, '')
FROM pg_catalog.pg_sequence AS s
JOIN pg_catalog.pg_class AS c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_depend AS od ON od.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
	AND od.objid = c.oid AND od.objsubid = 0 AND od.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
	AND od.refobjsubid > 0 AND od.deptype IN ('a', 'i')
LEFT JOIN pg_catalog.pg_class AS oc ON oc.oid = od.refobjid
LEFT JOIN pg_catalog.pg_namespace AS on_ ON on_.oid = oc.relnamespace
LEFT JOIN pg_catalog.pg_attribute AS oa ON oa.attrelid = od.refobjid AND oa.attnum = od.refobjsubid
LEFT JOIN pg_catalog.pg_description AS sd ON sd.objoid = c.oid
	AND sd.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND sd.objsubid = 0
LEFT JOIN pg_catalog.pg_depend AS xd ON xd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
	AND xd.objid = c.oid AND xd.objsubid = 0 AND xd.deptype = 'e'
LEFT JOIN pg_catalog.pg_extension AS x ON x.oid = xd.refobjid
WHERE c.oid = ANY ($2::pg_catalog.oid[]) AND n.nspname = ANY ($1::text[]) AND c.relkind = 'S'
ORDER BY array_position($1::text[], n.nspname::text), c.relname`

func (s *Source) sequenceRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		q     connectors.Sequence
		owner string
	)
	if err := rows.Scan(&q.Schema, &q.Name, &q.DataType, &q.Start, &q.Increment, &q.Min, &q.Max, &q.Cache, &q.Cycle,
		&q.OwnedBySchema, &q.OwnedByTable, &q.OwnedByColumn, &q.Identity, &owner, &q.Comment, &q.Extension); err != nil {
		return nil, err
	}
	q.Owner, q.OwnerIsLoginRole = s.names.owner(owner)
	return q, nil
}
