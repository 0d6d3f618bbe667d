package postgres

// TestPagila loads a real public sample schema, written by others, and checks what the connector
// extracts from it against the server's catalog, read by queries written here, and against the
// sample's own SQL text; never against the connector's earlier output.
//
// The sample is pagila, the PostgreSQL port of the Sakila sample database (Sakila was developed
// by Mike Hillyer of the MySQL AB documentation team, BSD licence; pagila was published in
// pgfoundry's dbsamples under the same licence and is maintained today by Devrim Gündüz under
// the PostgreSQL licence). The copy is the sample model that pgModeler ships (Debian package
// pgmodeler-common, GPL-3+, /usr/share/pgmodeler/samples/pagila.dbm), exported to SQL for
// PostgreSQL 15 by pgmodeler-cli. scripts/samples fetches and converts it at test time (nothing
// of it is in this repository or shipped); testenv.Sample finds it.

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/testenv"
)

func TestPagila(t *testing.T) {
	t.Parallel()
	text := readSample(t, "pagila.sql")
	db := newTestDB(t)
	if _, err := db.admin.Exec(context.Background(), text); err != nil {
		t.Fatalf("loading pagila.sql: %v", err)
	}
	c := extractEach(t, db.open(t), connectors.Filters{})

	t.Run("relations and keys", func(t *testing.T) { checkPagilaRelations(t, db, c, text) })
	t.Run("sequences", func(t *testing.T) { checkPagilaSequences(t, db, c, text) })
	t.Run("triggers", func(t *testing.T) { checkPagilaTriggers(t, db, c, text) })
	t.Run("constraints", func(t *testing.T) { checkPagilaConstraints(t, db, c, text) })
	t.Run("types", func(t *testing.T) { checkPagilaTypes(t, db, c) })
	t.Run("routines", func(t *testing.T) { checkPagilaRoutines(t, db, c, text) })
	t.Run("lineage", func(t *testing.T) { checkPagilaLineage(t, db, c) })
}

