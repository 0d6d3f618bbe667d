# Sourced by the bench scripts: builds the benchmark's PostgreSQL catalog.
#
#   build_pg_catalog DB SCHEMAS TABLES COLUMNS   (psql as the test server's administrator)
#
# SCHEMAS x TABLES tables of COLUMNS columns, each with a primary key, a foreign key, a CHECK
# constraint and two more indexes; per schema 10 views joining two tables (lineage), 10 triggers,
# a sequence, a routine and an enum type. Grants USAGE on every schema to bench_reader.
build_pg_catalog() {
	local db=$1 SCHEMAS=$2 TABLES=$3 COLUMNS=$4
	local psql=(psql -q -h 127.0.0.1 -p "$SECURE_AGENT_TEST_PG_PORT" -U postgres -v ON_ERROR_STOP=1)
	PGPASSWORD=secure-agent-test "${psql[@]}" -d "$db" <<SQL
DO \$\$
DECLARE s int; t int; cols text;
BEGIN
  SELECT string_agg(format('c%s %s', i, CASE i % 4 WHEN 0 THEN 'text' WHEN 1 THEN 'integer' WHEN 2 THEN 'numeric(12,2)' ELSE 'timestamptz' END), ', ')
    INTO cols FROM generate_series(3, $COLUMNS) i;
  FOR s IN 1..$SCHEMAS LOOP
    EXECUTE format('CREATE SCHEMA s%s', s);
    EXECUTE format('GRANT USAGE ON SCHEMA s%s TO bench_reader', s);
    FOR t IN 1..$TABLES LOOP
      EXECUTE format('CREATE TABLE s%s.t%s (id bigint PRIMARY KEY, parent bigint REFERENCES s%s.t%s(id), %s, CHECK (c5 >= 0))', s, t, s, t, cols);
      EXECUTE format('CREATE INDEX ON s%s.t%s (c3)', s, t);
      EXECUTE format('CREATE INDEX ON s%s.t%s (c4, c5)', s, t);
      EXECUTE format('COMMENT ON TABLE s%s.t%s IS %L', s, t, 'bench table');
    END LOOP;
    EXECUTE format('CREATE TYPE s%s.status AS ENUM (%L, %L, %L)', s, 'new', 'active', 'closed');
    EXECUTE format('CREATE SEQUENCE s%s.ticket_seq', s);
    EXECUTE format('CREATE FUNCTION s%s.touch() RETURNS trigger LANGUAGE plpgsql AS %L', s, 'BEGIN NEW.c7 := now(); RETURN NEW; END');
    FOR t IN 1..LEAST(10, $TABLES - 1) LOOP
      EXECUTE format('CREATE TRIGGER touch BEFORE UPDATE ON s%s.t%s FOR EACH ROW EXECUTE FUNCTION s%s.touch()', s, t, s);
      EXECUTE format('CREATE VIEW s%s.v%s AS SELECT a.id, a.c3, b.c5 + 1 AS c5_next FROM s%s.t%s a JOIN s%s.t%s b ON b.parent = a.id', s, t, s, t, s, t + 1);
    END LOOP;
    COMMIT; -- a transaction per schema: one for all would run out of lock slots
  END LOOP;
END \$\$;
ANALYZE;
SQL
}
