//! The shard table: buffered and flushed rows, file layout, and pruning.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, TimestampNanosecondType};
use datafusion::parquet::basic::{Compression, Encoding};
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use skein_model::span_schema;

use super::*;

fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test]
async fn rows_are_visible_before_and_after_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    let first = batch_of(trace_spans(1, 3, BASE_NS));
    let second = batch_of(trace_spans(2, 2, BASE_NS + 5));
    write(&storage, first.clone()).await;
    write(&storage, second.clone()).await;
    let inserted = records(&[first.clone(), second.clone()]);

    let buffered = query(&storage, "SELECT * FROM spans").await;
    assert_eq!(buffered[0].schema().fields(), span_schema().fields());
    assert_eq!(records(&buffered), inserted);

    storage.flush_all().await.expect("flushes");
    let table = span_table(&storage);
    assert_eq!(table.file_count(), 1);
    let flushed = query(&storage, "SELECT * FROM spans").await;
    // Files come back in exactly the span schema (Utf8, not Utf8View).
    assert_eq!(flushed[0].schema().fields(), span_schema().fields());
    assert_eq!(records(&flushed), inserted);

    // Flushed and buffered rows together.
    let third = batch_of(trace_spans(3, 4, BASE_NS));
    write(&storage, third.clone()).await;
    assert_eq!(records(&query(&storage, "SELECT * FROM spans").await), records(&[first, second, third]));
    let counted = query(&storage, "SELECT count(*) AS n FROM spans").await;
    assert_eq!(counted[0].column(0).as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(0), 9);
    let projected = query(&storage, "SELECT service_name, name FROM spans WHERE name = 'op-3'").await;
    assert_eq!(row_count(&projected), 1);
    assert_eq!(projected[0].schema().field(0).data_type(), &DataType::Utf8);
}

#[tokio::test]
async fn flush_writes_time_partitioned_parquet_in_arrival_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig { row_group_rows: 4, ..quiet_config(dir.path()) };
    let storage = open(config).await;
    // Written out of order, across two hours (22:13 and 23:13 on 2023-11-14).
    let mut spans = trace_spans(7, 3, BASE_NS + 50);
    spans.extend(trace_spans(3, 3, BASE_NS));
    spans.extend(trace_spans(5, 2, BASE_NS + HOUR_NS));
    spans.extend(trace_spans(9, 2, BASE_NS + 20));
    write(&storage, batch_of(spans)).await;
    storage.flush_all().await.expect("flushes");

    let spans_dir = spans_dir(dir.path());
    let files = files_with_suffix(&spans_dir, ".parquet");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].parent().expect("dir").ends_with("date=2023-11-14/hour=22"), "{files:?}");
    assert!(files[1].parent().expect("dir").ends_with("date=2023-11-14/hour=23"), "{files:?}");
    for file in &files {
        assert!(file.with_extension("tidx").is_file(), "sidecar next to {file:?}");
    }

    // Rows within a file keep their arrival order: the hour-22 rows as written.
    let rows = crate::parquet_files::read_file(&files[0]);
    let mut keys = Vec::new();
    for batch in &rows {
        let ids = batch.column(0).as_string::<i32>();
        let starts = batch.column_by_name("start_time").expect("start").as_primitive::<TimestampNanosecondType>();
        for i in 0..batch.num_rows() {
            keys.push((ids.value(i).to_owned(), starts.value(i)));
        }
    }
    let expected: Vec<(String, i64)> =
        [trace_spans(7, 3, BASE_NS + 50), trace_spans(3, 3, BASE_NS), trace_spans(9, 2, BASE_NS + 20)]
            .concat()
            .iter()
            .map(|span| (const_hex::encode(&span.trace_id), span.start_time_unix_nano as i64))
            .collect();
    assert_eq!(keys, expected);

    // Parquet properties: ZSTD, row groups of row_group_rows, bloom filter on
    // trace_id, page index.
    let reader = SerializedFileReader::new(std::fs::File::open(&files[0]).expect("opens")).expect("reads");
    let metadata = reader.metadata();
    assert_eq!(metadata.num_row_groups(), 2);
    let group = metadata.row_group(0);
    assert_eq!(group.num_rows(), 4);
    let trace_column = group.column(0);
    assert_eq!(trace_column.column_path().string(), "trace_id");
    assert!(matches!(trace_column.compression(), Compression::ZSTD(_)));
    assert!(trace_column.bloom_filter_offset().is_some(), "bloom filter on trace_id");
    let column = |name: &str| group.columns().iter().find(|c| c.column_path().string() == name).expect(name);
    // Statistics and the page index where they prune: services, times.
    for name in ["service_name", "start_time"] {
        assert!(column(name).column_index_offset().is_some(), "column index on {name}");
        assert!(column(name).offset_index_offset().is_some(), "offset index on {name}");
        assert!(column(name).statistics().and_then(|s| s.min_bytes_opt()).is_some(), "statistics on {name}");
    }
    // Nearly unique columns skip the dictionary (and random IDs statistics).
    let span_id = column("span_id");
    assert!(span_id.encodings().any(|e| e == Encoding::DELTA_LENGTH_BYTE_ARRAY), "{span_id:?}");
    assert!(span_id.dictionary_page_offset().is_none());
    assert!(span_id.statistics().is_none());
    assert!(column("start_time").encodings().any(|e| e == Encoding::BYTE_STREAM_SPLIT));
}

