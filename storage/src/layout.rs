//! The data directory's top level: shard directory names, and the checks
//! made before any shard is opened (the shard count may not shrink; the
//! layout of earlier versions is refused).

use std::path::{Path, PathBuf};

use crate::error::{IoContext, StorageError};
use crate::manifest::MANIFEST_FILE;
use crate::recovery::WAL_DIR;
use crate::signal::{Signal, SignalSpec};

pub(crate) fn shard_dir_name(shard: usize) -> String {
    format!("shard-{shard:04}")
}

/// The shard number of a shard directory name.
pub(crate) fn parse_shard_dir_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("shard-")?;
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `<data_dir>/shard-NNNN/<signal>/`.
pub(crate) fn signal_dir(data_dir: &Path, shard: usize, spec: &SignalSpec) -> PathBuf {
    data_dir.join(shard_dir_name(shard)).join(spec.dir)
}

/// Checks the shard directories under `data_dir` before anything is opened
/// (and so before recovery deletes files it does not recognize).
pub(crate) fn check_data_dir(data_dir: &Path, shards: usize) -> Result<(), StorageError> {
    let mut highest = None;
    for entry in std::fs::read_dir(data_dir).ctx(|| format!("listing {}", data_dir.display()))? {
        let entry = entry.ctx(|| format!("listing {}", data_dir.display()))?;
        let Some(id) = entry.file_name().to_str().and_then(parse_shard_dir_name) else {
            continue;
        };
        highest = highest.max(Some(id));
        check_not_old_layout(&entry.path())?;
    }
    match highest {
        // Refused: the missing shards' data would silently disappear from queries.
        Some(id) if id >= shards => Err(StorageError::Config(format!(
            "{} holds data of {} shards but storage.shards is {shards}; the shard count can grow but not shrink",
            data_dir.display(),
            id + 1
        ))),
        _ => Ok(()),
    }
}

/// Before metrics, a shard directory held one signal directly: its
/// `manifest.json` and `wal/` sat in `shard-NNNN/`. Opening such a directory
/// would treat its span files as orphans and delete them, so it is refused.
fn check_not_old_layout(shard_dir: &Path) -> Result<(), StorageError> {
    let old = [MANIFEST_FILE, WAL_DIR].into_iter().map(|name| shard_dir.join(name)).find(|p| p.exists());
    match old {
        None => Ok(()),
        Some(found) => {
            let signals: Vec<String> = Signal::ALL.iter().map(|s| format!("{}/", s.name())).collect();
            Err(StorageError::UnsupportedLayout {
                path: shard_dir.to_owned(),
                reason: format!(
                    "it has {} directly in the shard directory, the layout of an earlier Skein version; this \
                     version keeps each signal in its own directory ({}) and does not migrate data. Move the data \
                     directory aside (or delete it) and start again",
                    found.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    signals.join(", ")
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_dir_names() {
        assert_eq!(shard_dir_name(7), "shard-0007");
        assert_eq!(parse_shard_dir_name("shard-0007"), Some(7));
        assert_eq!(parse_shard_dir_name("shard-7"), None);
        assert_eq!(parse_shard_dir_name("other"), None);
        let dir = signal_dir(Path::new("/data"), 3, Signal::Metrics.spec());
        assert_eq!(dir, Path::new("/data/shard-0003/metrics"));
    }
}
