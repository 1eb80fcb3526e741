//! Skein's storage role: makes every acknowledged batch of spans, metric
//! data points or log records durable, keeps it queryable, and turns it into
//! time-partitioned Parquet.
//!
//! Each shard holds every signal ([`Signal::Spans`], [`Signal::Metrics`],
//! [`Signal::Logs`]) in
//! its own directory, and each signal of a shard runs the same machinery,
//! parameterized by the signal's description (schema, partition time
//! column, sort and bloom-filter columns, trace index or not). Data flows
//! through it like this. [`ShardWriter::write`] encodes the batch (Arrow IPC) and queues it for that signal's WAL writer
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
//! [`Storage::tables`] (spans, metrics, logs): one DataFusion
//! table per shard and signal that unions the Parquet files (pruned by time
//! range and, for spans and logs, by a per-file trace-ID index, then by Parquet
//! statistics, bloom filters and page indexes) with the buffered batches;
//! each span and log file's reader turns attribute lookups into reads of the file's
//! attribute columns (module `attribute_columns`).
//! If `retention` is set, hour partitions older than it are dropped. In the
//! background, compaction (module `compaction`) merges each hour's small
//! files into few large ones sorted for lookups, committed through the same
//! manifest. [`Storage::span_metrics_tables`] serves RED rows,
//! [`Storage::trace_parts_tables`] per-trace parts of trace summaries and
//! [`Storage::span_links_tables`] span links by target, all derived from
//! each span file (`.red`, `.tparts` and `.links` sidecars written after
//! each flush and merge) and from the buffered spans (module `derived`).
//!
//! Every tenant has a `Storage` of its own ([`TenantStorages`]: its own
//! shard directories, WALs, manifests and object-store prefix), so tenants
//! are kept apart below SQL; on a storage node each follows the node's
//! shard ownership ([`keep_tenants_owned_shards`]) and the Flight service
//! picks it by the tenant named in each `DoPut` and `DoGet`. Before the
//! WAL, a tenant's `max_spans_per_trace` leaves out spans of traces past it
//! (module `trace_limit`; the write's receipt counts them). With
//! `[storage.encryption]` each tenant's WAL records are sealed and its
//! Parquet files encrypted with its keys (module `encryption`).
//!
//! With `[storage.object_store]` set, flushed data also goes to an object
//! store (S3 or a directory, through `object_store`), which becomes its
//! system of record: a flush uploads its files and commits by creating the
//! next manifest version there (one writer per generation), and opening a
//! shard first reconciles the data directory with the bucket (module
//! `bucket`; layout in ARCHITECTURE.md).
//!
//! A storage node of a cluster opens only the shards it owns
//! ([`Storage::open_shards`]). With [`WalPlacement::ObjectStore`] each
//! group commit is an object in the bucket instead of a local segment, and
//! the set of shards changes at run time: [`keep_owned_shards`] takes over
//! the shards of failed peers ([`Storage::acquire`], which fences the
//! previous owner through conditional creates) and lets them go when their
//! owner is back ([`Storage::release`]). It serves its shards to collectors and query nodes
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
//!     logs/
//!       manifest.json                 the committed state, replaced atomically
//!                                     (write manifest.json.tmp, fsync, rename,
//!                                     fsync dir): {"version": 2, "generation",
//!                                     "wal_checkpoint": <seq>, "files": [{"path",
//!                                     "size_bytes", "rows", "hour", "ranges":
//!                                     {"<column>": {"min_ns", "max_ns"}}}]}
//!                                     (ranges: spans start_time, end_time;
//!                                     metrics time, start_time; logs
//!                                     timestamp)
//!       wal/
//!         00000000000000000007.wal    WAL segments <seq:020>.wal; a segment holds
//!                                     records `len u32 LE | crc32 u32 LE | payload`
//!                                     (CRC over len and payload; payload = Arrow
//!                                     IPC stream of one batch). Segments with
//!                                     seq <= wal_checkpoint are already in Parquet.
//!       date=2024-05-01/hour=13/      hour partition (UTC) of the partition
//!                                     column: spans start_time, metrics
//!                                     time, logs timestamp
//!         <checkpoint:020>-<hex>-000.parquet
//!                                     ZSTD, row groups of row_group_rows,
//!                                     page-level stats and page index, rows
//!                                     in arrival order (compacted: spans by
//!                                     service, trace, start; metrics by
//!                                     metric_name, series_id, time; logs by
//!                                     service_name, timestamp); bloom filters
//!                                     on trace_id, service_name and name
//!                                     (spans), metric_name and series_id
//!                                     (metrics), trace_id and service_name
//!                                     (logs); span and log files end with
//!                                     their attribute columns
//!                                     (`<map>.<key>`, module
//!                                     `attribute_columns`)
//!         <same name>.tidx            spans and logs: trace-ID index sidecar, sorted
//!                                     distinct 64-bit keys (high ^ low half of
//!                                     the ID)
//!         <same name>.red             spans only: span metrics derived from
//!                                     the file (see `span_metrics`)
//!         <same name>.tparts          spans only: one row per trace in the
//!                                     file, by latest span start (see
//!                                     `trace_parts`)
//!         <same name>.links           spans only: one row per span link,
//!                                     sorted by the linked trace (see
//!                                     `span_links`)
//! ```
//!
//! Files under `date=…` directories that `manifest.json` does not list, and
//! `*.tmp` files, are leftovers of a crashed flush and are deleted on open.
//! Only WAL segments after `wal_checkpoint` are replayed; a torn record at
//! the end of a segment is truncated away with a warning. A shard directory
//! with `manifest.json` or `wal/` directly inside (the layout before
//! metrics) is refused with [`StorageError::UnsupportedLayout`].

