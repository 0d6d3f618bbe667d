package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// Extract streams the entities of the given schemas to w, kind by kind: the Database entity
// (see below), one Schema per schema (empty ones too), then tables (tables, views, materialized
// views, partitioned tables, partitions, foreign tables), columns, keys (primary, unique,
// foreign), indexes and routines (functions, window functions and procedures). Within a kind,
// entities come schema by schema in the order given, then by table (or routine) name in byte
// order, columns by position.
//
// It runs one query per entity kind over all the given schemas, inside one read-only
// repeatable-read transaction (so the kinds agree with each other), and writes rows as they
// arrive: memory stays bounded however many columns there are. ctx is checked between rows, and
// when it ends the running query is cancelled on the server.
//
// filters.TableIncluded selects tables and, with them, their columns, keys and indexes.
// Database filters are refused (InvalidInput). A schema that does not exist is InvalidInput.
//
// The Database entity (encoding, collation, owner, comment, size) is written by the call whose
// schema list holds the first (in byte order) of the schemas that pass filters, so a run that
// extracts each of its schemas once writes the database exactly once. Its Name is left empty,
// like the Database field of every other entity: it is the value of field "database", which may
// be a secret. For the same reason an Owner equal to the value of field "username" (or "host"
// or "database") is left empty.
func (s *Source) Extract(ctx context.Context, schemas []string, filters connectors.Filters, w connectors.EntityWriter) error {
	if err := checkDatabaseFilters(filters); err != nil {
		return err
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return classify(ctx, err, phaseQuery)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx) // read-only: nothing to keep
	}()
	// Deparsing views and indexes and sizing tables take a brief lock on each relation; never
	// wait behind an ALTER TABLE or VACUUM FULL forever (unless the server sets its own limit).
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true) WHERE current_setting('lock_timeout') = '0'`, LockTimeout); err != nil {
		return classify(ctx, err, phaseQuery)
	}
	// The catalog queries look expensive to the planner (function calls per row), which makes a
	// server with JIT compile them first: about 0.3 s per query, more than running them. Off, for
	// this transaction only.
	if _, err := tx.Exec(ctx, `SELECT set_config('jit', 'off', true)`); err != nil {
		return classify(ctx, err, phaseQuery)
	}
	err = s.extract(ctx, tx, schemas, filters, w)
	var we writeErr
	if errors.As(err, &we) {
		return we.err
	}
	if err != nil {
		return classify(ctx, err, phaseQuery)
	}
	return nil
}

// LockTimeout is the lock_timeout of the extraction's transaction when the server sets none: a
// catalog query that waits longer for a relation's lock fails with SourceUnavailable (retried).
const LockTimeout = "30s"

// writeErr marks an error from the EntityWriter, which is passed through unclassified.
type writeErr struct{ err error }

func (e writeErr) Error() string { return e.err.Error() }
func (e writeErr) Unwrap() error { return e.err }

func (s *Source) extract(ctx context.Context, tx pgx.Tx, schemas []string, filters connectors.Filters, w connectors.EntityWriter) error {
	all, err := queryNamespaces(ctx, tx)
	if err != nil {
		return err
	}
	byName := make(map[string]namespace, len(all))
	first := ""
	for _, n := range all {
		byName[n.name] = n
		if first == "" && schemaWanted(n.name, filters) {
			first = n.name // all is sorted
		}
	}
	var list []string
	seen := map[string]bool{}
	for _, name := range schemas {
		if _, ok := byName[name]; !ok {
			return &secrets.Error{Kind: secrets.InvalidInput,
				Msg: fmt.Sprintf("postgres: the database has no schema %q; list the schemas again", name)}
		}
		if !seen[name] {
			seen[name] = true
			list = append(list, name)
		}
	}
	if len(list) == 0 {
		return nil
	}
	write := func(e connectors.Entity) error {
		if err := w.Write(e); err != nil {
			return writeErr{err}
		}
		return nil
	}

	if first != "" && seen[first] {
		if err := s.extractDatabase(ctx, tx, write); err != nil {
			return err
		}
	}
	for _, name := range list {
		n := byName[name]
		if err := write(connectors.Schema{Name: n.name, Owner: s.withhold(n.owner), Comment: n.comment}); err != nil {
			return err
		}
	}
	steps := []struct {
		query string
		row   func(pgx.Rows) (connectors.Entity, error)
	}{
		{tablesQuery, s.tableRow},
		{columnsQuery, columnRow},
		{keysQuery, keyRow},
		{indexesQuery, indexRow},
		{routinesQuery, routineRow},
	}
	for _, st := range steps {
		err := each(ctx, tx, st.query, list, func(rows pgx.Rows) error {
			e, err := st.row(rows)
			if err != nil {
				return err
			}
			if !entityIncluded(e, filters) {
				return nil
			}
			return write(e)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// entityIncluded applies the table filters to tables and to their columns, keys and indexes.
func entityIncluded(e connectors.Entity, filters connectors.Filters) bool {
	switch v := e.(type) {
	case connectors.Table:
		return filters.TableIncluded(v.Schema, v.Name)
	case connectors.Column:
		return filters.TableIncluded(v.Schema, v.Table)
	case connectors.Key:
		return filters.TableIncluded(v.Schema, v.Table)
	case connectors.Index:
		return filters.TableIncluded(v.Schema, v.Table)
	}
	return true
}

// each runs query with the schema list as $1 and calls fn for each row, checking ctx between
// rows. Errors are raw (classified by Extract), except fn's.
func each(ctx context.Context, tx pgx.Tx, query string, schemas []string, fn func(pgx.Rows) error) error {
	rows, err := tx.Query(ctx, query, schemas)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return ctx.Err()
}

// databaseQuery reads the connected database. Its size needs CONNECT on it or membership in
// pg_read_all_stats (pg_database_size checks that); without either it is left out.
const databaseQuery = `SELECT pg_catalog.pg_get_userbyid(d.datdba)::text, pg_catalog.pg_encoding_to_char(d.encoding)::text,
	d.datcollate::text, COALESCE(pg_catalog.shobj_description(d.oid, 'pg_database'), ''),
	CASE WHEN has_database_privilege(d.oid, 'CONNECT') OR pg_has_role('pg_read_all_stats', 'USAGE')
		THEN pg_catalog.pg_database_size(d.oid) END
