//! A large trace in parts, so a browser never decodes 100k full spans:
//! `GET /api/v1/traces/{id}/outline` is the skeleton of the spans (IDs,
//! parent, name, service, kind, times, status, link and event counts, place
//! in the tree: about 200 bytes a span, read from a projection of the stored
//! columns), whole or in windows that a browser loads as it opens subtrees
//! (`max_spans`, `under`, `reveal`, `find`: see [`OutlineWindow`]), and
//! `GET /api/v1/traces/{id}/spans/{span_id}` is one span in full.

use std::collections::{BTreeSet, HashMap};

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
use crate::trace_tree::TraceTree;
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
    /// Levels below its root (0 for roots and for spans whose parent is missing).
    pub depth: usize,
    /// Children in the whole trace, loaded in this window or not.
    pub child_count: usize,
    /// Spans below it in the whole trace.
    pub descendant_count: usize,
}

/// The spans of a trace without attributes, ordered by start time: all of
/// them, or a window. The counts and services are the whole trace's.
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
    /// Whether `spans` leaves out spans of the trace.
    pub windowed: bool,
    /// With `find`: the IDs of the matching spans (at most [`MAX_FOUND`]),
    /// each in `spans` with its ancestors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_span_ids: Option<Vec<String>>,
    /// With `find`: how many spans match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_count: Option<usize>,
    /// With `critical_path`: the IDs of the spans on it (loaded in this
    /// window or not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical_path_span_ids: Option<Vec<String>>,
    pub spans: Vec<OutlineSpan>,
}

pub(crate) fn as_string<S: serde::Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Found spans listed (and revealed) at most; more are counted.
pub const MAX_FOUND: usize = 1000;
/// Spans one request may reveal.
const MAX_REVEAL: usize = 1000;
/// The longest text `find` takes.
const MAX_FIND_BYTES: usize = 256;

/// Which spans of a trace an outline holds. The default is all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutlineWindow {
    /// Only this span's descendants (16 hex digits).
    pub under: Option<String>,
    /// Every root (or every child of `under`), then whole levels below while
    /// the total stays within this; all levels when `None`.
    pub max_spans: Option<usize>,
    /// Span IDs to include with all their ancestors, whatever the window
    /// (unknown IDs are ignored).
    pub reveal: Vec<String>,
    /// Spans whose name or service contains this text (case-insensitive), or
    /// whose ID starts with it, are listed and revealed.
    pub find: Option<String>,
    /// Whether the spans on the critical path are listed.
    pub critical_path: bool,
}

impl OutlineWindow {
    fn from_params(params: &Params) -> Result<Self, QueryError> {
        params.only(&["under", "max_spans", "reveal", "find", "critical_path"])?;
        let under = params.single("under")?.map(span_id_param).transpose()?;
        let max_spans = match params.single("max_spans")? {
            None => None,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(QueryError::InvalidRequest(format!(
                        "invalid max_spans {text:?}: expected a positive whole number"
                    )));
                }
            },
        };
        let mut reveal = Vec::new();
        for list in params.all("reveal") {
            for id in list.split(',').filter(|id| !id.is_empty()) {
                reveal.push(span_id_param(id)?);
            }
        }
        if reveal.len() > MAX_REVEAL {
            return Err(QueryError::InvalidRequest(format!(
                "reveal names {} spans; at most {MAX_REVEAL} are allowed",
                reveal.len()
            )));
        }
        let find = params.single("find")?.map(str::trim).filter(|text| !text.is_empty()).map(str::to_lowercase);
        if find.as_ref().is_some_and(|text| text.len() > MAX_FIND_BYTES) {
            return Err(QueryError::InvalidRequest(format!("find is longer than {MAX_FIND_BYTES} bytes")));
        }
        let critical_path = match params.single("critical_path")? {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(QueryError::InvalidRequest(format!(
                    "invalid critical_path {other:?}: expected true or false"
                )));
            }
        };
        Ok(OutlineWindow { under, max_spans, reveal, find, critical_path })
    }
}

