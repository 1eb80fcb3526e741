//! The `span_links` table follows flushes, buffers, compaction and lost
//! sidecars: it always holds one row per link of the stored spans, exactly
//! what unnesting the spans' links gives.

use opentelemetry_proto::tonic::trace::v1::span::Link;

use super::compaction::compacting;
use super::*;

/// Every link of the stored spans, from the spans.
const FROM_SPANS: &str = "SELECT link['trace_id'] AS linked_trace_id, link['span_id'] AS linked_span_id, \
     trace_id, span_id, service_name, name, start_time \
     FROM (SELECT trace_id, span_id, service_name, name, start_time, unnest(links) AS link FROM spans) \
     ORDER BY 1, 2, 3, 4, 7";
const FROM_LINKS: &str = "SELECT linked_trace_id, linked_span_id, trace_id, span_id, service_name, name, start_time \
     FROM span_links ORDER BY 1, 2, 3, 4, 7";

fn links_context(storage: &Storage) -> SessionContext {
    let ctx = context(storage);
    ctx.register_table("span_links", Arc::clone(&storage.span_links_tables()[0])).expect("registers");
    ctx
}

/// The span-links table equals the links unnested from the spans; returns it.
async fn same_links(storage: &Storage) -> String {
    let ctx = links_context(storage);
    let (spans, links) = (run(&ctx, FROM_SPANS).await, run(&ctx, FROM_LINKS).await);
    assert_eq!(links, spans);
    links
}

/// Spans of trace `n` (one per hour given) each linking to span 1 of trace 70.
fn linking_spans(n: u32, hours: &[u64]) -> Vec<Span> {
    let mut spans = trace_spans(n, hours.len() as u32, BASE_NS);
    for (span, hour) in spans.iter_mut().zip(hours) {
        span.start_time_unix_nano = BASE_NS + hour * HOUR_NS;
        span.end_time_unix_nano = span.start_time_unix_nano + 500;
        span.links = vec![Link {
            trace_id: trace_id(70),
            span_id: trace_spans(70, 1, 0)[0].span_id.clone(),
            ..Default::default()
        }];
    }
    spans
}

#[tokio::test]
async fn span_links_follow_flushes_buffers_compaction_and_lost_sidecars() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(compacting(quiet_config(dir.path()))).await;
    write(&storage, batch_of(trace_spans(70, 2, BASE_NS))).await;
    // Links from two traces, hours apart, over three flushed files.
    for (n, hours) in [(71, &[0u64, 5][..]), (72, &[0][..]), (71, &[5][..])] {
        write(&storage, batch_of(linking_spans(n, hours))).await;
        storage.flush_all().await.expect("flushes");
    }
    let spans = spans_dir(dir.path());
    assert_eq!(files_with_suffix(&spans, ".links").len(), 4, "each flushed span file got its sidecar");
    // Buffered spans' links count too.
    write(&storage, batch_of(linking_spans(73, &[1]))).await;
    let table = same_links(&storage).await;
    assert_eq!(table.matches(&trace_hex(70)).count(), 5, "five links to trace 70: {table}");

    storage.flush_all().await.expect("flushes");
    assert!(storage.compact_now().await.expect("compacts") >= 1);
    same_links(&storage).await;
    let sidecars = files_with_suffix(&spans, ".links");
    assert_eq!(sidecars.len(), files_with_suffix(&spans, ".parquet").len(), "sidecars follow merged files");
    for sidecar in sidecars {
        std::fs::remove_file(sidecar).expect("removes");
    }
    same_links(&storage).await;
    assert_eq!(files_with_suffix(&spans, ".links").len(), files_with_suffix(&spans, ".parquet").len(), "rebuilt");
    // A time filter prunes the files of other hours.
    let ctx = links_context(&storage);
    let late = format!("SELECT * FROM span_links WHERE start_time >= to_timestamp_nanos({})", BASE_NS + 5 * HOUR_NS);
    assert!(planned_files_in(&ctx, &late).await < planned_files_in(&ctx, "SELECT * FROM span_links").await);
}