FROM pg_catalog.pg_database AS d
WHERE d.datname = current_database()`

func (s *Source) extractDatabase(ctx context.Context, tx pgx.Tx, write func(connectors.Entity) error) error {
	var d connectors.Database
	var owner string
	if err := tx.QueryRow(ctx, databaseQuery).Scan(&owner, &d.Encoding, &d.Collation, &d.Comment, &d.SizeBytes); err != nil {
		return err
	}
	d.Owner = s.withhold(owner)
	return write(d)
}

// tablesQuery lists relations of kinds r (table), v (view), m (materialized view), p
// (partitioned table) and f (foreign table), with a partition's parent and bound. RowCount is the
// planner's estimate (reltuples), left out where ANALYZE or VACUUM never ran (reltuples < 0);
// SizeBytes estimates table, TOAST and index size from relpages (kept by VACUUM and ANALYZE, like
// reltuples) for tables and materialized views: pg_total_relation_size would stat every file of
// every relation, the slowest part of the whole extraction, and needs no more privilege.
const tablesQuery = `SELECT n.nspname::text, c.relname::text, c.relkind::text, pg_catalog.pg_get_userbyid(c.relowner)::text,
	COALESCE(td.description, ''),
	CASE WHEN c.relkind IN ('v', 'm') THEN COALESCE(pg_catalog.pg_get_viewdef(c.oid), '') ELSE '' END,
	c.relispartition, COALESCE(pn.nspname::text, ''), COALESCE(pc.relname::text, ''),
	CASE WHEN c.relispartition THEN COALESCE(pg_catalog.pg_get_expr(c.relpartbound, c.oid), '') ELSE '' END,
	CASE WHEN c.relkind = 'p' THEN COALESCE(pg_catalog.pg_get_partkeydef(c.oid), '') ELSE '' END,
	CASE WHEN c.relkind IN ('r', 'm', 'p', 'f') AND c.reltuples >= 0 THEN c.reltuples::float8 END,
	CASE WHEN c.relkind IN ('r', 'm') AND c.relpages >= 0 THEN (c.relpages::int8
		+ COALESCE((SELECT t.relpages FROM pg_catalog.pg_class AS t WHERE t.oid = c.reltoastrelid), 0)
		+ COALESCE((SELECT sum(ix.relpages) FROM pg_catalog.pg_index AS x
			JOIN pg_catalog.pg_class AS ix ON ix.oid = x.indexrelid WHERE x.indrelid = c.oid), 0))
		* current_setting('block_size')::int8 END
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_description AS td ON td.objoid = c.oid
	AND td.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND td.objsubid = 0
