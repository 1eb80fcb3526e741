//! Merging files: one DataFusion sort over the input files (memory capped,
//! spilling to temporary files beyond the cap) streamed into output files
//! cut at the target size, each with its manifest entry and trace index.
//!
//! A merge runs on a thread of its own with a single-threaded runtime, so
//! it takes at most one core and never stalls the ingest path's workers.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderMetadata;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext, col};
use futures::StreamExt;
use skein_model::schema::col as span_col;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::attribute_columns::{AttributeColumnsAdapterFactory, AttributeLayout};
use crate::encryption::{TenantKeys, reader_options};
use crate::error::{IoContext, StorageError};
use crate::fsutil::{create_dir_durable, tmp_path};
use crate::manifest::{FileMeta, TimeRange};
use crate::parquet_files::{WrittenFile, partition_dir, publish, strings, widen_ranges, writer_properties};
use crate::signal::{Signal, SignalSpec};
use crate::tidx::TraceIndexBuilder;

/// Rows per batch read and sorted. Span rows are about 1 KiB in memory,
/// and merging spilled runs holds one batch of each: small batches keep
/// that part near the sort's memory cap.
const BATCH_ROWS: usize = 2048;

/// The name the merge's runtime knows the tenant's decryption by.
const DECRYPTION_FACTORY: &str = "skein-tenant-keys";

/// What a merge reads and where it writes.
pub(crate) struct MergeJob {
    pub spec: &'static SignalSpec,
    pub signal_dir: PathBuf,
    pub hour: i64,
    pub inputs: Vec<FileMeta>,
    /// Output names are `<partition>/<name_prefix>-NNN.parquet`.
    pub name_prefix: String,
    pub target_file_bytes: u64,
    pub memory_bytes: u64,
    pub row_group_rows: usize,
    /// The tenant's keys: inputs are decrypted and outputs encrypted.
    pub keys: Option<Arc<TenantKeys>>,
}

/// Merges the job's inputs into new files, sorted by the signal's
/// compaction order. The outputs are durable and in place on return, but
/// listed nowhere; on error or cancellation none are left behind.
pub(crate) async fn merge(job: MergeJob, stop: CancellationToken) -> Result<Vec<WrittenFile>, StorageError> {
    let (done, result) = oneshot::channel();
    std::thread::Builder::new()
        .name("skein-compaction".into())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ctx(|| "starting the compaction runtime".to_owned())
                .and_then(|runtime| runtime.block_on(run(&job, &stop)));
            let _ = done.send(outcome);
        })
        .ctx(|| "starting a compaction thread".to_owned())?;
    result.await.map_err(|_| StorageError::Task("the compaction thread panicked".into()))?
}

async fn run(job: &MergeJob, stop: &CancellationToken) -> Result<Vec<WrittenFile>, StorageError> {
    let mut outputs = Outputs::new(job, input_layout(job)?)?;
    let result = stream_sorted(job, stop, &mut outputs).await;
    match result.and_then(|()| outputs.finish()) {
        Ok(written) => Ok(written),
        Err(e) => {
            outputs.discard();
            Err(e)
        }
    }
}

async fn stream_sorted(
    job: &MergeJob,
    stop: &CancellationToken,
    outputs: &mut Outputs<'_>,
) -> Result<(), StorageError> {
    let mut config = SessionConfig::new().with_target_partitions(1).with_batch_size(BATCH_ROWS);
    // The files' strings must come back as the signal schema's Utf8.
    config.options_mut().execution.parquet.schema_force_view_types = false;
    let usize_bytes = usize::try_from(job.memory_bytes).unwrap_or(usize::MAX);
    let runtime = RuntimeEnvBuilder::new().with_memory_pool(Arc::new(FairSpillPool::new(usize_bytes))).build_arc()?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    if let Some(keys) = &job.keys {
        ctx.runtime_env().register_parquet_encryption_factory(DECRYPTION_FACTORY, keys.scan_decryption());
        ctx.state_ref().write().table_options_mut().parquet.crypto.factory_id = Some(DECRYPTION_FACTORY.to_owned());
    }
    let order = job.spec.compaction_sort_columns.iter().map(|c| col(*c).sort(true, false)).collect();
    let frame = ctx.read_table(input_table(&ctx, job)?)?.sort(order)?;
    let mut stream = frame.execute_stream().await?;
    let mut copies = (job.spec.signal == Signal::Spans).then(SpanCopies::default);
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => return Err(StorageError::Closed),
            next = stream.next() => next,
        };
        match next {
            Some(batch) => {
                let batch = match &mut copies {
                    Some(copies) => copies.drop_repeats(batch?)?,
                    None => batch?,
                };
                outputs.write(batch)?
            }
            None => return Ok(()),
        }
    }
}

