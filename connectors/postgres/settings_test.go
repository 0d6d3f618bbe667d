package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
)

// settingsCatalog is printed differently under different session settings wherever the server
// deparses: defaults of every date, time, interval, float, bytea, money and string type, checks
// and partition bounds with such constants, a view, a trigger's WHEN clause, a partial index,
// routine argument defaults and an SQL-standard body, naming objects of a schema that needs
// quoting and of schema public (on the default search_path, not on the odd one).
var settingsCatalog = []string{
	`CREATE TYPE public.level AS ENUM ('low', 'high')`,
	`CREATE TABLE public.readings (lvl public.level DEFAULT 'low', pi float8 DEFAULT '3.141592653589793'::float8)`,
	`CREATE VIEW public.high AS SELECT lvl, pi * 2 AS tau FROM public.readings WHERE lvl = 'high'`,
	`CREATE SCHEMA "Dét Schema"`,
	`CREATE TYPE "Dét Schema".color AS ENUM ('red', 'green')`,
	`CREATE DOMAIN "Dét Schema".amount AS numeric(12,2) DEFAULT 0.5 CHECK (VALUE >= 0)`,
	`CREATE DOMAIN "Dét Schema".stamp AS timestamptz DEFAULT '2024-03-01 12:00:00+00' CHECK (VALUE > '2000-01-01 00:00:00+00')`,
	`CREATE TABLE "Dét Schema".events (
		id bigint PRIMARY KEY,
		color "Dét Schema".color DEFAULT 'red',
		at timestamptz DEFAULT '2024-01-02 03:04:05.678+00',
		day date DEFAULT '2024-12-31',
		local_ts timestamp DEFAULT '2024-01-02 03:04:05',
		span interval DEFAULT '1 day 02:03:04.5',
		ratio float8 DEFAULT 0.1,
		small real DEFAULT 1.1,
		raw bytea DEFAULT '\xdeadbeef',
		price money DEFAULT 12.34,
		note text DEFAULT E'back\\slash',
		amt "Dét Schema".amount,
		stamp "Dét Schema".stamp,
		CONSTRAINT at_recent CHECK (at > '2000-01-01 00:00:00+00'),
		CONSTRAINT span_short CHECK (span < '10 years 3 mons'),
		CONSTRAINT note_text CHECK (note <> E'it''s\\n'))`,
	`CREATE INDEX events_late ON "Dét Schema".events (at) WHERE day > '2024-06-01' AND ratio > 0.25`,
	`CREATE TABLE "Dét Schema".log (at timestamptz NOT NULL, msg text) PARTITION BY RANGE (at)`,
	`CREATE TABLE "Dét Schema".log_2024 PARTITION OF "Dét Schema".log
		FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2025-01-01 00:00:00+00')`,
	`CREATE VIEW "Dét Schema".recent AS SELECT id, color, at + interval '1 hour 30 minutes' AS later, span * 2 AS span2,
		ratio * 0.3 AS r, day - 1 AS before, raw || '\x00'::bytea AS raw2
		FROM "Dét Schema".events WHERE at > '2024-01-01 00:00:00+00' AND color = 'green' AND note LIKE E'%\\%'`,
	`CREATE FUNCTION "Dét Schema".trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$`,
	`CREATE TRIGGER late BEFORE INSERT ON "Dét Schema".events FOR EACH ROW
		WHEN (NEW.at > '2024-06-01 00:00:00+00' AND NEW.span > '1 hour') EXECUTE FUNCTION "Dét Schema".trg()`,
	`CREATE FUNCTION "Dét Schema".later(x timestamptz DEFAULT '2024-01-01 00:00:00+00', c "Dét Schema".color DEFAULT 'red',
		f float8 DEFAULT 0.1) RETURNS timestamptz LANGUAGE sql IMMUTABLE RETURN x + interval '1 day 2 hours'`,
}

// oddSettings are the login role's own settings in the second extraction: every one changes
// how the server prints names or values, or how it sends text.
var oddSettings = []string{
	`search_path = ''`,
	`quote_all_identifiers = on`,
	`DateStyle = 'SQL, DMY'`,
	`IntervalStyle = 'sql_standard'`,
	`TimeZone = 'Asia/Kathmandu'`,
	`extra_float_digits = -10`,
	`bytea_output = 'escape'`,
	`standard_conforming_strings = off`,
	`client_encoding = 'LATIN1'`,
	`jit = on`,
}

