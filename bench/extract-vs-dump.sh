#!/usr/bin/env bash
# Times the whole ExtractionWorkflow (resolve, preflight, extract, write) against the engine's own
# schema dump on the same catalog, in the same run, and reports the worker's peak RSS.
#
#   bench/extract-vs-dump.sh [postgres|mariadb|all] [schemas] [tables-per-schema]
#
# Default catalog: 50 schemas x 100 tables = 5,000 tables of 20 columns, each with a primary key,
# a foreign key, a CHECK constraint and two more indexes; per schema 10 views joining two tables
# (lineage), 10 triggers, a sequence and a routine (PostgreSQL also an enum type).
# Targets: the workflow takes at most half of pg_dump's (mysqldump's) time; the worker's peak
# RSS stays under 150 MB.
# The temporal CLI's dev server runs Temporal; the agent runs as its own process (`secure-agent
# worker`), so its RSS is the agent's alone. Needs scripts/services (PostgreSQL, MariaDB, CLI).
# KEEP_CATALOG=1 leaves the catalogs in place afterwards (for profiling).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/test-env
. bench/catalog.sh
which=${1:-all}
SCHEMAS=${2:-50}
TABLES=${3:-100}
COLUMNS=20

scripts/services >/dev/null
work=$(mktemp -d /tmp/secure-agent-bench.XXXXXX)
bin=$work/secure-agent
go build -tags noserver -o "$bin" ./cmd/secure-agent
port=$((20000 + RANDOM % 20000))
cleanup() {
	[ -n "${worker_pid:-}" ] && kill "$worker_pid" 2>/dev/null || true
	[ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
.tools/temporal server start-dev --headless --port "$port" --log-level error >"$work/temporal.log" 2>&1 &
server_pid=$!
export TEMPORAL_ADDRESS=127.0.0.1:$port TEMPORAL_NAMESPACE=default
for _ in $(seq 1 100); do .tools/temporal operator namespace describe default --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 && break; sleep 0.2; done

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# run_bench NAME INPUT_JSON DUMP_COMMAND...
run_bench() {
	local name=$1 input=$2; shift 2
	SECURE_AGENT_ENV_ALLOW=BENCH_* SECURE_AGENT_OUTPUT_DIR=$work/out SECURE_AGENT_LOG_LEVEL=warn \
		SECURE_AGENT_TASK_QUEUE=bench "$bin" worker 2>"$work/worker.log" &
	worker_pid=$!
	sleep 1
	echo "$input" >"$work/input.json"
	local t0 t1 t2 t3
	t0=$(now)
	"$bin" run --input "$work/input.json" --task-queue bench >"$work/summary.txt" 2>"$work/run.log" || { cat "$work/run.log" "$work/worker.log"; exit 1; }
	t1=$(now)
	local rss_kb
	rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$worker_pid/status")
	local cpu
	cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$worker_pid/stat")
	kill "$worker_pid"; wait "$worker_pid" 2>/dev/null || true; worker_pid=
	t2=$(now)
	"$@" >"$work/dump.sql"
	t3=$(now)
	local wf dump
	wf=$(secs "$t0" "$t1"); dump=$(secs "$t2" "$t3")
	grep -E "entities|durations" "$work/summary.txt" | sed 's/^ */  /'
	printf '%s: workflow %ss, dump %ss, ratio %s (target <= 0.50), worker peak RSS %d MB (target < 150), worker CPU %ss\n' \
		"$name" "$wf" "$dump" "$(awk -v a="$wf" -v b="$dump" 'BEGIN { printf "%.2f", a / b }')" $((rss_kb / 1024)) "$cpu"
}

bench_postgres() {
	local db=bench_catalog pw=bench-reader-pw
	export PGPASSWORD=secure-agent-test
	local psql=(psql -q -h 127.0.0.1 -p "$SECURE_AGENT_TEST_PG_PORT" -U postgres -v ON_ERROR_STOP=1)
	"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" \
		-c "DROP ROLE IF EXISTS bench_reader" -c "CREATE ROLE bench_reader LOGIN PASSWORD '$pw'"
	echo "building $((SCHEMAS * TABLES)) tables x $COLUMNS columns in PostgreSQL..."
	build_pg_catalog "$db" "$SCHEMAS" "$TABLES" "$COLUMNS"
	export BENCH_PG_PASSWORD=$pw
	run_bench postgres "{\"connector\": \"postgres\", \"connection\": {\"host\": \"127.0.0.1\", \"port\": $SECURE_AGENT_TEST_PG_PORT, \"database\": \"$db\", \"username\": \"bench_reader\", \"password\": \"BENCH_PG_PASSWORD\", \"sslmode\": \"disable\"}, \"secretStore\": {\"type\": \"env\"}${BENCH_OPTIONS:+, \"options\": $BENCH_OPTIONS}}" \
		pg_dump --schema-only -h 127.0.0.1 -p "$SECURE_AGENT_TEST_PG_PORT" -U postgres "$db"
	[ -n "${KEEP_CATALOG:-}" ] || "${psql[@]}" -d postgres -c "DROP DATABASE $db WITH (FORCE)" -c "DROP ROLE bench_reader"
}

bench_mariadb() {
	local pw=bench-reader-pw
	local my=(mariadb --protocol=tcp -h 127.0.0.1 -P "$SECURE_AGENT_TEST_MYSQL_PORT" -uroot -psecure-agent-test)
	echo "building $((SCHEMAS * TABLES)) tables x $COLUMNS columns in MariaDB..."
	{
		echo "DROP USER IF EXISTS 'bench_reader'@'%'; CREATE USER 'bench_reader'@'%' IDENTIFIED BY '$pw'; GRANT SELECT ON mysql.proc TO 'bench_reader'@'%';"
		for s in $(seq 1 "$SCHEMAS"); do
			echo "DROP DATABASE IF EXISTS bench_s$s; CREATE DATABASE bench_s$s; GRANT SELECT, SHOW VIEW, TRIGGER ON bench_s$s.* TO 'bench_reader'@'%'; USE bench_s$s;"
			for t in $(seq 1 "$TABLES"); do
				printf 'CREATE TABLE t%s (id bigint PRIMARY KEY, parent bigint, ' "$t"
				for c in $(seq 3 "$COLUMNS"); do
					case $((c % 4)) in 0) ty=text ;; 1) ty=int ;; 2) ty='decimal(12,2)' ;; *) ty=datetime ;; esac
					printf 'c%s %s, ' "$c" "$ty"
				done
				printf 'KEY (c4(20)), KEY (c5, c8(10)), FOREIGN KEY (parent) REFERENCES t%s(id), CHECK (c5 >= 0)) COMMENT %s;\n' "$t" "'bench table'"
			done
			echo "CREATE SEQUENCE ticket_seq; CREATE PROCEDURE touch_all() UPDATE t1 SET c7 = NOW();"
			for t in $(seq 1 "$(( TABLES > 10 ? 10 : TABLES - 1 ))"); do
				echo "CREATE TRIGGER touch$t BEFORE UPDATE ON t$t FOR EACH ROW SET NEW.c7 = NOW();"
				echo "CREATE VIEW v$t AS SELECT a.id, a.c3, b.c5 + 1 AS c5_next FROM t$t a JOIN t$((t + 1)) b ON b.parent = a.id;"
			done
		done
	} >"$work/mariadb.sql"
	"${my[@]}" <"$work/mariadb.sql"
	export BENCH_MYSQL_PASSWORD=$pw
	run_bench mariadb "{\"connector\": \"mysql\", \"connection\": {\"host\": \"127.0.0.1\", \"port\": $SECURE_AGENT_TEST_MYSQL_PORT, \"username\": \"bench_reader\", \"password\": \"BENCH_MYSQL_PASSWORD\", \"tls\": \"disable\"}, \"filters\": {\"includeSchemas\": [\"bench_s*\"]}, \"secretStore\": {\"type\": \"env\"}}" \
		mariadb-dump --no-data --protocol=tcp -h 127.0.0.1 -P "$SECURE_AGENT_TEST_MYSQL_PORT" -uroot -psecure-agent-test --databases $(seq -f 'bench_s%g' 1 "$SCHEMAS")
	[ -n "${KEEP_CATALOG:-}" ] || { for s in $(seq 1 "$SCHEMAS"); do echo "DROP DATABASE bench_s$s;"; done; echo "DROP USER 'bench_reader'@'%';"; } | "${my[@]}"
}

case "$which" in
	postgres) bench_postgres ;;
	mariadb) bench_mariadb ;;
	all) bench_postgres; bench_mariadb ;;
	*) echo "usage: $0 [postgres|mariadb|all] [schemas] [tables-per-schema]" >&2; exit 2 ;;
esac
