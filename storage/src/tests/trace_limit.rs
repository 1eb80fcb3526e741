//! The per-tenant maximum trace size: spans past it are refused and
//! reported in the receipt, other traces are stored, a retry is not counted
//! twice, and the count survives a crash (the WAL is replayed into it).

use std::collections::BTreeMap;

use prometheus_client::encoding::text::encode;
use skein_model::{TenantWriters, WriteReceipt};

use super::*;
use crate::{TenantConfig, TenantStorages};

fn limited(dir: &Path, max_spans: u64) -> StorageConfig {
    StorageConfig { max_spans_per_trace: max_spans, ..quiet_config(dir) }
}

fn trace_counts(records: &[SpanRecord]) -> BTreeMap<Vec<u8>, usize> {
    let mut counts = BTreeMap::new();
    for record in records {
        *counts.entry(record.span.trace_id.clone()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn spans_past_the_limit_are_refused_and_reported_and_other_traces_are_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut registry = Registry::default();
    let storage = Storage::open(limited(dir.path(), 5), &mut registry, CancellationToken::new()).await.expect("opens");

    let first = storage.write_spans(0, batch_of(trace_spans(1, 3, BASE_NS))).await.expect("stored");
    assert_eq!(first, WriteReceipt::STORED);
    let mut mixed = trace_spans(1, 4, BASE_NS + 1_000);
    mixed.extend(trace_spans(2, 2, BASE_NS));
    let second = storage.write_spans(0, batch_of(mixed.clone())).await.expect("partly stored");
    assert_eq!(second.refused_rows, 2, "trace 1 had room for 2 of its 4 spans");
    let refusal = second.refusal.expect("a reason");
    assert!(refusal.contains(&trace_hex(1)) && refusal.contains("max_spans_per_trace"), "{refusal}");

    // The same batch again is a client retry: acknowledged, not counted again.
    let retried = storage.write_spans(0, batch_of(mixed)).await.expect("a retry");
    assert_eq!(retried, WriteReceipt::STORED);
    let refused_whole = storage.write_spans(0, batch_of(trace_spans(1, 1, BASE_NS + 9_000))).await.expect("answered");
    assert_eq!(refused_whole.refused_rows, 1, "a batch of refused spans only writes nothing");

    let counts = trace_counts(&all_records(&storage).await);
    assert_eq!(counts.get(&trace_id(1)), Some(&5));
    assert_eq!(counts.get(&trace_id(2)), Some(&2));

    let mut exposition = String::new();
    encode(&mut exposition, &registry).expect("encodes");
    assert!(
        exposition.contains(r#"skein_storage_rows_refused_total{signal="spans",reason="trace_too_large"} 3"#),
        "{exposition}"
    );
}

#[tokio::test]
async fn the_count_survives_a_crash_through_the_replayed_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(limited(dir.path(), 4)).await;
    write(&storage, batch_of(trace_spans(1, 3, BASE_NS))).await;
    crash(storage).await;

    let storage = open(limited(dir.path(), 4)).await;
    let receipt = storage.write_spans(0, batch_of(trace_spans(1, 3, BASE_NS + 5_000))).await.expect("answered");
    assert_eq!(receipt.refused_rows, 2, "3 replayed + 1 more reach the limit of 4");
    assert_eq!(trace_counts(&all_records(&storage).await).get(&trace_id(1)), Some(&4));
}

#[tokio::test]
async fn each_tenant_has_its_own_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig {
        tenants: [("big".to_owned(), TenantConfig { max_spans_per_trace: Some(0), ..TenantConfig::default() })].into(),
        ..limited(dir.path(), 2)
    };
    let tenants =
        TenantStorages::open(config, &mut Registry::default(), CancellationToken::new()).await.expect("opens");
    let small = tenants.writer("small").await.expect("writer");
    let big = tenants.writer("big").await.expect("writer");
    let spans = || batch_of(trace_spans(1, 5, BASE_NS));
    assert_eq!(small.write_spans(0, spans()).await.expect("answered").refused_rows, 3, "the default limit");
    assert_eq!(big.write_spans(0, spans()).await.expect("answered"), WriteReceipt::STORED, "0: no limit");
}

#[tokio::test]
async fn without_a_limit_every_span_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    let receipt = storage.write_spans(0, batch_of(trace_spans(1, 500, BASE_NS))).await.expect("stored");
    assert_eq!(receipt, WriteReceipt::STORED);
    assert_eq!(all_records(&storage).await.len(), 500);
}
