//! Back-pressure, background flushing, retention and configuration checks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use skein_model::WriteError;

use super::*;
use crate::StorageError;

/// Upper bound for waiting on a background event; reaching it fails the test.
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn full_queue_is_overloaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(StorageConfig { wal_queue_depth: 1, ..quiet_config(dir.path()) }).await;
    let resume = span_shard(&storage).pause_writer().await;

    let first = batch_of(trace_spans(1, 2, BASE_NS));
    let pending = storage.write_spans(0, first.clone());
    tokio::pin!(pending);
    assert!(futures::poll!(pending.as_mut()).is_pending(), "queued behind the paused writer");

    let err = storage.write_spans(0, batch_of(trace_spans(2, 2, BASE_NS))).await.expect_err("queue full");
    match &err {
        WriteError::Overloaded { retry_after } => assert_eq!(*retry_after, Duration::from_secs(1)),
        other => panic!("expected overloaded, got {other:?}"),
    }
    assert_eq!(err.class().http_status(), 429);

    resume.send(()).expect("resumes");
    pending.await.expect("the queued write is committed");
    assert_eq!(all_records(&storage).await, records(&[first]));
}

#[tokio::test]
async fn buffer_over_limit_is_unavailable_until_flushed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Background flushing off (the token is already cancelled), so the
    // buffer only drains through explicit flushes.
    let stopped = CancellationToken::new();
    stopped.cancel();
    let config = StorageConfig { flush_max_bytes: 1, max_buffer_bytes: 1, ..quiet_config(dir.path()) };
    let storage = Storage::open(config, &mut Registry::default(), stopped).await.expect("opens");

    write(&storage, batch_of(trace_spans(1, 2, BASE_NS))).await;
    let err = storage.write_spans(0, batch_of(trace_spans(2, 2, BASE_NS))).await.expect_err("buffer full");
    // Flushing behind the ingest rate is overload: clients back off (429).
    assert!(matches!(err, WriteError::Overloaded { .. }), "{err:?}");
    assert_eq!(err.class().http_status(), 429);

    storage.flush_all().await.expect("flushes");
    write(&storage, batch_of(trace_spans(2, 2, BASE_NS))).await;
    storage.close().await.expect("closes");
    let err = storage.write_spans(0, batch_of(trace_spans(3, 2, BASE_NS))).await.expect_err("closed");
    assert!(matches!(err, WriteError::Unavailable { .. }), "{err:?}");
    assert_eq!(all_records(&storage).await.len(), 4);
}

#[tokio::test]
async fn size_and_age_trigger_background_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let by_size = StorageConfig { flush_max_bytes: 1, ..quiet_config(&dir.path().join("size")) };
    let storage = open(by_size).await;
    write(&storage, batch_of(trace_spans(1, 2, BASE_NS))).await;
    tokio::time::timeout(EVENT_TIMEOUT, storage.wait_for_flushes(Signal::Spans, 0, 1))
        .await
        .expect("flushed")
        .expect("waits");
    assert_eq!(span_table(&storage).file_count(), 1);
    assert_eq!(all_records(&storage).await.len(), 2);

    let by_age = StorageConfig { flush_interval: Duration::from_millis(20), ..quiet_config(&dir.path().join("age")) };
    let storage = open(by_age).await;
    write(&storage, batch_of(trace_spans(1, 2, BASE_NS))).await;
    tokio::time::timeout(EVENT_TIMEOUT, storage.wait_for_flushes(Signal::Spans, 0, 1))
        .await
        .expect("flushed")
        .expect("waits");
    assert_eq!(span_table(&storage).file_count(), 1);
    assert_eq!(all_records(&storage).await.len(), 2);
}

#[tokio::test]
async fn retention_drops_whole_expired_hours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig { retention: Some(Duration::from_secs(24 * 3600)), ..quiet_config(dir.path()) };
    let storage = open(config).await;
    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).expect("after epoch").as_nanos() as u64;
    let recent = batch_of(trace_spans(1, 2, now_ns - HOUR_NS));
    write(&storage, batch_of(trace_spans(2, 3, BASE_NS))).await;
    write(&storage, recent.clone()).await;
    storage.flush_all().await.expect("flushes");
    assert_eq!(span_table(&storage).file_count(), 2);

    assert_eq!(storage.enforce_retention().await.expect("retention"), 1);
    assert_eq!(storage.enforce_retention().await.expect("retention"), 0, "nothing left to drop");
    assert_eq!(span_table(&storage).file_count(), 1);
    assert!(!spans_dir(dir.path()).join("date=2023-11-14").exists(), "expired partition removed");
    assert_eq!(all_records(&storage).await, records(std::slice::from_ref(&recent)));
    storage.close().await.expect("closes");
    drop(storage);

    // The manifest was updated: the dropped file stays gone after a restart.
    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_records(&storage).await, records(&[recent]));
}

