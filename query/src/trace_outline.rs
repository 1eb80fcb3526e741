//! A large trace in two parts, so a browser never decodes 100k full spans:
//! `GET /api/v1/traces/{id}/outline` is the skeleton of every span (IDs,
//! parent, name, service, kind, times, status, link and event counts: about
//! 150 bytes a span, read from a projection of the stored columns), and
//! `GET /api/v1/traces/{id}/spans/{span_id}` is one span in full.

use std::collections::BTreeSet;

use axum::extract::Path;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::logical_expr::{Expr, col, lit};
use serde::Serialize;
use skein_model::schema::col as span_col;
use skein_model::trace_json::span_to_json;
use skein_model::{ids, records_from_batch, shard_for_trace};

use crate::params::Params;
use crate::tenancy::TenantState;
use crate::{QueryEngine, QueryError};

/// The columns the outline reads.
const OUTLINE_COLUMNS: [&str; 10] = [
    span_col::SPAN_ID,
    span_col::PARENT_SPAN_ID,
    span_col::NAME,
    span_col::SERVICE_NAME,
    span_col::KIND,
    span_col::START_TIME,
    span_col::DURATION_NS,
    span_col::STATUS_CODE,
    span_col::LINKS,
    span_col::EVENTS,
];

/// One span of an outline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlineSpan {
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub service_name: String,
    pub kind: String,
    /// Nanoseconds after the trace's first span started (exact in JSON
    /// numbers: traces are far shorter than 2^53 ns, 104 days).
    pub start_offset_nanos: i64,
    pub duration_nanos: i64,
    pub error: bool,
    pub link_count: usize,
    pub event_count: usize,
}

/// Every span of a trace without attributes, ordered by start time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceOutline {
    pub trace_id: String,
    /// A string in JSON: nanoseconds exceed 2^53.
    #[serde(serialize_with = "as_string")]
    pub start_time_unix_nano: i64,
    pub duration_nanos: i64,
    pub span_count: usize,
    pub error_count: usize,
    pub services: BTreeSet<String>,
    pub spans: Vec<OutlineSpan>,
}

fn as_string<S: serde::Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

impl QueryEngine {
    /// The rows of one trace (`trace_id` in stored form) matching `extra`,
    /// with `columns` only (all when `None`); asks only the owning shard.
    async fn trace_rows(
        &self,
        trace_id: &str,
        extra: Option<Expr>,
        columns: Option<&[&str]>,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        let id_bytes = const_hex::decode(trace_id)
            .map_err(|_| QueryError::InvalidRequest(format!("invalid trace ID {trace_id:?}")))?;
        let Some(shard) = self.span_shard(shard_for_trace(&id_bytes, self.shard_count())) else {
            return Ok(Vec::new());
        };
        self.limited(async {
            let ctx = self.session()?;
            let mut filter = col(span_col::TRACE_ID).eq(lit(trace_id));
            if let Some(extra) = extra {
                filter = filter.and(extra);
            }
            let mut frame =
                ctx.read_table(shard).and_then(|f| f.filter(filter)).map_err(|e| self.datafusion_error(e))?;
            if let Some(columns) = columns {
                frame = frame.select_columns(columns).map_err(|e| self.datafusion_error(e))?;
            }
            Ok(self.collect(frame, self.max_result_rows()).await?.batches)
        })
        .await
    }

