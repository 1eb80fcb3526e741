//! Crash safety: every acknowledged row survives, exactly once, whatever
//! point a crash hits.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use super::*;
use crate::shard::FailPoint;

fn expected(batches: &[RecordBatch]) -> Vec<SpanRecord> {
    records(batches)
}

#[tokio::test]
async fn acknowledged_rows_survive_a_crash_via_wal_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = [batch_of(trace_spans(1, 3, BASE_NS)), batch_of(trace_spans(2, 2, BASE_NS))];
    let storage = open(quiet_config(dir.path())).await;
    for b in &batches {
        write(&storage, b.clone()).await;
    }
    crash(storage).await;
    assert_eq!(files_with_suffix(&spans_dir(dir.path()), ".wal").len(), 1);

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_records(&storage).await, expected(&batches));
    // The replayed rows flush like any others, and the WAL is then empty.
    storage.flush_all().await.expect("flushes");
    assert_eq!(files_with_suffix(&spans_dir(dir.path()), ".wal").len(), 0);
    assert_eq!(all_records(&storage).await, expected(&batches));
    storage.close().await.expect("closes");

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_records(&storage).await, expected(&batches));
}

#[tokio::test]
async fn crash_after_parquet_rename_before_manifest_keeps_rows_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = [batch_of(trace_spans(1, 3, BASE_NS)), batch_of(trace_spans(2, 2, BASE_NS + HOUR_NS))];
    let storage = open(quiet_config(dir.path())).await;
    for b in &batches {
        write(&storage, b.clone()).await;
    }
    *span_shard(&storage).fail_point.lock() = Some(FailPoint::ParquetWritten);
    storage.flush_all().await.expect_err("simulated crash");
    let spans = spans_dir(dir.path());
    assert_eq!(files_with_suffix(&spans, ".parquet").len(), 2, "both hour files were renamed into place");
    assert_eq!(files_with_suffix(&spans, ".tidx").len(), 2);
    crash(storage).await;

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(files_with_suffix(&spans, ".parquet").len(), 0, "orphans deleted");
    assert_eq!(files_with_suffix(&spans, ".tidx").len(), 0, "orphan sidecars deleted");
    assert_eq!(span_table(&storage).file_count(), 0);
    assert_eq!(all_records(&storage).await, expected(&batches), "rows come back from the WAL, once");
    storage.flush_all().await.expect("flushes");
    assert_eq!(all_records(&storage).await, expected(&batches));
    assert_eq!(files_with_suffix(&spans, ".parquet").len(), 2);
}

#[tokio::test]
async fn crash_after_manifest_before_segment_deletion_keeps_rows_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = [batch_of(trace_spans(1, 3, BASE_NS)), batch_of(trace_spans(2, 2, BASE_NS))];
    let storage = open(quiet_config(dir.path())).await;
    for b in &batches {
        write(&storage, b.clone()).await;
    }
    *span_shard(&storage).fail_point.lock() = Some(FailPoint::ManifestCommitted);
    storage.flush_all().await.expect_err("simulated crash");
    let wal = spans_dir(dir.path()).join("wal");
    assert_eq!(files_with_suffix(&wal, ".wal").len(), 1, "segment still there");
    crash(storage).await;

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(files_with_suffix(&wal, ".wal").len(), 0, "segment covered by the checkpoint deleted");
    assert_eq!(span_table(&storage).file_count(), 1);
    assert_eq!(all_records(&storage).await, expected(&batches), "rows come from Parquet only, once");
}

#[tokio::test]
async fn writes_after_a_flush_go_to_a_new_segment_and_survive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = batch_of(trace_spans(1, 2, BASE_NS));
    let second = batch_of(trace_spans(2, 2, BASE_NS));
    let storage = open(quiet_config(dir.path())).await;
    write(&storage, first.clone()).await;
    storage.flush_all().await.expect("flushes");
    write(&storage, second.clone()).await;
    let wal = spans_dir(dir.path()).join("wal");
    let segments = files_with_suffix(&wal, ".wal");
    assert_eq!(segments.len(), 1);
    assert!(segments[0].ends_with("00000000000000000002.wal"), "{segments:?}");
    crash(storage).await;

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_records(&storage).await, expected(&[first, second]));
}

#[tokio::test]
async fn torn_wal_tail_is_truncated_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = [batch_of(trace_spans(1, 3, BASE_NS)), batch_of(trace_spans(2, 2, BASE_NS))];
    let storage = open(quiet_config(dir.path())).await;
    for b in &batches {
        write(&storage, b.clone()).await;
    }
    crash(storage).await;
    let segment = files_with_suffix(&spans_dir(dir.path()).join("wal"), ".wal").remove(0);
    let good_len = std::fs::metadata(&segment).expect("stat").len();
    // A record whose header promises more bytes than were written before the crash.
    let mut file = OpenOptions::new().append(true).open(&segment).expect("opens");
    file.write_all(&[0xff, 0xff, 0x00, 0x00, 1, 2, 3, 4, 5, 6]).expect("appends");
    drop(file);

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(std::fs::metadata(&segment).expect("stat").len(), good_len, "torn record cut off");
    assert_eq!(all_records(&storage).await, expected(&batches));
    // New writes after recovery are durable too.
    let third = batch_of(trace_spans(3, 1, BASE_NS));
    write(&storage, third.clone()).await;
    crash(storage).await;
    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_records(&storage).await, expected(&[batches[0].clone(), batches[1].clone(), third]));
}

