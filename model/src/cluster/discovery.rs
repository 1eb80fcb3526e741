//! Storage nodes found in DNS instead of a static list: the SRV records of
//! one name (what a Kubernetes headless Service publishes for a
//! StatefulSet), each target's A/AAAA records for its address.
//!
//! Shard ownership follows node IDs, so an ID must stay with its data: a
//! node's ID is the first label of its SRV target, which for a StatefulSet
//! pod is the pod name (`skein-storage-0.skein-storage.ns.svc.…` is
//! `skein-storage-0`). A/AAAA records alone carry no such identity, which
//! is why membership comes from SRV. Targets are resolved by this
//! resolver, not at connect time, so `dns_servers` apply to them too and a
//! pod restarted on a new IP is followed at the next refresh.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use super::parse_storage_node;
use crate::ModelError;

/// One storage node an SRV lookup named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredNode {
    /// The first label of the SRV target.
    pub id: String,
    /// `ip:port`, or `None` when the target's A/AAAA lookup failed (a
    /// member keeps its last address then; a new one waits).
    pub address: Option<String>,
}

/// Resolves the storage nodes behind one SRV name.
#[derive(Clone)]
pub struct DnsDiscovery {
    srv_name: String,
    resolver: TokioResolver,
}

impl std::fmt::Debug for DnsDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsDiscovery").field("srv_name", &self.srv_name).finish_non_exhaustive()
    }
}

impl DnsDiscovery {
    /// Discovery of the SRV name `srv_name` (`_service._proto.name`), asking
    /// `servers` (`ip:port`), or the system's resolvers (`/etc/resolv.conf`)
    /// when there are none. Answers are not cached: every lookup asks.
    pub fn new(srv_name: &str, servers: &[SocketAddr], timeout: Duration) -> Result<Self, ModelError> {
        let invalid = |what: &'static str, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
            ModelError::DnsSetup { name: srv_name.to_owned(), what, source }
        };
        if !srv_name.starts_with('_') || srv_name.split('.').count() < 3 {
            return Err(invalid(
                "expected an SRV name such as _internal._tcp.skein-storage.skein.svc.cluster.local",
                None,
            ));
        }
        let provider = TokioRuntimeProvider::default();
        let mut builder = if servers.is_empty() {
            TokioResolver::builder(provider)
                .map_err(|e| invalid("the system's DNS configuration cannot be read", Some(Box::new(e))))?
        } else {
            let name_servers = servers
                .iter()
                .map(|server| {
                    let mut config = NameServerConfig::udp_and_tcp(server.ip());
                    for connection in &mut config.connections {
                        connection.port = server.port();
                    }
                    config
                })
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(name_servers), provider)
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        options.timeout = timeout;
        let resolver = builder.build().map_err(|e| invalid("the resolver cannot be built", Some(Box::new(e))))?;
        Ok(Self { srv_name: srv_name.to_owned(), resolver })
    }

    pub fn srv_name(&self) -> &str {
        &self.srv_name
    }

    /// The nodes the SRV name lists now, by ID. An answer without records,
    /// or with two targets of one ID, is an error: the caller keeps the
    /// members it has rather than dropping them all on a DNS hiccup.
    pub async fn resolve(&self) -> Result<Vec<DiscoveredNode>, String> {
        let lookup = self
            .resolver
            .srv_lookup(self.srv_name.as_str())
            .await
            .map_err(|e| format!("SRV lookup of {} failed: {e}", self.srv_name))?;
        let mut targets = Vec::new();
        for record in lookup.answers() {
            let RData::SRV(srv) = &record.data else { continue };
            let host = srv.target.to_utf8();
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            let id = host.split('.').next().unwrap_or_default().to_owned();
            parse_storage_node(&id).map_err(|e| format!("SRV target {host:?} of {}: {e}", self.srv_name))?;
            if targets.iter().any(|(known, _, _)| known == &id) {
                return Err(format!(
                    "two SRV targets of {} have the node ID {id:?} (the first label of the target names the node)",
                    self.srv_name
                ));
            }
            targets.push((id, host, srv.port));
        }
        if targets.is_empty() {
            return Err(format!("the SRV lookup of {} found no storage node", self.srv_name));
        }
        let resolved = futures::future::join_all(targets.into_iter().map(|(id, host, port)| async move {
            let address = match host.parse::<IpAddr>() {
                Ok(ip) => Some(SocketAddr::new(ip, port).to_string()),
                Err(_) => match self.resolver.lookup_ip(format!("{host}.")).await {
                    Ok(ips) => pick_ip(ips.iter()).map(|ip| SocketAddr::new(ip, port).to_string()),
                    Err(e) => {
                        tracing::warn!(node = %id, target = %host, error = %e, "storage node's address lookup failed");
                        None
                    }
                },
            };
            DiscoveredNode { id, address }
        }))
        .await;
        let mut nodes = resolved;
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }
}