mod attribute_columns;
mod bucket;
mod buffer;
mod compaction;
mod config;
mod dedup;
mod derived;
mod encryption;
mod error;
mod flight;
mod fsutil;
mod layout;
mod manifest;
mod metrics;
mod ownership;
mod parquet_encode;
mod parquet_files;
mod provider;
mod pruning;
mod recovery;
mod shard;
mod signal;
mod span_links;
mod span_metrics;
mod tenants;
mod tidx;
mod trace_limit;
mod trace_parts;
mod wal;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::TableProvider;
use prometheus_client::registry::Registry;
use skein_model::{ShardWriter, WriteError, WriteReceipt};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use bucket::{ObjectStoreConfig, ServerSideEncryption};
pub use config::{CompactionConfig, MAX_SHARDS, MAX_TENANTS, StorageConfig, TenantConfig};
pub use encryption::{ANY_TENANT, EncryptionConfig, Keyring, RecordError, TenantKeys, new_secret, open_record};
pub use error::StorageError;
pub use flight::{InternalServer, StorageFlight};
pub use ownership::{keep_owned_shards, keep_tenants_owned_shards};
pub use provider::ShardTable;
pub use shard::WalPlacement;
pub use signal::Signal;
pub use skein_model::TableKind;
pub use tenants::{NodeShards, TENANTS_DIR, TenantStorages};

use crate::bucket::Bucket;
use crate::error::{IoContext, closed_write_error};
use crate::metrics::ProcessShared;
use crate::shard::{Shard, unix_nanos};

/// How often retention looks for expired hour partitions.
const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// Merges one signal of a shard may run in a compaction round before the
/// next gets its turn.
const MERGES_PER_TURN: usize = 4;

