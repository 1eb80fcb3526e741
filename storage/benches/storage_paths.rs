//! Storage hot paths on realistic data (the model benches' generator: 512-span
//! OTLP requests, about ten attributes per span, 5–30 spans per trace; IDs
//! made random-looking here; converted with `spans_to_arrow`):
//!
//! - `wal_append`: durable `ShardWriter::write_spans` (Arrow IPC encode, WAL
//!   frame, fdatasync, buffer append), one writer at a time and eight in
//!   flight (group commit). The buffer is flushed every few writes outside
//!   the measured time so memory stays bounded.
//! - `parquet_flush`: `Storage::flush_all` of a buffer holding 64 distinct
//!   512-span batches (sort, ZSTD Parquet, trace-ID index, manifest commit);
//!   filling the buffer is setup and is not timed. It also prints the bytes
//!   on disk per span once.
//!
//! Each also runs with `[storage.encryption]` on (`_encrypted`): sealed WAL
//! records and Parquet modular encryption.
//!
//! Data goes to a temporary directory (set `TMPDIR` to bench another disk).
//! Run with `cargo bench -p skein-storage --bench storage_paths`.

// The span generator is shared with skein-model's benches, so both measure the same data.
#[path = "../../model/benches/common.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::RecordBatch;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prometheus_client::registry::Registry;
use skein_model::{ConvertLimits, ShardWriter, spans_to_arrow};
use skein_storage::{EncryptionConfig, Storage, StorageConfig, new_secret};
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// Spans per write: a typical SDK export batch.
const SPANS: usize = 512;
/// Concurrent writers in the group-commit case.
const WRITERS: usize = 8;
/// The WAL benches flush after this many batches (untimed) to bound memory.
const FLUSH_EVERY: u64 = 64;
/// Batches in the buffer that one flush encodes.
const FLUSH_BATCHES: usize = 64;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

/// One shard whose background flush never fires during a bench: flushes
/// happen only when the bench asks for them.
fn open_storage(runtime: &Runtime, encrypted: bool) -> (TempDir, Arc<Storage>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let encryption = encrypted.then(|| {
        let keys_file = dir.path().join("keys.toml");
        let secret = new_secret().expect("secret");
        std::fs::write(&keys_file, format!("[[keys]]\nid = \"bench\"\ntenant = \"*\"\nsecret = \"{secret}\"\n"))
            .expect("keys file");
        EncryptionConfig { keys_file: Some(keys_file), keys_env: None }
    });
    let config = StorageConfig {
        encryption,
        data_dir: dir.path().to_path_buf(),
        shards: 1,
        flush_max_bytes: 1 << 30,
        max_buffer_bytes: 2 << 30,
        flush_interval: Duration::from_secs(3600),
        ..StorageConfig::default()
    };
    let storage = runtime
        .block_on(Storage::open(config, &mut Registry::default(), CancellationToken::new()))
        .expect("storage opens");
    (dir, storage)
}

fn to_batch(request: &ExportTraceServiceRequest) -> RecordBatch {
    let converted = spans_to_arrow(request, &ConvertLimits::default(), 1).expect("converts");
    assert_eq!(converted.batch.num_rows(), SPANS, "every generated span is valid");
    converted.batch
}

/// SplitMix64's finalizer: a bijection, so distinct IDs stay distinct.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Makes an ID look random, as SDK-generated IDs do; the generator's IDs
/// count up, which would flatter Parquet compression.
fn scramble(id: &mut [u8]) {
    for chunk in id.chunks_exact_mut(8) {
        let word = u64::from_be_bytes(chunk.try_into().expect("8-byte chunk"));
        chunk.copy_from_slice(&mix(word).to_be_bytes());
    }
}

/// The generated request of `spans` spans with random-looking trace and span
/// IDs; parent and link references are mapped the same way, so traces stay intact.
fn request(spans: usize) -> ExportTraceServiceRequest {
    let mut request = common::request(spans);
    for span in request.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans).flat_map(|s| &mut s.spans) {
        scramble(&mut span.trace_id);
        scramble(&mut span.span_id);
        scramble(&mut span.parent_span_id);
        for link in &mut span.links {
            scramble(&mut link.trace_id);
            scramble(&mut link.span_id);
        }
    }
    request
}

