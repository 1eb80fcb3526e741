//! Each role of a cluster as its own process: `skein storage`, `skein
//! collector` and `skein query`. They share the configuration file and
//! differ in what they start; each gets readiness, metrics and the
//! shutdown coordinator, and all-in-one (node.rs) is these roles in one
//! process without the network between them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use prometheus_client::registry::Registry;
use serde::Serialize;
use skein_collector::{CollectorServer, RemoteShardWriter};
use skein_model::security::{Authenticator, Scope, SecureIncoming};
use skein_model::{ShardMap, TenantWriters};
use skein_query::{QueryError, QueryServer, RemoteTenantTables, SecureListener, Topology};
use skein_storage::{
    InternalServer, NodeShards, StorageFlight, TenantStorages, WalPlacement, keep_tenants_owned_shards,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin;
use crate::config::SkeinConfig;
use crate::membership::{self, Membership};
use crate::supervisor::Supervisor;

/// How long a storage node's `/readyz` waits for the object store.
const OBJECT_STORE_CHECK_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a connection to the admin port may take to send its first
/// bytes (and finish a TLS handshake).
const ADMIN_FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(10);

/// Which role a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Collector,
    Storage,
    Query,
    AllInOne,
}

/// What a started role bound, for the ready file: the keys that apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoleAddresses {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_grpc: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_http: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<SocketAddr>,
}

/// A role that is ready and serving under its supervisor.
pub struct Started {
    pub addresses: RoleAddresses,
    pub supervisor: Supervisor,
}