/// Every signal of one shard this node holds, with their tables and
/// background flush tasks.
struct OpenShard {
    id: usize,
    /// One per signal, in [`Signal::ALL`] order.
    signals: Vec<Arc<Shard>>,
    /// The table of each signal, in [`Signal::ALL`] order.
    tables: Vec<Arc<ShardTable>>,
    span_metrics_table: Arc<span_metrics::SpanMetricsTable>,
    trace_parts_table: Arc<trace_parts::TracePartsTable>,
    span_links_table: Arc<span_links::SpanLinksTable>,
    /// Stops this shard's flush loops (a child of the storage's token).
    tasks: CancellationToken,
    handles: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl OpenShard {
    fn signal(&self, signal: Signal) -> &Arc<Shard> {
        &self.signals[signal.index()]
    }

    fn table(&self, signal: Signal) -> &Arc<ShardTable> {
        &self.tables[signal.index()]
    }

    fn all(&self) -> &[Arc<Shard>] {
        &self.signals
    }

    fn is_fenced(&self) -> bool {
        self.signals.iter().any(|s| s.is_fenced())
    }

    /// Stops the flush loops and waits for them; a flush in progress completes first.
    async fn stop_tasks(&self) {
        self.tasks.cancel();
        let handles = std::mem::take(&mut *self.handles.lock());
        for handle in handles {
            if let Err(e) = handle.await {
                error!(shard = self.id, error = %e, "shard flush task failed");
            }
        }
    }
}

/// The local shards of a storage node, every signal. In a cluster whose
/// WAL is in the object store the set changes at run time: a node takes
/// shards over ([`Storage::acquire`]) and lets them go
/// ([`Storage::release`]) as the live members change.
pub struct Storage {
    /// Shards of the whole cluster; this node holds some or all of them.
    shard_count: usize,
    config: StorageConfig,
    wal: WalPlacement,
    /// Where flushed data is kept besides the data directory, if anywhere.
    bucket: Option<Bucket>,
    /// Metrics and the compaction slot, shared with the other tenants' storages.
    process: ProcessShared,
    /// The tenant's keys with `storage.encryption`.
    keys: Option<Arc<TenantKeys>>,
    /// Indexed by shard ID; `None` for shards this node does not hold.
    open: parking_lot::RwLock<Vec<Option<Arc<OpenShard>>>>,
    /// Serializes acquire, release and close.
    changes: tokio::sync::Mutex<()>,
    retention: Option<Duration>,
    /// Set by [`Storage::start_draining`]: this node hands its shards off.
    draining: AtomicBool,
    /// Set first by `close`: writes are refused from then on.
    closed: AtomicBool,
    /// Held by `close`; true once a close completed.
    close_done: tokio::sync::Mutex<bool>,
    /// Stops the background flush and retention tasks.
    tasks: CancellationToken,
    task_handles: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Held until closed (or dropped): no other process opens the directory.
    data_dir_lock: parking_lot::Mutex<Option<layout::DataDirLock>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("shards", &self.local_shards().len()).finish_non_exhaustive()
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
        Self::open_shards(config, &all, WalPlacement::LocalDisk, registry, shutdown).await
    }