/// `count` requests of `SPANS` spans cut from one generated stream, so no
/// two batches repeat data (repeats would flatter Parquet compression).
/// Each request keeps its spans' resource, like an SDK export.
fn distinct_requests(count: usize) -> Vec<ExportTraceServiceRequest> {
    let mut requests = Vec::with_capacity(count);
    let mut current = ExportTraceServiceRequest::default();
    let mut filled = 0;
    for resource_spans in request(count * SPANS).resource_spans {
        for scope_spans in resource_spans.scope_spans {
            let mut spans = scope_spans.spans.into_iter().peekable();
            while spans.peek().is_some() {
                let chunk: Vec<_> = spans.by_ref().take(SPANS - filled).collect();
                filled += chunk.len();
                current.resource_spans.push(ResourceSpans {
                    resource: resource_spans.resource.clone(),
                    scope_spans: vec![ScopeSpans {
                        scope: scope_spans.scope.clone(),
                        spans: chunk,
                        schema_url: scope_spans.schema_url.clone(),
                    }],
                    schema_url: resource_spans.schema_url.clone(),
                });
                if filled == SPANS {
                    requests.push(std::mem::take(&mut current));
                    filled = 0;
                }
            }
        }
    }
    assert_eq!(requests.len(), count, "the generator made exactly count * SPANS spans");
    requests
}

/// `batch` with its span start times moved by `n` ns: the same data, but
/// a distinct write, which storage's retry dedup (a repeat of a recent
/// batch is acknowledged without writing) does not skip. Made outside the
/// measured time.
fn distinct(batch: &RecordBatch, n: u64) -> RecordBatch {
    use datafusion::arrow::array::{DurationNanosecondArray, Scalar};
    let column = batch.schema().index_of("start_time").expect("start_time column");
    let shift = Scalar::new(DurationNanosecondArray::from(vec![n as i64]));
    let moved =
        datafusion::arrow::compute::kernels::numeric::add(batch.column(column), &shift).expect("shifts start times");
    let mut columns = batch.columns().to_vec();
    columns[column] = moved;
    RecordBatch::try_new(batch.schema(), columns).expect("same schema")
}

/// Writes `batches` to shard 0 from concurrent tasks, as concurrent
/// exporters would; returns once all are durable.
async fn write_concurrently(storage: &Arc<Storage>, batches: impl IntoIterator<Item = RecordBatch>) {
    let writes: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let storage = Arc::clone(storage);
            tokio::spawn(async move { storage.write_spans(0, batch).await })
        })
        .collect();
    for write in writes {
        write.await.expect("write task").expect("durable write");
    }
}

/// Total size of the files under `dir` whose name ends in `.{extension}`.
fn bytes_on_disk(dir: &Path, extension: &str) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("list data directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            total += bytes_on_disk(&path, extension);
        } else if path.extension().is_some_and(|e| e == extension) {
            total += path.metadata().expect("file metadata").len();
        }
    }
    total
}

/// Compressed Parquet bytes per top-level column, over every file under `dir`.
fn column_bytes(dir: &Path) -> std::collections::HashMap<String, u64> {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let mut totals = std::collections::HashMap::new();
    for entry in std::fs::read_dir(dir).expect("list data directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            for (name, bytes) in column_bytes(&path) {
                *totals.entry(name).or_default() += bytes;
            }
        } else if path.extension().is_some_and(|e| e == "parquet") {
            let reader = SerializedFileReader::new(std::fs::File::open(&path).expect("open parquet")).expect("footer");
            for row_group in reader.metadata().row_groups() {
                for column in row_group.columns() {
                    let root = column.column_path().parts()[0].clone();
                    *totals.entry(root).or_default() += column.compressed_size() as u64;
                }
            }
        }
    }
    totals
}

/// The time `iters` durable writes of distinct copies of `batch` take, one
/// at a time; the buffer is flushed every `FLUSH_EVERY` writes, untimed.
fn time_writes(
    runtime: &Runtime,
    storage: &Arc<Storage>,
    batch: &RecordBatch,
    iters: u64,
    next: &dyn Fn() -> u64,
) -> Duration {
    let mut measured = Duration::ZERO;
    for i in 1..=iters {
        let batch = distinct(batch, next());
        let started = Instant::now();
        runtime.block_on(storage.write_spans(0, batch)).expect("durable write");
        measured += started.elapsed();
        if i % FLUSH_EVERY == 0 {
            runtime.block_on(storage.flush_all()).expect("flush");
        }
    }
    measured
}

