//! The WAL writer thread of one signal of a shard: group commit.
//!
//! Writers enqueue `Append` commands on a bounded channel (full means
//! overloaded). The thread takes every pending append, writes them all to
//! the current segment, issues one fdatasync, appends the batches to the
//! shard's buffer and only then acknowledges them. Freezing the buffer for a
//! flush goes through the same queue, so every batch acknowledged before
//! the freeze is in the frozen buffer and in segments up to its `wal_seq`,
//! and every later batch is in the new active buffer and in later segments.
//!
//! Where the log lives is the [`WalSink`]: segment files on the node's disk
//! (fdatasync per group, a new segment after each freeze), or one object
//! per group in the object store (a cluster whose shards fail over; see
//! `bucket::wal`). The object store is async and this thread is not a
//! runtime worker, so it waits for each create on the runtime's handle.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use crate::bucket::{SignalBucket, WalCommit};
use crate::buffer::ShardBuffer;
use crate::metrics::{SignalMetrics, gauge_value};
use crate::wal::{Segment, encode_frame, frame_len};

/// At most this many bytes are written per group commit; the rest of the
/// queue goes into the next group.
const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;

pub(crate) struct AppendRequest {
    pub payload: Vec<u8>,
    pub batch: RecordBatch,
    pub ack: oneshot::Sender<Result<(), WalRefusal>>,
}

/// Why the WAL did not take a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WalRefusal {
    /// The log could not be written (disk or object store error).
    Failed(String),
    /// Another node took the shard over; this node must let it go.
    Fenced,
}

/// Where the log is written.
pub(crate) enum WalSink {
    /// Segment files in `dir`. The current segment is created lazily by the
    /// first append after a freeze, so segments are never empty.
    Local { dir: PathBuf, segment: Option<Segment> },
    /// One object per group commit.
    Remote { bucket: SignalBucket, runtime: tokio::runtime::Handle },
}

pub(crate) enum Command {
    Append(AppendRequest),
    /// Freeze the active buffer; answers whether there was anything to freeze.
    Freeze(oneshot::Sender<bool>),
    /// Freeze whatever is buffered, close the segment and stop.
    Close(oneshot::Sender<()>),
    /// Test hook: block the writer until `resume` fires, after confirming on `paused`.
    #[cfg(test)]
    Pause {
        paused: oneshot::Sender<()>,
        resume: oneshot::Receiver<()>,
    },
}

pub(crate) struct WalWriter {
    pub shard: usize,
    sink: WalSink,
    /// The next segment's (or object's) sequence number; everything
    /// buffered is in segments below it.
    next_seq: u64,
    buffer: Arc<ShardBuffer>,
    /// Set once another node fenced this writer off; every later append is refused.
    fenced: Arc<AtomicBool>,
    metrics: SignalMetrics,
}

impl WalWriter {
    pub fn new(
        sink: WalSink,
        next_seq: u64,
        buffer: Arc<ShardBuffer>,
        fenced: Arc<AtomicBool>,
        metrics: SignalMetrics,
    ) -> Self {
        Self { shard: buffer.shard, sink, next_seq, buffer, fenced, metrics }
    }

