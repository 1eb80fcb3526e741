//! Opening one signal of a shard: bring its directory to a consistent state
//! (blocking code, run on the blocking pool).
//!
//! Files the manifest does not list are leftovers of a flush that crashed
//! before its manifest update and are deleted; WAL segments up to the
//! manifest's checkpoint are already in Parquet and are deleted; later
//! segments are replayed (a torn tail is truncated).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use tracing::{debug, error, info, warn};

use crate::buffer::DataFile;
use crate::dedup::batch_key;
use crate::encryption::{TenantKeys, open_record};
use crate::error::{IoContext, StorageError};
use crate::fsutil::{create_dir_durable, fsync_dir};
use crate::manifest::Manifest;
use crate::parquet_files::rebuild_index;
use crate::signal::SignalSpec;
use crate::tidx::{TraceIndex, sidecar_path};
use crate::wal::{decode_batches, list_segments, replay_segment};

pub(crate) const WAL_DIR: &str = "wal";
/// Prefix of the top-level partition directories of a signal directory.
const PARTITION_PREFIX: &str = "date=";

/// What recovery found on disk.
pub(crate) struct Recovered {
    pub manifest: Manifest,
    pub files: Vec<Arc<DataFile>>,
    pub replayed: Replayed,
    pub next_seq: u64,
    pub wal_bytes: u64,
}

/// Rows replayed from write-ahead log records.
#[derive(Default)]
pub(crate) struct Replayed {
    /// Batches with the encoded size each is accounted for.
    pub batches: Vec<(RecordBatch, u64)>,
    /// The batch key of every record (see `dedup`).
    pub keys: Vec<u128>,
}

impl Replayed {
    /// Decodes one record of the log at `origin` (named in errors).
    /// Sealed records are opened with `keys` first.
    pub fn push_record(
        &mut self,
        record: &[u8],
        spec: &SignalSpec,
        origin: &Path,
        keys: Option<&TenantKeys>,
    ) -> Result<(), StorageError> {
        let payload = open_record(record, keys).map_err(|e| {
            // A missing key is the configuration's fault: the data is intact.
            if e.is_missing_key() {
                StorageError::Config(format!("{}: {e}", origin.display()))
            } else {
                StorageError::corrupt(origin, e.to_string())
            }
        })?;
        let payload = payload.as_ref();
        let decoded = decode_batches(payload, &spec.schema).map_err(|reason| StorageError::corrupt(origin, reason))?;
        // The record's size is accounted to its first batch.
        let mut bytes = payload.len() as u64;
        for batch in decoded {
            self.batches.push((batch, std::mem::take(&mut bytes)));
        }
        self.keys.push(batch_key(payload));
        Ok(())
    }
}

/// Brings the signal directory `dir` of shard `shard` to a consistent state
/// and reads it back.
pub(crate) fn recover(
    shard: usize,
    spec: &SignalSpec,
    dir: &Path,
    keys: Option<&Arc<TenantKeys>>,
) -> Result<Recovered, StorageError> {
    let signal = spec.signal;
    let wal_dir = dir.join(WAL_DIR);
    create_dir_durable(&wal_dir).ctx(|| format!("creating {}", wal_dir.display()))?;
    let mut manifest = Manifest::load(dir)?;
    let listed: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let orphans = remove_orphans(shard, dir, &listed)?;

    let mut files = Vec::with_capacity(manifest.files.len());
    let mut missing = Vec::new();
    for meta in &manifest.files {
        let path = dir.join(&meta.path);
        if !path.is_file() {
            error!(shard, %signal, file = %meta.path, "a file listed in the manifest is missing; its rows are lost");
            missing.push(meta.path.clone());
            continue;
        }
        let index = match spec.trace_index_column {
            Some(column) => Some(load_or_rebuild_index(shard, &path, column, keys)?),
            None => None,
        };
        files.push(Arc::new(DataFile::new(dir, meta.clone(), index)?));
    }
    if !missing.is_empty() {
        manifest.files.retain(|f| !missing.contains(&f.path));
        manifest.store(dir)?;
    }

    let mut replayed = Replayed::default();
    let mut wal_bytes = 0;
    let mut records = 0;
    let mut last_seq = manifest.wal_checkpoint;
    let mut obsolete = false;
    for (seq, path) in list_segments(&wal_dir)? {
        last_seq = last_seq.max(seq);
        if seq <= manifest.wal_checkpoint {
            // Its rows are in Parquet: the crash came between manifest and deletion.
            std::fs::remove_file(&path).ctx(|| format!("deleting {}", path.display()))?;
            obsolete = true;
            continue;
        }
        let replay = replay_segment(&path, |record| replayed.push_record(record, spec, &path, keys.map(Arc::as_ref)))?;
        wal_bytes += replay.valid_bytes;
        records += replay.records;
    }
    if obsolete {
        fsync_dir(&wal_dir).ctx(|| format!("syncing {}", wal_dir.display()))?;
    }
    if files.is_empty() && records == 0 && orphans == 0 {
        debug!(shard, %signal, "opened empty shard");
    } else {
        info!(
            shard,
            %signal,
            files = files.len(),
            orphans,
            wal_records = records,
            wal_checkpoint = manifest.wal_checkpoint,
            "opened shard"
        );
    }
    Ok(Recovered { manifest, files, replayed, next_seq: last_seq + 1, wal_bytes })
}

