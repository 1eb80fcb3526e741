//! Tables derived from a shard's spans: `span_metrics` (module
//! `span_metrics`), `trace_parts` (module `trace_parts`) and `span_links`
//! (module `span_links`), one [`Derivation`] each.
//!
//! Each span file gets one sidecar (Parquet) per derivation with the rows
//! derived from it, written by the flush that made the file (from the rows
//! in memory) or after the merge that did (read back) and, for a file
//! without one (written before the derivation existed, or by a merge on
//! another node), by the first scan that needs it. A sidecar lives and dies
//! with its span file (deleted with it, removed as an orphan without it), so
//! the tables follow flushes, compaction and retention exactly. Buffered
//! spans are derived at scan time. A sidecar is a cache of its file: never
//! uploaded, rebuilt when missing or unreadable.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use async_trait::async_trait;
use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{ScalarValue, Statistics};
use datafusion::datasource::TableProvider;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::{ArrowWriter, ProjectionMask};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::ExecutionPlan;
use skein_model::ModelError;
use tracing::{debug, warn};

use crate::buffer::{DataFile, ShardBuffer, Snapshot, object_path};
use crate::encryption::{TenantKeys, reader_options, with_keys};
use crate::error::{IoContext, StorageError};
use crate::manifest::TimeRange;
use crate::parquet_files::{strings, timestamps};
use crate::provider::{ParquetScan, ScanFile, union_of};
use crate::pruning::{Pruning, restricted_trace_ids};
use crate::span_links::SpanLinks;
use crate::span_metrics::SpanMetrics;
use crate::trace_parts::TraceParts;

/// Rows derived from span rows, kept in a sidecar per span file.
pub(crate) trait Derivation: Send + Sync + 'static {
    /// The sidecar's extension (`<span file stem>.<EXTENSION>`).
    const EXTENSION: &'static str;
    /// Its index in [`SIDECAR_EXTENSIONS`] (and in [`SeenSidecars`]).
    const SLOT: usize;
    /// What the rows are, for logs.
    const WHAT: &'static str;
    /// The span columns the rows are derived from.
    const SOURCE_COLUMNS: &'static [&'static str];
    /// The trace-ID column, when rows are derived per trace: a filter on it
    /// may then drop other traces' spans before deriving.
    const TRACE_ID_COLUMN: Option<&'static str>;
    /// The columns whose every value is the start of one of the row's spans:
    /// none exceeds the newest span start, which the table's statistics
    /// report as their maximum.
    const SPAN_START_COLUMNS: &'static [&'static str] = &[];

    fn schema() -> SchemaRef;

    /// The rows derived from `spans` (holding at least `SOURCE_COLUMNS`).
    fn derive(spans: &[RecordBatch]) -> Result<RecordBatch, ModelError>;

    /// Whether a span file whose spans start within `span_starts` may have
    /// derived rows matching `filters` (`None`: the range is unknown).
    fn may_match(span_starts: Option<&TimeRange>, filters: &[Expr]) -> bool;

    /// How the sidecar is written.
    fn writer_properties() -> Result<WriterProperties, StorageError>;
}

/// The extensions of every derivation's sidecars.
pub(crate) const SIDECAR_EXTENSIONS: [&str; 3] = [SpanMetrics::EXTENSION, TraceParts::EXTENSION, SpanLinks::EXTENSION];

/// A sidecar's size and modification time: while both are unchanged, it is
/// the file a scan found readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SidecarStamp {
    size_bytes: u64,
    modified: SystemTime,
}

impl SidecarStamp {
    fn of(path: &Path) -> Result<Self, StorageError> {
        let meta = std::fs::metadata(path).ctx(|| format!("reading {}", path.display()))?;
        let modified = meta.modified().ctx(|| format!("reading the modification time of {}", path.display()))?;
        Ok(Self { size_bytes: meta.len(), modified })
    }
}

