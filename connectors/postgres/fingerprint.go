package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

var _ connectors.Fingerprinter = (*Source)(nil)

// fingerprintQuery digests, per schema in $1, the catalog rows every entity of the schema is
// built from, one md5 per row, sorted, then md5 over the lot:
//
//   - the schema (comment, extension membership through its dependencies);
//   - its relations: name, kind, owner, row and page estimates (the size estimate's TOAST pages
//     too), partitioning, comment; every index is a relation of its table's schema, so index
//     pages and names are in;
//   - their columns (whole pg_attribute rows: type, typmod, nullability, identity, generated,
//     collation), defaults and comments;
//   - constraints (tables' and domains'), indexes, triggers (not internal ones), sequences,
//     types (with enum labels and ranges), routines (whole pg_proc rows, bodies included,
//     aggregates' pg_aggregate rows), view rules (the stored query tree);
//   - every dependency of those objects, with the referenced object's current name: a view's
//     columns, a foreign key's referenced columns, a column's type, a trigger's function, a
//     domain's base type, an extension. An entity that names an object of another schema
//     changes when that object is renamed, and this is how the schema's digest sees it.
//
// Owners are digested as role OIDs; Fingerprints adds each owner's name as the entity would
// carry it (fieldNames.owner). Per-row values that change without DDL (pg_class's vacuum
// bookkeeping) are left out unless an entity carries them (reltuples, relpages). A false change
// costs an extraction; a missed one would reuse stale output: when in doubt, a column is in.
const fingerprintQuery = `WITH ns AS (
	SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace AS n WHERE n.nspname = ANY ($1::text[])
), objs(classid, objid, nsp) AS (
	SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, c.relnamespace FROM pg_catalog.pg_class AS c WHERE c.relnamespace IN (SELECT oid FROM ns)
	UNION ALL SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, ns.oid, ns.oid FROM ns
	UNION ALL SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, r.oid, c.relnamespace FROM pg_catalog.pg_rewrite AS r JOIN pg_catalog.pg_class AS c ON c.oid = r.ev_class WHERE c.relnamespace IN (SELECT oid FROM ns)
	UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, co.oid, co.connamespace FROM pg_catalog.pg_constraint AS co WHERE co.connamespace IN (SELECT oid FROM ns)
	UNION ALL SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, tg.oid, c.relnamespace FROM pg_catalog.pg_trigger AS tg JOIN pg_catalog.pg_class AS c ON c.oid = tg.tgrelid WHERE c.relnamespace IN (SELECT oid FROM ns) AND NOT tg.tgisinternal
	UNION ALL SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, ad.oid, c.relnamespace FROM pg_catalog.pg_attrdef AS ad JOIN pg_catalog.pg_class AS c ON c.oid = ad.adrelid WHERE c.relnamespace IN (SELECT oid FROM ns)
	UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, ty.oid, ty.typnamespace FROM pg_catalog.pg_type AS ty WHERE ty.typnamespace IN (SELECT oid FROM ns)
	UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, p.pronamespace FROM pg_catalog.pg_proc AS p WHERE p.pronamespace IN (SELECT oid FROM ns)
), rows(nsp, k, v) AS (
	SELECT ns.oid, 'n', ROW(ns.nspname, n.nspowner, pg_catalog.obj_description(ns.oid, 'pg_namespace'))::text
	FROM ns JOIN pg_catalog.pg_namespace AS n ON n.oid = ns.oid
	UNION ALL
	SELECT c.relnamespace, 'c', ROW(c.relname, c.relkind, c.relpersistence, c.relowner, c.reltuples, c.relpages, t.relpages,
		c.relispartition, c.relpartbound, c.reloftype, c.relam, c.relnatts, pg_catalog.obj_description(c.oid, 'pg_class'),
		pt.partstrat, pt.partattrs, pt.partclass, pt.partcollation, pt.partexprs, i.inhparent)::text
	FROM pg_catalog.pg_class AS c
	LEFT JOIN pg_catalog.pg_class AS t ON t.oid = c.reltoastrelid
	LEFT JOIN pg_catalog.pg_partitioned_table AS pt ON pt.partrelid = c.oid
	LEFT JOIN pg_catalog.pg_inherits AS i ON i.inhrelid = c.oid AND c.relispartition
	WHERE c.relnamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT c.relnamespace, 'a', ROW(c.relname, a.*, ad.adbin, pg_catalog.col_description(c.oid, a.attnum))::text
	FROM pg_catalog.pg_attribute AS a
	JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
	LEFT JOIN pg_catalog.pg_attrdef AS ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	WHERE c.relnamespace IN (SELECT oid FROM ns) AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT co.connamespace, 'o', ROW(co.*, pg_catalog.obj_description(co.oid, 'pg_constraint'))::text
	FROM pg_catalog.pg_constraint AS co WHERE co.connamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT c.relnamespace, 'i', ROW(x.*)::text
	FROM pg_catalog.pg_index AS x JOIN pg_catalog.pg_class AS c ON c.oid = x.indrelid
	WHERE c.relnamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT c.relnamespace, 't', ROW(c.relname, tg.*, pg_catalog.obj_description(tg.oid, 'pg_trigger'))::text
	FROM pg_catalog.pg_trigger AS tg JOIN pg_catalog.pg_class AS c ON c.oid = tg.tgrelid
	WHERE c.relnamespace IN (SELECT oid FROM ns) AND NOT tg.tgisinternal
	UNION ALL
	SELECT c.relnamespace, 's', ROW(c.relname, sq.*)::text
	FROM pg_catalog.pg_sequence AS sq JOIN pg_catalog.pg_class AS c ON c.oid = sq.seqrelid
	WHERE c.relnamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT c.relnamespace, 'r', ROW(c.relname, r.rulename, r.ev_type, r.ev_enabled, r.is_instead, r.ev_qual, r.ev_action)::text
	FROM pg_catalog.pg_rewrite AS r JOIN pg_catalog.pg_class AS c ON c.oid = r.ev_class
	WHERE c.relnamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT ty.typnamespace, 'y', ROW(ty.*, pg_catalog.obj_description(ty.oid, 'pg_type'),
		(SELECT pg_catalog.array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum AS e WHERE e.enumtypid = ty.oid),
		(SELECT ROW(rg.*)::text FROM pg_catalog.pg_range AS rg WHERE rg.rngtypid = ty.oid))::text
	FROM pg_catalog.pg_type AS ty WHERE ty.typnamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT p.pronamespace, 'p', ROW(p.*, pg_catalog.obj_description(p.oid, 'pg_proc'),
		(SELECT ROW(ag.*)::text FROM pg_catalog.pg_aggregate AS ag WHERE ag.aggfnoid = p.oid))::text
	FROM pg_catalog.pg_proc AS p WHERE p.pronamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT o.nsp, 'd', ROW(o.classid, o.objid, d.objsubid, d.deptype, d.refclassid, d.refobjid, d.refobjsubid,
		CASE d.refclassid
		WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN d.refobjid::pg_catalog.regclass::text || COALESCE('.' ||
			(SELECT pg_catalog.quote_ident(ra.attname) FROM pg_catalog.pg_attribute AS ra WHERE ra.attrelid = d.refobjid AND ra.attnum = d.refobjsubid AND d.refobjsubid <> 0), '')
		WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN pg_catalog.format_type(d.refobjid, NULL)
		WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN d.refobjid::pg_catalog.regprocedure::text
		ELSE pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) END,
		(SELECT ROW(rt.typnotnull, rt.typbasetype, rt.typtypmod)::text FROM pg_catalog.pg_type AS rt
			WHERE d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND rt.oid = d.refobjid))::text
	FROM objs AS o JOIN pg_catalog.pg_depend AS d ON d.classid = o.classid AND d.objid = o.objid
)
SELECT ns.nspname::text, pg_catalog.md5(COALESCE(pg_catalog.string_agg(r.k || pg_catalog.md5(r.v), '' ORDER BY r.k, pg_catalog.md5(r.v)), '')),
	COALESCE((SELECT pg_catalog.array_agg(DISTINCT o.owner) FROM (
		SELECT n.nspowner AS owner FROM pg_catalog.pg_namespace AS n WHERE n.oid = ns.oid
		UNION ALL SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.relnamespace = ns.oid
		UNION ALL SELECT ty.typowner FROM pg_catalog.pg_type AS ty WHERE ty.typnamespace = ns.oid
		UNION ALL SELECT p.proowner FROM pg_catalog.pg_proc AS p WHERE p.pronamespace = ns.oid) AS o), '{}')::oid[]
FROM ns LEFT JOIN rows AS r ON r.nsp = ns.oid
GROUP BY ns.oid, ns.nspname`

