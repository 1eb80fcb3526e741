//! Compaction: every row exactly once before and after a merge and after a
//! crash at each step, the compacted layout (fewer files, sorted rows,
//! trace indexes), queries planned before a merge, metrics, the bucket.

use datafusion::arrow::array::AsArray;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use skein_model::schema::col as span_col;

use super::bucket::{bucket_config, bucket_spans};
use super::metric_data::*;
use super::*;
use crate::CompactionConfig;
use crate::shard::FailPoint;

const SERVICES: [&str; 3] = ["web", "cart", "db"];

pub(super) fn compacting(config: StorageConfig) -> StorageConfig {
    StorageConfig {
        compaction: CompactionConfig {
            enabled: false,
            min_files: 2,
            retired_file_grace: Duration::ZERO,
            ..CompactionConfig::default()
        },
        ..config
    }
}

/// Batches over two hours and three services, flushed one by one: one
/// file per batch and hour.
pub(super) async fn write_flushed_files(storage: &Storage) -> Vec<RecordBatch> {
    let mut written = Vec::new();
    for n in 0..6u32 {
        let service = SERVICES[n as usize % SERVICES.len()];
        let start = BASE_NS + u64::from(n % 2) * HOUR_NS + u64::from(n) * 1_000_000;
        let converted =
            spans_to_arrow(&request(service, trace_spans(n, 3, start)), &skein_model::ConvertLimits::default(), 1)
                .expect("converts");
        write(storage, converted.batch.clone()).await;
        storage.flush_all().await.expect("flushes");
        written.push(converted.batch);
    }
    written
}

fn parquet_files(data: &Path) -> Vec<PathBuf> {
    files_with_suffix(&spans_dir(data), ".parquet")
}

/// (service, trace ID, start) of every row of a Parquet file, in file order.
fn file_order(path: &Path) -> Vec<(String, String, i64)> {
    let mut rows = Vec::new();
    for batch in crate::parquet_files::read_file(path) {
        let service = batch.column_by_name(span_col::SERVICE_NAME).expect("service").as_string::<i32>().clone();
        let trace = batch.column_by_name(span_col::TRACE_ID).expect("trace").as_string::<i32>().clone();
        let start = batch
            .column_by_name(span_col::START_TIME)
            .expect("start")
            .as_primitive::<datafusion::arrow::datatypes::TimestampNanosecondType>()
            .clone();
        for i in 0..batch.num_rows() {
            rows.push((service.value(i).to_owned(), trace.value(i).to_owned(), start.value(i)));
        }
    }
    rows
}

#[tokio::test]
async fn compaction_merges_each_hour_into_one_sorted_file_with_every_row_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(compacting(quiet_config(dir.path()))).await;
    let written = write_flushed_files(&storage).await;
    assert_eq!(parquet_files(dir.path()).len(), 6);
    let before = all_records(&storage).await;
    assert_eq!(before, records(&written));

    assert_eq!(storage.compact_now().await.expect("compacts"), 2, "one merge per hour");
    assert_eq!(span_table(&storage).file_count(), 2);
    let files = parquet_files(dir.path());
    assert_eq!(files.len(), 2, "replaced files deleted after the (zero) grace: {files:?}");
    assert_eq!(files_with_suffix(&spans_dir(dir.path()), ".tidx").len(), 2, "each output has its trace index");
    assert_eq!(all_records(&storage).await, before, "every row once, every field intact");
    for file in &files {
        let order = file_order(file);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "rows sorted by service, trace, start in {}", file.display());
        // Sorted trace IDs are worth statistics: the page index prunes lookups.
        let reader = SerializedFileReader::new(std::fs::File::open(file).expect("opens")).expect("reads");
        let row_group = reader.metadata().row_group(0);
        let chunk = row_group.columns().iter().find(|c| c.column_path().string() == span_col::TRACE_ID);
        assert!(chunk.expect("trace_id chunk").statistics().is_some(), "trace_id statistics in compacted files");
    }

    // A lookup opens one file (the trace index), and finds the whole trace.
    let trace = trace_hex(3);
    let sql = format!("SELECT * FROM spans WHERE trace_id = '{trace}'");
    assert_eq!(planned_files(&storage, &sql).await, 1);
    assert_eq!(records(&query(&storage, &sql).await).len(), 3);
    assert_eq!(storage.compact_now().await.expect("compacts"), 0, "nothing left to merge");
    storage.close().await.expect("closes");

    let storage = open(compacting(quiet_config(dir.path()))).await;
    assert_eq!(all_records(&storage).await, before, "the compacted state is what reopens");
}

