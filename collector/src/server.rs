//! Binding both listeners and serving them until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use prometheus_client::registry::Registry;
use skein_model::{ConvertLimits, ShardWriter};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::grpc::GrpcEndpoint;
use crate::ingest::Ingest;
use crate::metrics::CollectorMetrics;
use crate::signal::{Metrics, Traces};
use crate::{CollectorConfig, CollectorError};

/// The collector role: an OTLP/gRPC and an OTLP/HTTP receiver, each for
/// traces and metrics, sharing one ingest path (and one concurrency limit)
/// in front of a [`ShardWriter`].
pub struct CollectorServer {
    config: CollectorConfig,
    ingest: Arc<Ingest>,
    grpc: TcpListener,
    http: TcpListener,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    /// Routes served on the OTLP/HTTP port beside OTLP (readiness, metrics).
    extra_routes: Router,
}

impl CollectorServer {
    /// Binds both listeners (port 0 allowed) and registers metrics; nothing
    /// is served until `run`.
    pub async fn bind(
        config: CollectorConfig,
        writer: Arc<dyn ShardWriter>,
        registry: &mut Registry,
    ) -> Result<Self, CollectorError> {
        config.validate().map_err(CollectorError::Config)?;
        let (grpc, grpc_addr) = listen("OTLP/gRPC", config.grpc_listen).await?;
        let (http, http_addr) = listen("OTLP/HTTP", config.http_listen).await?;
        let metrics = CollectorMetrics::register(registry);
        let limits = ConvertLimits { max_attribute_value_bytes: config.max_attribute_value_bytes };
        let ingest = Arc::new(Ingest::new(writer, limits, config.max_concurrent_requests, metrics));
        Ok(Self { config, ingest, grpc, http, grpc_addr, http_addr, extra_routes: Router::new() })
    }

    /// Also serves `routes` on the OTLP/HTTP port (a collector running
    /// alone serves its `/readyz` and `/metrics` there).
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.extra_routes = routes;
        self
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and lets
    /// in-flight requests finish. If either receiver fails, the other is
    /// stopped too and the failure returned.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), CollectorError> {
        let stop = shutdown.child_token();
        let max_request_bytes = self.config.max_request_bytes;

        let grpc = tonic::transport::Server::builder()
            .add_service(GrpcEndpoint::<Traces>::new(Arc::clone(&self.ingest), max_request_bytes))
            .add_service(GrpcEndpoint::<Metrics>::new(Arc::clone(&self.ingest), max_request_bytes))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(self.grpc).with_nodelay(Some(true)),
                stop.clone().cancelled_owned(),
            );
        let grpc = async { grpc.await.map_err(|e| CollectorError::Serve { what: "OTLP/gRPC", reason: e.to_string() }) };

        let router = crate::http::router(Arc::clone(&self.ingest), &self.config)?.merge(self.extra_routes);
        let http = async {
            crate::http_serve::serve(self.http, router, self.config.header_read_timeout, stop.clone()).await;
            Ok(())
        };

        info!(grpc = %self.grpc_addr, http = %self.http_addr, "collector serving otlp");
        let (grpc, http) = tokio::join!(stop_other_on_exit(grpc, &stop), stop_other_on_exit(http, &stop));
        info!("collector stopped");
        grpc.and(http)
    }
}

async fn listen(what: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), CollectorError> {
    let bind_error = |source| CollectorError::Bind { what, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// Runs one receiver; when it ends for any reason, the other is told to stop.
async fn stop_other_on_exit(
    server: impl Future<Output = Result<(), CollectorError>>,
    stop: &CancellationToken,
) -> Result<(), CollectorError> {
    let result = server.await;
    stop.cancel();
    result
}