    /// The outline of one trace; `None` when the trace is unknown.
    pub async fn trace_outline(&self, trace_id: &str) -> Result<Option<TraceOutline>, QueryError> {
        let batches = self.trace_rows(trace_id, None, Some(&OUTLINE_COLUMNS)).await?;
        let mut spans = Vec::new();
        let mut starts = Vec::new();
        for batch in &batches {
            read_outline_rows(batch, &mut spans, &mut starts)?;
        }
        let Some(&first) = starts.iter().min() else { return Ok(None) };
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_by(|&a, &b| (starts[a], &spans[a].span_id).cmp(&(starts[b], &spans[b].span_id)));
        let end = spans.iter().zip(&starts).map(|(s, start)| start.saturating_add(s.duration_nanos)).max();
        let mut sorted = Vec::with_capacity(spans.len());
        for index in order {
            let mut span = spans[index].clone();
            span.start_offset_nanos = starts[index] - first;
            sorted.push(span);
        }
        Ok(Some(TraceOutline {
            trace_id: trace_id.to_owned(),
            start_time_unix_nano: first,
            duration_nanos: end.unwrap_or(first) - first,
            span_count: sorted.len(),
            error_count: sorted.iter().filter(|s| s.error).count(),
            services: sorted.iter().map(|s| s.service_name.clone()).collect(),
            spans: sorted,
        }))
    }

    /// One span of one trace as Skein JSON; `None` when it is not stored.
    pub async fn trace_span(&self, trace_id: &str, span_id: &str) -> Result<Option<serde_json::Value>, QueryError> {
        let batches = self.trace_rows(trace_id, Some(col(span_col::SPAN_ID).eq(lit(span_id))), None).await?;
        for batch in &batches {
            if let Some(record) = records_from_batch(batch)?.first() {
                return Ok(Some(span_to_json(record)));
            }
        }
        Ok(None)
    }
}

/// Appends the outline of every row of `batch` (with `start_offset_nanos`
/// still 0) and each row's absolute start time.
fn read_outline_rows(
    batch: &RecordBatch,
    spans: &mut Vec<OutlineSpan>,
    starts: &mut Vec<i64>,
) -> Result<(), QueryError> {
    let text = |name: &str| cast_column(batch, name, &DataType::Utf8);
    let (span_id, parent, name, service, kind, status) = (
        text(span_col::SPAN_ID)?,
        text(span_col::PARENT_SPAN_ID)?,
        text(span_col::NAME)?,
        text(span_col::SERVICE_NAME)?,
        text(span_col::KIND)?,
        text(span_col::STATUS_CODE)?,
    );
    let start = cast_column(batch, span_col::START_TIME, &DataType::Int64)?;
    let duration = cast_column(batch, span_col::DURATION_NS, &DataType::Int64)?;
    let (links, events) = (list_lengths(batch, span_col::LINKS)?, list_lengths(batch, span_col::EVENTS)?);
    let (span_id, parent, name, service, kind, status) = (
        span_id.as_string::<i32>(),
        parent.as_string::<i32>(),
        name.as_string::<i32>(),
        service.as_string::<i32>(),
        kind.as_string::<i32>(),
        status.as_string::<i32>(),
    );
    let (start, duration) = (start.as_primitive::<Int64Type>(), duration.as_primitive::<Int64Type>());
    for row in 0..batch.num_rows() {
        starts.push(start.value(row));
        spans.push(OutlineSpan {
            span_id: span_id.value(row).to_owned(),
            parent_span_id: (parent.is_valid(row) && !parent.value(row).is_empty())
                .then(|| parent.value(row).to_owned()),
            name: name.value(row).to_owned(),
            service_name: service.value(row).to_owned(),
            kind: kind.value(row).to_owned(),
            start_offset_nanos: 0,
            duration_nanos: duration.value(row),
            error: status.value(row) == "error",
            link_count: links[row],
            event_count: events[row],
        });
    }
    Ok(())
}

/// Column `name` of `batch`, cast to `to`.
pub(crate) fn cast_column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef, QueryError> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| QueryError::Execution(format!("the spans table has no column {name}")))?;
    cast(array, to).map_err(|e| QueryError::Execution(format!("column {name}: {e}")))
}

/// The length of the list in every row of a list column (0 for NULL).
fn list_lengths(batch: &RecordBatch, name: &str) -> Result<Vec<usize>, QueryError> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| QueryError::Execution(format!("the spans table has no column {name}")))?;
    let list =
        array.as_list_opt::<i32>().ok_or_else(|| QueryError::Execution(format!("column {name} is not a list")))?;
    Ok((0..list.len()).map(|row| if list.is_valid(row) { list.value_length(row) as usize } else { 0 }).collect())
}

