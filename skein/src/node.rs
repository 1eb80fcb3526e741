//! All roles in one process, wired through the same interfaces a cluster
//! uses: the collector writes through `ShardWriter`, the query service reads
//! through one DataFusion `TableProvider` per shard and signal. Each tenant
//! has its own storage (`TenantStorages`), so the writer and the tables are
//! those of the tenant a request acts for.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use prometheus_client::registry::Registry;
use serde::Serialize;
use skein_collector::CollectorServer;
use skein_model::TenantWriters;
use skein_query::{QueryError, QueryServer, Tables, TenantTables, Topology};
use skein_storage::{Storage, TenantStorages};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::SkeinConfig;
use crate::supervisor::Supervisor;

/// The addresses a running node actually bound (ports may have been 0).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Addresses {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub query: SocketAddr,
}

/// A running all-in-one node.
pub struct AllInOne {
    addresses: Addresses,
    storage: Arc<TenantStorages>,
    supervisor: Supervisor,
    shutdown: CancellationToken,
}

impl AllInOne {
    /// Opens storage, binds every listener and starts serving. Returns once
    /// the node is ready: WALs are replayed and every port is bound.
    pub async fn start(config: SkeinConfig, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let mut registry = Registry::default();
        // Storage's background flushing runs until its own close, not until
        // SIGTERM: the collector may still be draining then.
        let storage = TenantStorages::open(config.storage.clone(), &mut registry, CancellationToken::new())
            .await
            .with_context(|| format!("opening storage in {}", config.storage.data_dir.display()))?;
        let writers: Arc<dyn TenantWriters> = storage.clone();
        let security = config.listener_security(&shutdown)?;
        let collector = CollectorServer::bind_tenants(config.collector.clone(), writers, &mut registry)
            .await
            .context("binding the OTLP collector")?
            .with_security(security.clone());
        let tables = Arc::new(StorageTables(Arc::clone(&storage)));
        let query = QueryServer::bind_tenants(config.query.clone(), tables, registry, Topology::AllInOne)
            .await
            .context("binding the query service")?
            .with_security(security);
        let addresses =
            Addresses { otlp_grpc: collector.grpc_addr(), otlp_http: collector.http_addr(), query: query.local_addr() };
        // Shutdown order: stop accepting spans and drain, flush storage, stop queries.
        let mut supervisor = Supervisor::new();
        supervisor.spawn("collector", move |stop: CancellationToken| collector.run(stop));
        let closing = Arc::clone(&storage);
        supervisor.then("storage flush", async move { closing.close().await.context("flushing storage") });
        supervisor.spawn("query service", move |stop: CancellationToken| query.run(stop));
        info!(
            otlp_grpc = %addresses.otlp_grpc,
            otlp_http = %addresses.otlp_http,
            query = %addresses.query,
            data_dir = %config.storage.data_dir.display(),
            shards = config.storage.shards,
            tenants = storage.opened().len(),
            "skein all-in-one ready"
        );
        Ok(Self { addresses, storage, supervisor, shutdown })
    }

    pub fn addresses(&self) -> Addresses {
        self.addresses
    }

    /// The default tenant's storage, for tests that want to force a flush.
    pub fn storage(&self) -> Arc<Storage> {
        self.storage.default_tenant()
    }

    /// Every tenant's storage.
    pub fn tenants(&self) -> &Arc<TenantStorages> {
        &self.storage
    }

    /// The coordinator that runs the roles; `run` of it serves.
    pub fn into_supervisor(self) -> Supervisor {
        self.supervisor
    }

    /// Serves until the shutdown token is cancelled or a role stops, then
    /// shuts down in order: stop accepting spans, drain in-flight requests,
    /// flush storage, stop the query service.
    pub async fn run(self) -> anyhow::Result<()> {
        self.supervisor.run(self.shutdown).await
    }
}

/// The query service's view of the tenants' storage: each tenant's tables.
struct StorageTables(Arc<TenantStorages>);

#[async_trait]
impl TenantTables for StorageTables {
    async fn tables(&self, tenant: &str) -> Result<Tables, QueryError> {
        let storage = self.0.get(tenant).await.map_err(|e| QueryError::TenantStorage {
            tenant: tenant.to_owned(),
            class: e.class(),
            source: Box::new(e),
        })?;
        Ok(Tables {
            spans: storage.span_tables(),
            metrics: storage.metric_tables(),
            span_metrics: storage.span_metrics_tables(),
            logs: storage.log_tables(),
            trace_parts: storage.trace_parts_tables(),
            span_links: storage.span_links_tables(),
            span_start_bounds: None,
        })
    }
}
