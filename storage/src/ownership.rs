//! A failover storage node's share of the shards, kept equal to what the
//! live members give it: every tick it compares the shards it holds with
//! [`StorageNodes::own_shards`] (this node counts itself live), lets go
//! of shards it no longer owns (a failed node came back), takes over
//! shards it now owns (a node failed) and takes back shards another node
//! fenced it off from while it still owns them (it was frozen or cut off
//! for a while). Who wins when two nodes disagree for a moment is settled
//! by the object store's conditional writes, not by this loop. After a
//! pause (a gap between ticks) it first asks the bucket which of its
//! shards another node took over, so a node that wakes up stops serving
//! them before its next write would tell it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skein_model::cluster::StorageNodes;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// A gap between two ticks longer than this many intervals means the node
/// was paused.
const PAUSE_FACTOR: u32 = 3;

use crate::Storage;

/// Runs until `stop` is cancelled, checking every `interval`.
pub async fn keep_owned_shards(
    storage: Arc<Storage>,
    nodes: Arc<StorageNodes>,
    node_id: String,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_tick = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let stalled = last_tick.elapsed();
        last_tick = Instant::now();
        if stalled > PAUSE_FACTOR * interval {
            // Frozen (SIGSTOP, a VM pause) or starved: the others may have
            // taken shards over meanwhile. Find out before serving more reads.
            warn!(stalled = ?stalled, "this node was paused; checking which shards it still owns");
            storage.check_ownership().await;
        }
        let owned: BTreeSet<usize> = nodes.own_shards(&node_id).into_iter().collect();
        let held: BTreeSet<usize> = storage.local_shards().into_iter().collect();
        let fenced = storage.fenced_shards();
        for &shard in held.difference(&owned) {
            info!(shard, node = %node_id, "a shard's owner is back; letting the shard go");
            if let Err(e) = storage.release(shard).await {
                error!(shard, error = %e, "could not release a shard");
            }
        }
        for shard in fenced.iter().copied().filter(|s| !owned.contains(s)) {
            if let Err(e) = storage.release(shard).await {
                error!(shard, error = %e, "could not drop a shard another node took over");
            }
        }
        for &shard in owned.difference(&held) {
            if stop.is_cancelled() {
                return;
            }
            info!(shard, node = %node_id, "taking a shard over");
            if let Err(e) = storage.acquire(shard).await {
                error!(shard, error = %e, "could not take a shard over; will try again");
            }
        }
    }
}