// Fingerprints implements connectors.Fingerprinter with fingerprintQuery, in a read-only
// transaction with the extraction's pinned settings (which decide how the referenced names
// print). Each schema's digest adds the server's version, its owners' names as entities would
// carry them and, for the first schema, what the Database entity holds. One query for all the
// given schemas: a few catalog scans, no deparsing (pg_get_viewdef and the like are what makes
// extraction costly).
func (s *Source) Fingerprints(ctx context.Context, schemas []string, filters connectors.Filters) (map[string]string, error) {
	if err := checkDatabaseFilters(filters); err != nil {
		return nil, err
	}
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, classify(ctx, err, phaseQuery)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	if err := pinSettings(ctx, tx); err != nil {
		return nil, classify(ctx, err, phaseQuery)
	}
	out, err := s.fingerprints(ctx, tx, schemas, filters)
	if err != nil {
		var se *secrets.Error
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, classify(ctx, err, phaseQuery)
	}
	return out, nil
}

func (s *Source) fingerprints(ctx context.Context, tx pgx.Tx, schemas []string, filters connectors.Filters) (map[string]string, error) {
	all, err := queryNamespaces(ctx, tx)
	if err != nil {
		return nil, err
	}
	first := ""
	for _, n := range all {
		if schemaWanted(n.name, filters) {
			first = n.name // all is sorted
			break
		}
	}
	digests := map[string]string{}
	owners := map[string][]uint32{}
	var ownerOIDs []uint32
	err = each(ctx, tx, fingerprintQuery, []any{schemas}, func(rows pgx.Rows) error {
		var name, digest string
		var own []uint32
		if err := rows.Scan(&name, &digest, &own); err != nil {
			return err
		}
		digests[name], owners[name] = digest, own
		ownerOIDs = append(ownerOIDs, own...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	roleNames := map[uint32]string{}
	err = each(ctx, tx, `SELECT r.oid, r.rolname::text FROM pg_catalog.pg_roles AS r WHERE r.oid = ANY ($1::oid[])`, []any{ownerOIDs}, func(rows pgx.Rows) error {
		var oid uint32
		var name string
		if err := rows.Scan(&oid, &name); err != nil {
			return err
		}
		roleNames[oid] = name
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(schemas))
	for _, schema := range schemas {
		digest, ok := digests[schema]
		if !ok {
			return nil, &secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("postgres: the database has no schema %q", schema)}
		}
		h := sha256.New()
		fmt.Fprintf(h, "postgres %d %q %q\n", s.versionNum, s.names.database, digest)
		own := slices.Clone(owners[schema])
		slices.Sort(own)
		for _, oid := range own {
			name, isLogin := s.names.owner(roleNames[oid])
			fmt.Fprintf(h, "owner %d %q %t\n", oid, name, isLogin)
		}
		if schema == first {
			var owner, encoding, collation, comment string
			var size *int64
			if err := tx.QueryRow(ctx, databaseQuery).Scan(&owner, &encoding, &collation, &comment, &size); err != nil {
				return nil, err
			}
			name, isLogin := s.names.owner(owner)
			sz := "none"
			if size != nil {
				sz = strconv.FormatInt(*size, 10)
			}
			fmt.Fprintf(h, "database %q %t %q %q %q %s\n", name, isLogin, encoding, collation, comment, sz)
		}
		out[schema] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}
