#!/usr/bin/env python3
"""Times the same Tempo-API requests against Skein and Grafana Tempo.

Both servers answer Tempo's HTTP API (`/api/search`, `/api/traces/{id}`),
so every request is byte-for-byte the same URL on each. Requests run one
at a time, alternating between the servers, so both see the same machine
load. Prints one JSON object: per query and server, the latency
percentiles (whole response read) and what the answers held, so a fast
answer that found nothing is visible as such.

With `--skein-data DIR` it also times two SQL aggregates over all spans
(error rate per service, p99 duration per operation) through Skein's SQL
API and through DuckDB (`pip install duckdb`, two threads) over the span
files Skein's manifests list in DIR, the same Parquet files.

    scripts/bench_tempo_queries.py --skein http://127.0.0.1:7300 --tempo http://127.0.0.1:3200
"""

import argparse
import glob
import json
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request


def get(base, path, timeout):
    request = urllib.request.Request(base + path, headers={"Accept": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    return time.perf_counter() - started, status, body


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def summary(latencies, statuses, found):
    ms = sorted(1000 * s for s in latencies)
    return {
        "requests": len(ms),
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
        "statuses": sorted(set(statuses)),
        "found": found,
    }


def search_path(window_s, limit, tags=None, min_duration=None):
    end = int(time.time())
    params = {"start": str(end - window_s), "end": str(end), "limit": str(limit)}
    if tags:
        params["tags"] = tags
    if min_duration:
        params["minDuration"] = min_duration
    return "/api/search?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def trace_ids(base, window_s, timeout):
    """Trace IDs a server reports for the window, from its own search."""
    _, status, body = get(base, search_path(window_s, 1000), timeout)
    if status != 200:
        raise SystemExit(f"{base}: search for trace IDs answered {status}: {body[:200]!r}")
    return [t["traceID"] for t in json.loads(body).get("traces", [])]


SQL_AGGREGATES = {
    "error_rate_per_service": (
        "SELECT service_name, count(*) AS spans, "
        "avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate "
        "FROM spans GROUP BY service_name ORDER BY error_rate DESC"
    ),
    "p99_per_operation": (
        "SELECT service_name, name, count(*) AS spans, {p99} AS p99_ns "
        "FROM spans GROUP BY service_name, name ORDER BY p99_ns DESC LIMIT 50"
    ),
}


def span_files(data_dir):
    """The span files Skein's manifests list (compaction leaves replaced files on disk for a while)."""
    files = []
    for manifest in glob.glob(os.path.join(data_dir, "**", "spans", "manifest.json"), recursive=True):
        signal_dir = os.path.dirname(manifest)
        with open(manifest) as f:
            files += [os.path.join(signal_dir, entry["path"]) for entry in json.load(f)["files"]]
    return files


def sql_comparison(skein, data_dir, repeat, timeout):
    import duckdb

    files = span_files(data_dir)
    if not files:
        raise SystemExit(f"no span files listed in the manifests under {data_dir}")
    db = duckdb.connect()
    db.execute("PRAGMA threads=2")
    db.execute(f"CREATE VIEW spans AS SELECT * FROM read_parquet({files!r})")
    out = {"files": len(files)}
    for name, template in SQL_AGGREGATES.items():
        skein_sql = template.format(p99="approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns)")
        duck_sql = template.format(p99="approx_quantile(duration_ns, 0.99)")
        runs = {"skein": [], "duckdb": []}
        rows = {}
        for _ in range(repeat):
            body = json.dumps({"sql": skein_sql}).encode()
            request = urllib.request.Request(
                skein + "/api/v1/sql", data=body, headers={"Content-Type": "application/json"}
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=timeout) as response:
                rows["skein"] = len(json.loads(response.read())["rows"])
            runs["skein"].append(time.perf_counter() - started)
            started = time.perf_counter()
            rows["duckdb"] = len(db.execute(duck_sql).fetchall())
            runs["duckdb"].append(time.perf_counter() - started)
        out[name] = {
            engine: summary(lat, [200], {"rows": rows[engine]}) for engine, lat in runs.items()
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skein", default="http://127.0.0.1:7300")
    parser.add_argument("--tempo", default="http://127.0.0.1:3200")
    parser.add_argument("--window", type=int, default=3600, help="search window in seconds, ending now")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each search per server")
    parser.add_argument("--lookups", type=int, default=200, help="trace-by-ID lookups per server")
    parser.add_argument("--service", default="frontend")
    parser.add_argument("--attr", default="http.route=/api/checkout")
    parser.add_argument("--min-duration", default="50ms")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skein-data", help="Skein's data directory: also compare SQL aggregates with DuckDB")
    parser.add_argument("--sql-repeat", type=int, default=5, help="runs of each SQL aggregate per engine")
    args = parser.parse_args()
    servers = {"skein": args.skein.rstrip("/"), "tempo": args.tempo.rstrip("/")}

    searches = {
        "latest_20": dict(limit=20),
        "service_attribute_min_duration": dict(
            limit=20, tags=f"service.name={args.service} {args.attr}", min_duration=args.min_duration
        ),
        "no_match": dict(limit=20, tags="service.name=skein-bench-no-such-service"),
    }
    report = {"window_seconds": args.window, "queries": {}}
    for name, query in searches.items():
        runs = {server: ([], [], []) for server in servers}
        for _ in range(args.repeat):
            for server, base in servers.items():
                latency, status, body = get(base, search_path(args.window, **query), args.timeout)
                runs[server][0].append(latency)
                runs[server][1].append(status)
                runs[server][2].append(len(json.loads(body).get("traces", [])) if status == 200 else 0)
        report["queries"][name] = {
            server: summary(lat, st, {"traces_min": min(n), "traces_max": max(n)})
            for server, (lat, st, n) in runs.items()
        }

    rng = random.Random(args.seed)
    lookups = {}
    for server, base in servers.items():
        known = trace_ids(base, args.window, args.timeout)
        if not known:
            raise SystemExit(f"{server}: its search found no traces to look up")
        lookups[server] = [rng.choice(known) for _ in range(args.lookups)]
    runs = {server: ([], [], []) for server in servers}
    for i in range(args.lookups):
        for server, base in servers.items():
            latency, status, body = get(base, f"/api/traces/{lookups[server][i]}", args.timeout)
            runs[server][0].append(latency)
            runs[server][1].append(status)
            runs[server][2].append(len(body))
    report["queries"]["trace_by_id"] = {
        server: summary(lat, st, {"bytes_mean": round(sum(n) / len(n))}) for server, (lat, st, n) in runs.items()
    }
    if args.skein_data:
        report["sql"] = sql_comparison(servers["skein"], args.skein_data, args.sql_repeat, args.timeout)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
