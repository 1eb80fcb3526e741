//! The DataFusion table of one signal of one shard: its Parquet files plus
//! its buffers.
//!
//! `scan` takes an atomic snapshot (files, frozen and active buffers), drops
//! files the manifest ranges or the trace-ID index (spans) rule out, and plans a
//! Parquet scan of the rest (filters pushed down for row-group statistics,
//! bloom filter and page index pruning) unioned with an in-memory scan of
//! the buffered batches. Filters are `Inexact`: DataFusion re-applies them.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::common::config::TableParquetOptions;
use datafusion::datasource::TableProvider;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::parquet_encryption::EncryptionFactory;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::physical_expr::{PhysicalExpr, conjunction};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use tracing::debug;

use crate::attribute_columns::AttributeColumnsAdapterFactory;
use crate::buffer::{DataFile, ShardBuffer};
use crate::encryption::TenantKeys;
use crate::pruning::Pruning;
use crate::signal::{Signal, SignalExt};
use crate::tidx::trace_key;

/// One shard's rows of one signal as a DataFusion table (schema:
/// [`Signal::schema`]: `skein_model::span_schema` or
/// `skein_model::metrics::metric_schema`).
pub struct ShardTable {
    buffer: Arc<ShardBuffer>,
    /// The tenant's keys when its files are encrypted.
    keys: Option<Arc<TenantKeys>>,
}

impl std::fmt::Debug for ShardTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardTable").field("shard", &self.buffer.shard).field("signal", &self.buffer.signal).finish()
    }
}

impl ShardTable {
    pub(crate) fn new(buffer: Arc<ShardBuffer>, keys: Option<Arc<TenantKeys>>) -> Self {
        Self { buffer, keys }
    }

    pub fn shard(&self) -> usize {
        self.buffer.shard
    }

    pub fn signal(&self) -> Signal {
        self.buffer.signal
    }

    /// Parquet files currently in the shard's manifest.
    pub fn file_count(&self) -> usize {
        self.buffer.files().len()
    }

    /// How many Parquet files a lookup of `trace_id` would open: the ones
    /// whose trace-ID index may hold it (every file, for a signal without one).
    pub fn files_for_trace(&self, trace_id: &str) -> usize {
        let keys: Vec<u64> = trace_key(trace_id).into_iter().collect();
        self.buffer.files().iter().filter(|f| f.index.as_ref().is_none_or(|i| i.may_contain_any(&keys))).count()
    }

    fn parquet_scan(
        &self,
        state: &dyn Session,
        files: &[&Arc<DataFile>],
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut options = state.table_options().parquet.clone();
        options.global.enable_page_index = true;
        options.global.bloom_filter_on_read = true;
        // Most scans are selective (a trace, a service, a time range): decode
        // the filter columns first and only the matching rows of the rest.
        options.global.pushdown_filters = true;
        options.global.reorder_filters = true;
        let files = files.iter().map(|f| ScanFile::immutable(f.location.clone(), f.meta.size_bytes)).collect();
        let scan = ParquetScan {
            schema: self.schema(),
            options,
            cache_metadata: true,
            decryption: self.keys.as_ref().map(|k| k.scan_decryption()),
        };
        scan.plan(state, files, projection, filters, limit)
    }
}

/// One file of a [`ParquetScan`].
#[derive(Debug, Clone)]
pub(crate) struct ScanFile {
    /// Location in the local file system store.
    pub location: ObjectPath,
    pub size_bytes: u64,
    /// When it was last written, for files that may be rewritten in place
    /// (sidecars): cached metadata is only reused while size and time match.
    pub modified: Option<std::time::SystemTime>,
}

impl ScanFile {
    /// A file never rewritten in place (span files): its size identifies it.
    pub fn immutable(location: ObjectPath, size_bytes: u64) -> Self {
        Self { location, size_bytes, modified: None }
    }
}

/// A Parquet scan of local files with a scan's filters as its predicate.
pub(crate) struct ParquetScan {
    pub schema: SchemaRef,
    /// How the files are read; pruning on and view types off are added.
    pub options: TableParquetOptions,
    /// Keep the files' metadata in the runtime's cache (immutable files;
    /// DataFusion does not cache the metadata of encrypted files).
    pub cache_metadata: bool,
    /// How encrypted files are decrypted.
    pub decryption: Option<Arc<dyn EncryptionFactory>>,
}

