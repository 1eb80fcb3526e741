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
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::SkeinConfig;

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
    collector: JoinHandle<Result<(), skein_collector::CollectorError>>,
    query: JoinHandle<Result<(), skein_query::QueryError>>,
    collector_stop: CancellationToken,
    query_stop: CancellationToken,
    shutdown: CancellationToken,
}

impl AllInOne {
    /// Opens storage, binds every listener and starts serving. Returns once
    /// the node is ready: WALs are replayed and every port is bound.
    pub async fn start(config: SkeinConfig, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let mut registry = Registry::default();
        let storage_stop = shutdown.child_token();
        let storage = Storage::open(config.storage.clone(), &mut registry, storage_stop)
            .await
            .with_context(|| format!("opening storage in {}", config.storage.data_dir.display()))?;
        let writer: Arc<dyn ShardWriter> = storage.clone();
        let collector = CollectorServer::bind(config.collector.clone(), writer, &mut registry)
            .await
            .context("binding the OTLP collector")?;
        let tables = Tables { spans: storage.span_tables(), metrics: storage.metric_tables() };
        let query =
            QueryServer::bind(config.query.clone(), tables, registry).await.context("binding the query service")?;
        let addresses =
            Addresses { otlp_grpc: collector.grpc_addr(), otlp_http: collector.http_addr(), query: query.local_addr() };
        // The roles stop in order (collector, then storage, then query), so
        // each gets its own token rather than the shared one.
        let collector_stop = CancellationToken::new();
        let query_stop = CancellationToken::new();
        let collector = tokio::spawn(collector.run(collector_stop.clone()));
        let query = tokio::spawn(query.run(query_stop.clone()));
        info!(
            otlp_grpc = %addresses.otlp_grpc,
            otlp_http = %addresses.otlp_http,
            query = %addresses.query,
            data_dir = %config.storage.data_dir.display(),
            shards = config.storage.shards,
            "skein all-in-one ready"
        );
        Ok(Self { addresses, storage, collector, query, collector_stop, query_stop, shutdown })
    }

    pub fn addresses(&self) -> Addresses {
        self.addresses
    }

    /// Storage, for tests that want to force a flush.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// Serves until the shutdown token is cancelled, then shuts down in order:
    /// stop accepting spans, drain in-flight requests, flush storage, stop
    /// the query service.
    pub async fn run(self) -> anyhow::Result<()> {
        self.shutdown.cancelled().await;
        info!("shutting down: no longer accepting spans or metrics");
        self.collector_stop.cancel();
        let collector = self.collector.await.context("collector task panicked")?;
        let flushed = self.storage.close().await.context("flushing storage");
        self.query_stop.cancel();
        let query = self.query.await.context("query task panicked")?;
        collector.context("collector failed")?;
        flushed?;
        query.context("query service failed")?;
        info!("shutdown complete");
        Ok(())
    }
}
