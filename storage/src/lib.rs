//! Skein's storage role: makes every acknowledged batch of spans or metric
//! data points durable, keeps it queryable, and turns it into
//! time-partitioned Parquet.
//!
//! Each shard holds every signal ([`Signal::Spans`], [`Signal::Metrics`]) in
//! its own directory, and each signal of a shard runs the same machinery,
//! parameterized by the signal's description (schema, partition time
//! column, sort and bloom-filter columns, trace index or not). Data flows
//! through it like this. [`ShardWriter::write_spans`] (or `write_metrics`)
//! encodes the batch (Arrow IPC) and queues it for that signal's WAL writer
//! thread of the shard (bounded queue: full means overloaded). The thread
//! group-commits every pending batch with one fdatasync, appends the batches
//! to the in-memory buffer (visible to queries from then on) and only then
//! acknowledges them. A flush task per signal and shard freezes the buffer
//! when it reaches `flush_max_bytes` or `flush_interval` of age (the freeze
//! goes through the WAL writer, which starts a new segment), writes the
//! frozen rows as Parquet files partitioned by the hour of the partition
//! column and sorted by the signal's sort columns, commits them in the
//! signal's manifest together with the WAL checkpoint, and deletes the WAL
//! segments the checkpoint covers. Queries go through
//! [`Storage::span_tables`] and [`Storage::metric_tables`]: one DataFusion
//! table per shard and signal that unions the Parquet files (pruned by time
//! range and, for spans, by a per-file trace-ID index, then by Parquet
//! statistics, bloom filters and page indexes) with the buffered batches.
//! If `retention` is set, hour partitions older than it are dropped.
//!
//! With `[storage.object_store]` set, flushed data also goes to an object
//! store (S3 or a directory, through `object_store`), which becomes its
//! system of record: a flush uploads its files and commits by creating the
//! next manifest version there (one writer per generation), and opening a
//! shard first reconciles the data directory with the bucket (module
//! `bucket`; layout in ARCHITECTURE.md).
//!
//! A storage node of a cluster opens only the shards it owns
//! ([`Storage::open_shards`]) and serves them to collectors and query nodes
//! over Arrow Flight ([`StorageFlight`] on the [`InternalServer`]): `DoPut`
//! is a `write_spans`/`write_metrics` call, `DoGet` a scan of one shard's
//! table with the sender's projection, filters and limit.
//!
//! # On-disk layout
//!
//! ```text
//! <data_dir>/
//!   shard_count                       the cluster's shard count, fixed at first open
//!   shard-0000/                       one directory per shard (shard-NNNN)
//!     spans/                          one directory per signal, each with the
//!     metrics/                        same layout:
//!       manifest.json                 the committed state, replaced atomically
//!                                     (write manifest.json.tmp, fsync, rename,
//!                                     fsync dir): {"version": 2, "generation",
//!                                     "wal_checkpoint": <seq>, "files": [{"path",
//!                                     "size_bytes", "rows", "hour", "ranges":
//!                                     {"<column>": {"min_ns", "max_ns"}}}]}
//!                                     (ranges: spans start_time, end_time;
//!                                     metrics time, start_time)
//!       wal/
//!         00000000000000000007.wal    WAL segments <seq:020>.wal; a segment holds
//!                                     records `len u32 LE | crc32 u32 LE | payload`
//!                                     (CRC over len and payload; payload = Arrow
//!                                     IPC stream of one batch). Segments with
//!                                     seq <= wal_checkpoint are already in Parquet.
//!       date=2024-05-01/hour=13/      hour partition (UTC) of the partition
//!                                     column: spans start_time, metrics time
//!         <checkpoint:020>-<hex>-000.parquet
//!                                     ZSTD, row groups of row_group_rows,
//!                                     page-level stats and page index; spans
//!                                     sorted by (trace_id, start_time) with
//!                                     bloom filters on trace_id, service_name
//!                                     and name; metrics sorted by (metric_name,
//!                                     series_id, time) with bloom filters on
//!                                     metric_name and series_id
//!         <same name>.tidx            spans only: trace-ID index sidecar, sorted
//!                                     distinct 64-bit keys (high ^ low half of
//!                                     the ID)
//! ```
//!
//! Files under `date=…` directories that `manifest.json` does not list, and
//! `*.tmp` files, are leftovers of a crashed flush and are deleted on open.
//! Only WAL segments after `wal_checkpoint` are replayed; a torn record at
//! the end of a segment is truncated away with a warning. A shard directory
//! with `manifest.json` or `wal/` directly inside (the layout before
//! metrics) is refused with [`StorageError::UnsupportedLayout`].

