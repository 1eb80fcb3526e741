//! `GET /api/traces/{id}` and `GET /api/v2/traces/{id}`: a whole trace as
//! OTLP, from Skein's trace lookup ([`QueryEngine::trace`]).
//!
//! v1 answers Tempo's `Trace` (`{"batches": [ResourceSpans]}` in JSON),
//! v2 its `TraceByIDResponse` (`{"trace": {"resourceSpans": [...]},
//! "metrics": {}}`; `status` is left out when complete, as Tempo's
//! marshaller leaves out zero values). With `Accept: application/protobuf`
//! both are protobuf: Tempo's `Trace` has the field number and type of
//! OTLP's `ExportTraceServiceRequest.resource_spans`, so the OTLP message
//! encodes it exactly (Grafana decodes v1 as OTLP `TracesData`).

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::json;
use skein_model::{ids, records_to_request};

use super::time_range;
use crate::QueryError;
use crate::params::Params;
use crate::server::AppState;
use crate::tenancy::TenantState;

const PROTOBUF: &str = "application/protobuf";

/// Tempo's `TraceByIDResponse`: the trace (field 1); metrics, status and
/// message are zero and so not encoded.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    pub(crate) trace: Option<ExportTraceServiceRequest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

pub(super) async fn get_trace_v1(
    TenantState(state): TenantState,
    Path(trace_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    state.observe("tempo_trace", trace_response(&state, &trace_id, &uri, &headers, Version::V1)).await
}

pub(super) async fn get_trace_v2(
    TenantState(state): TenantState,
    Path(trace_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    state.observe("tempo_trace", trace_response(&state, &trace_id, &uri, &headers, Version::V2)).await
}

/// Tempo's rule: protobuf when the Accept header names it, JSON otherwise.
fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| v.to_str().is_ok_and(|v| v.contains(PROTOBUF)))
}

async fn trace_response(
    state: &AppState,
    trace_id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    version: Version,
) -> Result<Response, QueryError> {
    // start/end are checked but do not narrow the lookup: finding a trace by
    // ID is cheap in Skein, so the whole trace comes back even outside them.
    time_range(&Params::from_uri(uri)?)?;
    let id = ids::normalize_trace_id(trace_id).ok_or_else(|| {
        QueryError::InvalidRequest(format!(
            "invalid trace ID {trace_id:?}: expected 1 to 32 hex digits (leading zeros may be left out), not all zero"
        ))
    })?;
    let records = state.engine.trace(&id).await?;
    if records.is_empty() {
        return Err(QueryError::NotFound(format!("trace {id} not found")));
    }
    let request = records_to_request(records);
    if wants_protobuf(headers) {
        let bytes = match version {
            Version::V1 => request.encode_to_vec(),
            Version::V2 => TraceByIdResponse { trace: Some(request) }.encode_to_vec(),
        };
        return Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF))], bytes).into_response());
    }
    let body = match version {
        Version::V1 => json!({ "batches": request.resource_spans }),
        Version::V2 => json!({ "trace": { "resourceSpans": request.resource_spans }, "metrics": {} }),
    };
    Ok(axum::Json(body).into_response())
}

#[cfg(test)]
mod tests;