    /// Starts the writer thread; it runs until `Close` or until every sender is dropped.
    pub fn spawn(self, rx: mpsc::Receiver<Command>) -> std::io::Result<std::thread::JoinHandle<()>> {
        // Linux keeps 15 bytes of a thread name: "wal-metrics-12".
        let name = format!("wal-{}-{}", self.buffer.signal, self.shard);
        std::thread::Builder::new().name(name).spawn(move || self.run(rx))
    }

    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut next: Option<Command> = None;
        loop {
            let command = match next.take() {
                Some(command) => command,
                None => match rx.blocking_recv() {
                    Some(command) => command,
                    None => break,
                },
            };
            match command {
                Command::Append(first) => {
                    let mut bytes = frame_len(first.payload.len());
                    let mut group = vec![first];
                    while bytes < MAX_GROUP_BYTES {
                        match rx.try_recv() {
                            Ok(Command::Append(append)) => {
                                bytes += frame_len(append.payload.len());
                                group.push(append);
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(group, bytes);
                }
                Command::Freeze(ack) => {
                    let _ = ack.send(self.freeze());
                }
                Command::Close(ack) => {
                    self.freeze();
                    if let WalSink::Local { segment, .. } = &mut self.sink {
                        *segment = None;
                    }
                    let _ = ack.send(());
                    return;
                }
                #[cfg(test)]
                Command::Pause { paused, resume } => {
                    let _ = paused.send(());
                    let _ = resume.blocking_recv();
                }
            }
        }
    }

    /// Writes a group of records with one fsync (or one object), publishes
    /// them to the buffer, then acknowledges them.
    fn commit(&mut self, group: Vec<AppendRequest>, bytes: usize) {
        if self.fenced.load(Ordering::SeqCst) {
            return fail_all(group, &WalRefusal::Fenced);
        }
        let mut frames = Vec::with_capacity(bytes);
        for append in &group {
            encode_frame(&append.payload, &mut frames);
        }
        let frames_len = frames.len();
        let written = match &mut self.sink {
            WalSink::Local { dir, segment } => append_local(dir, segment, &mut self.next_seq, &frames),
            WalSink::Remote { bucket, runtime } => {
                let seq = self.next_seq;
                match runtime.block_on(bucket.append_wal(seq, Bytes::from(frames))) {
                    Ok(WalCommit::Created) => {
                        self.next_seq += 1;
                        Ok(())
                    }
                    Ok(WalCommit::Fenced) => {
                        warn!(shard = self.shard, signal = %self.buffer.signal, seq, "another node took this shard over; refusing its writes");
                        self.fenced.store(true, Ordering::SeqCst);
                        Err(WalRefusal::Fenced)
                    }
                    // The number is not used up: the next group asks for it again.
                    Err(e) => {
                        error!(shard = self.shard, signal = %self.buffer.signal, seq, error = %e, "wal object write failed");
                        Err(WalRefusal::Failed(format!("write-ahead log write failed: {e}")))
                    }
                }
            }
        };
        if let Err(refusal) = written {
            return fail_all(group, &refusal);
        }
        self.metrics.wal_fsyncs.inc();
        self.metrics.wal_records.inc_by(group.len() as u64);
        self.metrics.wal_bytes.inc_by(gauge_value(frames_len as u64));
        let mut acks = Vec::with_capacity(group.len());
        self.buffer.append(group.into_iter().map(|append| {
            acks.push(append.ack);
            (append.batch, append.payload.len() as u64)
        }));
        for ack in acks {
            let _ = ack.send(Ok(()));
        }
    }

    /// Freezes the active buffer. Every buffered batch is in a segment below
    /// `next_seq`, so that is the checkpoint the flush may record.
    fn freeze(&mut self) -> bool {
        let frozen = self.buffer.freeze(self.next_seq.saturating_sub(1));
        if frozen && let WalSink::Local { segment, .. } = &mut self.sink {
            // Later batches go to a new segment, which the checkpoint does not cover.
            *segment = None;
        }
        frozen
    }
}

/// Appends `frames` to the current local segment (created, taking the
/// number `next_seq`, when there is none) and syncs it.
fn append_local(
    dir: &std::path::Path,
    current: &mut Option<Segment>,
    next_seq: &mut u64,
    frames: &[u8],
) -> Result<(), WalRefusal> {
    if current.is_none() {
        let segment = Segment::create(dir, *next_seq).map_err(|e| {
            error!(wal = %dir.display(), seq = *next_seq, error = %e, "could not create wal segment");
            WalRefusal::Failed(format!("could not create write-ahead log segment: {e}"))
        })?;
        *next_seq += 1;
        *current = Some(segment);
    }
    let Some(segment) = current.as_mut() else {
        return Err(WalRefusal::Failed("no write-ahead log segment".to_owned()));
    };
    if let Err(e) = segment.append_durably(frames) {
        error!(segment = %segment.path.display(), error = %e, "wal write failed");
        // Cut the partial write off so replay never sees records that were
        // refused, then start a fresh segment for the next group: after a
        // failed fsync the current file cannot be trusted.
        if let Err(e) = segment.truncate_to_len() {
            warn!(segment = %segment.path.display(), error = %e, "could not truncate wal segment after a failed write");
        }
        *current = None;
        return Err(WalRefusal::Failed(format!("write-ahead log write failed: {e}")));
    }
    Ok(())
}

fn fail_all(group: Vec<AppendRequest>, refusal: &WalRefusal) {
    for append in group {
        let _ = append.ack.send(Err(refusal.clone()));
    }
}
