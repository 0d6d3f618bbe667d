package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

var _ connectors.Fingerprinter = (*Source)(nil)

// How PostgreSQL fingerprints are taken.
//
// Every DDL statement writes catalog rows, and a written row carries the id of the transaction
// that wrote it (xmin): a row that is new since the last look was written by a transaction that
// had not committed then, so the multiset of xmins of a catalog's rows changes whenever a row is
// added, changed or removed. A catalog's digest is (count of rows, sum of a 64-bit hash of each
// row's xmin), xmin taken relative to a reference transaction id kept in the state (so that it
// is stable from one run to the next); rows frozen by VACUUM count as a constant (freezing
// changes the digest once: a false change). Values PostgreSQL updates in place, without a new
// row version, are added to their row's hash where an entity carries them: pg_class's relpages
// and reltuples, and the TOAST table's relpages (sizes and row estimates).
//
// Catalogs with a namespace column (pg_namespace, pg_class, pg_type, pg_proc, pg_constraint)
// are digested per schema on every call. The others (columns, defaults, indexes, triggers, view
// rules, sequences, partitions, enums, ranges, aggregates, comments, dependencies, and the
// extensions and languages are reached through dependencies, below) are digested as a whole first, a plain scan each; only a catalog whose whole digest moved since the previous
// call is digested again per schema, which needs a join to the schemas' objects. An unchanged
// catalog is the common case and costs one scan.
//
// Names of objects in other schemas: a view's columns, a foreign key's referenced table, a
// column's type, a trigger's function can live in another schema, and renaming them changes
// this schema's entities. The state keeps each schema's dependencies on objects outside it (from
// pg_depend, read again only when pg_depend moved: an object moved to another schema rewrites
// its dependency on its schema), and each call digests the current rows of those objects, of
// their columns and of their schemas, and the names of objects in no schema (an extension, a
// language).
//
// Owners are digested as role OIDs (in the rows); the names entities would carry for every role
// (fieldNames.owner, so no name the output withholds) are digested into every schema. The first
// schema also covers what the Database entity holds.

// pgState is what a call keeps for the next one (connectors.Fingerprinter's state).
type pgState struct {
	// Database is the database's OID and Ref the reference transaction id; a state of another
	// database, or whose Ref is too old to compare with (age > refMaxAge), is not used.
	Database uint32 `json:"database"`
	Ref      uint32 `json:"ref"`
	// Snap is the call's snapshot (its xmin, relative to Ref): rows written later are new to the
	// next call.
	Snap int64 `json:"snap"`
	// Schemas are the OIDs of the schemas the call was for, sorted.
	Schemas []uint32 `json:"schemas"`
	// Whole are the digests of the catalogs digested as a whole, by catalog.
	Whole map[string]digest `json:"whole"`
	// BySchema are those catalogs' digests per schema OID, by catalog, and Rest what the whole
	// has beyond them (other schemas, system objects).
	BySchema map[string]map[uint32]digest `json:"bySchema"`
	Rest     map[string]digest            `json:"rest"`
	// Direct are the digests of the catalogs with a namespace column, per schema OID.
	Direct map[uint32]digest `json:"direct"`
	// Refs are each schema's dependencies on objects outside it.
	Refs []outsideRef `json:"refs"`
}

// digest is a catalog's (or a schema's part of it) row count and sum of row hashes.
type digest struct {
	Count int64  `json:"n"`
	Sum   string `json:"s"`
}

// outsideRef is a dependency of an object of schema Schema on an object outside it.
type outsideRef struct {
	Schema  uint32 `json:"schema"`
	Class   uint32 `json:"class"`
	Object  uint32 `json:"object"`
	Subject int32  `json:"sub"`
}

// refMaxAge bounds how old the reference transaction id may be (PostgreSQL compares ids within
// 2^31 of the current one): past it the next call starts again from a new reference.
const refMaxAge = 1 << 30

// rowHash is the per-row hash of a catalog row's xmin, relative to the reference ($1 is the
// reference's age; a frozen row counts as -1).
const rowHash = `pg_catalog.hashint8extended(COALESCE($1::int8 - NULLIF(pg_catalog.age(%[1]s.xmin), 2147483647), -1), %[2]d)`

func rh(alias string, seed int) string { return fmt.Sprintf(rowHash, alias, seed) }

