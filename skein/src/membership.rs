//! How a cluster member learns which storage nodes there are: the static
//! `cluster.storage_nodes` list, or the SRV records of `cluster.storage_dns`
//! (docs/cluster.md), and the loops that keep that view current while the
//! member runs: health checks of every node, and DNS lookups every
//! `dns_refresh`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use prometheus_client::registry::Registry;
use skein_model::cluster::{DnsDiscovery, NodeTimeouts, StorageNodes};
use skein_model::security::ClusterTls;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{ClusterConfig, SkeinConfig};
use crate::supervisor::Supervisor;

/// How long a member starting with `storage_dns` retries a lookup that
/// fails or does not list it yet (DNS may lag a pod's creation) before it
/// gives up with the last reason.
const DISCOVERY_AT_START: Duration = Duration::from_secs(60);
const DISCOVERY_RETRY: Duration = Duration::from_secs(1);

/// The storage nodes as this member sees them.
pub struct Membership {
    pub nodes: Arc<StorageNodes>,
    /// Set when the nodes come from DNS.
    discovery: Option<DnsDiscovery>,
}

fn timeouts(cluster: &ClusterConfig) -> NodeTimeouts {
    NodeTimeouts {
        connect: cluster.connect_timeout,
        request: cluster.request_timeout,
        failover_after: cluster.failover_after,
    }
}

/// Whether the configuration finds the storage nodes in DNS.
pub fn uses_dns(cluster: &ClusterConfig) -> bool {
    !cluster.storage_dns.is_empty()
}

impl Membership {
    /// The storage nodes of `config`'s cluster. A storage node passes its
    /// own ID as `pinned` (with DNS it must be listed, and stays a member).
    pub async fn start(
        config: &SkeinConfig,
        tls: Option<&Arc<ClusterTls>>,
        registry: &mut Registry,
        pinned: Option<&str>,
    ) -> anyhow::Result<Self> {
        let cluster = &config.cluster;
        let shards = config.storage.shards;
        if !uses_dns(cluster) {
            let entries = cluster.storage_addresses()?;
            let nodes = StorageNodes::new(shards, &entries, timeouts(cluster), tls, registry)
                .context("invalid cluster.storage_nodes")?;
            return Ok(Self { nodes, discovery: None });
        }
        let discovery = DnsDiscovery::new(&cluster.storage_dns, &cluster.dns_servers, cluster.request_timeout)?;
        let deadline = Instant::now() + DISCOVERY_AT_START;
        let mut last_error = String::new();
        loop {
            let attempt = match discovery.resolve().await {
                Ok(found) => {
                    StorageNodes::discovered(shards, &discovery, &found, pinned, timeouts(cluster), tls, registry)
                        .map_err(|e| e.to_string())
                }
                Err(reason) => Err(reason),
            };
            match attempt {
                Ok(nodes) => {
                    let ids: Vec<String> = nodes.nodes().iter().map(|n| format!("{}={}", n.id, n.address)).collect();
                    info!(srv = %cluster.storage_dns, storage_nodes = %ids.join(","), "storage nodes found in dns");
                    return Ok(Self { nodes, discovery: Some(discovery) });
                }
                Err(reason) if Instant::now() >= deadline => {
                    bail!(
                        "finding the storage nodes in DNS ({}) for {DISCOVERY_AT_START:?}: {reason}",
                        cluster.storage_dns
                    )
                }
                Err(reason) => {
                    if reason != last_error {
                        warn!(srv = %cluster.storage_dns, error = %reason, "storage nodes not found in dns yet; retrying");
                    }
                    last_error = reason;
                    tokio::time::sleep(DISCOVERY_RETRY).await;
                }
            }
        }
    }

    /// Checks every node, and with DNS looks the nodes up again, until
    /// `stopping` is cancelled, which happens on SIGTERM or at the
    /// supervisor's step after the roles added before it stopped.
    pub fn watch_until_stopped(&self, supervisor: &mut Supervisor, config: &SkeinConfig, stopping: CancellationToken) {
        let health = self.nodes.spawn_health_checks(config.cluster.health_interval, stopping.clone());
        let lookups = self
            .discovery
            .clone()
            .map(|discovery| self.nodes.spawn_discovery(discovery, config.cluster.dns_refresh, stopping.clone()));
        supervisor.then("storage node watch", async move {
            stopping.cancel();
            health.await.context("health checks panicked")?;
            if let Some(lookups) = lookups {
                lookups.await.context("dns discovery panicked")?;
            }
            Ok(())
        });
    }
}
