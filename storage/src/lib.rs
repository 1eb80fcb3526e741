//! Skein's storage role: makes every acknowledged span batch durable, keeps
//! it queryable, and turns it into time-partitioned Parquet.
//!
//! Data flows through a shard like this. [`ShardWriter::write_spans`]
//! encodes the batch (Arrow IPC) and queues it for the shard's WAL writer
//! thread (bounded queue: full means overloaded). The thread group-commits
//! every pending batch with one fdatasync, appends the batches to the
//! shard's in-memory buffer (visible to queries from then on) and only then
//! acknowledges them. A flush task per shard freezes the buffer when it
//! reaches `flush_max_bytes` or `flush_interval` of age (the freeze goes
//! through the WAL writer, which starts a new segment), writes the frozen
//! rows as Parquet files partitioned by span start hour and sorted by
//! `(trace_id, start_time)`, commits them in the shard's manifest together
//! with the WAL checkpoint, and deletes the WAL segments the checkpoint
//! covers. Queries go through [`Storage::span_tables`]: one DataFusion table
//! per shard that unions the Parquet files (pruned by time range and by a
//! per-file trace-ID index, then by Parquet statistics, bloom filters and
//! page indexes) with the buffered batches. If `retention` is set, hour
//! partitions older than it are dropped.
//!
//! # On-disk layout
//!
//! ```text
//! <data_dir>/
//!   shard-0000/                       one directory per shard (shard-NNNN)
//!     manifest.json                   the committed state, replaced atomically
//!                                     (write manifest.json.tmp, fsync, rename,
//!                                     fsync dir): {"version": 1,
//!                                     "wal_checkpoint": <seq>, "files": [{"path",
//!                                     "size_bytes", "rows", "hour", "min_start_ns",
//!                                     "max_start_ns", "min_end_ns", "max_end_ns"}]}
//!     wal/
//!       00000000000000000007.wal      WAL segments <seq:020>.wal; a segment holds
//!                                     records `len u32 LE | crc32 u32 LE | payload`
//!                                     (CRC over len and payload; payload = Arrow
//!                                     IPC stream of one batch). Segments with
//!                                     seq <= wal_checkpoint are already in Parquet.
//!     spans/
//!       date=2024-05-01/hour=13/      hour partition of span start_time (UTC)
//!         <checkpoint:020>-<hex>-000.parquet
//!                                     ZSTD, row groups of row_group_rows, sorted
//!                                     by (trace_id, start_time), page-level stats
//!                                     and page index, bloom filters on trace_id,
//!                                     service_name and name
//!         <same name>.tidx            trace-ID index sidecar: sorted distinct
//!                                     64-bit keys (high ^ low half of the ID)
//! ```
//!
//! Files under `spans/` that `manifest.json` does not list, and `*.tmp`
//! files, are leftovers of a crashed flush and are deleted on open. Only
//! WAL segments after `wal_checkpoint` are replayed; a torn record at the
//! end of a segment is truncated away with a warning.

mod buffer;
mod config;
mod error;
mod fsutil;
mod manifest;
mod metrics;
mod parquet_files;
mod provider;
mod pruning;
mod shard;
mod tidx;
mod wal;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
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

pub use config::{MAX_SHARDS, StorageConfig};
pub use error::StorageError;
pub use provider::ShardTable;

use crate::error::{IoContext, closed_write_error};
use crate::metrics::Metrics;
use crate::shard::{Shard, parse_shard_dir_name, unix_nanos};