    /// Opens (creating) the shards `shard_ids` of a cluster of
    /// `config.shards` shards under `data_dir`, with their write-ahead logs
    /// where `wal` says, replays them, and starts the background flush (and
    /// retention) tasks, which stop when `shutdown` is cancelled. Data is
    /// flushed on [`Storage::close`].
    pub async fn open_shards(
        config: StorageConfig,
        shard_ids: &[usize],
        wal: WalPlacement,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Result<Arc<Storage>, StorageError> {
        let keys = match &config.encryption {
            Some(encryption) => Some(Keyring::load(encryption)?.for_tenant(skein_model::security::DEFAULT_TENANT)?),
            None => None,
        };
        Self::open_shared(config, shard_ids, wal, ProcessShared::register(registry), keys, shutdown).await
    }

    /// As [`Storage::open_shards`], sharing metrics and the compaction slot
    /// with the storages of the process's other tenants.
    pub(crate) async fn open_shared(
        mut config: StorageConfig,
        shard_ids: &[usize],
        wal: WalPlacement,
        process: ProcessShared,
        keys: Option<Arc<TenantKeys>>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Storage>, StorageError> {
        config.validate().map_err(StorageError::Config)?;
        if config.encryption.is_some() != keys.is_some() {
            return Err(StorageError::Config(
                "the tenant's encryption keys do not match storage.encryption (set without keys, or keys without it)"
                    .into(),
            ));
        }
        if let Some(&bad) = shard_ids.iter().find(|&&id| id >= config.shards) {
            return Err(StorageError::NoSuchShard(bad));
        }
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).ctx(|| format!("creating {}", data_dir.display()))?;
        // Absolute, because DataFusion's object store addresses files by absolute path.
        config.data_dir = std::fs::canonicalize(&data_dir).ctx(|| format!("resolving {}", data_dir.display()))?;
        let data_dir_lock = layout::DataDirLock::acquire(&config.data_dir)?;
        layout::check_data_dir(&config.data_dir, config.shards)?;

        let bucket = match &config.object_store {
            Some(object_store) => {
                let bucket = Bucket::connect(object_store).await?;
                bucket.pin_shard_count(config.shards).await?;
                info!(object_store = %bucket.name, wal = ?wal, "flushed data goes to the object store");
                Some(bucket)
            }
            None if wal == WalPlacement::ObjectStore => {
                return Err(StorageError::Config(
                    "a write-ahead log in the object store needs storage.object_store".into(),
                ));
            }
            None => None,
        };
        let storage = Arc::new(Storage {
            shard_count: config.shards,
            retention: config.retention,
            open: parking_lot::RwLock::new(vec![None; config.shards]),
            changes: tokio::sync::Mutex::new(()),
            process,
            keys,
            config,
            wal,
            bucket,
            draining: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            close_done: tokio::sync::Mutex::new(false),
            tasks: shutdown.child_token(),
            task_handles: parking_lot::Mutex::new(Vec::new()),
            data_dir_lock: parking_lot::Mutex::new(Some(data_dir_lock)),
        });
        let mut shard_ids = shard_ids.to_vec();
        shard_ids.sort_unstable();
        shard_ids.dedup();
        for &id in &shard_ids {
            storage.acquire(id).await?;
        }
        if let Some(retention) = storage.retention {
            // Expired data goes at once (the node may have been down a while);
            // the loop then checks once per interval.
            storage.enforce_retention().await?;
            let round = move |storage: Arc<Storage>, _| async move {
                if let Err(e) = storage.enforce_retention().await {
                    error!(error = %e, retention = ?retention, "retention failed, will retry");
                }
            };
            let handle =
                tokio::spawn(every(Arc::downgrade(&storage), RETENTION_CHECK_INTERVAL, storage.tasks.clone(), round));
            storage.task_handles.lock().push(handle);
        }
        if storage.config.compaction.enabled {
            let round = |storage: Arc<Storage>, stop: CancellationToken| async move {
                storage.compaction_round(&stop).await;
            };
            let interval = storage.config.compaction.interval;
            let handle = tokio::spawn(every(Arc::downgrade(&storage), interval, storage.tasks.clone(), round));
            storage.task_handles.lock().push(handle);
        }
        info!(data_dir = %storage.config.data_dir.display(), shard_count = storage.shard_count, local_shards = shard_ids.len(), "storage open");
        Ok(storage)
    }

    /// Opens shard `id` (both signals) and starts its flush loops; with the
    /// WAL in the object store this takes the shard over from any node that
    /// held it before, which can no longer write or flush it afterwards.
    /// A shard already held (and not fenced off) is left as it is.
    pub async fn acquire(&self, id: usize) -> Result<(), StorageError> {
        if id >= self.shard_count {
            return Err(StorageError::NoSuchShard(id));
        }
        let _changing = self.changes.lock().await;
        if self.closed.load(Ordering::SeqCst) {
            return Err(StorageError::Closed);
        }
        if let Some(held) = self.open_shard(id) {
            if !held.is_fenced() {
                return Ok(());
            }
            self.drop_shard(&held).await;
        }
        let started = Instant::now();
        let open = |signal: Signal| {
            Shard::open(
                id,
                signal,
                &self.config,
                self.bucket.as_ref(),
                self.wal,
                self.process.metrics.signal(signal),
                self.keys.clone(),
            )
        };
        let mut signals: Vec<Arc<Shard>> = Vec::with_capacity(Signal::ALL.len());
        for signal in Signal::ALL {
            match open(signal).await {
                Ok(opened) => signals.push(opened),
                Err(e) => {
                    for opened in &signals {
                        opened.stop_writer().await.ok();
                    }
                    return Err(e);
                }
            }
        }
        let spans = &signals[Signal::Spans.index()];
        let shard = Arc::new(OpenShard {
            id,
            tables: signals.iter().map(|s| Arc::new(ShardTable::new(Arc::clone(&s.buffer), s.keys.clone()))).collect(),
            span_metrics_table: Arc::new(span_metrics::SpanMetricsTable::new(
                Arc::clone(&spans.buffer),
                spans.keys.clone(),
            )),
            trace_parts_table: Arc::new(trace_parts::TracePartsTable::new(
                Arc::clone(&spans.buffer),
                spans.keys.clone(),
            )),
            span_links_table: Arc::new(span_links::SpanLinksTable::new(Arc::clone(&spans.buffer), spans.keys.clone())),
            signals,
            tasks: self.tasks.child_token(),
            handles: parking_lot::Mutex::new(Vec::new()),
        });
        *shard.handles.lock() = shard
            .all()
            .iter()
            .map(|s| tokio::spawn(Arc::clone(s).run_flush_loop(shard.tasks.clone(), self.config.flush_interval)))
            .collect();
        self.open.write()[id] = Some(shard);
        if self.wal == WalPlacement::ObjectStore {
            info!(shard = id, millis = started.elapsed().as_millis() as u64, "took the shard over");
        }
        Ok(())
    }

    /// Lets shard `id` go: refuses its writes from now on, flushes what it
    /// buffered (best effort: with the WAL in the object store, the next
    /// owner replays whatever a failed flush left) and stops it.
    pub async fn release(&self, id: usize) -> Result<(), StorageError> {
        let _changing = self.changes.lock().await;
        let Some(shard) = self.open.write().get_mut(id).and_then(Option::take) else {
            return Ok(());
        };
        shard.stop_tasks().await;
        let mut result = Ok(());
        for signal in shard.all() {
            signal.stop_writer().await?;
            if signal.is_fenced() {
                continue;
            }
            if let Err(e) = signal.flush().await {
                warn!(shard = id, signal = %signal.spec.signal, error = %e, "could not flush a released shard");
                result = Err(e);
            }
        }
        info!(shard = id, "released the shard");
        if self.wal == WalPlacement::ObjectStore { Ok(()) } else { result }
    }

    /// Marks this node as draining: it tells the other members (node info)
    /// to take its shards over and takes none itself ([`keep_owned_shards`]
    /// hands them off). Not undone: a drained node is restarted to serve again.
    pub fn start_draining(&self) {
        if !self.draining.swap(true, Ordering::SeqCst) {
            info!(shards = self.local_shards().len(), "draining: handing this node's shards off");
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Where the shards' write-ahead logs are.
    pub fn wal_placement(&self) -> WalPlacement {
        self.wal
    }

    /// Shards another node took over (see [`WalPlacement::ObjectStore`]):
    /// this node must stop serving them, and may take them back.
    pub fn fenced_shards(&self) -> Vec<usize> {
        self.open.read().iter().flatten().filter(|s| s.is_fenced()).map(|s| s.id).collect()
    }

    /// Asks the object store, for every shard held, whether another node
    /// took it over meanwhile (see [`Storage::fenced_shards`]): what a node
    /// does after it was paused, so it stops serving stale reads at once
    /// instead of at its next write.
    pub async fn check_ownership(&self) {
        for shard in self.open_shards_now() {
            for signal in shard.all() {
                if let Err(e) = signal.check_still_owner().await {
                    warn!(shard = shard.id, signal = %signal.spec.signal, error = %e, "could not check shard ownership");
                }
            }
        }
    }

    /// Removes a shard from the open set and stops it, without a flush.
    async fn drop_shard(&self, shard: &Arc<OpenShard>) {
        {
            let mut open = self.open.write();
            if open[shard.id].as_ref().is_some_and(|held| Arc::ptr_eq(held, shard)) {
                open[shard.id] = None;
            }
        }
        shard.stop_tasks().await;
        for signal in shard.all() {
            if let Err(e) = signal.stop_writer().await {
                warn!(shard = shard.id, error = %e, "could not stop the wal writer of a fenced shard");
            }
        }
        warn!(shard = shard.id, "dropped a shard another node took over");
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

    fn open_shard(&self, id: usize) -> Option<Arc<OpenShard>> {
        self.open.read().get(id).cloned().flatten()
    }

    /// Every shard held now, ascending.
    fn open_shards_now(&self) -> Vec<Arc<OpenShard>> {
        self.open.read().iter().flatten().cloned().collect()
    }

    /// One DataFusion table per shard holding `signal`, schema
    /// [`Signal::schema`]; each sees flushed and buffered data.
    pub fn tables(&self, signal: Signal) -> Vec<Arc<dyn TableProvider>> {
        self.open_shards_now().iter().map(|s| Arc::clone(s.table(signal)) as Arc<dyn TableProvider>).collect()
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

    /// One table of log records per shard, schema [`skein_model::log_schema`].
    pub fn log_tables(&self) -> Vec<Arc<dyn TableProvider>> {
        self.tables(Signal::Logs)
    }

    /// One table of span-derived RED rows per shard, schema
    /// [`skein_model::span_metrics_schema`].
    pub fn span_metrics_tables(&self) -> Vec<Arc<dyn TableProvider>> {
        self.open_shards_now().iter().map(|s| Arc::clone(&s.span_metrics_table) as Arc<dyn TableProvider>).collect()
    }

    /// One table of trace parts per shard, schema
    /// [`skein_model::trace_parts_schema`].
    pub fn trace_parts_tables(&self) -> Vec<Arc<dyn TableProvider>> {
        self.open_shards_now().iter().map(|s| Arc::clone(&s.trace_parts_table) as Arc<dyn TableProvider>).collect()
    }

    /// One table of span links by target per shard, schema
    /// [`skein_model::span_links_schema`].
    pub fn span_links_tables(&self) -> Vec<Arc<dyn TableProvider>> {
        self.open_shards_now().iter().map(|s| Arc::clone(&s.span_links_table) as Arc<dyn TableProvider>).collect()
    }

    /// The table `kind` of one shard; `None` for a shard this node does not hold.
    pub fn shard_provider(&self, kind: TableKind, shard: usize) -> Option<Arc<dyn TableProvider>> {
        let open = self.open_shard(shard)?;
        Some(match kind {
            TableKind::Spans => Arc::clone(open.table(Signal::Spans)) as Arc<dyn TableProvider>,
            TableKind::Metrics => Arc::clone(open.table(Signal::Metrics)) as Arc<dyn TableProvider>,
            TableKind::Logs => Arc::clone(open.table(Signal::Logs)) as Arc<dyn TableProvider>,
            TableKind::SpanMetrics => Arc::clone(&open.span_metrics_table) as Arc<dyn TableProvider>,
            TableKind::TraceParts => Arc::clone(&open.trace_parts_table) as Arc<dyn TableProvider>,
            TableKind::SpanLinks => Arc::clone(&open.span_links_table) as Arc<dyn TableProvider>,
        })
    }

    /// The `signal` table of one shard, with its pruning introspection;
    /// `None` for a shard this node does not hold.
    pub fn shard_table(&self, signal: Signal, shard: usize) -> Option<Arc<ShardTable>> {
        self.open_shard(shard).map(|s| Arc::clone(s.table(signal)))
    }

    /// Whether this node holds `shard` (and no other node took it over).
    pub fn holds_shard(&self, shard: usize) -> bool {
        self.open_shard(shard).is_some_and(|s| !s.is_fenced())
    }

    /// The IDs of the shards this node holds, ascending.
    pub fn local_shards(&self) -> Vec<usize> {
        self.open.read().iter().flatten().filter(|s| !s.is_fenced()).map(|s| s.id).collect()
    }

    /// Buffered (not yet flushed to Parquet) bytes of one shard, all signals.
    pub fn unflushed_bytes(&self, shard: usize) -> Option<u64> {
        let shard = self.open_shard(shard)?;
        Some(shard.all().iter().map(|s| s.buffer.buffered_bytes()).sum())
    }

    /// Stops accepting writes, flushes every buffer to Parquet and closes
    /// the WALs. Idempotent; after a failed flush it may be called again.
    pub async fn close(&self) -> Result<(), StorageError> {
        self.closed.store(true, Ordering::SeqCst);
        let mut done = self.close_done.lock().await;
        if *done {
            return Ok(());
        }
        let _changing = self.changes.lock().await;
        self.stop_background_tasks().await;
        for shard in self.open_shards_now() {
            shard.stop_tasks().await;
            for signal in shard.all() {
                // Writes queued before this point are committed and frozen.
                signal.stop_writer().await?;
            }
        }
        self.flush_all().await?;
        *done = true;
        // Nothing writes the directory any more; a successor may open it.
        self.data_dir_lock.lock().take();
        info!("storage closed");
        Ok(())
    }

    /// Stops the retention task and waits for it.
    async fn stop_background_tasks(&self) {
        self.tasks.cancel();
        let handles = std::mem::take(&mut *self.task_handles.lock());
        for handle in handles {
            if let Err(e) = handle.await {
                error!(error = %e, "storage background task failed");
            }
        }
    }

    /// Flushes the buffers of every shard and signal to Parquet now (shards
    /// another node took over are skipped: it replays their WAL).
    pub async fn flush_all(&self) -> Result<(), StorageError> {
        let mut first_error = None;
        for shard in self.open_shards_now() {
            for signal in shard.all() {
                if signal.is_fenced() {
                    continue;
                }
                if let Err(e) = signal.flush().await {
                    error!(shard = signal.id, signal = %signal.spec.signal, error = %e, "flush failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Drops hour partitions (of every signal) older than the configured
    /// retention now; returns how many files were dropped (0 without retention).
    pub async fn enforce_retention(&self) -> Result<usize, StorageError> {
        let Some(retention) = self.retention else {
            return Ok(0);
        };
        let cutoff =
            unix_nanos(SystemTime::now()).saturating_sub(i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX));
        let mut dropped = 0;
        for shard in self.open_shards_now() {
            for signal in shard.all() {
                if !signal.is_fenced() {
                    dropped += signal.enforce_retention(cutoff).await?;
                }
            }
        }
        Ok(dropped)
    }

    /// One background compaction round: a few merges for each signal of
    /// each shard this node holds, then the deletion of replaced files
    /// whose grace period ended. Failures are logged and retried next round.
    pub(crate) async fn compaction_round(&self, stop: &CancellationToken) {
        for shard in self.open_shards_now() {
            for signal in shard.all() {
                for _ in 0..MERGES_PER_TURN {
                    if stop.is_cancelled() || signal.is_fenced() {
                        return;
                    }
                    let _slot = self.process.compaction_slot().await;
                    match signal.compact(&self.config.compaction, stop).await {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            if !stop.is_cancelled() {
                                error!(shard = signal.id, signal = %signal.spec.signal, error = %e, "compaction failed, will retry");
                            }
                            break;
                        }
                    }
                }
                signal.delete_retired(Some(Instant::now())).await;
            }
        }
    }

    /// Merges until no hour partition of any shard needs it, then deletes
    /// replaced files whose grace period ended; returns how many merges
    /// ran. For tests and tools (the background loop does the same).
    pub async fn compact_now(&self) -> Result<usize, StorageError> {
        let stop = self.tasks.child_token();
        let mut merges = 0;
        for shard in self.open_shards_now() {
            for signal in shard.all() {
                loop {
                    let _slot = self.process.compaction_slot().await;
                    if signal.is_fenced() || signal.compact(&self.config.compaction, &stop).await?.is_none() {
                        break;
                    }
                    merges += 1;
                }
                signal.delete_retired(Some(Instant::now())).await;
            }
        }
        Ok(merges)
    }

    /// Waits until `signal` of shard `shard` has completed `count` flushes
    /// in total (background or explicit). For tests and tools.
    pub async fn wait_for_flushes(&self, signal: Signal, shard: usize, count: u64) -> Result<(), StorageError> {
        let shard = self.shard(signal, shard).ok_or(StorageError::NoSuchShard(shard))?;
        let mut flushes = shard.buffer.subscribe_flushes();
        flushes.wait_for(|n| *n >= count).await.map_err(|_| StorageError::Closed)?;
        Ok(())
    }

    fn shard(&self, signal: Signal, shard: usize) -> Option<Arc<Shard>> {
        self.open_shard(shard).map(|s| Arc::clone(s.signal(signal)))
    }

    async fn write_signal(&self, signal: Signal, shard: usize, batch: RecordBatch) -> Result<WriteReceipt, WriteError> {
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

    async fn write(&self, signal: Signal, shard: usize, batch: RecordBatch) -> Result<WriteReceipt, WriteError> {
        self.write_signal(signal, shard, batch).await
    }
}

/// Runs `round` every `interval` (first after one interval) while the
/// storage lives, until `stop` fires. Rounds never overlap: a slow one
/// delays the next.
async fn every<F, Fut>(storage: std::sync::Weak<Storage>, interval: Duration, stop: CancellationToken, round: F)
where
    F: Fn(Arc<Storage>, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let first = tokio::time::Instant::now() + interval;
    let mut ticks = tokio::time::interval_at(first, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let Some(storage) = storage.upgrade() else { return };
        round(storage, stop.clone()).await;
    }
}