LEFT JOIN pg_catalog.pg_inherits AS i ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_catalog.pg_class AS pc ON pc.oid = i.inhparent
LEFT JOIN pg_catalog.pg_namespace AS pn ON pn.oid = pc.relnamespace
WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
ORDER BY array_position($1::text[], n.nspname::text), c.relname`

func (s *Source) tableRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		t           connectors.Table
		kind, owner string
		isPartition bool
		reltuples   *float64
	)
	if err := rows.Scan(&t.Schema, &t.Name, &kind, &owner, &t.Comment, &t.Definition, &isPartition,
		&t.ParentSchema, &t.ParentTable, &t.PartitionBound, &t.PartitionKey, &reltuples, &t.SizeBytes); err != nil {
		return nil, err
	}
	t.Owner = s.withhold(owner)
	switch kind {
	case "r":
		t.Type = connectors.TableTypeTable
	case "v":
		t.Type = connectors.TableTypeView
	case "m":
		t.Type = connectors.TableTypeMaterializedView
	case "p":
		t.Type = connectors.TableTypePartitioned // a sub-partitioned partition also has a parent and bound
	case "f":
		t.Type = connectors.TableTypeForeign
	}
	if isPartition && kind != "p" {
		t.Type = connectors.TableTypePartition
	}
	if reltuples != nil && *reltuples >= 0 && *reltuples < math.MaxInt64 {
		n := int64(math.Round(*reltuples))
		t.RowCount = &n
	}
	return t, nil
}

// columnsQuery lists the live columns of the same relations, in declaration order (attnum, as
// information_schema's ordinal_position: positions skip dropped columns). For a domain the
// type parameters are the base type's; for an array, its element type's.
//
// A default is deparsed without its table (relid 0): defaults cannot refer to columns, and with
// the table pg_get_expr opens it and lists all its columns on every call, which is quadratic in
// a wide table's width (minutes for a few dozen tables of 1000 columns). Generated columns do
// refer to columns and are deparsed with their table.
const columnsQuery = `SELECT n.nspname::text, c.relname::text, a.attname::text, a.attnum::int8,
	pg_catalog.format_type(a.atttypid, a.atttypmod),
	(CASE WHEN ty.typtype = 'd' THEN ty.typbasetype WHEN ty.typcategory = 'A' THEN ty.typelem ELSE a.atttypid END)::int8,
	(CASE WHEN ty.typtype = 'd' THEN ty.typtypmod ELSE a.atttypmod END)::int8,
	a.attnotnull,
	COALESCE(pg_catalog.pg_get_expr(d.adbin, CASE WHEN a.attgenerated = '' THEN 0 ELSE d.adrelid END), ''),
	COALESCE(cd.description, ''),
	a.attidentity::text, a.attgenerated::text,
	EXISTS (SELECT 1 FROM pg_catalog.pg_constraint AS k
		WHERE k.conrelid = c.oid AND k.contype = 'p' AND a.attnum = ANY (k.conkey))
FROM pg_catalog.pg_attribute AS a
JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type AS ty ON ty.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_description AS cd ON cd.objoid = a.attrelid
	AND cd.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND cd.objsubid = a.attnum
WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
	AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY array_position($1::text[], n.nspname::text), c.relname, a.attnum`

func columnRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		c                     connectors.Column
		position, oid, typmod int64
		notNull               bool
		expr                  string
		identity, generated   string
	)
	if err := rows.Scan(&c.Schema, &c.Table, &c.Name, &position, &c.DataType, &oid, &typmod,
		&notNull, &expr, &c.Comment, &identity, &generated, &c.PrimaryKey); err != nil {
		return nil, err
	}
	c.Position = int(position)
	c.Nullable = !notNull
	c.Length, c.Precision, c.Scale = typeParams(oid, typmod)
	switch identity {
	case "a":
		c.Identity = "always"
	case "d":
		c.Identity = "by_default"
	}
	switch generated {
	case "s":
		c.Generated, c.GeneratedKind = expr, "stored"
	case "v":
		c.Generated, c.GeneratedKind = expr, "virtual" // PostgreSQL 18
	default:
		c.Default = expr
	}
	return c, nil
}

// Type OIDs whose typmod carries a length, precision or scale.
const (
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidBit         = 1560
	oidVarbit      = 1562
	oidNumeric     = 1700
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimetz      = 1266
)

// typeParams decodes a type modifier as PostgreSQL's own typmodout functions do.
func typeParams(oid, typmod int64) (length, precision, scale *int64) {
	if typmod < 0 {
		return nil, nil, nil
	}
	p := func(v int64) *int64 { return &v }
	const varhdrsz = 4
	switch oid {
	case oidBpchar, oidVarchar:
		return p(typmod - varhdrsz), nil, nil
	case oidBit, oidVarbit:
		return p(typmod), nil, nil
	case oidNumeric:
		m := typmod - varhdrsz
		// Since PostgreSQL 15 the scale is an 11-bit signed field (it may be negative).
		return nil, p((m >> 16) & 0xffff), p(((m & 0x7ff) ^ 1024) - 1024)
	case oidTime, oidTimetz, oidTimestamp, oidTimestamptz:
		return nil, p(typmod), nil
	case oidInterval:
		if prec := typmod & 0xffff; prec != 0xffff {
			return nil, p(prec), nil
		}
	}
	return nil, nil, nil
}

// keysQuery lists primary (p), unique (u) and foreign (f) key constraints with their columns in
// key order (unnest WITH ORDINALITY over conkey and confkey), a foreign key's referenced schema,
// table and columns, and its actions. The constraints PostgreSQL adds on the referencing table
// for each partition of a referenced partitioned table (children of a constraint on the same
// table) are internal and left out; those it clones onto partitions are real and kept.
const keysQuery = `SELECT n.nspname::text, c.relname::text, k.conname::text, k.contype::text,
	kc.names, COALESCE(fn.nspname::text, ''), COALESCE(fc.relname::text, ''), COALESCE(fk.names, '{}'),
	k.confupdtype::text, k.confdeltype::text
FROM pg_catalog.pg_constraint AS k
JOIN pg_catalog.pg_class AS c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class AS fc ON fc.oid = k.confrelid
LEFT JOIN pg_catalog.pg_namespace AS fn ON fn.oid = fc.relnamespace
CROSS JOIN LATERAL (SELECT COALESCE(pg_catalog.array_agg(a.attname::text ORDER BY u.ord), '{}') AS names
	FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
	JOIN pg_catalog.pg_attribute AS a ON a.attrelid = k.conrelid AND a.attnum = u.attnum) AS kc
LEFT JOIN LATERAL (SELECT pg_catalog.array_agg(a.attname::text ORDER BY u.ord) AS names
	FROM unnest(k.confkey) WITH ORDINALITY AS u(attnum, ord)
	JOIN pg_catalog.pg_attribute AS a ON a.attrelid = k.confrelid AND a.attnum = u.attnum) AS fk ON k.contype = 'f'
WHERE n.nspname = ANY ($1::text[]) AND k.contype IN ('p', 'u', 'f')
	AND NOT (k.contype = 'f' AND k.conparentid <> 0 AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint AS pk
		WHERE pk.oid = k.conparentid AND pk.conrelid = k.conrelid))
ORDER BY array_position($1::text[], n.nspname::text), c.relname, k.conname`

func keyRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		k                       connectors.Key
		typ, onUpdate, onDelete string
	)
	if err := rows.Scan(&k.Schema, &k.Table, &k.Name, &typ, &k.Columns, &k.RefSchema, &k.RefTable,
		&k.RefColumns, &onUpdate, &onDelete); err != nil {
		return nil, err
	}
	switch typ {
	case "p":
		k.Type = connectors.KeyPrimary
	case "u":
		k.Type = connectors.KeyUnique
	case "f":
		k.Type = connectors.KeyForeign
		k.OnUpdate, k.OnDelete = fkAction(onUpdate), fkAction(onDelete)
	}
	if k.Type != connectors.KeyForeign {
		k.RefSchema, k.RefTable, k.RefColumns = "", "", nil
	}
	if k.Columns == nil {
		k.Columns = []string{}
	}
	return k, nil
}

func fkAction(code string) string {
	switch code {
	case "a":
		return "NO ACTION"
	case "r":
		return "RESTRICT"
	case "c":
		return "CASCADE"
	case "n":
		return "SET NULL"
	case "d":
		return "SET DEFAULT"
	}
	return ""
}

// indexesQuery lists indexes (those of partitioned tables too) with their key columns in order
// (a column's name, or the expression pg_get_indexdef gives for an expression column; INCLUDE
// columns are in Definition only), access method, partial-index predicate and the full CREATE
// INDEX statement. pg_get_indexdef is by far the costliest call of an extraction (it opens each
// index), so the statement of a plain index (key columns only, default operator classes,
// collations and ordering, no options) is built in SQL the way pg_get_indexdef writes it, and
// pg_get_indexdef is called only for the others. The tests compare every index's Definition
// with pg_indexes.indexdef.
const indexesQuery = `SELECT n.nspname::text, c.relname::text, ic.relname::text, x.indisunique, x.indisprimary,
	COALESCE(am.amname::text, ''), COALESCE(pg_catalog.pg_get_expr(x.indpred, x.indrelid), ''),
	CASE WHEN x.indexprs IS NOT NULL OR x.indpred IS NOT NULL OR x.indnatts <> x.indnkeyatts
			OR x.indoption::text ~ '[1-9]' OR ic.reloptions IS NOT NULL
			OR (pg_catalog.to_jsonb(x) ->> 'indnullsnotdistinct') = 'true'
			OR x.indclass::oid[] && nondefault.opclasses OR k.collated
		THEN pg_catalog.pg_get_indexdef(x.indexrelid)
		ELSE 'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX '
			|| pg_catalog.quote_ident(ic.relname) || ' ON ' || CASE WHEN c.relkind = 'p' THEN 'ONLY ' ELSE '' END
			|| pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
			|| ' USING ' || am.amname || ' (' || k.quoted || ')' END,
	k.names
