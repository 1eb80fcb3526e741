//! api_v3's HTTP gateway: `/api/v3/services`, `/api/v3/operations`,
//! `/api/v3/traces` (search), `/api/v3/trace-summaries` (the same search,
//! one summary per trace) and `/api/v3/traces/{id}`, answering in
//! OTLP/JSON as Jaeger v2 does (`{"result": {"resourceSpans": [...]}}`,
//! hex IDs). Parameters have Jaeger's canonical camelCase names
//! (`query.serviceName`) and their snake_case aliases (`query.service_name`);
//! times are RFC 3339.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use serde_json::{Value, json};
use skein_model::{SpanRecord, records_to_request};

use super::query::JaegerSearch;
use super::summary::{response_json, summary_json};
use super::{go_duration_param, jaeger_kind, operations_of_kind, trace_id, v3_error};
use crate::QueryError;
use crate::params::Params;
use crate::tenancy::TenantState;

/// Jaeger's default search depth.
const DEFAULT_SEARCH_DEPTH: usize = 100;

/// The value of the canonical parameter, else of its deprecated alias, with
/// the name that was used (for messages).
fn param<'a>(params: &'a Params, canonical: &'a str, alias: &'a str) -> Result<(Option<&'a str>, &'a str), QueryError> {
    Ok(match params.single(canonical)? {
        Some(value) => (Some(value), canonical),
        None => (params.single(alias)?, alias),
    })
}

fn malformed(name: &str, why: impl std::fmt::Display) -> QueryError {
    QueryError::InvalidRequest(format!("malformed parameter {name}: {why}"))
}

fn rfc3339(name: &str, text: &str) -> Result<i64, QueryError> {
    string_to_timestamp_nanos(text).map_err(|_| malformed(name, format!("{text:?} is not an RFC 3339 time")))
}

fn boolean(name: &str, text: Option<&str>) -> Result<(), QueryError> {
    match text {
        None | Some("true" | "false" | "1" | "0" | "t" | "f" | "TRUE" | "FALSE" | "True" | "False") => Ok(()),
        Some(other) => Err(malformed(name, format!("{other:?} is not a boolean"))),
    }
}

pub(super) async fn services(TenantState(state): TenantState) -> Response {
    let work = async {
        let services = state.engine.services().await?;
        Ok(axum::Json(json!({ "services": services })).into_response())
    };
    state.observe_with("jaeger_v3_services", work, v3_error).await
}

pub(super) async fn operations(TenantState(state): TenantState, uri: Uri) -> Response {
    let work = async {
        let params = Params::from_uri(&uri)?;
        let service = params
            .single("service")?
            .ok_or_else(|| QueryError::InvalidRequest("parameter service is required".into()))?;
        let kind = param(&params, "spanKind", "span_kind")?.0;
        let operations: Vec<Value> = operations_of_kind(&state, service, kind)
            .await?
            .into_iter()
            .map(|o| {
                // api_v3 names an unspecified kind `internal`, as Jaeger's gateway does.
                let kind = match jaeger_kind(&o.kind) {
                    "" => "internal",
                    kind => kind,
                };
                json!({ "name": o.name, "spanKind": kind })
            })
            .collect();
        Ok(axum::Json(json!({ "operations": operations })).into_response())
    };
    state.observe_with("jaeger_v3_operations", work, v3_error).await
}

/// The traces as one OTLP/JSON `TracesData` in api_v3's wrapper; none is a 404.
fn traces_response(traces: Vec<Vec<SpanRecord>>) -> Result<Response, QueryError> {
    if traces.is_empty() {
        return Err(QueryError::NotFound("No traces found".into()));
    }
    let resource_spans: Vec<_> =
        traces.into_iter().flat_map(|records| records_to_request(records).resource_spans).collect();
    Ok(axum::Json(json!({ "result": { "resourceSpans": resource_spans } })).into_response())
}

