//! The write-ahead log in the object store, for storage nodes whose shards
//! fail over to another node (a cluster with an object store).
//!
//! Each group commit of the WAL writer is one immutable object
//! `wal/<seq:020>.wal` under the signal's prefix, holding the same framed
//! records as a local segment, and created with a conditional create
//! (`If-None-Match: *`). Sequence numbers share the manifest's checkpoint
//! space: every object up to `wal_checkpoint` is in Parquet, later ones are
//! replayed by whichever node opens the shard next.
//!
//! **Fencing.** A node taking a shard over first commits a new manifest
//! generation (so the previous owner can no longer commit a flush), then
//! creates the next free WAL sequence number as an empty object. The previous
//! owner's next group commit asks for that same number, finds it taken by
//! other bytes and learns it lost the shard ([`WalCommit::Fenced`]); it
//! never acknowledges anything the new owner did not replay. A writer never
//! skips a number, so the number it asks for next is always the first one
//! created after its last group: the fence. Fences are therefore never
//! deleted (flushes delete only group commits): a node frozen for any
//! length of time between two groups still finds its fence when it wakes.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tracing::{info, warn};

use super::SignalBucket;
use crate::error::StorageError;
use crate::wal::{parse_segment_file_name, segment_file_name};

pub(super) const WAL_PREFIX: &str = "wal";
/// A fence object starts with these bytes. No record can: read as a record
/// length they exceed `MAX_RECORD_BYTES`.
const FENCE_MAGIC: &[u8] = b"SKEIN-FENCE ";
/// The largest fence object (the magic and a generation in decimal); any
/// group commit is larger (a record header and an Arrow IPC stream).
const FENCE_MAX_BYTES: u64 = FENCE_MAGIC.len() as u64 + 20;
/// Attempts of one WAL object create when the store errs without an answer.
const CREATE_ATTEMPTS: usize = 3;

/// What creating a WAL object found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalCommit {
    /// The object now holds these bytes: the group is durable.
    Created,
    /// Another node created this sequence number: it took the shard over.
    Fenced,
}

impl SignalBucket {
    fn wal_key(&self, seq: u64) -> ObjectPath {
        self.prefix.clone().join(WAL_PREFIX).join(segment_file_name(seq))
    }

    /// The sequence numbers and sizes of the WAL objects, ascending.
    pub async fn wal_objects(&self) -> Result<Vec<(u64, u64)>, StorageError> {
        let dir = self.prefix.clone().join(WAL_PREFIX);
        let listed: Vec<_> =
            self.store().list(Some(&dir)).try_collect().await.map_err(self.err(format!("listing {dir}")))?;
        let mut objects: Vec<(u64, u64)> = listed
            .iter()
            .filter_map(|meta| Some((parse_segment_file_name(meta.location.filename()?)?, meta.size)))
            .collect();
        objects.sort_unstable();
        Ok(objects)
    }

    /// Creates WAL object `seq` holding `frames`, unless it exists. An
    /// error that leaves the outcome unknown is resolved by reading the
    /// object back: an earlier attempt of this very call may have landed.
    pub async fn append_wal(&self, seq: u64, frames: Bytes) -> Result<WalCommit, StorageError> {
        let key = self.wal_key(seq);
        let create = PutOptions { mode: PutMode::Create, ..Default::default() };
        let mut last_error = None;
        for _ in 0..CREATE_ATTEMPTS {
            match self.store().put_opts(&key, PutPayload::from_bytes(frames.clone()), create.clone()).await {
                Ok(_) => return Ok(WalCommit::Created),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(source) => last_error = Some(source),
            }
            match self.store().get(&key).await {
                Ok(found) => {
                    let existing = found.bytes().await.map_err(self.err(format!("reading {key}")))?;
                    return Ok(if existing == frames { WalCommit::Created } else { WalCommit::Fenced });
                }
                // Not there: the create failed cleanly and may be tried again.
                Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => last_error = Some(source),
            }
        }
        let source = last_error.unwrap_or_else(|| object_store::Error::Generic {
            store: "wal",
            source: format!("{key} neither created nor found").into(),
        });
        Err(self.err(format!("creating {key}"))(source))
    }

    /// The records of WAL object `seq`.
    pub async fn read_wal(&self, seq: u64) -> Result<Bytes, StorageError> {
        let key = self.wal_key(seq);
        self.bucket.get(&key, &format!("reading {key}")).await
    }

    /// Fences the previous owner's WAL writer: creates the first free
    /// sequence number after the checkpoint and every listed object (the
    /// number the previous owner asks for next) as a fence object naming
    /// `generation`, the manifest generation this node committed to take
    /// the shard (unique to it, so two nodes taking the shard at once cannot
    /// both believe they made the fence). Returns the objects after
    /// `checkpoint` that must be replayed (ascending) and the fence's
    /// number. Call it only after that manifest commit, so the checkpoint
    /// cannot move under it.
    pub async fn fence_wal(&self, checkpoint: u64, generation: u64) -> Result<(Vec<u64>, u64), StorageError> {
        let mut marker = FENCE_MAGIC.to_vec();
        marker.extend_from_slice(generation.to_string().as_bytes());
        let marker = Bytes::from(marker);
        loop {
            let listed = self.wal_objects().await?;
            let last = listed.last().map_or(0, |&(seq, _)| seq);
            let fence = last.max(checkpoint) + 1;
            match self.append_wal(fence, marker.clone()).await? {
                WalCommit::Created => {
                    let replay: Vec<u64> = listed.iter().map(|&(seq, _)| seq).filter(|&seq| seq > checkpoint).collect();
                    info!(shard = self.shard, fence, replay = replay.len(), "fenced the shard's write-ahead log");
                    return Ok((replay, fence));
                }
                // The previous owner committed one more group meanwhile: list again.
                WalCommit::Fenced => continue,
            }
        }
    }

    /// Whether a WAL object is a fence (no records) rather than a group commit.
    pub fn is_fence(object: &[u8]) -> bool {
        object.starts_with(FENCE_MAGIC)
    }

    /// Deletes the group commits up to `checkpoint` (their rows are in
    /// Parquet), keeping fences; returns the bytes freed. Best effort: what
    /// is left is deleted after a later flush.
    pub async fn delete_wal_up_to(&self, checkpoint: u64) -> u64 {
        let objects = match self.wal_objects().await {
            Ok(objects) => objects,
            Err(e) => {
                warn!(shard = self.shard, error = %e, "could not list flushed wal objects");
                return 0;
            }
        };
        let mut freed = 0;
        for (seq, size) in objects.into_iter().filter(|&(seq, size)| seq <= checkpoint && size > FENCE_MAX_BYTES) {
            let key = self.wal_key(seq);
            match self.store().delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => freed += size,
                Err(e) => warn!(shard = self.shard, key = %key, error = %e, "could not delete a flushed wal object"),
            }
        }
        freed
    }
}
