#!/usr/bin/env bash
# Load bench: one agent on an in-process Temporal server (temporaltest) runs N small
# ExtractionWorkflows at once (SQLite sources, paths read from a custom HTTP secret store on
# loopback), then, on the same server in the same process, N no-op workflows of one no-op activity
# on a plain SDK worker with the same concurrency limits: the floor of what Temporal itself costs.
#
#   bench/load.sh [workflows] [count]
#
# workflows: concurrent workflows per batch (default 200; SECURE_AGENT_BENCH_WORKFLOWS).
# count:     how many times to run the benchmark (go test -count, default 1).
# Prints throughput (wf/s) and latency (p50/p95, from the start call to the result) of both kinds,
# and the p95 ratio extraction/no-op. Target (issue 7): the p95 of a small extraction is at most 4x
# the no-op floor. The agent uses the defaults of worker/settings.go; SECURE_AGENT_* variables in
# the environment override them (for example SECURE_AGENT_MAX_CONCURRENT_ACTIVITIES=16).
# Needs only Go: no services, no network beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
export SECURE_AGENT_BENCH_WORKFLOWS=${1:-${SECURE_AGENT_BENCH_WORKFLOWS:-200}}
count=${2:-1}
case "$SECURE_AGENT_BENCH_WORKFLOWS$count" in
	*[!0-9]*) echo "usage: $0 [workflows] [count]" >&2; exit 2 ;;
esac
go test -run '^$' -bench BenchmarkLoad -benchtime 1x -count "$count" -timeout 30m ./internal/load
