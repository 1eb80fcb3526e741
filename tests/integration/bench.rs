//! `skein bench` against an in-process node: small paced loads of traces
//! and of metrics over gRPC and over HTTP, then the query bench. The
//! reports' keys, their error counts and the stored items are checked;
//! timings never are.

use clap::Parser;
use serde_json::Value;
use skein_bench::{IngestArgs, IngestReport, QueryArgs, Signal, ingest, parquet_bytes, query};

use crate::support::{ClusterBuilder, TestNode};

/// Keys every ingest report has, non-null when the server PID is given.
const INGEST_KEYS: [&str; 8] = [
    "signal",
    "items_per_second",
    "errors",
    "latency_p50_ms",
    "latency_p99_ms",
    "server_cpu_seconds",
    "server_cpu_seconds_per_million_items",
    "server_peak_rss_bytes",
];
const QUERY_KEYS: [&str; 6] =
    ["trace_by_id_p50_ms", "trace_by_id_p99_ms", "search_p50_ms", "search_empty_ms", "sql_ms", "errors"];

fn has_keys(json: &Value, keys: &[&str]) {
    for key in keys {
        assert!(json.get(key).is_some_and(|v| !v.is_null()), "no {key} in {json}");
    }
}

/// Runs `skein bench ingest` with `flags` over gRPC, then over HTTP, and
/// checks each report: no errors, every item acknowledged, the signal's
/// keys. Returns the items acknowledged in all.
async fn ingest_both_ways(node: &TestNode, signal: &str, flags: &[&str]) -> i64 {
    // The node runs in this process, so this process is the server to measure.
    let pid = std::process::id().to_string();
    let (rate_key, other_key) = match signal {
        "traces" => ("spans_per_second", "data_points_per_second"),
        _ => ("data_points_per_second", "spans_per_second"),
    };
    let mut acknowledged = 0;
    for (run, (protocol, endpoint)) in [("grpc", node.otlp_grpc()), ("http", node.otlp_http())].into_iter().enumerate()
    {
        // A seed per run, so the two runs' metric series differ.
        let seed = (run + 1).to_string();
        let mut args = vec!["ingest", "--signal", signal, "--protocol", protocol, "--endpoint", &endpoint];
        args.extend(["--seed", &seed, "--server-pid", &pid, "--json"]);
        args.extend(flags);
        let report: IngestReport =
            ingest(IngestArgs::try_parse_from(args).expect("valid flags")).await.expect("ingest runs");
        let json = serde_json::to_value(&report).expect("serializable");
        has_keys(&json, &INGEST_KEYS);
        has_keys(&json, &[rate_key]);
        assert!(json.get(other_key).is_none(), "{protocol}: {json}");
        assert_eq!(json["signal"], signal, "{protocol}: {json}");
        assert_eq!(json[rate_key], json["items_per_second"], "{protocol}: {json}");
        assert_eq!(json["errors"], 0, "{protocol}: {json}");
        assert!(report.items_acknowledged > 0, "{protocol}: {json}");
        assert_eq!(report.items_acknowledged, report.items_sent, "{protocol}: {json}");
        acknowledged += report.items_acknowledged;
    }
    i64::try_from(acknowledged).expect("small")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_ingest_and_query_run_against_a_node() {
    let node = ClusterBuilder::new().start().await;
    let flags = ["--rate", "400", "--duration", "1s", "--connections", "2", "--batch", "50", "--pool", "4"];
    let acknowledged = ingest_both_ways(&node, "traces", &flags).await;

    node.flush().await;
    assert_eq!(node.sql_count("SELECT count(*) FROM spans").await, acknowledged);
    assert_eq!(node.sql_count("SELECT count(DISTINCT span_id) FROM spans").await, acknowledged, "span IDs are unique");
    let services = node.sql_count("SELECT count(DISTINCT service_name) FROM spans").await;
    assert!(services >= 6, "the shop's services are all there: {services}");

    let pid = std::process::id().to_string();
    let flags =
        ["query", "--endpoint", &node.query(), "--lookups", "5", "--repeat", "2", "--server-pid", &pid, "--json"];
    let report = query(QueryArgs::try_parse_from(flags).expect("valid flags")).await.expect("query bench runs");
    let json = serde_json::to_value(&report).expect("serializable");
    has_keys(&json, &QUERY_KEYS);
    assert_eq!(json["errors"], 0, "{json}");
    assert!(report.known_trace_ids > 0, "{json}");
    for name in [
        "p99_by_operation",
        "error_rate_by_service",
        "p99_by_operation_span_metrics",
        "error_rate_by_service_span_metrics",
    ] {
        assert!(json["sql_ms"][name].is_number(), "no time for {name}: {json}");
    }
    for name in ["latest_20_traces", "red_per_operation", "service_graph"] {
        assert!(json["api_ms"][name].is_number(), "no time for {name}: {json}");
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_ingest_sends_metrics_a_node_stores() {
    let data = tempfile::tempdir().expect("temp dir");
    let node = ClusterBuilder::new().data_dir(data.path()).start().await;
    // 4 × 200 points: the first ticks of the whole fleet, every point type.
    let flags = ["--rate", "2000", "--duration", "1s", "--connections", "2", "--batch", "200", "--pool", "4"];
    let acknowledged = ingest_both_ways(&node, "metrics", &flags).await;

    node.flush().await;
    assert_eq!(node.sql_count("SELECT count(*) FROM metrics").await, acknowledged);
    let distinct = "SELECT count(*) FROM (SELECT DISTINCT series_id, time FROM metrics)";
    assert_eq!(node.sql_count(distinct).await, acknowledged, "no (series, time) point repeats");
    assert_eq!(node.sql_count("SELECT count(DISTINCT metric_type) FROM metrics").await, 5, "every point type");
    let exemplars = "SELECT count(*) FROM metrics WHERE cardinality(exemplars) > 0";
    assert!(node.sql_count(exemplars).await > 0, "some histogram points carry exemplars");
    let services = node.sql_count("SELECT count(DISTINCT service_name) FROM metrics").await;
    assert!(services >= 6, "the shop's services are all there: {services}");

    let metric_bytes = parquet_bytes(data.path().to_owned(), Signal::Metrics).await.expect("data dir readable");
    let span_bytes = parquet_bytes(data.path().to_owned(), Signal::Traces).await.expect("data dir readable");
    assert!(metric_bytes > 0, "metric Parquet files are under <shard>/metrics/");
    assert_eq!(span_bytes, 0, "no span was sent");
    node.stop().await;
}
