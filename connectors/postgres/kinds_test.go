package postgres

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/internal/testenv"
)

// depthCatalog has every shape of the catalog depth: sequences (serial, identity, OWNED BY,
// standalone), triggers (every timing, level and enabled state, a WHEN clause, internal foreign
// key triggers), CHECK and exclusion constraints, user-defined types and columns that use them,
// routines of every kind, and objects owned by the login role (ROLE) and by the admin.
var depthCatalog = []string{
	`CREATE SCHEMA kinds`,
	`CREATE SCHEMA role_schema AUTHORIZATION ROLE`,
	`CREATE TYPE kinds.mood AS ENUM ('sad', 'ok')`,
	`ALTER TYPE kinds.mood ADD VALUE 'happy' BEFORE 'ok'`,
	`COMMENT ON TYPE kinds.mood IS 'feelings'`,
	`CREATE DOMAIN kinds.pos_int AS integer NOT NULL DEFAULT 1
		CONSTRAINT pos_int_small CHECK (VALUE < 1000000) CONSTRAINT pos_int_positive CHECK (VALUE > 0)`,
	`CREATE DOMAIN kinds.even_pos AS kinds.pos_int CONSTRAINT even_pos_even CHECK (VALUE % 2 = 0)`,
	`ALTER DOMAIN kinds.even_pos ADD CONSTRAINT even_pos_big CHECK (VALUE > 2) NOT VALID`,
	`CREATE DOMAIN kinds.code AS varchar(8) DEFAULT 'none'`,
	`CREATE TYPE kinds.pair AS (left_part integer, gone text, "Right Part" text, amount numeric(10,2))`,
	`ALTER TYPE kinds.pair DROP ATTRIBUTE gone`,
	`ALTER TYPE kinds.pair OWNER TO ROLE`,
	`CREATE TYPE kinds.floatrange AS RANGE (subtype = float8)`,
	`CREATE TABLE kinds.items (
		id serial PRIMARY KEY,
		ident bigint GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 10),
		m kinds.mood, moods kinds.mood[], p kinds.pair, ps kinds.pair[], r kinds.floatrange,
		e kinds.even_pos, pi kinds.pos_int, code kinds.code, codes kinds.code[],
		lo integer, hi integer, during tstzrange, plain_arr integer[],
		CONSTRAINT lo_hi CHECK (lo < hi AND hi < 100),
		CONSTRAINT hi_then_lo CHECK (hi > 0 AND lo > -5),
		CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&))`,
	`ALTER TABLE kinds.items ADD CONSTRAINT lo_nonneg CHECK (lo >= 0) NOT VALID`,
	`CREATE UNIQUE INDEX items_code_nnd ON kinds.items (code) NULLS NOT DISTINCT`,
	`CREATE SEQUENCE kinds.standalone AS smallint INCREMENT BY -2 MINVALUE -1000 MAXVALUE 10 START WITH 10 CACHE 5 CYCLE`,
	`COMMENT ON SEQUENCE kinds.standalone IS 'counts down'`,
	`ALTER SEQUENCE kinds.standalone OWNER TO ROLE`,
	`CREATE SEQUENCE kinds.owned_seq`,
	`ALTER SEQUENCE kinds.owned_seq OWNED BY kinds.items.hi`,
	`CREATE FUNCTION kinds.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$`,
	`CREATE TRIGGER before_row BEFORE INSERT OR UPDATE OF lo, hi ON kinds.items
		FOR EACH ROW WHEN (NEW.lo IS DISTINCT FROM NEW.hi) EXECUTE FUNCTION kinds.trg()`,
	`COMMENT ON TRIGGER before_row ON kinds.items IS 'checks lo and hi'`,
	`CREATE TRIGGER after_stmt AFTER TRUNCATE OR DELETE OR INSERT ON kinds.items FOR EACH STATEMENT EXECUTE FUNCTION kinds.trg()`,
	`CREATE TRIGGER "disabled WHEN (" AFTER UPDATE ON kinds.items FOR EACH ROW EXECUTE FUNCTION kinds.trg('x'' WHEN (', ')')`,
	`ALTER TABLE kinds.items DISABLE TRIGGER "disabled WHEN ("`,
	`CREATE TRIGGER replica_t AFTER INSERT ON kinds.items FOR EACH ROW EXECUTE FUNCTION kinds.trg()`,
	`ALTER TABLE kinds.items ENABLE REPLICA TRIGGER replica_t`,
	`CREATE TRIGGER always_t BEFORE DELETE ON kinds.items FOR EACH ROW EXECUTE FUNCTION kinds.trg()`,
	`ALTER TABLE kinds.items ENABLE ALWAYS TRIGGER always_t`,
	`CREATE TABLE kinds.child (id integer REFERENCES kinds.items (id))`,
	`CREATE VIEW kinds.items_v AS SELECT id, lo FROM kinds.items`,
	`CREATE TRIGGER instead_ins INSTEAD OF INSERT ON kinds.items_v FOR EACH ROW EXECUTE FUNCTION kinds.trg()`,
	`CREATE TABLE kinds.role_tbl (x integer)`,
	`ALTER TABLE kinds.role_tbl OWNER TO ROLE`,
	// What filters.ExcludeTables "kinds.secret_*" leaves out.
	`CREATE TABLE kinds.secret_t (id serial, v integer CONSTRAINT secret_check CHECK (v > 0))`,
	`CREATE TRIGGER secret_trg BEFORE INSERT ON kinds.secret_t FOR EACH ROW EXECUTE FUNCTION kinds.trg()`,
	`CREATE FUNCTION kinds.sql_add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT a + b'`,
	`CREATE FUNCTION kinds.shout(x text) RETURNS text LANGUAGE plpgsql STABLE AS $$BEGIN RETURN upper(x); END$$`,
	`ALTER FUNCTION kinds.shout(text) OWNER TO ROLE`,
	`CREATE FUNCTION kinds.definer() RETURNS integer LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'`,
	`CREATE FUNCTION kinds.twice(a integer) RETURNS integer LANGUAGE sql IMMUTABLE RETURN a * 2`,
	`CREATE FUNCTION kinds.my_lower(text) RETURNS text LANGUAGE internal IMMUTABLE STRICT AS 'lower'`,
	`CREATE PROCEDURE kinds.bump(INOUT n integer) LANGUAGE plpgsql AS $$BEGIN n := n + 1; END$$`,
	`CREATE AGGREGATE kinds.total(integer) (sfunc = int4pl, stype = integer)`,
}

