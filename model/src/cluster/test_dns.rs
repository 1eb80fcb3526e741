//! A real DNS server (hickory-server) on a free local UDP port, serving one
//! zone whose SRV and A records tests change while cluster members run:
//! what a Kubernetes headless Service does as pods come and go. Built for
//! tests only (`test-dns` feature).

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

const TTL: u32 = 1;

/// The server; it stops when dropped.
pub struct TestDns {
    addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler<TokioRuntimeProvider>>,
    _server: Server<Catalog>,
}

impl TestDns {
    /// Serves the zone `origin` (e.g. `skein.test.`) on `127.0.0.1:0`.
    pub async fn start(origin: &str) -> std::io::Result<Self> {
        let origin = name(origin);
        let mut zone = InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(origin.clone(), origin.clone(), 1, 60, 60, 60, TTL);
        zone.upsert_mut(Record::from_rdata(origin.clone(), TTL, RData::SOA(soa)), 1);
        let zone = Arc::new(zone);
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![Arc::clone(&zone) as _]);
        let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = socket.local_addr()?;
        let mut server = Server::new(catalog);
        server.register_socket(socket);
        Ok(Self { addr, zone, _server: server })
    }

    /// Where resolvers send their queries.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes `srv_name` list exactly `targets` (host, port), replacing what it listed.
    pub async fn set_srv(&self, srv_name: &str, targets: &[(&str, u16)]) {
        let owner = name(srv_name);
        self.zone.records_mut().await.remove(&RrKey::new(LowerName::new(&owner), RecordType::SRV));
        for (host, port) in targets {
            let srv = SRV::new(0, 10, *port, name(host));
            self.zone.upsert(Record::from_rdata(owner.clone(), TTL, RData::SRV(srv)), 1).await;
        }
    }

    /// Makes `host` resolve to `ip` alone.
    pub async fn set_a(&self, host: &str, ip: Ipv4Addr) {
        let owner = name(host);
        self.zone.records_mut().await.remove(&RrKey::new(LowerName::new(&owner), RecordType::A));
        self.zone.upsert(Record::from_rdata(owner, TTL, RData::A(A(ip))), 1).await;
    }
}

fn name(text: &str) -> Name {
    let fqdn = if text.ends_with('.') { text.to_owned() } else { format!("{text}.") };
    Name::from_str(&fqdn).unwrap_or_else(|e| panic!("test dns name {text:?}: {e}"))
}
