//! Writing frozen buffers as time-partitioned Parquet files (blocking code,
//! run on the blocking pool).
//!
//! Rows are split by the hour of the signal's partition column (spans:
//! `start_time`, metrics: `time`) into `date=YYYY-MM-DD/hour=HH/<name>.parquet`
//! under the signal directory, in arrival order: the buffered batches are
//! encoded as they are, without a copy. Sorting at flush (metric points by
//! series, logs by service) cost a copy of every column, a third of the
//! metrics ingest CPU, and blocked the buffer for it; compaction sorts each
//! hour's rows anyway, and an OTLP request already keeps a metric's points
//! together. Lookups by trace ID go through the `.tidx` sidecar and the
//! bloom filters. Nearly unique columns (span IDs, timestamps, durations)
//! skip the dictionary for an encoding that suits them, and nested columns
//! skip statistics no query can use. Span and log files also carry the attribute
//! columns their rows call for (module `attribute_columns`). Each file is
//! written under a temporary
//! name, synced and renamed, with its `.tidx` sidecar when the signal has a
//! trace index.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use datafusion::arrow::compute::{filter_record_batch, max, min};
use datafusion::arrow::datatypes::TimestampNanosecondType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use tracing::debug;

use crate::attribute_columns::AttributeLayout;
use crate::encryption::{TenantKeys, reader_options};
use crate::error::{IoContext, StorageError};
use crate::fsutil::{create_dir_durable, fsync_dir, tmp_path};
use crate::manifest::{FileMeta, TimeRange};
use crate::parquet_encode::write_parallel;
use crate::signal::{Signal, SignalSpec};
use crate::tidx::{TraceIndex, sidecar_path};

pub(crate) const NS_PER_HOUR: i64 = 3_600_000_000_000;
// Level 1: within 2% of level 3 in size on span data (the IDs, the bulk, are
// random) at a lower flush cost.
const ZSTD_LEVEL: i32 = 1;
pub(crate) const BLOOM_FILTER_FPP: f64 = 0.01;

/// A file a flush wrote, with its sidecar index.
pub(crate) struct WrittenFile {
    pub meta: FileMeta,
    pub index: Option<TraceIndex>,
}

/// The `date=YYYY-MM-DD/hour=HH` directory of an hour partition.
pub(crate) fn partition_dir(hour: i64) -> String {
    let (year, month, day) = civil_from_days(hour.div_euclid(24));
    format!("date={year:04}-{month:02}-{day:02}/hour={:02}", hour.rem_euclid(24))
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(crate) fn timestamps<'a>(
    batch: &'a RecordBatch,
    column: &str,
) -> Result<&'a TimestampNanosecondArray, StorageError> {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .ok_or_else(|| StorageError::Task(format!("batch has no nanosecond {column} column")))
}

pub(crate) fn strings<'a>(batch: &'a RecordBatch, column: &str) -> Result<&'a StringArray, StorageError> {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| StorageError::Task(format!("batch has no utf8 {column} column")))
}

/// How `spec`'s files are encoded. `sorted_by` names the columns the rows
/// are sorted by: those get statistics even where arrival order would make
/// them useless. `bloom_attribute_columns` get bloom filters too.
pub(crate) fn writer_properties(
    spec: &SignalSpec,
    bloom_attribute_columns: &[String],
    row_group_rows: usize,
    rows: usize,
    sorted_by: &[&str],
    keys: Option<&Arc<TenantKeys>>,
) -> Result<WriterProperties, StorageError> {
    // Bloom filters are sized per row group and folded down once written.
    let ndv = rows.clamp(1, row_group_rows) as u64;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_max_row_group_row_count(Some(row_group_rows))
        // Page-level statistics also write the column and offset indexes.
        .set_statistics_enabled(EnabledStatistics::Page);
    // Nested columns (attribute maps, events, links) cannot be pruned by
    // statistics: computing min/max for every key and value is wasted work.
    let descriptor = ArrowSchemaConverter::new().convert(&spec.schema)?;
    for leaf in descriptor.columns() {
        if leaf.path().parts().len() > 1 {
            builder = builder.set_column_statistics_enabled(leaf.path().clone(), EnabledStatistics::None);
        }
    }
    for (column, encoding) in spec.plain_columns {
        let path = ColumnPath::from(*column);
        builder = builder.set_column_dictionary_enabled(path.clone(), false).set_column_encoding(path, *encoding);
    }
    for column in spec.unindexed_columns.iter().filter(|c| !sorted_by.contains(c)) {
        builder = builder.set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None);
    }
    let bloom_columns = spec.bloom_columns.iter().copied().chain(bloom_attribute_columns.iter().map(String::as_str));
    for column in bloom_columns {
        let path = ColumnPath::from(column);
        builder = builder
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path.clone(), BLOOM_FILTER_FPP)
            .set_column_bloom_filter_max_ndv(path, ndv);
    }
    if let Some(keys) = keys {
        builder = keys.encrypt_parquet(builder)?;
    }
    Ok(builder.build())
}

