//! The queryable state of one signal of a shard: the active in-memory
//! buffer, frozen buffers being flushed, and the Parquet files of the
//! manifest.
//!
//! Everything lives behind one short-held lock so that a query snapshot and
//! a flush commit are atomic with respect to each other: a scan sees a
//! frozen buffer either as memory (before the commit) or as files (after),
//! never both and never neither.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::object_store::path::Path as ObjectPath;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::derived::SeenSidecars;
use crate::error::StorageError;
use crate::manifest::FileMeta;
use crate::metrics::{SignalMetrics, gauge_value};
use crate::signal::Signal;
use crate::tidx::TraceIndex;

/// A Parquet file listed in the manifest, ready to scan.
#[derive(Debug)]
pub(crate) struct DataFile {
    pub meta: FileMeta,
    /// Location in DataFusion's local-filesystem object store.
    pub location: ObjectPath,
    /// The trace-ID index, for signals that have one.
    pub index: Option<TraceIndex>,
    /// Its derived sidecars as scans last found them readable.
    pub sidecars: SeenSidecars,
}

impl DataFile {
    pub fn new(signal_dir: &Path, meta: FileMeta, index: Option<TraceIndex>) -> Result<Self, StorageError> {
        let location = object_path(&signal_dir.join(&meta.path))?;
        Ok(Self { meta, location, index, sidecars: SeenSidecars::default() })
    }
}

/// The location of the local file `absolute` in DataFusion's
/// local-filesystem object store.
pub(crate) fn object_path(absolute: &Path) -> Result<ObjectPath, StorageError> {
    ObjectPath::from_absolute_path(absolute).map_err(|e| StorageError::Io {
        context: format!("mapping {} to an object store path", absolute.display()),
        source: std::io::Error::other(e),
    })
}

/// A buffer frozen for flushing: its data is in WAL segments up to `wal_seq`.
#[derive(Debug)]
pub(crate) struct Frozen {
    pub id: u64,
    pub batches: Vec<RecordBatch>,
    pub bytes: u64,
    pub wal_seq: u64,
}

#[derive(Debug, Default)]
struct State {
    active: Vec<RecordBatch>,
    active_bytes: u64,
    /// When the oldest batch in `active` arrived.
    active_since: Option<Instant>,
    frozen: Vec<Arc<Frozen>>,
    frozen_bytes: u64,
    files: Arc<Vec<Arc<DataFile>>>,
    next_frozen_id: u64,
    /// Changes whenever the set of buffered batches does.
    batches_version: u64,
}

/// What a scan reads: files plus every buffered batch, taken atomically.
pub(crate) struct Snapshot {
    pub files: Arc<Vec<Arc<DataFile>>>,
    pub batches: Vec<RecordBatch>,
    /// Equal in two snapshots of one buffer only if `batches` hold the same
    /// rows (what is derived from them can be reused).
    pub batches_version: u64,
}

/// Whether a flush is due, and if not, how long until one may be.
#[derive(Debug, PartialEq)]
pub(crate) enum FlushDue {
    Now,
    /// Data is buffered; flush after this long unless woken.
    After(Duration),
    /// Nothing buffered; sleep until woken by a write.
    Idle,
}

pub(crate) struct ShardBuffer {
    pub shard: usize,
    pub signal: Signal,
    state: Mutex<State>,
    flush_max_bytes: u64,
    flush_interval: Duration,
    /// Wakes the shard's flush task: the buffer became non-empty or full.
    pub wakeup: Notify,
    /// Completed flushes (lets tests and operators wait for one).
    flushes: watch::Sender<u64>,
    metrics: SignalMetrics,
}

impl Drop for ShardBuffer {
    /// A node that lets a shard go stops counting its files and buffers.
    fn drop(&mut self) {
        let state = self.state.get_mut();
        self.metrics.buffered_bytes.dec_by(gauge_value(state.active_bytes + state.frozen_bytes));
        self.metrics.parquet_files.dec_by(gauge_value(state.files.len() as u64));
        self.metrics.parquet_bytes.dec_by(gauge_value(state.files.iter().map(|f| f.meta.size_bytes).sum()));
    }
}

impl std::fmt::Debug for ShardBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardBuffer").field("shard", &self.shard).field("signal", &self.signal).finish_non_exhaustive()
    }
}

impl ShardBuffer {
    pub fn new(
        shard: usize,
        signal: Signal,
        flush_max_bytes: u64,
        flush_interval: Duration,
        files: Vec<Arc<DataFile>>,
        metrics: SignalMetrics,
    ) -> Self {
        metrics.parquet_files.inc_by(gauge_value(files.len() as u64));
        metrics.parquet_bytes.inc_by(gauge_value(files.iter().map(|f| f.meta.size_bytes).sum()));
        let state = State { files: Arc::new(files), ..State::default() };
        Self {
            shard,
            signal,
            state: Mutex::new(state),
            flush_max_bytes,
            flush_interval,
            wakeup: Notify::new(),
            flushes: watch::Sender::new(0),
            metrics,
        }
    }