// depthExtension adds, when the server has contrib's lo, objects that belong to an extension:
// lo's own (domain ext.lo, functions ext.lo_oid and ext.lo_manage) and a schema, table,
// sequence and type added to it; and a C function of the test's own.
var depthExtension = []string{
	`CREATE SCHEMA ext`,
	`CREATE EXTENSION lo SCHEMA ext`,
	`CREATE SCHEMA ext_owned`,
	`CREATE TABLE ext_owned.member_t (x integer)`,
	`CREATE SEQUENCE ext_owned.member_seq`,
	`CREATE TYPE ext_owned.member_enum AS ENUM ('a')`,
	`ALTER EXTENSION lo ADD SCHEMA ext_owned`,
	`ALTER EXTENSION lo ADD TABLE ext_owned.member_t`,
	`ALTER EXTENSION lo ADD SEQUENCE ext_owned.member_seq`,
	`ALTER EXTENSION lo ADD TYPE ext_owned.member_enum`,
	`CREATE FUNCTION kinds.c_manage() RETURNS trigger LANGUAGE c AS '$libdir/lo', 'lo_manage'`,
}

// roleOwned are the objects of depthCatalog that the login role owns ("kind:schema.name");
// the admin (postgres) owns every other object.
var roleOwned = []string{"databases:", "schemas:role_schema", "tables:kinds.role_tbl", "sequences:kinds.standalone",
	"types:kinds.pair", "routines:kinds.shout"}

// depthFilters leave out the kinds.secret_* tables and what belongs to them.
var depthFilters = connectors.Filters{ExcludeTables: []string{"kinds.secret_*"}}