fn load_or_rebuild_index(
    shard: usize,
    parquet: &Path,
    column: &str,
    keys: Option<&Arc<TenantKeys>>,
) -> Result<TraceIndex, StorageError> {
    let sidecar = sidecar_path(parquet);
    match TraceIndex::read(&sidecar) {
        Ok(index) => Ok(index),
        Err(e) => {
            warn!(shard, file = %parquet.display(), error = %e, "trace index unreadable; rebuilding it");
            let index = rebuild_index(parquet, column, keys)?;
            index.write(&sidecar)?;
            if let Some(parent) = sidecar.parent() {
                fsync_dir(parent).ctx(|| format!("syncing {}", parent.display()))?;
            }
            Ok(index)
        }
    }
}

/// The span file stem of a sidecar's path (trace index or derived rows).
fn sidecar_stem(relative: &str) -> Option<&str> {
    let (stem, extension) = relative.rsplit_once('.')?;
    (extension == "tidx" || crate::derived::SIDECAR_EXTENSIONS.contains(&extension)).then_some(stem)
}

/// Deletes files in the partition directories (`date=…/hour=…`) of the
/// signal directory that the manifest does not reference (leftovers of a
/// flush that crashed before its manifest update) and partition directories
/// left empty. The WAL and the manifest are not touched. Returns how many
/// files were deleted.
fn remove_orphans(shard: usize, signal_dir: &Path, listed: &HashSet<&str>) -> Result<usize, StorageError> {
    let mut removed = 0;
    let mut dirs = Vec::new();
    let mut pending = Vec::new();
    for entry in std::fs::read_dir(signal_dir).ctx(|| format!("listing {}", signal_dir.display()))? {
        let entry = entry.ctx(|| format!("listing {}", signal_dir.display()))?;
        let is_dir = entry.file_type().ctx(|| format!("reading {}", entry.path().display()))?.is_dir();
        if is_dir && entry.file_name().to_str().is_some_and(|n| n.starts_with(PARTITION_PREFIX)) {
            pending.push(entry.path());
        }
    }
    while let Some(dir) = pending.pop() {
        dirs.push(dir.clone());
        for entry in std::fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
            let path = entry.path();
            if entry.file_type().ctx(|| format!("reading {}", path.display()))?.is_dir() {
                pending.push(path);
                continue;
            }
            let Some(relative) = path.strip_prefix(signal_dir).ok().and_then(|p| p.to_str()) else {
                continue;
            };
            let orphan = if relative.ends_with(".tmp") {
                true
            } else if relative.ends_with(".parquet") {
                !listed.contains(relative)
            } else if let Some(stem) = sidecar_stem(relative) {
                !listed.contains(format!("{stem}.parquet").as_str())
            } else {
                false
            };
            if orphan {
                info!(shard, file = %path.display(), "deleting a file of an unfinished flush");
                std::fs::remove_file(&path).ctx(|| format!("deleting {}", path.display()))?;
                removed += 1;
            }
        }
    }
    // Deepest first, so emptied hour directories let their date directory go too.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in dirs {
        // Fails, harmlessly, for directories that still hold files.
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(removed)
}