pub(super) async fn get_trace(TenantState(state): TenantState, Path(text): Path<String>, uri: Uri) -> Response {
    let work = async {
        // startTime and endTime are checked but do not narrow the lookup.
        let params = Params::from_uri(&uri)?;
        for (canonical, alias) in [("startTime", "start_time"), ("endTime", "end_time")] {
            if let (Some(text), name) = param(&params, canonical, alias)? {
                rfc3339(name, text)?;
            }
        }
        let (raw, name) = param(&params, "rawTraces", "raw_traces")?;
        boolean(name, raw)?;
        let id = trace_id(&text).map_err(|e| malformed("trace_id", e))?;
        let records = state.engine.trace(&id).await?;
        traces_response(if records.is_empty() { Vec::new() } else { vec![records] })
    };
    state.observe_with("jaeger_v3_trace", work, v3_error).await
}

pub(super) async fn find_traces(TenantState(state): TenantState, uri: Uri) -> Response {
    let work = async {
        let search = search_params(&Params::from_uri(&uri)?)?;
        let query = search.to_search_query(&state.config)?;
        traces_response(state.engine.find_traces(&query).await?)
    };
    state.observe_with("jaeger_v3_search", work, v3_error).await
}

/// The search of `/api/v3/traces`, answered with one summary per trace
/// (newest matching span first); no match is an empty answer, not a 404.
pub(super) async fn trace_summaries(TenantState(state): TenantState, uri: Uri) -> Response {
    let work = async {
        let search = search_params(&Params::from_uri(&uri)?)?;
        let query = search.to_search_query(&state.config)?;
        let traces = state.engine.find_traces(&query).await?;
        let summaries = traces.iter().map(|records| summary_json(records)).collect();
        Ok(axum::Json(response_json(summaries)).into_response())
    };
    state.observe_with("jaeger_v3_summaries", work, v3_error).await
}

/// `query.*` parameters of a search: `serviceName`, `operationName`,
/// `attributes` (a JSON map), `startTimeMin` and `startTimeMax` (required,
/// RFC 3339), `durationMin`, `durationMax` (Go durations), `searchDepth`
/// (default 100, capped at `query.search_max_limit`), `rawTraces`.
fn search_params(params: &Params) -> Result<JaegerSearch, QueryError> {
    let text = |canonical: &'static str, alias: &'static str| param(params, canonical, alias);
    let (min, min_name) = text("query.startTimeMin", "query.start_time_min")?;
    let (max, max_name) = text("query.startTimeMax", "query.start_time_max")?;
    let (Some(min), Some(max)) = (min, max) else {
        return Err(QueryError::InvalidRequest("query.startTimeMin and query.startTimeMax are required".into()));
    };
    let (start_ns, end_ns) = (rfc3339(min_name, min)?, rfc3339(max_name, max)?);
    if start_ns >= end_ns {
        return Err(QueryError::InvalidRequest("query.startTimeMin must be before query.startTimeMax".into()));
    }
    let depth = match text("query.searchDepth", "query.search_depth")? {
        (None, _) => match params.single("query.num_traces")? {
            None => (None, "query.searchDepth"),
            some => (some, "query.num_traces"),
        },
        found => found,
    };
    let limit = match depth {
        (None, _) => DEFAULT_SEARCH_DEPTH,
        (Some(text), name) => match text.parse::<i64>() {
            Ok(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
            Ok(_) => DEFAULT_SEARCH_DEPTH,
            Err(_) => return Err(malformed(name, format!("{text:?} is not an integer"))),
        },
    };
    let duration = |canonical: &'static str, alias: &'static str| -> Result<Option<i64>, QueryError> {
        match params.single(canonical)? {
            Some(_) => go_duration_param(params, canonical),
            None => go_duration_param(params, alias),
        }
    };
    let tags = match params.single("query.attributes")? {
        None => Vec::new(),
        Some(json) => serde_json::from_str::<BTreeMap<String, String>>(json)
            .map_err(|e| malformed("query.attributes", e))?
            .into_iter()
            .collect(),
    };
    let (raw, raw_name) = text("query.rawTraces", "query.raw_traces")?;
    boolean(raw_name, raw)?;
    Ok(JaegerSearch {
        service: text("query.serviceName", "query.service_name")?.0.map(str::to_owned),
        operation: text("query.operationName", "query.operation_name")?.0.map(str::to_owned),
        tags,
        start_ns: Some(start_ns),
        end_ns: Some(end_ns),
        min_duration_ns: duration("query.durationMin", "query.duration_min")?,
        max_duration_ns: duration("query.durationMax", "query.duration_max")?,
        limit: Some(limit),
    })
}

#[cfg(test)]
mod tests;