// wholeCatalog is a catalog digested as a whole first, and per schema where the whole moved:
// its rows (alias x) as the whole scan reads them (user objects only where a cheap condition
// says so); the key of the object each row belongs to (class OID << 32 | object OID), for
// finding the schemas of rows written since the previous call; and, for the per-schema digest,
// the schema of a row and the FROM clause that reaches it (from rels or objs, see
// schemaObjects). Both digests hash a row the same way (rowHash, seeded with the catalog's
// position in wholeCatalogs), so the whole minus the schemas' parts is what lies elsewhere.
type wholeCatalog struct {
	name, from, owner string
	schema, join      string
}

var wholeCatalogs = []wholeCatalog{
	{"attribute", `pg_catalog.pg_attribute AS x WHERE x.attrelid >= 16384`, relOwner("x.attrelid"),
		"r.nsp", `pg_catalog.pg_attribute AS x JOIN rels AS r ON r.oid = x.attrelid`},
	{"attrdef", `pg_catalog.pg_attrdef AS x`, relOwner("x.adrelid"),
		"r.nsp", `pg_catalog.pg_attrdef AS x JOIN rels AS r ON r.oid = x.adrelid`},
	{"index", `pg_catalog.pg_index AS x WHERE x.indrelid >= 16384`, relOwner("x.indrelid"),
		"r.nsp", `pg_catalog.pg_index AS x JOIN rels AS r ON r.oid = x.indrelid`},
	{"trigger", `pg_catalog.pg_trigger AS x`, relOwner("x.tgrelid"),
		"r.nsp", `pg_catalog.pg_trigger AS x JOIN rels AS r ON r.oid = x.tgrelid`},
	{"rewrite", `pg_catalog.pg_rewrite AS x WHERE x.ev_class >= 16384`, relOwner("x.ev_class"),
		"r.nsp", `pg_catalog.pg_rewrite AS x JOIN rels AS r ON r.oid = x.ev_class`},
	{"sequence", `pg_catalog.pg_sequence AS x`, relOwner("x.seqrelid"),
		"r.nsp", `pg_catalog.pg_sequence AS x JOIN rels AS r ON r.oid = x.seqrelid`},
	{"inherits", `pg_catalog.pg_inherits AS x`, relOwner("x.inhrelid"),
		"r.nsp", `pg_catalog.pg_inherits AS x JOIN rels AS r ON r.oid = x.inhrelid`},
	{"partitioned", `pg_catalog.pg_partitioned_table AS x`, relOwner("x.partrelid"),
		"r.nsp", `pg_catalog.pg_partitioned_table AS x JOIN rels AS r ON r.oid = x.partrelid`},
	{"enum", `pg_catalog.pg_enum AS x`, `('pg_catalog.pg_type'::pg_catalog.regclass::int8 << 32) | x.enumtypid::int8`,
		"t.typnamespace", `pg_catalog.pg_enum AS x JOIN pg_catalog.pg_type AS t ON t.oid = x.enumtypid WHERE t.typnamespace = ANY ($2::oid[])`},
	{"range", `pg_catalog.pg_range AS x`, `('pg_catalog.pg_type'::pg_catalog.regclass::int8 << 32) | x.rngtypid::int8`,
		"t.typnamespace", `pg_catalog.pg_range AS x JOIN pg_catalog.pg_type AS t ON t.oid = x.rngtypid WHERE t.typnamespace = ANY ($2::oid[])`},
	{"aggregate", `pg_catalog.pg_aggregate AS x`, `('pg_catalog.pg_proc'::pg_catalog.regclass::int8 << 32) | x.aggfnoid::int8`,
		"p.pronamespace", `pg_catalog.pg_aggregate AS x JOIN pg_catalog.pg_proc AS p ON p.oid = x.aggfnoid WHERE p.pronamespace = ANY ($2::oid[])`},
	{"description", `pg_catalog.pg_description AS x WHERE x.objoid >= 16384`, `(x.classoid::int8 << 32) | x.objoid::int8`,
		"o.nsp", `pg_catalog.pg_description AS x JOIN objs AS o ON o.classid = x.classoid AND o.objid = x.objoid`},
	{"depend", `pg_catalog.pg_depend AS x WHERE x.objid >= 16384`, `(x.classid::int8 << 32) | x.objid::int8`,
		"o.nsp", `pg_catalog.pg_depend AS x JOIN objs AS o ON o.classid = x.classid AND o.objid = x.objid`},
}

