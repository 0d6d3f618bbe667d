package mysql

import (
	"context"
	"database/sql"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
)

// checksQuery lists MariaDB's CHECK constraints, table-level and column-level (CHECK_CONSTRAINTS
// names their table there), in order. Its IN list is the schema names.
func (x *chunk) checksQuery() string {
	return `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE
FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA IN ` + x.in + `
ORDER BY ` + bin("CONSTRAINT_SCHEMA") + `, ` + bin("TABLE_NAME") + `, ` + bin("CONSTRAINT_NAME")
}

// checkClausesQuery lists the clauses of MySQL's CHECK constraints, whose names are unique per
// schema (CHECK_CONSTRAINTS does not name the table there). Its IN list is the schema names.
func (x *chunk) checkClausesQuery() string {
	return `SELECT CONSTRAINT_SCHEMA, CONSTRAINT_NAME, CHECK_CLAUSE
FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA IN ` + x.in
}

// checkTablesQuery lists MySQL's CHECK constraints by table from TABLE_CONSTRAINTS, in order,
// with ENFORCED where the server has it. Its IN list is the schema names.
func (x *chunk) checkTablesQuery() string {
	enforced := "'YES'"
	if x.c.checkEnforced {
		enforced = "ENFORCED"
	}
	return `SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, ` + enforced + `
FROM information_schema.TABLE_CONSTRAINTS
WHERE TABLE_SCHEMA IN ` + x.in + ` AND CONSTRAINT_TYPE = 'CHECK'
ORDER BY ` + bin("TABLE_SCHEMA") + `, ` + bin("TABLE_NAME") + `, ` + bin("CONSTRAINT_NAME")
}

// constraints writes the CHECK constraints of the chunk's tables: Expression is the clause as
// the server deparses it, Definition "CHECK (" + clause + ")", Columns empty (the engines do
// not record them). Validated is false only for MySQL's NOT ENFORCED checks. A server without
// CHECK_CONSTRAINTS (MySQL before 8.0.16) has none to write.
func (x *chunk) constraints(ctx context.Context) error {
	switch {
	case !x.c.checks:
		return nil
	case x.c.checkTable:
		return x.tableChecks(ctx)
	}
	return x.schemaChecks(ctx)
}

// check builds a constraint entity.
func (x *chunk) check(schema, table, name, clause string, validated bool) connectors.Constraint {
	return connectors.Constraint{
		Database:   x.s.dbName,
		Schema:     schema,
		Table:      table,
		Name:       name,
		Type:       connectors.ConstraintCheck,
		Columns:    []string{},
		Expression: clause,
		Definition: "CHECK (" + clause + ")",
		Validated:  validated,
	}
}

// tableChecks streams MariaDB's checks, one query.
func (x *chunk) tableChecks(ctx context.Context) error {
	var schema, table, name, clause sql.NullString
	var g group
	return x.s.stream(ctx, x.checksQuery(), x.args, []any{&schema, &table, &name, &clause}, func() error {
		if !x.tableIncluded(&g, schema.String, table.String) {
			return nil
		}
		return x.w.Write(x.check(schema.String, table.String, name.String, clause.String, true))
	})
}

// checkName names a check as MySQL does: unique in its schema.
type checkName struct{ schema, name string }

// schemaChecks reads MySQL's check clauses by name (held: a few short expressions), then
// streams the checks by table from TABLE_CONSTRAINTS.
func (x *chunk) schemaChecks(ctx context.Context) error {
	var schema, table, name, clause, enforced sql.NullString
	clauses := map[checkName]string{}
	err := x.s.stream(ctx, x.checkClausesQuery(), x.args, []any{&schema, &name, &clause}, func() error {
		if x.schemas[schema.String] {
			clauses[checkName{schema.String, name.String}] = clause.String
		}
		return nil
	})
	if err != nil {
		return err
	}
	var g group
	return x.s.stream(ctx, x.checkTablesQuery(), x.args, []any{&schema, &table, &name, &enforced}, func() error {
		if !x.tableIncluded(&g, schema.String, table.String) {
			return nil
		}
		c, ok := clauses[checkName{schema.String, name.String}]
		if !ok {
			return nil // dropped between the two queries
		}
		return x.w.Write(x.check(schema.String, table.String, name.String, c, !strings.EqualFold(enforced.String, "NO")))
	})
}
