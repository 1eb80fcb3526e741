//! All roles in one process, wired through the same interfaces a cluster
//! uses: the collector writes through `ShardWriter`, the query service reads
//! through one DataFusion `TableProvider` per shard and signal.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use prometheus_client::registry::Registry;
use serde::Serialize;
use skein_collector::CollectorServer;
use skein_model::ShardWriter;
use skein_query::{QueryServer, Tables};
use skein_storage::Storage;
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
    storage: Arc<Storage>,
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
        let storage = Storage::open(config.storage.clone(), &mut registry, CancellationToken::new())
            .await
            .with_context(|| format!("opening storage in {}", config.storage.data_dir.display()))?;
        let writer: Arc<dyn ShardWriter> = storage.clone();
        let security = config.listener_security(&shutdown)?;
        let collector = CollectorServer::bind(config.collector.clone(), writer, &mut registry)
            .await
            .context("binding the OTLP collector")?
            .with_security(security.clone());
        let tables = Tables {
            spans: storage.span_tables(),
            metrics: storage.metric_tables(),
            span_metrics: storage.span_metrics_tables(),
            logs: storage.log_tables(),
            trace_parts: storage.trace_parts_tables(),
        };
        let query = QueryServer::bind(config.query.clone(), tables, registry)
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
            "skein all-in-one ready"
        );
        Ok(Self { addresses, storage, supervisor, shutdown })
    }

    pub fn addresses(&self) -> Addresses {
        self.addresses
    }

    /// Storage, for tests that want to force a flush.
    pub fn storage(&self) -> &Arc<Storage> {
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
