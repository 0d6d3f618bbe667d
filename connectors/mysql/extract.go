package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// MaxSchemasPerQuery bounds the schema names bound to one catalog query; Extract splits longer
// lists into chunks of this size (each chunk still costs one query per entity kind).
const MaxSchemasPerQuery = 500

// partitionSep and subpartitionSep join a partitioned table's name and a partition's name into
// the partition entity's name, as InnoDB names their files: "orders#p#p2024",
// "orders#p#p2024#sp#p2024sp0".
const (
	partitionSep    = "#p#"
	subpartitionSep = "#sp#"
)

// implicitRowEnd is the name of the invisible column MariaDB adds to a system-versioned table
// that declares no ROW END column of its own.
const implicitRowEnd = "row_end"

// Extract streams the entities of the given schemas (databases) to w:
//
//   - one Database entity (the server's character set and collation), written only by the
//     call whose schemas include the first (in byte order) of the schemas that
//     Schemas(ctx, filters) lists, so that a run that extracts each listed schema once writes
//     the database once;
//   - a Schema entity for each schema, empty ones too, in the order given;
//   - then, one catalog query per entity kind for all the schemas at once, kind by kind in
//     connectors.AllKinds order: tables (base tables, views with their definitions,
//     partitioned tables and their partitions and subpartitions as entities of type
//     "partition"), columns, keys (primary, unique and foreign, with columns in key order),
//     constraints (CHECK constraints, MariaDB's column-level ones too), indexes, sequences
//     (MariaDB's), triggers and routines (functions and procedures). Some kinds take a second,
//     smaller query (see chunk): view definitions and partitions (only when the schemas have
//     views or partitioned tables), primary-key columns, foreign-key rules, the tables of
//     checks (MySQL), sequence parameters (only when there are sequences; see
//     readSequences) and routine parameters.
//
// The Name of the Database entity, and the Database of every entity, is the value of field
// "database" when the input gave it as a literal, else "" (it may be a secret). A routine's
// Owner is its definer's user name (never the host), under the login-role rule (see owner);
// triggers' definers are not written.
//
// Entities of each kind come ordered by schema and table name in byte order, then by position
// or name. Tables (and their columns, keys, constraints, indexes and triggers) that
// filters.TableIncluded refuses are skipped, and so are sequences it refuses; MariaDB's
// sequences are Sequence entities, never tables. A schema that does not exist, or that the
// user cannot see, is InvalidInput. Triggers are visible only with the TRIGGER privilege on
// their tables, routine definitions with SELECT on mysql.proc (MariaDB) or SHOW_ROUTINE
// (MySQL 8), and sequence parameters with SELECT on the sequence (withheld ones are written
// empty).
func (s *Source) Extract(ctx context.Context, schemas []string, filters connectors.Filters, w connectors.EntityWriter) error {
	if len(schemas) == 0 {
		return nil
	}
	c, err := s.capabilities(ctx)
	if err != nil {
		return err
	}
	comments, first, err := s.schemaInfo(ctx, c, filters)
	if err != nil {
		return err
	}
	var wanted []string
	seen := make(map[string]bool, len(schemas))
	missing := 0
	for _, name := range schemas {
		if seen[name] {
			continue
		}
		seen[name] = true
		if _, ok := comments[name]; !ok {
			missing++
			continue
		}
		wanted = append(wanted, name)
	}
	if missing > 0 {
		// The names are not repeated: one could be the value of field "database".
		return &secrets.Error{Kind: secrets.InvalidInput,
			Msg: fmt.Sprintf("mysql: %d of the %d schemas to extract do not exist or are not visible to the user; list the schemas again", missing, len(seen))}
	}
	if first != "" && seen[first] {
		db, err := s.database(ctx)
		if err != nil {
			return err
		}
		if err := w.Write(db); err != nil {
			return err
		}
	}
	for _, name := range wanted {
		if err := ctx.Err(); err != nil {
			return contextError(err)
		}
		if err := w.Write(connectors.Schema{Database: s.dbName, Name: name, Comment: comments[name]}); err != nil {
			return err
		}
	}
	sorted := slices.Clone(wanted)
	sort.Strings(sorted)
	size := MaxSchemasPerQuery
	if s.chunkSize > 0 {
		size = s.chunkSize
	}
	for chunk := range slices.Chunk(sorted, size) {
		if err := s.extractChunk(ctx, c, chunk, filters, w); err != nil {
			return err
		}
	}
	return nil
}

