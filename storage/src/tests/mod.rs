//! End-to-end tests of the storage role through its public API (plus the
//! crate-internal crash and pause hooks), with real files in a temp dir.

mod attribute_columns;
mod bucket;
mod compaction;
mod durability;
mod encryption;
mod failover;
mod limits;
mod logs;
mod metric_data;
mod metric_query;
mod metrics;
mod query;
mod span_links;
mod span_metrics;
mod tenants;
mod trace_limit;
mod trace_parts;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prometheus_client::registry::Registry;
use skein_model::{ConvertLimits, ShardWriter, SpanRecord, records_from_batch, spans_to_arrow};
use tokio_util::sync::CancellationToken;

use crate::shard::Shard;
use crate::{ShardTable, Signal, Storage, StorageConfig};

/// 2023-11-14T22:13:20Z
pub(crate) const BASE_NS: u64 = 1_700_000_000_000_000_000;
pub(crate) const HOUR_NS: u64 = 3_600_000_000_000;

/// A distinct, valid trace ID per `n`.
pub(crate) fn trace_id(n: u32) -> Vec<u8> {
    let mut id = vec![0x5a; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[12..].copy_from_slice(&(n.wrapping_mul(2_654_435_761)).to_be_bytes());
    id
}

pub(crate) fn trace_hex(n: u32) -> String {
    const_hex::encode(trace_id(n))
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

/// `spans` spans of trace `n`, starting at `start_ns`, one microsecond apart.
pub(crate) fn trace_spans(n: u32, spans: u32, start_ns: u64) -> Vec<Span> {
    (0..spans)
        .map(|i| {
            let start = start_ns + u64::from(i) * 1_000;
            let mut span_id = vec![0u8; 8];
            span_id[..4].copy_from_slice(&n.to_be_bytes());
            span_id[4..].copy_from_slice(&(i + 1).to_be_bytes());
            Span {
                trace_id: trace_id(n),
                span_id,
                parent_span_id: if i == 0 { vec![] } else { vec![9; 8] },
                name: format!("op-{i}"),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 500,
                attributes: vec![kv("http.route", "/cart"), kv("i", &i.to_string())],
                events: vec![Event { time_unix_nano: start + 10, name: "ev".into(), ..Default::default() }],
                status: Some(Status { code: 1, message: String::new() }),
                ..Default::default()
            }
        })
        .collect()
}

pub(crate) fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", service)], ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "test".into(), version: "1".into(), ..Default::default() }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub(crate) fn batch_of(spans: Vec<Span>) -> RecordBatch {
    let converted = spans_to_arrow(&request("cart", spans), &ConvertLimits::default(), 1).expect("converts");
    assert_eq!(converted.rejected, 0);
    converted.batch
}

/// A config that never flushes or compacts on its own during a test.
pub(crate) fn quiet_config(dir: &Path) -> StorageConfig {
    StorageConfig {
        data_dir: dir.to_path_buf(),
        flush_max_bytes: 1 << 40,
        max_buffer_bytes: 1 << 41,
        flush_interval: Duration::from_secs(24 * 3600),
        compaction: crate::CompactionConfig { enabled: false, ..crate::CompactionConfig::default() },
        ..StorageConfig::default()
    }
}

pub(crate) async fn open(config: StorageConfig) -> Arc<Storage> {
    Storage::open(config, &mut Registry::default(), CancellationToken::new()).await.expect("storage opens")
}

pub(crate) async fn write(storage: &Storage, batch: RecordBatch) {
    storage.write_spans(0, batch).await.expect("write accepted");
}

/// Simulates `kill -9`: background tasks and WAL threads stop, nothing is
/// flushed, nothing more reaches the disk.
pub(crate) async fn crash(storage: Arc<Storage>) {
    // Waits for a background flush in progress, which a real crash would
    // cut short at some point; the fail-point tests cover those points.
    storage.stop_background_tasks().await;
    for shard in storage.open_shards_now() {
        shard.stop_tasks().await;
        for signal in shard.all() {
            signal.stop_writer().await.expect("writer stops");
        }
    }
    drop(storage);
}

/// Runs `sql` against shard 0's table registered as `spans`.
pub(crate) async fn query(storage: &Storage, sql: &str) -> Vec<RecordBatch> {
    let ctx = context(storage);
    ctx.sql(sql).await.expect("plans").collect().await.expect("runs")
}

pub(crate) fn context(storage: &Storage) -> SessionContext {
    let ctx = SessionContext::new();
    ctx.register_table("spans", Arc::clone(&storage.span_tables()[0])).expect("registers");
    ctx
}

/// The rows of `sql` in `ctx`, as a table of text.
pub(crate) async fn run(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx.sql(sql).await.expect("plans").collect().await.expect("runs");
    datafusion::arrow::util::pretty::pretty_format_batches(&batches).expect("formats").to_string()
}

/// Distinct Parquet files the physical plan of `sql` will open.
pub(crate) async fn planned_files(storage: &Storage, sql: &str) -> usize {
    planned_files_in(&context(storage), sql).await
}

/// Distinct Parquet files the physical plan of `sql` in `ctx` will open.
pub(crate) async fn planned_files_in(ctx: &SessionContext, sql: &str) -> usize {
    let plan = ctx.sql(sql).await.expect("plans").create_physical_plan().await.expect("physical plan");
    let mut files = std::collections::HashSet::new();
    collect_files(&plan, &mut files);
    files.len()
}

fn collect_files(plan: &Arc<dyn ExecutionPlan>, files: &mut std::collections::HashSet<String>) {
    if let Some(config) =
        plan.downcast_ref::<DataSourceExec>().and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
    {
        for group in &config.file_groups {
            files.extend(group.iter().map(|f| f.object_meta.location.to_string()));
        }
    }
    for child in plan.children() {
        collect_files(child, files);
    }
}

/// Stored spans, in a stable order, for comparing with what was written.
pub(crate) fn records(batches: &[RecordBatch]) -> Vec<SpanRecord> {
    let mut all: Vec<SpanRecord> = batches.iter().flat_map(|b| records_from_batch(b).expect("decodes rows")).collect();
    all.sort_by(|a, b| (&a.span.trace_id, &a.span.span_id).cmp(&(&b.span.trace_id, &b.span.span_id)));
    all
}

pub(crate) async fn all_records(storage: &Storage) -> Vec<SpanRecord> {
    records(&query(storage, "SELECT * FROM spans").await)
}

/// Files under `dir` (recursively) whose name ends with `suffix`.
pub(crate) fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Shard 0's span directory.
pub(crate) fn spans_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("shard-0000/spans")
}

/// Shard 0's metrics directory.
pub(crate) fn metrics_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("shard-0000/metrics")
}

pub(crate) fn span_shard(storage: &Storage) -> Arc<Shard> {
    storage.shard(Signal::Spans, 0).expect("shard 0")
}

pub(crate) fn span_table(storage: &Storage) -> Arc<ShardTable> {
    storage.shard_table(Signal::Spans, 0).expect("shard 0")
}
