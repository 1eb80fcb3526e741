//! The HTTP side of the query service: the router, health and readiness,
//! Prometheus metrics, and the listener's lifecycle.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use prometheus_client::registry::Registry;
use skein_model::ErrorClass;
use skein_model::security::{
    Authenticator, DEFAULT_TENANT, ListenerSecurity, MaybeTlsStream, ORG_ID_HEADER, Principal, RequestTenant, Scope,
    SecureIncoming,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::cluster_api::{self, Topology};
use crate::concurrency_limits::{ConcurrencyLimits, LimitPer};
use crate::metrics::QueryMetrics;
use crate::tenancy::{TenantEngines, TenantTables};
use crate::{
    QueryConfig, QueryEngine, QueryError, Tables, jaeger, logs_api, metric_exemplars, metrics_api, prom, search,
    service_stats, services, span_links, sql_api, tempo, trace_outline, trace_summary, traces, ui,
};

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// How long a new connection may take to complete its TLS handshake (or,
/// in clear text, to send its first byte).
const FIRST_BYTES_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What every handler shares. The router holds the default tenant's;
/// API handlers get their request's tenant's through [`TenantState`].
#[derive(Debug)]
pub(crate) struct AppState {
    /// The engine over the tables of the tenant this state serves.
    pub(crate) engine: Arc<QueryEngine>,
    pub(crate) config: Arc<QueryConfig>,
    metrics: QueryMetrics,
    process: Arc<ProcessState>,
    pub(crate) topology: Topology,
    pub(crate) local_addr: SocketAddr,
}

/// Where the engines' tables come from.
enum TableSource {
    /// The same tables for every request (one tenant's data).
    Single(Tables),
    /// Each tenant's own.
    PerTenant(Arc<dyn TenantTables>),
}

/// What the whole query service shares, whichever tenant asks.
#[derive(Debug)]
struct ProcessState {
    registry: Registry,
    serving: AtomicBool,
    engines: TenantEngines,
}

impl AppState {
    /// The state over `engines`, whose default tenant's engine is
    /// `default_engine`.
    fn new(
        config: QueryConfig,
        engines: TenantEngines,
        default_engine: Arc<QueryEngine>,
        mut registry: Registry,
        topology: Topology,
        local_addr: SocketAddr,
    ) -> Self {
        let metrics = QueryMetrics::register(&mut registry);
        let process = Arc::new(ProcessState { registry, serving: AtomicBool::new(false), engines });
        Self { engine: default_engine, config: Arc::new(config), metrics, process, topology, local_addr }
    }

    /// The state over one set of tables for every tenant.
    fn single(
        config: QueryConfig,
        tables: Tables,
        registry: Registry,
        topology: Topology,
        local_addr: SocketAddr,
    ) -> Result<Self, QueryError> {
        let engine = Arc::new(QueryEngine::new(&config, tables)?);
        let engines = TenantEngines::Single(Arc::clone(&engine));
        Ok(Self::new(config, engines, engine, registry, topology, local_addr))
    }

    /// The state over each tenant's own tables.
    async fn per_tenant(
        config: QueryConfig,
        tables: Arc<dyn TenantTables>,
        registry: Registry,
        topology: Topology,
        local_addr: SocketAddr,
    ) -> Result<Self, QueryError> {
        let engines = TenantEngines::PerTenant {
            tables,
            config: Arc::new(config.clone()),
            engines: parking_lot::Mutex::new(Default::default()),
        };
        let engine = engines.engine(DEFAULT_TENANT).await?;
        Ok(Self::new(config, engines, engine, registry, topology, local_addr))
    }

    /// The state of a request acting for `tenant`: its tenant's engine.
    pub(crate) async fn for_tenant(&self, tenant: &str) -> Result<Arc<AppState>, QueryError> {
        let engine = self.process.engines.engine(tenant).await?;
        Ok(Arc::new(Self {
            engine,
            config: Arc::clone(&self.config),
            metrics: self.metrics.clone(),
            process: Arc::clone(&self.process),
            topology: self.topology.clone(),
            local_addr: self.local_addr,
        }))
    }

    /// This process's role, as `/api/v1/cluster` names it.
    pub(crate) fn role_name(&self) -> &'static str {
        match self.topology {
            Topology::AllInOne => "all-in-one",
            Topology::Cluster(_) => "query",
        }
    }

    /// Runs one request's work, records its duration and outcome, and turns
    /// an error into its JSON response.
    pub(crate) async fn observe(
        &self,
        endpoint: &'static str,
        work: impl Future<Output = Result<Response, QueryError>>,
    ) -> Response {
        self.observe_with(endpoint, work, IntoResponse::into_response).await
    }

    /// As [`AppState::observe`], with the error body of a compatibility
    /// API (`render`; the status still comes from the error's class).
    pub(crate) async fn observe_with(
        &self,
        endpoint: &'static str,
        work: impl Future<Output = Result<Response, QueryError>>,
        render: impl FnOnce(QueryError) -> Response,
    ) -> Response {
        let started = Instant::now();
        let outcome = work.await;
        let elapsed = started.elapsed();
        match outcome {
            Ok(response) => {
                self.metrics.observe(endpoint, elapsed, None);
                debug!(endpoint, elapsed_ms = elapsed.as_millis() as u64, "query answered");
                response
            }
            Err(err) => {
                let class = err.class();
                self.metrics.observe(endpoint, elapsed, Some(&class));
                if class == ErrorClass::Internal {
                    warn!(endpoint, error = %err, "query failed");
                } else {
                    debug!(endpoint, code = class.name(), error = %err, "query refused");
                }
                render(err)
            }
        }
    }
}

