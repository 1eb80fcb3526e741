//! `skein bench` against an in-process node: a small paced load over gRPC
//! and over HTTP, then the query bench. The reports' keys, their error
//! counts and the stored spans are checked; timings never are.

use clap::Parser;
use serde_json::Value;
use skein::bench::{IngestArgs, QueryArgs, ingest, query};

use crate::support::ClusterBuilder;

const INGEST_KEYS: [&str; 6] = [
    "spans_per_second",
    "errors",
    "latency_p50_ms",
    "latency_p99_ms",
    "server_cpu_seconds_per_million_spans",
    "server_peak_rss_bytes",
];
const QUERY_KEYS: [&str; 6] =
    ["trace_by_id_p50_ms", "trace_by_id_p99_ms", "search_p50_ms", "search_empty_ms", "sql_ms", "errors"];

fn has_keys(json: &Value, keys: &[&str]) {
    for key in keys {
        assert!(json.get(key).is_some_and(|v| !v.is_null()), "no {key} in {json}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_ingest_and_query_run_against_a_node() {
    let node = ClusterBuilder::new().start().await;
    // The node runs in this process, so this process is the server to measure.
    let pid = std::process::id().to_string();
    let mut acknowledged = 0;
    for (protocol, endpoint) in [("grpc", node.otlp_grpc()), ("http", node.otlp_http())] {
        let flags = [
            "ingest",
            "--protocol",
            protocol,
            "--endpoint",
            &endpoint,
            "--rate",
            "400",
            "--duration",
            "1s",
            "--connections",
            "2",
            "--batch",
            "50",
            "--pool",
            "4",
            "--server-pid",
            &pid,
            "--json",
        ];
        let report = ingest(IngestArgs::try_parse_from(flags).expect("valid flags")).await.expect("ingest runs");
        let json = serde_json::to_value(&report).expect("serializable");
        has_keys(&json, &INGEST_KEYS);
        assert_eq!(json["errors"], 0, "{protocol}: {json}");
        assert!(report.spans_acknowledged > 0, "{protocol}: {json}");
        assert_eq!(report.spans_acknowledged, report.spans_sent, "{protocol}: {json}");
        acknowledged += report.spans_acknowledged;
    }

    node.flush().await;
    let acknowledged = i64::try_from(acknowledged).expect("small");
    assert_eq!(node.sql_count("SELECT count(*) FROM spans").await, acknowledged);
    assert_eq!(node.sql_count("SELECT count(DISTINCT span_id) FROM spans").await, acknowledged, "span IDs are unique");
    let services = node.sql_count("SELECT count(DISTINCT service_name) FROM spans").await;
    assert!(services >= 6, "the shop's services are all there: {services}");

    let flags =
        ["query", "--endpoint", &node.query(), "--lookups", "5", "--repeat", "2", "--server-pid", &pid, "--json"];
    let report = query(QueryArgs::try_parse_from(flags).expect("valid flags")).await.expect("query bench runs");
    let json = serde_json::to_value(&report).expect("serializable");
    has_keys(&json, &QUERY_KEYS);
    assert_eq!(json["errors"], 0, "{json}");
    assert!(report.known_trace_ids > 0, "{json}");
    for name in ["p99_by_operation", "error_rate_by_service"] {
        assert!(json["sql_ms"][name].is_number(), "no time for {name}: {json}");
    }
    node.stop().await;
}
