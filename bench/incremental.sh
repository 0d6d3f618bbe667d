#!/usr/bin/env bash
# Times incremental re-runs against full runs of the same PostgreSQL catalog, in the same run:
#
#   bench/incremental.sh [schemas] [tables-per-schema] [repeats]
#
# Default catalog: bench/catalog.sh's, 50 schemas x 100 tables = 5,000 tables. It measures, each
# `repeats` times (default 3) and reports the medians:
#   full       a run without options.incremental (what every run cost before);
#   unchanged  options.incremental=auto, nothing changed since the previous run;
#   one-of-N   options.incremental=auto after a column was added to one table of one schema.
# Targets (issue 16): unchanged <= 0.2 x full; one schema of 50 changed <= 0.3 x full.
# Times are wall clock of `secure-agent run` (start to summary; the targets are judged on these),
# and the workflow's own duration (the summary's total: what a scheduled run takes, without the
# CLI process's start), against the temporal CLI's dev server, one agent process
# (`secure-agent worker`) for every run. Needs scripts/services.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/test-env
. bench/catalog.sh
SCHEMAS=${1:-50}
TABLES=${2:-100}
REPEATS=${3:-3}
COLUMNS=20

scripts/services >/dev/null
work=$(mktemp -d /tmp/secure-agent-bench.XXXXXX)
bin=$work/secure-agent
go build -tags noserver -o "$bin" ./cmd/secure-agent
port=$((20000 + RANDOM % 20000))
db=bench_incremental pw=bench-reader-pw
export PGPASSWORD=secure-agent-test
psql=(psql -q -h 127.0.0.1 -p "$SECURE_AGENT_TEST_PG_PORT" -U postgres -v ON_ERROR_STOP=1)
cleanup() {
	[ -n "${worker_pid:-}" ] && kill "$worker_pid" 2>/dev/null || true
	[ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	[ -n "${KEEP_CATALOG:-}" ] || "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP ROLE IF EXISTS bench_reader" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
# The dev server has one history shard, whose transfer queue (which hands every scheduled task to
# matching) polls at most 20 times a second by default: back-to-back quarter-second runs exceed
# that, and every task then waits about 40 ms for its turn, which measures the bench's cadence,
# not a run. A cluster spreads runs over many shards; here the limit is raised.
.tools/temporal server start-dev --headless --port "$port" --log-level error \
	--dynamic-config-value history.transferProcessorMaxPollRPS=1000 >"$work/temporal.log" 2>&1 &
server_pid=$!
export TEMPORAL_ADDRESS=127.0.0.1:$port TEMPORAL_NAMESPACE=default
for _ in $(seq 1 100); do .tools/temporal operator namespace describe default --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 && break; sleep 0.2; done

"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" \
	-c "DROP ROLE IF EXISTS bench_reader" -c "CREATE ROLE bench_reader LOGIN PASSWORD '$pw'"
echo "building $((SCHEMAS * TABLES)) tables x $COLUMNS columns in PostgreSQL..."
build_pg_catalog "$db" "$SCHEMAS" "$TABLES" "$COLUMNS"
"${psql[@]}" -d "$db" -c "VACUUM ANALYZE" -c "CHECKPOINT"

BENCH_PG_PASSWORD=$pw SECURE_AGENT_ENV_ALLOW=BENCH_* SECURE_AGENT_OUTPUT_DIR=$work/out SECURE_AGENT_LOG_LEVEL=warn \
	SECURE_AGENT_TASK_QUEUE=bench "$bin" worker >"$work/worker.out" 2>"$work/worker.log" &
worker_pid=$!
sleep 1

input() { # input MODE
	local opts=""
	[ -n "$1" ] && opts=", \"options\": {\"incremental\": \"$1\"}"
	echo "{\"connector\": \"postgres\", \"source\": \"bench\", \"connection\": {\"host\": \"127.0.0.1\", \"port\": $SECURE_AGENT_TEST_PG_PORT, \"database\": \"$db\", \"username\": \"bench_reader\", \"password\": \"BENCH_PG_PASSWORD\", \"sslmode\": \"disable\"}, \"secretStore\": {\"type\": \"env\"}$opts}"
}
now() { date +%s.%N; }
# timed MODE SERIES: runs once, prints the wall-clock seconds, adds the workflow's own to SERIES
timed() {
	input "$1" >"$work/input.json"
	local t0 t1
	t0=$(now)
	"$bin" run --quiet --input "$work/input.json" --task-queue bench >"$work/summary.txt" 2>"$work/run.log" || { cat "$work/run.log" "$work/worker.log" >&2; exit 1; }
	t1=$(now)
	[ -n "${BENCH_VERBOSE:-}" ] && { echo "mode ${1:-none}:"; grep -E "changes|durations" "$work/summary.txt"; } >&2
	# The workflow's own duration (the summary's "total", start to end of the run in Temporal,
	# what a scheduled run costs), kept beside the wall clock.
	sed -nE 's/.*total ([0-9.]+)(m?s)$/\1 \2/p' "$work/summary.txt" | awk '{ printf "%.3f\n", ($2 == "ms") ? $1 / 1000 : $1 }' >>"$work/workflow.$2"
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

timed "" warm >/dev/null      # warm the server, the agent and PostgreSQL's caches
timed full warm >/dev/null    # the base of the auto runs
full=() unchanged=() changed=()
for i in $(seq 1 "$REPEATS"); do
	full+=("$(timed "" full)")
	unchanged+=("$(timed auto unchanged)")
	"${psql[@]}" -d "$db" -c "ALTER TABLE s7.t1 ADD COLUMN bench_added_$i text" -c "VACUUM ANALYZE s7.t1" >/dev/null
	changed+=("$(timed auto changed)")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
f=$(median "${full[@]}") u=$(median "${unchanged[@]}") c=$(median "${changed[@]}")
echo "wall clock of secure-agent run (start to summary):"
printf '  full runs:        %s s (median of %s)\n' "$f" "${full[*]}"
printf '  unchanged (auto): %s s (median of %s): ratio %s (target <= 0.20)\n' "$u" "${unchanged[*]}" "$(ratio "$u" "$f")"
printf '  1 of %s changed: %s s (median of %s): ratio %s (target <= 0.30)\n' "$SCHEMAS" "$c" "${changed[*]}" "$(ratio "$c" "$f")"
wf=$(median $(cat "$work/workflow.full")) wu=$(median $(cat "$work/workflow.unchanged")) wc=$(median $(cat "$work/workflow.changed"))
echo "the workflow's own duration (the summary's total):"
printf '  full %s s, unchanged %s s (ratio %s), 1 of %s changed %s s (ratio %s)\n' "$wf" "$wu" "$(ratio "$wu" "$wf")" "$SCHEMAS" "$wc" "$(ratio "$wc" "$wf")"
