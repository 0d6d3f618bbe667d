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

// Catalog is the name MySQL gives its one catalog (information_schema's TABLE_CATALOG). It is
// the Name of the Database entity and the Database of every other entity.
const Catalog = "def"

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
//   - one Database entity (Name "def", the server's character set and collation), written only
//     by the call whose schemas include the first (in byte order) of the schemas that
//     Schemas(ctx, filters) lists, so that a run that extracts each listed schema once writes
//     the database once;
//   - a Schema entity for each schema, empty ones too, in the order given;
//   - then, one catalog query per entity kind for all the schemas at once: tables (base
//     tables, views with their definitions, partitioned tables and their partitions and
//     subpartitions as entities of type "partition"), columns, keys (primary, unique and
//     foreign, with columns in key order), indexes and routines (functions and procedures).
//
// Entities of each kind come ordered by schema and table name in byte order, then by position.
// Tables (and their columns, keys and indexes) that filters.TableIncluded refuses are skipped,
// and so are MariaDB's sequences (the entity model has no sequence type). A schema that does
// not exist, or that the user cannot see, is InvalidInput.
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
		if err := w.Write(connectors.Schema{Database: Catalog, Name: name, Comment: comments[name]}); err != nil {
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

func (s *Source) database(ctx context.Context) (connectors.Database, error) {
	var charset, collation sql.NullString
	if err := s.db.QueryRowContext(ctx, "SELECT @@character_set_server, @@collation_server").Scan(&charset, &collation); err != nil {
		return connectors.Database{}, classify(ctx, err, false)
	}
	return connectors.Database{Name: Catalog, Encoding: charset.String, Collation: collation.String}, nil
}

// extractChunk runs the catalog queries of one chunk of schemas (sorted, distinct, existing).
func (s *Source) extractChunk(ctx context.Context, c caps, schemas []string, filters connectors.Filters, w connectors.EntityWriter) error {
	x := &chunk{s: s, c: c, filters: filters, w: w, schemas: map[string]bool{},
		skipped: map[tableKey]bool{}, versioned: map[tableKey]bool{}, rowEndVisible: map[tableKey]bool{}}
	for _, name := range schemas {
		x.schemas[name] = true
	}
	x.args = make([]any, len(schemas))
	for i, name := range schemas {
		x.args[i] = name
	}
	x.in = "(" + strings.TrimSuffix(strings.Repeat("?, ", len(schemas)), ", ") + ")"
	for _, step := range []func(context.Context) error{x.tables, x.columns, x.keys, x.indexes, x.routines} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// chunk is the state of one chunk's extraction.
type chunk struct {
	s       *Source
	c       caps
	filters connectors.Filters
	w       connectors.EntityWriter
	schemas map[string]bool // exact names: the IN list also matches names that differ in case
	args    []any           // the schema names, in the order of in's placeholders
	in      string          // "(?, ?, ...)"
	// skipped are the tables whose columns, keys and indexes are not written: sequences and
	// temporary tables. (Filtered-out tables are recomputed: the filters are cheap.)
	skipped map[tableKey]bool
	// versioned are MariaDB's system-versioned tables; rowEndVisible those of them with a
	// declared ROW END column named row_end. MariaDB adds the implicit, invisible row_end
	// column to every primary and unique key of a versioned table in KEY_COLUMN_USAGE (but not
	// in STATISTICS or COLUMNS): keys leave it out, as the table's definition does.
	versioned     map[tableKey]bool
	rowEndVisible map[tableKey]bool
}

type tableKey struct{ schema, table string }

// argsN repeats the schema names n times, for a query with n IN lists.
func (x *chunk) argsN(n int) []any {
	out := make([]any, 0, n*len(x.args))
	for range n {
		out = append(out, x.args...)
	}
	return out
}

// group tracks the table of consecutive rows, deciding once per table whether it is written.
type group struct {
	started       bool
	schema, table string
	include       bool
}

// next reports whether the row (schema, table) starts a new table, and records it.
func (g *group) next(schema, table string) bool {
	if g.started && g.schema == schema && g.table == table {
		return false
	}
	g.started, g.schema, g.table = true, schema, table
	return true
}

// tableIncluded decides, once per table, whether a row of (schema, table) is written.
func (x *chunk) tableIncluded(g *group, schema, table string) bool {
	if g.next(schema, table) {
		g.include = x.schemas[schema] && !x.skipped[tableKey{schema, table}] && x.filters.TableIncluded(schema, table)
	}
	return g.include
}

// binEq is a join condition on two name columns: equal under the column's (case-insensitive)
// collation, so that the server can join by key, and equal byte for byte.
func binEq(a, b string) string {
	return a + " = " + b + " AND CAST(" + a + " AS BINARY) = CAST(" + b + " AS BINARY)"
}

// bin orders by a name column byte for byte, as Go sorts strings.
func bin(col string) string { return "CAST(" + col + " AS BINARY)" }

// tablesQuery lists tables and views with their definitions and partitions: one row per table,
// or one per partition (or subpartition) of a partitioned table. Its three IN lists are the
// schema names.
func (x *chunk) tablesQuery() string {
	return `SELECT t.TABLE_SCHEMA, t.TABLE_NAME, t.TABLE_TYPE, t.ENGINE, t.TABLE_ROWS, t.DATA_LENGTH, t.INDEX_LENGTH,
	t.TABLE_COMMENT, v.VIEW_DEFINITION,
	p.PARTITION_NAME, p.SUBPARTITION_NAME, p.PARTITION_METHOD, p.SUBPARTITION_METHOD, p.PARTITION_EXPRESSION,
	p.SUBPARTITION_EXPRESSION, p.PARTITION_DESCRIPTION, p.TABLE_ROWS, p.DATA_LENGTH, p.INDEX_LENGTH, p.PARTITION_COMMENT
FROM information_schema.TABLES AS t
LEFT JOIN (SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS
	WHERE TABLE_SCHEMA IN ` + x.in + `) AS v
	ON ` + binEq("v.TABLE_SCHEMA", "t.TABLE_SCHEMA") + ` AND ` + binEq("v.TABLE_NAME", "t.TABLE_NAME") + `
LEFT JOIN (SELECT TABLE_SCHEMA, TABLE_NAME, PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, SUBPARTITION_METHOD,
		PARTITION_EXPRESSION, SUBPARTITION_EXPRESSION, PARTITION_DESCRIPTION, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH,
		PARTITION_COMMENT, PARTITION_ORDINAL_POSITION, SUBPARTITION_ORDINAL_POSITION
	FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA IN ` + x.in + ` AND PARTITION_NAME IS NOT NULL) AS p
	ON ` + binEq("p.TABLE_SCHEMA", "t.TABLE_SCHEMA") + ` AND ` + binEq("p.TABLE_NAME", "t.TABLE_NAME") + `
WHERE t.TABLE_SCHEMA IN ` + x.in + `
ORDER BY ` + bin("t.TABLE_SCHEMA") + `, ` + bin("t.TABLE_NAME") + `, p.PARTITION_ORDINAL_POSITION, p.SUBPARTITION_ORDINAL_POSITION`
}

func (x *chunk) tables(ctx context.Context) error {
	var (
		schema, name, typ, engine, comment, definition              sql.NullString
		part, sub, method, subMethod, expr, subExpr, desc, pComment sql.NullString
		rows, dataLen, indexLen, pRows, pDataLen, pIndexLen         sql.NullInt64
	)
	dest := []any{&schema, &name, &typ, &engine, &rows, &dataLen, &indexLen, &comment, &definition,
		&part, &sub, &method, &subMethod, &expr, &subExpr, &desc, &pRows, &pDataLen, &pIndexLen, &pComment}
	var (
		g       group
		include bool
		// A subpartitioned table's partition is written after its subpartitions have been
		// read, with their rows and sizes added up; the subpartitions follow it.
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
		for _, t := range subs {
			if err := x.w.Write(t); err != nil {
				return err
			}
		}
		pending, subs = nil, subs[:0]
		return nil
	}
	err := x.s.stream(ctx, x.tablesQuery(), x.argsN(3), dest, func() error {
		if g.next(schema.String, name.String) {
			if err := flush(); err != nil {
				return err
			}
			include = false
			switch typ.String {
			case "SEQUENCE", "TEMPORARY":
				// MariaDB's sequences (the model has no type for them) and the session's own
				// temporary tables: skipped, with their columns, keys and indexes.
				x.skipped[tableKey{schema.String, name.String}] = true
				return nil
			}
			include = x.schemas[schema.String] && x.filters.TableIncluded(schema.String, name.String)
			if !include {
				return nil
			}
			t := connectors.Table{Database: Catalog, Schema: schema.String, Name: name.String, Engine: engine.String}
			switch typ.String {
			case "VIEW", "SYSTEM VIEW":
				t.Type = connectors.TableTypeView
				t.Definition = definition.String
			default: // BASE TABLE, SYSTEM VERSIONED (MariaDB)
				if typ.String == "SYSTEM VERSIONED" {
					x.versioned[tableKey{schema.String, name.String}] = true
				}
				t.Type = connectors.TableTypeTable
				t.Comment = comment.String
				t.RowCount = ptr(rows)
				t.SizeBytes = sum(dataLen, indexLen)
				switch strings.ToUpper(engine.String) {
				case "FEDERATED", "SPIDER":
					t.Type = connectors.TableTypeForeign
				}
				if part.Valid {
					t.Type = connectors.TableTypePartitioned
					t.PartitionKey = partitionKey(method, expr)
					if sub.Valid {
						t.PartitionKey += " SUBPARTITION BY " + partitionKey(subMethod, subExpr)
					}
				}
			}
			if err := x.w.Write(t); err != nil {
				return err
			}
		}
		if !include || !part.Valid {
			return nil
		}
		p := connectors.Table{
			Database:       Catalog,
			Schema:         schema.String,
			Name:           name.String + partitionSep + part.String,
			Type:           connectors.TableTypePartition,
			Engine:         engine.String,
			Comment:        pComment.String,
			ParentSchema:   schema.String,
			ParentTable:    name.String,
			PartitionBound: partitionBound(method.String, desc),
		}
		if !sub.Valid {
			p.RowCount = ptr(pRows)
			p.SizeBytes = sum(pDataLen, pIndexLen)
			return x.w.Write(p)
		}
		if pending == nil || pending.Name != p.Name {
			if err := flush(); err != nil {
				return err
			}
			p.PartitionKey = partitionKey(subMethod, subExpr)
			pending = &p
		}
		addTo(&pending.RowCount, pRows)
		if pDataLen.Valid || pIndexLen.Valid {
			addTo(&pending.SizeBytes, sql.NullInt64{Int64: pDataLen.Int64 + pIndexLen.Int64, Valid: true})
		}
		subs = append(subs, connectors.Table{
			Database:     Catalog,
			Schema:       schema.String,
			Name:         p.Name + subpartitionSep + sub.String,
			Type:         connectors.TableTypePartition,
			Engine:       engine.String,
			Comment:      pComment.String,
			ParentSchema: schema.String,
			ParentTable:  p.Name,
			RowCount:     ptr(pRows),
			SizeBytes:    sum(pDataLen, pIndexLen),
		})
		return nil
	})
	if err != nil {
		return err
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

// columnsQuery lists every column, with primary-key membership from KEY_COLUMN_USAGE (the
// COLUMN_KEY 'PRI' of information_schema.COLUMNS also marks the first unique NOT NULL key of a
// table without a primary key). Its two IN lists are the schema names.
func (x *chunk) columnsQuery() string {
	return `SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.ORDINAL_POSITION, c.COLUMN_TYPE, c.DATA_TYPE,
	c.CHARACTER_MAXIMUM_LENGTH, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.DATETIME_PRECISION, c.IS_NULLABLE,
	c.COLUMN_DEFAULT, c.EXTRA, c.GENERATION_EXPRESSION, c.COLUMN_COMMENT, k.COLUMN_NAME
FROM information_schema.COLUMNS AS c
LEFT JOIN (SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
	WHERE TABLE_SCHEMA IN ` + x.in + ` AND CONSTRAINT_NAME = 'PRIMARY' AND REFERENCED_TABLE_NAME IS NULL) AS k
	ON ` + binEq("k.TABLE_SCHEMA", "c.TABLE_SCHEMA") + ` AND ` + binEq("k.TABLE_NAME", "c.TABLE_NAME") + ` AND ` + binEq("k.COLUMN_NAME", "c.COLUMN_NAME") + `
WHERE c.TABLE_SCHEMA IN ` + x.in + `
ORDER BY ` + bin("c.TABLE_SCHEMA") + `, ` + bin("c.TABLE_NAME") + `, c.ORDINAL_POSITION`
}

func (x *chunk) columns(ctx context.Context) error {
	var (
		schema, table, name, colType, dataType, nullable, def, extra, genExpr, comment, pk sql.NullString
		pos                                                                                int64
		length, precision, scale, dtPrecision                                              sql.NullInt64
	)
	dest := []any{&schema, &table, &name, &pos, &colType, &dataType, &length, &precision, &scale, &dtPrecision,
		&nullable, &def, &extra, &genExpr, &comment, &pk}
	var g group
	return x.s.stream(ctx, x.columnsQuery(), x.argsN(2), dest, func() error {
		if !x.tableIncluded(&g, schema.String, table.String) {
			return nil
		}
		if name.String == implicitRowEnd && x.versioned[tableKey{schema.String, table.String}] {
			x.rowEndVisible[tableKey{schema.String, table.String}] = true
		}
		col := connectors.Column{
			Database:   Catalog,
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
			PrimaryKey: pk.Valid,
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
// those three kinds: PRIMARY by name, foreign by a referenced table, unique otherwise), with
// REFERENTIAL_CONSTRAINTS' rules for the foreign ones. Its two IN lists are the schema names.
func (x *chunk) keysQuery() string {
	return `SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA,
	k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE
FROM information_schema.KEY_COLUMN_USAGE AS k
LEFT JOIN (SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE
	FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN ` + x.in + `) AS r
	ON ` + binEq("r.CONSTRAINT_SCHEMA", "k.CONSTRAINT_SCHEMA") + ` AND ` + binEq("r.TABLE_NAME", "k.TABLE_NAME") + `
	AND ` + binEq("r.CONSTRAINT_NAME", "k.CONSTRAINT_NAME") + ` AND k.REFERENCED_TABLE_NAME IS NOT NULL
WHERE k.TABLE_SCHEMA IN ` + x.in + `
ORDER BY ` + bin("k.TABLE_SCHEMA") + `, ` + bin("k.TABLE_NAME") + `, ` + bin("k.CONSTRAINT_NAME") + `,
	k.REFERENCED_TABLE_NAME IS NULL, k.ORDINAL_POSITION`
}

func (x *chunk) keys(ctx context.Context) error {
	var schema, table, name, column, refSchema, refTable, refColumn, onUpdate, onDelete sql.NullString
	dest := []any{&schema, &table, &name, &column, &refSchema, &refTable, &refColumn, &onUpdate, &onDelete}
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
	err := x.s.stream(ctx, x.keysQuery(), x.argsN(2), dest, func() error {
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
			cur = &connectors.Key{Database: Catalog, Schema: schema.String, Table: table.String, Name: name.String, Type: typ}
			if typ == connectors.KeyForeign {
				cur.RefSchema, cur.RefTable = refSchema.String, refTable.String
				cur.OnUpdate, cur.OnDelete = onUpdate.String, onDelete.String
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
	err := x.s.stream(ctx, x.indexesQuery(), x.argsN(1), dest, func() error {
		if !x.tableIncluded(&g, schema.String, table.String) {
			return flush()
		}
		if cur == nil || cur.Schema != schema.String || cur.Table != table.String || cur.Name != name.String {
			if err := flush(); err != nil {
				return err
			}
			cur = &connectors.Index{
				Database: Catalog,
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

// routinesQuery lists functions and procedures with their parameters (one row per parameter;
// a function's return value, position 0, is left out). Its two IN lists are the schema names.
func (x *chunk) routinesQuery() string {
	lang := "NULL"
	if x.c.externalLanguage {
		lang = "r.EXTERNAL_LANGUAGE"
	}
	return `SELECT r.ROUTINE_SCHEMA, r.ROUTINE_NAME, r.ROUTINE_TYPE, r.DTD_IDENTIFIER, r.ROUTINE_BODY, ` + lang + `,
	r.ROUTINE_COMMENT, p.PARAMETER_MODE, p.PARAMETER_NAME, p.DTD_IDENTIFIER
FROM information_schema.ROUTINES AS r
LEFT JOIN (SELECT SPECIFIC_SCHEMA, SPECIFIC_NAME, ROUTINE_TYPE, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME,
		DTD_IDENTIFIER
	FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA IN ` + x.in + ` AND ORDINAL_POSITION > 0) AS p
	ON ` + binEq("p.SPECIFIC_SCHEMA", "r.ROUTINE_SCHEMA") + ` AND ` + binEq("p.SPECIFIC_NAME", "r.SPECIFIC_NAME") + `
	AND p.ROUTINE_TYPE = r.ROUTINE_TYPE
WHERE r.ROUTINE_SCHEMA IN ` + x.in + ` AND r.ROUTINE_TYPE IN ('FUNCTION', 'PROCEDURE')
ORDER BY ` + bin("r.ROUTINE_SCHEMA") + `, ` + bin("r.ROUTINE_NAME") + `, r.ROUTINE_TYPE, p.ORDINAL_POSITION`
}

func (x *chunk) routines(ctx context.Context) error {
	var schema, name, typ, returns, body, lang, comment, mode, param, paramType sql.NullString
	dest := []any{&schema, &name, &typ, &returns, &body, &lang, &comment, &mode, &param, &paramType}
	var (
		cur    *connectors.Routine
		params []string
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		r := *cur
		r.Signature = strings.Join(params, ", ")
		cur, params = nil, params[:0]
		return x.w.Write(r)
	}
	err := x.s.stream(ctx, x.routinesQuery(), x.argsN(2), dest, func() error {
		if !x.schemas[schema.String] {
			return flush()
		}
		rtype := strings.ToLower(typ.String)
		if cur == nil || cur.Schema != schema.String || cur.Name != name.String || cur.Type != rtype {
			if err := flush(); err != nil {
				return err
			}
			language := body.String
			if lang.Valid && lang.String != "" {
				language = lang.String
			}
			cur = &connectors.Routine{
				Database: Catalog,
				Schema:   schema.String,
				Name:     name.String,
				Type:     rtype,
				Language: strings.ToLower(language),
				Comment:  comment.String,
			}
			if rtype == "function" {
				cur.ReturnType = returns.String
			}
		}
		if paramType.Valid {
			p := paramName(param.String) + " " + paramType.String
			if m := strings.ToUpper(mode.String); m == "OUT" || m == "INOUT" {
				p = m + " " + p
			}
			params = append(params, p)
		}
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

// paramName quotes a parameter's name with backticks when it is not a plain identifier, so
// that a signature stays readable: "a int, `b c` varchar(10)".
func paramName(name string) string {
	plain := name != ""
	digits := true
	for _, r := range name {
		switch {
		case r >= '0' && r <= '9':
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r == '$':
			digits = false
		default:
			plain = false
		}
	}
	if plain && !digits {
		return name
	}
	return quoteIdent(name)
}