// extensionAvailable reports whether the server can create the named contrib extension.
func extensionAvailable(t *testing.T, name string) bool {
	t.Helper()
	ctx := context.Background()
	root, err := pgx.Connect(ctx, testServer(t).adminURL)
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	defer func() { _ = root.Close(ctx) }()
	var available bool
	if err := root.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)`, name).Scan(&available); err != nil {
		t.Fatal(err)
	}
	return available
}

func TestCatalogDepth(t *testing.T) {
	t.Parallel()
	withLO := extensionAvailable(t, "lo")
	setup := slices.Clone(depthCatalog)
	if withLO {
		setup = append(setup, depthExtension...)
	}
	db := newTestDB(t, setup...)
	ctx := context.Background()
	if _, err := db.admin.Exec(ctx, "ALTER DATABASE "+quoteIdent(db.name)+" OWNER TO "+quoteIdent(db.role)); err != nil {
		t.Fatal(err)
	}
	c := extractEach(t, db.open(t), depthFilters)

	t.Run("sequences", func(t *testing.T) { checkSequences(t, db, c) })
	t.Run("triggers", func(t *testing.T) { checkTriggers(t, db, c) })
	t.Run("constraints", func(t *testing.T) { checkConstraints(t, db, c) })
	t.Run("types", func(t *testing.T) { checkTypes(t, db, c) })
	t.Run("columns of types", func(t *testing.T) { checkTypedColumns(t, db, c) })
	t.Run("routines", func(t *testing.T) { checkDepthRoutines(t, db, c) })
	t.Run("extension", func(t *testing.T) {
		if !withLO {
			testenv.RequireOrSkip(t, "the server has no contrib extension lo (pg_available_extensions): install postgresql-contrib to test objects that belong to an extension")
		}
		checkExtensionMembers(t, c)
	})
	t.Run("filters", func(t *testing.T) { checkDepthFilters(t, db, c) })
	t.Run("queries for older servers", func(t *testing.T) { checkOlderServerQueries(t, db, c) })
	t.Run("order", func(t *testing.T) { checkDepthOrder(t, db) })
	t.Run("owners and database name", func(t *testing.T) {
		checkNames(t, db, c, false)
		lit := db.openWith(t, connectors.OpenOptions{Literals: []string{FieldUsername, FieldDatabase, FieldHost, FieldPort}})
		checkNames(t, db, extractEach(t, lit, depthFilters), true)
	})
}

func checkSequences(t *testing.T, db *testDB, c *collector) {
	got := map[string]string{}
	for _, q := range collect[connectors.Sequence](c) {
		owned := ""
		if q.OwnedByTable != "" {
			owned = fmt.Sprintf("%s.%s.%s identity=%t", q.OwnedBySchema, q.OwnedByTable, q.OwnedByColumn, q.Identity)
		}
		got[q.Schema+"."+q.Name] = fmt.Sprintf("%s start=%s inc=%s min=%s max=%s cache=%s cycle=%t owned=%s",
			q.DataType, q.Start, q.Increment, q.Min, q.Max, q.Cache, q.Cycle, owned)
	}
	// Independent: the pg_sequences view (information_schema.sequences leaves identity columns'
	// out), and the column each sequence belongs to from pg_get_serial_sequence over
	// information_schema.columns.
	owners := map[string]string{}
	for _, r := range db.queryRows(t, `SELECT pg_get_serial_sequence(quote_ident(table_schema) || '.' || quote_ident(table_name), column_name),
			table_schema || '.' || table_name || '.' || column_name || ' identity=' || (is_identity = 'YES')::text
		FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
			AND table_name NOT LIKE 'secret%'
			AND pg_get_serial_sequence(quote_ident(table_schema) || '.' || quote_ident(table_name), column_name) IS NOT NULL`) {
		seq, col, _ := strings.Cut(r, " | ")
		owners[seq] = col
	}
	want := map[string]string{}
	for _, r := range db.queryRows(t, `SELECT schemaname || '.' || sequencename, data_type::text || ' start=' || start_value
			|| ' inc=' || increment_by || ' min=' || min_value || ' max=' || max_value
			|| ' cache=' || cache_size || ' cycle=' || cycle::text || ' owned='
		FROM pg_sequences WHERE sequencename NOT LIKE 'secret%'`) {
		name, def, _ := strings.Cut(r, " | ")
		want[name] = def + owners[name]
	}
	if len(want) < 4 {
		t.Fatalf("only %d sequences in information_schema: %q", len(want), want)
	}
	testenv.CompareMaps(t, "sequence", got, want)
	for name, def := range map[string]string{
		"kinds.standalone":      "smallint start=10 inc=-2 min=-1000 max=10 cache=5 cycle=true owned=",
		"kinds.items_id_seq":    "integer start=1 inc=1 min=1 max=2147483647 cache=1 cycle=false owned=kinds.items.id identity=false",
		"kinds.items_ident_seq": "bigint start=100 inc=10 min=1 max=9223372036854775807 cache=1 cycle=false owned=kinds.items.ident identity=true",
		"kinds.owned_seq":       "bigint start=1 inc=1 min=1 max=9223372036854775807 cache=1 cycle=false owned=kinds.items.hi identity=false",
	} {
		if got[name] != def {
			t.Errorf("sequence %s = %q, want %q (the test's DDL)", name, got[name], def)
		}
	}
	for _, q := range collect[connectors.Sequence](c) {
		if q.Name == "standalone" && q.Comment != "counts down" {
			t.Errorf("standalone = %s", mustJSON(t, q))
		}
	}
}

func checkTriggers(t *testing.T, db *testDB, c *collector) {
	got := map[string]connectors.Trigger{}
	for _, tr := range collect[connectors.Trigger](c) {
		got[tr.Schema+"."+tr.Table+"."+tr.Name] = tr
	}
	// Independent: information_schema.triggers (one row per event, internal triggers left out,
	// no TRUNCATE events), read with Extract's search_path. The CREATE TRIGGER statement is
	// rebuilt from its columns the way the server prints it.
	rows := db.pinnedRows(t, `SELECT event_object_schema || '.' || event_object_table || '.' || trigger_name,
			string_agg(event_manipulation, ',' ORDER BY position(event_manipulation IN 'INSERT UPDATE DELETE')),
			action_timing, action_orientation, coalesce(action_condition, ''), action_statement,
			'CREATE TRIGGER ' || quote_ident(trigger_name) || ' ' || action_timing || ' '
				|| string_agg(event_manipulation || CASE WHEN event_manipulation = 'UPDATE' AND EXISTS (SELECT 1
						FROM information_schema.triggered_update_columns AS u WHERE u.trigger_schema = tr.trigger_schema
							AND u.trigger_name = tr.trigger_name AND u.event_object_table = tr.event_object_table)
					THEN ' OF ' || (SELECT string_agg(u.event_object_column, ', ' ORDER BY col.ordinal_position)
						FROM information_schema.triggered_update_columns AS u
						JOIN information_schema.columns AS col ON col.table_schema = u.event_object_schema
							AND col.table_name = u.event_object_table AND col.column_name = u.event_object_column
						WHERE u.trigger_schema = tr.trigger_schema AND u.trigger_name = tr.trigger_name
							AND u.event_object_table = tr.event_object_table) ELSE '' END,
					' OR ' ORDER BY position(event_manipulation IN 'INSERT DELETE UPDATE'))
				|| ' ON ' || quote_ident(event_object_schema) || '.' || quote_ident(event_object_table)
				|| ' FOR EACH ' || action_orientation
				|| coalesce(' WHEN (' || action_condition || ')', '') || ' ' || action_statement
		FROM information_schema.triggers AS tr WHERE trigger_name NOT LIKE 'secret%'
		GROUP BY tr.trigger_schema, event_object_schema, event_object_table, trigger_name, action_timing,
			action_orientation, action_condition, action_statement`)
	want := map[string]bool{}
	for _, r := range rows {
		f := strings.Split(r, " | ")
		name, events, timing, level, cond, stmt, def := f[0], strings.Split(f[1], ","), f[2], f[3], f[4], f[5], f[6]
		want[name] = true
		if name == "kinds.items.after_stmt" {
			// The test's DDL: information_schema has no TRUNCATE events.
			events = append(events, "TRUNCATE")
			def = strings.Replace(def, " DELETE ON ", " DELETE OR TRUNCATE ON ", 1)
		}
		fn := strings.TrimSuffix(strings.TrimPrefix(stmt, "EXECUTE FUNCTION "), "()")
		fn, _, _ = strings.Cut(fn, "(")
		tr := got[name]
		if tr.Timing != timing || tr.Level != level || tr.Condition != cond || !slices.Equal(tr.Events, events) ||
			tr.FunctionSchema+"."+tr.Function != fn || tr.Definition != def {
			t.Errorf("trigger %s = %s\nwant %s %q %s WHEN %q %s\n%s", name, mustJSON(t, tr), timing, events, level, cond, fn, def)
		}
	}
	if len(want) != 6 {
		t.Errorf("information_schema has %d triggers, the test made 6", len(want))
	}
	for name := range got {
		if !want[name] {
			t.Errorf("unexpected trigger %s (internal?)", name)
		}
	}
	// The test's DDL: enabled states, a comment, a WHEN clause at the end of the statement.
	for name, enabled := range map[string]string{"kinds.items.before_row": "enabled", "kinds.items.disabled WHEN (": "disabled",
		"kinds.items.replica_t": "replica", "kinds.items.always_t": "always", "kinds.items_v.instead_ins": "enabled"} {
		if got[name].Enabled != enabled {
			t.Errorf("trigger %s enabled = %q, want %q", name, got[name].Enabled, enabled)
		}
	}
	if tr := got["kinds.items.before_row"]; tr.Comment != "checks lo and hi" || tr.Condition != "(new.lo IS DISTINCT FROM new.hi)" {
		t.Errorf("before_row = %s", mustJSON(t, tr))
	}
	if tr := got["kinds.items_v.instead_ins"]; tr.Timing != "INSTEAD OF" || tr.Level != "ROW" {
		t.Errorf("instead_ins = %s", mustJSON(t, tr))
	}
}

func TestTriggerCondition(t *testing.T) {
	for def, want := range map[string]string{
		`CREATE TRIGGER t AFTER INSERT ON public.x FOR EACH ROW EXECUTE FUNCTION public.f()`:                                               "",
		`CREATE TRIGGER t AFTER INSERT ON public.x FOR EACH ROW WHEN ((new.a > 0)) EXECUTE FUNCTION public.f()`:                            "(new.a > 0)",
		`CREATE TRIGGER "WHEN (" AFTER INSERT ON "a WHEN (x)"."WHEN (" FOR EACH ROW WHEN ((new."(" = ')')) EXECUTE FUNCTION f()`:           `(new."(" = ')')`,
		`CREATE TRIGGER t AFTER INSERT ON x FOR EACH STATEMENT WHEN ((CASE WHEN true THEN 1 ELSE 2 END = 1)) EXECUTE FUNCTION f('WHEN (')`: `(CASE WHEN true THEN 1 ELSE 2 END = 1)`,
		`CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW WHEN ((new.s = 'it''s (')) EXECUTE FUNCTION f()`:                                  `(new.s = 'it''s (')`,
		`CREATE TRIGGER "unterminated`: "",
	} {
		if got := triggerCondition(def); got != want {
			t.Errorf("triggerCondition(%s) = %q, want %q", def, got, want)
		}
	}
}

