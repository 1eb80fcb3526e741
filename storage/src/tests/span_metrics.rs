//! The `span_metrics` table follows flushes, buffers, compaction and lost
//! sidecars: its sums always equal an aggregate over the spans.

use super::compaction::{compacting, write_flushed_files};
use super::*;

const FROM_SPANS: &str = "SELECT service_name, name, kind, status_code, date_trunc('minute', start_time) AS t, \
     count(*) AS n, sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS e, sum(duration_ns) AS s, \
     min(duration_ns) AS lo, max(duration_ns) AS hi FROM spans GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5";
const FROM_METRICS: &str = "SELECT service_name, name, kind, status_code, time AS t, sum(calls) AS n, \
     sum(errors) AS e, sum(duration_sum_ns) AS s, min(duration_min_ns) AS lo, max(duration_max_ns) AS hi FROM span_metrics \
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5";

async fn same_numbers(storage: &Storage) {
    let ctx = context(storage);
    ctx.register_table("span_metrics", Arc::clone(&storage.span_metrics_tables()[0])).expect("registers");
    let run = |sql: &'static str| {
        let ctx = ctx.clone();
        async move { ctx.sql(sql).await.expect("plans").collect().await.expect("runs") }
    };
    let (spans, metrics) = (run(FROM_SPANS).await, run(FROM_METRICS).await);
    let spans = datafusion::arrow::util::pretty::pretty_format_batches(&spans).expect("formats").to_string();
    let metrics = datafusion::arrow::util::pretty::pretty_format_batches(&metrics).expect("formats").to_string();
    assert!(spans.lines().count() > 6, "several groups: {spans}");
    assert_eq!(metrics, spans);
}

#[tokio::test]
async fn span_metrics_follow_flushes_buffers_compaction_and_lost_sidecars() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(compacting(quiet_config(dir.path()))).await;
    write_flushed_files(&storage).await;
    let spans = spans_dir(dir.path());
    assert_eq!(files_with_suffix(&spans, ".red").len(), 6, "each flushed file got its sidecar");
    // Buffered spans count too.
    write(&storage, batch_of(trace_spans(40, 4, BASE_NS + 5_000_000))).await;
    same_numbers(&storage).await;

    storage.flush_all().await.expect("flushes");
    assert_eq!(storage.compact_now().await.expect("compacts"), 2);
    assert_eq!(files_with_suffix(&spans, ".red").len(), 2, "sidecars of merged files deleted with them");
    same_numbers(&storage).await;

    for sidecar in files_with_suffix(&spans, ".red") {
        std::fs::remove_file(sidecar).expect("removes");
    }
    same_numbers(&storage).await;
    assert_eq!(files_with_suffix(&spans, ".red").len(), 2, "rebuilt by the scan");
    drop(storage);

    // A sidecar whose span file is gone is an orphan at the next open.
    let orphan = spans.join("date=2024-01-01/hour=00/gone.red");
    std::fs::create_dir_all(orphan.parent().expect("parent")).expect("dir");
    std::fs::write(&orphan, b"stale").expect("writes");
    let storage = open(compacting(quiet_config(dir.path()))).await;
    assert!(!orphan.exists(), "orphan sidecar removed");
    same_numbers(&storage).await;
}