/// The query role's HTTP API, bound and ready to serve.
pub struct QueryServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<AppState>,
    security: ListenerSecurity,
}

impl QueryServer {
    /// Binds the listener (port 0 allowed) over the shards' `tables`, the
    /// same for every tenant (embedders and tests holding one tenant's data);
    /// `registry` is the process's metrics registry: the query metrics are
    /// registered in it and it is served, whole, at `/metrics`.
    pub async fn bind(config: QueryConfig, tables: Tables, registry: Registry) -> Result<Self, QueryError> {
        Self::bind_source(config, TableSource::Single(tables), registry, Topology::AllInOne).await
    }

    /// As [`QueryServer::bind`], with each tenant's queries over that
    /// tenant's own tables, which are where `topology` says.
    pub async fn bind_tenants(
        config: QueryConfig,
        tables: Arc<dyn TenantTables>,
        registry: Registry,
        topology: Topology,
    ) -> Result<Self, QueryError> {
        Self::bind_source(config, TableSource::PerTenant(tables), registry, topology).await
    }

    async fn bind_source(
        config: QueryConfig,
        tables: TableSource,
        registry: Registry,
        topology: Topology,
    ) -> Result<Self, QueryError> {
        config.validate().map_err(QueryError::Config)?;
        let addr = config.listen;
        let listener = TcpListener::bind(addr).await.map_err(|source| QueryError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| QueryError::Bind { addr, source })?;
        let state = Arc::new(match tables {
            TableSource::Single(tables) => AppState::single(config, tables, registry, topology, local_addr)?,
            TableSource::PerTenant(tables) => {
                AppState::per_tenant(config, tables, registry, topology, local_addr).await?
            }
        });
        info!(addr = %local_addr, "query service listening");
        Ok(Self { listener, local_addr, state, security: ListenerSecurity::default() })
    }

    /// Serves over TLS and/or checks bearer tokens (scope `query`) on the
    /// API, as `security` says; health checks, `/metrics` and the UI's
    /// static files stay open (the UI signs in with a token).
    pub fn with_security(mut self, security: ListenerSecurity) -> Self {
        self.security = security;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The HTTP API and UI routes over this server's engines, limits and
    /// security, without a listener: for serving them in-process (the fuzz
    /// targets drive requests through it).
    pub fn router(&self) -> Router {
        router(Arc::clone(&self.state), &self.security)
    }

    /// Serves until `shutdown` is cancelled; then stops running queries,
    /// lets in-flight responses finish and returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), QueryError> {
        let incoming = SecureIncoming::spawn(
            "query",
            self.listener,
            self.security.tls.clone(),
            FIRST_BYTES_TIMEOUT,
            shutdown.child_token(),
        )
        .map_err(QueryError::Serve)?;
        let state = Arc::clone(&self.state);
        state.process.serving.store(true, Ordering::SeqCst);
        let stopping = {
            let state = Arc::clone(&state);
            async move {
                shutdown.cancelled().await;
                info!("query service stopping");
                state.process.serving.store(false, Ordering::SeqCst);
                state.process.engines.shutdown();
            }
        };
        info!(
            addr = %self.local_addr,
            tls = self.security.tls.is_some(),
            auth = self.security.auth.is_some(),
            "query service serving"
        );
        let router = router(state, &self.security);
        axum::serve(SecureListener(incoming), router)
            .with_graceful_shutdown(stopping)
            .await
            .map_err(QueryError::Serve)?;
        info!("query service stopped");
        Ok(())
    }
}