/// The stamps of a span file's sidecars as scans last found them readable,
/// one slot per derivation: a scan re-reads a sidecar's footer to check it
/// only when the sidecar changed on disk since (a `stat` instead).
#[derive(Debug, Default)]
pub(crate) struct SeenSidecars([parking_lot::Mutex<Option<SidecarStamp>>; SIDECAR_EXTENSIONS.len()]);

/// The sidecar of derivation `D` of a span file.
fn sidecar_path<D: Derivation>(parquet: &Path) -> PathBuf {
    parquet.with_extension(D::EXTENSION)
}

/// Every derivation's sidecar of a span file.
pub(crate) fn sidecar_paths(parquet: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    SIDECAR_EXTENSIONS.iter().map(|extension| parquet.with_extension(extension))
}

fn readable(sidecar: &Path, keys: Option<&Arc<TenantKeys>>) -> bool {
    let Ok(options) = reader_options(keys) else { return false };
    std::fs::File::open(sidecar)
        .is_ok_and(|f| ParquetRecordBatchReaderBuilder::try_new_with_options(f, options).is_ok())
}

/// Reads `columns` of the span file `parquet`; `None` when it is gone
/// (deleted by retention or a merge since the caller listed it).
fn read_span_columns(
    parquet: &Path,
    columns: &[&str],
    keys: Option<&Arc<TenantKeys>>,
) -> Result<Option<Vec<RecordBatch>>, StorageError> {
    let file = match std::fs::File::open(parquet) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("opening {}", parquet.display())),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, reader_options(keys)?)?;
    let arrow_schema = Arc::clone(builder.schema());
    let mut roots = columns.iter().map(|name| arrow_schema.index_of(name)).collect::<Result<Vec<_>, _>>()?;
    roots.sort_unstable();
    roots.dedup();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    Ok(Some(builder.with_projection(mask).with_batch_size(8192).build()?.collect::<Result<Vec<_>, _>>()?))
}

/// Writes derivation `D`'s sidecar of the span file `parquet` unless a
/// readable one is there; `None` when the span file is gone (its rows are no
/// longer in the table). Blocking.
fn ensure_sidecar<D: Derivation>(
    parquet: &Path,
    keys: Option<&Arc<TenantKeys>>,
) -> Result<Option<PathBuf>, StorageError> {
    let sidecar = sidecar_path::<D>(parquet);
    if readable(&sidecar, keys) {
        return Ok(Some(sidecar));
    }
    let Some(batches) = read_span_columns(parquet, D::SOURCE_COLUMNS, keys)? else {
        return Ok(None);
    };
    write_sidecar::<D>(parquet, &batches, keys)?;
    Ok(Some(sidecar))
}

/// The sidecar of `D` of the span file `file`, checked readable (derived
/// again when it is not) and stamped; `None` when the span file is gone.
/// Blocking.
fn scannable_sidecar<D: Derivation>(
    file: &DataFile,
    keys: Option<&Arc<TenantKeys>>,
) -> Result<Option<(PathBuf, SidecarStamp)>, StorageError> {
    let parquet = local_path(file);
    let sidecar = sidecar_path::<D>(&parquet);
    let seen = &file.sidecars.0[D::SLOT];
    if let Ok(stamp) = SidecarStamp::of(&sidecar)
        && *seen.lock() == Some(stamp)
    {
        return Ok(Some((sidecar, stamp)));
    }
    let Some(sidecar) = ensure_sidecar::<D>(&parquet, keys)? else {
        return Ok(None);
    };
    let stamp = SidecarStamp::of(&sidecar)?;
    *seen.lock() = Some(stamp);
    Ok(Some((sidecar, stamp)))
}

