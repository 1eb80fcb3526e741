//! The metric table: points visible before and after a flush, the file
//! layout, and pruning by time and by metric name.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::TimestampNanosecondType;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use datafusion::physical_plan::metrics::MetricValue;
use skein_model::metrics::{col as mcol, metric_schema};

use super::metric_data::*;
use super::*;

fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test]
async fn points_are_visible_before_and_after_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    let first = metric_batch(mixed_metrics(BASE_NS));
    let second = metric_batch(mixed_metrics(BASE_NS + 10_000));
    write_metric_batch(&storage, first.clone()).await;
    write_metric_batch(&storage, second.clone()).await;
    let written = sorted_points(&[first.clone(), second.clone()]);

    let buffered = metric_query(&storage, "SELECT * FROM metrics").await;
    assert_eq!(buffered[0].schema().fields(), metric_schema().fields());
    assert_eq!(sorted_points(&buffered), written);

    storage.flush_all().await.expect("flushes");
    let table = storage.shard_table(Signal::Metrics, 0).expect("shard 0");
    assert_eq!((table.signal(), table.file_count()), (Signal::Metrics, 1));
    assert_eq!(span_table(&storage).file_count(), 0, "no span rows, no span files");
    let flushed = metric_query(&storage, "SELECT * FROM metrics").await;
    // Files come back in exactly the metric schema (Utf8, not Utf8View).
    assert_eq!(flushed[0].schema().fields(), metric_schema().fields());
    assert_eq!(sorted_points(&flushed), written, "every point round-trips exactly");

    let third = metric_batch(mixed_metrics(BASE_NS + 20_000));
    write_metric_batch(&storage, third.clone()).await;
    assert_eq!(all_points(&storage).await, sorted_points(&[first, second, third]));
    let cpu = "SELECT value FROM metrics WHERE metric_name = 'system.cpu.utilization' ORDER BY time";
    assert_eq!(row_count(&metric_query(&storage, cpu).await), 9);
}

#[tokio::test]
async fn flush_writes_hour_partitioned_metric_files_in_arrival_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(StorageConfig { row_group_rows: 4, ..quiet_config(dir.path()) }).await;
    // Two hours, written out of order.
    let batches = [BASE_NS + HOUR_NS, BASE_NS + 2_000, BASE_NS].map(|ns| metric_batch(mixed_metrics(ns)));
    for batch in &batches {
        write_metric_batch(&storage, batch.clone()).await;
    }
    storage.flush_all().await.expect("flushes");

    let files = files_with_suffix(&metrics_dir(dir.path()), ".parquet");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].parent().expect("dir").ends_with("metrics/date=2023-11-14/hour=22"), "{files:?}");
    assert!(files[1].parent().expect("dir").ends_with("metrics/date=2023-11-14/hour=23"), "{files:?}");
    assert!(files_with_suffix(&metrics_dir(dir.path()), ".tidx").is_empty());
    assert!(metrics_dir(dir.path()).join("manifest.json").is_file());

    // Hour 22 holds the second and third batches as they came: no sort, no copy.
    let keys = |batches: &[RecordBatch]| {
        let mut keys = Vec::new();
        for batch in batches {
            let names = batch.column_by_name(mcol::METRIC_NAME).expect("name").as_string::<i32>();
            let series = batch.column_by_name(mcol::SERIES_ID).expect("series").as_string::<i32>();
            let times = batch.column_by_name(mcol::TIME).expect("time").as_primitive::<TimestampNanosecondType>();
            for i in 0..batch.num_rows() {
                keys.push((names.value(i).to_owned(), series.value(i).to_owned(), times.value(i)));
            }
        }
        keys
    };
    let stored = keys(&crate::parquet_files::read_file(&files[0]));
    assert_eq!(stored.len(), 16, "two batches of eight points in hour 22");
    assert_eq!(stored, keys(&batches[1..]));

    let reader = SerializedFileReader::new(std::fs::File::open(&files[0]).expect("opens")).expect("reads");
    let metadata = reader.metadata();
    assert_eq!(metadata.num_row_groups(), 4);
    let group = metadata.row_group(0);
    for column in group.columns() {
        let name = column.column_path().string();
        let bloom = column.bloom_filter_offset().is_some();
        let expected = name == mcol::METRIC_NAME || name == mcol::SERIES_ID;
        assert_eq!(bloom, expected, "bloom filter on {name}");
        if expected {
            assert!(column.column_index_offset().is_some(), "column index on {name}");
        }
    }
}

#[tokio::test]
async fn time_filters_prune_metric_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    for h in 0..3u64 {
        write_metric_batch(&storage, metric_batch(mixed_metrics(BASE_NS + h * HOUR_NS))).await;
    }
    storage.flush_all().await.expect("flushes");
    let later = "SELECT * FROM metrics WHERE time >= TIMESTAMP '2023-11-14T23:00:00Z'";
    assert_eq!(metric_planned_files(&storage, later).await, 2);
    assert_eq!(row_count(&metric_query(&storage, later).await), 16);
    let window = "SELECT * FROM metrics WHERE time BETWEEN TIMESTAMP '2023-11-14T23:00:00Z' \
                  AND TIMESTAMP '2023-11-14T23:59:59Z'";
    assert_eq!(metric_planned_files(&storage, window).await, 1);
    assert_eq!(row_count(&metric_query(&storage, window).await), 8);
    // start_time ranges are kept too (over the points that have one: gauges have none).
    let started = "SELECT * FROM metrics WHERE start_time > TIMESTAMP '2023-11-15T00:30:00Z'";
    assert_eq!(metric_planned_files(&storage, started).await, 0);
    assert_eq!(row_count(&metric_query(&storage, started).await), 0);
}