mod bucket;
mod buffer;
mod config;
mod error;
mod flight;
mod fsutil;
mod layout;
mod manifest;
mod metrics;
mod parquet_encode;
mod parquet_files;
mod provider;
mod pruning;
mod recovery;
mod shard;
mod signal;
mod tidx;
mod wal;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::TableProvider;
use prometheus_client::registry::Registry;
use skein_model::{ShardWriter, WriteError};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

pub use bucket::ObjectStoreConfig;
pub use config::{MAX_SHARDS, StorageConfig};
pub use error::StorageError;
pub use flight::{InternalServer, StorageFlight};
pub use provider::ShardTable;
pub use signal::Signal;

use crate::bucket::Bucket;
use crate::error::{IoContext, closed_write_error};
use crate::metrics::Metrics;
use crate::shard::{Shard, unix_nanos};

/// How often retention looks for expired hour partitions.
const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// The local shards of one signal, and their tables.
struct SignalShards {
    /// In ascending shard ID order.
    shards: Vec<Arc<Shard>>,
    tables: Vec<Arc<ShardTable>>,
    /// Shard ID → index into `shards`, `None` for shards another node owns.
    index_of_id: Vec<Option<usize>>,
}

impl SignalShards {
    async fn open(
        signal: Signal,
        shard_ids: &[usize],
        config: &StorageConfig,
        bucket: Option<&Bucket>,
        metrics: &Metrics,
    ) -> Result<Self, StorageError> {
        let mut shards = Vec::with_capacity(shard_ids.len());
        let mut index_of_id = vec![None; config.shards];
        for &id in shard_ids {
            index_of_id[id] = Some(shards.len());
            shards.push(Shard::open(id, signal, config, bucket, metrics.signal(signal)).await?);
        }
        let tables = shards.iter().map(|s| Arc::new(ShardTable::new(Arc::clone(&s.buffer)))).collect();
        Ok(Self { shards, tables, index_of_id })
    }

    fn get(&self, shard: usize) -> Option<usize> {
        self.index_of_id.get(shard).copied().flatten()
    }
}