func checkConstraints(t *testing.T, db *testDB, c *collector) {
	got := map[string]string{}
	for _, k := range collect[connectors.Constraint](c) {
		got[k.Schema+"."+k.Table+"."+k.Name] = fmt.Sprintf("%s(%s) expr=%s def=%s valid=%t",
			k.Type, strings.Join(k.Columns, ","), k.Expression, k.Definition, k.Validated)
	}
	// Independent: information_schema's check constraints (not the NOT NULL ones it also lists),
	// their columns from constraint_column_usage in table order. Its check_clause is the clause
	// after CHECK: the expression in one more pair of parentheses, then NOT VALID if it is.
	want := map[string]string{}
	for _, r := range db.pinnedRows(t, `SELECT tc.table_schema || '.' || tc.table_name || '.' || tc.constraint_name, cc.check_clause,
			(SELECT string_agg(u.column_name, ',' ORDER BY col.ordinal_position)
				FROM information_schema.constraint_column_usage AS u
				JOIN information_schema.columns AS col ON col.table_schema = u.table_schema
					AND col.table_name = u.table_name AND col.column_name = u.column_name
				WHERE u.constraint_schema = tc.constraint_schema AND u.constraint_name = tc.constraint_name)
		FROM information_schema.table_constraints AS tc
		JOIN information_schema.check_constraints AS cc USING (constraint_schema, constraint_name)
		WHERE tc.constraint_type = 'CHECK' AND tc.constraint_name NOT LIKE '%_not_null'
			AND tc.table_schema NOT IN ('pg_catalog', 'information_schema') AND tc.table_name NOT LIKE 'secret%'`) {
		f := strings.Split(r, " | ")
		clause, valid := strings.CutSuffix(f[1], " NOT VALID")
		expr := strings.TrimSuffix(strings.TrimPrefix(clause, "("), ")")
		want[f[0]] = fmt.Sprintf("check(%s) expr=%s def=CHECK %s valid=%t", f[2], expr, f[1], !valid)
	}
	// The test's DDL: the exclusion constraint, which information_schema does not know.
	want["kinds.items.no_overlap"] = "exclusion(during) expr= def=EXCLUDE USING gist (during WITH &&) valid=true"
	if len(want) != 4 {
		t.Errorf("want %d constraints, the test made 4: %q", len(want), want)
	}
	testenv.CompareMaps(t, "constraint", got, want)
	for name, def := range map[string]string{
		"kinds.items.hi_then_lo": "check(lo,hi) expr=((hi > 0) AND (lo > '-5'::integer)) def=CHECK (((hi > 0) AND (lo > '-5'::integer))) valid=true",
		"kinds.items.lo_nonneg":  "check(lo) expr=(lo >= 0) def=CHECK ((lo >= 0)) NOT VALID valid=false",
	} {
		if got[name] != def {
			t.Errorf("constraint %s = %q, want %q (the test's DDL)", name, got[name], def)
		}
	}
}

