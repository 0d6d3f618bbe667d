package mysql

import (
	"context"
	"database/sql"

	"github.com/secure-agent/secure-agent/connectors"
)

// triggersQuery lists the triggers, by table and name. Its IN list is the schema names.
//
// DEFINER is not read: it is an account (user and host) the entity model has no field for,
// and it may be the login user.
func (x *chunk) triggersQuery() string {
	return `SELECT TRIGGER_SCHEMA, EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION,
	ACTION_ORIENTATION, ACTION_ORDER, ACTION_STATEMENT
FROM information_schema.TRIGGERS
WHERE TRIGGER_SCHEMA IN ` + x.in + `
ORDER BY ` + bin("TRIGGER_SCHEMA") + `, ` + bin("EVENT_OBJECT_TABLE") + `, ` + bin("TRIGGER_NAME")
}

// triggers writes the triggers of the chunk's tables. A MySQL trigger has one event, runs for
// each row and cannot be disabled; Order is its ACTION_ORDER among the triggers of its table
// with the same timing and event (FOLLOWS, PRECEDES). Definition is assembled as SHOW CREATE
// TRIGGER shows it, without the DEFINER clause and with both names quoted:
// "CREATE TRIGGER `name` BEFORE INSERT ON `table` FOR EACH ROW <body>".
//
// The server lists only the triggers of tables on which the user has the TRIGGER privilege.
func (x *chunk) triggers(ctx context.Context) error {
	var schema, table, name, timing, event, level, body sql.NullString
	var order sql.NullInt64
	dest := []any{&schema, &table, &name, &timing, &event, &level, &order, &body}
	var g group
	return x.s.stream(ctx, x.triggersQuery(), x.args, dest, func() error {
		if !x.tableIncluded(&g, schema.String, table.String) {
			return nil
		}
		return x.w.Write(connectors.Trigger{
			Database:   x.s.dbName,
			Schema:     schema.String,
			Table:      table.String,
			Name:       name.String,
			Timing:     timing.String,
			Events:     []string{event.String},
			Level:      level.String,
			Body:       body.String,
			Definition: triggerDefinition(name.String, timing.String, event.String, table.String, body.String),
			Enabled:    "enabled",
			Order:      int(order.Int64),
		})
	})
}

// triggerDefinition assembles a trigger's CREATE TRIGGER statement.
func triggerDefinition(name, timing, event, table, body string) string {
	return "CREATE TRIGGER " + quoteIdent(name) + " " + timing + " " + event + " ON " + quoteIdent(table) +
		" FOR EACH ROW " + body
}