/// The job's input files as one table of the signal schema, read like the
/// shard tables read them (attribute maps put back together).
fn input_table(ctx: &SessionContext, job: &MergeJob) -> Result<Arc<ListingTable>, StorageError> {
    let urls = job
        .inputs
        .iter()
        .map(|f| ListingTableUrl::parse(job.signal_dir.join(&f.path).to_string_lossy()))
        .collect::<Result<Vec<_>, _>>()?;
    let options = ParquetReadOptions::default().to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(Arc::clone(&job.spec.schema))
        .with_expr_adapter_factory(Arc::new(AttributeColumnsAdapterFactory));
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// The attribute columns of the merged files: those of the inputs (whose
/// footers say which), so a merge keeps what each flush learned.
fn input_layout(job: &MergeJob) -> Result<AttributeLayout, StorageError> {
    if job.spec.attribute_maps.is_empty() {
        return Ok(AttributeLayout::default());
    }
    let mut inputs = Vec::with_capacity(job.inputs.len());
    for input in &job.inputs {
        let path = job.signal_dir.join(&input.path);
        let file = File::open(&path).ctx(|| format!("opening {}", path.display()))?;
        let footer = ArrowReaderMetadata::load(&file, reader_options(job.keys.as_ref())?)?;
        inputs.push((AttributeLayout::of_schema(job.spec.attribute_maps, footer.schema()), input.rows));
    }
    Ok(AttributeLayout::merge(&inputs))
}

/// Drops repeated spans from the merge's sorted stream: a retry the
/// write-time dedup did not catch (after its window, or a flush and a
/// restart) stored a span twice, and the sort puts the copies side by side.
/// A span is a repeat when its trace and span ID equal the previous row's.
#[derive(Default)]
struct SpanCopies {
    last: Option<(String, String)>,
}

impl SpanCopies {
    fn drop_repeats(&mut self, batch: RecordBatch) -> Result<RecordBatch, StorageError> {
        let traces = strings(&batch, span_col::TRACE_ID)?;
        let spans = strings(&batch, span_col::SPAN_ID)?;
        let mut keep = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let (trace, span) = (traces.value(row), spans.value(row));
            let repeat = self.last.as_ref().is_some_and(|(t, s)| t == trace && s == span);
            keep.push(!repeat);
            if !repeat {
                self.last = Some((trace.to_owned(), span.to_owned()));
            }
        }
        if keep.iter().all(|k| *k) {
            return Ok(batch);
        }
        Ok(filter_record_batch(&batch, &BooleanArray::from(keep))?)
    }
}

/// The output files of one merge: the one being written and those done.
struct Outputs<'a> {
    job: &'a MergeJob,
    /// The attribute columns every output file has.
    layout: AttributeLayout,
    file_schema: SchemaRef,
    current: Option<OpenFile>,
    written: Vec<WrittenFile>,
    /// Everything created on disk, removed if the merge fails.
    created: Vec<PathBuf>,
}

struct OpenFile {
    relative: String,
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
    ranges: BTreeMap<String, TimeRange>,
    index: Option<TraceIndexBuilder>,
}

impl<'a> Outputs<'a> {
    fn new(job: &'a MergeJob, layout: AttributeLayout) -> Result<Self, StorageError> {
        let file_schema = layout.file_schema(&job.spec.schema)?;
        Ok(Self { job, layout, file_schema, current: None, written: Vec::new(), created: Vec::new() })
    }

    fn write(&mut self, batch: RecordBatch) -> Result<(), StorageError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let spec = self.job.spec;
        // Same columns; the writer wants the signal schema's field metadata too.
        let batch = RecordBatch::try_new(Arc::clone(&spec.schema), batch.columns().to_vec())?;
        let file_batch = self.layout.extend(&self.file_schema, &batch)?;
        if self.current.is_none() {
            self.current = Some(self.open()?);
        }
        let Some(file) = self.current.as_mut() else { return Ok(()) };
        file.writer.write(&file_batch)?;
        file.rows += batch.num_rows() as u64;
        widen_ranges(spec, &mut file.ranges, &batch)?;
        if let (Some(index), Some(column)) = (&mut file.index, spec.trace_index_column) {
            index.add(strings(&batch, column)?);
        }
        // Cut on what is encoded and compressed: every file but the last is
        // then at least the target, so merges always leave fewer small files.
        if file.writer.bytes_written() as u64 >= self.job.target_file_bytes {
            self.close_current()?;
        }
        Ok(())
    }

    fn open(&mut self) -> Result<OpenFile, StorageError> {
        let job = self.job;
        let relative = format!("{}/{}-{:03}.parquet", partition_dir(job.hour), job.name_prefix, self.written.len());
        let path = job.signal_dir.join(&relative);
        let dir = path.parent().ok_or_else(|| StorageError::Task(format!("{relative} has no parent directory")))?;
        create_dir_durable(dir).ctx(|| format!("creating {}", dir.display()))?;
        let tmp = tmp_path(&path);
        self.created.push(tmp.clone());
        let file = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        let properties = writer_properties(
            job.spec,
            &self.layout.column_names(),
            job.row_group_rows,
            job.row_group_rows,
            job.spec.compaction_sort_columns,
            job.keys.as_ref(),
        )?;
        let writer = ArrowWriter::try_new(file, Arc::clone(&self.file_schema), Some(properties))?;
        let index = job.spec.trace_index_column.map(|_| TraceIndexBuilder::default());
        Ok(OpenFile { relative, path, tmp, writer, rows: 0, ranges: BTreeMap::new(), index })
    }

    fn close_current(&mut self) -> Result<(), StorageError> {
        let Some(file) = self.current.take() else { return Ok(()) };
        let handle = file.writer.into_inner()?;
        handle.sync_all().ctx(|| format!("syncing {}", file.tmp.display()))?;
        let size_bytes = handle.metadata().ctx(|| format!("reading {}", file.tmp.display()))?.len();
        drop(handle);
        let index = file.index.map(TraceIndexBuilder::finish);
        publish(&file.tmp, &file.path, index.as_ref(), &mut self.created)?;
        let meta =
            FileMeta { path: file.relative, size_bytes, rows: file.rows, hour: self.job.hour, ranges: file.ranges };
        self.written.push(WrittenFile { meta, index });
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<WrittenFile>, StorageError> {
        self.close_current()?;
        Ok(std::mem::take(&mut self.written))
    }

    fn discard(&mut self) {
        self.current = None;
        for path in &self.created {
            let _ = std::fs::remove_file(path);
        }
        self.written.clear();
    }
}