func checkTypes(t *testing.T, db *testDB, c *collector) {
	got := map[string]connectors.Type{}
	var names []string
	for _, ty := range collect[connectors.Type](c) {
		got[ty.Schema+"."+ty.Name] = ty
		names = append(names, ty.Schema+"."+ty.Name+" "+ty.Type)
	}
	// Independent: information_schema.domains and user_defined_types (composites); enums and
	// ranges from the test's DDL. No arrays, multiranges or tables' row types.
	want := db.queryRows(t, `SELECT domain_schema || '.' || domain_name || ' domain' FROM information_schema.domains
			WHERE domain_schema NOT IN ('pg_catalog', 'information_schema')
		UNION ALL SELECT user_defined_type_schema || '.' || user_defined_type_name || ' composite'
			FROM information_schema.user_defined_types WHERE user_defined_type_schema NOT IN ('pg_catalog', 'information_schema')`)
	want = append(want, "kinds.mood enum", "kinds.floatrange range")
	if _, ok := got["ext_owned.member_enum"]; ok {
		want = append(want, "ext_owned.member_enum enum")
	}
	sort.Strings(names)
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Errorf("types %q, want %q", names, want)
	}

	// Enum labels in sort order: enum_range.
	labels := db.queryRows(t, `SELECT array_to_string(enum_range(NULL::kinds.mood), ',')`)
	if mood := got["kinds.mood"]; strings.Join(mood.Labels, ",") != labels[0] || labels[0] != "sad,happy,ok" || mood.Comment != "feelings" {
		t.Errorf("mood = %s, want labels %s", mustJSON(t, mood), labels[0])
	}
	// Domains: information_schema.domains and the checks of domain_constraints (the check_clause
	// is the expression in one more pair of parentheses, then NOT VALID if it is).
	checks := map[string][]connectors.TypeCheck{}
	for _, r := range db.pinnedRows(t, `SELECT dc.domain_schema || '.' || dc.domain_name, dc.constraint_name, cc.check_clause
		FROM information_schema.domain_constraints AS dc
		JOIN information_schema.check_constraints AS cc USING (constraint_schema, constraint_name)
		ORDER BY dc.constraint_name`) {
		f := strings.Split(r, " | ")
		clause, notValid := strings.CutSuffix(f[2], " NOT VALID")
		checks[f[0]] = append(checks[f[0]], connectors.TypeCheck{Name: f[1],
			Expression: strings.TrimSuffix(strings.TrimPrefix(clause, "("), ")"), Validated: !notValid})
	}
	for _, r := range db.pinnedRows(t, `SELECT domain_schema || '.' || domain_name,
			CASE WHEN data_type = 'USER-DEFINED' THEN udt_schema || '.' || udt_name
				ELSE data_type || coalesce('(' || character_maximum_length || ')', '') END,
			coalesce(domain_default, '')
		FROM information_schema.domains WHERE domain_schema NOT IN ('pg_catalog', 'information_schema')`) {
		f := strings.Split(r, " | ")
		d := got[f[0]]
		if d.BaseType != f[1] || d.Default != f[2] || mustJSON(t, d.Checks) != mustJSON(t, checks[f[0]]) {
			t.Errorf("domain %s = %s\nwant base %q default %q checks %s", f[0], mustJSON(t, d), f[1], f[2], mustJSON(t, checks[f[0]]))
		}
	}
	// The test's DDL: NOT NULL, the checks' text and a NOT VALID one.
	if d := got["kinds.pos_int"]; !d.NotNull || d.Default != "1" || len(d.Checks) != 2 || d.Checks[0].Name != "pos_int_positive" ||
		d.Checks[0].Expression != "(VALUE > 0)" || !d.Checks[0].Validated {
		t.Errorf("pos_int = %s", mustJSON(t, d))
	}
	if d := got["kinds.even_pos"]; d.NotNull || d.BaseType != "kinds.pos_int" || len(d.Checks) != 2 || d.Checks[0].Name != "even_pos_big" ||
		d.Checks[0].Validated || !d.Checks[1].Validated {
		t.Errorf("even_pos = %s", mustJSON(t, d))
	}
	// Composite: information_schema.attributes (names in order; the dropped one skipped).
	var attrs []string
	for _, a := range got["kinds.pair"].Attributes {
		attrs = append(attrs, a.Name+" "+a.DataType)
	}
	wantAttrs := db.queryRows(t, `SELECT attribute_name || ' ' || CASE WHEN data_type = 'numeric'
			THEN 'numeric(' || numeric_precision || ',' || numeric_scale || ')' ELSE data_type END
		FROM information_schema.attributes WHERE udt_schema = 'kinds' AND udt_name = 'pair' ORDER BY ordinal_position`)
	if !slices.Equal(attrs, wantAttrs) || len(attrs) != 3 {
		t.Errorf("pair attributes %q, want %q", attrs, wantAttrs)
	}
	if r := got["kinds.floatrange"]; r.BaseType != "double precision" {
		t.Errorf("floatrange = %s", mustJSON(t, r))
	}
}

