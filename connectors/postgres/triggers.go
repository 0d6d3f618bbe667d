package postgres

import (
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
)

// triggersQuery lists the triggers of relations, not the internal ones (tgisinternal: those
// that enforce foreign keys), with the function each executes, its full CREATE TRIGGER
// statement (pg_get_triggerdef, which holds the WHEN clause: see triggerCondition) and
// tgenabled.
const triggersQuery = `SELECT n.nspname::text, c.relname::text, t.tgname::text, t.tgtype::int8,
	t.tgqual IS NOT NULL, pg_catalog.pg_get_triggerdef(t.oid), fn.nspname::text, p.proname::text,
	t.tgenabled::text, COALESCE(td.description, '')
FROM pg_catalog.pg_trigger AS t
JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_namespace AS fn ON fn.oid = p.pronamespace
LEFT JOIN pg_catalog.pg_description AS td ON td.objoid = t.oid
	AND td.classoid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND td.objsubid = 0
WHERE c.oid = ANY ($2::pg_catalog.oid[]) AND n.nspname = ANY ($1::text[]) AND NOT t.tgisinternal
ORDER BY array_position($1::text[], n.nspname::text), c.relname, t.tgname`

// Bits of pg_trigger.tgtype (PostgreSQL's TRIGGER_TYPE_*).
const (
	tgRow      = 1 << 0
	tgBefore   = 1 << 1
	tgInsert   = 1 << 2
	tgDelete   = 1 << 3
	tgUpdate   = 1 << 4
	tgTruncate = 1 << 5
	tgInstead  = 1 << 6
)

func triggerRow(rows pgx.Rows) (connectors.Entity, error) {
	var (
		t       connectors.Trigger
		tgtype  int64
		hasWhen bool
		enabled string
	)
	if err := rows.Scan(&t.Schema, &t.Table, &t.Name, &tgtype, &hasWhen, &t.Definition, &t.FunctionSchema,
		&t.Function, &enabled, &t.Comment); err != nil {
		return nil, err
	}
	switch {
	case tgtype&tgInstead != 0:
		t.Timing = "INSTEAD OF"
	case tgtype&tgBefore != 0:
		t.Timing = "BEFORE"
	default:
		t.Timing = "AFTER"
	}
	t.Events = []string{}
	for _, ev := range []struct {
		bit  int64
		name string
	}{{tgInsert, "INSERT"}, {tgUpdate, "UPDATE"}, {tgDelete, "DELETE"}, {tgTruncate, "TRUNCATE"}} {
		if tgtype&ev.bit != 0 {
			t.Events = append(t.Events, ev.name)
		}
	}
	t.Level = "STATEMENT"
	if tgtype&tgRow != 0 {
		t.Level = "ROW"
	}
	if hasWhen {
		t.Condition = triggerCondition(t.Definition)
	}
	t.Enabled = triggerEnabled(enabled)
	return t, nil
}

// triggerEnabled names a tgenabled code: O fires in the origin and local session replication
// roles (enabled), D never (disabled), R in the replica role only, A always.
func triggerEnabled(code string) string {
	switch code {
	case "D":
		return "disabled"
	case "R":
		return "replica"
	case "A":
		return "always"
	}
	return "enabled"
}

// triggerCondition returns the expression of the WHEN clause in a pg_get_triggerdef statement
// (what is between "WHEN (" and its closing parenthesis), or "" if it has none. Everything
// before the clause that is not a keyword is a quoted identifier (WHEN is reserved, so no name
// prints as a bare WHEN) or a string literal, and the statement comes from the server's deparser
// with standard_conforming_strings on: so the first WHEN outside quotes starts the clause, and
// skipping quoted text finds its closing parenthesis.
func triggerCondition(def string) string {
	start, depth := -1, 0
	for i := 0; i < len(def); i++ {
		switch c := def[i]; {
		case c == '"' || c == '\'':
			if i = closingQuote(def, i); i < 0 {
				return ""
			}
		case start < 0:
			if strings.HasPrefix(def[i:], "WHEN (") && i > 0 && def[i-1] == ' ' {
				start, depth = i+len("WHEN ("), 1
				i = start - 1
			}
		case c == '(':
			depth++
		case c == ')':
			if depth--; depth == 0 {
				return def[start:i]
			}
		}
	}
	return ""
}

// closingQuote returns the index of the quote that closes the one at s[i] (a doubled quote
// inside stands for itself), or -1 if there is none.
func closingQuote(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if s[j] != q {
			continue
		}
		if j+1 < len(s) && s[j+1] == q {
			j++
			continue
		}
		return j
	}
	return -1
}