impl ParquetScan {
    /// Plans a scan of `files`.
    pub fn plan(
        mut self,
        state: &dyn Session,
        files: Vec<ScanFile>,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // The buffers yield Utf8 columns; so must the files, for the union.
        self.options.global.schema_force_view_types = false;
        self.options.global.pruning = true;
        let store_url = ObjectStoreUrl::local_filesystem();
        let mut source = ParquetSource::new(Arc::clone(&self.schema)).with_table_parquet_options(self.options);
        if self.cache_metadata {
            let runtime = state.runtime_env();
            let reader_factory = CachedParquetFileReaderFactory::new(
                runtime.object_store(&store_url)?,
                runtime.cache_manager.get_file_metadata_cache(),
            );
            source = source.with_parquet_file_reader_factory(Arc::new(reader_factory));
        }
        if let Some(decryption) = self.decryption {
            source = source.with_encryption_factory(decryption);
        }
        if let Some(predicate) = physical_predicate(state, filters, &self.schema)? {
            source = source.with_predicate(predicate);
        }

        let group_count = state.config().target_partitions().clamp(1, files.len());
        let mut groups = vec![Vec::new(); group_count];
        for (i, file) in files.into_iter().enumerate() {
            let mut partitioned = PartitionedFile::new(String::new(), file.size_bytes);
            partitioned.object_meta.location = file.location;
            if let Some(modified) = file.modified {
                partitioned.object_meta.last_modified = chrono::DateTime::<chrono::Utc>::from(modified);
            }
            groups[i % group_count].push(partitioned);
        }
        let config = FileScanConfigBuilder::new(store_url, Arc::new(source))
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .with_expr_adapter(Some(Arc::new(AttributeColumnsAdapterFactory)))
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

/// The union of a scan's inputs (files, buffers); an empty plan of the
/// projected schema when there are none.
pub(crate) fn union_of(
    inputs: Vec<Arc<dyn ExecutionPlan>>,
    schema: &SchemaRef,
    projection: Option<&Vec<usize>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    if inputs.is_empty() {
        let schema = datafusion::common::project_schema(schema, projection)?;
        return Ok(Arc::new(EmptyExec::new(schema)));
    }
    UnionExec::try_new(inputs)
}

/// The filters as one physical predicate over the table schema; filters
/// that cannot be converted are left to DataFusion's own filter.
pub(crate) fn physical_predicate(
    state: &dyn Session,
    filters: &[Expr],
    schema: &SchemaRef,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let df_schema = DFSchema::try_from(Arc::clone(schema))?;
    let mut predicates = Vec::with_capacity(filters.len());
    for filter in filters {
        match state.create_physical_expr(filter.clone(), &df_schema) {
            Ok(predicate) => predicates.push(predicate),
            Err(e) => debug!(filter = %filter, error = %e, "filter not pushed into the parquet scan"),
        }
    }
    Ok((!predicates.is_empty()).then(|| conjunction(predicates)))
}

#[async_trait]
impl TableProvider for ShardTable {
    fn schema(&self) -> SchemaRef {
        self.buffer.signal.schema()
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
        let snapshot = self.buffer.snapshot();
        let pruning = Pruning::from_filters(self.buffer.signal.spec(), filters);
        let files: Vec<&Arc<DataFile>> = snapshot.files.iter().filter(|f| pruning.may_match(f)).collect();
        debug!(
            shard = self.buffer.shard,
            signal = %self.buffer.signal,
            files = files.len(),
            pruned = snapshot.files.len() - files.len(),
            buffered_batches = snapshot.batches.len(),
            "planned shard scan"
        );

        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(2);
        if !files.is_empty() {
            inputs.push(self.parquet_scan(state, &files, projection, filters, limit)?);
        }
        if !snapshot.batches.is_empty() {
            let partition_count = state.config().target_partitions().clamp(1, snapshot.batches.len());
            let mut partitions = vec![Vec::new(); partition_count];
            for (i, batch) in snapshot.batches.into_iter().enumerate() {
                partitions[i % partition_count].push(batch);
            }
            let memory =
                MemorySourceConfig::try_new(&partitions, self.schema(), projection.cloned())?.with_limit(limit);
            inputs.push(DataSourceExec::from_data_source(memory));
        }
        union_of(inputs, &self.schema(), projection)
    }
}
