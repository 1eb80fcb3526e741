#!/usr/bin/env bash
# Skein against Grafana Tempo on the same machine, the same load and in the
# same run (issue 10, docs/benchmarks.md). Each server gets a fresh data
# directory and the same seeded `skein bench ingest` load (one after the
# other, so neither slows the other's ingest); then the same Tempo-API
# requests are timed against both, alternating
# (scripts/bench_tempo_queries.py), and two SQL aggregates are timed through
# Skein and through DuckDB over Skein's Parquet files (PYTHON needs the
# `duckdb` package). Tempo is built from its own source,
# outside this repository, as ../shared/peers/README.md describes.
#
#   TEMPO=~/.cache/tempo/tempo TEMPO_CONFIG_TEMPLATE=../shared/peers/tempo.yaml.template \
#       scripts/bench-tempo.sh
set -euo pipefail

SKEIN=${SKEIN:-target/release/skein}
TEMPO=${TEMPO:-$HOME/.cache/tempo/tempo}
TEMPO_CONFIG_TEMPLATE=${TEMPO_CONFIG_TEMPLATE:-../shared/peers/tempo.yaml.template}
OUT=${OUT:-bench-tempo}
RATE=${RATE:-40000}
DURATION=${DURATION:-60s}
# Seconds between the end of the loads and the queries.
SETTLE=${SETTLE:-60}
SEED=${SEED:-1}
PYTHON=${PYTHON:-python3}
[ -x "$TEMPO" ] || { echo "no Tempo binary at $TEMPO (see ../shared/peers/README.md)" >&2; exit 1; }
[ -f "$TEMPO_CONFIG_TEMPLATE" ] || { echo "no Tempo config template at $TEMPO_CONFIG_TEMPLATE" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT/skein" "$OUT/tempo"
OUT=$(cd "$OUT" && pwd)

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 1
    for pid in "${pids[@]}"; do
        # Tempo's query frontend can hang on shutdown after a query.
        timeout 40 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

# Waits up to 60 s for a URL to answer 200.
wait_ready() {
    local url=$1 pid=$2
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || { echo "server for $url exited, see $OUT" >&2; exit 1; }
        curl -sf -o /dev/null "$url" && return 0
        sleep 0.2
    done
    echo "$url not ready after 60 s" >&2
    exit 1
}

"$SKEIN" --data-dir "$OUT/skein/data" --log-filter warn all-in-one >"$OUT/skein/server.log" 2>&1 &
skein_pid=$!
pids+=("$skein_pid")
sed "s#@DIR@#$OUT/tempo#g" "$TEMPO_CONFIG_TEMPLATE" >"$OUT/tempo/tempo.yaml"
"$TEMPO" -config.file="$OUT/tempo/tempo.yaml" >"$OUT/tempo/server.log" 2>&1 &
tempo_pid=$!
pids+=("$tempo_pid")
wait_ready http://127.0.0.1:7300/readyz "$skein_pid"
wait_ready http://127.0.0.1:3200/ready "$tempo_pid"

load() {
    local name=$1 endpoint=$2 pid=$3
    "$SKEIN" bench ingest --endpoint "$endpoint" --server-pid "$pid" --seed "$SEED" --rate "$RATE" \
        --duration "$DURATION" --connections 8 --batch 512 --json | tee "$OUT/$name/ingest.json"
}
load skein http://127.0.0.1:4317 "$skein_pid"
load tempo http://127.0.0.1:14317 "$tempo_pid"
sleep "$SETTLE"

"$PYTHON" "$(dirname "$0")/bench_tempo_queries.py" --skein http://127.0.0.1:7300 --tempo http://127.0.0.1:3200 \
    --skein-data "$OUT/skein/data" | tee "$OUT/queries.json"
for name in skein tempo; do
    pid_var="${name}_pid"
    echo "$name: $(du -sb "$OUT/$name" | cut -f1) bytes on disk, $(grep VmHWM "/proc/${!pid_var}/status")"
done | tee "$OUT/disk.txt"
