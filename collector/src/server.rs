//! Binding both listeners and serving them until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use prometheus_client::registry::Registry;
use skein_model::security::{ListenerSecurity, ORG_ID_HEADER, RequestTenant, Scope, SecureIncoming};
use skein_model::{ConvertLimits, ShardWriter, SingleTenantWriter, TenantWriters};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tracing::info;

use crate::grpc::GrpcEndpoint;
use crate::ingest::Ingest;
use crate::metrics::CollectorMetrics;
use crate::signal::{Logs, Metrics, Traces};
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
    security: ListenerSecurity,
}

impl CollectorServer {
    /// Binds both listeners (port 0 allowed) and registers metrics; nothing
    /// is served until `run`. Every tenant's rows go to `writer` (embedders
    /// and tests holding one tenant's data).
    pub async fn bind(
        config: CollectorConfig,
        writer: Arc<dyn ShardWriter>,
        registry: &mut Registry,
    ) -> Result<Self, CollectorError> {
        Self::bind_tenants(config, Arc::new(SingleTenantWriter(writer)), registry).await
    }

    /// As [`CollectorServer::bind`], writing each request to the storage of
    /// the tenant it acts for.
    pub async fn bind_tenants(
        config: CollectorConfig,
        writers: Arc<dyn TenantWriters>,
        registry: &mut Registry,
    ) -> Result<Self, CollectorError> {
        config.validate().map_err(CollectorError::Config)?;
        let (grpc, grpc_addr) = listen("OTLP/gRPC", config.grpc_listen).await?;
        let (http, http_addr) = listen("OTLP/HTTP", config.http_listen).await?;
        let metrics = CollectorMetrics::register(registry);
        let limits = ConvertLimits { max_attribute_value_bytes: config.max_attribute_value_bytes };
        let ingest = Arc::new(Ingest::new(
            writers,
            limits,
            config.max_concurrent_requests,
            metrics,
            config.tenant_ingest.clone(),
        ));
        Ok(Self {
            config,
            ingest,
            grpc,
            http,
            grpc_addr,
            http_addr,
            extra_routes: Router::new(),
            security: ListenerSecurity::default(),
        })
    }

    /// Also serves `routes` on the OTLP/HTTP port (a collector running
    /// alone serves its `/readyz` and `/metrics` there).
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.extra_routes = routes;
        self
    }

    /// Serves both ports over TLS and/or checks bearer tokens (scope
    /// `ingest`) on them, as `security` says.
    pub fn with_security(mut self, security: ListenerSecurity) -> Self {
        self.security = security;
        self
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The OTLP/HTTP routes with this server's ingest path, limits and
    /// security, without a listener: for serving them in-process (the fuzz
    /// targets drive requests through it).
    pub fn http_router(&self) -> Result<Router, CollectorError> {
        Ok(crate::http::router(Arc::clone(&self.ingest), &self.config, &self.security)?
            .merge(self.extra_routes.clone()))
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and lets
    /// in-flight requests finish. If either receiver fails, the other is
    /// stopped too and the failure returned.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), CollectorError> {
        let stop = shutdown.child_token();
        let router = self.http_router()?;
        let max_request_bytes = self.config.max_request_bytes;

        let (tls, first_bytes_timeout) = (self.security.tls.clone(), self.config.header_read_timeout);
        let incoming = |what, listener| {
            SecureIncoming::spawn(what, listener, tls.clone(), first_bytes_timeout, stop.clone())
                .map_err(|e| CollectorError::Serve { what, reason: e.to_string() })
        };
        let grpc_incoming = incoming("otlp/grpc", self.grpc)?;
        let http_incoming = incoming("otlp/http", self.http)?;

        let check = grpc_auth(&self.security);
        let grpc = tonic::transport::Server::builder()
            .add_service(InterceptedService::new(
                GrpcEndpoint::<Traces>::new(Arc::clone(&self.ingest), max_request_bytes),
                check.clone(),
            ))
            .add_service(InterceptedService::new(
                GrpcEndpoint::<Metrics>::new(Arc::clone(&self.ingest), max_request_bytes),
                check.clone(),
            ))
            .add_service(InterceptedService::new(
                GrpcEndpoint::<Logs>::new(Arc::clone(&self.ingest), max_request_bytes),
                check,
            ))
            .serve_with_incoming_shutdown(grpc_incoming.into_stream(), stop.clone().cancelled_owned());
        let grpc = async { grpc.await.map_err(|e| CollectorError::Serve { what: "OTLP/gRPC", reason: e.to_string() }) };

        let http = async {
            crate::http_serve::serve(http_incoming, router, self.config.header_read_timeout, stop.clone()).await;
            Ok(())
        };

        info!(
            grpc = %self.grpc_addr,
            http = %self.http_addr,
            tls = self.security.tls.is_some(),
            auth = self.security.auth.is_some(),
            "collector serving otlp"
        );
        let (grpc, http) = tokio::join!(stop_other_on_exit(grpc, &stop), stop_other_on_exit(http, &stop));
        info!("collector stopped");
        grpc.and(http)
    }
}

/// The gRPC checks run on the request's metadata before its message is
/// decoded: the bearer token (scope `ingest`, without `[auth]` none), then
/// the tenant the request acts for, which the handler finds in its
/// extensions.
fn grpc_auth(
    security: &ListenerSecurity,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone + Send + Sync + 'static {
    let security = security.clone();
    move |mut request: tonic::Request<()>| {
        let principal = match &security.auth {
            Some(auth) => {
                let authorization = request.metadata().get("authorization").map(|v| v.as_bytes());
                let principal = auth.authorize(authorization, Scope::Ingest).map_err(|error| {
                    tracing::debug!(%error, "otlp/grpc request refused");
                    CollectorError::Auth(error).to_grpc_status()
                })?;
                Some(principal)
            }
            None => None,
        };
        let org_id = request.metadata().get(ORG_ID_HEADER).map(|v| v.as_bytes());
        let tenant = security.tenant(principal.as_ref(), org_id).map_err(|error| {
            tracing::debug!(%error, "otlp/grpc request refused");
            CollectorError::Tenant(error).to_grpc_status()
        })?;
        if let Some(principal) = principal {
            request.extensions_mut().insert(principal);
        }
        request.extensions_mut().insert(RequestTenant(tenant));
        Ok(request)
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
