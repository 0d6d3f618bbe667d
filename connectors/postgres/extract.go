package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// Extract streams the entities of the given schemas to w, kind by kind in connectors.AllKinds
// order: the Database entity (see below), one Schema per schema (empty ones too), then tables
// (tables, views, materialized views, partitioned tables, partitions, foreign tables), columns,
// keys (primary, unique, foreign), constraints (CHECK and exclusion constraints of tables),
// indexes, sequences, triggers (not the internal ones of foreign keys), types (enums, domains,
// standalone composite types and range types) and routines (functions, window functions,
// procedures and aggregates). Within a kind, entities come schema by schema in the order given,
// then by table (or object) name in byte order, then by the kind's own key (a column's position,
// a constraint's, index's or trigger's name, a routine's identity arguments).
//
// It runs one query per entity kind over all the given schemas, inside one read-only
// repeatable-read transaction (so the kinds agree with each other), and writes rows as they
// arrive: memory stays bounded however many columns there are. ctx is checked between rows, and
// when it ends the running query is cancelled on the server. The transaction pins the settings
// that change how the server prints names and values (pinnedSettings), so the same catalog gives
// the same entities whatever the login role's own settings are; user-defined names in
// definitions and types are always schema-qualified (search_path is pg_catalog alone).
//
// filters.TableIncluded selects tables and, with them, their columns, keys, constraints,
// indexes, triggers and the sequences they own (serial and identity columns, OWNED BY).
// Database filters are refused (InvalidInput). A schema that does not exist is InvalidInput.
//
// The Database entity (encoding, collation, owner, comment, size) is written by the call whose
// schema list holds the first (in byte order) of the schemas that pass filters, so a run that
// extracts each of its schemas once writes the database exactly once. Its Name, and the
// Database field of every entity, is the value of field "database" only when that field was a
// literal (OpenOptions.Literals), and "" otherwise: it may be a secret. Owners follow the rule of
// package connectors: the login role's name only when field "username" was a literal (with
// OwnerIsLoginRole either way), and no owner equal to the value of field "host", "database" or
// "username" otherwise.
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
	if err := pinSettings(ctx, tx); err != nil {
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

// pinnedSettings are set for the extraction's transaction only (SET LOCAL), whatever the login
// role, its database or the server set: each changes how the server prints names or values in
// the definitions, defaults, bounds and types that entities carry.
//   - search_path: pg_catalog alone, so every user-defined name is schema-qualified, always the
//     same way (and built-in ones never are).
//   - quote_all_identifiers, standard_conforming_strings: how identifiers and string literals
//     are quoted.
//   - DateStyle, IntervalStyle, TimeZone, extra_float_digits, bytea_output, lc_monetary: how
//     constants of those types print (in defaults, partition bounds, checks).
//   - jit: the catalog queries look expensive to the planner (function calls per row), which
//     makes a server with JIT compile them first: about 0.3 s per query, more than running them.
var pinnedSettings = [][2]string{
	{"search_path", "pg_catalog"},
	{"quote_all_identifiers", "off"},
	{"standard_conforming_strings", "on"},
	{"DateStyle", "ISO, MDY"},
	{"IntervalStyle", "postgres"},
	{"TimeZone", "UTC"},
	{"extra_float_digits", "1"},
	{"bytea_output", "hex"},
	{"lc_monetary", "C"},
	{"jit", "off"},
}

// pinSettings applies pinnedSettings and LockTimeout to the transaction, in one round trip.
// Deparsing views and indexes and sizing tables take a brief lock on each relation: never wait
// behind an ALTER TABLE or VACUUM FULL forever (unless the server sets its own lock_timeout).
func pinSettings(ctx context.Context, tx pgx.Tx, extra ...[2]string) error {
	names := []string{"lock_timeout"}
	values := []string{LockTimeout}
	for _, s := range slices.Concat(pinnedSettings, extra) {
		names, values = append(names, s[0]), append(values, s[1])
	}
	_, err := tx.Exec(ctx, `SELECT pg_catalog.set_config(u.name, u.value, true)
		FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) AS u(name, value)
		WHERE u.name <> 'lock_timeout' OR pg_catalog.current_setting('lock_timeout') = '0'`, names, values)
	return err
}

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
	w, steps := connectors.TraceSteps(ctx, "postgres", w) // a span per step, with tracing on
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
		if err := write(s.schema(byName[name])); err != nil {
			return err
		}
	}
	relations, err := relationOIDs(ctx, tx, list)
	if err != nil {
		return err
	}
	for _, st := range s.steps() {
		args := []any{list}
		if st.byRelation {
			args = append(args, relations)
		}
		err := steps.Run(ctx, st.kind, func(ctx context.Context) error {
			return each(ctx, tx, st.query, args, func(rows pgx.Rows) error {
				e, err := st.row(rows)
				if err != nil {
					return err
				}
				if e == nil || !entityIncluded(e, filters) {
					return nil
				}
				return write(withDatabase(e, s.names.database))
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// step extracts one entity kind: query takes the schema list as $1 and, when byRelation is
// set, the OIDs of the schemas' relations as $2 (see relationOIDs); row turns each of its rows
// into an entity (nil for a row that makes none). Extract applies the filters and sets the
// entity's Database field.
type step struct {
	kind       string
	query      string
	row        func(pgx.Rows) (connectors.Entity, error)
	byRelation bool
}

// steps are the kinds after schemas, in connectors.AllKinds order.
func (s *Source) steps() []step {
	return []step{
		{connectors.KindTables, tablesQuery, s.tableRow, true},
		{connectors.KindColumns, columnsQuery, columnRow, true},
		{connectors.KindKeys, keysQuery, keyRow, true},
		{connectors.KindConstraints, constraintsQuery, constraintRow, true},
		{connectors.KindIndexes, s.indexesQuery(), indexRow, true},
		{connectors.KindSequences, sequencesQuery, s.sequenceRow, true},
		{connectors.KindTriggers, triggersQuery, triggerRow, true},
		{connectors.KindTypes, typesQuery, s.typeRow, false},
		{connectors.KindRoutines, s.routinesQuery(), s.routineRow, false},
		{connectors.KindLineage, lineageQuery, lineageRow, true},
	}
}

// relationsQuery lists the OIDs of the relations (tables, views, materialized views,
// partitioned and foreign tables, sequences) of the schemas in $1.
const relationsQuery = `SELECT c.oid FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')`

// relationOIDs reads the OIDs of the schemas' relations once per Extract call, for the steps
// that read relations (byRelation). pg_class has no index on the schema alone, so a query that
// selects relations by schema scans all of pg_class (tens of thousands of rows in a large
// catalog: indexes and TOAST tables are relations too); given the OIDs as $2, each step reaches
// its relations through pg_class's OID index instead: one scan per call rather than one per
// kind. The steps keep their schema condition as well.
func relationOIDs(ctx context.Context, tx pgx.Tx, schemas []string) ([]uint32, error) {
	rows, err := tx.Query(ctx, relationsQuery, schemas)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uint32])
}

// schema builds the Schema entity of a namespace.
func (s *Source) schema(n namespace) connectors.Schema {
	sc := connectors.Schema{Database: s.names.database, Name: n.name, Comment: n.comment, Extension: n.extension}
	sc.Owner, sc.OwnerIsLoginRole = s.names.owner(n.owner)
	return sc
}

// entityIncluded applies the table filters to tables and to what belongs to them: columns,
// keys, constraints, indexes, triggers and owned sequences.
func entityIncluded(e connectors.Entity, filters connectors.Filters) bool {
	switch v := e.(type) {
	case connectors.Table:
		return filters.TableIncluded(v.Schema, v.Name)
	case connectors.Column:
		return filters.TableIncluded(v.Schema, v.Table)
	case connectors.Key:
		return filters.TableIncluded(v.Schema, v.Table)
	case connectors.Constraint:
		return filters.TableIncluded(v.Schema, v.Table)
	case connectors.Index:
		return filters.TableIncluded(v.Schema, v.Table)
	case connectors.Trigger:
		return filters.TableIncluded(v.Schema, v.Table)
	case connectors.Sequence:
		return v.OwnedByTable == "" || filters.TableIncluded(v.OwnedBySchema, v.OwnedByTable)
	case connectors.Lineage:
		return filters.TableIncluded(v.Schema, v.View)
	}
	return true
}

// each runs query with args and calls fn for each row, checking ctx between rows. Errors are
// raw (classified by Extract), except fn's.
func each(ctx context.Context, tx pgx.Tx, query string, args []any, fn func(pgx.Rows) error) error {
	rows, err := tx.Query(ctx, query, args...)
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
	d := connectors.Database{Name: s.names.database}
	var owner string
	if err := tx.QueryRow(ctx, databaseQuery).Scan(&owner, &d.Encoding, &d.Collation, &d.Comment, &d.SizeBytes); err != nil {
		return err
	}
	d.Owner, d.OwnerIsLoginRole = s.names.owner(owner)
	return write(d)
}

// tablesQuery lists relations of kinds r (table), v (view), m (materialized view), p
// (partitioned table) and f (foreign table), with a partition's parent and bound. RowCount is the
// planner's estimate (reltuples), left out where ANALYZE or VACUUM never ran (reltuples < 0);
// SizeBytes estimates table, TOAST and index size from relpages (kept by VACUUM and ANALYZE, like
// reltuples) for tables and materialized views: pg_total_relation_size would stat every file of
// every relation, the slowest part of the whole extraction, and needs no more privilege.
// Extension names the extension the relation belongs to (pg_depend deptype 'e').
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
		* current_setting('block_size')::int8 END,
	COALESCE(x.extname::text, '')
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_description AS td ON td.objoid = c.oid
	AND td.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND td.objsubid = 0
LEFT JOIN pg_catalog.pg_inherits AS i ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_catalog.pg_class AS pc ON pc.oid = i.inhparent
LEFT JOIN pg_catalog.pg_namespace AS pn ON pn.oid = pc.relnamespace
LEFT JOIN pg_catalog.pg_depend AS xd ON xd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
	AND xd.objid = c.oid AND xd.objsubid = 0 AND xd.deptype = 'e'
LEFT JOIN pg_catalog.pg_extension AS x ON x.oid = xd.refobjid
WHERE c.oid = ANY ($2::pg_catalog.oid[]) AND n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
ORDER BY array_position($1::text[], n.nspname::text), c.relname`

func (s *Source) tableRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		t           connectors.Table
		kind, owner string
		isPartition bool
		reltuples   *float64
	)
	if err := rows.Scan(&t.Schema, &t.Name, &kind, &owner, &t.Comment, &t.Definition, &isPartition,
		&t.ParentSchema, &t.ParentTable, &t.PartitionBound, &t.PartitionKey, &reltuples, &t.SizeBytes, &t.Extension); err != nil {
		return nil, err
	}
	t.Owner, t.OwnerIsLoginRole = s.names.owner(owner)
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
//
// A column of a user-defined type (one that typesQuery lists), or of an array of one, names it.
// A column whose type is a NOT NULL domain, or a domain over one at any depth, is not nullable.
// Both are found once per type (columnType), not once per column.
//
// Columns are many, so the query is shaped for them: relations are put in order first (their
// rank), so that the columns sort on two integers rather than on names; each relation's columns
// come from the pg_attribute index; the primary key is joined once per relation.
const columnsQuery = `WITH RECURSIVE not_null_domains AS (
	SELECT t.oid FROM pg_catalog.pg_type AS t WHERE t.typtype = 'd' AND t.typnotnull
	UNION
	SELECT t.oid FROM pg_catalog.pg_type AS t JOIN not_null_domains AS d ON t.typbasetype = d.oid
	WHERE t.typtype = 'd'
)
SELECT c.nspname::text, c.relname::text, a.attname::text, a.attnum::int8,
	pg_catalog.format_type(a.atttypid, a.atttypmod),
	(CASE WHEN ty.typtype = 'd' THEN ty.typbasetype WHEN ty.typcategory = 'A' THEN ty.typelem ELSE a.atttypid END)::int8,
	(CASE WHEN ty.typtype = 'd' THEN ty.typtypmod ELSE a.atttypmod END)::int8,
	a.attnotnull OR ty.not_null_domain, COALESCE(ty.user_schema, ''), COALESCE(ty.user_name, ''),
	COALESCE(pg_catalog.pg_get_expr(d.adbin, CASE WHEN a.attgenerated = '' THEN 0 ELSE d.adrelid END), ''),
	COALESCE(cd.description, ''),
	a.attidentity::text, a.attgenerated::text, COALESCE(a.attnum = ANY (pk.conkey), false)
FROM (SELECT c.oid, n.nspname, c.relname,
		pg_catalog.row_number() OVER (ORDER BY array_position($1::text[], n.nspname::text), c.relname) AS rank
	FROM pg_catalog.pg_class AS c
	JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
	WHERE c.oid = ANY ($2::pg_catalog.oid[]) AND n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')) AS c
CROSS JOIN LATERAL (SELECT a.attrelid, a.attname, a.attnum, a.atttypid, a.atttypmod, a.attnotnull,
		a.attidentity, a.attgenerated
	FROM pg_catalog.pg_attribute AS a
	WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped OFFSET 0) AS a
JOIN LATERAL (` + columnType + `) AS ty ON true
LEFT JOIN pg_catalog.pg_constraint AS pk ON pk.conrelid = c.oid AND pk.contype = 'p'
LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_description AS cd ON cd.objoid = a.attrelid
	AND cd.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND cd.objsubid = a.attnum
ORDER BY c.rank, a.attnum`

// columnType reads, for the type a.atttypid of a column, what the columns query needs: the
// pg_type fields, whether it is a NOT NULL domain at any depth (not_null_domains is the query's
// own), and the schema and name of the Type entity that it is, or that its array's elements are.
// OFFSET 0 keeps it a subquery parameterized by a.atttypid alone, which the planner memoizes: a
// catalog has many columns but few types.
const columnType = `SELECT ct.typtype, ct.typcategory, ct.typbasetype, ct.typelem, ct.typtypmod,
	ct.typtype = 'd' AND ct.oid IN (SELECT nd.oid FROM not_null_domains AS nd) AS not_null_domain,
	ut.nspname AS user_schema, ut.typname AS user_name
FROM pg_catalog.pg_type AS ct
LEFT JOIN LATERAL (` + userType + `
	CASE WHEN ct.typtype <> 'd' AND ct.typelem <> 0 AND ct.typlen = -1 THEN ct.typelem ELSE ct.oid END OFFSET 0) AS ut ON true
WHERE ct.oid = a.atttypid OFFSET 0`

func columnRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		c                     connectors.Column
		position, oid, typmod int64
		notNull               bool
		expr                  string
		identity, generated   string
	)
	if err := rows.Scan(&c.Schema, &c.Table, &c.Name, &position, &c.DataType, &oid, &typmod,
		&notNull, &c.TypeSchema, &c.TypeName, &expr, &c.Comment, &identity, &generated, &c.PrimaryKey); err != nil {
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
// key order (unnest WITH ORDINALITY over conkey and confkey; each name is looked up by the
// pg_attribute index, not by joining all the table's columns), a foreign key's referenced
// schema, table and columns, and its actions. The constraints PostgreSQL adds on the referencing table
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
CROSS JOIN LATERAL (SELECT ARRAY(SELECT (SELECT a.attname::text FROM pg_catalog.pg_attribute AS a
		WHERE a.attrelid = k.conrelid AND a.attnum = u.attnum)
	FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord) ORDER BY u.ord) AS names) AS kc
LEFT JOIN LATERAL (SELECT ARRAY(SELECT (SELECT a.attname::text FROM pg_catalog.pg_attribute AS a
		WHERE a.attrelid = k.confrelid AND a.attnum = u.attnum)
	FROM unnest(k.confkey) WITH ORDINALITY AS u(attnum, ord) ORDER BY u.ord) AS names) AS fk ON k.contype = 'f'
WHERE c.oid = ANY ($2::pg_catalog.oid[]) AND n.nspname = ANY ($1::text[]) AND k.contype IN ('p', 'u', 'f')
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

// indexesQuery is indexesSQL for the server's version. pg_index.indnullsnotdistinct (NULLS NOT
// DISTINCT) is new in PostgreSQL 15: older servers, and one whose version did not parse, read it
// through to_jsonb of the row (where it is simply absent); that costs about a third of the
// query, so PostgreSQL 15 and later read the column.
func (s *Source) indexesQuery() string {
	nullsNotDistinct := "(pg_catalog.to_jsonb(x) ->> 'indnullsnotdistinct') = 'true'"
	if s.versionNum >= 150000 {
		nullsNotDistinct = "x.indnullsnotdistinct"
	}
	return strings.Replace(indexesSQL, "{nulls_not_distinct}", nullsNotDistinct, 1)
}

// indexesSQL lists indexes (those of partitioned tables too) with their key columns in order
// (a column's name, or the expression pg_get_indexdef gives for an expression column; INCLUDE
// columns are in Definition only), access method, partial-index predicate and the full CREATE
// INDEX statement. pg_get_indexdef is by far the costliest call of an extraction (it opens each
// index), so the statement of a plain index (key columns only, default operator classes,
// collations and ordering, no options) is built in SQL the way pg_get_indexdef writes it, and
// pg_get_indexdef is called only for the others. The tests compare every index's Definition
// with pg_indexes.indexdef.
const indexesSQL = `SELECT n.nspname::text, c.relname::text, ic.relname::text, x.indisunique, x.indisprimary,
	COALESCE(am.amname::text, ''), COALESCE(pg_catalog.pg_get_expr(x.indpred, x.indrelid), ''),
	CASE WHEN x.indexprs IS NOT NULL OR x.indpred IS NOT NULL OR x.indnatts <> x.indnkeyatts
			OR x.indoption::text ~ '[1-9]' OR ic.reloptions IS NOT NULL
			OR {nulls_not_distinct}
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
WHERE c.oid = ANY ($2::pg_catalog.oid[]) AND n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'm', 'p', 'f')
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