func checkTypedColumns(t *testing.T, db *testDB, c *collector) {
	got := map[string]string{}
	for _, col := range collect[connectors.Column](c) {
		if col.Schema == "kinds" && col.Table == "items" {
			got[col.Name] = fmt.Sprintf("%s %s.%s nullable=%t", col.DataType, col.TypeSchema, col.TypeName, col.Nullable)
		}
	}
	// Independent: information_schema.columns (domain_*, or udt_* of a user-defined type or of
	// an array's elements, named "_" and the element's name); its is_nullable knows a column's
	// own NOT NULL domain but not one further down, which the test's DDL supplies.
	want := map[string]string{}
	for _, r := range db.pinnedRows(t, `SELECT column_name,
			CASE WHEN domain_name IS NOT NULL THEN domain_schema || '.' || domain_name
				ELSE format_type(a.atttypid, a.atttypmod) END,
			coalesce(domain_schema, CASE WHEN udt_schema = 'kinds' THEN udt_schema END, '') || '.'
				|| coalesce(domain_name, CASE WHEN udt_schema = 'kinds' THEN ltrim(udt_name, '_') END, ''),
			is_nullable = 'YES'
		FROM information_schema.columns
		JOIN pg_attribute AS a ON a.attrelid = 'kinds.items'::regclass AND a.attname = column_name
		WHERE table_schema = 'kinds' AND table_name = 'items'`) {
		f := strings.Split(r, " | ")
		nullable := f[3] == "true" && f[0] != "e" // e: even_pos, a domain over NOT NULL pos_int
		want[f[0]] = fmt.Sprintf("%s %s nullable=%t", f[1], f[2], nullable)
	}
	// codes is an array of a domain: information_schema gives the domain's name as the udt.
	testenv.CompareMaps(t, "column", got, want)
	for name, w := range map[string]string{
		"m": "kinds.mood kinds.mood nullable=true", "moods": "kinds.mood[] kinds.mood nullable=true",
		"p": "kinds.pair kinds.pair nullable=true", "ps": "kinds.pair[] kinds.pair nullable=true",
		"r": "kinds.floatrange kinds.floatrange nullable=true", "e": "kinds.even_pos kinds.even_pos nullable=false",
		"pi": "kinds.pos_int kinds.pos_int nullable=false", "codes": "kinds.code[] kinds.code nullable=true",
		"during": "tstzrange . nullable=true", "plain_arr": "integer[] . nullable=true",
	} {
		if got[name] != w {
			t.Errorf("column %s = %q, want %q (the test's DDL)", name, got[name], w)
		}
	}
}

func checkDepthRoutines(t *testing.T, db *testDB, c *collector) {
	got := map[string]string{}
	// The range type's constructors are overloads of one name: left out.
	for _, r := range collect[connectors.Routine](c) {
		if r.Schema == "kinds" && !strings.HasPrefix(r.Name, "float") {
			got[r.Name] = fmt.Sprintf("%s %s %s definer=%t def=%q", r.Type, r.Language, r.Volatility, r.SecurityDefiner, r.Definition)
		}
	}
	// Independent: information_schema.routines (routine_definition is prosrc; external_name a C
	// function's symbol; is_deterministic only tells immutable from the rest) and pg_aggregate;
	// from the test's DDL: stable, and the deparsed SQL-standard body.
	want := map[string]string{}
	for _, r := range db.pinnedRows(t, `SELECT routine_name, CASE WHEN EXISTS (SELECT 1 FROM pg_aggregate AS a
				WHERE a.aggfnoid = to_regproc(routine_schema || '.' || routine_name)) THEN 'aggregate' ELSE lower(routine_type) END,
			lower(external_language), is_deterministic = 'YES', security_type = 'DEFINER',
			coalesce(external_name, routine_definition)
		FROM information_schema.routines WHERE routine_schema = 'kinds' AND routine_name NOT LIKE 'float%'`) {
		f := strings.Split(r, " | ")
		volatility := "volatile"
		switch {
		case f[3] == "true":
			volatility = "immutable"
		case f[0] == "shout":
			volatility = "stable"
		}
		def := f[5]
		switch {
		case f[1] == "aggregate":
			def = ""
		case f[0] == "twice":
			def = "RETURN (a * 2)"
		}
		want[f[0]] = fmt.Sprintf("%s %s %s definer=%s def=%q", f[1], f[2], volatility, f[4], def)
	}
	testenv.CompareMaps(t, "routine", got, want)
	for name, w := range map[string]string{
		"my_lower": `function internal immutable definer=false def="lower"`,
		"total":    `aggregate internal immutable definer=false def=""`,
		"definer":  `function sql volatile definer=true def="SELECT 1"`,
		"bump":     `procedure plpgsql volatile definer=false def="BEGIN n := n + 1; END"`,
	} {
		if got[name] != w {
			t.Errorf("routine %s = %s, want %s (the test's DDL)", name, got[name], w)
		}
	}
}

