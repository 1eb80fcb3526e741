//! The storage nodes of a cluster as every member sees them: the static
//! list of IDs and addresses, one lazily connected Flight channel per node,
//! and a health check loop that asks each node who it is (catching a wrong
//! address or a different shard count at join).
//!
//! **Failover.** When the storage nodes keep their WAL in the object store
//! (they say so in [`NodeInfo::failover`]), a node that has failed every
//! check for `failover_after` no longer owns shards: each of its shards
//! goes to the live node ranked next for it ([`ShardMap::live_owner_index`]).
//! Collectors route writes, query nodes route scans and storage nodes take
//! shards over by this same rule, each from its own checks; the object
//! store's conditional writes keep two nodes that disagree for a moment
//! from both committing (see docs/cluster.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arrow_flight::{Action, FlightClient};
use futures::TryStreamExt;
use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tracing::{error, info, warn};

use super::{ACTION_NODE_INFO, NodeInfo};
use crate::security::ClusterTls;
use crate::{ModelError, ShardMap};

/// Largest gRPC message exchanged with storage nodes (a write is one
/// collector request at most, a scan streams many smaller messages).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// One `storage_nodes` entry: `id=host:port`, or a bare `id` where only the
/// IDs matter (on storage nodes themselves).
pub fn parse_storage_node(entry: &str) -> Result<(String, Option<String>), String> {
    let (id, address) = match entry.split_once('=') {
        Some((id, address)) => (id.trim(), Some(address.trim())),
        None => (entry.trim(), None),
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(format!("storage node entry {entry:?}: the ID must be letters, digits, '-', '_' or '.'"));
    }
    match address {
        Some("") => Err(format!("storage node entry {entry:?} has an empty address")),
        Some(address) => Ok((id.to_owned(), Some(address.to_owned()))),
        None => Ok((id.to_owned(), None)),
    }
}

/// Timeouts for talking to storage nodes.
#[derive(Debug, Clone, Copy)]
pub struct NodeTimeouts {
    /// To establish a connection.
    pub connect: Duration,
    /// For one write or node-info call (scans are bounded by the query's own limit).
    pub request: Duration,
    /// How long a node must fail every health check before its shards
    /// move to live nodes (only where the storage nodes support failover).
    pub failover_after: Duration,
}

/// What the last health check of a node found.
#[derive(Debug, Clone, Default)]
pub struct NodeHealth {
    pub healthy: bool,
    /// Why the node is not healthy.
    pub error: Option<String>,
    /// What the node reported at its last successful check.
    pub info: Option<NodeInfo>,
    pub checked_at: Option<SystemTime>,
    /// When a check last passed.
    pub healthy_at: Option<Instant>,
}

/// One storage node.
#[derive(Debug)]
pub struct StorageNode {
    pub id: String,
    pub address: String,
    channel: Channel,
    health: RwLock<NodeHealth>,
    up: Gauge<i64, AtomicI64>,
}

