//! Shards that move between storage nodes through the object store's
//! write-ahead log (a `file://` store here; the cluster tests use
//! SeaweedFS): a node that takes a shard over sees every acknowledged row,
//! and the node it took it from can no longer write or flush it.

use super::bucket::{bucket_config, bucket_spans};
use super::*;
use crate::{StorageError, WalPlacement};
use skein_model::WriteError;

/// A storage node holding shard 0 of 1, its WAL in the bucket.
async fn node(data: &Path, bucket: &Path) -> Arc<Storage> {
    node_with_metrics(data, bucket, &mut Registry::default()).await
}

async fn node_with_metrics(data: &Path, bucket: &Path, registry: &mut Registry) -> Arc<Storage> {
    Storage::open_shards(
        bucket_config(data, bucket),
        &[0],
        WalPlacement::ObjectStore,
        registry,
        CancellationToken::new(),
    )
    .await
    .expect("storage node opens")
}

/// The value of one sample line of `registry` (its name and labels as written).
fn sample(registry: &Registry, series: &str) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encodes");
    let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in {text}"));
    line[series.len()..].trim().to_owned()
}

#[tokio::test]
async fn a_node_taking_a_shard_over_sees_every_acknowledged_row_and_fences_the_old_owner() {
    let bucket = tempfile::tempdir().expect("tempdir");
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let first = batch_of(trace_spans(1, 3, BASE_NS));
    let a = node(dir_a.path(), bucket.path()).await;
    write(&a, first.clone()).await;
    // Nothing was flushed: the rows are only in the bucket's WAL.
    assert!(files_with_suffix(&bucket_spans(bucket.path()), ".parquet").is_empty());

    let b = node(dir_b.path(), bucket.path()).await;
    assert_eq!(all_records(&b).await, records(std::slice::from_ref(&first)), "replayed from the bucket");

    // The old owner learns it lost the shard at its next write, and stops serving it.
    let refused = a.write_spans(0, batch_of(trace_spans(2, 1, BASE_NS))).await.expect_err("fenced");
    assert!(matches!(refused, WriteError::NotOwner { .. }), "{refused}");
    assert!(refused.class().retry_after().is_some(), "retryable for the client");
    assert!(!a.holds_shard(0));
    assert_eq!(a.fenced_shards(), vec![0]);
    a.close().await.expect("a fenced node closes without flushing");

    let second = batch_of(trace_spans(3, 2, BASE_NS));
    write(&b, second.clone()).await;
    b.flush_all().await.expect("the new owner flushes");
    b.close().await.expect("closes");
    let remote_wal = bucket_spans(bucket.path()).join("wal");
    assert!(
        files_with_suffix(&remote_wal, ".wal").iter().all(|p| p.metadata().expect("stat").len() < 64),
        "flushed group commits are deleted; fences stay"
    );

    // The first node takes it back: every row once, from Parquet.
    let a = node(dir_a.path(), bucket.path()).await;
    assert_eq!(all_records(&a).await, records(&[first, second]));
    a.close().await.expect("closes");
}

#[tokio::test]
async fn a_node_frozen_until_the_new_owner_flushed_still_finds_its_fence() {
    let bucket = tempfile::tempdir().expect("tempdir");
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let a = node(dir_a.path(), bucket.path()).await;
    write(&a, batch_of(trace_spans(1, 2, BASE_NS))).await;
    // A is frozen here. B takes over, writes, flushes: its checkpoint now
    // covers the number A asks for next.
    let b = node(dir_b.path(), bucket.path()).await;
    write(&b, batch_of(trace_spans(2, 2, BASE_NS))).await;
    b.flush_all().await.expect("flushes");
    // A wakes up and writes: acknowledging now would lose the rows.
    let refused = a.write_spans(0, batch_of(trace_spans(3, 2, BASE_NS))).await.expect_err("still fenced");
    assert!(matches!(refused, WriteError::NotOwner { .. }), "{refused}");
    assert_eq!(all_records(&b).await.len(), 4);
    b.close().await.expect("closes");
    a.close().await.expect("closes");
}

#[tokio::test]
async fn a_fenced_node_cannot_commit_a_flush() {
    let bucket = tempfile::tempdir().expect("tempdir");
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let rows = batch_of(trace_spans(1, 4, BASE_NS));
    let a = node(dir_a.path(), bucket.path()).await;
    write(&a, rows.clone()).await;
    let b = node(dir_b.path(), bucket.path()).await;

    // The old owner's flush loses the manifest race and must not publish files.
    let err = a.flush_all().await.expect_err("fenced flush");
    assert!(matches!(err, StorageError::ManifestConflict { .. }), "{err}");
    assert_eq!(a.fenced_shards(), vec![0]);
    assert!(files_with_suffix(&bucket_spans(bucket.path()), ".parquet").is_empty(), "its uploads are removed");

    assert_eq!(all_records(&b).await, records(std::slice::from_ref(&rows)));
    b.flush_all().await.expect("the owner flushes");
    crash(b).await;
    let dir_c = tempfile::tempdir().expect("tempdir");
    let c = node(dir_c.path(), bucket.path()).await;
    assert_eq!(all_records(&c).await, records(&[rows]), "exactly once after a flush and a third owner");
}

#[tokio::test]
async fn a_retried_batch_is_stored_once_also_after_a_takeover() {
    let bucket = tempfile::tempdir().expect("tempdir");
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let rows = batch_of(trace_spans(7, 3, BASE_NS));
    let a = node(dir_a.path(), bucket.path()).await;
    write(&a, rows.clone()).await;
    write(&a, rows.clone()).await;
    assert_eq!(all_records(&a).await.len(), 3, "the repeat was acknowledged, not stored");
    crash(a).await;

    // The retry reaches the node that took over: it knows the batch from the WAL it replayed.
    let b = node(dir_b.path(), bucket.path()).await;
    write(&b, rows.clone()).await;
    assert_eq!(all_records(&b).await, records(&[rows]));
    b.close().await.expect("closes");
}

#[tokio::test]
async fn release_flushes_and_lets_the_next_owner_start_from_parquet() {
    let bucket = tempfile::tempdir().expect("tempdir");
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let rows = batch_of(trace_spans(9, 2, BASE_NS));
    let mut registry = Registry::default();
    let a = node_with_metrics(dir_a.path(), bucket.path(), &mut registry).await;
    write(&a, rows.clone()).await;
    a.flush_all().await.expect("flushes");
    let files = r#"skein_storage_parquet_files{signal="spans"}"#;
    assert_eq!(sample(&registry, files), "1");
    let more = batch_of(trace_spans(10, 2, BASE_NS));
    write(&a, more.clone()).await;
    a.release(0).await.expect("releases");
    assert!(a.local_shards().is_empty());
    assert_eq!(sample(&registry, files), "0", "a released shard's files are no longer counted");
    let refused = a.write_spans(0, rows.clone()).await.expect_err("not held");
    assert!(matches!(refused, WriteError::NoSuchShard(0)), "{refused}");
    assert_eq!(files_with_suffix(&bucket_spans(bucket.path()), ".parquet").len(), 2, "the rest flushed on release");

    let b = node(dir_b.path(), bucket.path()).await;
    assert_eq!(all_records(&b).await, records(&[rows, more]));
    b.close().await.expect("closes");
    a.close().await.expect("closes");
}