/// Derives `D`'s rows of `span_batches` (the rows of the span file
/// `parquet`) and writes them as its sidecar. Blocking.
fn write_sidecar<D: Derivation>(
    parquet: &Path,
    span_batches: &[RecordBatch],
    keys: Option<&Arc<TenantKeys>>,
) -> Result<(), StorageError> {
    let sidecar = sidecar_path::<D>(parquet);
    let rows = D::derive(span_batches)?;
    // Unique temporary names: two scans may derive the same file at once.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = sidecar.with_extension(format!(
        "{}.{}.{}.tmp",
        D::EXTENSION,
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> Result<(), StorageError> {
        let out = std::fs::File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        let mut writer = ArrowWriter::try_new(out, D::schema(), Some(with_keys(D::writer_properties()?, keys)?))?;
        writer.write(&rows)?;
        // Not synced: a sidecar a crash leaves unreadable is derived again.
        writer.into_inner()?;
        std::fs::rename(&tmp, &sidecar).ctx(|| format!("renaming {} into place", tmp.display()))
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    debug!(file = %parquet.display(), rows = rows.num_rows(), what = D::WHAT, "wrote derived sidecar");
    Ok(())
}

/// Writes every derivation's sidecar of the span file `parquet` from its
/// rows in memory, logging failures (the first scan that needs one derives
/// it). Blocking.
pub(crate) fn write_sidecars(parquet: &Path, span_batches: &[RecordBatch], keys: Option<&Arc<TenantKeys>>) {
    write_or_warn::<SpanMetrics>(parquet, span_batches, keys);
    write_or_warn::<TraceParts>(parquet, span_batches, keys);
    write_or_warn::<SpanLinks>(parquet, span_batches, keys);
}

/// Writes the sidecars `files` lack, reading each span file once, logging
/// failures (a scan retries them). Blocking; run after a merge so scans
/// find them.
pub(crate) fn ensure_sidecars(files: &[PathBuf], keys: Option<&Arc<TenantKeys>>) {
    for file in files {
        let missing = [
            !readable(&sidecar_path::<SpanMetrics>(file), keys),
            !readable(&sidecar_path::<TraceParts>(file), keys),
            !readable(&sidecar_path::<SpanLinks>(file), keys),
        ];
        if !missing.contains(&true) {
            continue;
        }
        let sources = [SpanMetrics::SOURCE_COLUMNS, TraceParts::SOURCE_COLUMNS, SpanLinks::SOURCE_COLUMNS];
        let columns: Vec<&str> =
            sources.iter().zip(missing).filter(|(_, missing)| *missing).flat_map(|(c, _)| c.iter().copied()).collect();
        let batches = match read_span_columns(file, &columns, keys) {
            Ok(Some(batches)) => batches,
            Ok(None) => continue,
            Err(e) => {
                warn!(file = %file.display(), error = %e, "could not read a span file to derive; the next scan retries");
                continue;
            }
        };
        if missing[0] {
            write_or_warn::<SpanMetrics>(file, &batches, keys);
        }
        if missing[1] {
            write_or_warn::<TraceParts>(file, &batches, keys);
        }
        if missing[2] {
            write_or_warn::<SpanLinks>(file, &batches, keys);
        }
    }
}

/// Writes `D`'s sidecar of `file`, logging a failure (a scan retries it).
fn write_or_warn<D: Derivation>(file: &Path, batches: &[RecordBatch], keys: Option<&Arc<TenantKeys>>) {
    if let Err(e) = write_sidecar::<D>(file, batches, keys) {
        warn!(file = %file.display(), error = %e, what = D::WHAT, "could not derive; the next scan retries");
    }
}

/// One shard's rows of derivation `D` as a DataFusion table: the sidecars of
/// its span files and the rows derived from its buffered spans.
pub(crate) struct DerivedTable<D> {
    spans: Arc<ShardBuffer>,
    /// The tenant's keys when its files are encrypted.
    keys: Option<Arc<TenantKeys>>,
    /// The rows last derived from all buffered spans, with the buffer
    /// version they are of: scans of an unchanged buffer reuse them.
    buffered: parking_lot::Mutex<Option<(u64, RecordBatch)>>,
    /// The newest buffered span start, with the buffer version it is of.
    buffered_newest_start: parking_lot::Mutex<Option<(u64, Option<i64>)>>,
    derivation: PhantomData<D>,
}

impl<D: Derivation> std::fmt::Debug for DerivedTable<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DerivedTable").field("what", &D::WHAT).field("shard", &self.spans.shard).finish()
    }
}