/// A storage node: opens the shards it owns and serves them on its
/// internal port; `/healthz`, `/readyz` and `/metrics` on its admin port.
pub async fn start_storage(config: &SkeinConfig, shutdown: &CancellationToken) -> anyhow::Result<Started> {
    let node_id = config.cluster.node_id.clone();
    if node_id.is_empty() {
        bail!("the storage role needs cluster.node_id (or --node-id): one of cluster.storage_nodes");
    }
    let mut registry = Registry::default();
    let cluster_tls = config.cluster_tls(shutdown)?;
    // Failover needs the WAL where another node can replay it, and the
    // peers' addresses to see which of them are alive.
    let (fails_over, owned) = if membership::uses_dns(&config.cluster) {
        if config.storage.object_store.is_none() {
            bail!(
                "cluster.storage_dns needs storage.object_store on storage nodes: nodes that join or leave move \
                 shards, which needs the write-ahead log in the object store"
            );
        }
        (true, Vec::new())
    } else {
        let ids = config.cluster.storage_ids()?;
        if !ids.contains(&node_id) {
            bail!("cluster.node_id {node_id:?} is not in cluster.storage_nodes ({})", ids.join(", "));
        }
        let map = ShardMap::new(config.storage.shards, ids).context("invalid cluster.storage_nodes")?;
        let fails_over = if config.storage.object_store.is_none() {
            info!("shards do not fail over: without storage.object_store the write-ahead log is on this node's disk");
            false
        } else if config.cluster.storage_addresses().is_err() {
            warn!("shards do not fail over: cluster.storage_nodes has no addresses (list every node as id=host:port)");
            false
        } else {
            true
        };
        (fails_over, map.shards_of(&node_id))
    };
    let peers = match fails_over {
        true => Some(Membership::start(config, cluster_tls.as_ref(), &mut registry, Some(&node_id)).await?),
        false => None,
    };
    // Each tenant's storage opens the shards this node owns now: its live
    // share when shards fail over, else its share of the map.
    let node = match &peers {
        Some(peers) => {
            let (peers, id) = (Arc::clone(&peers.nodes), node_id.clone());
            NodeShards { wal: WalPlacement::ObjectStore, owned: Arc::new(move || peers.own_shards(&id)) }
        }
        None => NodeShards { wal: WalPlacement::LocalDisk, owned: Arc::new(move || owned.clone()) },
    };
    let wal = node.wal;
    let storage = TenantStorages::open_node(config.storage.clone(), node, &mut registry, CancellationToken::new())
        .await
        .with_context(|| format!("opening storage in {}", config.storage.data_dir.display()))?;
    let stopping = shutdown.child_token();
    let flight = StorageFlight::new(Arc::clone(&storage), node_id.clone());
    let internal =
        InternalServer::bind(config.cluster.internal_listen, flight, cluster_tls.as_ref().map(|t| t.server())).await;
    let internal = match internal {
        Ok(server) => server,
        Err(e) => {
            // Nothing was acknowledged yet, but replayed WAL data is flushed cleanly.
            storage.close().await.ok();
            return Err(e).context("binding the internal port");
        }
    };
    let security = config.listener_security(shutdown)?;
    let admin_listener = tokio::net::TcpListener::bind(config.cluster.admin_listen)
        .await
        .with_context(|| format!("binding the admin port {}", config.cluster.admin_listen))?;
    let admin_addr = admin_listener.local_addr()?;
    let addresses =
        RoleAddresses { internal: Some(internal.local_addr()), admin: Some(admin_addr), ..RoleAddresses::default() };

    let mut supervisor = Supervisor::new();
    if let Some(peers) = &peers {
        // First to stop: no shard changes hands while the node drains.
        let (storage, watched, id, interval) =
            (Arc::clone(&storage), Arc::clone(&peers.nodes), node_id.clone(), config.cluster.health_interval);
        // After that the others would take the shards over anyway.
        let hand_off_within = config.cluster.failover_after;
        supervisor.spawn("shard ownership", move |stop: CancellationToken| async move {
            keep_tenants_owned_shards(storage, watched, id, interval, hand_off_within, stop).await;
            anyhow::Ok(())
        });
        peers.watch_until_stopped(&mut supervisor, config, stopping.child_token());
    }
    // Stop taking writes (collectors get UNAVAILABLE and retry), then flush.
    supervisor.spawn("internal port", move |stop: CancellationToken| internal.serve(stop));
    let closing = Arc::clone(&storage);
    supervisor.then("storage flush", async move { closing.close().await.context("flushing storage") });
    // Last, so `/healthz` answers while the node drains and flushes.
    let checked = Arc::clone(&storage);
    let check: admin::ReadyCheck = Arc::new(move || {
        let storage = Arc::clone(&checked);
        Box::pin(async move { storage.check_object_store(OBJECT_STORE_CHECK_TIMEOUT).await.map_err(|e| e.to_string()) })
    });
    let router = admin::router(Arc::new(registry), stopping.clone(), Some(check))
        .merge(drain_routes(&storage, security.auth.clone()));
    let admin_tls = security.tls.clone();
    supervisor.spawn("admin http", move |stop: CancellationToken| async move {
        let incoming =
            SecureIncoming::spawn("admin", admin_listener, admin_tls, ADMIN_FIRST_BYTES_TIMEOUT, stop.child_token())?;
        axum::serve(SecureListener(incoming), router).with_graceful_shutdown(stop.cancelled_owned()).await
    });
    info!(
        node_id = %node_id,
        internal = %addresses.internal.map(|a| a.to_string()).unwrap_or_default(),
        admin = %admin_addr,
        shard_count = config.storage.shards,
        owned_shards = ?storage.default_tenant().local_shards(),
        tenants = storage.opened().len(),
        wal = ?wal,
        "skein storage ready"
    );
    Ok(Started { addresses, supervisor })
}