// checkExtensionMembers checks Extension against the test's DDL: what lo made, and what the
// test added to it.
func checkExtensionMembers(t *testing.T, c *collector) {
	got := map[string]string{}
	for _, e := range c.entities {
		key, _, _ := entityOwner(e)
		switch v := e.(type) {
		case connectors.Schema:
			got[key] = v.Extension
		case connectors.Table:
			got[key] = v.Extension
		case connectors.Sequence:
			got[key] = v.Extension
		case connectors.Type:
			got[key] = v.Extension
		case connectors.Routine:
			got[key] = v.Extension
		}
	}
	members := []string{"schemas:ext_owned", "tables:ext_owned.member_t", "sequences:ext_owned.member_seq",
		"types:ext_owned.member_enum", "types:ext.lo", "routines:ext.lo_oid", "routines:ext.lo_manage"}
	for key, ext := range got {
		want := ""
		if slices.Contains(members, key) {
			want = "lo"
		}
		if ext != want {
			t.Errorf("%s: extension %q, want %q", key, ext, want)
		}
	}
	for _, m := range members {
		if _, ok := got[m]; !ok {
			t.Errorf("%s missing", m)
		}
	}
	for _, r := range collect[connectors.Routine](c) {
		if r.Name == "c_manage" && (r.Language != "c" || r.Definition != "lo_manage" || r.Extension != "") {
			t.Errorf("C function = %s", mustJSON(t, r))
		}
	}
}

func checkDepthFilters(t *testing.T, db *testDB, c *collector) {
	for _, e := range c.entities {
		if js := mustJSON(t, e); strings.Contains(js, "secret_") {
			t.Errorf("an excluded table's object: %s", js)
		}
	}
	// Without the filter they are there: the check, the trigger and the serial's sequence.
	all := extractEach(t, db.open(t), connectors.Filters{})
	var found []string
	for _, e := range all.entities {
		switch v := e.(type) {
		case connectors.Constraint:
			found = append(found, v.Name)
		case connectors.Trigger:
			found = append(found, v.Name)
		case connectors.Sequence:
			found = append(found, v.Name)
		}
	}
	for _, name := range []string{"secret_check", "secret_trg", "secret_t_id_seq"} {
		if !slices.Contains(found, name) {
			t.Errorf("%s missing without filters", name)
		}
	}
}

// checkOlderServerQueries runs the queries meant for PostgreSQL 12 to 14 (no
// pg_get_function_sqlbody, no pg_index.indnullsnotdistinct) on this server: they must give the
// same entities, but for the SQL-standard body, which those servers cannot deparse (prosrc is
// empty). A NULLS NOT DISTINCT index shows that both read indnullsnotdistinct.
func checkOlderServerQueries(t *testing.T, db *testDB, c *collector) {
	want := db.queryRows(t, `SELECT indexdef FROM pg_indexes WHERE indexname = 'items_code_nnd'`)
	for _, x := range collect[connectors.Index](c) {
		if x.Name == "items_code_nnd" && (len(want) != 1 || x.Definition != want[0] || !strings.Contains(x.Definition, "NULLS NOT DISTINCT")) {
			t.Errorf("index %s, pg_indexes has %q", mustJSON(t, x), want)
		}
	}
	s := db.open(t)
	s.versionNum = 120000
	older := extractEach(t, s, depthFilters)
	if len(older.entities) != len(c.entities) {
		t.Fatalf("%d entities, %d with the current queries", len(older.entities), len(c.entities))
	}
	for i, e := range older.entities {
		want := c.entities[i]
		if r, ok := want.(connectors.Routine); ok && r.Name == "twice" {
			r.Definition = ""
			want = r
		}
		if got, w := mustJSON(t, e), mustJSON(t, want); got != w {
			t.Errorf("entity %d:\n got %s\nwant %s", i, got, w)
		}
	}
}