#[tokio::test]
async fn shard_count_is_fixed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(StorageConfig { shards: 2, ..quiet_config(dir.path()) }).await;
    storage.close().await.expect("closes");
    drop(storage);
    let err = Storage::open(quiet_config(dir.path()), &mut Registry::default(), CancellationToken::new())
        .await
        .expect_err("shrinking refused");
    assert!(matches!(err, StorageError::Config(_)), "{err}");
    assert!(err.to_string().contains("created with 2 shards"), "{err}");
    // Growing is refused too: traces would hash to shards that do not hold them.
    let config = StorageConfig { shards: 3, ..quiet_config(dir.path()) };
    let err = Storage::open(config, &mut Registry::default(), CancellationToken::new()).await.expect_err("growing");
    assert!(err.to_string().contains("is fixed"), "{err}");
    let storage = open(StorageConfig { shards: 2, ..quiet_config(dir.path()) }).await;
    assert_eq!(storage.span_tables().len(), 2);
}

/// A second storage on a directory in use is refused before it reads or
/// writes anything there; once the first is gone, the directory opens again
/// with what was written.
#[tokio::test]
async fn one_storage_per_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    write(&storage, batch_of(trace_spans(1, 3, BASE_NS))).await;
    let err = Storage::open(quiet_config(dir.path()), &mut Registry::default(), CancellationToken::new())
        .await
        .expect_err("a directory in use");
    assert!(matches!(err, StorageError::DataDirInUse { .. }), "{err}");
    assert_eq!(err.class(), skein_model::ErrorClass::InvalidArgument);
    storage.close().await.expect("closes");
    drop(storage);
    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_records(&storage).await.len(), 3, "nothing lost to the refused open");
}

#[tokio::test]
async fn invalid_config_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig { shards: 0, ..quiet_config(dir.path()) };
    let err = Storage::open(config, &mut Registry::default(), CancellationToken::new()).await.expect_err("invalid");
    assert!(matches!(err, StorageError::Config(_)), "{err}");
}

#[tokio::test]
async fn wrong_schema_and_empty_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    let batch = batch_of(trace_spans(1, 2, BASE_NS));
    storage.write_spans(0, batch.slice(0, 0)).await.expect("empty batch is a no-op");
    let projected = batch.project(&[0, 1]).expect("projects");
    let err = storage.write_spans(0, projected).await.expect_err("wrong schema");
    assert!(matches!(err, WriteError::Internal(_)), "{err:?}");
    assert_eq!(files_with_suffix(&spans_dir(dir.path()), ".wal").len(), 0, "nothing reached the wal");
}

#[tokio::test]
async fn metrics_are_exported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut registry = Registry::default();
    let storage =
        Storage::open(quiet_config(dir.path()), &mut registry, CancellationToken::new()).await.expect("opens");
    write(&storage, batch_of(trace_spans(1, 2, BASE_NS))).await;
    write(&storage, batch_of(trace_spans(2, 2, BASE_NS))).await;
    let mut text = String::new();
    encode(&mut text, &registry).expect("encodes");
    assert!(text.contains("skein_wal_records_total{signal=\"spans\"} 2"), "{text}");
    assert!(text.contains("skein_wal_records_total{signal=\"metrics\"} 0"), "{text}");
    assert!(text.contains("skein_wal_fsyncs_total{signal=\"spans\"}"), "{text}");
    assert!(!text.contains("skein_wal_bytes{signal=\"spans\"} 0\n"), "{text}");
    assert!(!text.contains("skein_storage_buffered_bytes{signal=\"spans\"} 0\n"), "{text}");
    storage.flush_all().await.expect("flushes");
    let mut text = String::new();
    encode(&mut text, &registry).expect("encodes");
    for line in [
        "skein_wal_bytes{signal=\"spans\"} 0",
        "skein_storage_buffered_bytes{signal=\"spans\"} 0",
        "skein_storage_parquet_files{signal=\"spans\"} 1",
        "skein_storage_parquet_files_written_total{signal=\"spans\"} 1",
        "skein_storage_rows_flushed_total{signal=\"spans\"} 4",
        "skein_storage_flush_duration_seconds_count{signal=\"spans\"} 1",
        "skein_storage_parquet_files{signal=\"metrics\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}
