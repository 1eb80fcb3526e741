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

use crate::{Storage, TenantStorages};

/// A gap between two ticks longer than this many intervals means the node
/// was paused.
const PAUSE_FACTOR: u32 = 3;

/// Runs until `stop` is cancelled, checking every `interval`; then, or
/// as soon as the node is draining ([`Storage::start_draining`]), hands
/// the node's shards off (see [`hand_off`]) for at most `hand_off_within`.
pub async fn keep_owned_shards(
    storage: Arc<Storage>,
    nodes: Arc<StorageNodes>,
    node_id: String,
    interval: Duration,
    hand_off_within: Duration,
    stop: CancellationToken,
) {
    follow_ownership(&storage, &nodes, &node_id, interval, &stop).await;
    hand_off(&storage, &nodes, &node_id, interval, hand_off_within).await;
    // A drain asked for over the admin port leaves the node up, holding
    // nothing, until it is stopped.
    stop.cancelled().await;
}

/// [`keep_owned_shards`] for every tenant's storage: one loop per tenant,
/// started when the tenant is opened or found (in the data directory or the
/// object store, checked every `interval`), all handing off together on
/// `stop` or a drain. Returns once every tenant's hand-off is done.
pub async fn keep_tenants_owned_shards(
    tenants: Arc<TenantStorages>,
    nodes: Arc<StorageNodes>,
    node_id: String,
    interval: Duration,
    hand_off_within: Duration,
    stop: CancellationToken,
) {
    let mut loops = tokio::task::JoinSet::new();
    let mut following = BTreeSet::new();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            biased;
            _ = stop.cancelled() => true,
            _ = ticks.tick() => false,
        };
        if !stopping
            && !tenants.is_draining()
            && let Err(e) = tenants.discover().await
        {
            warn!(error = %e, "could not look for new tenants; will try again");
        }
        // Tenants opened since the last tick, also on the way out: their
        // loops then go straight to the hand-off.
        for (tenant, storage) in tenants.opened() {
            if following.insert(tenant) {
                let (nodes, node_id, stop) = (Arc::clone(&nodes), node_id.clone(), stop.clone());
                loops.spawn(keep_owned_shards(storage, nodes, node_id, interval, hand_off_within, stop));
            }
        }
        if stopping {
            break;
        }
    }
    while let Some(done) = loops.join_next().await {
        if let Err(e) = done {
            error!(error = %e, "a tenant's shard ownership task failed");
        }
    }
}

/// Keeps the held shards equal to the owned ones until `stop` or a drain.
async fn follow_ownership(
    storage: &Storage,
    nodes: &StorageNodes,
    node_id: &str,
    interval: Duration,
    stop: &CancellationToken,
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
        if storage.is_draining() {
            return;
        }
        let stalled = last_tick.elapsed();
        last_tick = Instant::now();
        if stalled > PAUSE_FACTOR * interval {
            // Frozen (SIGSTOP, a VM pause) or starved: the others may have
            // taken shards over meanwhile. Find out before serving more reads.
            warn!(stalled = ?stalled, "this node was paused; checking which shards it still owns");
            storage.check_ownership().await;
        }
        let owned: BTreeSet<usize> = nodes.own_shards(node_id).into_iter().collect();
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

/// Hands this node's shards to the members that own them without it: it
/// flushes (so they replay little), says it is draining (node info), and
/// keeps serving each shard until the bucket shows another node took it
/// over; then it drops it. Shards no live member could take stay (they fail
/// over, or wait for this node, as after a crash). Returns when nothing
/// with a taker is left, or after `within`.
async fn hand_off(storage: &Storage, nodes: &StorageNodes, node_id: &str, interval: Duration, within: Duration) {
    if let Err(e) = storage.flush_all().await {
        warn!(error = %e, "could not flush before handing shards off; the next owners replay the wal");
    }
    storage.start_draining();
    let deadline = Instant::now() + within;
    loop {
        storage.check_ownership().await;
        for shard in storage.fenced_shards() {
            if let Err(e) = storage.release(shard).await {
                error!(shard, error = %e, "could not drop a shard handed off");
            }
        }
        let waiting = nodes.shards_with_a_taker(node_id, &storage.local_shards());
        if waiting.is_empty() {
            info!(kept = storage.local_shards().len(), "handed every shard off that another node can take");
            // Answer as draining a little longer, so that every member's
            // checks see it before this node stops answering (a member that
            // did not would wait `failover_after` to route around it).
            tokio::time::sleep(2 * interval).await;
            return;
        }
        if Instant::now() >= deadline {
            warn!(waiting = ?waiting, "shards not taken over in time; they fail over after this node stops");
            return;
        }
        tokio::time::sleep(interval).await;
    }
}
