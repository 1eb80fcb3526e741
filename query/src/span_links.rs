//! `GET /api/v1/traces/{id}/spans/{span_id}/linked_from`: the spans whose
//! links point at one span, the other direction of a link. Links are not
//! indexed, so only spans that start within `LINK_WINDOW_NS` of the target
//! span and carry links are read.

use axum::extract::Path;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::functions_nested::expr_fn::cardinality;
use datafusion::logical_expr::{col, lit};
use serde::Serialize;
use skein_model::ids;
use skein_model::schema::col as span_col;

use crate::engine::SPANS_TABLE;
use crate::params::{Params, timestamp};
use crate::tenancy::TenantState;
use crate::trace_outline::cast_column;
use crate::{QueryEngine, QueryError};

/// How far before and after the target span's start linking spans are looked for.
const LINK_WINDOW_NS: i64 = 3_600 * 1_000_000_000;
/// Most linking spans returned.
const MAX_LINKING: usize = 100;

/// A span that links to the asked-for span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkingSpan {
    pub trace_id: String,
    pub span_id: String,
    pub name: String,
    pub service_name: String,
}

impl QueryEngine {
    /// Spans linking to `span_id` of `trace_id` (stored forms) that start
    /// within an hour of it; `None` when the span itself is not stored.
    pub async fn linked_from(
        &self,
        trace_id: &str,
        span_id: &str,
    ) -> Result<Option<(Vec<LinkingSpan>, bool)>, QueryError> {
        let Some(start) = self.span_start(trace_id, span_id).await? else { return Ok(None) };
        self.limited(async {
            let ctx = self.session()?;
            let filter = col(span_col::START_TIME)
                .gt_eq(timestamp(start.saturating_sub(LINK_WINDOW_NS)))
                .and(col(span_col::START_TIME).lt_eq(timestamp(start.saturating_add(LINK_WINDOW_NS))))
                .and(cardinality(col(span_col::LINKS)).gt(lit(0u64)));
            let columns =
                [span_col::TRACE_ID, span_col::SPAN_ID, span_col::NAME, span_col::SERVICE_NAME, span_col::LINKS];
            let frame = ctx
                .table(SPANS_TABLE)
                .await
                .and_then(|f| f.filter(filter))
                .and_then(|f| f.select_columns(&columns))
                .map_err(|e| self.datafusion_error(e))?;
            let result = self.collect(frame, self.max_result_rows()).await?;
            let mut linking = Vec::new();
            for batch in &result.batches {
                read_linking(batch, trace_id, span_id, &mut linking)?;
            }
            linking.sort_by(|a, b| (&a.trace_id, &a.span_id).cmp(&(&b.trace_id, &b.span_id)));
            let truncated = linking.len() > MAX_LINKING;
            linking.truncate(MAX_LINKING);
            Ok(Some((linking, truncated)))
        })
        .await
    }

    /// The start time (unix ns) of one stored span.
    async fn span_start(&self, trace_id: &str, span_id: &str) -> Result<Option<i64>, QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let frame = ctx
                .table(SPANS_TABLE)
                .await
                .and_then(|f| {
                    f.filter(col(span_col::TRACE_ID).eq(lit(trace_id)).and(col(span_col::SPAN_ID).eq(lit(span_id))))
                })
                .and_then(|f| f.select_columns(&[span_col::START_TIME]))
                .map_err(|e| self.datafusion_error(e))?;
            let result = self.collect(frame, self.max_result_rows()).await?;
            for batch in &result.batches {
                let start = cast_column(batch, span_col::START_TIME, &DataType::Int64)?;
                if let Some(first) = start.as_primitive::<Int64Type>().iter().flatten().next() {
                    return Ok(Some(first));
                }
            }
            Ok(None)
        })
        .await
    }
}

/// Appends the rows of `batch` with a link to (`trace_id`, `span_id`).
fn read_linking(
    batch: &RecordBatch,
    trace_id: &str,
    span_id: &str,
    out: &mut Vec<LinkingSpan>,
) -> Result<(), QueryError> {
    let text = |name| cast_column(batch, name, &DataType::Utf8);
    let (traces, spans, names, services) =
        (text(span_col::TRACE_ID)?, text(span_col::SPAN_ID)?, text(span_col::NAME)?, text(span_col::SERVICE_NAME)?);
    let (traces, spans, names, services) =
        (traces.as_string::<i32>(), spans.as_string::<i32>(), names.as_string::<i32>(), services.as_string::<i32>());
    let links = batch
        .column_by_name(span_col::LINKS)
        .and_then(|c| c.as_list_opt::<i32>())
        .ok_or_else(|| QueryError::Execution("the links column is not a list".into()))?;
    for row in 0..batch.num_rows() {
        if links.is_null(row) {
            continue;
        }
        let items = links.value(row);
        let items = items.as_struct_opt().ok_or_else(|| QueryError::Execution("links are not structs".into()))?;
        let field = |name: &str| {
            let array = items
                .column_by_name(name)
                .ok_or_else(|| QueryError::Execution(format!("links have no field {name}")))?;
            datafusion::arrow::compute::cast(array, &DataType::Utf8).map_err(|e| QueryError::Execution(e.to_string()))
        };
        let (link_traces, link_spans) = (field(span_col::TRACE_ID)?, field(span_col::SPAN_ID)?);
        let (link_traces, link_spans) = (link_traces.as_string::<i32>(), link_spans.as_string::<i32>());
        let points_here = (0..items.len()).any(|i| {
            link_traces.is_valid(i)
                && link_spans.is_valid(i)
                && link_traces.value(i) == trace_id
                && link_spans.value(i) == span_id
        });
        if points_here {
            out.push(LinkingSpan {
                trace_id: traces.value(row).to_owned(),
                span_id: spans.value(row).to_owned(),
                name: names.value(row).to_owned(),
                service_name: services.value(row).to_owned(),
            });
        }
    }
    Ok(())
}

pub(crate) async fn get_linked_from(
    TenantState(state): TenantState,
    Path((trace_id, span_id)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    state
        .observe("linked_from", async {
            Params::from_uri(&uri)?.only(&[])?;
            let trace = ids::normalize_trace_id(&trace_id)
                .ok_or_else(|| QueryError::InvalidRequest(format!("invalid trace ID {trace_id:?}")))?;
            let span = span_id.to_ascii_lowercase();
            if span.len() != 16 || !span.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(QueryError::InvalidRequest(format!("invalid span ID {span_id:?}: expected 16 hex digits")));
            }
            match state.engine.linked_from(&trace, &span).await? {
                Some((spans, truncated)) => {
                    Ok(axum::Json(serde_json::json!({ "spans": spans, "truncated": truncated })).into_response())
                }
                None => Err(QueryError::NotFound(format!("span {span} of trace {trace} not found"))),
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::test_support::{T1, get};

    #[tokio::test]
    async fn a_span_nobody_links_to_and_bad_ids() {
        let (_, _, full) = get(&format!("/api/v1/traces/{T1}")).await;
        let full: Value = serde_json::from_slice(&full).expect("json");
        let span = full["spans"][0]["spanId"].as_str().expect("id");
        let (status, _, body) = get(&format!("/api/v1/traces/{T1}/spans/{span}/linked_from")).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(serde_json::from_slice::<Value>(&body).expect("json"), json!({"spans": [], "truncated": false}));
        let (status, _, _) = get(&format!("/api/v1/traces/{T1}/spans/{}/linked_from", "0".repeat(16))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(&format!("/api/v1/traces/{T1}/spans/xyz/linked_from")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
