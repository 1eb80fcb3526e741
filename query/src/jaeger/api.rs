//! Jaeger's internal HTTP JSON API, the one Jaeger UI calls:
//! `/api/services`, `/api/services/{service}/operations`, `/api/operations`,
//! `/api/traces` (search, or `traceID=` lookups), `/api/traces/{id}` and
//! `/api/dependencies`. Times are unix microseconds (`start`, `end`) or
//! milliseconds (`endTs`, `lookback`), durations Go durations, as in Jaeger.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::model::{trace_id_text, trace_json};
use super::query::JaegerSearch;
use super::{envelope, go_duration_param, integer_param, internal_error, jaeger_kind, operations_of_kind, trace_id};
use crate::params::{Params, now_ns};
use crate::server::AppState;
use crate::tenancy::TenantState;
use crate::{QueryError, StatsQuery};

const NANOS_PER_MICRO: i64 = 1_000;
const NANOS_PER_MILLI: i64 = 1_000_000;
/// Jaeger's default search range: the last two days.
const DEFAULT_SEARCH_LOOKBACK_NS: i64 = 2 * 24 * 3_600 * 1_000_000_000;
/// Jaeger's default dependency range: the last day.
const DEFAULT_DEPENDENCY_LOOKBACK_NS: i64 = 24 * 3_600 * 1_000_000_000;
/// Jaeger's message for a trace it does not have.
const TRACE_NOT_FOUND: &str = "trace not found";

pub(super) async fn services(TenantState(state): TenantState) -> Response {
    let work = async {
        let services = state.engine.services().await?;
        let total = services.len();
        Ok(envelope(json!(services), total))
    };
    state.observe_with("jaeger_services", work, internal_error).await
}

/// The legacy listing: one service's distinct operation names.
pub(super) async fn service_operations(TenantState(state): TenantState, Path(service): Path<String>) -> Response {
    let work = async {
        let mut names: Vec<String> = state.engine.operations(&service).await?.into_iter().map(|o| o.name).collect();
        names.dedup();
        let total = names.len();
        Ok(envelope(json!(names), total))
    };
    state.observe_with("jaeger_operations", work, internal_error).await
}

pub(super) async fn operations(TenantState(state): TenantState, uri: Uri) -> Response {
    let work = async {
        let params = Params::from_uri(&uri)?;
        let service = params
            .single("service")?
            .ok_or_else(|| QueryError::InvalidRequest("parameter 'service' is required".into()))?;
        let operations: Vec<Value> = operations_of_kind(&state, service, params.single("spanKind")?)
            .await?
            .into_iter()
            .map(|o| json!({ "name": o.name, "spanKind": jaeger_kind(&o.kind) }))
            .collect();
        let total = operations.len();
        Ok(envelope(Value::Array(operations), total))
    };
    state.observe_with("jaeger_operations", work, internal_error).await
}

/// A Jaeger UI search; with `traceID` parameters, those traces instead.
pub(super) async fn find_traces(TenantState(state): TenantState, uri: Uri) -> Response {
    let work = async {
        let params = Params::from_uri(&uri)?;
        let ids: Vec<&str> = params.all("traceID").collect();
        if !ids.is_empty() {
            return traces_by_id(&state, &ids).await;
        }
        let query = search_params(&params)?.to_search_query(&state.config)?;
        let traces = state.engine.find_traces(&query).await?;
        Ok(envelope(Value::Array(traces.iter().map(|t| trace_json(t)).collect()), 0))
    };
    state.observe_with("jaeger_search", work, internal_error).await
}

/// The traces of `ids`; each one not stored is an entry in `errors`, as Jaeger reports it.
async fn traces_by_id(state: &AppState, ids: &[&str]) -> Result<Response, QueryError> {
    let mut traces = Vec::new();
    let mut missing = Vec::new();
    for text in ids {
        let id = trace_id(text)?;
        let records = state.engine.trace(&id).await?;
        if records.is_empty() {
            let id_bytes = const_hex::decode(&id).map_err(|e| QueryError::Execution(e.to_string()))?;
            missing.push(json!({ "msg": TRACE_NOT_FOUND, "traceID": trace_id_text(&id_bytes) }));
        } else {
            traces.push(trace_json(&records));
        }
    }
    let errors = if missing.is_empty() { Value::Null } else { Value::Array(missing) };
    Ok(axum::Json(json!({ "data": traces, "total": 0, "limit": 0, "offset": 0, "errors": errors })).into_response())
}