/// [`SecureIncoming`] as axum's listener (the query port here, a storage
/// node's admin port in the binary).
pub struct SecureListener(pub SecureIncoming);

impl axum::serve::Listener for SecureListener {
    type Io = MaybeTlsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.next().await {
                Some(stream) => {
                    let peer = stream.peer_addr().unwrap_or(self.0.local_addr());
                    return (stream, peer);
                }
                // Stopped: axum stops accepting on the same shutdown.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.0.local_addr())
    }
}

fn router(state: Arc<AppState>, security: &ListenerSecurity) -> Router {
    let header_chooses_tenant = security.multi_tenant && security.auth.is_none();
    let body_limit = state.config.max_body_bytes;
    let mut api = Router::new()
        .route("/api/v1/sql", post(sql_api::post_sql))
        .route("/api/v1/traces/{trace_id}", get(traces::get_trace))
        .route("/api/v1/traces/{trace_id}/outline", get(trace_outline::get_outline))
        .route("/api/v1/traces/{trace_id}/summary", get(trace_summary::get_summary))
        .route("/api/v1/traces/{trace_id}/spans/{span_id}", get(trace_outline::get_span))
        .route("/api/v1/traces/{trace_id}/spans/{span_id}/linked_from", get(span_links::get_linked_from))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/logs", get(logs_api::get_logs))
        .route("/api/v1/logs/volume", get(logs_api::get_volume))
        .route("/api/v1/traces/{trace_id}/logs", get(logs_api::get_trace_logs))
        .route("/api/v1/services", get(services::list_services))
        .route("/api/v1/services/{service}/operations", get(services::list_operations))
        .route("/api/v1/service_stats", get(service_stats::get_service_stats))
        .route("/api/v1/service_graph", get(service_stats::get_service_graph))
        .route("/api/v1/metrics", get(metrics_api::list_metrics))
        .route("/api/v1/metrics/query_range", get(metrics_api::query_range))
        .route("/api/v1/metrics/{name}/series", get(metrics_api::list_series))
        .route("/api/v1/metrics/{name}/exemplars", get(metric_exemplars::get_exemplars))
        .route("/api/v1/cluster", get(cluster_api::get_cluster))
        .route("/api/v1/session", get(session).layer(Extension(HeaderChoosesTenant(header_chooses_tenant))))
        .merge(tempo::routes())
        .merge(jaeger::routes(&state.config.jaeger.base_path))
        .merge(prom::routes());
    // Every API route acts for a tenant and, with `[auth]`, needs a token
    // with the query scope (checked first: the outer layer); only the
    // routes added below (health, metrics, the UI's files) stay open.
    let tenants = TenantCheck {
        security: security.clone(),
        limits: match state.config.max_concurrent_requests_per_tenant {
            0 => None,
            limit => Some(Arc::new(ConcurrencyLimits::new(limit, LimitPer::Tenant))),
        },
    };
    api = api.route_layer(middleware::from_fn_with_state(tenants, settle_tenant));
    if let Some(auth) = security.auth.clone() {
        let limits = Arc::new(ConcurrencyLimits::new(state.config.max_concurrent_requests_per_token, LimitPer::Token));
        api = api.route_layer(middleware::from_fn_with_state(ApiAuth { auth, limits }, require_query));
    }
    api.route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(ui::serve)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// What the API's token check needs.
#[derive(Clone)]
struct ApiAuth {
    auth: Arc<Authenticator>,
    limits: Arc<ConcurrencyLimits>,
}

/// What the API's tenant check needs.
#[derive(Clone)]
struct TenantCheck {
    security: ListenerSecurity,
    /// `query.max_concurrent_requests_per_tenant`, when set.
    limits: Option<Arc<ConcurrencyLimits>>,
}

/// Lets a request through with a token of the query scope that has a free
/// request slot; the slot is held while the handler runs.
async fn require_query(State(api): State<ApiAuth>, mut request: Request, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let admitted = api
        .auth
        .authorize(authorization, Scope::Query)
        .map_err(QueryError::Auth)
        .and_then(|principal| Ok((api.limits.try_acquire(&principal.token_id)?, principal)));
    match admitted {
        Ok((_slot, principal)) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => {
            debug!(path = request.uri().path(), %error, "query request refused");
            error.into_response()
        }
    }
}

/// Settles the tenant the request acts for (its token's, or the one
/// `X-Scope-OrgID` names when multi-tenant without tokens) and takes one
/// of its request slots, held while the handler runs.
async fn settle_tenant(State(check): State<TenantCheck>, mut request: Request, next: Next) -> Response {
    let org_id = request.headers().get(ORG_ID_HEADER).map(|v| v.as_bytes());
    let admitted = check.security.tenant(request.extensions().get::<Principal>(), org_id).map_err(QueryError::Tenant);
    let admitted = admitted.and_then(|tenant| {
        let slot = check.limits.as_ref().map(|limits| limits.try_acquire(&tenant)).transpose()?;
        Ok((tenant, slot))
    });
    match admitted {
        Ok((tenant, _slot)) => {
            request.extensions_mut().insert(RequestTenant(tenant));
            next.run(request).await
        }
        Err(error) => {
            debug!(path = request.uri().path(), %error, "query request refused");
            error.into_response()
        }
    }
}

/// Whether `X-Scope-OrgID` chooses the tenant (multi-tenant without tokens).
#[derive(Debug, Clone, Copy)]
struct HeaderChoosesTenant(bool);

/// Who the caller is: the UI shows the tenant after sign-in, learns from
/// `auth: false` that no sign-in is needed and from `multi_tenant: true`
/// that it may offer a choice of tenant (sent as `X-Scope-OrgID`).
async fn session(
    principal: Option<Extension<Principal>>,
    tenant: Option<Extension<RequestTenant>>,
    Extension(HeaderChoosesTenant(multi_tenant)): Extension<HeaderChoosesTenant>,
) -> Response {
    let tenant = tenant.map_or(DEFAULT_TENANT.into(), |Extension(t)| t.0);
    let body = match principal {
        Some(Extension(principal)) => serde_json::json!({
            "auth": true,
            "tenant": &*tenant,
            "scopes": principal.scopes.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "token_name": principal.token_name.as_deref(),
        }),
        None => serde_json::json!({ "auth": false, "tenant": &*tenant, "multi_tenant": multi_tenant }),
    };
    Json(body).into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.process.serving.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready").into_response()
    } else {
        QueryError::ShuttingDown.into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.process.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Err(e) => QueryError::Encode(format!("metrics: {e}")).into_response(),
    }
}

