package sqlite

import (
	"context"
	"database/sql"
	"sort"

	"github.com/secure-agent/secure-agent/connectors"
)

// This file holds the kinds beyond tables, columns, keys and indexes: the Database entity, CHECK
// constraints and triggers (see Extract for what each holds).

// firstSchema is the first (in byte order) of known that passes filters, as Schemas lists them:
// the schema whose Extract call writes the Database entity. "" when none passes.
func firstSchema(known []string, filters connectors.Filters) string {
	first := ""
	for _, name := range known {
		if filters.SchemaIncluded(name) && (first == "" || name < first) {
			first = name
		}
	}
	return first
}

// databaseQuery reads the text encoding (one for the main database and every attached one) and
// the main database's size in bytes.
const databaseQuery = `SELECT e.encoding, c.page_count * s.page_size
FROM pragma_encoding AS e, pragma_page_count('main') AS c, pragma_page_size('main') AS s`

// databaseEntity writes the Database entity.
func (x *extraction) databaseEntity(ctx context.Context) error {
	var (
		encoding sql.NullString
		size     sql.NullInt64
	)
	if _, err := each(ctx, x.tx, databaseQuery, nil, []any{&encoding, &size}, func() error { return nil }); err != nil {
		return err
	}
	d := connectors.Database{Name: x.database, Encoding: encoding.String}
	if size.Valid {
		n := size.Int64
		d.SizeBytes = &n
	}
	return x.emit(ctx, d)
}

// checksQuery lists the CREATE TABLE statements of the schemas' ordinary tables that may declare
// a CHECK constraint (those that have the word). It has no parameters.
func checksQuery(schemas []string) string {
	return perSchema(schemas, func(int) string {
		return `SELECT {n} AS sch, m.name AS tbl, m.sql
FROM {schema}.sqlite_schema AS m
WHERE ` + ordinaryTable + ` AND m.sql LIKE '%check%'`
	}, "sch, tbl")
}

// constraints writes the CHECK constraints of the tables that pass the filters, one table's
// statement at a time.
func (x *extraction) constraints(ctx context.Context) error {
	var (
		sch       int
		tbl, stmt string
	)
	_, err := each(ctx, x.tx, checksQuery(x.schemas), nil, []any{&sch, &tbl, &stmt}, func() error {
		schema := x.schemas[sch-1]
		if !x.filters.TableIncluded(schema, tbl) {
			return nil
		}
		for _, c := range checkConstraints(x.database, schema, tbl, stmt) {
			if err := x.emit(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// checkConstraints are the CHECK constraints of the table that the CREATE TABLE statement stmt
// declares, ordered by name, then by position (unnamed ones first).
func checkConstraints(database, schema, table, stmt string) []connectors.Constraint {
	checks := parseCreateTable(stmt).checks
	out := make([]connectors.Constraint, len(checks))
	for i, c := range checks {
		out[i] = connectors.Constraint{
			Database:   database,
			Schema:     schema,
			Table:      table,
			Name:       c.name,
			Type:       connectors.ConstraintCheck,
			Columns:    []string{},
			Expression: c.expression,
			Definition: "CHECK (" + c.expression + ")",
			Validated:  true,
			Position:   i + 1,
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// triggersQuery lists the schemas' triggers with their statements. A trigger's table is looked
// up in its schema (ASCII case-insensitively, as SQLite does) for its catalog spelling: tbl_name
// is the name as the CREATE TRIGGER statement wrote it. It has no parameters.
func triggersQuery(schemas []string) string {
	return perSchema(schemas, func(int) string {
		return `SELECT {n} AS sch, COALESCE(o.name, t.tbl_name) AS tbl, t.name AS trg, t.sql
FROM {schema}.sqlite_schema AS t
LEFT JOIN {schema}.sqlite_schema AS o ON o.type IN ('table', 'view') AND o.name = t.tbl_name COLLATE NOCASE
WHERE t.type = 'trigger'`
	}, "sch, tbl, trg")
}

// triggers writes the triggers of the tables and views that pass the filters.
func (x *extraction) triggers(ctx context.Context) error {
	var (
		sch       int
		tbl, name string
		stmt      sql.NullString
	)
	_, err := each(ctx, x.tx, triggersQuery(x.schemas), nil, []any{&sch, &tbl, &name, &stmt}, func() error {
		schema := x.schemas[sch-1]
		if !x.filters.TableIncluded(schema, tbl) {
			return nil
		}
		return x.emit(ctx, trigger(x.database, schema, tbl, name, stmt.String))
	})
	return err
}

// trigger is the Trigger entity of the trigger name on table, whose CREATE TRIGGER statement is
// stmt.
func trigger(database, schema, table, name, stmt string) connectors.Trigger {
	t := connectors.Trigger{
		Database:   database,
		Schema:     schema,
		Table:      table,
		Name:       name,
		Events:     []string{},
		Level:      "ROW",
		Definition: stmt,
		Enabled:    "enabled",
	}
	if d, ok := parseCreateTrigger(stmt); ok {
		t.Timing, t.Events, t.Condition, t.Body = d.timing, []string{d.event}, d.condition, d.body
	}
	return t
}