impl StorageNode {
    /// A Flight client over the node's shared channel (cheap; reconnects as needed).
    pub fn flight(&self) -> FlightClient {
        FlightClient::new_from_inner(
            arrow_flight::flight_service_client::FlightServiceClient::new(self.channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    pub fn health(&self) -> NodeHealth {
        self.health.read().clone()
    }

    /// Asks the node for its [`NodeInfo`].
    pub async fn node_info(&self) -> Result<NodeInfo, String> {
        let mut client = self.flight();
        let action = Action { r#type: ACTION_NODE_INFO.into(), body: Default::default() };
        let bodies: Vec<_> = client
            .do_action(action)
            .await
            .map_err(|e| error_chain(&e))?
            .try_collect()
            .await
            .map_err(|e| error_chain(&e))?;
        let body = bodies.first().ok_or("the node sent no node info")?;
        serde_json::from_slice(body).map_err(|e| format!("the node info does not parse: {e}"))
    }
}

/// An error and its causes, `: `-separated, each said once: a refused TLS
/// handshake reads "transport error" alone, the certificate problem is
/// further down.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

/// Every storage node of the cluster and the shard map over them.
#[derive(Debug)]
pub struct StorageNodes {
    map: ShardMap,
    /// In the map's node order.
    nodes: Vec<Arc<StorageNode>>,
    changes: Counter,
    failover_after: Duration,
    /// Whether a storage node reported that shards fail over.
    failover: AtomicBool,
    /// A node never seen healthy counts as failed this long after this.
    started: Instant,
    /// Whether connections use `[cluster.tls]`.
    tls: bool,
}

impl StorageNodes {
    /// The nodes `entries` (`(id, address)`) of a cluster of `shard_count`
    /// shards; connections are made on first use.
    pub fn new(
        shard_count: usize,
        entries: &[(String, String)],
        timeouts: NodeTimeouts,
        tls: Option<&Arc<ClusterTls>>,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, ModelError> {
        let map = ShardMap::new(shard_count, entries.iter().map(|(id, _)| id.clone()))?;
        let up = Family::<NodeLabels, Gauge<i64, AtomicI64>>::default();
        let changes = Counter::default();
        registry.register(
            "skein_cluster_storage_node_up",
            "Whether the last health check of a storage node passed",
            up.clone(),
        );
        registry.register(
            "skein_cluster_membership_changes",
            "Storage nodes that turned healthy or unhealthy",
            changes.clone(),
        );
        let mut nodes = Vec::with_capacity(entries.len());
        for id in map.nodes() {
            let address = entries.iter().find(|(i, _)| i == id).map(|(_, a)| a.clone()).unwrap_or_default();
            // With mTLS the connector speaks TLS, so the URI tonic sees says http.
            let host_port = address.split_once("://").map_or(address.as_str(), |(_, rest)| rest);
            let endpoint = Endpoint::from_shared(format!("http://{host_port}"))
                .map_err(|e| ModelError::InvalidShardMap(format!("storage node {id}: bad address {address:?}: {e}")))?
                .connect_timeout(timeouts.connect)
                .timeout(timeouts.request)
                .tcp_nodelay(true);
            let channel = match tls {
                Some(tls) => endpoint.connect_with_connector_lazy(tls.connector()),
                None => endpoint.connect_lazy(),
            };
            let gauge = up.get_or_create(&NodeLabels { node: id.clone() }).clone();
            nodes.push(Arc::new(StorageNode {
                id: id.clone(),
                address,
                channel,
                health: RwLock::new(NodeHealth::default()),
                up: gauge,
            }));
        }
        Ok(Arc::new(Self {
            map,
            nodes,
            changes,
            failover_after: timeouts.failover_after,
            tls: tls.is_some(),
            failover: AtomicBool::new(false),
            started: Instant::now(),
        }))
    }

    pub fn map(&self) -> &ShardMap {
        &self.map
    }

    pub fn nodes(&self) -> &[Arc<StorageNode>] {
        &self.nodes
    }

    /// The node that owns `shard` now: its first-ranked node, or while
    /// that one has failed (and shards fail over), the next live one.
    pub fn owner(&self, shard: usize) -> Option<&Arc<StorageNode>> {
        let now = Instant::now();
        self.nodes.get(self.map.live_owner_index(shard, |i| !self.has_failed(&self.nodes[i], now))?)
    }

    /// The nodes that may hold `shard`, to ask in this order: its owner now,
    /// then the others in the shard's rendezvous order. While a shard moves
    /// the owner may not serve it yet; the node it moves from still does.
    pub fn scan_candidates(&self, shard: usize) -> Vec<Arc<StorageNode>> {
        let mut candidates: Vec<Arc<StorageNode>> = self.owner(shard).into_iter().cloned().collect();
        for i in self.map.ranked(shard) {
            if candidates.iter().all(|c| c.id != self.nodes[i].id) {
                candidates.push(Arc::clone(&self.nodes[i]));
            }
        }
        candidates
    }

    /// The shards `node_id` owns now (see [`StorageNodes::owner`]).
    pub fn live_shards_of(&self, node_id: &str) -> Vec<usize> {
        let now = Instant::now();
        self.map.live_shards_of(node_id, |i| !self.has_failed(&self.nodes[i], now))
    }

    /// The shards storage node `node_id` should hold, as it sees itself:
    /// like [`StorageNodes::live_shards_of`], but the node counts itself live.
    pub fn own_shards(&self, node_id: &str) -> Vec<usize> {
        let now = Instant::now();
        self.map.live_shards_of(node_id, |i| self.nodes[i].id == node_id || !self.has_failed(&self.nodes[i], now))
    }

    /// Whether shards fail over in this cluster: a storage node said so.
    pub fn failover_enabled(&self) -> bool {
        self.failover.load(Ordering::Relaxed)
    }

    /// Whether `node` owns no shards now: failover is on and the node has
    /// failed every check for `failover_after` (counted from this member's
    /// start for a node never seen healthy), or it last said it is
    /// draining (which holds after it stopped answering, until it comes
    /// back without draining).
    pub fn has_failed(&self, node: &StorageNode, now: Instant) -> bool {
        if !self.failover_enabled() {
            return false;
        }
        let health = node.health.read();
        if health.info.as_ref().is_some_and(|info| info.draining) {
            return true;
        }
        !health.healthy
            && now.saturating_duration_since(health.healthy_at.unwrap_or(self.started)) >= self.failover_after
    }

    /// The shards storage node `node_id` holds that another member could
    /// own in its place: those whose next-ranked node, with `node_id` out,
    /// is live. A draining node waits until these were taken over.
    pub fn shards_with_a_taker(&self, node_id: &str, held: &[usize]) -> Vec<usize> {
        let now = Instant::now();
        let live = |i: usize| self.nodes[i].id != node_id && !self.has_failed(&self.nodes[i], now);
        held.iter().copied().filter(|&shard| self.map.live_owner_index(shard, live).is_some_and(&live)).collect()
    }

    /// A connection the node dropped at or right after the TLS handshake.
    /// In TLS 1.3 the client's handshake ends before the server checks the
    /// client certificate, so a refused certificate reaches this side as
    /// the node's alert, a closed pipe or a cancelled request, whichever
    /// comes first; only a node that is down or hung says something else.
    fn explain(&self, reason: String) -> String {
        let lower = reason.to_lowercase();
        let node_down = ["connection refused", "timed out", "timeout", "deadline", "dns", "no route"]
            .iter()
            .any(|sign| lower.contains(sign));
        if self.tls && lower.contains("transport error") && !node_down {
            format!(
                "{reason} (if the node is up, it dropped the connection at the TLS handshake: with cluster.tls, \
                 check that this member's certificate is signed by the cluster CA the node trusts; the node logs \
                 why it refused)"
            )
        } else {
            reason
        }
    }

    /// Checks every node once, concurrently.
    pub async fn check_all(&self) {
        futures::future::join_all(self.nodes.iter().map(|node| self.check(node))).await;
    }

    async fn check(&self, node: &StorageNode) {
        let outcome = node.node_info().await.map_err(|reason| self.explain(reason)).and_then(|info| {
            if info.node_id != node.id {
                Err(format!(
                    "{} answers as storage node {:?}, not {:?}: the storage_nodes list names the wrong address",
                    node.address, info.node_id, node.id
                ))
            } else if info.shard_count != self.map.shard_count() {
                Err(format!(
                    "storage node {} has {} shards but this member has {}; every member of a cluster needs the same \
                     storage.shards, so it is not used",
                    node.id,
                    info.shard_count,
                    self.map.shard_count()
                ))
            } else {
                Ok(info)
            }
        });
        let mut health = node.health.write();
        let was_healthy = health.healthy;
        let previous_error = health.error.clone();
        health.checked_at = Some(SystemTime::now());
        match outcome {
            Ok(info) => {
                if info.failover && !self.failover.swap(true, Ordering::Relaxed) {
                    info!(failover_after = ?self.failover_after, "storage nodes keep their wal in the object store: shards fail over");
                }
                health.healthy = true;
                health.error = None;
                health.info = Some(info);
                health.healthy_at = Some(Instant::now());
            }
            Err(reason) => {
                health.healthy = false;
                health.error = Some(reason);
            }
        }
        node.up.set(i64::from(health.healthy));
        if health.healthy != was_healthy {
            self.changes.inc();
        }
        // Logged when the state or the reason changes: a node that was never
        // reachable (a wrong address or certificate) is said once, not every check.
        match (&health.error, was_healthy, health.healthy) {
            (None, false, true) => info!(node = %node.id, address = %node.address, "storage node is healthy"),
            (Some(reason), _, false) if previous_error.as_ref() != Some(reason) || was_healthy => {
                if reason.contains("shards") || reason.contains("answers as") {
                    error!(node = %node.id, address = %node.address, error = %reason, "storage node refused");
                } else {
                    warn!(node = %node.id, address = %node.address, error = %reason, "storage node is unhealthy");
                }
            }
            _ => {}
        }
    }

    /// Checks every node every `interval` until `shutdown` is cancelled.
    pub fn spawn_health_checks(
        self: &Arc<Self>,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let nodes = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return,
                    _ = ticks.tick() => nodes.check_all().await,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_node_entries_parse() {
        assert_eq!(parse_storage_node("s-0=127.0.0.1:7400"), Ok(("s-0".into(), Some("127.0.0.1:7400".into()))));
        assert_eq!(parse_storage_node("s-0"), Ok(("s-0".into(), None)));
        assert!(parse_storage_node("=x").is_err());
        assert!(parse_storage_node("a b=x").is_err());
        assert!(parse_storage_node("s-0=").is_err());
    }
}