// seed is the row hash's seed of wholeCatalogs[i]: its position, counted from 1.
func seed(i int) int { return i + 1 }

func relOwner(col string) string {
	return `('pg_catalog.pg_class'::pg_catalog.regclass::int8 << 32) | ` + col + `::int8`
}

// wholeQuery digests every whole catalog ($1 the reference), and lists the objects that rows
// written since the previous call's snapshot ($2, relative to the reference) belong to.
func wholeQuery() string {
	var q string
	for i, c := range wholeCatalogs {
		if i > 0 {
			q += "\nUNION ALL\n"
		}
		q += fmt.Sprintf(`SELECT %s::text, pg_catalog.count(*), COALESCE(pg_catalog.sum(pg_catalog.hashint8extended(w.r, %d)), 0)::text,
	COALESCE(pg_catalog.array_agg(DISTINCT w.owner) FILTER (WHERE w.r >= $2), '{}')
FROM (SELECT %s AS r, %s AS owner FROM %s) AS w`, pgQuote(c.name), seed(i), relXmin("x"), c.owner, c.from)
	}
	return q
}

// relXmin is a row's xmin relative to the reference ($1 is the reference's age; -1 for a frozen
// row).
func relXmin(alias string) string {
	return fmt.Sprintf(`COALESCE($1::int8 - NULLIF(pg_catalog.age(%[1]s.xmin), 2147483647), -1)`, alias)
}

// ownerSchemasQuery maps object keys ($1: class OID << 32 | object OID) to their schemas.
const ownerSchemasQuery = `SELECT DISTINCT COALESCE(
	(SELECT x.relnamespace FROM pg_catalog.pg_class AS x WHERE u.cls = 'pg_catalog.pg_class'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT x.typnamespace FROM pg_catalog.pg_type AS x WHERE u.cls = 'pg_catalog.pg_type'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT x.pronamespace FROM pg_catalog.pg_proc AS x WHERE u.cls = 'pg_catalog.pg_proc'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT x.connamespace FROM pg_catalog.pg_constraint AS x WHERE u.cls = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT c.relnamespace FROM pg_catalog.pg_rewrite AS x JOIN pg_catalog.pg_class AS c ON c.oid = x.ev_class WHERE u.cls = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT c.relnamespace FROM pg_catalog.pg_trigger AS x JOIN pg_catalog.pg_class AS c ON c.oid = x.tgrelid WHERE u.cls = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT c.relnamespace FROM pg_catalog.pg_attrdef AS x JOIN pg_catalog.pg_class AS c ON c.oid = x.adrelid WHERE u.cls = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT x.oid FROM pg_catalog.pg_namespace AS x WHERE u.cls = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND x.oid = u.obj),
	0::oid)
FROM (SELECT (k >> 32)::oid AS cls, (k & 4294967295)::oid AS obj FROM pg_catalog.unnest($1::int8[]) AS k) AS u`

// schemaObjects are the objects of the schemas in $2 that catalog rows and dependencies hang
// from: relations, rules, constraints, triggers, defaults, types and routines.
const schemaObjects = `rels AS (
	SELECT c.oid, c.relnamespace AS nsp FROM pg_catalog.pg_class AS c WHERE c.relnamespace = ANY ($2::oid[])
), objs(classid, objid, nsp) AS (
	SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, r.oid, r.nsp FROM rels AS r
	UNION ALL SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, n.oid, n.oid FROM pg_catalog.pg_namespace AS n WHERE n.oid = ANY ($2::oid[])
	UNION ALL SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, x.oid, r.nsp FROM pg_catalog.pg_rewrite AS x JOIN rels AS r ON r.oid = x.ev_class
	UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, x.oid, x.connamespace FROM pg_catalog.pg_constraint AS x WHERE x.connamespace = ANY ($2::oid[])
	UNION ALL SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, x.oid, r.nsp FROM pg_catalog.pg_trigger AS x JOIN rels AS r ON r.oid = x.tgrelid
	UNION ALL SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, x.oid, r.nsp FROM pg_catalog.pg_attrdef AS x JOIN rels AS r ON r.oid = x.adrelid
	UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, x.oid, x.typnamespace FROM pg_catalog.pg_type AS x WHERE x.typnamespace = ANY ($2::oid[])
	UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, x.oid, x.pronamespace FROM pg_catalog.pg_proc AS x WHERE x.pronamespace = ANY ($2::oid[])
)`

