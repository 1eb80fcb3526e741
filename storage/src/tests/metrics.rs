//! The metrics signal's durability, retention and isolation from spans,
//! and the refusal of the old single-signal layout.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use skein_model::WriteError;

use super::metric_data::*;
use super::*;
use crate::StorageError;
use crate::shard::FailPoint;

fn metric_shard(storage: &Storage) -> Arc<crate::shard::Shard> {
    storage.shard(Signal::Metrics, 0).expect("shard 0")
}

fn metric_table(storage: &Storage) -> Arc<ShardTable> {
    storage.shard_table(Signal::Metrics, 0).expect("shard 0")
}

#[tokio::test]
async fn acknowledged_points_survive_a_crash_via_wal_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = [metric_batch(mixed_metrics(BASE_NS)), metric_batch(mixed_metrics(BASE_NS + 5_000))];
    let storage = open(quiet_config(dir.path())).await;
    for b in &batches {
        write_metric_batch(&storage, b.clone()).await;
    }
    write(&storage, batch_of(trace_spans(1, 2, BASE_NS))).await;
    crash(storage).await;
    assert_eq!(files_with_suffix(&metrics_dir(dir.path()).join("wal"), ".wal").len(), 1);
    assert_eq!(files_with_suffix(&spans_dir(dir.path()).join("wal"), ".wal").len(), 1, "each signal has its own wal");

    let storage = open(quiet_config(dir.path())).await;
    let expected = sorted_points(&batches);
    assert_eq!(all_points(&storage).await, expected);
    assert_eq!(all_records(&storage).await.len(), 2, "spans replayed separately");
    storage.flush_all().await.expect("flushes");
    assert!(files_with_suffix(&metrics_dir(dir.path()).join("wal"), ".wal").is_empty());
    assert_eq!(all_points(&storage).await, expected);
    storage.close().await.expect("closes");
    drop(storage);

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_points(&storage).await, expected);
    assert_eq!(metric_table(&storage).file_count(), 1);
}

#[tokio::test]
async fn metric_flush_crashes_keep_points_once() {
    for fail_point in [FailPoint::ParquetWritten, FailPoint::ManifestCommitted] {
        let dir = tempfile::tempdir().expect("tempdir");
        // Two hours, so two files.
        let batches = [metric_batch(mixed_metrics(BASE_NS)), metric_batch(mixed_metrics(BASE_NS + HOUR_NS))];
        let storage = open(quiet_config(dir.path())).await;
        for b in &batches {
            write_metric_batch(&storage, b.clone()).await;
        }
        *metric_shard(&storage).fail_point.lock() = Some(fail_point);
        storage.flush_all().await.expect_err("simulated crash");
        assert_eq!(files_with_suffix(&metrics_dir(dir.path()), ".parquet").len(), 2, "{fail_point:?}");
        assert!(files_with_suffix(&metrics_dir(dir.path()), ".tidx").is_empty(), "metrics have no trace index");
        crash(storage).await;

        let storage = open(quiet_config(dir.path())).await;
        let (files, segments) = match fail_point {
            // Orphans deleted, points come back from the WAL.
            FailPoint::ParquetWritten => (0, 1),
            // Points come from Parquet; the covered segment is deleted.
            FailPoint::ManifestCommitted => (2, 0),
            FailPoint::Uploaded => unreachable!("only reached with an object store (tests/bucket.rs)"),
            FailPoint::CompactionWritten | FailPoint::CompactionCommitted => unreachable!("not a flush step"),
        };
        assert_eq!(files_with_suffix(&metrics_dir(dir.path()), ".parquet").len(), files, "{fail_point:?}");
        assert_eq!(metric_table(&storage).file_count(), files);
        assert_eq!(files_with_suffix(&metrics_dir(dir.path()).join("wal"), ".wal").len(), segments);
        assert_eq!(all_points(&storage).await, sorted_points(&batches), "{fail_point:?}: every point once");
        storage.flush_all().await.expect("flushes");
        assert_eq!(all_points(&storage).await, sorted_points(&batches));
    }
}