// readSample returns the text of a sample file that scripts/samples fetched.
func readSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(testenv.Sample(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// textMatches returns the submatches of every match of re in text.
func textMatches(text, re string) [][]string {
	return regexp.MustCompile(re).FindAllStringSubmatch(text, -1)
}

func checkPagilaRelations(t *testing.T, db *testDB, c *collector, text string) {
	got := map[string]string{}
	for _, tb := range collect[connectors.Table](c) {
		got[tb.Schema+"."+tb.Name] = tb.Type
	}
	// Independent: pg_class (pagila's payment_p2007_* inherit from payment: plain tables).
	want := map[string]string{}
	for _, r := range db.queryRows(t, `SELECT n.nspname || '.' || c.relname,
			CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' END
		FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')`) {
		name, kind, _ := strings.Cut(r, " | ")
		want[name] = kind
	}
	testenv.CompareMaps(t, "relation", got, want)
	counts := map[string]int{}
	for _, kind := range want {
		counts[kind]++
	}
	if counts["table"] != 21 || counts["view"] != 7 {
		t.Errorf("pg_class has %d tables and %d views; pagila has 21 and 7", counts["table"], counts["view"])
	}

	gotKeys := map[string]string{}
	for _, k := range collect[connectors.Key](c) {
		gotKeys[k.Table+"."+k.Name] = fmt.Sprintf("%s(%s) -> %s.%s(%s)", k.Type, strings.Join(k.Columns, ","),
			k.RefSchema, k.RefTable, strings.Join(k.RefColumns, ","))
	}
	// Independent: pg_constraint, the columns by position in conkey and confkey.
	wantKeys := map[string]string{}
	for _, r := range db.queryRows(t, `SELECT k.conrelid::regclass::text || '.' || k.conname,
			CASE k.contype WHEN 'p' THEN 'primary_key' WHEN 'u' THEN 'unique' ELSE 'foreign_key' END || '('
				|| (SELECT string_agg(a.attname, ',' ORDER BY u.i) FROM unnest(k.conkey) WITH ORDINALITY AS u(n, i)
					JOIN pg_attribute AS a ON a.attrelid = k.conrelid AND a.attnum = u.n) || ') -> '
				|| CASE WHEN k.contype = 'f' THEN 'public.' || k.confrelid::regclass::text || '('
					|| (SELECT string_agg(a.attname, ',' ORDER BY u.i) FROM unnest(k.confkey) WITH ORDINALITY AS u(n, i)
						JOIN pg_attribute AS a ON a.attrelid = k.confrelid AND a.attnum = u.n) || ')'
					ELSE '.()' END
		FROM pg_constraint AS k WHERE k.contype IN ('p', 'u', 'f') AND k.connamespace = 'public'::regnamespace`) {
		name, def, _ := strings.Cut(r, " | ")
		wantKeys[name] = def
	}
	testenv.CompareMaps(t, "key", gotKeys, wantKeys)
	// The sample's text: 15 primary keys in the tables' definitions, 40 foreign keys added
	// after them, no UNIQUE constraint (its unique indexes are indexes).
	primary := len(textMatches(text, `CONSTRAINT \w+ PRIMARY KEY \(`))
	foreign := len(textMatches(text, `(?m)^ALTER TABLE public\.\w+ ADD CONSTRAINT \w+ FOREIGN KEY \(`))
	if primary != 15 || foreign != 40 || len(wantKeys) != primary+foreign {
		t.Errorf("pagila.sql has %d primary and %d foreign keys (pagila: 15 and 40), pg_constraint %d keys", primary, foreign, len(wantKeys))
	}
}

func checkPagilaSequences(t *testing.T, db *testDB, c *collector, text string) {
	got := map[string]string{}
	for _, q := range collect[connectors.Sequence](c) {
		got[q.Schema+"."+q.Name] = fmt.Sprintf("%s start=%s inc=%s min=%s max=%s cache=%s cycle=%t owned=%s.%s.%s identity=%t",
			q.DataType, q.Start, q.Increment, q.Min, q.Max, q.Cache, q.Cycle, q.OwnedBySchema, q.OwnedByTable, q.OwnedByColumn, q.Identity)
	}
	// Independent: pg_sequence over pg_class, and the column that owns each sequence from
	// pg_depend (automatic for OWNED BY or a serial column, internal for an identity column).
	want := map[string]string{}
	for _, r := range db.queryRows(t, `SELECT s.seqrelid::regclass::text, s.seqtypid::regtype::text
			|| ' start=' || s.seqstart || ' inc=' || s.seqincrement || ' min=' || s.seqmin || ' max=' || s.seqmax
			|| ' cache=' || s.seqcache || ' cycle=' || s.seqcycle || ' owned='
			|| coalesce((SELECT tn.nspname || '.' || tc.relname || '.' || a.attname || ' identity=' || (d.deptype = 'i')
				FROM pg_depend AS d
				JOIN pg_class AS tc ON tc.oid = d.refobjid
				JOIN pg_namespace AS tn ON tn.oid = tc.relnamespace
				JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
				WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid AND d.refclassid = 'pg_class'::regclass
					AND d.deptype IN ('a', 'i')), '.. identity=false')
		FROM pg_sequence AS s`) {
		name, def, _ := strings.Cut(r, " | ")
		want["public."+name] = def
	}
	testenv.CompareMaps(t, "sequence", got, want)

	// The sample's text: 13 sequences, each INCREMENT BY 1 MINVALUE 1 MAXVALUE 2^63-1 START WITH
	// 1 CACHE 1 NO CYCLE, none OWNED BY a column (the columns use them through nextval defaults).
	created := textMatches(text, `(?m)^CREATE SEQUENCE (public\.\w+)\n\tINCREMENT BY 1\n\tMINVALUE 1\n`+
		`\tMAXVALUE 9223372036854775807\n\tSTART WITH 1\n\tCACHE 1\n\tNO CYCLE\n\tOWNED BY NONE;`)
	if len(created) != 13 || len(got) != 13 {
		t.Fatalf("%d sequences in pagila.sql, %d extracted; pagila has 13", len(created), len(got))
	}
	for _, m := range created {
		w := "bigint start=1 inc=1 min=1 max=9223372036854775807 cache=1 cycle=false owned=.. identity=false"
		if got[m[1]] != w {
			t.Errorf("sequence %s = %q, want %q (pagila.sql)", m[1], got[m[1]], w)
		}
	}
}

func checkPagilaTriggers(t *testing.T, db *testDB, c *collector, text string) {
	got := map[string]string{}
	for _, tr := range collect[connectors.Trigger](c) {
		got[tr.Schema+"."+tr.Table+"."+tr.Name] = fmt.Sprintf("%s %s %s %s.%s %s",
			tr.Timing, strings.Join(tr.Events, ","), tr.Level, tr.FunctionSchema, tr.Function, tr.Enabled)
	}
	// Independent: information_schema.triggers (one row per event) for timing, events and
	// level; pg_trigger for the function and the enabled state (O: fires in the origin role),
	// and for what information_schema leaves out (TRUNCATE; internal triggers, which the
	// connector leaves out too).
	want := map[string]string{}
	for _, r := range db.queryRows(t, `SELECT tr.event_object_schema || '.' || tr.event_object_table || '.' || tr.trigger_name,
			tr.action_timing || ' ' || string_agg(tr.event_manipulation, ',' ORDER BY
				array_position(ARRAY['INSERT', 'UPDATE', 'DELETE'], tr.event_manipulation::text)) || ' ' || tr.action_orientation
				|| ' ' || (SELECT pn.nspname || '.' || p.proname || ' ' || CASE t.tgenabled WHEN 'O' THEN 'enabled' ELSE t.tgenabled::text END
					|| CASE WHEN t.tgtype & 32 <> 0 THEN ' TRUNCATE' ELSE '' END
					FROM pg_trigger AS t
					JOIN pg_proc AS p ON p.oid = t.tgfoid
					JOIN pg_namespace AS pn ON pn.oid = p.pronamespace
					WHERE t.tgrelid = (quote_ident(tr.event_object_schema) || '.' || quote_ident(tr.event_object_table))::regclass
						AND t.tgname = tr.trigger_name)
		FROM information_schema.triggers AS tr
		GROUP BY tr.event_object_schema, tr.event_object_table, tr.trigger_name, tr.action_timing, tr.action_orientation`) {
		name, def, _ := strings.Cut(r, " | ")
		want[name] = def
	}
	if n := db.queryRows(t, `SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal`); n[0] != fmt.Sprint(len(want)) {
		t.Errorf("pg_trigger has %s triggers, information_schema.triggers %d", n[0], len(want))
	}
	testenv.CompareMaps(t, "trigger", got, want)

	// The sample's text: 15 triggers, all BEFORE, all FOR EACH ROW but customer's last_updated
	// (pgModeler's model has it FOR EACH STATEMENT).
	fromText := map[string]string{}
	for _, m := range textMatches(text, `(?m)^CREATE TRIGGER (\w+)\n\tBEFORE ([A-Z ]+)\n\tON (public\.\w+)\n`+
		`\tFOR EACH (ROW|STATEMENT)\n\tEXECUTE PROCEDURE ([\w.]+)\(`) {
		fromText[m[3]+"."+m[1]] = "BEFORE " + strings.ReplaceAll(m[2], " OR ", ",") + " " + m[4] + " " + m[5] + " enabled"
	}
	if len(fromText) != 15 || strings.Count(text, "\nCREATE TRIGGER ") != 15 {
		t.Fatalf("pagila.sql has %d triggers as this test reads them: %q", len(fromText), fromText)
	}
	testenv.CompareMaps(t, "trigger (pagila.sql)", got, fromText)
	for name, w := range map[string]string{
		"public.film.film_fulltext_trigger": "BEFORE INSERT,UPDATE ROW pg_catalog.tsvector_update_trigger enabled",
		"public.customer.last_updated":      "BEFORE UPDATE STATEMENT public.last_updated enabled",
	} {
		if got[name] != w {
			t.Errorf("trigger %s = %q, want %q (pagila.sql)", name, got[name], w)
		}
	}
}

func checkPagilaConstraints(t *testing.T, db *testDB, c *collector, text string) {
	got := map[string]string{}
	for _, k := range collect[connectors.Constraint](c) {
		got[k.Schema+"."+k.Table+"."+k.Name] = fmt.Sprintf("%s(%s) expr=%s def=%s valid=%t",
			k.Type, strings.Join(k.Columns, ","), k.Expression, k.Definition, k.Validated)
	}
	// Independent: pg_constraint's CHECK constraints of relations, with their columns (conkey)
	// in table order; the clause from information_schema.check_constraints, which is the
	// expression in one more pair of parentheses.
	want := map[string]string{}
	for _, r := range db.pinnedRows(t, `SELECT n.nspname || '.' || c.relname || '.' || k.conname,
			(SELECT string_agg(a.attname::text, ',' ORDER BY a.attnum) FROM pg_attribute AS a
				WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)),
			cc.check_clause, k.convalidated
		FROM pg_constraint AS k
		JOIN pg_class AS c ON c.oid = k.conrelid
		JOIN pg_namespace AS n ON n.oid = c.relnamespace
		JOIN information_schema.check_constraints AS cc
			ON cc.constraint_schema = n.nspname AND cc.constraint_name = k.conname
		WHERE k.contype = 'c' AND n.nspname = 'public'`) {
		f := strings.Split(r, " | ")
		expr := strings.TrimSuffix(strings.TrimPrefix(f[2], "("), ")")
		want[f[0]] = fmt.Sprintf("check(%s) expr=%s def=CHECK %s valid=%s", f[1], expr, f[2], f[3])
	}
	testenv.CompareMaps(t, "constraint", got, want)

	// The sample's text: a payment_date range check on each of the six payment_p2007_* tables.
	checks := textMatches(text, `CONSTRAINT (payment_p2007_0\d)_payment_date_check CHECK \(\(\(payment_date >= '([0-9-]+) `)
	if len(checks) != 6 {
		t.Errorf("pagila.sql has %d payment_date checks as this test reads them; it has 6", len(checks))
	}
	for _, m := range checks {
		name := "public." + m[1] + "." + m[1] + "_payment_date_check"
		if !strings.HasPrefix(got[name], "check(payment_date) expr=((payment_date >= '"+m[2]+" 00:00:00'::timestamp without time zone)") {
			t.Errorf("constraint %s = %q (pagila.sql: from %s)", name, got[name], m[2])
		}
	}
	if len(got) != 6 {
		t.Errorf("%d CHECK constraints extracted; pagila has 6", len(got))
	}
}

func checkPagilaTypes(t *testing.T, db *testDB, c *collector) {
	got := map[string]connectors.Type{}
	for _, ty := range collect[connectors.Type](c) {
		got[ty.Schema+"."+ty.Name] = ty
	}
	var names []string
	for name, ty := range got {
		names = append(names, name+" "+ty.Type)
	}
	sort.Strings(names)
	// Independent: pg_type's user-defined enums and domains (pagila has no composite or range
	// types of its own; its tables' row types and arrays are not Type entities).
	want := db.queryRows(t, `SELECT n.nspname || '.' || t.typname || ' ' || CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain'
			WHEN 'r' THEN 'range' ELSE 'composite' END
		FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
		WHERE n.nspname = 'public' AND (t.typtype IN ('e', 'd', 'r')
			OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
		ORDER BY 1`)
	if !slices.Equal(names, want) || !slices.Equal(want, []string{"public.mpaa_rating enum", "public.year domain"}) {
		t.Errorf("types %q, pg_type %q; pagila has enum mpaa_rating and domain year", names, want)
	}

	// Enum labels in sort order (pg_enum), which pagila.sql gives as G, PG, PG-13, R, NC-17.
	labels := db.queryRows(t, `SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum
		WHERE enumtypid = 'public.mpaa_rating'::regtype`)
	if l := strings.Join(got["public.mpaa_rating"].Labels, ","); l != labels[0] || l != "G,PG,PG-13,R,NC-17" {
		t.Errorf("mpaa_rating labels %q, pg_enum %q; pagila.sql has G,PG,PG-13,R,NC-17", l, labels[0])
	}
	// Domain year: base type and NOT NULL from pg_type, its check from information_schema.
	year := got["public.year"]
	dom := db.pinnedRows(t, `SELECT t.typbasetype::regtype::text, t.typnotnull, coalesce(t.typdefault, ''), cc.constraint_name, cc.check_clause
		FROM pg_type AS t
		JOIN information_schema.domain_constraints AS dc ON dc.domain_schema = 'public' AND dc.domain_name = t.typname
		JOIN information_schema.check_constraints AS cc USING (constraint_schema, constraint_name)
		WHERE t.oid = 'public.year'::regtype`)
	if len(dom) != 1 {
		t.Fatalf("domain year: %q", dom)
	}
	f := strings.Split(dom[0], " | ")
	wantChecks := []connectors.TypeCheck{{Name: f[3], Expression: strings.TrimSuffix(strings.TrimPrefix(f[4], "("), ")"), Validated: true}}
	if year.BaseType != f[0] || fmt.Sprint(year.NotNull) != f[1] || year.Default != f[2] ||
		mustJSON(t, year.Checks) != mustJSON(t, wantChecks) {
		t.Errorf("domain year = %s\nwant base %s notnull %s default %q checks %s", mustJSON(t, year), f[0], f[1], f[2], mustJSON(t, wantChecks))
	}
	if year.BaseType != "integer" || len(year.Checks) != 1 || year.Checks[0].Name != "year_check" {
		t.Errorf("domain year = %s; pagila.sql has integer CONSTRAINT year_check CHECK (...)", mustJSON(t, year))
	}

	// Columns of user-defined types: pg_attribute's type, or its array's element type.
	gotCols := map[string]string{}
	for _, col := range collect[connectors.Column](c) {
		if col.TypeName != "" {
			gotCols[col.Table+"."+col.Name] = col.TypeSchema + "." + col.TypeName
		}
	}
	wantCols := map[string]string{}
	for _, r := range db.queryRows(t, `SELECT c.relname || '.' || a.attname, tn.nspname || '.' || t.typname
		FROM pg_attribute AS a
		JOIN pg_class AS c ON c.oid = a.attrelid
		JOIN pg_type AS at ON at.oid = a.atttypid
		JOIN pg_type AS t ON t.oid = CASE WHEN at.typelem <> 0 AND at.typcategory = 'A' THEN at.typelem ELSE at.oid END
		JOIN pg_namespace AS tn ON tn.oid = t.typnamespace
		WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v') AND a.attnum > 0
			AND NOT a.attisdropped AND tn.nspname = 'public' AND t.typtype IN ('e', 'd')`) {
		col, ty, _ := strings.Cut(r, " | ")
		wantCols[col] = ty
	}
	testenv.CompareMaps(t, "typed column", gotCols, wantCols)
	if gotCols["film.rating"] != "public.mpaa_rating" || gotCols["film.release_year"] != "public.year" {
		t.Errorf("film.rating is %q, film.release_year %q; pagila.sql has mpaa_rating and year", gotCols["film.rating"], gotCols["film.release_year"])
	}
}

func checkPagilaRoutines(t *testing.T, db *testDB, c *collector, text string) {
	got := map[string]string{}
	for _, r := range collect[connectors.Routine](c) {
		got[r.Schema+"."+r.Name] = fmt.Sprintf("%s %s %s definer=%t", r.Type, r.Language, r.Volatility, r.SecurityDefiner)
	}
	// Independent: pg_proc (pagila has no overloads), with pg_language.
	want := map[string]string{}
	for _, r := range db.queryRows(t, `SELECT p.pronamespace::regnamespace::text || '.' || p.proname,
			CASE p.prokind WHEN 'a' THEN 'aggregate' WHEN 'p' THEN 'procedure' ELSE 'function' END || ' ' || l.lanname
				|| ' ' || CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END
				|| ' definer=' || p.prosecdef
		FROM pg_proc AS p JOIN pg_language AS l ON l.oid = p.prolang
		WHERE p.pronamespace = 'public'::regnamespace`) {
		name, def, _ := strings.Cut(r, " | ")
		want[name] = def
	}
	testenv.CompareMaps(t, "routine", got, want)

	// The sample's text: nine functions, each with its language, volatility and security, and
	// the aggregate group_concat (an aggregate's language is internal).
	fromText := map[string]string{"public.group_concat": "aggregate internal immutable definer=false"}
	for _, m := range textMatches(text, `(?m)^CREATE FUNCTION (public\.\w+) \([^)]*\)\n\tRETURNS [^\n]+\n\tLANGUAGE (\w+)\n`+
		`\t(IMMUTABLE|STABLE|VOLATILE) \n\t[A-Z ]+\n\tSECURITY (INVOKER|DEFINER)\n`) {
		fromText[m[1]] = fmt.Sprintf("function %s %s definer=%t", m[2], strings.ToLower(m[3]), m[4] == "DEFINER")
	}
	if len(fromText) != 10 || !strings.Contains(text, "\nCREATE AGGREGATE public.group_concat (text)") {
		t.Fatalf("pagila.sql has %d routines as this test reads them: %q", len(fromText), fromText)
	}
	testenv.CompareMaps(t, "routine (pagila.sql)", got, fromText)
}

func checkPagilaLineage(t *testing.T, db *testDB, c *collector) {
	got := map[string]connectors.Lineage{}
	for _, l := range collect[connectors.Lineage](c) {
		got[l.Schema+"."+l.View] = l
	}
	// Independent: pg_depend of each view's _RETURN rule (pg_rewrite) on relations other than
	// the view: on each column the query mentions (refobjsubid > 0; in joins, WHERE and GROUP BY
	// too), and on a relation as a whole (0) where it mentions none of its columns. So the
	// upstream relations are exactly those, and a view column's sources must be among the columns.
	upstream := map[string][]string{}
	columns := map[string]map[string]bool{}
	for _, r := range db.queryRows(t, `SELECT DISTINCT v.relnamespace::regnamespace::text || '.' || v.relname,
			u.relnamespace::regnamespace::text || '.' || u.relname, coalesce(a.attname::text, '')
		FROM pg_rewrite AS rw
		JOIN pg_class AS v ON v.oid = rw.ev_class
		JOIN pg_depend AS d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
		JOIN pg_class AS u ON u.oid = d.refobjid
		LEFT JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
		WHERE rw.rulename = '_RETURN' AND v.relkind = 'v' AND u.oid <> v.oid
			AND v.relnamespace = 'public'::regnamespace`) {
		f := strings.Split(r, " | ")
		if !slices.Contains(upstream[f[0]], f[1]) {
			upstream[f[0]] = append(upstream[f[0]], f[1])
		}
		if f[2] == "" {
			continue
		}
		if columns[f[0]] == nil {
			columns[f[0]] = map[string]bool{}
		}
		columns[f[0]][f[1]+"."+f[2]] = true
	}
	if len(upstream) != 7 || len(got) != 7 {
		t.Fatalf("%d views with lineage, %d in pg_rewrite; pagila has 7", len(got), len(upstream))
	}
	for view, rels := range upstream {
		sort.Strings(rels)
		l, ok := got[view]
		if !ok {
			t.Errorf("view %s: no lineage", view)
			continue
		}
		if l.Problem != "" || l.Method != "catalog" {
			t.Errorf("view %s: method %q, problem %q", view, l.Method, l.Problem)
			continue
		}
		var up []string
		for _, r := range l.Upstream {
			up = append(up, r.Schema+"."+r.Name)
		}
		if !slices.Equal(up, rels) {
			t.Errorf("view %s: upstream %q, pg_depend %q", view, up, rels)
		}
		sources := 0
		for _, col := range l.Columns {
			for _, s := range col.Sources {
				sources++
				if ref := s.Schema + "." + s.Table + "." + s.Column; !columns[view][ref] {
					t.Errorf("view %s column %s: source %s is not a column its rule depends on", view, col.Column, ref)
				}
			}
		}
		if sources == 0 {
			t.Errorf("view %s: no column has a source", view)
		}
	}

	// Two views' lineage, written by hand from their definitions in pagila.sql.
	for view, want := range map[string][]string{
		"public.customer_list": {"up: public.address, public.city, public.country, public.customer",
			"id = direct: public.customer.customer_id",
			"name = expression: public.customer.first_name, public.customer.last_name",
			"address = direct: public.address.address", "zip code = direct: public.address.postal_code",
			"phone = direct: public.address.phone", "city = direct: public.city.city",
			"country = direct: public.country.country", "notes = expression: public.customer.activebool",
			"sid = direct: public.customer.store_id"},
		"public.sales_by_store": {"up: public.address, public.city, public.country, public.inventory, public.payment, public.rental, public.staff, public.store",
			"store = expression: public.city.city, public.country.country",
			"manager = expression: public.staff.first_name, public.staff.last_name",
			"total_sales = expression: public.payment.amount"},
	} {
		if g := formatLineage(got[view]); !slices.Equal(g, want) {
			t.Errorf("%s:\n got %q\nwant %q (pagila.sql)", view, g, want)
		}
	}
}
