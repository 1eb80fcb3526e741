//! The WAL writer thread of one signal of a shard: group commit.
//!
//! Writers enqueue `Append` commands on a bounded channel (full means
//! overloaded). The thread takes every pending append, writes them all to
//! the current segment, issues one fdatasync, appends the batches to the
//! shard's buffer and only then acknowledges them. Freezing the buffer for a
//! flush goes through the same queue, so every batch acknowledged before
//! the freeze is in the frozen buffer and in segments up to its `wal_seq`,
//! and every later batch is in the new active buffer and in later segments.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use crate::buffer::ShardBuffer;
use crate::metrics::{SignalMetrics, gauge_value};
use crate::wal::{Segment, encode_frame, frame_len};

/// At most this many bytes are written per group commit; the rest of the
/// queue goes into the next group.
const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;

pub(crate) struct AppendRequest {
    pub payload: Vec<u8>,
    pub batch: RecordBatch,
    /// `Err` carries why the WAL could not take the batch.
    pub ack: oneshot::Sender<Result<(), String>>,
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
    pub wal_dir: PathBuf,
    /// Created lazily by the first append after a freeze, so segments are never empty.
    segment: Option<Segment>,
    /// The next segment's sequence number; everything buffered is in
    /// segments below it.
    next_seq: u64,
    buffer: Arc<ShardBuffer>,
    metrics: SignalMetrics,
}

impl WalWriter {
    pub fn new(wal_dir: PathBuf, next_seq: u64, buffer: Arc<ShardBuffer>, metrics: SignalMetrics) -> Self {
        Self { shard: buffer.shard, wal_dir, segment: None, next_seq, buffer, metrics }
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
                    self.segment = None;
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

    /// Writes a group of records with one fsync, publishes them to the
    /// buffer, then acknowledges them.
    fn commit(&mut self, group: Vec<AppendRequest>, bytes: usize) {
        let (shard, signal) = (self.shard, self.buffer.signal);
        let segment = match self.current_segment() {
            Ok(segment) => segment,
            Err(reason) => return fail_all(group, &reason),
        };
        let mut frames = Vec::with_capacity(bytes);
        for append in &group {
            encode_frame(&append.payload, &mut frames);
        }
        if let Err(e) = segment.append_durably(&frames) {
            error!(shard, %signal, segment = %segment.path.display(), error = %e, "wal write failed");
            // Cut the partial write off so replay never sees records that were
            // refused, then start a fresh segment for the next group: after a
            // failed fsync the current file cannot be trusted.
            if let Err(e) = segment.truncate_to_len() {
                warn!(shard, %signal, segment = %segment.path.display(), error = %e, "could not truncate wal segment after a failed write");
            }
            self.segment = None;
            return fail_all(group, &format!("write-ahead log write failed: {e}"));
        }
        self.metrics.wal_fsyncs.inc();
        self.metrics.wal_records.inc_by(group.len() as u64);
        self.metrics.wal_bytes.inc_by(gauge_value(frames.len() as u64));
        let mut acks = Vec::with_capacity(group.len());
        self.buffer.append(group.into_iter().map(|append| {
            acks.push(append.ack);
            (append.batch, append.payload.len() as u64)
        }));
        for ack in acks {
            let _ = ack.send(Ok(()));
        }
    }

    fn current_segment(&mut self) -> Result<&mut Segment, String> {
        if self.segment.is_none() {
            let segment = Segment::create(&self.wal_dir, self.next_seq).map_err(|e| {
                error!(shard = self.shard, signal = %self.buffer.signal, seq = self.next_seq, error = %e, "could not create wal segment");
                format!("could not create write-ahead log segment: {e}")
            })?;
            self.next_seq += 1;
            self.segment = Some(segment);
        }
        self.segment.as_mut().ok_or_else(|| "no write-ahead log segment".to_owned())
    }

    /// Freezes the active buffer. Every buffered batch is in a segment below
    /// `next_seq`, so that is the checkpoint the flush may record.
    fn freeze(&mut self) -> bool {
        let frozen = self.buffer.freeze(self.next_seq.saturating_sub(1));
        if frozen {
            // Later batches go to a new segment, which the checkpoint does not cover.
            self.segment = None;
        }
        frozen
    }
}

fn fail_all(group: Vec<AppendRequest>, reason: &str) {
    for append in group {
        let _ = append.ack.send(Err(reason.to_owned()));
    }
}
