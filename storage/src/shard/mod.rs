//! One signal of one shard (its own WAL writer thread, buffer, manifest and
//! files under `shard-NNNN/<signal>/`): opening, the write path, flushes and
//! retention.
//!
//! Flush protocol (each step durable before the next, so a crash anywhere
//! leaves every row exactly once after reopening):
//! 1. freeze the active buffer through the WAL writer (the WAL rotates);
//! 2. write the frozen rows as Parquet files (temp name, fsync, rename) with
//!    their `.tidx` sidecars (for signals with a trace index);
//! 3. replace `manifest.json` with the file list plus the new files and the
//!    WAL checkpoint (the highest segment whose data is now in Parquet);
//! 4. swap the frozen buffer for the files in what queries see;
//! 5. delete the WAL segments up to the checkpoint.
//!
//! On open, files the manifest does not list (a flush that crashed before
//! step 3) are deleted, and only segments after the checkpoint are replayed
//! (a crash between 3 and 5 leaves segments whose rows are in Parquet).
//! Compactions (`compact`) and retention commit through the same manifest.

mod compact;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::RecordBatch;
use skein_model::{WriteError, WriteReceipt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::bucket::{Bucket, SignalBucket, sidecar_of};
use crate::buffer::{DataFile, FlushDue, ShardBuffer};
use crate::config::StorageConfig;
use crate::dedup::{RecentBatches, batch_key};
use crate::encryption::TenantKeys;
use crate::error::{IoContext, OVERLOADED_RETRY_AFTER, StorageError, UNAVAILABLE_RETRY_AFTER, closed_write_error};
use crate::fsutil::remove_empty_dirs;
use crate::layout::signal_dir;
use crate::manifest::{FileMeta, Manifest};
use crate::metrics::{SignalMetrics, gauge_value};
use crate::parquet_files::{NS_PER_HOUR, write_partitions};
use crate::recovery::{Recovered, WAL_DIR, recover};
use crate::signal::{Signal, SignalExt, SignalSpec};
use crate::tidx::sidecar_path;
use crate::trace_limit::{Admission, TraceSpanCounts};
use crate::wal::{MAX_RECORD_BYTES, delete_segments_up_to, encode_batch, parse_frames};
use crate::writer::{AppendRequest, Command, WalRefusal, WalSink, WalWriter};

/// Wait before retrying a failed flush.
const FLUSH_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Where a test makes a flush stop as if the process died there.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailPoint {
    /// Parquet files renamed into place, manifest not yet replaced.
    ParquetWritten,
    /// Files uploaded to the object store, its manifest not yet created.
    Uploaded,
    /// Manifest replaced, WAL segments not yet deleted.
    ManifestCommitted,
    /// Compacted files in place, manifest not yet replaced.
    CompactionWritten,
    /// Manifest of a compaction replaced, replaced files not yet deleted.
    CompactionCommitted,
}

/// Where a shard's write-ahead log lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalPlacement {
    /// Segment files in the data directory: all-in-one, and storage nodes
    /// whose shards do not fail over.
    #[default]
    LocalDisk,
    /// One object per group commit in the object store, so that another
    /// node can replay it and take the shard over (`bucket::wal`). Opening
    /// a shard then fences off any previous owner.
    ObjectStore,
}

