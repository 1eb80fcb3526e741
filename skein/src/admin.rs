//! The HTTP health and metrics endpoints of roles that have no HTTP API of
//! their own: `/healthz` (the process runs), `/readyz` (it accepts work;
//! 503 once shutting down) and `/metrics` (its Prometheus registry).

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `/readyz` and `/metrics`; ready until `stopping` is cancelled.
pub fn readiness_and_metrics(registry: Arc<Registry>, stopping: CancellationToken) -> Router {
    Router::new()
        .route(
            "/readyz",
            get(move || {
                let stopping = stopping.clone();
                async move {
                    if stopping.is_cancelled() {
                        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
                    } else {
                        (StatusCode::OK, "ready\n").into_response()
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
pub fn router(registry: Arc<Registry>, stopping: CancellationToken) -> Router {
    readiness_and_metrics(registry, stopping).route("/healthz", get(|| async { "ok\n" }))
}

fn encode(registry: &Registry) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics: {e}\n")).into_response(),
    }
}