#[tokio::test]
async fn trace_lookup_opens_one_file_out_of_many() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    let mut written = Vec::new();
    // Six flushes of two traces each, all in the same hour: six files whose
    // time ranges and trace_id statistics overlap.
    for n in 0..6u32 {
        let batch = batch_of([trace_spans(n, 3, BASE_NS + u64::from(n)), trace_spans(n + 100, 2, BASE_NS)].concat());
        write(&storage, batch.clone()).await;
        storage.flush_all().await.expect("flushes");
        written.push(batch);
    }
    let table = span_table(&storage);
    assert_eq!(table.file_count(), 6);
    assert_eq!(table.files_for_trace(&trace_hex(3)), 1);
    assert_eq!(table.files_for_trace(&trace_hex(42)), 0);
    assert_eq!(table.files_for_trace("not-a-trace-id"), 0);

    let sql = format!("SELECT * FROM spans WHERE trace_id = '{}'", trace_hex(3));
    assert_eq!(planned_files(&storage, &sql).await, 1);
    let found = records(&query(&storage, &sql).await);
    let expected: Vec<SpanRecord> = records(&written).into_iter().filter(|r| r.span.trace_id == trace_id(3)).collect();
    assert_eq!(found.len(), 3);
    assert_eq!(found, expected);

    let in_list = format!("SELECT span_id FROM spans WHERE trace_id IN ('{}', '{}')", trace_hex(1), trace_hex(104));
    assert_eq!(planned_files(&storage, &in_list).await, 2);
    assert_eq!(row_count(&query(&storage, &in_list).await), 5);

    let missing = format!("SELECT span_id FROM spans WHERE trace_id = '{}'", trace_hex(42));
    assert_eq!(planned_files(&storage, &missing).await, 0);
    assert_eq!(row_count(&query(&storage, &missing).await), 0);

    // Without a trace filter every file is scanned.
    assert_eq!(planned_files(&storage, "SELECT span_id FROM spans").await, 6);
}

#[tokio::test]
async fn time_filters_prune_files_by_manifest_ranges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    for h in 0..3u64 {
        write(&storage, batch_of(trace_spans(h as u32, 2, BASE_NS + h * HOUR_NS))).await;
    }
    storage.flush_all().await.expect("flushes");
    assert_eq!(span_table(&storage).file_count(), 3);

    // 2023-11-14T23:00:00Z is the start of the second file's hour.
    let later = "SELECT span_id FROM spans WHERE start_time >= TIMESTAMP '2023-11-14T23:00:00Z'";
    assert_eq!(planned_files(&storage, later).await, 2);
    assert_eq!(row_count(&query(&storage, later).await), 4);
    let window = "SELECT span_id FROM spans WHERE start_time BETWEEN TIMESTAMP '2023-11-14T23:00:00Z' \
                  AND TIMESTAMP '2023-11-14T23:59:59Z'";
    assert_eq!(planned_files(&storage, window).await, 1);
    assert_eq!(row_count(&query(&storage, window).await), 2);
    let ended = "SELECT span_id FROM spans WHERE end_time < TIMESTAMP '2023-11-14T22:00:00Z'";
    assert_eq!(planned_files(&storage, ended).await, 0);
    assert_eq!(row_count(&query(&storage, ended).await), 0);
}

#[tokio::test]
async fn a_scan_snapshot_is_not_disturbed_by_a_concurrent_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    let batch = batch_of(trace_spans(1, 5, BASE_NS));
    write(&storage, batch.clone()).await;
    let ctx = context(&storage);
    // Planned while the rows are buffered, executed after they moved to Parquet.
    let plan = ctx.sql("SELECT * FROM spans").await.expect("plans").create_physical_plan().await.expect("physical");
    storage.flush_all().await.expect("flushes");
    let rows = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await.expect("runs");
    assert_eq!(records(&rows), records(std::slice::from_ref(&batch)));
    // A new scan sees them once, from the file.
    assert_eq!(all_records(&storage).await, records(&[batch]));
}

#[tokio::test]
async fn shards_are_separate_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(StorageConfig { shards: 2, ..quiet_config(dir.path()) }).await;
    assert_eq!(storage.shard_count(), 2);
    assert_eq!(storage.span_tables().len(), 2);
    storage.write_spans(1, batch_of(trace_spans(1, 2, BASE_NS))).await.expect("writes shard 1");
    let err = storage.write_spans(2, batch_of(trace_spans(1, 2, BASE_NS))).await.expect_err("no shard 2");
    assert!(matches!(err, skein_model::WriteError::NoSuchShard(2)));
    assert_eq!(row_count(&query(&storage, "SELECT * FROM spans").await), 0, "shard 0 is empty");
    let ctx = SessionContext::new();
    ctx.register_table("s1", Arc::clone(&storage.span_tables()[1])).expect("registers");
    let rows = ctx.sql("SELECT * FROM s1").await.expect("plans").collect().await.expect("runs");
    assert_eq!(row_count(&rows), 2);
    storage.close().await.expect("closes");
    assert!(dir.path().join("shard-0001/spans/manifest.json").is_file());
    let null_parent = rows[0].column_by_name("parent_span_id").expect("column");
    assert_eq!(null_parent.null_count(), 1);
}