/// Whether `span` matches a (lowercased) `find` text.
fn found(span: &OutlineSpan, text: &str) -> bool {
    span.name.to_lowercase().contains(text)
        || span.service_name.to_lowercase().contains(text)
        || span.span_id.starts_with(text)
}

impl QueryEngine {
    /// The rows of one trace (`trace_id` in stored form) matching `extra`,
    /// with `columns` only (all when `None`), at most `max_rows`; asks only
    /// the owning shard.
    async fn trace_rows(
        &self,
        trace_id: &str,
        extra: Option<Expr>,
        columns: Option<&[&str]>,
        max_rows: usize,
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
            Ok(self.collect(frame, max_rows).await?.batches)
        })
        .await
    }

    /// Every span of one trace without attributes, in start order, and its
    /// tree; `None` when the trace is unknown. A trace of more than
    /// `max_spans` (the setting `key`) is refused.
    pub(crate) async fn trace_spans(
        &self,
        trace_id: &str,
        max_spans: usize,
        key: &'static str,
    ) -> Result<Option<TraceSpans>, QueryError> {
        let batches =
            self.trace_rows(trace_id, None, Some(&OUTLINE_COLUMNS), max_spans).await.map_err(|e| match e {
                QueryError::TooManyRows { limit } => QueryError::TraceTooLarge { limit, key },
                other => other,
            })?;
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
            let mut span = std::mem::take(&mut spans[index]);
            span.start_offset_nanos = starts[index] - first;
            sorted.push(span);
        }
        let tree = TraceTree::new(&sorted);
        for (i, span) in sorted.iter_mut().enumerate() {
            span.depth = tree.depth(i);
            span.child_count = tree.children(i).len();
            span.descendant_count = tree.descendants(i);
        }
        Ok(Some(TraceSpans {
            trace_id: trace_id.to_owned(),
            start_time_unix_nano: first,
            duration_nanos: end.unwrap_or(first) - first,
            spans: sorted,
            tree,
        }))
    }

    /// The outline of one trace, whole or the `window`; `None` when the
    /// trace is unknown, a `NotFound` error when `under` is not in it.
    pub async fn trace_outline(
        &self,
        trace_id: &str,
        window: &OutlineWindow,
    ) -> Result<Option<TraceOutline>, QueryError> {
        // A window may be of a trace too big to send whole.
        let whole = window.under.is_none() && window.max_spans.is_none();
        let (max_spans, key) = if whole {
            (self.max_result_rows(), "max_result_rows")
        } else {
            (self.max_trace_spans(), "max_trace_spans")
        };
        let Some(trace) = self.trace_spans(trace_id, max_spans, key).await? else { return Ok(None) };
        let (under, mut reveal) = {
            let position: HashMap<&str, usize> =
                trace.spans.iter().enumerate().map(|(i, s)| (s.span_id.as_str(), i)).collect();
            let under = match &window.under {
                None => None,
                Some(id) => Some(
                    *position
                        .get(id.as_str())
                        .ok_or_else(|| QueryError::NotFound(format!("span {id} of trace {trace_id} not found")))?,
                ),
            };
            let reveal: Vec<usize> = window.reveal.iter().filter_map(|id| position.get(id.as_str()).copied()).collect();
            (under, reveal)
        };
        let found = window.find.as_ref().map(|text| {
            let hits: Vec<usize> = (0..trace.spans.len()).filter(|&i| found(&trace.spans[i], text)).collect();
            reveal.extend(hits.iter().take(MAX_FOUND));
            hits
        });
        // Listed, not revealed: in a trace of sequential work the path is
        // most of the trace, and a client highlights spans as it loads them.
        let critical = window.critical_path.then(|| trace.tree.critical_path(&trace.spans));
        let chosen = if whole {
            (0..trace.spans.len()).collect()
        } else {
            trace.tree.window(under, window.max_spans.unwrap_or(usize::MAX), &reveal)
        };
        let mut outline = TraceOutline {
            trace_id: trace.trace_id,
            start_time_unix_nano: trace.start_time_unix_nano,
            duration_nanos: trace.duration_nanos,
            span_count: trace.spans.len(),
            error_count: trace.spans.iter().filter(|s| s.error).count(),
            services: trace.spans.iter().map(|s| s.service_name.clone()).collect(),
            windowed: chosen.len() < trace.spans.len(),
            found_count: found.as_ref().map(Vec::len),
            found_span_ids: found
                .map(|hits| hits.iter().take(MAX_FOUND).map(|&i| trace.spans[i].span_id.clone()).collect()),
            critical_path_span_ids: critical.map(|path| path.iter().map(|&i| trace.spans[i].span_id.clone()).collect()),
            spans: Vec::with_capacity(chosen.len()),
        };
        let mut spans: Vec<Option<OutlineSpan>> = trace.spans.into_iter().map(Some).collect();
        outline.spans.extend(chosen.into_iter().filter_map(|i| spans[i].take()));
        Ok(Some(outline))
    }

    /// One span of one trace as Skein JSON; `None` when it is not stored.
    pub async fn trace_span(&self, trace_id: &str, span_id: &str) -> Result<Option<serde_json::Value>, QueryError> {
        let batches = self
            .trace_rows(trace_id, Some(col(span_col::SPAN_ID).eq(lit(span_id))), None, self.max_result_rows())
            .await?;
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
            depth: 0,
            child_count: 0,
            descendant_count: 0,
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

/// The spans of one trace in start order, with their tree.
pub(crate) struct TraceSpans {
    pub trace_id: String,
    pub start_time_unix_nano: i64,
    pub duration_nanos: i64,
    pub spans: Vec<OutlineSpan>,
    pub tree: TraceTree,
}

/// A span ID from a request, lowercased: 16 hex digits.
pub(crate) fn span_id_param(span_id: &str) -> Result<String, QueryError> {
    let span = span_id.to_ascii_lowercase();
    if span.len() != 16 || !span.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(QueryError::InvalidRequest(format!("invalid span ID {span_id:?}: expected 16 hex digits")));
    }
    Ok(span)
}