#[tokio::test]
async fn a_span_stored_twice_by_a_late_retry_is_kept_once_by_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut registry = Registry::default();
    let config = compacting(quiet_config(dir.path()));
    let storage = Storage::open(config.clone(), &mut registry, CancellationToken::new()).await.expect("opens");
    let batch = batch_of(trace_spans(1, 4, BASE_NS));
    write(&storage, batch.clone()).await;
    storage.flush_all().await.expect("flushes");
    storage.close().await.expect("closes");
    drop(storage);

    // After a flush and a restart the write-time dedup has forgotten the
    // batch: the client's retry is stored again, next to a new span.
    let storage = Storage::open(config, &mut registry, CancellationToken::new()).await.expect("reopens");
    let mut retried = trace_spans(1, 4, BASE_NS);
    retried.extend(trace_spans(2, 1, BASE_NS + 5_000));
    write(&storage, batch_of(retried)).await;
    storage.flush_all().await.expect("flushes");
    assert_eq!(all_records(&storage).await.len(), 9, "stored twice before compaction");

    assert_eq!(storage.compact_now().await.expect("compacts"), 1);
    let after = all_records(&storage).await;
    let mut expected = records(&[batch]);
    expected.extend(records(&[batch_of(trace_spans(2, 1, BASE_NS + 5_000))]));
    expected.sort_by(|a, b| (&a.span.trace_id, &a.span.span_id).cmp(&(&b.span.trace_id, &b.span.span_id)));
    assert_eq!(after, expected, "each span once, every field intact");
    let mut exposition = String::new();
    prometheus_client::encoding::text::encode(&mut exposition, &registry).expect("encodes");
    assert!(exposition.contains(r#"skein_storage_compaction_copies_dropped_total{signal="spans"} 4"#), "{exposition}");
}

#[tokio::test]
async fn a_crash_before_the_commit_keeps_the_inputs_and_drops_the_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(compacting(quiet_config(dir.path()))).await;
    let written = write_flushed_files(&storage).await;
    *span_shard(&storage).fail_point.lock() = Some(FailPoint::CompactionWritten);
    storage.compact_now().await.expect_err("simulated crash");
    assert_eq!(parquet_files(dir.path()).len(), 7, "six inputs and one merged output on disk");
    crash(storage).await;

    let storage = open(compacting(quiet_config(dir.path()))).await;
    assert_eq!(parquet_files(dir.path()).len(), 6, "the unlisted output deleted on open");
    assert_eq!(all_records(&storage).await, records(&written), "every row once");
    assert_eq!(storage.compact_now().await.expect("compacts"), 2);
    assert_eq!(all_records(&storage).await, records(&written));
}

#[tokio::test]
async fn a_crash_after_the_commit_keeps_the_outputs_and_drops_the_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(compacting(quiet_config(dir.path()))).await;
    let written = write_flushed_files(&storage).await;
    *span_shard(&storage).fail_point.lock() = Some(FailPoint::CompactionCommitted);
    storage.compact_now().await.expect_err("simulated crash");
    assert_eq!(parquet_files(dir.path()).len(), 7);
    crash(storage).await;

    let storage = open(compacting(quiet_config(dir.path()))).await;
    assert_eq!(parquet_files(dir.path()).len(), 4, "three replaced inputs deleted on open");
    assert_eq!(span_table(&storage).file_count(), 4);
    assert_eq!(all_records(&storage).await, records(&written), "every row once");
}

#[tokio::test]
async fn a_query_planned_before_a_merge_still_reads_the_replaced_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = compacting(quiet_config(dir.path()));
    config.compaction.retired_file_grace = Duration::from_secs(3600);
    let storage = open(config.clone()).await;
    let written = write_flushed_files(&storage).await;
    let ctx = context(&storage);
    let plan = ctx.sql("SELECT * FROM spans").await.expect("plans").create_physical_plan().await.expect("plan");

    assert_eq!(storage.compact_now().await.expect("compacts"), 2);
    assert_eq!(parquet_files(dir.path()).len(), 8, "replaced files kept for their grace period");
    let rows = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await.expect("runs the old plan");
    assert_eq!(records(&rows), records(&written));
    assert_eq!(all_records(&storage).await, records(&written), "new queries read the merged files");
    storage.close().await.expect("closes");

    let storage = open(config).await;
    assert_eq!(parquet_files(dir.path()).len(), 2, "replaced files are gone after a restart");
    assert_eq!(all_records(&storage).await, records(&written));
}

