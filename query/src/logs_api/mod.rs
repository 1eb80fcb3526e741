//! The log API: `GET /api/v1/logs` (records matching filters, newest
//! first, paged), `GET /api/v1/logs/volume` (counts per step and severity
//! band, for the histogram over a search) and
//! `GET /api/v1/traces/{trace_id}/logs` (the records of one trace, read
//! from the shard that owns the trace). Filters become one DataFusion
//! predicate pushed to every shard (filter.rs); pages look back from their
//! end in growing time windows so the newest records cost the newest data
//! (search.rs). JSON shapes in docs/api.md.

mod filter;
mod search;
#[cfg(test)]
pub(crate) mod test_fixtures;
#[cfg(test)]
mod tests;

use axum::extract::Path;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use skein_model::ids;
use skein_model::logs::{SEVERITY_BANDS, log_rows_to_request, log_to_json, severity_band};

pub use filter::LogFilter;
pub use search::{LogCursor, LogPage, LogVolume, MAX_TRACE_LOGS};

use crate::QueryError;
use crate::params::{Params, otlp_format, step};
use crate::server::AppState;
use crate::tenancy::TenantState;
use filter::{FILTER_PARAMETERS, invalid};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

pub(crate) async fn get_logs(TenantState(state): TenantState, uri: Uri) -> Response {
    state.observe("logs", logs_response(&state, &uri)).await
}

async fn logs_response(state: &AppState, uri: &Uri) -> Result<Response, QueryError> {
    let params = Params::from_uri(uri)?;
    let known: Vec<&str> = FILTER_PARAMETERS.iter().copied().chain(["limit", "cursor"]).collect();
    params.only(&known)?;
    let filter = LogFilter::from_params(&params)?;
    let limit = match params.single("limit")? {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| invalid(format!("limit must be an integer from 1 to {MAX_LIMIT}, got {text:?}")))?,
    };
    let cursor = params.single("cursor")?.map(LogCursor::parse).transpose()?;
    let page = state.engine.search_logs(&filter, limit, cursor).await?;
    let logs: Vec<Value> = page.rows.iter().map(log_to_json).collect();
    Ok(axum::Json(json!({"logs": logs, "nextCursor": page.next.map(|c| c.encode())})).into_response())
}

pub(crate) async fn get_volume(TenantState(state): TenantState, uri: Uri) -> Response {
    state.observe("logs_volume", volume_response(&state, &uri)).await
}

async fn volume_response(state: &AppState, uri: &Uri) -> Result<Response, QueryError> {
    let params = Params::from_uri(uri)?;
    let known: Vec<&str> = FILTER_PARAMETERS.iter().copied().chain(["step"]).collect();
    params.only(&known)?;
    let filter = LogFilter::from_params(&params)?;
    let step_ns = step(&params, (filter.end_ns - filter.start_ns).max(1))?;
    let volume = state.engine.log_volume(&filter, step_ns).await?;
    Ok(axum::Json(volume_json(&filter, step_ns, &volume)).into_response())
}

/// `{"start", "end", "step_ms", "total", "series": [{"severity", "counts"}]}`:
/// one series per band with records, in severity order.
fn volume_json(filter: &LogFilter, step_ns: i64, volume: &LogVolume) -> Value {
    let bands = ["unspecified"].into_iter().chain(SEVERITY_BANDS);
    let mut series = Vec::new();
    for band in bands {
        // Counts per step of this band, steps ascending (the volume is sorted).
        let mut counts: Vec<(i64, u64)> = Vec::new();
        for &(step, _, records) in volume.counts.iter().filter(|(_, number, _)| severity_band(*number) == band) {
            let millis = (filter.start_ns + step * step_ns) / 1_000_000;
            match counts.last_mut() {
                Some((last, n)) if *last == millis => *n += records,
                _ => counts.push((millis, records)),
            }
        }
        if !counts.is_empty() {
            series.push(json!({"severity": band, "counts": counts}));
        }
    }
    let total: u64 = volume.counts.iter().map(|(_, _, n)| n).sum();
    json!({
        "start": filter.start_ns / 1_000_000,
        "end": filter.end_ns / 1_000_000,
        "step_ms": step_ns / 1_000_000,
        "total": total,
        "series": series,
    })
}

pub(crate) async fn get_trace_logs(
    TenantState(state): TenantState,
    Path(trace_id): Path<String>,
    uri: Uri,
) -> Response {
    state.observe("trace_logs", trace_logs_response(&state, &trace_id, &uri)).await
}

async fn trace_logs_response(state: &AppState, trace_id: &str, uri: &Uri) -> Result<Response, QueryError> {
    let otlp = otlp_format(&Params::from_uri(uri)?)?;
    let id = ids::normalize_trace_id(trace_id)
        .ok_or_else(|| invalid(format!("invalid trace ID {trace_id:?}: expected up to 32 hex digits, not all zero")))?;
    let (rows, truncated) = state.engine.trace_logs(&id).await?;
    if otlp {
        // OTLP/JSON as the OTLP/HTTP exporters send it, so it can be re-exported.
        return Ok(axum::Json(log_rows_to_request(rows)).into_response());
    }
    let logs: Vec<Value> = rows.iter().map(log_to_json).collect();
    Ok(axum::Json(json!({"traceId": id, "logs": logs, "truncated": truncated})).into_response())
}