/// All local shards of a storage node, every signal.
pub struct Storage {
    /// Shards of the whole cluster; this node holds some or all of them.
    shard_count: usize,
    /// Where flushed data is kept besides the data directory, if anywhere.
    bucket: Option<Bucket>,
    spans: SignalShards,
    metrics: SignalShards,
    retention: Option<Duration>,
    /// Set first by `close`: writes are refused from then on.
    closed: AtomicBool,
    /// Held by `close`; true once a close completed.
    close_done: tokio::sync::Mutex<bool>,
    /// Stops the background flush and retention tasks.
    tasks: CancellationToken,
    task_handles: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("shards", &self.spans.shards.len()).finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens (creating) every one of `config.shards` shards under
    /// `data_dir` (all-in-one); see [`Storage::open_shards`].
    pub async fn open(
        config: StorageConfig,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Result<Arc<Storage>, StorageError> {
        let all: Vec<usize> = (0..config.shards).collect();
        Self::open_shards(config, &all, registry, shutdown).await
    }

    /// Opens (creating) the shards `shard_ids` of a cluster of
    /// `config.shards` shards under `data_dir`, replays their WALs, and
    /// starts the background flush (and retention) tasks, which stop when
    /// `shutdown` is cancelled. Data is flushed on [`Storage::close`].
    pub async fn open_shards(
        mut config: StorageConfig,
        shard_ids: &[usize],
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Result<Arc<Storage>, StorageError> {
        config.validate().map_err(StorageError::Config)?;
        let mut shard_ids = shard_ids.to_vec();
        shard_ids.sort_unstable();
        shard_ids.dedup();
        if let Some(&bad) = shard_ids.iter().find(|&&id| id >= config.shards) {
            return Err(StorageError::NoSuchShard(bad));
        }
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).ctx(|| format!("creating {}", data_dir.display()))?;
        // Absolute, because DataFusion's object store addresses files by absolute path.
        config.data_dir = std::fs::canonicalize(&data_dir).ctx(|| format!("resolving {}", data_dir.display()))?;
        layout::check_data_dir(&config.data_dir, config.shards)?;

        let bucket = match &config.object_store {
            Some(object_store) => {
                let bucket = Bucket::connect(object_store).await?;
                bucket.pin_shard_count(config.shards).await?;
                info!(object_store = %bucket.name, "flushed data goes to the object store");
                Some(bucket)
            }
            None => None,
        };
        let metrics = Metrics::register(registry);
        let storage = Arc::new(Storage {
            spans: SignalShards::open(Signal::Spans, &shard_ids, &config, bucket.as_ref(), &metrics).await?,
            metrics: SignalShards::open(Signal::Metrics, &shard_ids, &config, bucket.as_ref(), &metrics).await?,
            bucket: bucket.clone(),
            shard_count: config.shards,
            retention: config.retention,
            closed: AtomicBool::new(false),
            close_done: tokio::sync::Mutex::new(false),
            tasks: shutdown.child_token(),
            task_handles: parking_lot::Mutex::new(Vec::new()),
        });
        let mut handles = Vec::with_capacity(2 * shard_ids.len() + 1);
        for shard in storage.all_shards() {
            handles.push(tokio::spawn(Arc::clone(shard).run_flush_loop(storage.tasks.clone(), config.flush_interval)));
        }
        if let Some(retention) = config.retention {
            let shards: Vec<Arc<Shard>> = storage.all_shards().cloned().collect();
            // Expired data goes at once (the node may have been down a while);
            // the loop then checks once per interval.
            enforce_retention(&shards, retention, SystemTime::now()).await?;
            handles.push(tokio::spawn(retention_loop(shards, retention, storage.tasks.clone())));
        }
        *storage.task_handles.lock() = handles;
        info!(data_dir = %config.data_dir.display(), shard_count = config.shards, local_shards = shard_ids.len(), "storage open");
        Ok(storage)
    }

    /// Whether the object store answers `within` (always, without one):
    /// what a storage node's `/readyz` reports.
    pub async fn check_object_store(&self, within: Duration) -> Result<(), StorageError> {
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        match tokio::time::timeout(within, bucket.probe()).await {
            Ok(answer) => answer,
            Err(_) => Err(StorageError::ObjectStoreTimeout { store: bucket.name.to_string(), after: within }),
        }
    }

    fn signal(&self, signal: Signal) -> &SignalShards {
        match signal {
            Signal::Spans => &self.spans,
            Signal::Metrics => &self.metrics,
        }
    }

    /// Every signal's shards: spans first, then metrics.
    fn all_shards(&self) -> impl Iterator<Item = &Arc<Shard>> {
        self.spans.shards.iter().chain(&self.metrics.shards)
    }

    /// One DataFusion table per shard holding `signal`, schema
    /// [`Signal::schema`]; each sees flushed and buffered data.
    pub fn tables(&self, signal: Signal) -> Vec<Arc<dyn TableProvider>> {
        self.signal(signal).tables.iter().map(|t| Arc::clone(t) as Arc<dyn TableProvider>).collect()
    }

    /// One table of spans per shard, schema [`skein_model::span_schema`].
    pub fn span_tables(&self) -> Vec<Arc<dyn TableProvider>> {
        self.tables(Signal::Spans)
    }

    /// One table of metric data points per shard, schema
    /// `skein_model::metrics::metric_schema`.
    pub fn metric_tables(&self) -> Vec<Arc<dyn TableProvider>> {
        self.tables(Signal::Metrics)
    }

    /// The `signal` table of one shard, with its pruning introspection;
    /// `None` for a shard this node does not hold.
    pub fn shard_table(&self, signal: Signal, shard: usize) -> Option<Arc<ShardTable>> {
        let signal = self.signal(signal);
        signal.get(shard).map(|i| Arc::clone(&signal.tables[i]))
    }

    /// Whether this node holds `shard`.
    pub fn holds_shard(&self, shard: usize) -> bool {
        self.spans.get(shard).is_some()
    }

    /// The IDs of the shards this node holds, ascending.
    pub fn local_shards(&self) -> Vec<usize> {
        self.spans.shards.iter().map(|s| s.id).collect()
    }

    /// Buffered (not yet flushed to Parquet) bytes of one shard, all signals.
    pub fn unflushed_bytes(&self, shard: usize) -> Option<u64> {
        let spans = self.shard(Signal::Spans, shard)?;
        let metrics = self.shard(Signal::Metrics, shard)?;
        Some(spans.buffer.buffered_bytes() + metrics.buffer.buffered_bytes())
    }

    /// Stops accepting writes, flushes every buffer to Parquet and closes
    /// the WALs. Idempotent; after a failed flush it may be called again.
    pub async fn close(&self) -> Result<(), StorageError> {
        self.closed.store(true, Ordering::SeqCst);
        let mut done = self.close_done.lock().await;
        if *done {
            return Ok(());
        }
        self.stop_background_tasks().await;
        for shard in self.all_shards() {
            // Writes queued before this point are committed and frozen.
            shard.stop_writer().await?;
        }
        self.flush_all().await?;
        *done = true;
        info!("storage closed");
        Ok(())
    }

    /// Stops the flush and retention tasks and waits for them; a flush in
    /// progress completes first.
    async fn stop_background_tasks(&self) {
        self.tasks.cancel();
        let handles = std::mem::take(&mut *self.task_handles.lock());
        for handle in handles {
            if let Err(e) = handle.await {
                error!(error = %e, "storage background task failed");
            }
        }
    }

    /// Flushes the buffers of every shard and signal to Parquet now.
    pub async fn flush_all(&self) -> Result<(), StorageError> {
        let mut first_error = None;
        for shard in self.all_shards() {
            if let Err(e) = shard.flush().await {
                error!(shard = shard.id, signal = %shard.spec.signal, error = %e, "flush failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Drops hour partitions (of every signal) older than the configured
    /// retention now; returns how many files were dropped (0 without retention).
    pub async fn enforce_retention(&self) -> Result<usize, StorageError> {
        match self.retention {
            Some(retention) => {
                let shards: Vec<Arc<Shard>> = self.all_shards().cloned().collect();
                enforce_retention(&shards, retention, SystemTime::now()).await
            }
            None => Ok(0),
        }
    }

    /// Waits until `signal` of shard `shard` has completed `count` flushes
    /// in total (background or explicit). For tests and tools.
    pub async fn wait_for_flushes(&self, signal: Signal, shard: usize, count: u64) -> Result<(), StorageError> {
        let shard = self.shard(signal, shard).ok_or(StorageError::NoSuchShard(shard))?;
        let mut flushes = shard.buffer.subscribe_flushes();
        flushes.wait_for(|n| *n >= count).await.map_err(|_| StorageError::Closed)?;
        Ok(())
    }

    fn shard(&self, signal: Signal, shard: usize) -> Option<&Arc<Shard>> {
        let signal = self.signal(signal);
        signal.get(shard).map(|i| &signal.shards[i])
    }

    async fn write(&self, signal: Signal, shard: usize, batch: RecordBatch) -> Result<(), WriteError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(closed_write_error());
        }
        self.shard(signal, shard).ok_or(WriteError::NoSuchShard(shard))?.write(batch).await
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        // Background tasks hold the shards; let them (and the WAL threads) go.
        self.tasks.cancel();
    }
}

#[async_trait]
impl ShardWriter for Storage {
    fn shard_count(&self) -> usize {
        self.shard_count
    }

    async fn write_spans(&self, shard: usize, batch: RecordBatch) -> Result<(), WriteError> {
        self.write(Signal::Spans, shard, batch).await
    }

    async fn write_metrics(&self, shard: usize, batch: RecordBatch) -> Result<(), WriteError> {
        self.write(Signal::Metrics, shard, batch).await
    }
}

async fn enforce_retention(shards: &[Arc<Shard>], retention: Duration, now: SystemTime) -> Result<usize, StorageError> {
    let cutoff = unix_nanos(now).saturating_sub(i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX));
    let mut dropped = 0;
    for shard in shards {
        dropped += shard.enforce_retention(cutoff).await?;
    }
    Ok(dropped)
}

async fn retention_loop(shards: Vec<Arc<Shard>>, retention: Duration, stop: CancellationToken) {
    let first = tokio::time::Instant::now() + RETENTION_CHECK_INTERVAL;
    let mut ticks = tokio::time::interval_at(first, RETENTION_CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(e) = enforce_retention(&shards, retention, SystemTime::now()).await {
            error!(error = %e, "retention failed, will retry");
        }
    }
}
