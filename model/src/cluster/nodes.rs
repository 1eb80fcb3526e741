//! The storage nodes of a cluster as every member sees them: their IDs and
//! addresses (a static list, or SRV records re-resolved, see
//! [`super::discovery`]), one lazily connected Flight channel per node, and
//! a health check loop that asks each node who it is (catching a wrong
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

use super::discovery::{DiscoveredNode, DnsDiscovery};
use super::{ACTION_NEWEST_SPAN_START, ACTION_NODE_INFO, NodeInfo, SpanStartBound, SpanStartQuery};
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
    /// A node never seen healthy counts as failed `failover_after` after
    /// this; without it (it joined after this member started), at once.
    grace_from: Option<Instant>,
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
        let body = self.action(ACTION_NODE_INFO, Vec::new()).await?;
        serde_json::from_slice(&body).map_err(|e| format!("the node info does not parse: {e}"))
    }

    /// Asks the node how new the newest span of some shards it owns is.
    pub async fn newest_span_start(&self, query: &SpanStartQuery) -> Result<SpanStartBound, String> {
        let request = serde_json::to_vec(query).map_err(|e| format!("encoding the span start query: {e}"))?;
        let body = self.action(ACTION_NEWEST_SPAN_START, request).await?;
        serde_json::from_slice(&body).map_err(|e| format!("the span start bound does not parse: {e}"))
    }

    /// One `DoAction` call: its first result's body.
    async fn action(&self, kind: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
        let mut client = self.flight();
        let action = Action { r#type: kind.into(), body: body.into() };
        let bodies: Vec<_> = client
            .do_action(action)
            .await
            .map_err(|e| error_chain(&e))?
            .try_collect()
            .await
            .map_err(|e| error_chain(&e))?;
        let first = bodies.into_iter().next().ok_or_else(|| format!("the node sent no answer to {kind}"))?;
        Ok(first.to_vec())
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

/// Where the members come from when they are found in DNS, and how the
/// last lookup went (for cluster status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryState {
    /// The SRV name looked up.
    pub srv_name: String,
    /// When the last lookup finished.
    pub looked_up_at: SystemTime,
    /// Why the last lookup failed (the members stayed as they were).
    pub error: Option<String>,
}

/// The storage nodes at one moment and the shard map over their IDs.
#[derive(Debug)]
struct Members {
    map: ShardMap,
    /// In the map's node order.
    nodes: Vec<Arc<StorageNode>>,
}

/// Every storage node of the cluster and the shard map over them. The
/// members are a static list, or follow DNS ([`StorageNodes::spawn_discovery`]).
#[derive(Debug)]
pub struct StorageNodes {
    shard_count: usize,
    members: RwLock<Arc<Members>>,
    /// A storage node's own ID: a member whatever DNS says.
    pinned: Option<String>,
    /// Set when the members are found in DNS.
    discovery_state: RwLock<Option<DiscoveryState>>,
    up: Family<NodeLabels, Gauge<i64, AtomicI64>>,
    changes: Counter,
    member_count: Gauge<i64, AtomicI64>,
    discovery_failures: Counter,
    timeouts: NodeTimeouts,
    /// Whether a storage node reported that shards fail over.
    failover: AtomicBool,
    /// `[cluster.tls]`, for the connections.
    tls: Option<Arc<ClusterTls>>,
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
        Self::build(shard_count, entries, None, timeouts, tls, registry)
    }

    /// The nodes of `found`, what `discovery` answered;
    /// [`StorageNodes::spawn_discovery`] keeps them current. A storage node
    /// passes its own ID as `pinned`: it must be among them, and stays a
    /// member whatever DNS says later.
    pub fn discovered(
        shard_count: usize,
        discovery: &DnsDiscovery,
        found: &[DiscoveredNode],
        pinned: Option<&str>,
        timeouts: NodeTimeouts,
        tls: Option<&Arc<ClusterTls>>,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, ModelError> {
        let entries: Vec<(String, String)> =
            found.iter().filter_map(|node| Some((node.id.clone(), node.address.clone()?))).collect();
        if let Some(id) = pinned
            && !entries.iter().any(|(known, _)| known == id)
        {
            let ids: Vec<&str> = found.iter().map(|node| node.id.as_str()).collect();
            return Err(ModelError::Discovery(format!(
                "this node's ID {id:?} is not among the storage nodes {} lists with an address ({}): the node ID \
                 must be the first label of its SRV target, the pod name in a StatefulSet",
                discovery.srv_name(),
                ids.join(", ")
            )));
        }
        if entries.is_empty() {
            return Err(ModelError::Discovery(format!(
                "no storage node {} lists has an address",
                discovery.srv_name()
            )));
        }
        let nodes = Self::build(shard_count, &entries, pinned, timeouts, tls, registry)?;
        nodes.set_discovery_state(discovery, None);
        Ok(nodes)
    }

    fn set_discovery_state(&self, discovery: &DnsDiscovery, error: Option<String>) {
        *self.discovery_state.write() =
            Some(DiscoveryState { srv_name: discovery.srv_name().to_owned(), looked_up_at: SystemTime::now(), error });
    }

    /// How the members are found in DNS, when they are.
    pub fn discovery_state(&self) -> Option<DiscoveryState> {
        self.discovery_state.read().clone()
    }

    fn build(
        shard_count: usize,
        entries: &[(String, String)],
        pinned: Option<&str>,
        timeouts: NodeTimeouts,
        tls: Option<&Arc<ClusterTls>>,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, ModelError> {
        let up = Family::<NodeLabels, Gauge<i64, AtomicI64>>::default();
        let (changes, member_count, discovery_failures) = (Counter::default(), Gauge::default(), Counter::default());
        registry.register(
            "skein_cluster_storage_node_up",
            "Whether the last health check of a storage node passed",
            up.clone(),
        );
        registry.register(
            "skein_cluster_membership_changes",
            "Storage nodes that joined, left, turned healthy or unhealthy",
            changes.clone(),
        );
        registry.register("skein_cluster_storage_nodes", "Storage nodes this member knows", member_count.clone());
        registry.register(
            "skein_cluster_discovery_failures",
            "DNS lookups of the storage nodes that failed (the members stay as they were)",
            discovery_failures.clone(),
        );
        let started = Instant::now();
        let nodes = Self {
            shard_count,
            members: RwLock::new(Arc::new(Members { map: ShardMap::local(shard_count)?, nodes: Vec::new() })),
            pinned: pinned.map(str::to_owned),
            discovery_state: RwLock::new(None),
            up,
            changes,
            member_count,
            discovery_failures,
            timeouts,
            failover: AtomicBool::new(false),
            tls: tls.cloned(),
        };
        let initial = entries
            .iter()
            .map(|(id, address)| nodes.connect(id, address, NodeHealth::default(), Some(started)))
            .collect::<Result<Vec<_>, _>>()?;
        *nodes.members.write() = Arc::new(nodes.members_of(initial)?);
        Ok(Arc::new(nodes))
    }

    /// A node with a lazily connected channel to `address`.
    fn connect(
        &self,
        id: &str,
        address: &str,
        health: NodeHealth,
        grace_from: Option<Instant>,
    ) -> Result<Arc<StorageNode>, ModelError> {
        // With mTLS the connector speaks TLS, so the URI tonic sees says http.
        let host_port = address.split_once("://").map_or(address, |(_, rest)| rest);
        let endpoint = Endpoint::from_shared(format!("http://{host_port}"))
            .map_err(|e| ModelError::InvalidShardMap(format!("storage node {id}: bad address {address:?}: {e}")))?
            .connect_timeout(self.timeouts.connect)
            .timeout(self.timeouts.request)
            .tcp_nodelay(true);
        let channel = match &self.tls {
            Some(tls) => endpoint.connect_with_connector_lazy(tls.connector()),
            None => endpoint.connect_lazy(),
        };
        let up = self.up.get_or_create(&NodeLabels { node: id.to_owned() }).clone();
        Ok(Arc::new(StorageNode {
            id: id.to_owned(),
            address: address.to_owned(),
            channel,
            health: RwLock::new(health),
            grace_from,
            up,
        }))
    }

    /// `nodes` as members: the map over their IDs, the nodes in its order.
    fn members_of(&self, mut nodes: Vec<Arc<StorageNode>>) -> Result<Members, ModelError> {
        let map = ShardMap::new(self.shard_count, nodes.iter().map(|node| node.id.clone()))?;
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        self.member_count.set(i64::try_from(nodes.len()).unwrap_or(i64::MAX));
        Ok(Members { map, nodes })
    }

    fn members(&self) -> Arc<Members> {
        Arc::clone(&self.members.read())
    }

    pub fn shard_count(&self) -> usize {
        self.shard_count
    }

    /// The shard map over the members now.
    pub fn map(&self) -> ShardMap {
        self.members().map.clone()
    }

    /// The members now, in the map's node order.
    pub fn nodes(&self) -> Vec<Arc<StorageNode>> {
        self.members().nodes.clone()
    }

    /// The node that owns `shard` now: its first-ranked node, or while
    /// that one has failed (and shards fail over), the next live one.
    pub fn owner(&self, shard: usize) -> Option<Arc<StorageNode>> {
        self.owner_among(&self.members(), shard)
    }

    /// [`StorageNodes::owner`] among `members`.
    fn owner_among(&self, members: &Members, shard: usize) -> Option<Arc<StorageNode>> {
        let now = Instant::now();
        let index = members.map.live_owner_index(shard, |i| !self.has_failed(&members.nodes[i], now))?;
        members.nodes.get(index).cloned()
    }

    /// The nodes that may hold `shard`, to ask in this order: its owner now,
    /// then the others in the shard's rendezvous order. While a shard moves
    /// the owner may not serve it yet; the node it moves from still does.
    pub fn scan_candidates(&self, shard: usize) -> Vec<Arc<StorageNode>> {
        let members = self.members();
        // One snapshot for both: the owner and the order it is put first in.
        let mut candidates: Vec<Arc<StorageNode>> = self.owner_among(&members, shard).into_iter().collect();
        for i in members.map.ranked(shard) {
            if candidates.iter().all(|c| c.id != members.nodes[i].id) {
                candidates.push(Arc::clone(&members.nodes[i]));
            }
        }
        candidates
    }

    /// The shards `node_id` owns now (see [`StorageNodes::owner`]).
    pub fn live_shards_of(&self, node_id: &str) -> Vec<usize> {
        let members = self.members();
        let now = Instant::now();
        members.map.live_shards_of(node_id, |i| !self.has_failed(&members.nodes[i], now))
    }

    /// The shards storage node `node_id` should hold, as it sees itself:
    /// like [`StorageNodes::live_shards_of`], but the node counts itself live.
    pub fn own_shards(&self, node_id: &str) -> Vec<usize> {
        let members = self.members();
        let now = Instant::now();
        members.map.live_shards_of(node_id, |i| {
            let node = &members.nodes[i];
            node.id == node_id || !self.has_failed(node, now)
        })
    }

    /// Whether shards fail over in this cluster: a storage node said so.
    pub fn failover_enabled(&self) -> bool {
        self.failover.load(Ordering::Relaxed)
    }

    /// Whether `node` owns no shards now: failover is on and the node has
    /// failed every check for `failover_after` (counted from this member's
    /// start for a node known then and never seen healthy; a node that
    /// joined later owns nothing until it passes a check), or it last said
    /// it is draining (which holds after it stopped answering, until it
    /// comes back without draining).
    pub fn has_failed(&self, node: &StorageNode, now: Instant) -> bool {
        if !self.failover_enabled() {
            return false;
        }
        let health = node.health.read();
        if health.info.as_ref().is_some_and(|info| info.draining) {
            return true;
        }
        if health.healthy {
            return false;
        }
        match health.healthy_at.or(node.grace_from) {
            Some(since) => now.saturating_duration_since(since) >= self.timeouts.failover_after,
            None => true,
        }
    }

    /// The shards storage node `node_id` holds that another member could
    /// own in its place: those whose next-ranked node, with `node_id` out,
    /// is live. A draining node waits until these were taken over.
    pub fn shards_with_a_taker(&self, node_id: &str, held: &[usize]) -> Vec<usize> {
        let members = self.members();
        let now = Instant::now();
        let live = |i: usize| members.nodes[i].id != node_id && !self.has_failed(&members.nodes[i], now);
        held.iter().copied().filter(|&shard| members.map.live_owner_index(shard, live).is_some_and(&live)).collect()
    }

    /// Takes a DNS answer as the members: nodes it names join (owning
    /// nothing until their first passed check), a node whose address
    /// changed is reconnected (its health kept), and a node it no longer
    /// names leaves once it is not healthy or is draining. A healthy node
    /// stays until then, so a lagging or flapping DNS answer never takes
    /// shards from a node that serves them; a node that left stops being
    /// asked, exactly as one that failed. The pinned node never leaves.
    pub fn apply_discovered(&self, found: &[DiscoveredNode]) -> Result<(), ModelError> {
        let current = self.members();
        let mut next = Vec::with_capacity(found.len().max(current.nodes.len()));
        let mut changed = false;
        for node in &current.nodes {
            let listed = found.iter().find(|f| f.id == node.id);
            match listed.and_then(|f| f.address.as_deref()) {
                Some(address) if address != node.address => {
                    info!(node = %node.id, from = %node.address, to = %address, "storage node moved to a new address");
                    next.push(self.connect(&node.id, address, node.health(), node.grace_from)?);
                    changed = true;
                }
                Some(_) => next.push(Arc::clone(node)),
                // Named without an address: keep the last one.
                None if listed.is_some() => next.push(Arc::clone(node)),
                None => {
                    let health = node.health();
                    let draining = health.info.as_ref().is_some_and(|info| info.draining);
                    if self.pinned.as_deref() == Some(node.id.as_str()) || (health.healthy && !draining) {
                        next.push(Arc::clone(node));
                    } else {
                        info!(node = %node.id, address = %node.address, "storage node left: dns no longer lists it");
                        self.up.remove(&NodeLabels { node: node.id.clone() });
                        self.changes.inc();
                        changed = true;
                    }
                }
            }
        }
        for joined in found.iter().filter(|f| current.nodes.iter().all(|node| node.id != f.id)) {
            let Some(address) = &joined.address else { continue };
            info!(node = %joined.id, address = %address, "storage node joined");
            next.push(self.connect(&joined.id, address, NodeHealth::default(), None)?);
            self.changes.inc();
            changed = true;
        }
        if changed {
            *self.members.write() = Arc::new(self.members_of(next)?);
        }
        Ok(())
    }

    /// Looks `discovery` up every `interval` and applies the answer, until
    /// `shutdown`; a failed lookup keeps the members (logged when its
    /// reason changes, counted each time).
    pub fn spawn_discovery(
        self: &Arc<Self>,
        discovery: DnsDiscovery,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let nodes = Arc::clone(self);
        every(interval, shutdown, move || {
            let (nodes, discovery) = (Arc::clone(&nodes), discovery.clone());
            async move {
                let outcome = discovery
                    .resolve()
                    .await
                    .and_then(|found| nodes.apply_discovered(&found).map_err(|e| e.to_string()));
                let last_error = nodes.discovery_state().and_then(|state| state.error);
                match &outcome {
                    Ok(()) if last_error.is_some() => {
                        info!(srv = %discovery.srv_name(), "storage node discovery works again");
                    }
                    Ok(()) => {}
                    Err(reason) => {
                        nodes.discovery_failures.inc();
                        if last_error.as_ref() != Some(reason) {
                            warn!(srv = %discovery.srv_name(), error = %reason, "storage node discovery failed; members unchanged");
                        }
                    }
                }
                nodes.set_discovery_state(&discovery, outcome.err());
            }
        })
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
        if self.tls.is_some() && lower.contains("transport error") && !node_down {
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
        let members = self.members();
        futures::future::join_all(members.nodes.iter().map(|node| self.check(node))).await;
    }

    async fn check(&self, node: &StorageNode) {
        let outcome = node.node_info().await.map_err(|reason| self.explain(reason)).and_then(|info| {
            if info.node_id != node.id {
                Err(format!(
                    "{} answers as storage node {:?}, not {:?}: the storage_nodes list names the wrong address",
                    node.address, info.node_id, node.id
                ))
            } else if info.shard_count != self.shard_count {
                Err(format!(
                    "storage node {} has {} shards but this member has {}; every member of a cluster needs the same \
                     storage.shards, so it is not used",
                    node.id, info.shard_count, self.shard_count
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
                    info!(failover_after = ?self.timeouts.failover_after, "storage nodes keep their wal in the object store: shards fail over");
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
        every(interval, shutdown, move || {
            let nodes = Arc::clone(&nodes);
            async move { nodes.check_all().await }
        })
    }
}

/// Runs `step` every `interval` (the first at once; a slow step delays the
/// next rather than bunching them) until `shutdown` is cancelled.
fn every<F, Fut>(interval: Duration, shutdown: CancellationToken, mut step: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => step().await,
            }
        }
    })
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

    fn timeouts() -> NodeTimeouts {
        let second = Duration::from_secs(1);
        NodeTimeouts { connect: second, request: second, failover_after: Duration::from_secs(3600) }
    }

    fn found(id: &str, address: Option<&str>) -> DiscoveredNode {
        DiscoveredNode { id: id.into(), address: address.map(str::to_owned) }
    }

    fn set_health(nodes: &StorageNodes, id: &str, healthy: bool) {
        let node = nodes.nodes().into_iter().find(|n| n.id == id).expect("a member");
        let mut health = node.health.write();
        health.healthy = healthy;
        health.healthy_at = healthy.then(Instant::now);
    }

    fn ids(nodes: &StorageNodes) -> Vec<String> {
        nodes.nodes().iter().map(|n| n.id.clone()).collect()
    }

    #[tokio::test]
    async fn dns_answers_change_the_members_without_taking_shards_from_a_serving_node() {
        let entries = [("s-0".to_owned(), "127.0.0.1:1".to_owned()), ("s-1".to_owned(), "127.0.0.1:2".to_owned())];
        let nodes = StorageNodes::new(64, &entries, timeouts(), None, &mut Registry::default()).expect("ok");
        nodes.failover.store(true, Ordering::Relaxed);
        set_health(&nodes, "s-0", true);
        set_health(&nodes, "s-1", true);

        // A new node joins the map but owns nothing until a check passes.
        let three =
            [found("s-0", Some("127.0.0.1:1")), found("s-1", Some("127.0.0.1:2")), found("s-2", Some("127.0.0.1:3"))];
        nodes.apply_discovered(&three).expect("applied");
        assert_eq!(ids(&nodes), ["s-0", "s-1", "s-2"]);
        let its_share = nodes.map().shards_of("s-2");
        assert!(!its_share.is_empty() && its_share.len() < 40, "{its_share:?}");
        assert!(nodes.live_shards_of("s-2").is_empty());
        assert!((0..64).all(|shard| nodes.owner(shard).is_some_and(|owner| owner.id != "s-2")));
        set_health(&nodes, "s-2", true);
        assert_eq!(nodes.live_shards_of("s-2"), its_share);

        // Gone from DNS while it serves: it stays until it stops answering.
        let without_s1 = [found("s-0", Some("127.0.0.1:1")), found("s-2", Some("127.0.0.1:3"))];
        nodes.apply_discovered(&without_s1).expect("ok");
        assert_eq!(ids(&nodes), ["s-0", "s-1", "s-2"]);
        set_health(&nodes, "s-1", false);
        nodes.apply_discovered(&without_s1).expect("ok");
        assert_eq!(ids(&nodes), ["s-0", "s-2"]);
        assert!((0..64).all(|shard| nodes.owner(shard).is_some_and(|owner| owner.id != "s-1")));

        // A new address reconnects the node and keeps its health; a node
        // named without an address keeps its last one, a new one waits.
        let moved = [found("s-0", Some("127.0.0.1:9")), found("s-2", None), found("s-3", None)];
        nodes.apply_discovered(&moved).expect("ok");
        let members = nodes.nodes();
        assert_eq!(
            members.iter().map(|n| (n.id.as_str(), n.address.as_str())).collect::<Vec<_>>(),
            [("s-0", "127.0.0.1:9"), ("s-2", "127.0.0.1:3")]
        );
        assert!(members[0].health().healthy);
    }

    #[tokio::test]
    async fn a_storage_node_never_drops_itself_and_nodes_known_at_start_get_the_grace() {
        let entries = [("s-0".to_owned(), "127.0.0.1:1".to_owned()), ("s-1".to_owned(), "127.0.0.1:2".to_owned())];
        let mut registry = Registry::default();
        let nodes = StorageNodes::build(8, &entries, Some("s-1"), timeouts(), None, &mut registry).expect("ok");
        nodes.failover.store(true, Ordering::Relaxed);
        // Never checked yet, known at start: not failed within failover_after.
        assert_eq!(nodes.live_shards_of("s-0").len() + nodes.live_shards_of("s-1").len(), 8);
        nodes.apply_discovered(&[found("s-0", Some("127.0.0.1:1"))]).expect("ok");
        assert_eq!(ids(&nodes), ["s-0", "s-1"]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("ok");
        assert!(text.contains("skein_cluster_storage_nodes 2"), "{text}");
    }
}
