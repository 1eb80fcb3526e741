//! The data directory's top level: shard directory names, its lock, and
//! the checks made before any shard is opened (one process at a time; the
//! shard count may not shrink; the layout of earlier versions is refused).

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

/// The file a process holds an exclusive lock on while it uses the data
/// directory; it holds the process ID, for the error the next one gets.
const LOCK_FILE: &str = "LOCK";

/// An exclusive advisory lock (`flock`) on a data directory, held until
/// dropped. Two processes on one directory would both replay and append to
/// the same write-ahead logs and rewrite the same manifests, losing or
/// doubling acknowledged data; the kernel releases the lock when its holder
/// dies, even by `kill -9`, so a crash never leaves a stale lock behind.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    pub(crate) fn acquire(data_dir: &Path) -> Result<Self, StorageError> {
        use std::io::Write;
        let path = data_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).ok().and_then(|text| text.trim().parse().ok());
                return Err(StorageError::DataDirInUse { path: data_dir.to_owned(), holder });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).ctx(|| format!("locking {}", path.display()));
            }
        }
        file.set_len(0).ctx(|| format!("writing {}", path.display()))?;
        writeln!(file, "{}", std::process::id()).ctx(|| format!("writing {}", path.display()))?;
        Ok(Self { _file: file })
    }
}

/// Records the shard count a data directory was created with: the hash
/// that places traces depends on it, so it may never change.
const SHARD_COUNT_FILE: &str = "shard_count";

/// Checks the shard directories under `data_dir` before anything is opened
/// (and so before recovery deletes files it does not recognize), and pins
/// the directory's shard count on first use.
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
    let pinned_path = data_dir.join(SHARD_COUNT_FILE);
    let pinned = match std::fs::read_to_string(&pinned_path) {
        Ok(text) => Some(text.trim().parse::<usize>().map_err(|_| {
            StorageError::Config(format!("{} does not hold a shard count: {text:?}", pinned_path.display()))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).ctx(|| format!("reading {}", pinned_path.display())),
    };
    match (pinned, highest) {
        // Refused: traces would hash to other shards than the ones holding them.
        (Some(pinned), _) if pinned != shards => Err(StorageError::Config(format!(
            "{} was created with {pinned} shards but storage.shards is {shards}; the shard count of a data \
             directory (and of a cluster) is fixed",
            data_dir.display()
        ))),
        (None, Some(id)) if id >= shards => Err(StorageError::Config(format!(
            "{} holds data of {} shards but storage.shards is {shards}; the shard count of a data directory (and \
             of a cluster) is fixed",
            data_dir.display(),
            id + 1
        ))),
        (Some(_), _) => Ok(()),
        (None, _) => crate::fsutil::write_atomically(&pinned_path, format!("{shards}\n").as_bytes())
            .ctx(|| format!("writing {}", pinned_path.display())),
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
    use crate::signal::SignalExt;

    #[test]
    fn one_holder_of_a_data_directory_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = DataDirLock::acquire(dir.path()).expect("a free directory locks");
        // Another open file description is refused, as another process is.
        match DataDirLock::acquire(dir.path()) {
            Err(e @ StorageError::DataDirInUse { .. }) => {
                let StorageError::DataDirInUse { holder, .. } = &e else { unreachable!() };
                assert_eq!(*holder, Some(std::process::id()));
                assert!(
                    e.to_string().contains(&format!("in use by another Skein process (pid {})", std::process::id()))
                );
            }
            other => panic!("a held directory locked again: {other:?}"),
        }
        drop(held);
        DataDirLock::acquire(dir.path()).expect("free again once released");
    }

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