// schemaInfo reads every visible schema with its comment (MariaDB 10.5+ keeps one), and names
// the first (byte order) that passes filters.
func (s *Source) schemaInfo(ctx context.Context, c caps, filters connectors.Filters) (map[string]string, string, error) {
	q := "SELECT SCHEMA_NAME, '' FROM information_schema.SCHEMATA"
	if c.schemaComment {
		q = "SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA"
	}
	comments := map[string]string{}
	first := ""
	var name, comment sql.NullString
	err := s.stream(ctx, q, nil, []any{&name, &comment}, func() error {
		comments[name.String] = comment.String
		if schemaPasses(name.String, filters) && (first == "" || name.String < first) {
			first = name.String
		}
		return nil
	})
	return comments, first, err
}

// database reads the Database entity: the server's character set and collation, the GLOBAL
// values (a session may have others of its own).
func (s *Source) database(ctx context.Context) (connectors.Database, error) {
	var charset, collation sql.NullString
	if err := s.db.QueryRowContext(ctx, "SELECT @@GLOBAL.character_set_server, @@GLOBAL.collation_server").Scan(&charset, &collation); err != nil {
		return connectors.Database{}, classify(ctx, err, false)
	}
	return connectors.Database{Name: s.dbName, Encoding: charset.String, Collation: collation.String}, nil
}

// extractChunk runs the catalog queries of one chunk of schemas (sorted, distinct, existing).
func (s *Source) extractChunk(ctx context.Context, c caps, schemas []string, filters connectors.Filters, w connectors.EntityWriter) error {
	return s.runChunk(ctx, c, schemas, filters, w, false)
}

// probeQueries runs every catalog query Extract can run, for a schema that cannot exist: it
// proves that the user can run them on this server version, without reading anything.
func (s *Source) probeQueries(ctx context.Context, c caps) error {
	return s.runChunk(ctx, c, []string{""}, connectors.Filters{}, discard{}, true)
}

func (s *Source) runChunk(ctx context.Context, c caps, schemas []string, filters connectors.Filters, w connectors.EntityWriter, probe bool) error {
	x := &chunk{s: s, c: c, filters: filters, w: w, probe: probe, schemas: map[string]bool{},
		skipped: map[tableKey]bool{}, versioned: map[tableKey]bool{}, rowEndVisible: map[tableKey]bool{}}
	for _, name := range schemas {
		x.schemas[name] = true
	}
	x.args = make([]any, len(schemas))
	for i, name := range schemas {
		x.args[i] = name
	}
	x.in = placeholders(len(schemas))
	var steps *connectors.Steps
	x.w, steps = connectors.TraceSteps(ctx, "mysql", x.w) // a span per step, with tracing on
	for _, st := range []struct {
		kind string
		run  func(context.Context) error
	}{
		{connectors.KindTables, x.tables}, {connectors.KindColumns, x.columns}, {connectors.KindKeys, x.keys},
		{connectors.KindConstraints, x.constraints}, {connectors.KindIndexes, x.indexes},
		{connectors.KindSequences, x.sequences}, {connectors.KindTriggers, x.triggers},
		{connectors.KindRoutines, x.routines}, {connectors.KindLineage, x.lineage},
	} {
		if err := steps.Run(ctx, st.kind, st.run); err != nil {
			return err
		}
	}
	return nil
}