/// The search parameters of `GET /api/traces`: `service`, `operation`,
/// `tag=key:value` and `tags={json}` (repeatable; `tags=key:value` too),
/// `start`, `end` (µs; default: the two days before now), `minDuration`,
/// `maxDuration`, `limit`.
fn search_params(params: &Params) -> Result<JaegerSearch, QueryError> {
    let mut tags = Vec::new();
    for tag in params.all("tag") {
        tags.push(key_value(tag, "tag")?);
    }
    for text in params.all("tags") {
        if text.trim_start().starts_with('{') {
            let map: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| {
                QueryError::InvalidRequest(format!("malformed 'tags' parameter, cannot unmarshal JSON: {e}"))
            })?;
            tags.extend(map);
        } else {
            tags.push(key_value(text, "tags")?);
        }
    }
    let end_ns = integer_param(params, "end", NANOS_PER_MICRO)?.unwrap_or_else(now_ns);
    let start_ns =
        integer_param(params, "start", NANOS_PER_MICRO)?.unwrap_or(end_ns.saturating_sub(DEFAULT_SEARCH_LOOKBACK_NS));
    let limit = match params.single("limit")? {
        None => None,
        Some(text) => match text.parse::<i64>() {
            // Zero or less: the default, as Jaeger's storage treats a depth of 0.
            Ok(n) => usize::try_from(n).ok().filter(|n| *n > 0),
            Err(_) => {
                return Err(QueryError::InvalidRequest(format!(
                    "unable to parse param 'limit': expected an integer, got {text:?}"
                )));
            }
        },
    };
    Ok(JaegerSearch {
        service: params.single("service")?.map(str::to_owned),
        operation: params.single("operation")?.map(str::to_owned),
        tags,
        start_ns: Some(start_ns),
        end_ns: Some(end_ns),
        min_duration_ns: go_duration_param(params, "minDuration")?,
        max_duration_ns: go_duration_param(params, "maxDuration")?,
        limit,
    })
}

/// `key:value` (the value may hold more colons).
fn key_value(text: &str, name: &str) -> Result<(String, String), QueryError> {
    match text.split_once(':') {
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err(QueryError::InvalidRequest(format!(
            "malformed '{name}' parameter, expecting key:value, received: {text}"
        ))),
    }
}

pub(super) async fn get_trace(TenantState(state): TenantState, Path(text): Path<String>, uri: Uri) -> Response {
    let work = async {
        // start and end (µs) are checked but do not narrow the lookup: a
        // lookup by ID needs no time range in Skein.
        let params = Params::from_uri(&uri)?;
        integer_param(&params, "start", NANOS_PER_MICRO)?;
        integer_param(&params, "end", NANOS_PER_MICRO)?;
        let id = trace_id(&text)?;
        let records = state.engine.trace(&id).await?;
        if records.is_empty() {
            return Err(QueryError::NotFound(TRACE_NOT_FOUND.into()));
        }
        Ok(envelope(json!([trace_json(&records)]), 0))
    };
    state.observe_with("jaeger_trace", work, internal_error).await
}

/// Who calls whom, from the service graph: `endTs` (ms, default now),
/// `lookback` (ms, default a day), `service` (only its edges).
pub(super) async fn dependencies(TenantState(state): TenantState, uri: Uri) -> Response {
    let work = async {
        let params = Params::from_uri(&uri)?;
        let end_ns = integer_param(&params, "endTs", NANOS_PER_MILLI)?.unwrap_or_else(now_ns);
        let lookback = integer_param(&params, "lookback", NANOS_PER_MILLI)?.unwrap_or(DEFAULT_DEPENDENCY_LOOKBACK_NS);
        let service = params.single("service")?;
        let query = StatsQuery {
            service: None,
            operation: None,
            kind: None,
            start_ns: end_ns.saturating_sub(lookback),
            end_ns,
            step_ns: 60_000_000_000,
            limit: 1,
        };
        let (_, _, edges) = state.engine.service_graph(&query).await?;
        let mut links: Vec<Value> = edges
            .into_iter()
            .filter(|e| service.is_none_or(|s| e.caller == s || e.callee == s))
            .map(|e| json!({ "parent": e.caller, "child": e.callee, "callCount": e.calls }))
            .collect();
        links.sort_by(|a, b| {
            (a["parent"].as_str(), a["child"].as_str()).cmp(&(b["parent"].as_str(), b["child"].as_str()))
        });
        Ok(envelope(Value::Array(links), 0))
    };
    state.observe_with("jaeger_dependencies", work, internal_error).await
}

pub(super) async fn not_found(TenantState(state): TenantState, uri: Uri) -> Response {
    let work = async { Err(QueryError::NotFound(format!("no Jaeger API endpoint at {}", uri.path()))) };
    state.observe_with("jaeger_not_found", work, internal_error).await
}

#[cfg(test)]
mod tests;