/// One signal of one shard.
pub(crate) struct Shard {
    pub id: usize,
    pub spec: &'static SignalSpec,
    /// `<data_dir>/shard-NNNN/<signal>/`
    pub dir: PathBuf,
    pub buffer: Arc<ShardBuffer>,
    tx: mpsc::Sender<Command>,
    writer: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The object-store copy of flushed data, when configured.
    bucket: Option<SignalBucket>,
    /// Whether the WAL is in the bucket (objects to delete after a flush).
    wal_in_bucket: bool,
    /// Set when another node took the shard over: writes and flushes are
    /// refused, and the node must let the shard go.
    fenced: Arc<AtomicBool>,
    /// Keys of recently acknowledged batches, to store a retried batch once.
    recent: parking_lot::Mutex<RecentBatches>,
    /// Spans per trace, when the tenant has `max_spans_per_trace` (spans only).
    trace_counts: Option<parking_lot::Mutex<TraceSpanCounts>>,
    /// The tenant's keys with `storage.encryption`: WAL records are sealed
    /// and Parquet files encrypted with them.
    pub keys: Option<Arc<TenantKeys>>,
    /// The manifest as on disk; its lock serializes commits (flushes,
    /// compactions, retention).
    manifest: tokio::sync::Mutex<Manifest>,
    /// Files compactions replaced, kept a while for queries reading them.
    retired: parking_lot::Mutex<Vec<compact::Retired>>,
    row_group_rows: usize,
    max_buffer_bytes: u64,
    metrics: SignalMetrics,
    #[cfg(test)]
    pub fail_point: parking_lot::Mutex<Option<FailPoint>>,
}

fn encode_for_wal(batch: &RecordBatch) -> Result<Vec<u8>, WriteError> {
    encode_batch(batch).map_err(|e| WriteError::Internal(format!("encoding batch: {e}")))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StorageError::Task(e.to_string()))?
}

impl Shard {
    /// Recovers `signal` of shard `id` under `data_dir` and starts its WAL
    /// writer thread. With the WAL in the object store this takes the
    /// shard over from whichever node held it before (see `bucket::wal`).
    pub async fn open(
        id: usize,
        signal: Signal,
        config: &StorageConfig,
        bucket: Option<&Bucket>,
        wal: WalPlacement,
        metrics: SignalMetrics,
        keys: Option<Arc<TenantKeys>>,
    ) -> Result<Arc<Self>, StorageError> {
        let spec = signal.spec();
        let dir = signal_dir(&config.data_dir, id, spec);
        let bucket = bucket.map(|b| b.signal(id, spec));
        let wal_in_bucket = wal == WalPlacement::ObjectStore;
        if let Some(bucket) = &bucket {
            bucket.reconcile(&dir, spec, wal_in_bucket).await?;
        }
        let mut recovered = {
            let (dir, keys) = (dir.clone(), keys.clone());
            blocking(move || recover(id, spec, &dir, keys.as_ref())).await?
        };
        let sink = match (&bucket, wal) {
            (_, WalPlacement::LocalDisk) => WalSink::Local { dir: dir.join(WAL_DIR), segment: None },
            (Some(bucket), WalPlacement::ObjectStore) => {
                replay_from_bucket(bucket, spec, &mut recovered, keys.as_deref()).await?;
                WalSink::Remote { bucket: bucket.clone(), runtime: tokio::runtime::Handle::current() }
            }
            (None, WalPlacement::ObjectStore) => {
                return Err(StorageError::Config(
                    "a write-ahead log in the object store needs storage.object_store".into(),
                ));
            }
        };
        metrics.wal_bytes.inc_by(gauge_value(recovered.wal_bytes));
        let buffer = Arc::new(ShardBuffer::new(
            id,
            signal,
            config.flush_max_bytes,
            config.flush_interval,
            recovered.files,
            metrics.clone(),
        ));
        let now = Instant::now();
        let trace_counts = (signal == Signal::Spans && config.max_spans_per_trace > 0).then(|| {
            let mut counts =
                TraceSpanCounts::new(config.max_spans_per_trace, config.trace_limit_window, config.shards, now);
            for (batch, _) in &recovered.replayed.batches {
                counts.note(batch, now);
            }
            parking_lot::Mutex::new(counts)
        });
        buffer.append(recovered.replayed.batches);
        let mut recent = RecentBatches::default();
        for key in recovered.replayed.keys {
            recent.insert(key, now);
        }
        let fenced = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(config.wal_queue_depth);
        let writer =
            WalWriter::new(sink, recovered.next_seq, Arc::clone(&buffer), Arc::clone(&fenced), metrics.clone())
                .spawn(rx)
                .ctx(|| format!("starting the {signal} wal writer thread of shard {id}"))?;
        Ok(Arc::new(Self {
            id,
            spec,
            dir,
            buffer,
            tx,
            writer: parking_lot::Mutex::new(Some(writer)),
            bucket,
            wal_in_bucket,
            fenced,
            recent: parking_lot::Mutex::new(recent),
            trace_counts,
            keys,
            manifest: tokio::sync::Mutex::new(recovered.manifest),
            retired: parking_lot::Mutex::new(Vec::new()),
            row_group_rows: config.row_group_rows,
            max_buffer_bytes: config.max_buffer_bytes,
            metrics,
            #[cfg(test)]
            fail_point: parking_lot::Mutex::new(None),
        }))
    }