// placeholders is an IN list of n bound parameters: "(?, ?, ...)".
func placeholders(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

// chunk is the state of one chunk's extraction.
//
// Each catalog query reads one information_schema table and no other: MariaDB materializes
// those as temporary tables without indexes, so a join between two of them is a nested loop
// over both (14 s for COLUMNS and KEY_COLUMN_USAGE of 1,000 tables of 20 columns, where each
// alone takes tens of milliseconds), and a join to PARTITIONS opens every table. What one kind
// needs from another table (primary-key membership for columns, definitions and partitions for
// tables, rules for foreign keys, tables and enforcement for MySQL's checks, parameters for
// routines) is read by a query of its own, before or after the kind's own, and joined here by
// exact name. What is held meanwhile is small: the primary-key column names, the foreign-key
// rules, MySQL's check clauses, the sequences' names, the routines' parameters, and the table
// entities (without definitions) from the first view or partitioned table on.
type chunk struct {
	s       *Source
	c       caps
	filters connectors.Filters
	w       connectors.EntityWriter
	// probe runs the queries that depend on what an earlier one found (view definitions,
	// partitions) even when it found nothing: Preflight's dry run. (Sequence parameters are
	// read from the sequences themselves: without one, there is nothing to run.)
	probe   bool
	schemas map[string]bool // exact names: the IN list also matches names that differ in case
	args    []any           // the schema names, in the order of in's placeholders
	in      string          // "(?, ?, ...)"
	// skipped are the tables whose columns, keys and indexes are not written: sequences and
	// temporary tables. (Filtered-out tables are recomputed: the filters are cheap.)
	skipped map[tableKey]bool
	// listedSequences are the sequences to write (MariaDB), in the tables' order: names and
	// comments; their parameters are read after the indexes (see sequences).
	listedSequences []listedSequence
	// versioned are MariaDB's system-versioned tables; rowEndVisible those of them with a
	// declared ROW END column named row_end. MariaDB adds the implicit, invisible row_end
	// column to every primary and unique key of a versioned table in KEY_COLUMN_USAGE (but not
	// in STATISTICS or COLUMNS): keys leave it out, as the table's definition does.
	versioned     map[tableKey]bool
	rowEndVisible map[tableKey]bool
	// views are the definitions of the views written, in order, for their lineage (written
	// last).
	views []viewDefinition
}

type tableKey struct{ schema, table string }

// compareKeys orders table keys as the catalog queries do (see bin): byte for byte, by schema
// then table.
func compareKeys(a, b tableKey) int {
	if c := strings.Compare(a.schema, b.schema); c != 0 {
		return c
	}
	return strings.Compare(a.table, b.table)
}

// group tracks the table of consecutive rows, deciding once per table whether it is written.
type group struct {
	started       bool
	schema, table string
	include       bool
	seq           int // counts the tables seen
}

// next reports whether the row (schema, table) starts a new table, and records it.
func (g *group) next(schema, table string) bool {
	if g.started && g.schema == schema && g.table == table {
		return false
	}
	g.started, g.schema, g.table = true, schema, table
	g.seq++
	return true
}

// tableIncluded decides, once per table, whether a row of (schema, table) is written.
func (x *chunk) tableIncluded(g *group, schema, table string) bool {
	if g.next(schema, table) {
		g.include = x.schemas[schema] && !x.skipped[tableKey{schema, table}] && x.filters.TableIncluded(schema, table)
	}
	return g.include
}

// bin orders by a name column byte for byte, as Go sorts strings.
func bin(col string) string { return "CAST(" + col + " AS BINARY)" }

// tablesQuery lists tables and views, one row per table, without view definitions or partitions
// (read afterwards, for the views and partitioned tables only: PARTITIONS opens every table it
// lists). Its IN list is the schema names.
func (x *chunk) tablesQuery() string {
	return `SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, TABLE_COMMENT,
	CREATE_OPTIONS
FROM information_schema.TABLES
WHERE TABLE_SCHEMA IN ` + x.in + `
ORDER BY ` + bin("TABLE_SCHEMA") + `, ` + bin("TABLE_NAME")
}

// viewsQuery lists the views' definitions, in the order of tablesQuery. Its IN list is the
// schema names.
func (x *chunk) viewsQuery() string {
	return `SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS
WHERE TABLE_SCHEMA IN ` + x.in + `
ORDER BY ` + bin("TABLE_SCHEMA") + `, ` + bin("TABLE_NAME")
}

// partitionsQuery lists the partitions (and subpartitions) of the tables of nSchemas schemas, in
// order. It names no tables: MariaDB looks a TABLE_NAME IN list up as file names, case-blind,
// and then misses one of two tables whose names differ only in case.
func partitionsQuery(nSchemas int) string {
	return `SELECT TABLE_SCHEMA, TABLE_NAME, PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, SUBPARTITION_METHOD,
	PARTITION_EXPRESSION, SUBPARTITION_EXPRESSION, PARTITION_DESCRIPTION, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH,
	PARTITION_COMMENT
FROM information_schema.PARTITIONS
WHERE TABLE_SCHEMA IN ` + placeholders(nSchemas) + ` AND PARTITION_NAME IS NOT NULL
ORDER BY ` + bin("TABLE_SCHEMA") + `, ` + bin("TABLE_NAME") + `, PARTITION_ORDINAL_POSITION, SUBPARTITION_ORDINAL_POSITION`
}

// heldTable is a table entity held back until its view definition or partitions are read.
type heldTable struct {
	t           connectors.Table
	view        bool // its definition is read from VIEWS
	partitioned bool // its partitions are read from PARTITIONS
}

func (h *heldTable) key() tableKey { return tableKey{h.t.Schema, h.t.Name} }

// partition is one row of partitionsQuery.
type partition struct {
	name, sub, method, subMethod, expr, subExpr, desc, comment sql.NullString
	rows, dataLen, indexLen                                    sql.NullInt64
}

// tables writes tables and views. They stream straight to the writer up to the first view or
// partitioned table (CREATE_OPTIONS "partitioned"); from there on they are held, in order,
// until the partitions of the partitioned ones have been read (one query, for the schemas that
// have any) and while the views' definitions stream in the same order (one query, when there
// is a view).
func (x *chunk) tables(ctx context.Context) error {
	var (
		schema, name, typ, engine, comment, options sql.NullString
		rows, dataLen, indexLen                     sql.NullInt64
	)
	dest := []any{&schema, &name, &typ, &engine, &rows, &dataLen, &indexLen, &comment, &options}
	var (
		held  []heldTable
		views int
	)
	err := x.s.stream(ctx, x.tablesQuery(), x.args, dest, func() error {
		switch typ.String {
		case "SEQUENCE", "TEMPORARY":
			// MariaDB's sequences (Sequence entities, written after the indexes) and the
			// session's own temporary tables: no tables, and no columns, keys or indexes.
			k := tableKey{schema.String, name.String}
			x.skipped[k] = true
			if typ.String == "SEQUENCE" && x.schemas[k.schema] && x.filters.TableIncluded(k.schema, k.table) {
				x.listedSequences = append(x.listedSequences, listedSequence{key: k, comment: comment.String})
			}
			return nil
		}
		if !x.schemas[schema.String] || !x.filters.TableIncluded(schema.String, name.String) {
			return nil
		}
		h := heldTable{t: connectors.Table{Database: x.s.dbName, Schema: schema.String, Name: name.String, Engine: engine.String}}
		switch typ.String {
		case "VIEW", "SYSTEM VIEW":
			h.t.Type = connectors.TableTypeView
			h.view = true
		default: // BASE TABLE, SYSTEM VERSIONED (MariaDB)
			if typ.String == "SYSTEM VERSIONED" {
				x.versioned[tableKey{schema.String, name.String}] = true
			}
			h.t.Type = connectors.TableTypeTable
			h.t.Comment = comment.String
			h.t.RowCount = ptr(rows)
			h.t.SizeBytes = sum(dataLen, indexLen)
			switch strings.ToUpper(engine.String) {
			case "FEDERATED", "SPIDER":
				h.t.Type = connectors.TableTypeForeign
			}
			h.partitioned = strings.Contains(strings.ToLower(options.String), "partitioned")
		}
		if h.view {
			views++
		}
		if len(held) == 0 && !h.view && !h.partitioned {
			return x.w.Write(h.t)
		}
		held = append(held, h)
		return nil
	})
	if err != nil {
		return err
	}
	parts, err := x.partitions(ctx, held)
	if err != nil {
		return err
	}
	next := 0 // held[next:] are not written yet
	write := func() error {
		h := &held[next]
		err := x.writeTable(h.t, parts[h.key()])
		held[next] = heldTable{} // let the collector have it
		next++
		return err
	}
	if views > 0 || x.probe {
		var vschema, vname, definition sql.NullString
		err := x.s.stream(ctx, x.viewsQuery(), x.args, []any{&vschema, &vname, &definition}, func() error {
			k := tableKey{vschema.String, vname.String}
			for next < len(held) && compareKeys(held[next].key(), k) < 0 {
				if err := write(); err != nil {
					return err
				}
			}
			if next < len(held) && held[next].view && held[next].key() == k {
				held[next].t.Definition = definition.String
				x.views = append(x.views, viewDefinition{key: k, definition: definition.String})
				return write()
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for next < len(held) {
		if err := ctx.Err(); err != nil {
			return contextError(err)
		}
		if err := write(); err != nil {
			return err
		}
	}
	return nil
}

// partitions reads the partitions of the held tables that CREATE_OPTIONS calls partitioned, by
// table, in order. PARTITIONS opens every table of the schemas it reads: only the schemas that
// have a partitioned table are read, and only when there is one.
func (x *chunk) partitions(ctx context.Context, held []heldTable) (map[tableKey][]partition, error) {
	want := map[tableKey]bool{}
	var schemas []any
	for i := range held {
		if !held[i].partitioned {
			continue
		}
		k := held[i].key()
		if len(schemas) == 0 || schemas[len(schemas)-1] != k.schema { // held is in schema order
			schemas = append(schemas, k.schema)
		}
		want[k] = true
	}
	if len(schemas) == 0 {
		if !x.probe {
			return nil, nil
		}
		schemas = x.args
	}
	out := make(map[tableKey][]partition, len(want))
	var (
		schema, table sql.NullString
		p             partition
	)
	dest := []any{&schema, &table, &p.name, &p.sub, &p.method, &p.subMethod, &p.expr, &p.subExpr, &p.desc,
		&p.rows, &p.dataLen, &p.indexLen, &p.comment}
	err := x.s.stream(ctx, partitionsQuery(len(schemas)), schemas, dest, func() error {
		if k := (tableKey{schema.String, table.String}); want[k] {
			out[k] = append(out[k], p)
		}
		return nil
	})
	return out, err
}

// writeTable writes a table and, when it is partitioned, its partitions and subpartitions (as
// entities of type "partition"). A subpartitioned table's partition comes with the rows and
// sizes of its subpartitions added up; its subpartitions follow it.
func (x *chunk) writeTable(t connectors.Table, parts []partition) error {
	if len(parts) == 0 {
		return x.w.Write(t)
	}
	first := &parts[0]
	t.Type = connectors.TableTypePartitioned
	t.PartitionKey = partitionKey(first.method, first.expr)
	if first.sub.Valid {
		t.PartitionKey += " SUBPARTITION BY " + partitionKey(first.subMethod, first.subExpr)
	}
	if err := x.w.Write(t); err != nil {
		return err
	}
	var (
		pending *connectors.Table
		subs    []connectors.Table
	)
	flush := func() error {
		if pending == nil {
			return nil
		}
		if err := x.w.Write(*pending); err != nil {
			return err
		}
		for _, s := range subs {
			if err := x.w.Write(s); err != nil {
				return err
			}
		}
		pending, subs = nil, subs[:0]
		return nil
	}
	for i := range parts {
		r := &parts[i]
		p := connectors.Table{
			Database:       x.s.dbName,
			Schema:         t.Schema,
			Name:           t.Name + partitionSep + r.name.String,
			Type:           connectors.TableTypePartition,
			Engine:         t.Engine,
			Comment:        r.comment.String,
			ParentSchema:   t.Schema,
			ParentTable:    t.Name,
			PartitionBound: partitionBound(r.method.String, r.desc),
		}
		if !r.sub.Valid {
			p.RowCount = ptr(r.rows)
			p.SizeBytes = sum(r.dataLen, r.indexLen)
			if err := x.w.Write(p); err != nil {
				return err
			}
			continue
		}
		if pending == nil || pending.Name != p.Name {
			if err := flush(); err != nil {
				return err
			}
			p.PartitionKey = partitionKey(r.subMethod, r.subExpr)
			pending = &p
		}
		addTo(&pending.RowCount, r.rows)
		if r.dataLen.Valid || r.indexLen.Valid {
			addTo(&pending.SizeBytes, sql.NullInt64{Int64: r.dataLen.Int64 + r.indexLen.Int64, Valid: true})
		}
		subs = append(subs, connectors.Table{
			Database:     x.s.dbName,
			Schema:       t.Schema,
			Name:         p.Name + subpartitionSep + r.sub.String,
			Type:         connectors.TableTypePartition,
			Engine:       t.Engine,
			Comment:      r.comment.String,
			ParentSchema: t.Schema,
			ParentTable:  p.Name,
			RowCount:     ptr(r.rows),
			SizeBytes:    sum(r.dataLen, r.indexLen),
		})
	}
	return flush()
}

// partitionKey formats a partitioning clause: "RANGE (`k`)", "LIST COLUMNS (`a`,`b`)",
// "SYSTEM_TIME".
func partitionKey(method, expr sql.NullString) string {
	if !expr.Valid || expr.String == "" && !strings.HasPrefix(method.String, "KEY") && !strings.HasPrefix(method.String, "LINEAR KEY") {
		return method.String
	}
	return method.String + " (" + expr.String + ")"
}

// partitionBound formats a partition's bound from its method and PARTITION_DESCRIPTION:
// "VALUES LESS THAN (10)", "VALUES LESS THAN MAXVALUE", "VALUES IN (1,2)".
func partitionBound(method string, desc sql.NullString) string {
	if !desc.Valid || desc.String == "" {
		return ""
	}
	switch {
	case strings.HasPrefix(method, "RANGE"):
		if desc.String == "MAXVALUE" {
			return "VALUES LESS THAN MAXVALUE"
		}
		return "VALUES LESS THAN (" + desc.String + ")"
	case strings.HasPrefix(method, "LIST"):
		return "VALUES IN (" + desc.String + ")"
	}
	return desc.String
}

// primaryKeyQuery lists the primary keys' columns from KEY_COLUMN_USAGE (the COLUMN_KEY 'PRI'
// of information_schema.COLUMNS also marks the first unique NOT NULL key of a table without a
// primary key). Its IN list is the schema names.
func (x *chunk) primaryKeyQuery() string {
	return `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA IN ` + x.in + ` AND CONSTRAINT_NAME = 'PRIMARY' AND REFERENCED_TABLE_NAME IS NULL`
}

// primaryKeys reads the primary-key columns of the chunk's tables (those that are written), by
// table: a few names per table, where the columns would be many.
func (x *chunk) primaryKeys(ctx context.Context) (map[tableKey][]string, error) {
	var schema, table, column sql.NullString
	var g group
	out := map[tableKey][]string{}
	err := x.s.stream(ctx, x.primaryKeyQuery(), x.args, []any{&schema, &table, &column}, func() error {
		if x.tableIncluded(&g, schema.String, table.String) {
			k := tableKey{schema.String, table.String}
			out[k] = append(out[k], column.String)
		}
		return nil
	})
	return out, err
}

// columnsQuery lists every column. Its IN list is the schema names.
func (x *chunk) columnsQuery() string {
	return `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, DATA_TYPE,
	CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, IS_NULLABLE,
	COLUMN_DEFAULT, EXTRA, GENERATION_EXPRESSION, COLUMN_COMMENT
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA IN ` + x.in + `
ORDER BY ` + bin("TABLE_SCHEMA") + `, ` + bin("TABLE_NAME") + `, ORDINAL_POSITION`
}

func (x *chunk) columns(ctx context.Context) error {
	pks, err := x.primaryKeys(ctx)
	if err != nil {
		return err
	}
	var (
		schema, table, name, colType, dataType, nullable, def, extra, genExpr, comment sql.NullString
		pos                                                                            int64
		length, precision, scale, dtPrecision                                          sql.NullInt64
	)
	dest := []any{&schema, &table, &name, &pos, &colType, &dataType, &length, &precision, &scale, &dtPrecision,
		&nullable, &def, &extra, &genExpr, &comment}
	var (
		g     group
		pk    []string // the current table's primary-key columns
		pkFor int      // the g.seq of the table pk belongs to
	)
	return x.s.stream(ctx, x.columnsQuery(), x.args, dest, func() error {
		if !x.tableIncluded(&g, schema.String, table.String) {
			return nil
		}
		if pkFor != g.seq {
			pkFor, pk = g.seq, pks[tableKey{schema.String, table.String}]
		}
		if name.String == implicitRowEnd && x.versioned[tableKey{schema.String, table.String}] {
			x.rowEndVisible[tableKey{schema.String, table.String}] = true
		}
		col := connectors.Column{
			Database:   x.s.dbName,
			Schema:     schema.String,
			Table:      table.String,
			Name:       name.String,
			Position:   int(pos),
			DataType:   colType.String,
			Length:     ptr(length),
			Precision:  ptr(precision),
			Scale:      ptr(scale),
			Nullable:   nullable.String == "YES",
			Default:    x.columnDefault(def, dataType.String, extra.String),
			Comment:    comment.String,
			PrimaryKey: slices.Contains(pk, name.String),
		}
		if col.Precision == nil && dtPrecision.Valid {
			switch strings.ToLower(dataType.String) {
			case "datetime", "timestamp", "time":
				col.Precision = ptr(dtPrecision)
			}
		}
		ex := strings.ToUpper(extra.String)
		if strings.Contains(ex, "AUTO_INCREMENT") {
			col.Identity = "auto_increment"
		}
		if genExpr.String != "" && (strings.Contains(ex, "GENERATED") || strings.Contains(ex, "PERSISTENT")) &&
			!strings.Contains(ex, "DEFAULT_GENERATED") {
			col.Generated = genExpr.String
			col.GeneratedKind = "virtual"
			if strings.Contains(ex, "STORED") || strings.Contains(ex, "PERSISTENT") {
				col.GeneratedKind = "stored"
			}
		}
		return x.w.Write(col)
	})
}

// columnDefault gives a column's default as an SQL expression, the same on both engines:
// string literals quoted ('it”s'), numbers and expressions (CURRENT_TIMESTAMP, (rand()))
// as they are, and "" for no default or a default of NULL.
//
// MariaDB (10.2.7+) already reports an expression, and 'NULL' for a NULL default. MySQL 8
// reports a literal's bare value and an expression's text, telling them apart with
// DEFAULT_GENERATED in EXTRA; its literals are quoted here.
func (x *chunk) columnDefault(def sql.NullString, dataType, extra string) string {
	if !def.Valid {
		return ""
	}
	if x.c.mariaDB {
		if def.String == "NULL" {
			return ""
		}
		return def.String
	}
	if strings.Contains(strings.ToUpper(extra), "DEFAULT_GENERATED") {
		if strings.EqualFold(def.String, "CURRENT_TIMESTAMP") || strings.HasPrefix(strings.ToUpper(def.String), "CURRENT_TIMESTAMP(") {
			return def.String
		}
		return "(" + def.String + ")"
	}
	switch strings.ToLower(dataType) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double", "real":
		return def.String
	case "bit":
		if strings.HasPrefix(def.String, "b'") {
			return def.String
		}
	}
	return quoteString(def.String)
}

// quoteString quotes a string literal the way MariaDB's COLUMN_DEFAULT does.
func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `''`, "\n", `\n`, "\r", `\r`, "\x00", `\0`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// keysQuery lists primary, unique and foreign keys from KEY_COLUMN_USAGE (which holds exactly
// those three kinds: PRIMARY by name, foreign by a referenced table, unique otherwise). Its IN
// list is the schema names.
func (x *chunk) keysQuery() string {
	return `SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA,
	REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME, CONSTRAINT_SCHEMA
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA IN ` + x.in + `
ORDER BY ` + bin("TABLE_SCHEMA") + `, ` + bin("TABLE_NAME") + `, ` + bin("CONSTRAINT_NAME") + `,
	REFERENCED_TABLE_NAME IS NULL, ORDINAL_POSITION`
}

// rulesQuery lists the foreign keys' ON UPDATE and ON DELETE rules from
// REFERENTIAL_CONSTRAINTS. Its IN list is the schema names.
func (x *chunk) rulesQuery() string {
	return `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE
FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN ` + x.in
}

// constraintKey names a constraint: its schema, table and name.
type constraintKey struct{ schema, table, name string }

// fkRules are a foreign key's ON UPDATE and ON DELETE rules.
type fkRules struct{ onUpdate, onDelete string }

// foreignKeyRules reads the rules of the chunk's foreign keys, by constraint.
func (x *chunk) foreignKeyRules(ctx context.Context) (map[constraintKey]fkRules, error) {
	var schema, table, name, onUpdate, onDelete sql.NullString
	var g group
	out := map[constraintKey]fkRules{}
	err := x.s.stream(ctx, x.rulesQuery(), x.args, []any{&schema, &table, &name, &onUpdate, &onDelete}, func() error {
		if x.tableIncluded(&g, schema.String, table.String) {
			out[constraintKey{schema.String, table.String, name.String}] = fkRules{onUpdate.String, onDelete.String}
		}
		return nil
	})
	return out, err
}

func (x *chunk) keys(ctx context.Context) error {
	rules, err := x.foreignKeyRules(ctx)
	if err != nil {
		return err
	}
	var schema, table, name, column, refSchema, refTable, refColumn, constraintSchema sql.NullString
	dest := []any{&schema, &table, &name, &column, &refSchema, &refTable, &refColumn, &constraintSchema}
	var (
		g   group
		cur *connectors.Key
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		k := *cur
		cur = nil
		return x.w.Write(k)
	}
	err = x.s.stream(ctx, x.keysQuery(), x.args, dest, func() error {
		if !x.tableIncluded(&g, schema.String, table.String) {
			return flush()
		}
		typ := connectors.KeyUnique
		switch {
		case refTable.Valid:
			typ = connectors.KeyForeign
		case name.String == "PRIMARY":
			typ = connectors.KeyPrimary
		}
		if cur == nil || cur.Schema != schema.String || cur.Table != table.String || cur.Name != name.String || cur.Type != typ {
			if err := flush(); err != nil {
				return err
			}
			cur = &connectors.Key{Database: x.s.dbName, Schema: schema.String, Table: table.String, Name: name.String, Type: typ}
			if typ == connectors.KeyForeign {
				cur.RefSchema, cur.RefTable = refSchema.String, refTable.String
				r := rules[constraintKey{constraintSchema.String, table.String, name.String}]
				cur.OnUpdate, cur.OnDelete = r.onUpdate, r.onDelete
			}
		}
		if typ != connectors.KeyForeign && column.String == implicitRowEnd {
			if tk := (tableKey{schema.String, table.String}); x.versioned[tk] && !x.rowEndVisible[tk] {
				return nil
			}
		}
		cur.Columns = append(cur.Columns, column.String)
		if typ == connectors.KeyForeign {
			cur.RefColumns = append(cur.RefColumns, refColumn.String)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// indexesQuery lists every index's key parts from STATISTICS. Its IN list is the schema names.
func (x *chunk) indexesQuery() string {
	expr := "NULL"
	if x.c.statExpression {
		expr = "s.EXPRESSION"
	}
	return `SELECT s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME, s.NON_UNIQUE, s.COLUMN_NAME, s.SUB_PART, s.COLLATION,
	s.INDEX_TYPE, ` + expr + `
FROM information_schema.STATISTICS AS s
WHERE s.TABLE_SCHEMA IN ` + x.in + `
ORDER BY ` + bin("s.TABLE_SCHEMA") + `, ` + bin("s.TABLE_NAME") + `, ` + bin("s.INDEX_NAME") + `, s.SEQ_IN_INDEX`
}

func (x *chunk) indexes(ctx context.Context) error {
	var (
		schema, table, name, column, collation, method, expr sql.NullString
		nonUnique, subPart                                   sql.NullInt64
	)
	dest := []any{&schema, &table, &name, &nonUnique, &column, &subPart, &collation, &method, &expr}
	var (
		g   group
		cur *connectors.Index
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		ix := *cur
		cur = nil
		return x.w.Write(ix)
	}
	err := x.s.stream(ctx, x.indexesQuery(), x.args, dest, func() error {
		if !x.tableIncluded(&g, schema.String, table.String) {
			return flush()
		}
		if cur == nil || cur.Schema != schema.String || cur.Table != table.String || cur.Name != name.String {
			if err := flush(); err != nil {
				return err
			}
			cur = &connectors.Index{
				Database: x.s.dbName,
				Schema:   schema.String,
				Table:    table.String,
				Name:     name.String,
				Unique:   nonUnique.Valid && nonUnique.Int64 == 0,
				Primary:  name.String == "PRIMARY",
				Method:   strings.ToLower(method.String),
				Columns:  []string{},
			}
		}
		part := column.String
		if !column.Valid && expr.Valid {
			part = "(" + expr.String + ")"
		}
		if subPart.Valid {
			part += fmt.Sprintf("(%d)", subPart.Int64)
		}
		if collation.String == "D" {
			part += " DESC"
		}
		cur.Columns = append(cur.Columns, part)
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// stream runs q and hands each row, scanned into dest, to fn, checking ctx between rows.
// Database errors are classified; fn's errors (the writer's) are returned as they are.
func (s *Source) stream(ctx context.Context, q string, args []any, dest []any, fn func() error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return classify(ctx, err, false)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return contextError(err)
		}
		if err := rows.Scan(dest...); err != nil {
			return classify(ctx, err, false)
		}
		if err := fn(); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return classify(ctx, err, false)
	}
	if err := ctx.Err(); err != nil {
		return contextError(err)
	}
	return nil
}

func ptr(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	n := v.Int64
	return &n
}

// sum is a+b when either is known.
func sum(a, b sql.NullInt64) *int64 {
	if !a.Valid && !b.Valid {
		return nil
	}
	n := a.Int64 + b.Int64
	return &n
}

// addTo adds v to *p, starting from zero.
func addTo(p **int64, v sql.NullInt64) {
	if !v.Valid {
		return
	}
	if *p == nil {
		*p = new(int64)
	}
	**p += v.Int64
}