FROM pg_catalog.pg_index AS x
JOIN pg_catalog.pg_class AS ic ON ic.oid = x.indexrelid
JOIN pg_catalog.pg_class AS c ON c.oid = x.indrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_am AS am ON am.oid = ic.relam
CROSS JOIN (SELECT COALESCE(pg_catalog.array_agg(o.oid), '{}') AS opclasses
	FROM pg_catalog.pg_opclass AS o WHERE NOT o.opcdefault) AS nondefault
CROSS JOIN LATERAL (
	SELECT COALESCE(pg_catalog.array_agg(CASE WHEN u.attnum <> 0 THEN a.attname::text
			ELSE pg_catalog.pg_get_indexdef(x.indexrelid, u.i::int, false) END ORDER BY u.i), '{}') AS names,
		pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY u.i) AS quoted,
		COALESCE(bool_or(u.coll <> 0 AND u.coll <> a.attcollation), false) AS collated
	FROM unnest(x.indkey::int2[], x.indcollation::oid[]) WITH ORDINALITY AS u(attnum, coll, i)
	LEFT JOIN pg_catalog.pg_attribute AS a ON a.attrelid = x.indrelid AND a.attnum = u.attnum AND u.attnum <> 0
	WHERE u.i <= x.indnkeyatts
) AS k
WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'm', 'p', 'f')
ORDER BY array_position($1::text[], n.nspname::text), c.relname, ic.relname`

func indexRow(rows pgx.Rows) (connectors.Entity, error) {
	var x connectors.Index
	if err := rows.Scan(&x.Schema, &x.Table, &x.Name, &x.Unique, &x.Primary, &x.Method, &x.Predicate,
		&x.Definition, &x.Columns); err != nil {
		return nil, err
	}
	if x.Columns == nil {
		x.Columns = []string{}
	}
	return x, nil
}

// routinesQuery lists functions (f), window functions (w) and procedures (p), not aggregates,
// with the full argument list (names, modes, defaults) as the signature; overloads come in the
// order of their identity arguments.
const routinesQuery = `SELECT n.nspname::text, p.proname::text, p.prokind::text,
	COALESCE(pg_catalog.pg_get_function_arguments(p.oid), ''),
	CASE WHEN p.prokind = 'p' THEN '' ELSE COALESCE(pg_catalog.pg_get_function_result(p.oid), '') END,
	COALESCE(l.lanname::text, ''), COALESCE(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
FROM pg_catalog.pg_proc AS p
JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
LEFT JOIN pg_catalog.pg_language AS l ON l.oid = p.prolang
WHERE n.nspname = ANY ($1::text[]) AND p.prokind IN ('f', 'w', 'p')
ORDER BY array_position($1::text[], n.nspname::text), p.proname,
	pg_catalog.pg_get_function_identity_arguments(p.oid), p.oid`

func routineRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		r    connectors.Routine
		kind string
	)
	if err := rows.Scan(&r.Schema, &r.Name, &kind, &r.Signature, &r.ReturnType, &r.Language, &r.Comment); err != nil {
		return nil, err
	}
	r.Type = "function"
	if kind == "p" {
		r.Type = "procedure"
	}
	return r, nil
}