impl<D: Derivation> DerivedTable<D> {
    pub(crate) fn new(spans: Arc<ShardBuffer>, keys: Option<Arc<TenantKeys>>) -> Self {
        Self {
            spans,
            keys,
            buffered: parking_lot::Mutex::new(None),
            buffered_newest_start: parking_lot::Mutex::new(None),
            derivation: PhantomData,
        }
    }

    /// The newest span start in the shard: files by their manifest ranges,
    /// buffered spans by a pass over their start column (once per buffer
    /// version). `None` when the shard holds no span.
    fn newest_span_start(&self) -> Result<Option<i64>, StorageError> {
        let newest_in_files = |files: &[Arc<DataFile>]| files.iter().map(|f| newest_span_start(f)).max();
        let (files, version) = self.spans.files_and_batches_version();
        if let Some((cached_version, buffered)) = *self.buffered_newest_start.lock()
            && cached_version == version
        {
            return Ok(newest_in_files(&files).max(buffered));
        }
        let snapshot = self.spans.snapshot();
        let mut buffered = None;
        for batch in &snapshot.batches {
            buffered = buffered.max(newest_start_in(batch)?);
        }
        *self.buffered_newest_start.lock() = Some((snapshot.batches_version, buffered));
        Ok(newest_in_files(&snapshot.files).max(buffered))
    }

    /// The rows derived from the buffered spans of `snapshot` that `filters`
    /// may keep.
    fn buffered_rows(&self, snapshot: &Snapshot, filters: &[Expr]) -> Result<RecordBatch, StorageError> {
        if let Some(ids) = D::TRACE_ID_COLUMN.and_then(|column| restricted_trace_ids(column, filters)) {
            // Rows are per trace: the other traces' spans cannot make a row the filters keep.
            let spans = snapshot
                .batches
                .iter()
                .map(|batch| spans_of_traces(batch, &ids))
                .collect::<Result<Vec<_>, StorageError>>()?;
            return Ok(D::derive(&spans)?);
        }
        if let Some((version, rows)) = self.buffered.lock().as_ref()
            && *version == snapshot.batches_version
        {
            return Ok(rows.clone());
        }
        let rows = D::derive(&snapshot.batches)?;
        *self.buffered.lock() = Some((snapshot.batches_version, rows.clone()));
        Ok(rows)
    }
}

/// The rows of the span batch `batch` whose trace ID is in `ids`.
fn spans_of_traces(batch: &RecordBatch, ids: &HashSet<&str>) -> Result<RecordBatch, StorageError> {
    let trace_ids = strings(batch, skein_model::schema::col::TRACE_ID)?;
    let keep: BooleanArray = trace_ids.iter().map(|id| Some(id.is_some_and(|id| ids.contains(id)))).collect();
    Ok(filter_record_batch(batch, &keep)?)
}

/// The latest span start among the rows of a span batch.
fn newest_start_in(batch: &RecordBatch) -> Result<Option<i64>, StorageError> {
    Ok(datafusion::arrow::compute::max(timestamps(batch, skein_model::schema::col::START_TIME)?))
}

/// The latest span start in a span file (`i64::MAX` when the manifest has
/// no range: such a file may hold the newest spans).
fn newest_span_start(file: &DataFile) -> i64 {
    file.meta.ranges.get(skein_model::schema::col::START_TIME).map_or(i64::MAX, |range| range.max_ns)
}

/// Absolute path of a data file (its location is the absolute path in the
/// local file system store).
fn local_path(file: &DataFile) -> PathBuf {
    PathBuf::from(format!("/{}", file.location.as_ref()))
}

