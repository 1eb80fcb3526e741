//! One query engine per tenant. Each tenant's engine is built over that
//! tenant's own shard tables ([`TenantTables`]), so whatever SQL a request
//! runs (joins, subqueries, `information_schema`, `EXPLAIN`) it can only
//! see its tenant's rows: isolation does not rest on rewriting queries.
//! API handlers take [`TenantState`], which resolves the request's tenant
//! (set by the listener's checks, see `RequestTenant`) to its engine.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use skein_model::security::{DEFAULT_TENANT, RequestTenant};

use crate::server::AppState;
use crate::{QueryConfig, QueryEngine, QueryError, Tables};

/// Engines kept at most; past it one is dropped (an engine is cheap to
/// build again), so tenants named by `X-Scope-OrgID` cannot grow the cache
/// without bound on a query node, where no storage limit stops them.
const MAX_CACHED_ENGINES: usize = 256;

/// Where each tenant's shard tables come from.
#[async_trait]
pub trait TenantTables: Send + Sync + 'static {
    /// The tables of `tenant` (opening its storage on first use).
    async fn tables(&self, tenant: &str) -> Result<Tables, QueryError>;
}

/// The engines of the tenants queried so far.
pub(crate) enum TenantEngines {
    /// One engine for every request, whatever its tenant (embedders and
    /// tests holding one tenant's data).
    Single(Arc<QueryEngine>),
    /// An engine per tenant, built on its first request.
    PerTenant {
        tables: Arc<dyn TenantTables>,
        config: Arc<QueryConfig>,
        /// Never held across an await: opening a tenant's storage (a WAL
        /// replay) must not hold up the requests of the others.
        engines: parking_lot::Mutex<HashMap<Arc<str>, Arc<QueryEngine>>>,
    },
}

impl std::fmt::Debug for TenantEngines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenantEngines::Single(_) => f.write_str("TenantEngines::Single"),
            TenantEngines::PerTenant { .. } => f.write_str("TenantEngines::PerTenant"),
        }
    }
}

impl TenantEngines {
    pub(crate) async fn engine(&self, tenant: &str) -> Result<Arc<QueryEngine>, QueryError> {
        match self {
            TenantEngines::Single(engine) => Ok(Arc::clone(engine)),
            TenantEngines::PerTenant { tables, config, engines } => {
                if let Some(engine) = engines.lock().get(tenant) {
                    return Ok(Arc::clone(engine));
                }
                let engine = Arc::new(QueryEngine::new(config, tables.tables(tenant).await?)?);
                let mut engines = engines.lock();
                // Another request may have built one meanwhile: keep the first.
                if let Some(built) = engines.get(tenant) {
                    return Ok(Arc::clone(built));
                }
                if engines.len() >= MAX_CACHED_ENGINES
                    && let Some(evicted) = engines.keys().find(|t| &***t != DEFAULT_TENANT).cloned()
                {
                    // Queries running on it keep their Arc and finish.
                    engines.remove(&evicted);
                }
                engines.insert(Arc::from(tenant), Arc::clone(&engine));
                Ok(engine)
            }
        }
    }

    /// Stops the running queries of every tenant.
    pub(crate) fn shutdown(&self) {
        match self {
            TenantEngines::Single(engine) => engine.shutdown(),
            TenantEngines::PerTenant { engines, .. } => engines.lock().values().for_each(|e| e.shutdown()),
        }
    }
}

/// The API's state as seen by one request: its tenant's engine.
pub(crate) struct TenantState(pub Arc<AppState>);

impl FromRequestParts<Arc<AppState>> for TenantState {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let tenant = parts.extensions.get::<RequestTenant>().map_or(DEFAULT_TENANT, |t| &*t.0);
        match state.for_tenant(tenant).await {
            Ok(state) => Ok(TenantState(state)),
            Err(error) => Err(error.into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use skein_model::ErrorClass;
    use skein_model::security::ListenerSecurity;
    use tower::ServiceExt;

    use super::*;
    use crate::test_support::mem_tables;

    /// `default` holds both test shards' spans, `half` only the first's;
    /// `refused` cannot be opened.
    struct TwoTenants;

    #[async_trait]
    impl TenantTables for TwoTenants {
        async fn tables(&self, tenant: &str) -> Result<Tables, QueryError> {
            let mut tables = mem_tables();
            match tenant {
                "default" => Ok(tables),
                "half" => {
                    tables.spans.truncate(1);
                    Ok(tables)
                }
                _ => Err(QueryError::TenantStorage {
                    tenant: tenant.to_owned(),
                    class: ErrorClass::PermissionDenied,
                    source: "over the tenant limit".into(),
                }),
            }
        }
    }

    /// Every tenant has the test tables.
    struct AnyTenant;

    #[async_trait]
    impl TenantTables for AnyTenant {
        async fn tables(&self, _tenant: &str) -> Result<Tables, QueryError> {
            Ok(mem_tables())
        }
    }

    #[tokio::test]
    async fn the_engine_cache_stays_bounded_and_keeps_the_default_tenant() {
        let engines = TenantEngines::PerTenant {
            tables: Arc::new(AnyTenant),
            config: Arc::new(crate::test_support::test_config()),
            engines: parking_lot::Mutex::new(HashMap::new()),
        };
        let default = engines.engine(DEFAULT_TENANT).await.expect("default");
        for n in 0..MAX_CACHED_ENGINES + 20 {
            engines.engine(&format!("t{n}")).await.expect("engine");
        }
        let TenantEngines::PerTenant { engines: cache, .. } = &engines else { unreachable!() };
        let cache = cache.lock();
        assert_eq!(cache.len(), MAX_CACHED_ENGINES);
        assert!(Arc::ptr_eq(&cache[DEFAULT_TENANT], &default), "the default tenant's engine is kept");
    }

    async fn count(router: &axum::Router, org_id: Option<&str>) -> (StatusCode, serde_json::Value) {
        let mut request =
            Request::builder().method("POST").uri("/api/v1/sql").header("content-type", "application/json");
        if let Some(org_id) = org_id {
            request = request.header("x-scope-orgid", org_id);
        }
        let body = Body::from(r#"{"sql": "SELECT count(*) FROM spans"}"#);
        let response = router.clone().oneshot(request.body(body).expect("request")).await.expect("answers");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        (status, serde_json::from_slice(&body).expect("json"))
    }

    #[tokio::test]
    async fn each_tenant_queries_its_own_tables_and_the_header_counts_only_when_multi_tenant() {
        let security = ListenerSecurity { multi_tenant: true, ..Default::default() };
        let router = crate::server::test_tenant_router(Arc::new(TwoTenants), &security).await;
        let (status, all) = count(&router, None).await;
        assert_eq!(status, StatusCode::OK, "{all}");
        let (status, half) = count(&router, Some("half")).await;
        assert_eq!(status, StatusCode::OK, "{half}");
        let (all, half) = (all["rows"][0][0].as_i64().expect("count"), half["rows"][0][0].as_i64().expect("count"));
        assert!(0 < half && half < all, "half {half}, all {all}");

        let (status, body) = count(&router, Some("refused")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains("tenant refused"), "{body}");
        let (status, body) = count(&router, Some("no/such")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        let single = crate::server::test_tenant_router(Arc::new(TwoTenants), &ListenerSecurity::default()).await;
        let (_, ignored) = count(&single, Some("half")).await;
        assert_eq!(ignored["rows"][0][0].as_i64(), Some(all), "without multi_tenant the header is ignored");
    }
}