// directQuery digests, per schema of $2, the catalogs with a namespace column: the schema's own
// row, its relations (with the in-place sizes and row estimates entities carry, the TOAST
// table's size included), types, routines and constraints, and lists the roles owning them.
// (Grouped by schema and owner first: hashed, where grouping by schema alone with a DISTINCT
// array of owners sorts every row.)
var directQuery = `SELECT g.nsp, pg_catalog.sum(g.n)::int8, COALESCE(pg_catalog.sum(g.s), 0)::text,
	COALESCE(pg_catalog.array_agg(g.owner) FILTER (WHERE g.owner IS NOT NULL), '{}')::oid[]
FROM (SELECT h.nsp, h.owner, pg_catalog.count(*) AS n, pg_catalog.sum(h.h) AS s FROM (
	SELECT n.oid AS nsp, ` + rh("n", 20) + ` AS h, n.nspowner AS owner
	FROM pg_catalog.pg_namespace AS n WHERE n.oid = ANY ($2::oid[])
	UNION ALL
	SELECT c.relnamespace, ` + rh("c", 21) + `
		# pg_catalog.hashint8extended((c.relpages::int8 << 32) # COALESCE(t.relpages, -1)::int8, 22)
		# pg_catalog.hashint8extended(CASE WHEN c.reltuples < 0 THEN -1 ELSE pg_catalog.round(c.reltuples)::int8 END, 23),
		c.relowner
	FROM pg_catalog.pg_class AS c
	LEFT JOIN (SELECT t.oid, t.relpages FROM pg_catalog.pg_class AS t WHERE t.relkind = 't') AS t ON t.oid = c.reltoastrelid
	WHERE c.relnamespace = ANY ($2::oid[])
	UNION ALL
	SELECT x.typnamespace, ` + rh("x", 24) + `, x.typowner FROM pg_catalog.pg_type AS x WHERE x.typnamespace = ANY ($2::oid[])
	UNION ALL
	SELECT x.pronamespace, ` + rh("x", 25) + `, x.proowner FROM pg_catalog.pg_proc AS x WHERE x.pronamespace = ANY ($2::oid[])
	UNION ALL
	SELECT x.connamespace, ` + rh("x", 26) + `, NULL::oid FROM pg_catalog.pg_constraint AS x WHERE x.connamespace = ANY ($2::oid[])
) AS h GROUP BY h.nsp, h.owner) AS g GROUP BY g.nsp`

// outsideRefsQuery lists the dependencies of the schemas' objects on objects outside their own
// schema: in another schema, or in none (an extension, a language, a foreign server).
const outsideRefsQuery = `WITH ` + schemaObjects + `, named(classid, objid, nsp) AS MATERIALIZED (
	SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, x.oid, x.relnamespace FROM pg_catalog.pg_class AS x
	UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, x.oid, x.typnamespace FROM pg_catalog.pg_type AS x
	UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, x.oid, x.pronamespace FROM pg_catalog.pg_proc AS x
	UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, x.oid, x.connamespace FROM pg_catalog.pg_constraint AS x
	UNION ALL SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, x.oid, x.collnamespace FROM pg_catalog.pg_collation AS x
	UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, x.oid, x.oprnamespace FROM pg_catalog.pg_operator AS x
	UNION ALL SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass, x.oid, x.opcnamespace FROM pg_catalog.pg_opclass AS x
	UNION ALL SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, x.oid, x.opfnamespace FROM pg_catalog.pg_opfamily AS x
	UNION ALL SELECT 'pg_catalog.pg_ts_config'::pg_catalog.regclass, x.oid, x.cfgnamespace FROM pg_catalog.pg_ts_config AS x
	UNION ALL SELECT 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, x.oid, x.dictnamespace FROM pg_catalog.pg_ts_dict AS x
	UNION ALL SELECT 'pg_catalog.pg_conversion'::pg_catalog.regclass, x.oid, x.connamespace FROM pg_catalog.pg_conversion AS x
), deps AS MATERIALIZED (
	SELECT DISTINCT o.nsp, d.refclassid, d.refobjid, d.refobjsubid
	FROM objs AS o JOIN pg_catalog.pg_depend AS d ON d.classid = o.classid AND d.objid = o.objid
)
SELECT d.nsp, d.refclassid, d.refobjid, d.refobjsubid
FROM deps AS d LEFT JOIN named AS r ON r.classid = d.refclassid AND r.objid = d.refobjid
WHERE r.nsp IS DISTINCT FROM d.nsp AND $1::pg_catalog.xid IS NOT NULL`