    /// Whether another node took this shard over.
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
    }

    /// With the WAL in the bucket: whether another node committed a
    /// manifest generation after this node's, i.e. took the shard over
    /// (every takeover starts so). If so the shard is marked fenced.
    pub async fn check_still_owner(&self) -> Result<bool, StorageError> {
        let Some(bucket) = self.bucket.as_ref().filter(|_| self.wal_in_bucket) else {
            return Ok(true);
        };
        let ours = self.manifest.lock().await.generation;
        let latest = bucket.latest_generation().await?;
        if latest > ours {
            warn!(shard = self.id, signal = %self.spec.signal, ours, latest, "another node took this shard over");
            self.fenced.store(true, Ordering::SeqCst);
        }
        Ok(!self.is_fenced())
    }

    fn fenced_error(&self) -> WriteError {
        WriteError::NotOwner {
            shard: self.id,
            node: "this node".into(),
            reason: "another storage node took the shard over".into(),
            retry_after: UNAVAILABLE_RETRY_AFTER,
        }
    }

    /// Makes `batch` durable in the WAL, then visible in the buffer. Spans
    /// over the tenant's trace size limit are left out and counted in the
    /// receipt.
    pub async fn write(&self, batch: RecordBatch) -> Result<WriteReceipt, WriteError> {
        if batch.num_rows() == 0 {
            return Ok(WriteReceipt::STORED);
        }
        if batch.schema().fields() != self.spec.schema.fields() {
            return Err(WriteError::Internal(format!("batch does not have the {} schema", self.spec.signal)));
        }
        if self.is_fenced() {
            return Err(self.fenced_error());
        }
        let buffered = self.buffer.buffered_bytes();
        if buffered > self.max_buffer_bytes {
            // Flushing is behind the ingest rate: the node is overloaded, and
            // clients must back off (429 / RESOURCE_EXHAUSTED), not fail over.
            self.metrics.rejected("flush_behind");
            debug!(shard = self.id, signal = %self.spec.signal, buffered, limit = self.max_buffer_bytes, "flush is behind, refusing writes");
            return Err(WriteError::Overloaded { retry_after: OVERLOADED_RETRY_AFTER });
        }
        let mut payload = encode_for_wal(&batch)?;
        // The key is the batch as sent, so a retry is recognised even when
        // the trace limit stored only part of it.
        let key = batch_key(&payload);
        if self.recent.lock().contains(key, Instant::now()) {
            // Already durable: a client retried a request that partly failed.
            self.metrics.duplicate_batches.inc();
            return Ok(WriteReceipt::STORED);
        }
        let (batch, admission) = match &self.trace_counts {
            None => (batch, None),
            Some(counts) => {
                let admission = counts
                    .lock()
                    .admit(batch, Instant::now())
                    .map_err(|e| WriteError::Internal(format!("counting spans per trace: {e}")))?;
                (admission.batch.clone(), Some(admission))
            }
        };
        let refused_rows = admission.as_ref().map_or(0, |a| a.refused_rows);
        if refused_rows > 0 && batch.num_rows() == 0 {
            // Every row refused: nothing to write.
            return Ok(self.receipt(admission.as_ref()));
        }
        let written = async {
            if refused_rows > 0 {
                payload = encode_for_wal(&batch)?;
            }
            if let Some(keys) = &self.keys {
                payload =
                    keys.seal_record(payload).map_err(|e| WriteError::Internal(format!("encrypting a batch: {e}")))?;
            }
            if payload.len() > MAX_RECORD_BYTES {
                return Err(WriteError::Internal(format!(
                    "batch of {} bytes is over the {MAX_RECORD_BYTES}-byte write-ahead log record limit",
                    payload.len()
                )));
            }
            self.append(payload, batch, key).await
        }
        .await;
        match written {
            Ok(()) => Ok(self.receipt(admission.as_ref())),
            Err(e) => {
                // Not stored: the client sends these spans again.
                if let (Some(admission), Some(counts)) = (&admission, &self.trace_counts) {
                    counts.lock().release(admission);
                }
                Err(e)
            }
        }
    }

    /// The receipt of a write the trace size limit may have cut.
    fn receipt(&self, admission: Option<&Admission>) -> WriteReceipt {
        let Some(admission) = admission.filter(|a| a.refused_rows > 0) else {
            return WriteReceipt::STORED;
        };
        let max_spans = admission.max_spans;
        self.metrics.refused_rows("trace_too_large", admission.refused_rows);
        if let Some(trace_id) = &admission.newly_over {
            info!(shard = self.id, trace_id = %trace_id, max_spans, "trace reached its size limit; refusing its further spans");
        }
        WriteReceipt {
            refused_rows: admission.refused_rows,
            refusal: admission.first_refused.as_ref().map(|trace_id| {
                format!(
                    "trace {trace_id} is over the limit of {max_spans} spans per trace (storage.max_spans_per_trace)"
                )
            }),
        }
    }

    /// Appends one encoded batch to the WAL and waits until it is durable.
    async fn append(&self, payload: Vec<u8>, batch: RecordBatch, key: u128) -> Result<(), WriteError> {
        let (ack, acked) = oneshot::channel();
        match self.tx.try_send(Command::Append(AppendRequest { payload, batch, ack })) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.rejected("queue_full");
                return Err(WriteError::Overloaded { retry_after: OVERLOADED_RETRY_AFTER });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(closed_write_error()),
        }
        match acked.await {
            Ok(Ok(())) => {
                self.recent.lock().insert(key, Instant::now());
                Ok(())
            }
            Ok(Err(WalRefusal::Failed(reason))) => {
                self.metrics.rejected("wal_error");
                Err(WriteError::Unavailable { reason, retry_after: UNAVAILABLE_RETRY_AFTER })
            }
            Ok(Err(WalRefusal::Fenced)) => {
                self.metrics.rejected("not_owner");
                Err(self.fenced_error())
            }
            // The writer stopped (storage closing) before taking the batch.
            Err(_) => Err(closed_write_error()),
        }
    }

    /// Freezes the active buffer through the writer. Once the writer has
    /// stopped, `Close` already froze everything.
    async fn freeze(&self) {
        let (ack, frozen) = oneshot::channel();
        // `send` waits for queue space: a freeze must not be refused.
        if self.tx.send(Command::Freeze(ack)).await.is_ok() {
            let _ = frozen.await;
        }
    }

    /// Flushes everything buffered so far to Parquet (see the module doc).
    pub async fn flush(&self) -> Result<(), StorageError> {
        let mut manifest = self.manifest.lock().await;
        self.freeze().await;
        let frozen = self.buffer.frozen();
        if frozen.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let checkpoint = frozen.iter().map(|f| f.wal_seq).fold(manifest.wal_checkpoint, u64::max);
        let batches: Vec<RecordBatch> = frozen.iter().flat_map(|f| f.batches.iter().cloned()).collect();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let written = {
            let (spec, dir, row_group_rows, keys) =
                (self.spec, self.dir.clone(), self.row_group_rows, self.keys.clone());
            let prefix = format!("{checkpoint:020}-{:x}", unix_nanos(SystemTime::now()));
            blocking(move || write_partitions(spec, &dir, &batches, row_group_rows, &prefix, keys.as_ref())).await?
        };
        #[cfg(test)]
        self.check_fail_point(FailPoint::ParquetWritten)?;

        let mut files = Vec::with_capacity(written.len());
        let mut next = manifest.clone();
        next.generation += 1;
        next.wal_checkpoint = checkpoint;
        for file in written {
            next.files.push(file.meta.clone());
            files.push(Arc::new(DataFile::new(&self.dir, file.meta, file.index)?));
        }
        let new_files: Vec<FileMeta> = next.files[manifest.files.len()..].to_vec();
        if let Some(bucket) = &self.bucket
            && let Err(e) = self.commit_to_bucket(bucket, &next, &new_files).await
        {
            // Another writer's manifest holds this generation, so these
            // uploads are certainly unlisted. After other errors the commit
            // may have landed unseen; the next open sorts that out.
            if matches!(e, StorageError::ManifestConflict { .. }) {
                if self.wal_in_bucket {
                    warn!(shard = self.id, signal = %self.spec.signal, "another node took this shard over; dropping the flush");
                    self.fenced.store(true, Ordering::SeqCst);
                }
                bucket.delete(&self.object_names(&new_files)).await;
            }
            let dir = self.dir.clone();
            blocking(move || {
                remove_data_files(&dir, &new_files);
                Ok(())
            })
            .await?;
            return Err(e);
        }
        let next = {
            let dir = self.dir.clone();
            blocking(move || match next.store(&dir) {
                Ok(()) => Ok(next),
                Err(e) => {
                    discard_unlisted(&dir, &new_files);
                    Err(e)
                }
            })
            .await?
        };
        #[cfg(test)]
        self.check_fail_point(FailPoint::ManifestCommitted)?;

        let file_count = files.len();
        self.buffer.commit_flush(&frozen, files);
        *manifest = next;
        let wal_dir = self.dir.join(WAL_DIR);
        match blocking(move || delete_segments_up_to(&wal_dir, checkpoint)).await {
            Ok(bytes) => {
                self.metrics.wal_bytes.dec_by(gauge_value(bytes));
            }
            // Harmless: segments up to the checkpoint are deleted on the next flush or open.
            Err(e) => {
                warn!(shard = self.id, signal = %self.spec.signal, error = %e, "could not delete flushed wal segments")
            }
        }
        if self.wal_in_bucket
            && let Some(bucket) = &self.bucket
        {
            let freed = bucket.delete_wal_up_to(checkpoint).await;
            self.metrics.wal_bytes.dec_by(gauge_value(freed));
        }
        drop(manifest);

        let elapsed = started.elapsed();
        self.metrics.files_written.inc_by(file_count as u64);
        self.metrics.rows_flushed.inc_by(rows as u64);
        self.metrics.flush_duration.observe(elapsed.as_secs_f64());
        info!(
            shard = self.id,
            signal = %self.spec.signal,
            files = file_count,
            rows,
            wal_checkpoint = checkpoint,
            millis = elapsed.as_millis() as u64,
            "flushed buffer"
        );
        Ok(())
    }

    /// Writes the derived sidecars of merged span files now, so scans of
    /// `span_metrics` and `trace_parts` find them (a failure leaves it to
    /// the first scan).
    pub(crate) async fn derive_sidecars(&self, files: &[FileMeta]) {
        if self.spec.signal != Signal::Spans {
            return;
        }
        let paths: Vec<PathBuf> = files.iter().map(|f| self.dir.join(&f.path)).collect();
        let keys = self.keys.clone();
        let _ = blocking(move || {
            crate::derived::ensure_sidecars(&paths, keys.as_ref());
            Ok(())
        })
        .await;
    }

    /// Uploads a flush's files (with their sidecars), then commits `next` in
    /// the bucket: from then on the flush is durable off this node.
    async fn commit_to_bucket(
        &self,
        bucket: &SignalBucket,
        next: &Manifest,
        new_files: &[FileMeta],
    ) -> Result<(), StorageError> {
        self.upload_files(bucket, new_files).await?;
        #[cfg(test)]
        self.check_fail_point(FailPoint::Uploaded)?;
        bucket.commit_manifest(next).await
    }

    /// Uploads data files with their sidecars.
    async fn upload_files(&self, bucket: &SignalBucket, files: &[FileMeta]) -> Result<(), StorageError> {
        for file in files {
            bucket.upload(&self.dir, &file.path).await?;
            if self.spec.trace_index_column.is_some() {
                bucket.upload(&self.dir, &sidecar_of(&file.path)).await?;
            }
        }
        Ok(())
    }

    /// The bucket objects of data files: each file and its sidecar.
    fn object_names(&self, files: &[FileMeta]) -> Vec<String> {
        files.iter().flat_map(|f| [f.path.clone(), sidecar_of(&f.path)]).collect()
    }

    #[cfg(test)]
    fn check_fail_point(&self, at: FailPoint) -> Result<(), StorageError> {
        if *self.fail_point.lock() == Some(at) {
            return Err(StorageError::Task(format!("simulated crash at {at:?}")));
        }
        Ok(())
    }

    /// Drops the hour partitions that ended at or before `cutoff_ns`:
    /// manifest first, then the files. Returns how many files were dropped.
    pub async fn enforce_retention(&self, cutoff_ns: i64) -> Result<usize, StorageError> {
        let mut manifest = self.manifest.lock().await;
        let expired: Vec<FileMeta> = manifest
            .files
            .iter()
            .filter(|f| f.hour.saturating_add(1).saturating_mul(NS_PER_HOUR) <= cutoff_ns)
            .cloned()
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        let mut next = manifest.clone();
        next.generation += 1;
        next.files.retain(|f| !expired.contains(f));
        if let Some(bucket) = &self.bucket {
            bucket.commit_manifest(&next).await?;
        }
        let next = {
            let dir = self.dir.clone();
            blocking(move || next.store(&dir).map(|()| next)).await?
        };
        self.buffer.remove_files(&expired.iter().map(|f| f.path.as_str()).collect());
        *manifest = next;
        drop(manifest);

        let count = expired.len();
        let dir = self.dir.clone();
        let objects = self.object_names(&expired);
        blocking(move || {
            remove_data_files(&dir, &expired);
            Ok(())
        })
        .await?;
        if let Some(bucket) = &self.bucket {
            bucket.delete(&objects).await;
        }
        info!(shard = self.id, signal = %self.spec.signal, files = count, "dropped expired hour partitions");
        Ok(count)
    }

    /// Flushes when the buffer is big or old enough, until `stop` fires.
    pub async fn run_flush_loop(self: Arc<Self>, stop: CancellationToken, idle_wait: Duration) {
        loop {
            if self.is_fenced() {
                // Its WAL is the new owner's to replay; nothing here may commit.
                return;
            }
            let wait = match self.buffer.flush_due(Instant::now()) {
                FlushDue::Now => None,
                FlushDue::After(wait) => Some(wait),
                FlushDue::Idle => Some(idle_wait),
            };
            if let Some(wait) = wait {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    _ = self.buffer.wakeup.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            if stop.is_cancelled() || self.is_fenced() {
                return;
            }
            // Not raced against `stop`: an interrupted flush would leave its
            // files unpublished until the next open.
            if let Err(e) = self.flush().await {
                error!(shard = self.id, signal = %self.spec.signal, error = %e, "flush failed, will retry");
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(FLUSH_RETRY_DELAY) => {}
                }
            }
        }
    }

    /// Stops the WAL writer after it drained its queue and froze the
    /// buffer; later writes are refused. Idempotent.
    pub async fn stop_writer(&self) -> Result<(), StorageError> {
        let (ack, stopped) = oneshot::channel();
        if self.tx.send(Command::Close(ack)).await.is_ok() {
            let _ = stopped.await;
        }
        let handle = self.writer.lock().take();
        if let Some(handle) = handle {
            blocking(move || handle.join().map_err(|_| StorageError::Task("wal writer thread panicked".into())))
                .await?;
        }
        Ok(())
    }

    /// Test hook: blocks the WAL writer until the returned sender fires (or drops).
    #[cfg(test)]
    pub async fn pause_writer(&self) -> oneshot::Sender<()> {
        let (paused_tx, paused) = oneshot::channel();
        let (resume, resume_rx) = oneshot::channel();
        self.tx.send(Command::Pause { paused: paused_tx, resume: resume_rx }).await.expect("writer running");
        paused.await.expect("writer paused");
        resume
    }
}