/// Writes `batches` as one Parquet file per hour partition under
/// `signal_dir`, each named `<name_prefix>-<n>.parquet`. Files are durable
/// (synced, renamed, directories synced) on return. On error, files written
/// so far are removed: no manifest references them yet.
pub(crate) fn write_partitions(
    spec: &SignalSpec,
    signal_dir: &Path,
    batches: &[RecordBatch],
    row_group_rows: usize,
    name_prefix: &str,
    keys: Option<&Arc<TenantKeys>>,
) -> Result<Vec<WrittenFile>, StorageError> {
    let mut created: Vec<PathBuf> = Vec::new();
    let target = Target { spec, signal_dir, row_group_rows, keys };
    let result = write_partitions_inner(&target, batches, name_prefix, &mut created);
    if result.is_err() {
        for path in &created {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

/// Where and how a flush writes its files.
struct Target<'a> {
    spec: &'a SignalSpec,
    signal_dir: &'a Path,
    row_group_rows: usize,
    keys: Option<&'a Arc<TenantKeys>>,
}

fn write_partitions_inner(
    target: &Target<'_>,
    batches: &[RecordBatch],
    name_prefix: &str,
    created: &mut Vec<PathBuf>,
) -> Result<Vec<WrittenFile>, StorageError> {
    let hours = split_by_hour(target.spec, batches)?;
    let mut written = Vec::with_capacity(hours.len());
    for (hour, part) in hours {
        let relative = format!("{}/{name_prefix}-{:03}.parquet", partition_dir(hour), written.len());
        written.push(write_file(target, &relative, &part, hour, created)?);
    }
    Ok(written)
}

/// The rows of each hour in arrival order. A batch within one hour (nearly
/// all of them) is passed on as it is: no copy, which keeps the flush's CPU
/// and memory to the Parquet encoding itself.
fn split_by_hour(spec: &SignalSpec, batches: &[RecordBatch]) -> Result<BTreeMap<i64, Vec<RecordBatch>>, StorageError> {
    let mut hours: BTreeMap<i64, Vec<RecordBatch>> = BTreeMap::new();
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        let batch_hours: Int64Array = timestamps(batch, spec.partition_column)?.unary(|ns| ns.div_euclid(NS_PER_HOUR));
        let (first, last) = (min(&batch_hours), max(&batch_hours));
        if first == last {
            if let Some(hour) = first {
                hours.entry(hour).or_default().push(batch.clone());
            }
            continue;
        }
        let distinct: std::collections::BTreeSet<i64> = batch_hours.values().iter().copied().collect();
        for hour in distinct {
            let mask = datafusion::arrow::compute::kernels::cmp::eq(&batch_hours, &Int64Array::new_scalar(hour))?;
            hours.entry(hour).or_default().push(filter_record_batch(batch, &mask)?);
        }
    }
    Ok(hours)
}

fn write_file(
    target: &Target<'_>,
    relative: &str,
    batches: &[RecordBatch],
    hour: i64,
    created: &mut Vec<PathBuf>,
) -> Result<WrittenFile, StorageError> {
    let spec = target.spec;
    let path = target.signal_dir.join(relative);
    let dir = path.parent().ok_or_else(|| StorageError::Task(format!("{relative} has no parent directory")))?;
    create_dir_durable(dir).ctx(|| format!("creating {}", dir.display()))?;

    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let tmp = tmp_path(&path);
    created.push(tmp.clone());
    let file = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
    let layout = AttributeLayout::learn(spec.attribute_maps, batches)?;
    let file_schema = layout.file_schema(&spec.schema)?;
    let file_batches = batches.iter().map(|b| layout.extend(&file_schema, b)).collect::<Result<Vec<_>, _>>()?;
    // No bloom filters on a flush's attribute columns: they cost the ingest
    // path about 3% of its CPU, and the row filter reads such a small
    // file's dictionary-encoded column cheaply. Merged files have them.
    let properties = writer_properties(spec, &[], target.row_group_rows, rows, &[], target.keys)?;
    let writer = ArrowWriter::try_new(&file, Arc::clone(&file_schema), Some(properties))?;
    write_parallel(writer, &file_schema, &file_batches, target.row_group_rows)?;
    drop(file_batches);
    file.sync_all().ctx(|| format!("syncing {}", tmp.display()))?;
    let size_bytes = file.metadata().ctx(|| format!("reading {}", tmp.display()))?.len();
    drop(file);

    let index = match spec.trace_index_column {
        Some(column) => {
            let ids = batches.iter().map(|b| strings(b, column)).collect::<Result<Vec<_>, _>>()?;
            Some(TraceIndex::build(ids))
        }
        None => None,
    };
    publish(&tmp, &path, index.as_ref(), created)?;
    if spec.signal == Signal::Spans {
        crate::derived::write_sidecars(&path, batches, target.keys);
    }
    debug!(
        signal = %spec.signal,
        file = relative,
        rows,
        traces = index.as_ref().map(TraceIndex::len),
        bytes = size_bytes,
        "wrote parquet file"
    );

    let mut ranges = BTreeMap::new();
    for batch in batches {
        widen_ranges(spec, &mut ranges, batch)?;
    }
    let meta = FileMeta { path: relative.to_owned(), size_bytes, rows: rows as u64, hour, ranges };
    Ok(WrittenFile { meta, index })
}

/// Puts a written and synced file in place: its trace-index sidecar first
/// (so a file under its final name always has one), then the rename and
/// the directory sync. What it creates is added to `created`.
pub(crate) fn publish(
    tmp: &Path,
    path: &Path,
    index: Option<&TraceIndex>,
    created: &mut Vec<PathBuf>,
) -> Result<(), StorageError> {
    let dir = path.parent().ok_or_else(|| StorageError::Task(format!("{} has no parent", path.display())))?;
    if let Some(index) = index {
        let sidecar = sidecar_path(path);
        created.push(sidecar.clone());
        index.write(&sidecar)?;
    }
    created.push(path.to_owned());
    std::fs::rename(tmp, path).ctx(|| format!("renaming {} into place", tmp.display()))?;
    fsync_dir(dir).ctx(|| format!("syncing {}", dir.display()))
}

/// Widens the manifest `ranges` of a file to cover `batch`'s rows. A column
/// null in every row so far has no entry: pruning then keeps the file.
pub(crate) fn widen_ranges(
    spec: &SignalSpec,
    ranges: &mut BTreeMap<String, TimeRange>,
    batch: &RecordBatch,
) -> Result<(), StorageError> {
    for column in spec.range_columns {
        let values = timestamps(batch, column)?;
        if let (Some(min_ns), Some(max_ns)) = (min(values), max(values)) {
            ranges
                .entry((*column).to_owned())
                .and_modify(|r| *r = TimeRange { min_ns: r.min_ns.min(min_ns), max_ns: r.max_ns.max(max_ns) })
                .or_insert(TimeRange { min_ns, max_ns });
        }
    }
    Ok(())
}

/// Rebuilds the trace index of a Parquet file from its trace-ID `column`
/// (when the sidecar is missing or damaged).
pub(crate) fn rebuild_index(
    path: &Path,
    column: &str,
    keys: Option<&Arc<TenantKeys>>,
) -> Result<TraceIndex, StorageError> {
    let file = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, reader_options(keys)?)?;
    let index =
        builder.schema().index_of(column).map_err(|_| StorageError::corrupt(path, format!("no {column} column")))?;
    let mask = datafusion::parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [index]);
    let reader = builder.with_projection(mask).build()?;
    let mut arrays = Vec::new();
    for batch in reader {
        let batch = batch?;
        let ids = strings(&batch, column).map_err(|_| StorageError::corrupt(path, format!("{column} is not utf8")))?;
        arrays.push(ids.clone());
    }
    Ok(TraceIndex::build(arrays.iter()))
}

