//! The Prometheus HTTP API over the metrics signal, at the root of the
//! query port, so Grafana's Prometheus datasource works against Skein
//! unchanged: `query`, `query_range` (PromQL, parsed by `promql-parser`,
//! evaluated by [`eval`]), `query_exemplars`, `series`, `labels`,
//! `label/{name}/values`, `metadata` and `status/buildinfo`.
//!
//! Metric and label names are the OpenTelemetry specification's
//! Prometheus mapping of what the store holds ([`names`]); selectors read
//! only the series and points they need through the metric API's code
//! paths ([`select`]). Answers use Prometheus' JSON envelope
//! ([`response`]); errors go through [`QueryError`] into Prometheus' error
//! envelope. Like Prometheus, unknown parameters are ignored; POST bodies
//! are `application/x-www-form-urlencoded`.

mod aggregate;
mod binary;
mod eval;
mod exemplars;
mod functions;
mod histogram;
mod labels;
mod names;
mod params;
mod response;
mod select;
mod value;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;
use axum::routing::get;
use promql_parser::parser::Expr;
use serde_json::json;

use self::eval::Evaluator;
use self::params::{bad, optional_time, range_params, request_params};
use self::response::{instant_data, range_data, success};
use self::select::Window;
use self::value::Evaluated;
use crate::params::{Params, now_ns};
use crate::server::AppState;
use crate::tenancy::TenantState;
use crate::{QueryEngine, QueryError};

/// The Prometheus routes, merged into the query service's router.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/query_exemplars", get(query_exemplars).post(query_exemplars))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(label_names).post(label_names))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/status/buildinfo", get(buildinfo))
}

/// The parameters of the query string, and of a form body.
fn params_of(uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Result<Params, QueryError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    request_params(uri, if form { &body[..] } else { &[] })
}

fn parse(text: Option<&str>) -> Result<Expr, QueryError> {
    let text = text.ok_or_else(|| bad("invalid parameter \"query\": missing".into()))?;
    promql_parser::parser::parse(text).map_err(|e| bad(format!("invalid parameter \"query\": {e}")))
}

/// Evaluates `expr` at `times` under the query time limit.
async fn evaluate(engine: &QueryEngine, expr: &Expr, times: Vec<i64>) -> Result<Evaluated, QueryError> {
    engine
        .limited(async {
            let evaluator = Evaluator { engine, ctx: engine.session()?, times };
            evaluator.eval(expr).await
        })
        .await
}

/// `start` and `end` of the listing endpoints as a window (None: all data).
fn listing_window(params: &Params) -> Result<Window, QueryError> {
    let (start, end) = (optional_time(params, "start")?, optional_time(params, "end")?);
    Ok(match (start, end) {
        (None, None) => None,
        (start, end) => Some((start.map_or(i64::MIN, |s| s.saturating_sub(1)), end.unwrap_or(i64::MAX))),
    })
}

/// The optional `limit` of the listing endpoints (0: none).
fn limit(params: &Params) -> Result<usize, QueryError> {
    match params.single("limit")? {
        None => Ok(0),
        Some(text) => {
            text.parse().map_err(|_| bad(format!("invalid parameter \"limit\": cannot parse {text:?} to a number")))
        }
    }
}

fn truncate<T>(mut items: Vec<T>, limit: usize) -> Vec<T> {
    if limit > 0 {
        items.truncate(limit);
    }
    items
}

async fn query(TenantState(state): TenantState, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let work = async {
        let params = params_of(&uri, &headers, &body)?;
        let expr = parse(params.single("query")?)?;
        let time = optional_time(&params, "time")?.unwrap_or_else(now_ns);
        let value = evaluate(&state.engine, &expr, vec![time]).await?;
        Ok(success(instant_data(time, value)))
    };
    state.observe_with("prom_query", work, QueryError::into_prometheus_response).await
}

async fn query_range(TenantState(state): TenantState, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let work = async {
        let params = params_of(&uri, &headers, &body)?;
        let expr = parse(params.single("query")?)?;
        let (start, end, step) = range_params(&params, state.config.metrics_max_steps)?;
        let times: Vec<i64> = (0..).map(|i| start + i * step).take_while(|t| *t <= end).collect();
        let value = evaluate(&state.engine, &expr, times.clone()).await?;
        if let Evaluated::Matrix(_) | Evaluated::String(_) = value {
            return Err(bad(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                if matches!(value, Evaluated::Matrix(_)) { "range vector" } else { "string" }
            )));
        }
        Ok(success(range_data(&times, value)))
    };
    state.observe_with("prom_query_range", work, QueryError::into_prometheus_response).await
}

