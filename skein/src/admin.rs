//! The HTTP health and metrics endpoints of roles that have no HTTP API of
//! their own: `/healthz` (the process runs), `/readyz` (it accepts work;
//! 503 once shutting down or when the role's own check fails, e.g. an
//! unreachable object store) and `/metrics` (its Prometheus registry).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// How long `/readyz` waits for a role's check (probes time out too).
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A role's own readiness condition: `Err` says why it is not ready.
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// `/readyz` and `/metrics`; ready until `stopping` is cancelled, and while
/// `check` (if any) passes.
pub fn readiness_and_metrics(
    registry: Arc<Registry>,
    stopping: CancellationToken,
    check: Option<ReadyCheck>,
) -> Router {
    Router::new()
        .route(
            "/readyz",
            get(move || {
                let (stopping, check) = (stopping.clone(), check.clone());
                async move {
                    if stopping.is_cancelled() {
                        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
                    }
                    let Some(check) = check else {
                        return (StatusCode::OK, "ready\n").into_response();
                    };
                    match tokio::time::timeout(READY_CHECK_TIMEOUT, check()).await {
                        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
                        Ok(Err(reason)) => {
                            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")).into_response()
                        }
                        Err(_) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: the readiness check did not finish within {READY_CHECK_TIMEOUT:?}\n"),
                        )
                            .into_response(),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let registry = Arc::clone(&registry);
                async move { encode(&registry) }
            }),
        )
}

/// The readiness and metrics routes plus `/healthz`.
pub fn router(registry: Arc<Registry>, stopping: CancellationToken, check: Option<ReadyCheck>) -> Router {
    readiness_and_metrics(registry, stopping, check).route("/healthz", get(|| async { "ok\n" }))
}

fn encode(registry: &Registry) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics: {e}\n")).into_response(),
    }
}
