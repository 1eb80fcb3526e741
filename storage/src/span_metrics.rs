//! The `span_metrics` table of one shard (schema
//! [`skein_model::span_metrics_schema`]): RED rows derived from its spans.
//!
//! Each span file gets a `.red` sidecar (Parquet) with the rows derived from
//! it, written by the flush that made the file (from the rows in memory)
//! or after the merge that did (read back) and, for a file
//! without one (written before sidecars existed, or by a merge on another
//! node), by the first scan that needs it. The sidecar lives and dies with
//! its span file (deleted with it, removed as an orphan without it), so the
//! table follows flushes, compaction and retention exactly. Buffered spans
//! are derived at scan time. A sidecar is a cache of its file: never
//! uploaded, rebuilt when missing or unreadable.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::TableProvider;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::{ArrowWriter, ProjectionMask};
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::ExecutionPlan;
use skein_model::schema::col as span_col;
use skein_model::span_metrics::{MINUTE_NS, col, derive};
use skein_model::span_metrics_schema;
use tracing::{debug, warn};

use crate::buffer::{DataFile, ShardBuffer};
use crate::error::{IoContext, StorageError};
use crate::provider::{ParquetScan, union_of};
use crate::pruning::Pruning;

/// The span columns the metrics are derived from.
const SOURCE_COLUMNS: [&str; 9] = [
    span_col::TRACE_ID,
    span_col::SPAN_ID,
    span_col::PARENT_SPAN_ID,
    span_col::SERVICE_NAME,
    span_col::NAME,
    span_col::KIND,
    span_col::STATUS_CODE,
    span_col::START_TIME,
    span_col::DURATION_NS,
];

/// The `.red` sidecar of a span file.
pub(crate) fn sidecar_path(parquet: &Path) -> PathBuf {
    parquet.with_extension("red")
}

/// Writes the sidecar of the span file `parquet` unless a readable one is
/// there; `None` when the span file is gone (deleted by retention or a
/// merge since the caller listed it: its rows are no longer in the table).
/// Blocking.
pub(crate) fn ensure_sidecar(parquet: &Path) -> Result<Option<PathBuf>, StorageError> {
    let sidecar = sidecar_path(parquet);
    if std::fs::File::open(&sidecar).is_ok_and(|f| ParquetRecordBatchReaderBuilder::try_new(f).is_ok()) {
        return Ok(Some(sidecar));
    }
    let file = match std::fs::File::open(parquet) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("opening {}", parquet.display())),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let arrow_schema = Arc::clone(builder.schema());
    let roots = SOURCE_COLUMNS.iter().map(|name| arrow_schema.index_of(name)).collect::<Result<Vec<_>, _>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let batches = builder.with_projection(mask).with_batch_size(8192).build()?.collect::<Result<Vec<_>, _>>()?;
    write_sidecar(parquet, &batches)?;
    Ok(Some(sidecar))
}

/// Derives the span metrics of `span_batches` (the rows of the span file
/// `parquet`) and writes them as its sidecar. Blocking.
pub(crate) fn write_sidecar(parquet: &Path, span_batches: &[RecordBatch]) -> Result<(), StorageError> {
    let sidecar = sidecar_path(parquet);
    let rows = derive(span_batches)?;
    // Unique temporary names: two scans may derive the same file at once.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp =
        sidecar.with_extension(format!("red.{}.{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let write = || -> Result<(), StorageError> {
        let out = std::fs::File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(64 * 1024))
            .build();
        let mut writer = ArrowWriter::try_new(out, span_metrics_schema(), Some(properties))?;
        writer.write(&rows)?;
        // Not synced: a sidecar a crash leaves unreadable is derived again.
        writer.into_inner()?;
        std::fs::rename(&tmp, &sidecar).ctx(|| format!("renaming {} into place", tmp.display()))
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    debug!(file = %parquet.display(), rows = rows.num_rows(), "wrote span metrics sidecar");
    Ok(())
}

/// Writes the sidecars of `files` that lack one, logging failures (a scan
/// retries them). Blocking; run after a flush or merge so scans find them.
pub(crate) fn ensure_sidecars(files: &[PathBuf]) {
    for file in files {
        if let Err(e) = ensure_sidecar(file) {
            warn!(file = %file.display(), error = %e, "could not derive span metrics; the next scan retries");
        }
    }
}

/// One shard's span metrics as a DataFusion table.
pub struct SpanMetricsTable {
    spans: Arc<ShardBuffer>,
}

impl std::fmt::Debug for SpanMetricsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanMetricsTable").field("shard", &self.spans.shard).finish()
    }
}

impl SpanMetricsTable {
    pub(crate) fn new(spans: Arc<ShardBuffer>) -> Self {
        Self { spans }
    }
}

/// Absolute path of a data file (its location is the absolute path in the
/// local file system store).
fn local_path(file: &DataFile) -> PathBuf {
    PathBuf::from(format!("/{}", file.location.as_ref()))
}

#[async_trait]
impl TableProvider for SpanMetricsTable {
    fn schema(&self) -> SchemaRef {
        span_metrics_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = self.spans.snapshot();
        let bounds = Pruning::bounds_of(col::TIME, filters);
        let minute = |ns: i64| ns.div_euclid(MINUTE_NS) * MINUTE_NS;
        let files: Vec<PathBuf> = snapshot
            .files
            .iter()
            .filter(|f| {
                f.meta
                    .ranges
                    .get(span_col::START_TIME)
                    .is_none_or(|r| bounds.overlaps(minute(r.min_ns), minute(r.max_ns)))
            })
            .map(|f| local_path(f))
            .collect();
        // Sidecars are derived (when missing) and measured off the runtime.
        let sidecars = tokio::task::spawn_blocking(move || {
            let mut sidecars = Vec::with_capacity(files.len());
            for file in &files {
                if let Some(sidecar) = ensure_sidecar(file)? {
                    let size = std::fs::metadata(&sidecar).ctx(|| format!("reading {}", sidecar.display()))?.len();
                    let location = ObjectPath::from_absolute_path(&sidecar).map_err(|e| StorageError::Io {
                        context: format!("mapping {} to an object store path", sidecar.display()),
                        source: std::io::Error::other(e),
                    })?;
                    sidecars.push((location, size));
                }
            }
            Ok::<_, StorageError>(sidecars)
        })
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
        debug!(shard = self.spans.shard, files = sidecars.len(), "planned span metrics scan");

        let schema = self.schema();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(2);
        if !sidecars.is_empty() {
            let options = state.table_options().parquet.clone();
            // Rebuilt in place when unreadable: their metadata is not cached.
            let scan = ParquetScan { schema: Arc::clone(&schema), options, cache_metadata: false };
            inputs.push(scan.plan(state, sidecars, projection, filters, limit)?);
        }
        if !snapshot.batches.is_empty() {
            let buffered = derive(&snapshot.batches).map_err(|e| DataFusionError::External(Box::new(e)))?;
            let memory = MemorySourceConfig::try_new(&[vec![buffered]], Arc::clone(&schema), projection.cloned())?
                .with_limit(limit);
            inputs.push(DataSourceExec::from_data_source(memory));
        }
        union_of(inputs, &schema, projection)
    }
}