#[async_trait]
impl<D: Derivation> TableProvider for DerivedTable<D> {
    fn schema(&self) -> SchemaRef {
        D::schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    /// An upper bound of the span-start columns (the newest span start), so
    /// a search can start at the newest data without a query; nothing else.
    fn statistics(&self) -> Option<Statistics> {
        if D::SPAN_START_COLUMNS.is_empty() {
            return None;
        }
        let newest = match self.newest_span_start() {
            Ok(newest) => newest,
            Err(e) => {
                warn!(shard = self.spans.shard, error = %e, "could not find the newest span start");
                return None;
            }
        };
        let schema = D::schema();
        let mut statistics = Statistics::new_unknown(&schema);
        for (field, column) in schema.fields().iter().zip(&mut statistics.column_statistics) {
            if D::SPAN_START_COLUMNS.contains(&field.name().as_str()) {
                // No span at all: nothing exceeds any bound, `MIN` says so.
                let bound = ScalarValue::TimestampNanosecond(Some(newest.unwrap_or(i64::MIN)), None);
                column.max_value = Precision::Inexact(bound);
            }
        }
        Some(statistics)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = self.spans.snapshot();
        // Rows derived per trace hold their span file's traces: its trace index prunes them.
        let traces = D::TRACE_ID_COLUMN.map(|column| Pruning::traces_only(column, filters));
        let mut files: Vec<Arc<DataFile>> = snapshot
            .files
            .iter()
            .filter(|f| D::may_match(f.meta.ranges.get(skein_model::schema::col::START_TIME), filters))
            .filter(|f| traces.as_ref().is_none_or(|traces| traces.may_match(f)))
            .cloned()
            .collect();
        // Newest first: a top-k by time (search's newest trace part) finds
        // its rows early, and its dynamic filter prunes the older sidecars'
        // row groups. (Span scans keep the manifest's order: newest first
        // cost a SQL aggregate over all spans a third more time.)
        files.sort_by_key(|f| std::cmp::Reverse(newest_span_start(f)));
        // Sidecars are checked (derived when missing) off the runtime.
        let keys = self.keys.clone();
        let sidecars = tokio::task::spawn_blocking(move || {
            let mut sidecars = Vec::with_capacity(files.len());
            for file in &files {
                if let Some((sidecar, stamp)) = scannable_sidecar::<D>(file, keys.as_ref())? {
                    sidecars.push(ScanFile {
                        location: object_path(&sidecar)?,
                        size_bytes: stamp.size_bytes,
                        modified: Some(stamp.modified),
                    });
                }
            }
            Ok::<_, StorageError>(sidecars)
        })
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
        debug!(shard = self.spans.shard, files = sidecars.len(), what = D::WHAT, "planned derived scan");

        let schema = self.schema();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(2);
        if !sidecars.is_empty() {
            let mut options = state.table_options().parquet.clone();
            // A lookup by trace ID (search summaries) keeps a few rows of a
            // sidecar: decode the other columns of those rows only.
            options.global.pushdown_filters = true;
            options.global.reorder_filters = true;
            // Sidecars rebuilt in place change size or time: cached metadata is checked against both.
            let scan = ParquetScan {
                schema: Arc::clone(&schema),
                options,
                cache_metadata: true,
                decryption: self.keys.as_ref().map(|k| k.scan_decryption()),
            };
            inputs.push(scan.plan(state, sidecars, projection, filters, limit)?);
        }
        if !snapshot.batches.is_empty() {
            let buffered =
                self.buffered_rows(&snapshot, filters).map_err(|e| DataFusionError::External(Box::new(e)))?;
            let memory = MemorySourceConfig::try_new(&[vec![buffered]], Arc::clone(&schema), projection.cloned())?
                .with_limit(limit);
            inputs.push(DataSourceExec::from_data_source(memory));
        }
        union_of(inputs, &schema, projection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_index_the_extensions() {
        assert_eq!(SIDECAR_EXTENSIONS[SpanMetrics::SLOT], SpanMetrics::EXTENSION);
        assert_eq!(SIDECAR_EXTENSIONS[TraceParts::SLOT], TraceParts::EXTENSION);
        assert_eq!(SIDECAR_EXTENSIONS[SpanLinks::SLOT], SpanLinks::EXTENSION);
    }
}
