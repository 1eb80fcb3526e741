//! Small filesystem helpers for crash-safe file replacement.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Makes the directory entries of `dir` (creations, renames, deletions) durable.
pub(crate) fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents, syncing each parent whose entries changed.
pub(crate) fn create_dir_durable(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// The temporary name a file is written under before it is renamed into place.
pub(crate) fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Replaces `path` with `bytes` atomically: write a temp file, fsync it,
/// rename it over `path`, fsync the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// Removes `dir` and then its parents, up to (not including) `stop`, while they are empty.
pub(crate) fn remove_empty_dirs(dir: &Path, stop: &Path) {
    let mut current = Some(dir);
    while let Some(d) = current {
        if d == stop || !d.starts_with(stop) {
            break;
        }
        // Fails (and stops) when the directory is not empty.
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        current = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_and_dir_helpers() {
        let root = tempfile::tempdir().expect("tempdir");
        let nested = root.path().join("a/b/c");
        create_dir_durable(&nested).expect("creates");
        assert!(nested.is_dir());
        let file = nested.join("x.json");
        write_atomically(&file, b"one").expect("writes");
        write_atomically(&file, b"two").expect("replaces");
        assert_eq!(std::fs::read(&file).expect("reads"), b"two");
        assert!(!tmp_path(&file).exists());
        remove_empty_dirs(&nested, root.path());
        assert!(nested.exists(), "not empty, kept");
        std::fs::remove_file(&file).expect("removes");
        remove_empty_dirs(&nested, root.path());
        assert!(!root.path().join("a").exists());
        assert!(root.path().exists());
    }
}
