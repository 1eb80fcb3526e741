#!/usr/bin/env bash
# Measures Skein's performance envelope on this machine (docs/benchmarks.md):
# an all-in-one server and the load generator, both release builds, on the
# same host. Writes every report to $OUT (default ./bench-out).
#
#   scripts/bench-envelope.sh                 # everything (~15 min on 2 cores)
#   STEPS="ingest overload" scripts/bench-envelope.sh
#
# Steps: ingest (60 s at max rate), sustained (60 s at 85% of that rate:
# the rate served with no errors), overload (5x the sustained rate),
# load (to LOAD_SPANS spans), query (after load), metrics (60 s of metric points).
set -euo pipefail

SKEIN=${SKEIN:-target/release/skein}
OUT=${OUT:-bench-out}
DATA=${DATA:-$OUT/data}
STEPS=${STEPS:-"ingest sustained overload load query metrics"}
LOAD_SPANS=${LOAD_SPANS:-20000000}
CONNECTIONS=${CONNECTIONS:-8}
BATCH=${BATCH:-512}
mkdir -p "$OUT"

pid=""
start_server() {
    rm -f "$OUT/ready.json"
    "$SKEIN" --data-dir "$DATA" --log-filter warn all-in-one --ready-file "$OUT/ready.json" \
        >>"$OUT/server.log" 2>&1 &
    pid=$!
    until [ -s "$OUT/ready.json" ]; do
        kill -0 "$pid" 2>/dev/null || { echo "skein exited, see $OUT/server.log" >&2; exit 1; }
        sleep 0.2
    done
}
stop_server() {
    kill -TERM "$pid"
    wait "$pid" || true
}
fresh() {
    rm -rf "$DATA"
    start_server
}
sql_count() {
    curl -sf -X POST localhost:7300/api/v1/sql -H 'content-type: application/json' \
        -d "{\"sql\": \"$1\"}" | sed -E 's/.*"rows":\[\[([0-9]+)\]\].*/\1/'
}
parquet_bytes() {
    find "$DATA" -path "*/$1/*" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s+0}'
}
ingest() {
    "$SKEIN" bench ingest --server-pid "$pid" --connections "$CONNECTIONS" --batch "$BATCH" --json "$@"
}

for step in $STEPS; do
    case $step in
    ingest)
        fresh
        ingest --duration 60s --rate max | tee "$OUT/ingest.json"
        stop_server # flushes everything to Parquet
        start_server
        spans=$(sql_count "SELECT count(*) FROM spans")
        bytes=$(parquet_bytes spans)
        echo "{\"spans\": $spans, \"parquet_bytes\": $bytes, \"bytes_per_span\": $(echo "scale=2; $bytes / $spans" | bc)}" |
            tee "$OUT/at-rest.json"
        stop_server
        ;;
    sustained)
        max=$(sed -E 's/.*"spans_per_second":([0-9]+).*/\1/' "$OUT/ingest.json")
        fresh
        ingest --duration 60s --rate $((max * 85 / 100)) | tee "$OUT/sustained.json"
        stop_server
        ;;
    overload)
        sustained=$(sed -E 's/.*"spans_per_second":([0-9]+).*/\1/' "$OUT/ingest.json")
        fresh
        CONNECTIONS=64 ingest --duration 60s --rate $((sustained * 5)) | tee "$OUT/overload.json"
        stop_server
        ;;
    load)
        fresh
        rate=$(sed -E 's/.*"spans_per_second":([0-9]+).*/\1/' "$OUT/ingest.json")
        seconds=$((LOAD_SPANS / (rate * 9 / 10) + 1))
        ingest --duration "${seconds}s" --rate max | tee "$OUT/load.json"
        stop_server
        ;;
    query)
        start_server
        echo "spans stored: $(sql_count "SELECT count(*) FROM spans")" | tee "$OUT/query-count.txt"
        "$SKEIN" bench query --server-pid "$pid" --json | tee "$OUT/query.json"
        stop_server
        ;;
    metrics)
        fresh
        ingest --signal metrics --duration 60s --rate max | tee "$OUT/metrics.json"
        stop_server
        start_server
        points=$(sql_count "SELECT count(*) FROM metrics")
        bytes=$(parquet_bytes metrics)
        echo "{\"points\": $points, \"parquet_bytes\": $bytes}" | tee "$OUT/metrics-at-rest.json"
        stop_server
        ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
