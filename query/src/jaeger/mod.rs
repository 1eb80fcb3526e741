//! The Jaeger query API, so the Jaeger UI and Jaeger-speaking tools work
//! against Skein. Served under `query.jaeger.base_path` (default `/jaeger`,
//! as Jaeger's `query.base-path`), since Tempo's API owns `/api/traces/{id}`
//! at the root of the port.
//!
//! - [`api`]: Jaeger's internal HTTP JSON API (what Jaeger UI calls), in
//!   its `{"data", "total", "limit", "offset", "errors"}` envelope, with
//!   traces in Jaeger's UI model ([`model`]).
//! - [`v3`]: api_v3's HTTP gateway, answering OTLP/JSON, and its trace
//!   summaries ([`summary`]).
//!
//! Both translate onto Skein's own machinery: trace lookup, the trace
//! search ([`query`] maps Jaeger's parameters onto a [`SearchQuery`]),
//! the service and operation listings and the service graph. Errors are
//! [`QueryError`]s, their status from the one class mapping, with Jaeger's
//! error bodies. As in Jaeger, unknown parameters are ignored.
//!
//! [`SearchQuery`]: crate::SearchQuery

mod api;
mod config;
mod model;
mod query;
mod summary;
mod v3;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use skein_model::ids;

pub use config::{BasePath, JaegerConfig};

use crate::params::Params;
use crate::server::AppState;
use crate::{Operation, QueryError};

/// The Jaeger routes under `base`, merged into the query service's router.
pub(crate) fn routes(base: &BasePath) -> Router<Arc<AppState>> {
    let api = Router::new()
        .route("/api/services", get(api::services))
        .route("/api/services/{service}/operations", get(api::service_operations))
        .route("/api/operations", get(api::operations))
        .route("/api/traces", get(api::find_traces))
        .route("/api/traces/{trace_id}", get(api::get_trace))
        .route("/api/dependencies", get(api::dependencies))
        .route("/api/v3/services", get(v3::services))
        .route("/api/v3/operations", get(v3::operations))
        .route("/api/v3/traces", get(v3::find_traces))
        .route("/api/v3/traces/{trace_id}", get(v3::get_trace))
        .route("/api/v3/trace-summaries", get(v3::trace_summaries))
        // Anything else under the API is Jaeger's 404, not the web UI.
        .route("/api/{*rest}", get(api::not_found));
    Router::new().nest(base.as_str(), api)
}

/// Jaeger's `structuredResponse` around `data`.
fn envelope(data: Value, total: usize) -> Response {
    axum::Json(json!({ "data": data, "total": total, "limit": 0, "offset": 0, "errors": null })).into_response()
}

/// `err` as Jaeger's internal API reports errors: the envelope with no
/// data and one `{code, msg}`, with the status of the error's class.
fn internal_error(err: QueryError) -> Response {
    let body = |status: StatusCode, msg: String| json!({ "data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{ "code": status.as_u16(), "msg": msg }] });
    render_error(err, body)
}

/// `err` as api_v3's HTTP gateway reports errors: `{"error": {"httpCode", "message"}}`.
fn v3_error(err: QueryError) -> Response {
    render_error(err, |status, message| json!({ "error": { "httpCode": status.as_u16(), "message": message } }))
}

fn render_error(err: QueryError, body: impl FnOnce(StatusCode, String) -> Value) -> Response {
    let class = err.class();
    let status = class.http_status();
    let mut response = (status, axum::Json(body(status, err.to_string()))).into_response();
    if let Some(value) = class.retry_after_header().and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A trace ID in stored form from Jaeger's text: 1 to 32 hex digits
/// (leading zeros may be left out, 64-bit IDs are 16), or, as api_v3
/// also accepts, the 16 bytes in base64.
fn trace_id(text: &str) -> Result<String, QueryError> {
    if let Some(id) = ids::normalize_trace_id(text) {
        return Ok(id);
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .filter_map(|engine| engine.decode(text).ok())
        .find(|bytes| bytes.len() == 16)
        .and_then(|bytes| ids::normalize_trace_id(&const_hex::encode(bytes)))
        .ok_or_else(|| {
            QueryError::InvalidRequest(format!(
                "cannot parse trace ID {text:?}: expected up to 32 hex digits (or 16 bytes in base64), not all zero"
            ))
        })
}

/// An integer parameter in `unit_ns` units since the epoch (or a duration), as nanoseconds.
fn integer_param(params: &Params, name: &str, unit_ns: i64) -> Result<Option<i64>, QueryError> {
    params
        .single(name)?
        .map(|text| {
            text.parse::<i64>().ok().and_then(|n| n.checked_mul(unit_ns)).filter(|n| *n >= 0).ok_or_else(|| {
                QueryError::InvalidRequest(format!(
                    "unable to parse param '{name}': expected a non-negative integer, got {text:?}"
                ))
            })
        })
        .transpose()
}

/// A Go duration parameter (`100ms`, `1.5s`, `1h30m`), as nanoseconds.
fn go_duration_param(params: &Params, name: &str) -> Result<Option<i64>, QueryError> {
    params
        .single(name)?
        .map(|text| {
            crate::tempo::parse_go_duration(text).ok_or_else(|| {
                QueryError::InvalidRequest(format!(
                    "unable to parse param '{name}': expected a duration like 100ms or 1.5s, got {text:?}"
                ))
            })
        })
        .transpose()
}

/// The operations of `service`; with a Jaeger span kind, only those of it.
async fn operations_of_kind(
    state: &AppState,
    service: &str,
    jaeger_kind: Option<&str>,
) -> Result<Vec<Operation>, QueryError> {
    let kind = jaeger_kind.map(query::stored_kind).transpose()?;
    let operations = state.engine.operations(service).await?;
    Ok(operations.into_iter().filter(|o| kind.is_none_or(|k| o.kind == k)).collect())
}

/// Jaeger's `spanKind` of a stored kind: unspecified is empty.
fn jaeger_kind(stored: &str) -> &str {
    if stored == "unspecified" { "" } else { stored }
}

#[cfg(test)]
mod tests;