// TestSettingsDoNotChangeOutput extracts the same catalog twice, once with the login role's
// default settings and once with oddSettings, and requires byte-identical entities. It first
// shows that the odd settings are in force and change what the server's deparser prints in the
// session, so that identical output proves the pinning.
func TestSettingsDoNotChangeOutput(t *testing.T) {
	t.Parallel()
	db := newTestDB(t, settingsCatalog...)
	extract := func() (entities []string, deparsed, dateStyle string) {
		s := db.open(t)
		deparsed, dateStyle = sessionDeparse(t, s)
		for _, e := range extractEach(t, s, connectors.Filters{}).entities {
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			entities = append(entities, e.Kind()+" "+string(b))
		}
		return entities, deparsed, dateStyle
	}
	plain, plainDeparsed, _ := extract()
	for _, setting := range oddSettings {
		if _, err := db.admin.Exec(context.Background(), "ALTER ROLE "+quoteIdent(db.role)+" SET "+setting); err != nil {
			t.Fatalf("ALTER ROLE SET %s: %v", setting, err)
		}
	}
	odd, oddDeparsed, dateStyle := extract()
	if dateStyle != "SQL, DMY" {
		t.Fatalf("the login role's DateStyle is %q in the second session: its settings are not in force", dateStyle)
	}
	if plainDeparsed == oddDeparsed {
		t.Fatalf("the session settings do not change what the server prints, so this test proves nothing:\n%s", plainDeparsed)
	}
	t.Logf("outside the extraction, the same definitions print as\n%s\nand\n%s", plainDeparsed, oddDeparsed)

	if len(plain) < 30 {
		t.Fatalf("only %d entities", len(plain))
	}
	for i := range max(len(plain), len(odd)) {
		var p, o string
		if i < len(plain) {
			p = plain[i]
		}
		if i < len(odd) {
			o = odd[i]
		}
		if p != o {
			t.Errorf("entity %d differs under the role's own settings:\ndefault %s\n    odd %s", i, p, o)
		}
	}
	// The pinned search_path qualifies user-defined names, always the same way.
	joined := strings.Join(plain, "\n")
	for _, want := range []string{`"dataType":"\"Dét Schema\".color"`, `FROM \"Dét Schema\".events`,
		`"dataType":"public.level"`, `FROM public.readings`, `'2024-01-02 03:04:05.678+00'::timestamp with time zone`} {
		if !strings.Contains(joined, want) {
			t.Errorf("no entity holds %s", want)
		}
	}
}

// sessionDeparse returns what the session's own settings make of a few definitions (outside
// Extract's pinned transaction), checks that the session reads text as UTF-8 whatever the
// role's client_encoding, and returns its DateStyle.
func sessionDeparse(t *testing.T, s *Source) (deparsed, dateStyle string) {
	t.Helper()
	ctx := context.Background()
	var encoding string
	err := s.conn.QueryRow(ctx, `SELECT current_setting('client_encoding'), current_setting('DateStyle'),
		(SELECT string_agg(pg_catalog.pg_get_expr(d.adbin, d.adrelid), E'\n' ORDER BY d.adnum)
			FROM pg_catalog.pg_attrdef AS d
			WHERE d.adrelid IN (SELECT c.oid FROM pg_catalog.pg_class AS c WHERE c.relname IN ('events', 'readings')))
		|| E'\n' || pg_catalog.pg_get_viewdef((SELECT c.oid FROM pg_catalog.pg_class AS c WHERE c.relname = 'recent'))
		|| E'\n' || pg_catalog.pg_get_viewdef((SELECT c.oid FROM pg_catalog.pg_class AS c WHERE c.relname = 'high'))`).
		Scan(&encoding, &dateStyle, &deparsed)
	if err != nil {
		t.Fatal(err)
	}
	if encoding != "UTF8" {
		t.Errorf("client_encoding %q: the connection must ask for UTF8", encoding)
	}
	return deparsed, dateStyle
}
