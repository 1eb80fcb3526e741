//! Noticing that files changed on disk. Polling the metadata is what works
//! everywhere, including Kubernetes Secret volumes, which swap a symlink
//! rather than write the file (inotify-based watchers miss that).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

/// How often watched files are checked.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// What identifies one version of a file: its modification time and size
/// (`None` while it cannot be read).
type Stamp = Option<(SystemTime, u64)>;

async fn stamp(path: &Path) -> Stamp {
    let metadata = tokio::fs::metadata(path).await.ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

async fn stamps(paths: &[PathBuf]) -> Vec<Stamp> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        out.push(stamp(path).await);
    }
    out
}

/// Calls `reload` (on a blocking thread: it reads files) whenever any of
/// `paths` changes, until `shutdown`.
pub async fn watch_files(paths: Vec<PathBuf>, shutdown: CancellationToken, reload: impl Fn() + Send + Sync + 'static) {
    let reload = Arc::new(reload);
    let mut seen = stamps(&paths).await;
    let mut ticks = tokio::time::interval(WATCH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let now = stamps(&paths).await;
        if now != seen {
            seen = now;
            let reload = Arc::clone(&reload);
            // A panic in a reload is a bug; the old version stays in use.
            let _ = tokio::task::spawn_blocking(move || reload()).await;
        }
    }
}