#[tokio::test]
async fn retention_drops_expired_metric_hours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig { retention: Some(Duration::from_secs(24 * 3600)), ..quiet_config(dir.path()) };
    let storage = open(config).await;
    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).expect("after epoch").as_nanos() as u64;
    let recent = metric_batch(mixed_metrics(now_ns - HOUR_NS));
    write_metric_batch(&storage, metric_batch(mixed_metrics(BASE_NS))).await;
    write_metric_batch(&storage, recent.clone()).await;
    write(&storage, batch_of(trace_spans(1, 2, BASE_NS))).await;
    storage.flush_all().await.expect("flushes");
    assert_eq!(metric_table(&storage).file_count(), 2);

    assert_eq!(storage.enforce_retention().await.expect("retention"), 2, "one expired hour of each signal");
    assert_eq!(metric_table(&storage).file_count(), 1);
    assert_eq!(span_table(&storage).file_count(), 0);
    assert!(!metrics_dir(dir.path()).join("date=2023-11-14").exists(), "expired partition removed");
    assert_eq!(all_points(&storage).await, sorted_points(std::slice::from_ref(&recent)));
    storage.close().await.expect("closes");
    drop(storage);

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_points(&storage).await, sorted_points(&[recent]));
}

#[tokio::test]
async fn the_old_single_signal_layout_is_refused() {
    for old in ["manifest.json", "wal"] {
        let dir = tempfile::tempdir().expect("tempdir");
        // A shard as the previous version left it: manifest and WAL beside spans/.
        let shard = dir.path().join("shard-0000");
        let old_file = shard.join("spans/date=2023-11-14/hour=22/a.parquet");
        std::fs::create_dir_all(old_file.parent().expect("parent")).expect("creates");
        std::fs::write(&old_file, b"PAR1").expect("writes");
        if old == "wal" {
            std::fs::create_dir(shard.join("wal")).expect("creates");
        } else {
            std::fs::write(shard.join("manifest.json"), br#"{"version":1,"wal_checkpoint":0,"files":[]}"#)
                .expect("writes");
        }
        let err = Storage::open(quiet_config(dir.path()), &mut Registry::default(), CancellationToken::new())
            .await
            .expect_err("old layout refused");
        assert!(matches!(err, StorageError::UnsupportedLayout { .. }), "{err}");
        let message = err.to_string();
        for part in ["shard-0000", old, "earlier Skein version", "spans/, metrics/", "Move the data directory"] {
            assert!(message.contains(part), "{part:?} missing in: {message}");
        }
        assert!(old_file.is_file(), "nothing deleted");
        assert!(!shard.join("metrics").exists(), "nothing created");
    }
}

#[tokio::test]
async fn signals_have_separate_queues_and_schemas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(StorageConfig { wal_queue_depth: 1, ..quiet_config(dir.path()) }).await;
    // A stalled span WAL does not hold metrics up.
    let resume = span_shard(&storage).pause_writer().await;
    let batch = metric_batch(mixed_metrics(BASE_NS));
    write_metric_batch(&storage, batch.clone()).await;
    assert_eq!(all_points(&storage).await, sorted_points(std::slice::from_ref(&batch)));
    resume.send(()).expect("resumes");

    // And a full metrics queue is overloaded like a span queue. (New
    // batches: a repeat of an acknowledged one is acknowledged at once.)
    let resume = metric_shard(&storage).pause_writer().await;
    let pending = storage.write_metrics(0, metric_batch(mixed_metrics(BASE_NS + 1_000)));
    tokio::pin!(pending);
    assert!(futures::poll!(pending.as_mut()).is_pending(), "queued behind the paused writer");
    let err = storage.write_metrics(0, metric_batch(mixed_metrics(BASE_NS + 2_000))).await.expect_err("queue full");
    assert!(matches!(err, WriteError::Overloaded { .. }), "{err:?}");
    write(&storage, batch_of(trace_spans(1, 2, BASE_NS))).await;
    resume.send(()).expect("resumes");
    pending.await.expect("the queued write is committed");

    let spans = batch_of(trace_spans(2, 2, BASE_NS));
    let err = storage.write_metrics(0, spans).await.expect_err("a span batch is not metrics");
    assert!(matches!(&err, WriteError::Internal(m) if m.contains("metrics schema")), "{err:?}");
    let err = storage.write_spans(0, batch.clone()).await.expect_err("metrics are not spans");
    assert!(matches!(&err, WriteError::Internal(m) if m.contains("spans schema")), "{err:?}");
    let err = storage.write_metrics(1, batch.clone()).await.expect_err("one shard");
    assert!(matches!(err, WriteError::NoSuchShard(1)), "{err:?}");

    storage.close().await.expect("closes");
    let err = storage.write_metrics(0, batch).await.expect_err("closed");
    assert!(matches!(err, WriteError::Unavailable { .. }), "{err:?}");
    assert_eq!(metric_table(&storage).file_count(), 1, "close flushed metrics");
    assert_eq!(span_table(&storage).file_count(), 1, "and spans");
}
