//! Compaction in the real node: the background loop merges flushed files
//! and every span stays queryable exactly once, also across a `kill -9`
//! that lands while merges run.

use std::time::{Duration, Instant};

use crate::crash::{acknowledged, count, parquet_files, request};
use crate::support::ClusterBuilder;
use crate::support::process::SkeinProcess;
use crate::support::python::send_traces;

/// The value of a sample of the node's Prometheus `/metrics`.
async fn sample(client: &reqwest::Client, query_url: &str, series: &str) -> f64 {
    let text = client.get(format!("{query_url}/metrics")).send().await.expect("sent").text().await.expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("/metrics has no {series}:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compaction_merges_flushed_files_and_keeps_every_span() {
    let node = ClusterBuilder::new()
        .shards(1)
        .configure(|c| {
            c.storage.compaction.interval = Duration::from_millis(100);
            c.storage.compaction.min_files = 2;
            c.storage.compaction.retired_file_grace = Duration::ZERO;
        })
        .start()
        .await;
    let mut sent = Vec::new();
    for round in 0..3 {
        let endpoint = node.otlp_grpc();
        let spans = tokio::task::spawn_blocking(move || send_traces(&endpoint, "grpc", &format!("svc-{round}"), 4))
            .await
            .expect("python thread");
        sent.extend(spans);
        node.flush().await;
    }
    let compactions = r#"skein_storage_compactions_total{signal="spans"}"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sample(&node.http, &node.query(), compactions).await < 1.0 {
        assert!(Instant::now() < deadline, "no compaction within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let files = sample(&node.http, &node.query(), r#"skein_storage_parquet_files{signal="spans"}"#).await;
    assert!(files < 3.0, "three flushed files were merged (now {files})");
    let stored = node.sql_count("SELECT count(*) FROM spans").await;
    assert_eq!(stored, i64::try_from(sent.len()).expect("fits"), "every span once");
    let distinct = node.sql_count("SELECT count(DISTINCT span_id) FROM spans").await;
    assert_eq!(distinct, stored);
    let trace_id = sent[0]["traceId"].as_str().expect("trace_id");
    let spans_of_trace = sent.iter().filter(|s| s["traceId"] == trace_id).count();
    let trace = node.trace(trace_id).await;
    assert_eq!(trace["spans"].as_array().map(Vec::len), Some(spans_of_trace), "{trace}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_compaction_loses_and_duplicates_nothing() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let client = skein_bench::client::http_client();
    let no_compaction = [("SKEIN_STORAGE__COMPACTION__ENABLED", "false")];
    // Several flushed files per shard: each run's SIGTERM flushes one.
    let mut acked = 0i64;
    let mut trace = 0;
    for _ in 0..4 {
        let process = SkeinProcess::start_with_env(&data, &no_compaction);
        for _ in 0..20 {
            trace += 1;
            assert!(acknowledged(&client, &format!("{}/v1/traces", process.otlp_http), &request(trace, 10)).await);
            acked += 10;
        }
        process.terminate();
    }
    let before = parquet_files(&data);

    // Merges start at once (the test data's hour is long finished); the
    // kill lands while they run, and while new spans are acknowledged.
    let compacting =
        [("SKEIN_STORAGE__COMPACTION__INTERVAL", "10ms"), ("SKEIN_STORAGE__COMPACTION__RETIRED_FILE_GRACE", "0s")];
    let process = SkeinProcess::start_with_env(&data, &compacting);
    for _ in 0..5 {
        trace += 1;
        assert!(acknowledged(&client, &format!("{}/v1/traces", process.otlp_http), &request(trace, 10)).await);
        acked += 10;
    }
    process.kill9();

    let process = SkeinProcess::start_with_env(&data, &compacting);
    assert_eq!(count(&process.query, "SELECT count(*) FROM spans").await, acked, "every acknowledged span once");
    assert_eq!(count(&process.query, "SELECT count(DISTINCT span_id) FROM spans").await, acked);
    let deadline = Instant::now() + Duration::from_secs(60);
    while parquet_files(&data) >= before {
        assert!(Instant::now() < deadline, "files were not merged within 60 s (still {})", parquet_files(&data));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&process.query, "SELECT count(*) FROM spans").await, acked, "and once more after merging");
    process.terminate();
}