/// Reads a whole Parquet file back (tests).
#[cfg(test)]
pub(crate) fn read_file(path: &Path) -> Vec<RecordBatch> {
    read_encrypted_file(path, None)
}

/// Reads a whole Parquet file back, decrypting with `keys` (tests).
#[cfg(test)]
pub(crate) fn read_encrypted_file(path: &Path, keys: Option<&Arc<TenantKeys>>) -> Vec<RecordBatch> {
    let file = File::open(path).expect("opens parquet file");
    ParquetRecordBatchReaderBuilder::try_new_with_options(file, reader_options(keys).expect("reader options"))
        .expect("reads footer")
        .build()
        .expect("builds reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("reads batches")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_hours() {
        assert_eq!(partition_dir(0), "date=1970-01-01/hour=00");
        // 1_700_000_000 s = 2023-11-14T22:13:20Z
        assert_eq!(partition_dir(1_700_000_000 / 3600), "date=2023-11-14/hour=22");
        assert_eq!(partition_dir(-1), "date=1969-12-31/hour=23");
        // 2024-02-29T05:00:00Z = 1709182800 s
        assert_eq!(partition_dir(1_709_182_800 / 3600), "date=2024-02-29/hour=05");
        assert_eq!(civil_from_days(10_957), (2000, 1, 1));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    }
}