fn trace_id_param(trace_id: &str) -> Result<String, QueryError> {
    ids::normalize_trace_id(trace_id).ok_or_else(|| {
        QueryError::InvalidRequest(format!("invalid trace ID {trace_id:?}: expected up to 32 hex digits, not all zero"))
    })
}

pub(crate) async fn get_outline(TenantState(state): TenantState, Path(trace_id): Path<String>, uri: Uri) -> Response {
    state
        .observe("trace_outline", async {
            Params::from_uri(&uri)?.only(&[])?;
            let id = trace_id_param(&trace_id)?;
            match state.engine.trace_outline(&id).await? {
                Some(outline) => Ok(axum::Json(outline).into_response()),
                None => Err(QueryError::NotFound(format!("trace {id} not found"))),
            }
        })
        .await
}

pub(crate) async fn get_span(
    TenantState(state): TenantState,
    Path((trace_id, span_id)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    state
        .observe("trace_span", async {
            Params::from_uri(&uri)?.only(&[])?;
            let id = trace_id_param(&trace_id)?;
            let span = span_id.to_ascii_lowercase();
            if span.len() != 16 || !span.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(QueryError::InvalidRequest(format!("invalid span ID {span_id:?}: expected 16 hex digits")));
            }
            match state.engine.trace_span(&id, &span).await? {
                Some(json) => Ok(axum::Json(json).into_response()),
                None => Err(QueryError::NotFound(format!("span {span} of trace {id} not found"))),
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::Value;

    use crate::test_support::{T1, get};

    #[tokio::test]
    async fn outline_lists_every_span_without_attributes() {
        let (status, _, body) = get(&format!("/api/v1/traces/{T1}/outline")).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let json: Value = serde_json::from_slice(&body).expect("json");
        let (_, _, full) = get(&format!("/api/v1/traces/{T1}")).await;
        let full: Value = serde_json::from_slice(&full).expect("json");
        assert_eq!(json["spanCount"], full["spanCount"]);
        assert_eq!(json["errorCount"], full["errorCount"]);
        assert_eq!(json["services"], full["services"]);
        assert_eq!(json["startTimeUnixNano"], full["startTimeUnixNano"]);
        assert_eq!(json["durationNanos"], full["durationNanos"]);
        let (spans, full_spans) = (json["spans"].as_array().expect("spans"), full["spans"].as_array().expect("spans"));
        for (outline, span) in spans.iter().zip(full_spans) {
            assert_eq!(outline["spanId"], span["spanId"]);
            assert_eq!(outline["parentSpanId"], span["parentSpanId"]);
            assert_eq!(outline["name"], span["name"]);
            assert_eq!(outline["durationNanos"], span["durationNanos"]);
            assert_eq!(outline["linkCount"], span["links"].as_array().expect("links").len());
            assert_eq!(outline["eventCount"], span["events"].as_array().expect("events").len());
            assert!(outline.get("attributes").is_none());
        }
        assert_eq!(spans[0]["startOffsetNanos"], 0);
    }

    #[tokio::test]
    async fn one_span_in_full() {
        let (_, _, full) = get(&format!("/api/v1/traces/{T1}")).await;
        let full: Value = serde_json::from_slice(&full).expect("json");
        let wanted = &full["spans"][1];
        let span_id = wanted["spanId"].as_str().expect("id");
        let (status, _, body) = get(&format!("/api/v1/traces/{T1}/spans/{}", span_id.to_uppercase())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&serde_json::from_slice::<Value>(&body).expect("json"), wanted);

        let (status, _, _) = get(&format!("/api/v1/traces/{T1}/spans/{}", "0".repeat(16))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(&format!("/api/v1/traces/{T1}/spans/xyz")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _, _) = get(&format!("/api/v1/traces/{}/outline", "f".repeat(32))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