/// One address per node, the same on every member: the lowest IPv4, else
/// the lowest IPv6 (a pod has one of each at most).
fn pick_ip(ips: impl Iterator<Item = IpAddr>) -> Option<IpAddr> {
    ips.min_by_key(|ip| (ip.is_ipv6(), *ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_srv_names_are_taken() {
        for bad in ["skein-storage.skein.svc", "_internal.skein", "skein-storage:7400"] {
            let error = DnsDiscovery::new(bad, &["127.0.0.1:53".parse().expect("an address")], Duration::from_secs(1))
                .expect_err("refused");
            assert!(error.to_string().contains("SRV name"), "{error}");
        }
        assert!(
            DnsDiscovery::new(
                "_internal._tcp.skein-storage",
                &["127.0.0.1:53".parse().expect("an address")],
                Duration::from_secs(1)
            )
            .is_ok()
        );
    }

    #[tokio::test]
    async fn srv_records_name_the_nodes_and_a_records_their_addresses() {
        let dns = super::super::test_dns::TestDns::start("skein.test").await.expect("a dns server");
        let srv = "_internal._tcp.storage.skein.test";
        dns.set_srv(srv, &[("s-1.storage.skein.test", 7410), ("s-0.storage.skein.test", 7400)]).await;
        dns.set_a("s-0.storage.skein.test", "127.0.0.1".parse().expect("an ip")).await;
        dns.set_a("s-1.storage.skein.test", "127.0.0.2".parse().expect("an ip")).await;
        let discovery = DnsDiscovery::new(srv, &[dns.addr()], Duration::from_secs(2)).expect("ok");
        let node = |id: &str, address: Option<&str>| DiscoveredNode { id: id.into(), address: address.map(Into::into) };
        assert_eq!(
            discovery.resolve().await.expect("resolved"),
            [node("s-0", Some("127.0.0.1:7400")), node("s-1", Some("127.0.0.2:7410"))]
        );

        // A pod restarted elsewhere, and one whose address is not published yet.
        dns.set_a("s-1.storage.skein.test", "127.0.0.3".parse().expect("an ip")).await;
        dns.set_srv(
            srv,
            &[("s-0.storage.skein.test", 7400), ("s-1.storage.skein.test", 7410), ("s-2.storage.skein.test", 7420)],
        )
        .await;
        assert_eq!(
            discovery.resolve().await.expect("resolved"),
            [node("s-0", Some("127.0.0.1:7400")), node("s-1", Some("127.0.0.3:7410")), node("s-2", None)]
        );

        // A pinned storage node must find itself.
        let mut registry = prometheus_client::registry::Registry::default();
        let timeouts = super::super::NodeTimeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(1),
            failover_after: Duration::from_secs(10),
        };
        let found = discovery.resolve().await.expect("resolved");
        let mut discovered = |pinned| {
            super::super::StorageNodes::discovered(8, &discovery, &found, Some(pinned), timeouts, None, &mut registry)
        };
        let error = discovered("s-9").expect_err("refused");
        assert!(error.to_string().contains("\"s-9\" is not among the storage nodes"), "{error}");
        let nodes = discovered("s-1").expect("ok");
        let state = nodes.discovery_state().expect("found in dns");
        assert_eq!((state.srv_name.as_str(), state.error), (srv, None));
        assert_eq!(nodes.nodes().iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["s-0", "s-1"]);

        // No records: an error, so members are kept rather than dropped.
        dns.set_srv(srv, &[]).await;
        let error = discovery.resolve().await.expect_err("refused");
        assert!(error.contains(srv), "{error}");
    }

    #[test]
    fn an_ipv4_address_is_preferred_and_the_choice_is_stable() {
        let v6: IpAddr = "fd00::1".parse().expect("an ip");
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.9".parse().expect("an ip"), "10.0.0.2".parse().expect("an ip"));
        assert_eq!(pick_ip([v6, a, b].into_iter()), Some(b));
        assert_eq!(pick_ip([v6].into_iter()), Some(v6));
        assert_eq!(pick_ip(std::iter::empty()), None);
    }
}