#[tokio::test]
async fn close_flushes_everything_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batch = batch_of(trace_spans(1, 3, BASE_NS));
    let storage = open(quiet_config(dir.path())).await;
    write(&storage, batch.clone()).await;
    storage.close().await.expect("closes");
    storage.close().await.expect("closes again");
    assert_eq!(files_with_suffix(&spans_dir(dir.path()).join("wal"), ".wal").len(), 0);
    assert_eq!(span_table(&storage).file_count(), 1);
    // Still readable after close.
    assert_eq!(all_records(&storage).await, expected(std::slice::from_ref(&batch)));
    let err = storage.write_spans(0, batch.clone()).await.expect_err("closed");
    assert!(matches!(err, skein_model::WriteError::Unavailable { .. }), "{err}");
    drop(storage);

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_records(&storage).await, expected(&[batch]));
}

#[tokio::test]
async fn lost_trace_index_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    for n in 1..=3 {
        write(&storage, batch_of(trace_spans(n, 2, BASE_NS))).await;
        storage.flush_all().await.expect("flushes");
    }
    storage.close().await.expect("closes");
    drop(storage);
    let sidecars = files_with_suffix(&spans_dir(dir.path()), ".tidx");
    assert_eq!(sidecars.len(), 3);
    std::fs::remove_file(&sidecars[0]).expect("removes");
    std::fs::write(&sidecars[1], b"garbage").expect("damages");

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(files_with_suffix(&spans_dir(dir.path()), ".tidx").len(), 3);
    let table = span_table(&storage);
    for n in 1..=3 {
        assert_eq!(table.files_for_trace(&trace_hex(n)), 1);
    }
    assert_eq!(table.files_for_trace(&trace_hex(4)), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_during_background_flushes_survive_a_crash_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Every write crosses the flush threshold, so flushes (freezes, WAL
    // rotations, segment deletions) interleave with the writes.
    let config = StorageConfig { flush_max_bytes: 1, ..quiet_config(dir.path()) };
    let storage = open(config).await;
    let writers: Vec<_> = (0..8u32)
        .map(|w| {
            let storage = Arc::clone(&storage);
            tokio::spawn(async move {
                let mut written = Vec::new();
                for i in 0..25u32 {
                    let batch = batch_of(trace_spans(w * 1000 + i, 2, BASE_NS + u64::from(i) * HOUR_NS / 10));
                    storage.write_spans(0, batch.clone()).await.expect("write accepted");
                    written.push(batch);
                }
                written
            })
        })
        .collect();
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.expect("writer task"));
    }
    let expected_rows = expected(&written);
    assert_eq!(expected_rows.len(), 400);
    assert_eq!(all_records(&storage).await, expected_rows);
    tokio::time::timeout(Duration::from_secs(60), storage.wait_for_flushes(Signal::Spans, 0, 1))
        .await
        .expect("a background flush ran")
        .expect("waits");
    crash(storage).await;
    assert!(!files_with_suffix(&spans_dir(dir.path()), ".parquet").is_empty());

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_records(&storage).await, expected_rows, "every acknowledged row, once");
    storage.close().await.expect("closes");
    drop(storage);
    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_records(&storage).await, expected_rows);
    assert_eq!(files_with_suffix(&spans_dir(dir.path()).join("wal"), ".wal").len(), 0);
}

#[tokio::test]
async fn failed_manifest_update_discards_the_new_files_and_retries_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batch = batch_of(trace_spans(1, 3, BASE_NS));
    let storage = open(quiet_config(dir.path())).await;
    write(&storage, batch.clone()).await;
    // A directory where the temporary manifest goes makes the update fail
    // before the rename: the old manifest stays in force.
    let blocker = spans_dir(dir.path()).join("manifest.json.tmp");
    std::fs::create_dir_all(blocker.join("x")).expect("creates");
    let err = storage.flush_all().await.expect_err("manifest update fails");
    assert!(err.to_string().contains("manifest.json"), "{err}");
    let spans = spans_dir(dir.path());
    assert!(files_with_suffix(&spans, ".parquet").is_empty(), "unlisted files removed");
    assert!(files_with_suffix(&spans, ".tidx").is_empty());
    assert_eq!(all_records(&storage).await, expected(std::slice::from_ref(&batch)), "rows still buffered");

    std::fs::remove_dir_all(&blocker).expect("removes");
    storage.flush_all().await.expect("retry succeeds");
    assert_eq!(files_with_suffix(&spans, ".parquet").len(), 1);
    assert_eq!(all_records(&storage).await, expected(std::slice::from_ref(&batch)));
    crash(storage).await;
    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(all_records(&storage).await, expected(&[batch]));
}
