//! Trace lookup: every span of one trace, as Skein JSON or as an OTLP/JSON
//! export request (`GET /api/v1/traces/{trace_id}[?format=otlp]`).

use axum::extract::Path;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use datafusion::logical_expr::{col, lit};
use skein_model::schema::col as span_col;
use skein_model::trace_json::trace_to_json;
use skein_model::{SpanRecord, records_from_batch, records_to_request, shard_for_trace};

use crate::params::{Params, otlp_format};
use crate::server::AppState;
use crate::tenancy::TenantState;
use crate::{QueryEngine, QueryError};

impl QueryEngine {
    /// The spans of one trace (`trace_id` in stored form: 32 lowercase hex
    /// digits), ordered by start time; empty when the trace is unknown.
    /// Only the shard that owns the trace is asked.
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<SpanRecord>, QueryError> {
        let id_bytes = const_hex::decode(trace_id)
            .map_err(|_| QueryError::InvalidRequest(format!("invalid trace ID {trace_id:?}")))?;
        let Some(shard) = self.span_shard(shard_for_trace(&id_bytes, self.shard_count())) else {
            return Ok(Vec::new());
        };
        self.limited(async {
            let ctx = self.session()?;
            let frame = ctx
                .read_table(shard)
                .and_then(|spans| spans.filter(col(span_col::TRACE_ID).eq(lit(trace_id))))
                .map_err(|e| self.datafusion_error(e))?;
            let result = self.collect(frame, self.max_result_rows()).await?;
            let mut records = Vec::with_capacity(result.row_count);
            for batch in &result.batches {
                records.extend(records_from_batch(batch)?);
            }
            records.sort_by(|a, b| {
                (a.span.start_time_unix_nano, &a.span.span_id).cmp(&(b.span.start_time_unix_nano, &b.span.span_id))
            });
            Ok(records)
        })
        .await
    }
}

pub(crate) async fn get_trace(TenantState(state): TenantState, Path(trace_id): Path<String>, uri: Uri) -> Response {
    state.observe("trace", trace_response(&state, &trace_id, &uri)).await
}

async fn trace_response(state: &AppState, trace_id: &str, uri: &Uri) -> Result<Response, QueryError> {
    let otlp = otlp_format(&Params::from_uri(uri)?)?;
    let id = crate::trace_outline::trace_id_param(trace_id)?;
    let records = state.engine.trace(&id).await?;
    if records.is_empty() {
        return Err(QueryError::NotFound(format!("trace {id} not found")));
    }
    if otlp {
        // OTLP/JSON as the OTLP/HTTP exporters send it, so it can be re-exported.
        Ok(axum::Json(records_to_request(records)).into_response())
    } else {
        Ok(axum::Json(trace_to_json(&id, records)).into_response())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use serde_json::Value;

    use crate::test_support::{T1, T3, get, only_trace, shard_requests};

    #[tokio::test]
    async fn returns_a_trace_as_skein_json() {
        let (status, _, body) = get(&format!("/api/v1/traces/{}", T1.to_uppercase())).await;
        assert_eq!(status, StatusCode::OK);
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["traceId"], T1);
        assert_eq!(json["spanCount"], 2);
        assert_eq!(json["errorCount"], 1);
        assert_eq!(json["services"], serde_json::json!(["checkout", "payments"]));
        let spans = json["spans"].as_array().expect("spans");
        assert_eq!(spans[0]["name"], "POST /checkout");
        assert_eq!(spans[1]["parentSpanId"], spans[0]["spanId"]);
    }

    #[tokio::test]
    async fn otlp_format_round_trips_the_original_spans() {
        for trace in [T1, T3] {
            let (status, headers, body) = get(&format!("/api/v1/traces/{trace}?format=otlp")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers["content-type"], "application/json");
            let request: ExportTraceServiceRequest = serde_json::from_slice(&body).expect("OTLP/JSON");
            let (a, b) = shard_requests();
            let expected = only_trace(&[a, b], trace);
            assert_eq!(request, expected);
        }
    }

    #[tokio::test]
    async fn unknown_and_invalid_ids() {
        let (status, _, body) = get(&format!("/api/v1/traces/{}", "f".repeat(32))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["error"]["code"], "not_found");

        for bad in ["xyz", "00000000000000000000000000000000", &"a".repeat(33)] {
            let (status, _, body) = get(&format!("/api/v1/traces/{bad}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            let json: Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(json["error"]["code"], "invalid_argument");
        }
        let (status, _, _) = get(&format!("/api/v1/traces/{T1}?format=xml")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