#[tokio::test]
async fn an_hour_still_receiving_data_waits_for_min_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = compacting(quiet_config(dir.path()));
    config.compaction.min_files = 3;
    let storage = open(config).await;
    let now = u64::try_from(crate::shard::unix_nanos(std::time::SystemTime::now())).expect("after 1970");
    for n in 0..2 {
        write(&storage, batch_of(trace_spans(n, 2, now))).await;
        storage.flush_all().await.expect("flushes");
    }
    assert_eq!(storage.compact_now().await.expect("compacts"), 0, "two files of the current hour wait");
    write(&storage, batch_of(trace_spans(2, 2, now))).await;
    storage.flush_all().await.expect("flushes");
    assert_eq!(storage.compact_now().await.expect("compacts"), 1, "the third one triggers the merge");
    assert_eq!(span_table(&storage).file_count(), 1);
}

#[tokio::test]
async fn metric_points_compact_sorted_by_series_with_every_point_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(compacting(quiet_config(dir.path()))).await;
    let mut batches = Vec::new();
    for i in 0..4 {
        let batch = metric_batch(mixed_metrics(BASE_NS + i * 10_000));
        write_metric_batch(&storage, batch.clone()).await;
        storage.flush_all().await.expect("flushes");
        batches.push(batch);
    }
    let table = storage.shard_table(Signal::Metrics, 0).expect("shard 0");
    assert_eq!(table.file_count(), 4);
    assert_eq!(storage.compact_now().await.expect("compacts"), 1);
    assert_eq!(table.file_count(), 1);
    assert_eq!(all_points(&storage).await, sorted_points(&batches), "every point once, exactly");
    let file = files_with_suffix(&metrics_dir(dir.path()), ".parquet");
    let rows = crate::parquet_files::read_file(&file[0]);
    let stored = datafusion::arrow::compute::concat_batches(&rows[0].schema(), &rows).expect("concat");
    assert_eq!(stored, sorted_points(&rows), "the file is in (metric, series, time) order");
}

#[tokio::test]
async fn compaction_commits_through_the_bucket() {
    let (data, bucket) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let config = compacting(bucket_config(data.path(), bucket.path()));
    let storage = open(config.clone()).await;
    let written = write_flushed_files(&storage).await;
    assert_eq!(storage.compact_now().await.expect("compacts"), 2);
    let remote = bucket_spans(bucket.path());
    assert_eq!(files_with_suffix(&remote, ".parquet").len(), 2, "replaced objects deleted, merged ones uploaded");
    assert_eq!(files_with_suffix(&remote, ".tidx").len(), 2);
    storage.close().await.expect("closes");

    std::fs::remove_dir_all(data.path()).expect("wipes the data directory");
    let storage = open(config).await;
    assert_eq!(all_records(&storage).await, records(&written), "the bucket's manifest lists the merged files");
    assert_eq!(span_table(&storage).file_count(), 2);
}

#[tokio::test]
async fn a_crash_between_upload_and_bucket_commit_leaves_no_objects_behind() {
    let (data, bucket) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let config = compacting(bucket_config(data.path(), bucket.path()));
    let storage = open(config.clone()).await;
    let written = write_flushed_files(&storage).await;
    *span_shard(&storage).fail_point.lock() = Some(FailPoint::Uploaded);
    storage.compact_now().await.expect_err("simulated crash");
    let remote = bucket_spans(bucket.path());
    assert_eq!(files_with_suffix(&remote, ".parquet").len(), 7, "merged output uploaded, not committed");
    crash(storage).await;

    let storage = open(config).await;
    assert_eq!(files_with_suffix(&remote, ".parquet").len(), 6, "the unlisted upload deleted on open");
    assert_eq!(all_records(&storage).await, records(&written));
    assert_eq!(storage.compact_now().await.expect("compacts"), 2);
    assert_eq!(files_with_suffix(&remote, ".parquet").len(), 2);
    assert_eq!(all_records(&storage).await, records(&written));
}