// checkDepthOrder extracts every schema in one call, in an order of its own, and checks that
// kinds come in connectors.AllKinds order and, within a kind, by schema as given, then name.
func checkDepthOrder(t *testing.T, db *testDB) {
	s := db.open(t)
	schemas, err := s.Schemas(context.Background(), connectors.Filters{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(schemas)
	c := &collector{}
	if err := s.Extract(context.Background(), schemas, connectors.Filters{}, c); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var prev []string
	for i, e := range c.entities {
		k := slices.Index(connectors.AllKinds, e.Kind())
		key := entitySortKey(e, schemas)
		if i > 0 {
			pk := slices.Index(connectors.AllKinds, c.entities[i-1].Kind())
			if k < pk || (k == pk && slices.Compare(key, prev) < 0) {
				t.Errorf("%s %q after %s %q", e.Kind(), key, c.entities[i-1].Kind(), prev)
			}
		}
		seen[e.Kind()]++
		prev = key
	}
	for _, k := range connectors.AllKinds {
		if seen[k] == 0 && k != connectors.KindLineage {
			t.Errorf("no %s extracted", k)
		}
	}
}

// entitySortKey is the order of an entity within its kind: the schema's position in schemas,
// then the table (for what belongs to one), then the name.
func entitySortKey(e connectors.Entity, schemas []string) []string {
	pos := func(schema string) string { return fmt.Sprintf("%04d", slices.Index(schemas, schema)) }
	switch v := e.(type) {
	case connectors.Schema:
		return []string{pos(v.Name)}
	case connectors.Table:
		return []string{pos(v.Schema), v.Name}
	case connectors.Column:
		return []string{pos(v.Schema), v.Table, fmt.Sprintf("%04d", v.Position)}
	case connectors.Key:
		return []string{pos(v.Schema), v.Table, v.Name}
	case connectors.Constraint:
		return []string{pos(v.Schema), v.Table, v.Name}
	case connectors.Index:
		return []string{pos(v.Schema), v.Table, v.Name}
	case connectors.Trigger:
		return []string{pos(v.Schema), v.Table, v.Name}
	case connectors.Sequence:
		return []string{pos(v.Schema), v.Name}
	case connectors.Type:
		return []string{pos(v.Schema), v.Name}
	case connectors.Routine:
		return []string{pos(v.Schema), v.Name}
	}
	return nil
}

// ownerFields are an entity's Owner and OwnerIsLoginRole.
type ownerFields struct {
	name    string
	isLogin bool
}

// entityOwner returns an entity's key ("kind:schema.name") and its owner fields; ok is false
// for kinds without an owner.
func entityOwner(e connectors.Entity) (key string, owner ownerFields, ok bool) {
	set := func(k, name string, isLogin bool) {
		key, owner, ok = e.Kind()+":"+k, ownerFields{name, isLogin}, true
	}
	switch v := e.(type) {
	case connectors.Database:
		set("", v.Owner, v.OwnerIsLoginRole)
	case connectors.Schema:
		set(v.Name, v.Owner, v.OwnerIsLoginRole)
	case connectors.Table:
		set(v.Schema+"."+v.Name, v.Owner, v.OwnerIsLoginRole)
	case connectors.Sequence:
		set(v.Schema+"."+v.Name, v.Owner, v.OwnerIsLoginRole)
	case connectors.Type:
		set(v.Schema+"."+v.Name, v.Owner, v.OwnerIsLoginRole)
	case connectors.Routine:
		set(v.Schema+"."+v.Name, v.Owner, v.OwnerIsLoginRole)
	default:
		key = e.Kind()
	}
	return key, owner, ok
}

// checkNames checks the owner rule and the database-name rule on every entity: literal says
// whether fields "username" and "database" were literals.
func checkNames(t *testing.T, db *testDB, c *collector, literal bool) {
	wantDB := ""
	if literal {
		wantDB = db.name
	}
	// PostgreSQL 15 gives schema public to pg_database_owner.
	publicOwner := db.queryRows(t, `SELECT schema_owner FROM information_schema.schemata WHERE schema_name = 'public'`)[0]
	owners := 0
	for _, e := range c.entities {
		if d, ok := e.(connectors.Database); ok && d.Name != wantDB {
			t.Errorf("literal=%t: database name %q, want %q", literal, d.Name, wantDB)
		}
		if got := databaseField(e); got != nil && *got != wantDB {
			t.Errorf("literal=%t: %s has database %q, want %q", literal, mustJSON(t, e), *got, wantDB)
		}
		key, owner, ok := entityOwner(e)
		if !ok {
			continue
		}
		owners++
		want := "postgres"
		if key == "schemas:public" {
			want = publicOwner
		}
		isLogin := slices.Contains(roleOwned, key)
		switch {
		case isLogin && literal:
			want = db.role
		case isLogin:
			want = ""
		}
		if owner.name != want || owner.isLogin != isLogin {
			t.Errorf("literal=%t: %s owner %q (login role %t), want %q (%t)", literal, key, owner.name, owner.isLogin, want, isLogin)
		}
	}
	if owners < 20 {
		t.Errorf("only %d entities with owners", owners)
	}
	if !literal {
		checkSecretsAbsent(t, db, c)
	}
}

// databaseField returns the Database field of every kind but Database (nil for that one).
func databaseField(e connectors.Entity) *string {
	switch v := e.(type) {
	case connectors.Schema:
		return &v.Database
	case connectors.Table:
		return &v.Database
	case connectors.Column:
		return &v.Database
	case connectors.Key:
		return &v.Database
	case connectors.Constraint:
		return &v.Database
	case connectors.Index:
		return &v.Database
	case connectors.Sequence:
		return &v.Database
	case connectors.Trigger:
		return &v.Database
	case connectors.Type:
		return &v.Database
	case connectors.Routine:
		return &v.Database
	}
	return nil
}

func TestCheckExpression(t *testing.T) {
	for def, want := range map[string]string{
		"CHECK ((lo >= 0))":                            "(lo >= 0)",
		"CHECK ((lo >= 0)) NOT VALID":                  "(lo >= 0)",
		"CHECK ((lo >= 0)) NO INHERIT":                 "(lo >= 0)",
		"CHECK ((lo >= 0)) NO INHERIT NOT VALID":       "(lo >= 0)",
		"CHECK ((lo >= 0)) NOT ENFORCED":               "(lo >= 0)",
		"CHECK ((s <> ' NOT VALID)'::text)) NOT VALID": "(s <> ' NOT VALID)'::text)",
		"CHECK (((a > 0) AND (b > 0)))":                "((a > 0) AND (b > 0))",
		"CHECK (false)":                                "false",
		"EXCLUDE USING gist (during WITH &&)":          "",
		"CHECK ((lo >= 0)) SOMETHING NEW":              "",
		"CHECK ()":                                     "",
		"":                                             "",
	} {
		if got := checkExpression(def); got != want {
			t.Errorf("checkExpression(%q) = %q, want %q", def, got, want)
		}
	}
}