pub(crate) fn trace_id_param(trace_id: &str) -> Result<String, QueryError> {
    ids::normalize_trace_id(trace_id).ok_or_else(|| {
        QueryError::InvalidRequest(format!("invalid trace ID {trace_id:?}: expected up to 32 hex digits, not all zero"))
    })
}

/// `value` as a JSON response, or a 404 saying what is `missing`: the shape
/// of every lookup of a trace or a span.
pub(crate) fn json_or_not_found<T: serde::Serialize>(
    value: Option<T>,
    missing: impl FnOnce() -> String,
) -> Result<Response, QueryError> {
    value.map(|v| axum::Json(v).into_response()).ok_or_else(|| QueryError::NotFound(missing()))
}

pub(crate) async fn get_outline(TenantState(state): TenantState, Path(trace_id): Path<String>, uri: Uri) -> Response {
    state
        .observe("trace_outline", async {
            let window = OutlineWindow::from_params(&Params::from_uri(&uri)?)?;
            let id = trace_id_param(&trace_id)?;
            json_or_not_found(state.engine.trace_outline(&id, &window).await?, || format!("trace {id} not found"))
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
            let span = span_id_param(&span_id)?;
            json_or_not_found(state.engine.trace_span(&id, &span).await?, || {
                format!("span {span} of trace {id} not found")
            })
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

    const ROOT: &str = "0101010101010101";
    const CHARGE: &str = "0202020202020202";

    async fn outline(query: &str) -> Value {
        let (status, _, body) = get(&format!("/api/v1/traces/{T1}/outline?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).expect("json")
    }

    fn span_ids(outline: &Value) -> Vec<&str> {
        outline["spans"].as_array().expect("spans").iter().map(|s| s["spanId"].as_str().expect("id")).collect()
    }

    #[tokio::test]
    async fn windows_hold_levels_subtrees_and_revealed_spans() {
        let whole = outline("").await;
        assert_eq!(whole["windowed"], false);
        assert_eq!(span_ids(&whole), [ROOT, CHARGE]);
        assert_eq!(
            (&whole["spans"][0]["depth"], &whole["spans"][0]["childCount"], &whole["spans"][0]["descendantCount"]),
            (&serde_json::json!(0), &serde_json::json!(1), &serde_json::json!(1))
        );
        assert_eq!(whole["spans"][1]["depth"], 1);

        // The top level only; the counts stay the whole trace's.
        let top = outline("max_spans=1").await;
        assert_eq!(
            (span_ids(&top), &top["windowed"], &top["spanCount"]),
            (vec![ROOT], &Value::Bool(true), &whole["spanCount"])
        );
        assert_eq!(top["services"], whole["services"]);
        // Opening the root's subtree.
        assert_eq!(span_ids(&outline(&format!("under={ROOT}&max_spans=1")).await), [CHARGE]);
        // A chosen span comes with its ancestors.
        assert_eq!(span_ids(&outline(&format!("max_spans=1&reveal={}", CHARGE.to_uppercase())).await), [ROOT, CHARGE]);

        let found = outline("max_spans=1&find=CHAR").await;
        assert_eq!((span_ids(&found), &found["foundCount"]), (vec![ROOT, CHARGE], &serde_json::json!(1)));
        assert_eq!(found["foundSpanIds"], serde_json::json!([CHARGE]));
        let nothing = outline("max_spans=1&find=no-such-span").await;
        assert_eq!((span_ids(&nothing), &nothing["foundCount"]), (vec![ROOT], &serde_json::json!(0)));

        // The root (0..500 ms) waited for charge (100..400 ms).
        let critical = outline("max_spans=1&critical_path=true").await;
        assert_eq!(critical["criticalPathSpanIds"], serde_json::json!([ROOT, CHARGE]));
        assert_eq!(span_ids(&critical), [ROOT]);
    }

    #[tokio::test]
    async fn windows_and_summaries_read_traces_too_big_to_send_whole() {
        let answer = |max_result_rows, max_trace_spans, path: String| async move {
            let config = crate::QueryConfig { max_result_rows, max_trace_spans, ..crate::test_support::test_config() };
            let (status, _, body) =
                crate::test_support::request(crate::server::test_router(config), "GET", &path, String::new()).await;
            (status, String::from_utf8_lossy(&body).into_owned())
        };
        // T1 has two spans: more than one result row, but a window's read may hold them.
        let (status, body) = answer(1, 2, format!("/api/v1/traces/{T1}/outline")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("max_result_rows") && body.contains("max_spans"), "{body}");
        assert_eq!(answer(1, 2, format!("/api/v1/traces/{T1}/outline?max_spans=1")).await.0, StatusCode::OK);
        assert_eq!(answer(1, 2, format!("/api/v1/traces/{T1}/summary")).await.0, StatusCode::OK);
        let (status, body) = answer(1, 1, format!("/api/v1/traces/{T1}/outline?max_spans=1")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("max_trace_spans"), "{body}");
    }

    #[tokio::test]
    async fn bad_windows_are_refused_with_the_reason() {
        for (query, wanted) in [
            ("max_spans=0", StatusCode::BAD_REQUEST),
            ("max_spans=lots", StatusCode::BAD_REQUEST),
            ("under=xyz", StatusCode::BAD_REQUEST),
            ("reveal=0101,0202", StatusCode::BAD_REQUEST),
            ("critical_path=maybe", StatusCode::BAD_REQUEST),
            ("depth=3", StatusCode::BAD_REQUEST),
            ("under=0303030303030303", StatusCode::NOT_FOUND),
        ] {
            let (status, _, body) = get(&format!("/api/v1/traces/{T1}/outline?{query}")).await;
            assert_eq!(status, wanted, "{query}: {}", String::from_utf8_lossy(&body));
            let json: Value = serde_json::from_slice(&body).expect("json");
            assert!(json["error"]["message"].as_str().is_some_and(|e| !e.is_empty()), "{query}: {json}");
        }
        let many = vec![ROOT; 1001].join(",");
        let (status, _, _) = get(&format!("/api/v1/traces/{T1}/outline?reveal={many}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