/// `POST /admin/drain` hands the node's shards to the others (with
/// failover; the node stays up holding nothing); `GET /admin/drain` tells
/// whether it is draining and which shards it still holds. With `auth`,
/// both need a token of the `admin` scope.
fn drain_routes(storage: &Arc<TenantStorages>, auth: Option<Arc<Authenticator>>) -> axum::Router {
    let status = |storage: &TenantStorages| {
        let shards = storage.default_tenant().local_shards();
        axum::Json(serde_json::json!({ "draining": storage.is_draining(), "shards": shards }))
    };
    let (for_post, for_get) = (Arc::clone(storage), Arc::clone(storage));
    let routes = axum::Router::new().route(
        "/admin/drain",
        axum::routing::post(move || async move {
            if for_post.default_tenant().wal_placement() != WalPlacement::ObjectStore {
                let message = "this node's shards cannot move: draining needs storage.object_store and the \
                               storage_nodes' addresses (see docs/cluster.md)";
                return (axum::http::StatusCode::CONFLICT, axum::Json(serde_json::json!({ "error": message })));
            }
            for_post.start_draining();
            (axum::http::StatusCode::ACCEPTED, status(&for_post))
        })
        .get(move || async move { (axum::http::StatusCode::OK, status(&for_get)) }),
    );
    match auth {
        Some(auth) => routes.route_layer(axum::middleware::from_fn_with_state(auth, require_admin)),
        None => routes,
    }
}

/// Lets a request through with a token of the `admin` scope.
async fn require_admin(
    axum::extract::State(auth): axum::extract::State<Arc<Authenticator>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let authorization = request.headers().get(axum::http::header::AUTHORIZATION).map(|v| v.as_bytes());
    match auth.authorize(authorization, Scope::Admin) {
        Ok(_) => next.run(request).await,
        Err(error) => {
            tracing::debug!(path = request.uri().path(), %error, "admin request refused");
            QueryError::Auth(error).into_response()
        }
    }
}

/// A collector: OTLP in, each shard's rows to the storage node that owns it.
pub async fn start_collector(config: &SkeinConfig, shutdown: &CancellationToken) -> anyhow::Result<Started> {
    let mut registry = Registry::default();
    let membership = Membership::start(config, config.cluster_tls(shutdown)?.as_ref(), &mut registry, None).await?;
    let nodes = Arc::clone(&membership.nodes);
    let writers: Arc<dyn TenantWriters> = Arc::new(RemoteShardWriter::new(Arc::clone(&nodes)));
    let security = config.listener_security(shutdown)?;
    let collector = CollectorServer::bind_tenants(config.collector.clone(), writers, &mut registry)
        .await
        .context("binding the OTLP collector")?
        .with_security(security);
    let stopping = shutdown.child_token();
    let collector = collector.with_routes(admin::readiness_and_metrics(Arc::new(registry), stopping.clone(), None));
    let addresses = RoleAddresses {
        otlp_grpc: Some(collector.grpc_addr()),
        otlp_http: Some(collector.http_addr()),
        ..RoleAddresses::default()
    };
    let mut supervisor = Supervisor::new();
    supervisor.spawn("collector", move |stop: CancellationToken| collector.run(stop));
    membership.watch_until_stopped(&mut supervisor, config, stopping);
    info!(otlp_grpc = ?addresses.otlp_grpc, otlp_http = ?addresses.otlp_http, storage_nodes = nodes.nodes().len(), "skein collector ready");
    Ok(Started { addresses, supervisor })
}

/// A query node: SQL and the HTTP API over every shard, read from the
/// storage nodes over Arrow Flight.
pub async fn start_query(config: &SkeinConfig, shutdown: &CancellationToken) -> anyhow::Result<Started> {
    let mut registry = Registry::default();
    let membership = Membership::start(config, config.cluster_tls(shutdown)?.as_ref(), &mut registry, None).await?;
    let nodes = Arc::clone(&membership.nodes);
    let tables = Arc::new(RemoteTenantTables(Arc::clone(&nodes)));
    let topology = Topology::Cluster(Arc::clone(&nodes));
    let query = QueryServer::bind_tenants(config.query.clone(), tables, registry, topology)
        .await
        .context("binding the query service")?
        .with_security(config.listener_security(shutdown)?);
    let addresses = RoleAddresses { query: Some(query.local_addr()), ..RoleAddresses::default() };
    let mut supervisor = Supervisor::new();
    supervisor.spawn("query", move |stop: CancellationToken| query.run(stop));
    membership.watch_until_stopped(&mut supervisor, config, shutdown.child_token());
    info!(query = ?addresses.query, storage_nodes = nodes.nodes().len(), "skein query ready");
    Ok(Started { addresses, supervisor })
}
