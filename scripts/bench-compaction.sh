#!/usr/bin/env bash
# Compaction on a day of data (docs/benchmarks.md, "Compaction"): the same
# `bench ingest --spread 24h` load into an all-in-one server with compaction
# off and on. For each: ingest rate and server RSS while loading (and, with
# compaction on, merging), then files per hour partition, bytes per span at
# rest, and `bench query` over the last hour and the last 24 h.
# Reports go to $OUT.
#
#   cargo build --release -p skein
#   scripts/bench-compaction.sh
#   DURATION=60s SETUPS=on scripts/bench-compaction.sh
#   SERVER=/tmp/skein-before OUT=bench-out/before SETUPS=on scripts/bench-compaction.sh
#       (another build as the server, this one's bench as the client)
set -euo pipefail

SKEIN=${SKEIN:-target/release/skein}
SERVER=${SERVER:-$SKEIN}
OUT=${OUT:-bench-out/compaction}
SETUPS=${SETUPS:-"off on"}
DURATION=${DURATION:-120s}
CONNECTIONS=${CONNECTIONS:-8}
BATCH=${BATCH:-512}
# Merges are checked every 5 s instead of 30 s so the run settles sooner.
INTERVAL=${INTERVAL:-5s}
rm -rf "$OUT"
mkdir -p "$OUT"

wait_for() { # file pid
    until [ -s "$1" ]; do
        kill -0 "$2" 2>/dev/null || { echo "exited before ready, see $OUT" >&2; exit 1; }
        sleep 0.2
    done
}
metric() { # name: the spans sample of a storage metric
    curl -s http://127.0.0.1:7300/metrics | awk -v m="$1{signal=\"spans\"}" '$1 == m { print $2 }'
}
layout() { # data-dir: files and bytes at rest, largest partition
    python3 - "$1" <<'PY'
import collections, json, os, sys
files, size, per_partition = 0, 0, collections.Counter()
for root, _, names in os.walk(sys.argv[1]):
    for name in names:
        if name.endswith(".parquet") and "/spans/" in root + "/":
            files += 1
            size += os.path.getsize(os.path.join(root, name))
            per_partition[root] += 1
print(json.dumps({"files": files, "bytes": size, "partitions": len(per_partition),
                  "max_files_per_partition": max(per_partition.values(), default=0)}))
PY
}

for setup in $SETUPS; do
    enabled=false
    [ "$setup" = on ] && enabled=true
    data="$OUT/$setup"
    SKEIN_STORAGE__COMPACTION__ENABLED=$enabled SKEIN_STORAGE__COMPACTION__INTERVAL=$INTERVAL \
        "$SERVER" --data-dir "$data" --log-filter warn,skein_storage=info all-in-one --ready-file "$OUT/$setup-ready.json" \
        >"$OUT/$setup.log" 2>&1 &
    pid=$!
    wait_for "$OUT/$setup-ready.json" "$pid"
    "$SKEIN" bench ingest --connections "$CONNECTIONS" --batch "$BATCH" --duration "$DURATION" --rate max \
        --spread 24h --server-pid "$pid" --json | tee "$OUT/$setup-ingest.json"
    # Let merges run until 15 s pass without one.
    previous=-1
    while true; do
        sleep 15
        done_now=$(metric skein_storage_compactions_total)
        [ "$done_now" = "$previous" ] && break
        previous=$done_now
    done
    spans=$(curl -s -X POST http://127.0.0.1:7300/api/v1/sql -H 'content-type: application/json' \
        -d '{"sql": "SELECT count(*) FROM spans"}' | python3 -c "import json,sys; print(json.load(sys.stdin)['rows'][0][0])")
    for window in 1h 24h; do
        "$SKEIN" bench query --window "$window" --server-pid "$pid" --json | tee "$OUT/$setup-query-$window.json"
    done
    # SIGTERM flushes the last buffered spans: then every span is at rest.
    kill -TERM "$pid"
    wait "$pid" || true
    echo "{\"setup\": \"$setup\", \"spans\": $spans, \"compactions\": ${previous}, \"layout\": $(layout "$data")}" \
        | tee "$OUT/$setup-layout.json"
    grep -h "compacted files" "$OUT/$setup.log" | tail -3 || true
done