/// Takes the shard over in the bucket's WAL (fencing the previous owner)
/// and adds the records of every WAL object after the checkpoint to
/// `recovered`; the writer continues after the fence.
async fn replay_from_bucket(
    bucket: &SignalBucket,
    spec: &'static SignalSpec,
    recovered: &mut Recovered,
    keys: Option<&TenantKeys>,
) -> Result<(), StorageError> {
    let manifest = &recovered.manifest;
    let (objects, fence) = bucket.fence_wal(manifest.wal_checkpoint, manifest.generation).await?;
    for seq in objects {
        let bytes = bucket.read_wal(seq).await?;
        if SignalBucket::is_fence(&bytes) {
            continue;
        }
        let origin = PathBuf::from(format!("wal object {seq} of shard {}", bucket.shard()));
        parse_frames(&bytes, |payload| recovered.replayed.push_record(payload, spec, &origin, keys))?
            .map_err(|reason| StorageError::corrupt(&origin, reason))?;
        recovered.wal_bytes += bytes.len() as u64;
    }
    // Local segments (a data directory from before the WAL moved to the
    // bucket) keep their numbers; the writer continues above both.
    recovered.next_seq = recovered.next_seq.max(fence + 1);
    Ok(())
}

pub(crate) fn unix_nanos(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// Deletes Parquet files and their sidecars, and partition directories they leave empty.
fn remove_data_files(signal_dir: &Path, files: &[FileMeta]) {
    for file in files {
        let path = signal_dir.join(&file.path);
        for victim in
            [sidecar_path(&path)].into_iter().chain(crate::derived::sidecar_paths(&path)).chain([path.clone()])
        {
            if let Err(e) = std::fs::remove_file(&victim)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                warn!(file = %victim.display(), error = %e, "could not delete file");
            }
        }
        if let Some(parent) = path.parent() {
            remove_empty_dirs(parent, signal_dir);
        }
    }
}

/// After a failed manifest update: when the manifest on disk is still the
/// old one, the flush's files are orphans and are deleted now (a retry
/// writes new ones; under a full disk they would pile up). When the new
/// manifest did land (only its directory sync failed) they stay.
fn discard_unlisted(signal_dir: &Path, new_files: &[FileMeta]) {
    match Manifest::read(signal_dir) {
        Ok(on_disk) if !on_disk.files.iter().any(|f| new_files.contains(f)) => remove_data_files(signal_dir, new_files),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "could not read back the manifest after a failed update"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_nanos_handles_both_sides_of_the_epoch() {
        assert_eq!(unix_nanos(UNIX_EPOCH + Duration::from_secs(2)), 2_000_000_000);
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_nanos(5)), -5);
    }
}