// outsideRowsQuery digests the current rows of outside references ($2 schema, $3 class, $4
// object, $5 column): the object's own catalog row, its column's row, its schema's row; an
// object of another catalog by its description (its names).
var outsideRowsQuery = `SELECT u.nsp, pg_catalog.concat_ws(':', u.cls, u.obj, u.sub,
	(SELECT ` + rh("x", 30) + ` FROM pg_catalog.pg_class AS x WHERE u.cls = 'pg_catalog.pg_class'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT ` + rh("x", 31) + ` FROM pg_catalog.pg_attribute AS x WHERE u.cls = 'pg_catalog.pg_class'::pg_catalog.regclass AND x.attrelid = u.obj AND x.attnum = u.sub AND u.sub <> 0),
	(SELECT ` + rh("x", 32) + ` FROM pg_catalog.pg_type AS x WHERE u.cls = 'pg_catalog.pg_type'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT ` + rh("x", 33) + ` FROM pg_catalog.pg_proc AS x WHERE u.cls = 'pg_catalog.pg_proc'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT ` + rh("x", 34) + ` FROM pg_catalog.pg_constraint AS x WHERE u.cls = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND x.oid = u.obj),
	(SELECT ` + rh("n", 35) + ` FROM pg_catalog.pg_namespace AS n WHERE n.oid = COALESCE(
		(SELECT x.relnamespace FROM pg_catalog.pg_class AS x WHERE u.cls = 'pg_catalog.pg_class'::pg_catalog.regclass AND x.oid = u.obj),
		(SELECT x.typnamespace FROM pg_catalog.pg_type AS x WHERE u.cls = 'pg_catalog.pg_type'::pg_catalog.regclass AND x.oid = u.obj),
		(SELECT x.pronamespace FROM pg_catalog.pg_proc AS x WHERE u.cls = 'pg_catalog.pg_proc'::pg_catalog.regclass AND x.oid = u.obj),
		(SELECT x.connamespace FROM pg_catalog.pg_constraint AS x WHERE u.cls = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND x.oid = u.obj))),
	CASE WHEN u.cls NOT IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_type'::pg_catalog.regclass,
		'pg_catalog.pg_proc'::pg_catalog.regclass, 'pg_catalog.pg_constraint'::pg_catalog.regclass)
		THEN pg_catalog.pg_describe_object(u.cls, u.obj, u.sub) END)
FROM ROWS FROM (pg_catalog.unnest($2::oid[]), pg_catalog.unnest($3::oid[]), pg_catalog.unnest($4::oid[]), pg_catalog.unnest($5::int4[])) AS u(nsp, cls, obj, sub)`

// Fingerprints implements connectors.Fingerprinter (see "How PostgreSQL fingerprints are taken"
// above), in a read-only transaction with the extraction's pinned settings.
func (s *Source) Fingerprints(ctx context.Context, schemas []string, filters connectors.Filters, previous []byte) (map[string]string, []byte, error) {
	if err := checkDatabaseFilters(filters); err != nil {
		return nil, nil, err
	}
	if err := s.usable(ctx); err != nil {
		return nil, nil, err
	}
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, classify(ctx, err, phaseQuery)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	// Hash joins: the per-schema digests and the outside references join tens of thousands of
	// catalog rows, which nested loops over the catalogs' indexes make ten times slower.
	if err := pinSettings(ctx, tx, [2]string{"enable_nestloop", "off"}, [2]string{"enable_mergejoin", "off"}); err != nil {
		return nil, nil, classify(ctx, err, phaseQuery)
	}
	fps, state, err := s.fingerprints(ctx, tx, schemas, filters, previous)
	if err != nil {
		var se *secrets.Error
		if errors.As(err, &se) {
			return nil, nil, err
		}
		return nil, nil, classify(ctx, err, phaseQuery)
	}
	return fps, state, nil
}