/// Row groups of shard 0's metric files that a query's Parquet scan pruned
/// and kept, by statistics and by bloom filter.
#[derive(Debug, Default, PartialEq)]
struct RowGroups {
    stats_pruned: usize,
    stats_matched: usize,
    bloom_pruned: usize,
    bloom_matched: usize,
}

async fn row_groups(storage: &Storage, sql: &str) -> (usize, RowGroups) {
    let ctx = metric_context(storage);
    let plan = ctx.sql(sql).await.expect("plans").create_physical_plan().await.expect("physical plan");
    let rows = row_count(&datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx()).await.expect("runs"));
    let mut groups = RowGroups::default();
    add_row_groups(&plan, &mut groups);
    (rows, groups)
}

fn add_row_groups(plan: &Arc<dyn ExecutionPlan>, groups: &mut RowGroups) {
    for metric in plan.metrics().iter().flat_map(|set| set.iter().cloned().collect::<Vec<_>>()) {
        if let MetricValue::PruningMetrics { name, pruning_metrics } = metric.value() {
            let (pruned, matched) = (pruning_metrics.pruned(), pruning_metrics.matched());
            match name.as_ref() {
                "row_groups_pruned_statistics" => {
                    groups.stats_pruned += pruned;
                    groups.stats_matched += matched;
                }
                "row_groups_pruned_bloom_filter" => {
                    groups.bloom_pruned += pruned;
                    groups.bloom_matched += matched;
                }
                _ => {}
            }
        }
    }
    for child in plan.children() {
        add_row_groups(child, groups);
    }
}

#[tokio::test]
async fn metric_name_filters_prune_row_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(StorageConfig { row_group_rows: 4, ..quiet_config(dir.path()) }).await;
    // Ten metrics of four points each (two series, two times), sorted by
    // name: row groups of four rows hold one metric each.
    let metrics: Vec<_> = (0..10)
        .map(|m| {
            gauge(
                &format!("m{m:02}"),
                &[("a", BASE_NS, 1.0), ("b", BASE_NS, 2.0), ("a", BASE_NS + 1, 3.0), ("b", BASE_NS + 1, 4.0)],
            )
        })
        .collect();
    write_metric_batch(&storage, metric_batch(metrics)).await;
    storage.flush_all().await.expect("flushes");
    let files = files_with_suffix(&metrics_dir(dir.path()), ".parquet");
    let reader = SerializedFileReader::new(std::fs::File::open(&files[0]).expect("opens")).expect("reads");
    assert_eq!(reader.metadata().num_row_groups(), 10);

    // Statistics rule out every row group but the metric's own.
    let (rows, groups) = row_groups(&storage, "SELECT * FROM metrics WHERE metric_name = 'm05'").await;
    assert_eq!(rows, 4);
    assert_eq!((groups.stats_pruned, groups.stats_matched), (9, 1), "{groups:?}");
    assert_eq!(groups.bloom_matched, 1, "{groups:?}");

    let (rows, groups) = row_groups(&storage, "SELECT * FROM metrics").await;
    assert_eq!(rows, 40);
    assert_eq!(groups.stats_pruned + groups.bloom_pruned, 0, "{groups:?}");
}

#[tokio::test]
async fn bloom_filters_prune_row_groups_statistics_cannot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(StorageConfig { row_group_rows: 4, ..quiet_config(dir.path()) }).await;
    // Two metrics of two points per row group: ("m00", "m02"), ("m04", "m06"), ...
    let metrics: Vec<_> =
        (0..10).map(|m| gauge(&format!("m{:02}", 2 * m), &[("a", BASE_NS, 1.0), ("a", BASE_NS + 1, 2.0)])).collect();
    write_metric_batch(&storage, metric_batch(metrics)).await;
    storage.flush_all().await.expect("flushes");

    // 'm01' lies between the min and max of the first row group: only its
    // bloom filter shows the name is absent.
    let (rows, groups) = row_groups(&storage, "SELECT * FROM metrics WHERE metric_name = 'm01'").await;
    assert_eq!(rows, 0);
    assert_eq!((groups.stats_pruned, groups.stats_matched), (4, 1), "{groups:?}");
    assert_eq!((groups.bloom_pruned, groups.bloom_matched), (1, 0), "{groups:?}");

    // A series lookup by ID uses the series_id bloom filter the same way.
    let batch = all_points(&storage).await;
    let names = metric_names(&batch);
    let series = batch.column_by_name(mcol::SERIES_ID).expect("series").as_string::<i32>();
    let wanted = (0..batch.num_rows()).find(|&i| names[i] == "m08").expect("m08 stored");
    let sql = format!("SELECT * FROM metrics WHERE series_id = '{}'", series.value(wanted));
    let (rows, groups) = row_groups(&storage, &sql).await;
    assert_eq!(rows, 2);
    assert_eq!(groups.stats_pruned + groups.bloom_pruned, 4, "{groups:?}");
}
