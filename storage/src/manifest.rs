//! The `manifest.json` of one signal of a shard: the Parquet files that hold
//! its data, and the WAL checkpoint (the highest segment whose data is in
//! those files).
//!
//! The manifest is the commit point of a flush and of retention: it is
//! replaced atomically, and files it does not list are orphans to delete.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, StorageError};
use crate::fsutil::{tmp_path, write_atomically};

pub(crate) const MANIFEST_FILE: &str = "manifest.json";
const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub version: u32,
    /// Bumped by every commit; with an object store, the number of the
    /// manifest version in the bucket (`manifest/<generation>.json`).
    #[serde(default)]
    pub generation: u64,
    /// Every WAL segment with a sequence number up to this is in Parquet.
    pub wal_checkpoint: u64,
    pub files: Vec<FileMeta>,
}

/// One Parquet file, with what pruning needs without opening it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FileMeta {
    /// Path relative to the signal directory, `/`-separated.
    pub path: String,
    pub size_bytes: u64,
    pub rows: u64,
    /// Hour partition: hours since the Unix epoch of the partition column.
    pub hour: i64,
    /// Min and max of the signal's range columns, by column name. A column
    /// that is absent, or null in every row, has no entry: nothing is known.
    pub ranges: BTreeMap<String, TimeRange>,
}

/// Inclusive range of a timestamp column's values in a file, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TimeRange {
    pub min_ns: i64,
    pub max_ns: i64,
}

impl Default for Manifest {
    fn default() -> Self {
        Self { version: VERSION, generation: 0, wal_checkpoint: 0, files: Vec::new() }
    }
}

impl Manifest {
    /// Loads the manifest in `dir`; a signal without one is empty. A
    /// leftover temporary manifest (crash before the rename) is removed.
    pub fn load(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(MANIFEST_FILE);
        let tmp = tmp_path(&path);
        if tmp.exists() {
            std::fs::remove_file(&tmp).ctx(|| format!("removing {}", tmp.display()))?;
        }
        Self::read(dir)
    }

    /// Reads the manifest in `dir` as it is on disk.
    pub fn read(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).ctx(|| format!("reading {}", path.display())),
        };
        Self::parse(&bytes, &path)
    }

    /// Parses a manifest read from `origin` (a file or an object key, for messages).
    pub fn parse(bytes: &[u8], origin: &Path) -> Result<Self, StorageError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| StorageError::corrupt(origin, e.to_string()))?;
        if manifest.version != VERSION {
            return Err(StorageError::corrupt(
                origin,
                format!("unsupported manifest version {} (expected {VERSION})", manifest.version),
            ));
        }
        Ok(manifest)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, StorageError> {
        serde_json::to_vec_pretty(self).map_err(|e| StorageError::Task(e.to_string()))
    }

    /// Atomically replaces the manifest in `dir` (durable on return).
    pub fn store(&self, dir: &Path) -> Result<(), StorageError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = self.to_json()?;
        write_atomically(&path, &bytes).ctx(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Manifest::load(dir.path()).expect("loads"), Manifest::default());
        let manifest = Manifest {
            version: VERSION,
            generation: 3,
            wal_checkpoint: 9,
            files: vec![FileMeta {
                path: "date=2023-11-14/hour=22/a.parquet".into(),
                size_bytes: 10,
                rows: 2,
                hour: 472_222,
                ranges: BTreeMap::from([("start_time".to_owned(), TimeRange { min_ns: 1, max_ns: 2 })]),
            }],
        };
        manifest.store(dir.path()).expect("stores");
        std::fs::write(tmp_path(&dir.path().join(MANIFEST_FILE)), b"{half").expect("writes");
        assert_eq!(Manifest::load(dir.path()).expect("loads"), manifest);
        assert!(!tmp_path(&dir.path().join(MANIFEST_FILE)).exists(), "leftover tmp removed");

        std::fs::write(dir.path().join(MANIFEST_FILE), b"{not json").expect("writes");
        let err = Manifest::load(dir.path()).expect_err("corrupt");
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    }
}