func (s *Source) fingerprints(ctx context.Context, tx pgx.Tx, schemas []string, filters connectors.Filters, previous []byte) (map[string]string, []byte, error) {
	all, err := queryNamespaces(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	// The Database entity (pg_database_size stats every file of the database: about 50 ms with
	// 5,000 tables), when the first schema is asked for, is read beside everything else, on a
	// connection of its own.
	first := ""
	for _, n := range all {
		if first == "" && schemaWanted(n.name, filters) {
			first = n.name // all is sorted
		}
	}
	var dbRow func() (databaseRow, error)
	if slices.Contains(schemas, first) {
		dbRow = s.readDatabaseRow(ctx, tx)
	}
	var prev pgState
	if len(previous) > 0 && json.Unmarshal(previous, &prev) != nil {
		prev = pgState{}
	}
	// The reference's age and the snapshot's (its xmin) are against the transaction's stable
	// latest id, as every age this call computes.
	var dbOID uint32
	var refAge, snapXmin, snapAge int64
	if err := tx.QueryRow(ctx, `SELECT d.oid, pg_catalog.age($1::pg_catalog.xid)::int8, s.x,
	pg_catalog.age(((s.x % 4294967296)::text)::pg_catalog.xid)::int8
FROM pg_catalog.pg_database AS d, (SELECT pg_catalog.txid_snapshot_xmin(pg_catalog.txid_current_snapshot()) AS x) AS s
WHERE d.datname = pg_catalog.current_database()`,
		strconv.FormatUint(uint64(prev.Ref), 10)).Scan(&dbOID, &refAge, &snapXmin, &snapAge); err != nil {
		return nil, nil, err
	}
	if prev.Database != dbOID || prev.Ref == 0 || refAge < 0 || refAge > refMaxAge {
		// No usable state: start from a new reference, the snapshot's xmin (a 64-bit txid's low
		// 32 bits are the xid).
		prev = pgState{Database: dbOID, Ref: uint32(snapXmin)}
		refAge = snapAge
	}
	// Every row's xmin is taken relative to the reference as age(ref) - age(xmin), which is
	// xmin - ref, the same in every call; age(ref) is passed to the queries as $1.
	ref := refAge

	oidOf := map[string]uint32{}
	for _, n := range all {
		oidOf[n.name] = n.oid
	}
	oids := make([]uint32, 0, len(schemas))
	for _, sc := range schemas {
		oid, ok := oidOf[sc]
		if !ok {
			return nil, nil, &secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("postgres: the database has no schema %q", sc)}
		}
		oids = append(oids, oid)
	}
	slices.Sort(oids)

	next := pgState{Database: dbOID, Ref: prev.Ref, Whole: map[string]digest{}, BySchema: map[string]map[uint32]digest{}, Rest: map[string]digest{}}
	var moved []string // catalogs digested again for every schema
	// Whole catalogs, one scan each, in one statement, with the objects of rows written since
	// the previous call (its snapshot; none known: every row is new).
	snap := prev.Snap
	if prev.Whole == nil {
		snap = math.MinInt64
	}
	next.Snap = ref - snapAge
	newOwners := map[string][]int64{}
	if err := each(ctx, tx, wholeQuery(), []any{ref, snap}, func(rows pgx.Rows) error {
		var name string
		var d digest
		var owners []int64
		if err := rows.Scan(&name, &d.Count, &d.Sum, &owners); err != nil {
			return err
		}
		next.Whole[name], newOwners[name] = d, owners
		return nil
	}); err != nil {
		return nil, nil, err
	}
	// Per schema: a catalog whose whole did not move keeps its digests; one that moved is
	// digested again for the schemas its new rows belong to, and the rest of it must then add
	// up to what it was (rows removed elsewhere, say a DROP TRIGGER, write no new row); when it
	// does not, or nothing is known, it is digested again for every schema.
	sameSchemas := slices.Equal(prev.Schemas, oids)
	next.Schemas = oids
	for i, c := range wholeCatalogs {
		next.BySchema[c.name] = map[uint32]digest{}
		if sameSchemas && prev.Whole[c.name] == next.Whole[c.name] {
			maps.Copy(next.BySchema[c.name], prev.BySchema[c.name])
			next.Rest[c.name] = prev.Rest[c.name]
			continue
		}
		var touched []uint32
		if sameSchemas && prev.Whole != nil {
			if touched, err = ownerSchemas(ctx, tx, newOwners[c.name], oids); err != nil {
				return nil, nil, err
			}
		}
		done := false
		if len(touched) > 0 && len(touched) < len(oids) {
			now, err := digestBySchema(ctx, tx, i, ref, touched, true)
			if err != nil {
				return nil, nil, err
			}
			maps.Copy(next.BySchema[c.name], prev.BySchema[c.name])
			maps.Copy(next.BySchema[c.name], now)
			next.Rest[c.name] = rest(next.Whole[c.name], next.BySchema[c.name])
			done = next.Rest[c.name] == prev.Rest[c.name]
		}
		if !done {
			now, err := digestBySchema(ctx, tx, i, ref, oids, false)
			if err != nil {
				return nil, nil, err
			}
			next.BySchema[c.name] = now
			next.Rest[c.name] = rest(next.Whole[c.name], now)
			moved = append(moved, c.name)
		}
	}
	// Catalogs with a namespace column, per schema.
	direct := map[uint32]digest{}
	owners := map[uint32][]uint32{} // per schema, the roles owning its objects
	var ownerOIDs []uint32
	if err := each(ctx, tx, directQuery, []any{ref, oids}, func(rows pgx.Rows) error {
		var oid uint32
		var d digest
		var own []uint32
		if err := rows.Scan(&oid, &d.Count, &d.Sum, &own); err != nil {
			return err
		}
		direct[oid], owners[oid] = d, own
		ownerOIDs = append(ownerOIDs, own...)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	// Outside references: read again when dependencies or any object's schema may have moved.
	next.Refs = prev.Refs
	// An object that moves to another schema rewrites its dependency on its schema, so a moved
	// pg_depend covers that too.
	if slices.Contains(moved, "depend") || prev.Whole["depend"] != next.Whole["depend"] || !sameSchemas {
		next.Refs = nil
		if err := each(ctx, tx, outsideRefsQuery, []any{ref, oids}, func(rows pgx.Rows) error {
			var r outsideRef
			if err := rows.Scan(&r.Schema, &r.Class, &r.Object, &r.Subject); err != nil {
				return err
			}
			next.Refs = append(next.Refs, r)
			return nil
		}); err != nil {
			return nil, nil, err
		}
	}
	refRows := map[uint32][]string{}
	if len(next.Refs) > 0 {
		var nsp, cls, obj []uint32
		var sub []int32
		for _, r := range next.Refs {
			nsp, cls, obj, sub = append(nsp, r.Schema), append(cls, r.Class), append(obj, r.Object), append(sub, r.Subject)
		}
		if err := each(ctx, tx, outsideRowsQuery, []any{ref, nsp, cls, obj, sub}, func(rows pgx.Rows) error {
			var oid uint32
			var row string
			if err := rows.Scan(&oid, &row); err != nil {
				return err
			}
			refRows[oid] = append(refRows[oid], row)
			return nil
		}); err != nil {
			return nil, nil, err
		}
	}
	// The owners' names as entities would carry them (a renamed role, another login role).
	roles := map[uint32]string{}
	if err := each(ctx, tx, `SELECT r.oid, r.rolname::text FROM pg_catalog.pg_roles AS r WHERE r.oid = ANY ($1::oid[])`, []any{ownerOIDs}, func(rows pgx.Rows) error {
		var oid uint32
		var name string
		if err := rows.Scan(&oid, &name); err != nil {
			return err
		}
		shown, isLogin := s.names.owner(name)
		roles[oid] = fmt.Sprintf("%d %q %t", oid, shown, isLogin)
		return nil
	}); err != nil {
		return nil, nil, err
	}

	out := make(map[string]string, len(schemas))
	for _, sc := range schemas {
		oid := oidOf[sc]
		h := sha256.New()
		fmt.Fprintf(h, "postgres %d %q %d\n", s.versionNum, s.names.database, oid)
		own := slices.Clone(owners[oid])
		slices.Sort(own)
		for _, o := range own {
			fmt.Fprintf(h, "owner %s\n", roles[o])
		}
		fmt.Fprintf(h, "direct %+v\n", direct[oid])
		for _, c := range wholeCatalogs {
			fmt.Fprintf(h, "%s %+v\n", c.name, next.BySchema[c.name][oid])
		}
		rows := slices.Clone(refRows[oid])
		slices.Sort(rows)
		for _, r := range rows {
			fmt.Fprintf(h, "ref %s\n", r)
		}
		if sc == first {
			d, err := dbRow()
			if err != nil {
				return nil, nil, err
			}
			name, isLogin := s.names.owner(d.owner)
			sz := "none"
			if d.size != nil {
				sz = strconv.FormatInt(*d.size, 10)
			}
			fmt.Fprintf(h, "database %q %t %q %q %q %s\n", name, isLogin, d.encoding, d.collation, d.comment, sz)
		}
		out[sc] = hex.EncodeToString(h.Sum(nil))
	}
	next.Direct = direct
	state, err := json.Marshal(next)
	if err != nil {
		return nil, nil, err
	}
	return out, state, nil
}

func pgQuote(s string) string { return "'" + s + "'" }

// databaseRow is databaseQuery's row.
type databaseRow struct {
	owner, encoding, collation, comment string
	size                                *int64
}

// readDatabaseRow starts reading databaseQuery on a second connection, made like the source's
// own (same destination, dialer, TLS and authentication rules), and returns the function that
// waits for it. When that connection cannot be made, the row is read on tx when asked for.
func (s *Source) readDatabaseRow(ctx context.Context, tx pgx.Tx) func() (databaseRow, error) {
	type result struct {
		row databaseRow
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		conn, err := pgx.ConnectConfig(ctx, s.conn.Config().Copy())
		if err != nil {
			r.err = err
			ch <- r
			return
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = conn.Close(cctx)
		}()
		r.err = conn.QueryRow(ctx, databaseQuery).Scan(&r.row.owner, &r.row.encoding, &r.row.collation, &r.row.comment, &r.row.size)
		ch <- r
	}()
	return func() (databaseRow, error) {
		r := <-ch
		if r.err == nil {
			return r.row, nil
		}
		var row databaseRow
		err := tx.QueryRow(ctx, databaseQuery).Scan(&row.owner, &row.encoding, &row.collation, &row.comment, &row.size)
		return row, err
	}
}

// ownerSchemas returns the schemas among oids (sorted) that the objects keys belong to.
func ownerSchemas(ctx context.Context, tx pgx.Tx, keys []int64, oids []uint32) ([]uint32, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var out []uint32
	err := each(ctx, tx, ownerSchemasQuery, []any{keys}, func(rows pgx.Rows) error {
		var oid uint32
		if err := rows.Scan(&oid); err != nil {
			return err
		}
		if _, found := slices.BinarySearch(oids, oid); found {
			out = append(out, oid)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// digestBySchema digests catalog per schema of oids (every one of them gets a digest). few says
// the schemas are a handful: their objects are reached through the catalogs' indexes then.
func digestBySchema(ctx context.Context, tx pgx.Tx, catalog int, ref int64, oids []uint32, few bool) (map[uint32]digest, error) {
	out := make(map[uint32]digest, len(oids))
	for _, oid := range oids {
		out[oid] = digest{Sum: "0"}
	}
	if few {
		if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('enable_nestloop', 'on', true)`); err != nil {
			return nil, err
		}
		defer func() { _, _ = tx.Exec(ctx, `SELECT pg_catalog.set_config('enable_nestloop', 'off', true)`) }()
	}
	c := wholeCatalogs[catalog]
	q := fmt.Sprintf(`WITH %s SELECT %s, pg_catalog.count(*), COALESCE(pg_catalog.sum(%s), 0)::text FROM %s GROUP BY 1`,
		schemaObjects, c.schema, rh("x", seed(catalog)), c.join)
	err := each(ctx, tx, q, []any{ref, oids}, func(rows pgx.Rows) error {
		var oid uint32
		var d digest
		if err := rows.Scan(&oid, &d.Count, &d.Sum); err != nil {
			return err
		}
		out[oid] = d
		return nil
	})
	return out, err
}

// rest is whole minus the parts.
func rest(whole digest, parts map[uint32]digest) digest {
	sum, ok := new(big.Int).SetString(whole.Sum, 10)
	if !ok {
		return digest{Sum: "invalid"}
	}
	n := whole.Count
	for _, d := range parts {
		v, ok := new(big.Int).SetString(d.Sum, 10)
		if !ok {
			return digest{Sum: "invalid"}
		}
		sum.Sub(sum, v)
		n -= d.Count
	}
	return digest{Count: n, Sum: sum.String()}
}