/// The router over the test shards, without a listener.
#[cfg(test)]
pub(crate) fn test_router(config: QueryConfig) -> Router {
    test_router_with_state(config).0
}

#[cfg(test)]
pub(crate) fn test_router_with_state(config: QueryConfig) -> (Router, Arc<AppState>) {
    let addr = config.listen;
    let tables = crate::test_support::mem_tables();
    let state =
        Arc::new(AppState::single(config, tables, Registry::default(), Topology::AllInOne, addr).expect("test state"));
    (router(Arc::clone(&state), &ListenerSecurity::default()), state)
}

/// The router over each tenant's own `tables`, without a listener.
#[cfg(test)]
pub(crate) async fn test_tenant_router(tables: Arc<dyn TenantTables>, security: &ListenerSecurity) -> Router {
    let config = crate::test_support::test_config();
    let addr = config.listen;
    let state = AppState::per_tenant(config, tables, Registry::default(), Topology::AllInOne, addr).await;
    router(Arc::new(state.expect("test state")), security)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{mem_tables, request, test_config};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn health_and_unknown_routes() {
        let (status, _, body) = request(test_router(test_config()), "GET", "/healthz", String::new()).await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
        let (status, _, body) = request(test_router(test_config()), "GET", "/api/v1/nope", String::new()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["error"]["code"], "not_found");
    }

    #[tokio::test]
    async fn ready_only_while_serving() {
        let (router, state) = test_router_with_state(test_config());
        let (status, _, _) = request(router.clone(), "GET", "/readyz", String::new()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        state.process.serving.store(true, Ordering::SeqCst);
        let (status, _, _) = request(router, "GET", "/readyz", String::new()).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_count_durations_and_errors() {
        let (router, _) = test_router_with_state(test_config());
        request(router.clone(), "GET", "/api/v1/services", String::new()).await;
        request(router.clone(), "POST", "/api/v1/sql", r#"{"sql": "DROP TABLE spans"}"#.into()).await;
        let (status, headers, body) = request(router, "GET", "/metrics", String::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], OPENMETRICS_CONTENT_TYPE);
        let text = String::from_utf8(body.to_vec()).expect("utf8");
        assert!(text.contains("skein_query_duration_seconds_count{endpoint=\"services\"} 1"), "{text}");
        assert!(text.contains("skein_query_duration_seconds_count{endpoint=\"sql\"} 1"), "{text}");
        assert!(text.contains("skein_query_errors_total{endpoint=\"sql\",code=\"invalid_argument\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    /// Sends one HTTP/1.1 request over a fresh connection and returns the raw response.
    async fn http(addr: SocketAddr, request_line: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
        let request = format!("{request_line} HTTP/1.1\r\nhost: skein\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("sends");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("reads");
        response
    }

    #[tokio::test]
    async fn serves_on_a_real_port_until_shutdown() {
        let config = QueryConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..test_config() };
        let mut registry = Registry::default();
        let other = prometheus_client::metrics::counter::Counter::<u64>::default();
        registry.register("other_role_things", "a metric of another role", other.clone());
        other.inc();
        let server = QueryServer::bind(config, mem_tables(), registry).await.expect("binds");
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(server.run(shutdown.clone()));

        let ready = http(addr, "GET /readyz").await;
        assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
        let services = http(addr, "GET /api/v1/services").await;
        assert!(services.ends_with(r#"{"services":["cart","checkout","payments"]}"#), "{services}");
        let metrics = http(addr, "GET /metrics").await;
        assert!(metrics.contains("other_role_things_total 1"), "the whole process registry is served: {metrics}");

        shutdown.cancel();
        running.await.expect("joins").expect("stops cleanly");
    }

    #[tokio::test]
    async fn with_auth_every_api_needs_a_query_token_and_health_and_the_ui_stay_open() {
        use skein_model::security::create_token;
        use std::collections::BTreeSet;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.toml");
        let query = create_token("acme", BTreeSet::from([Scope::Query]), None, None).expect("token");
        let ingest = create_token("acme", BTreeSet::from([Scope::Ingest]), None, None).expect("token");
        std::fs::write(&path, format!("{}{}", query.entry.to_toml(), ingest.entry.to_toml())).expect("writes");
        let auth = Arc::new(Authenticator::load(path).expect("loads"));
        let (_, state) = test_router_with_state(test_config());
        let router = router(state, &ListenerSecurity { auth: Some(auth), ..Default::default() });
        let call = |path: &'static str, token: Option<&str>| {
            let mut request = axum::http::Request::builder().uri(path);
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let request = request.body(axum::body::Body::empty()).expect("request");
            let router = router.clone();
            async move { tower::ServiceExt::oneshot(router, request).await.expect("answers") }
        };
        // Skein's own API; the Tempo, Jaeger and Prometheus APIs.
        let apis = [
            "/api/v1/services",
            "/api/v1/session",
            "/api/search/tags",
            "/jaeger/api/services",
            "/api/v1/status/buildinfo",
        ];
        for path in apis {
            let refused = call(path, None).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(refused.headers()["www-authenticate"], "Bearer", "{path}");
            assert_eq!(call(path, Some(&ingest.token)).await.status(), StatusCode::FORBIDDEN, "{path}");
            assert_eq!(call(path, Some(&query.token)).await.status(), StatusCode::OK, "{path}");
        }
        for open in ["/healthz", "/metrics"] {
            assert_eq!(call(open, None).await.status(), StatusCode::OK, "{open}");
        }
        assert_ne!(call("/", None).await.status(), StatusCode::UNAUTHORIZED, "the UI's page loads to sign in");
    }

    #[tokio::test]
    async fn bind_refuses_invalid_config() {
        let config = QueryConfig { max_result_rows: 0, ..test_config() };
        let err = QueryServer::bind(config, mem_tables(), Registry::default()).await.err().expect("refused");
        assert!(matches!(err, QueryError::Config(_)), "{err}");
    }
}