/// Without `start`, exemplars of the hour before `end` (default now).
const DEFAULT_EXEMPLAR_RANGE: i64 = 3_600 * 1_000_000_000;

async fn query_exemplars(TenantState(state): TenantState, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let work = async {
        let params = params_of(&uri, &headers, &body)?;
        let expr = parse(params.single("query")?)?;
        let end = optional_time(&params, "end")?.unwrap_or_else(now_ns);
        let start = optional_time(&params, "start")?.unwrap_or(end.saturating_sub(DEFAULT_EXEMPLAR_RANGE));
        if end < start {
            return Err(bad("invalid parameter \"end\": end timestamp must not be before start timestamp".into()));
        }
        let found = state.engine.limited(exemplars::query_exemplars(&state.engine, &expr, start, end)).await?;
        Ok(success(json!(found)))
    };
    state.observe_with("prom_query_exemplars", work, QueryError::into_prometheus_response).await
}

async fn series(TenantState(state): TenantState, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let work = async {
        let params = params_of(&uri, &headers, &body)?;
        let window = listing_window(&params)?;
        let selectors: Vec<&str> = params.all("match[]").collect();
        if selectors.is_empty() {
            return Err(bad("no match[] parameter provided".into()));
        }
        let found = state.engine.limited(labels::series(&state.engine, &selectors, window)).await?;
        Ok(success(json!(truncate(found, limit(&params)?))))
    };
    state.observe_with("prom_series", work, QueryError::into_prometheus_response).await
}

async fn label_names(TenantState(state): TenantState, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let work = async {
        let params = params_of(&uri, &headers, &body)?;
        let window = listing_window(&params)?;
        let selectors: Vec<&str> = params.all("match[]").collect();
        let names = state.engine.limited(labels::names(&state.engine, &selectors, window)).await?;
        Ok(success(json!(truncate(names, limit(&params)?))))
    };
    state.observe_with("prom_labels", work, QueryError::into_prometheus_response).await
}

async fn label_values(TenantState(state): TenantState, Path(name): Path<String>, uri: Uri) -> Response {
    let work = async {
        let params = Params::from_uri(&uri)?;
        let window = listing_window(&params)?;
        let selectors: Vec<&str> = params.all("match[]").collect();
        let values = state.engine.limited(labels::values(&state.engine, &name, &selectors, window)).await?;
        Ok(success(json!(truncate(values, limit(&params)?))))
    };
    state.observe_with("prom_label_values", work, QueryError::into_prometheus_response).await
}

async fn metadata(TenantState(state): TenantState, uri: Uri) -> Response {
    let work = async {
        let params = Params::from_uri(&uri)?;
        let metric = params.single("metric")?;
        let limit = limit(&params)?;
        let engine = &state.engine;
        let families = engine.limited(async { engine.prom_families(&engine.session()?, None).await }).await?;
        let mut out = serde_json::Map::new();
        for family in families.iter().filter(|f| metric.is_none_or(|m| m == f.name)) {
            if limit > 0 && out.len() >= limit && !out.contains_key(&family.name) {
                break;
            }
            let entry = json!({ "type": family.prom_type(), "help": family.description, "unit": family.prom_unit() });
            let list = out.entry(family.name.clone()).or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut().filter(|l| !l.contains(&entry)) {
                list.push(entry);
            }
        }
        Ok(success(serde_json::Value::Object(out)))
    };
    state.observe_with("prom_metadata", work, QueryError::into_prometheus_response).await
}

/// Grafana probes this to learn the server's flavour; Skein reports its
/// own version, since no Prometheus version describes what it supports.
async fn buildinfo() -> Response {
    success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": option_env!("SKEIN_GIT_REVISION").unwrap_or("unknown"),
        "branch": option_env!("SKEIN_GIT_BRANCH").unwrap_or("unknown"),
        "buildUser": "",
        "buildDate": option_env!("SKEIN_BUILD_DATE").unwrap_or("unknown"),
        "goVersion": "",
    }))
}