    /// Adds durable batches (with their encoded sizes) to the active buffer.
    /// Called by the WAL writer after the fsync, and by replay.
    pub fn append(&self, batches: impl IntoIterator<Item = (RecordBatch, u64)>) {
        let mut state = self.state.lock();
        let was_empty = state.active.is_empty();
        let before = state.active_bytes;
        state.batches_version += 1;
        for (batch, bytes) in batches {
            state.active.push(batch);
            state.active_bytes += bytes;
        }
        let added = state.active_bytes - before;
        if was_empty && !state.active.is_empty() {
            state.active_since = Some(Instant::now());
        }
        let crossed_limit = before < self.flush_max_bytes && state.active_bytes >= self.flush_max_bytes;
        drop(state);
        self.metrics.buffered_bytes.inc_by(gauge_value(added));
        if (was_empty && added > 0) || crossed_limit {
            self.wakeup.notify_one();
        }
    }

    /// Moves the active buffer to the frozen list; its data is in WAL
    /// segments up to `wal_seq`. Must be called by the WAL writer (or once
    /// it stopped) so that no acknowledged batch lands on the wrong side.
    /// Returns false when there was nothing to freeze.
    pub fn freeze(&self, wal_seq: u64) -> bool {
        let mut state = self.state.lock();
        if state.active.is_empty() {
            return false;
        }
        let id = state.next_frozen_id;
        state.next_frozen_id += 1;
        let batches = std::mem::take(&mut state.active);
        let bytes = std::mem::take(&mut state.active_bytes);
        state.active_since = None;
        state.frozen_bytes += bytes;
        state.frozen.push(Arc::new(Frozen { id, batches, bytes, wal_seq }));
        true
    }

    pub fn buffered_bytes(&self) -> u64 {
        let state = self.state.lock();
        state.active_bytes + state.frozen_bytes
    }

    pub fn frozen(&self) -> Vec<Arc<Frozen>> {
        self.state.lock().frozen.clone()
    }

    /// Publishes a flush: the flushed frozen buffers are replaced by their files.
    pub fn commit_flush(&self, flushed: &[Arc<Frozen>], new_files: Vec<Arc<DataFile>>) {
        let ids: HashSet<u64> = flushed.iter().map(|f| f.id).collect();
        let file_count = new_files.len() as u64;
        let file_bytes: u64 = new_files.iter().map(|f| f.meta.size_bytes).sum();
        let mut state = self.state.lock();
        let mut files = Vec::with_capacity(state.files.len() + new_files.len());
        files.extend(state.files.iter().cloned());
        files.extend(new_files);
        state.files = Arc::new(files);
        let mut released = 0;
        state.frozen.retain(|f| {
            let keep = !ids.contains(&f.id);
            if !keep {
                released += f.bytes;
            }
            keep
        });
        state.frozen_bytes -= released;
        state.batches_version += 1;
        drop(state);
        self.metrics.buffered_bytes.dec_by(gauge_value(released));
        self.metrics.parquet_files.inc_by(gauge_value(file_count));
        self.metrics.parquet_bytes.inc_by(gauge_value(file_bytes));
        self.flushes.send_modify(|n| *n += 1);
    }

    /// Drops files (by manifest path) from what scans see.
    pub fn remove_files(&self, paths: &HashSet<&str>) {
        self.replace_files(paths, Vec::new());
    }

    /// Swaps files (by manifest path) for others in what scans see, at once:
    /// a scan sees either set, never both or neither.
    pub fn replace_files(&self, paths: &HashSet<&str>, added: Vec<Arc<DataFile>>) {
        let added_count = added.len() as u64;
        let added_bytes: u64 = added.iter().map(|f| f.meta.size_bytes).sum();
        let mut state = self.state.lock();
        let (mut kept, removed): (Vec<_>, Vec<_>) =
            state.files.iter().cloned().partition(|f| !paths.contains(f.meta.path.as_str()));
        kept.extend(added);
        state.files = Arc::new(kept);
        drop(state);
        self.metrics.parquet_files.inc_by(gauge_value(added_count));
        self.metrics.parquet_bytes.inc_by(gauge_value(added_bytes));
        self.metrics.parquet_files.dec_by(gauge_value(removed.len() as u64));
        self.metrics.parquet_bytes.dec_by(gauge_value(removed.iter().map(|f| f.meta.size_bytes).sum()));
    }

    pub fn snapshot(&self) -> Snapshot {
        let state = self.state.lock();
        let buffered = state.active.len() + state.frozen.iter().map(|f| f.batches.len()).sum::<usize>();
        let mut batches = Vec::with_capacity(buffered);
        for frozen in &state.frozen {
            batches.extend(frozen.batches.iter().cloned());
        }
        batches.extend(state.active.iter().cloned());
        Snapshot { files: Arc::clone(&state.files), batches, batches_version: state.batches_version }
    }

    /// The files and the version of the buffered batches, without cloning
    /// the batches: enough for what is cached per version.
    pub fn files_and_batches_version(&self) -> (Arc<Vec<Arc<DataFile>>>, u64) {
        let state = self.state.lock();
        (Arc::clone(&state.files), state.batches_version)
    }

    pub fn files(&self) -> Arc<Vec<Arc<DataFile>>> {
        Arc::clone(&self.state.lock().files)
    }

    pub fn flush_due(&self, now: Instant) -> FlushDue {
        let state = self.state.lock();
        if !state.frozen.is_empty() || state.active_bytes >= self.flush_max_bytes {
            return FlushDue::Now;
        }
        match state.active_since {
            None => FlushDue::Idle,
            Some(since) => match (since + self.flush_interval).checked_duration_since(now) {
                Some(wait) if !wait.is_zero() => FlushDue::After(wait),
                _ => FlushDue::Now,
            },
        }
    }

    pub fn subscribe_flushes(&self) -> watch::Receiver<u64> {
        self.flushes.subscribe()
    }
}