fn wal_append(c: &mut Criterion) {
    let runtime = runtime();
    let (_dir, storage) = open_storage(&runtime, false);
    let (_encrypted_dir, encrypted) = open_storage(&runtime, true);
    let batch = to_batch(&request(SPANS));
    let flush_now = || runtime.block_on(storage.flush_all()).expect("flush");
    let counter = std::cell::Cell::new(0u64);
    let next = || {
        counter.set(counter.get() + 1);
        counter.get()
    };

    let mut group = c.benchmark_group("wal_append");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("512_spans_encrypted", |b| {
        b.iter_custom(|iters| time_writes(&runtime, &encrypted, &batch, iters, &next))
    });
    runtime.block_on(encrypted.close()).expect("storage closes");
    group.bench_function("512_spans", |b| b.iter_custom(|iters| time_writes(&runtime, &storage, &batch, iters, &next)));

    // About 8 ms an iteration: fewer samples keep the run near its target time.
    group.sample_size(20);
    group.throughput(Throughput::Elements((SPANS * WRITERS) as u64));
    group.bench_function("512_spans_x8_concurrent", |b| {
        b.iter_custom(|iters| {
            let mut measured = Duration::ZERO;
            for i in 1..=iters {
                let batches: Vec<RecordBatch> = (0..WRITERS).map(|_| distinct(&batch, next())).collect();
                let started = Instant::now();
                runtime.block_on(write_concurrently(&storage, batches));
                measured += started.elapsed();
                if i % (FLUSH_EVERY / WRITERS as u64) == 0 {
                    flush_now();
                }
            }
            measured
        })
    });
    group.finish();
    runtime.block_on(storage.close()).expect("storage closes");
}

fn parquet_flush(c: &mut Criterion) {
    let runtime = runtime();
    let (dir, storage) = open_storage(&runtime, false);
    let batches: Vec<RecordBatch> = distinct_requests(FLUSH_BATCHES).iter().map(to_batch).collect();
    let spans = (FLUSH_BATCHES * SPANS) as u64;
    let counter = std::cell::Cell::new(0u64);
    let fill_distinct = |storage: &Arc<Storage>| {
        counter.set(counter.get() + 1);
        let round = counter.get();
        runtime.block_on(write_concurrently(storage, batches.iter().map(|b| distinct(b, round))));
    };
    let fill = || fill_distinct(&storage);

    // One flush of a fresh data directory for the size figures.
    fill();
    let wal = bytes_on_disk(dir.path(), "wal");
    runtime.block_on(storage.flush_all()).expect("flush");
    let parquet = bytes_on_disk(dir.path(), "parquet");
    let tidx = bytes_on_disk(dir.path(), "tidx");
    let arrow: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    let per_span = |bytes: u64| bytes as f64 / spans as f64;
    eprintln!(
        "bytes per span ({spans} spans): parquet {:.1}, trace-id index {:.1}, wal {:.1}, arrow in memory {:.1}",
        per_span(parquet),
        per_span(tidx),
        per_span(wal),
        per_span(arrow as u64),
    );
    let mut columns: Vec<(String, u64)> = column_bytes(dir.path()).into_iter().collect();
    columns.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    let shares: Vec<String> = columns.iter().map(|(name, bytes)| format!("{name} {:.1}", per_span(*bytes))).collect();
    eprintln!("parquet bytes per span by column: {}", shares.join(", "));

    let mut group = c.benchmark_group("parquet_flush");
    // Each iteration takes a good fraction of a second with its setup.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(spans));
    group.bench_function("64x512_spans", |b| {
        b.iter_batched(fill, |()| runtime.block_on(storage.flush_all()).expect("flush"), BatchSize::PerIteration)
    });
    runtime.block_on(storage.close()).expect("storage closes");

    let (_encrypted_dir, encrypted) = open_storage(&runtime, true);
    let fill = || fill_distinct(&encrypted);
    group.bench_function("64x512_spans_encrypted", |b| {
        b.iter_batched(fill, |()| runtime.block_on(encrypted.flush_all()).expect("flush"), BatchSize::PerIteration)
    });
    group.finish();
    runtime.block_on(encrypted.close()).expect("storage closes");
}

criterion_group!(benches, wal_append, parquet_flush);
criterion_main!(benches);