/// How often retention looks for expired hour partitions.
const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// All local shards of a storage node.
pub struct Storage {
    shards: Vec<Arc<Shard>>,
    tables: Vec<Arc<ShardTable>>,
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
        f.debug_struct("Storage").field("shards", &self.shards.len()).finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens (creating) every shard under `data_dir`, replays WALs, and
    /// starts the background flush (and retention) tasks, which stop when
    /// `shutdown` is cancelled. Data is flushed on [`Storage::close`].
    pub async fn open(
        mut config: StorageConfig,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Result<Arc<Storage>, StorageError> {
        config.validate().map_err(StorageError::Config)?;
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).ctx(|| format!("creating {}", data_dir.display()))?;
        // Absolute, because DataFusion's object store addresses files by absolute path.
        config.data_dir = std::fs::canonicalize(&data_dir).ctx(|| format!("resolving {}", data_dir.display()))?;
        check_shard_count(&config.data_dir, config.shards)?;

        let metrics = Metrics::register(registry);
        let mut shards = Vec::with_capacity(config.shards);
        for id in 0..config.shards {
            shards.push(Shard::open(id, &config, &metrics).await?);
        }
        let tables = shards.iter().map(|s| Arc::new(ShardTable::new(Arc::clone(&s.buffer)))).collect();
        let storage = Arc::new(Storage {
            shards,
            tables,
            retention: config.retention,
            closed: AtomicBool::new(false),
            close_done: tokio::sync::Mutex::new(false),
            tasks: shutdown.child_token(),
            task_handles: parking_lot::Mutex::new(Vec::new()),
        });
        let mut handles = Vec::with_capacity(storage.shards.len() + 1);
        for shard in &storage.shards {
            handles.push(tokio::spawn(Arc::clone(shard).run_flush_loop(storage.tasks.clone(), config.flush_interval)));
        }
        if let Some(retention) = config.retention {
            // Expired data goes at once (the node may have been down a while);
            // the loop then checks once per interval.
            enforce_retention(&storage.shards, retention, SystemTime::now()).await?;
            handles.push(tokio::spawn(retention_loop(storage.shards.clone(), retention, storage.tasks.clone())));
        }
        *storage.task_handles.lock() = handles;
        info!(data_dir = %config.data_dir.display(), shards = config.shards, "storage open");
        Ok(storage)
    }

    /// One DataFusion table per shard, schema [`skein_model::span_schema`];
    /// each sees flushed and buffered data.
    pub fn span_tables(&self) -> Vec<Arc<dyn TableProvider>> {
        self.tables.iter().map(|t| Arc::clone(t) as Arc<dyn TableProvider>).collect()
    }

    /// The table of one shard, with its pruning introspection.
    pub fn shard_table(&self, shard: usize) -> Option<Arc<ShardTable>> {
        self.tables.get(shard).cloned()
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
        for shard in &self.shards {
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

    /// Flushes every shard's buffer to Parquet now.
    pub async fn flush_all(&self) -> Result<(), StorageError> {
        let mut first_error = None;
        for shard in &self.shards {
            if let Err(e) = shard.flush().await {
                error!(shard = shard.id, error = %e, "flush failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Drops hour partitions older than the configured retention now;
    /// returns how many files were dropped (0 without retention).
    pub async fn enforce_retention(&self) -> Result<usize, StorageError> {
        match self.retention {
            Some(retention) => enforce_retention(&self.shards, retention, SystemTime::now()).await,
            None => Ok(0),
        }
    }

    /// Waits until shard `shard` has completed `count` flushes in total
    /// (background or explicit). For tests and tools.
    pub async fn wait_for_flushes(&self, shard: usize, count: u64) -> Result<(), StorageError> {
        let shard = self.shards.get(shard).ok_or(StorageError::NoSuchShard(shard))?;
        let mut flushes = shard.buffer.subscribe_flushes();
        flushes.wait_for(|n| *n >= count).await.map_err(|_| StorageError::Closed)?;
        Ok(())
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
        self.shards.len()
    }

    async fn write_spans(&self, shard: usize, batch: RecordBatch) -> Result<(), WriteError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(closed_write_error());
        }
        let shard = self.shards.get(shard).ok_or(WriteError::NoSuchShard(shard))?;
        shard.write(batch).await
    }

    async fn write_metrics(&self, _shard: usize, _batch: RecordBatch) -> Result<(), WriteError> {
        // Replaced by the metric tables (issue 4, in progress).
        Err(WriteError::Internal("metric storage is not built yet".into()))
    }
}

/// Refuses to open with fewer shards than the data directory holds: the
/// missing shards' data would silently disappear from queries.
fn check_shard_count(data_dir: &Path, shards: usize) -> Result<(), StorageError> {
    let mut highest = None;
    for entry in std::fs::read_dir(data_dir).ctx(|| format!("listing {}", data_dir.display()))? {
        let entry = entry.ctx(|| format!("listing {}", data_dir.display()))?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_shard_dir_name) {
            highest = highest.max(Some(id));
        }
    }
    match highest {
        Some(id) if id >= shards => Err(StorageError::Config(format!(
            "{} holds data of {} shards but storage.shards is {shards}; the shard count can grow but not shrink",
            data_dir.display(),
            id + 1
        ))),
        _ => Ok(()),
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
