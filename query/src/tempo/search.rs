//! `GET /api/search`: Tempo's trace search, answered by Skein's own search
//! ([`QueryEngine::search`]) with the request translated onto a
//! [`SearchQuery`]: `q` (the TraceQL subset) becomes its span filter,
//! `tags` (logfmt) its service, span name, status and attribute filters.
//! For TraceQL, each trace carries a span set: up to `spss` matched spans
//! (earliest first) with the values the query tested, and how many matched.

use std::collections::HashMap;

use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, ExprFunctionExt, WindowFunctionDefinition, col, lit};
use serde_json::{Value, json};
use skein_model::schema::col as span_col;
use tracing::debug;

use super::filter::{Shown, filter_expr, shown_fields};
use super::traceql::{self, parse_go_duration};
use super::{logfmt, time_range};
use crate::engine::SPANS_TABLE;
use crate::params::Params;
use crate::server::AppState;
use crate::tenancy::TenantState;
use crate::{QueryConfig, QueryEngine, QueryError, SearchQuery, TraceSummary};

/// Spans per span set when `spss` is not given (Tempo's default), and the most allowed.
const DEFAULT_SPSS: usize = 3;
const MAX_SPSS: usize = 100;
/// Tempo's `rootServiceName` for a trace whose root span is missing.
const ROOT_NOT_RECEIVED: &str = "<root span not yet received>";

/// A Tempo search translated onto Skein's.
#[derive(Debug)]
struct TempoSearch {
    query: SearchQuery,
    /// Span sets to fill: `Some` for TraceQL, with the values to show.
    span_sets: Option<(usize, Vec<Shown>)>,
}

fn invalid(message: String) -> QueryError {
    QueryError::InvalidRequest(message)
}

fn parse_request(params: &Params, config: &QueryConfig) -> Result<TempoSearch, QueryError> {
    let limit = match params.single("limit")? {
        None => config.search_default_limit,
        Some(text) => match text.parse::<usize>() {
            // Tempo caps a large limit at its configured maximum rather than failing.
            Ok(n) if n > 0 => n.min(config.search_max_limit),
            _ => return Err(invalid(format!("limit must be a positive integer, got {text:?}"))),
        },
    };
    let spss = match params.single("spss")? {
        None => DEFAULT_SPSS,
        Some(text) => match text.parse::<usize>() {
            // 0 means the default, as an unset protobuf field does in Tempo.
            Ok(0) => DEFAULT_SPSS,
            Ok(n) => n.min(MAX_SPSS),
            Err(_) => return Err(invalid(format!("spss must be a non-negative integer, got {text:?}"))),
        },
    };
    let (start_ns, end_ns) = time_range(params)?;
    let duration = |name: &str| -> Result<Option<i64>, QueryError> {
        params
            .single(name)?
            .map(|text| {
                parse_go_duration(text)
                    .ok_or_else(|| invalid(format!("{name} must be a duration like 100ms or 1.5s, got {text:?}")))
            })
            .transpose()
    };
    let mut query = SearchQuery {
        min_duration_ns: duration("minDuration")?,
        max_duration_ns: duration("maxDuration")?,
        start_ns,
        end_ns,
        ..SearchQuery::newest(limit)
    };
    if let (Some(min), Some(max)) = (query.min_duration_ns, query.max_duration_ns)
        && min > max
    {
        return Err(invalid("maxDuration must be greater than minDuration".into()));
    }
    let mut span_sets = None;
    match (params.single("q")?, params.single("tags")?) {
        (Some(_), Some(_)) => return Err(invalid("q and tags cannot be used in the same search".into())),
        (Some(q), None) => {
            let filter = traceql::parse(q).map_err(|e| invalid(e.to_string()))?;
            query.filter = filter_expr(&filter);
            span_sets = Some((spss, shown_fields(&filter)));
        }
        (None, Some(tags)) => apply_tags(&mut query, logfmt::parse(tags)?)?,
        (None, None) => {}
    }
    Ok(TempoSearch { query, span_sets })
}

/// Tag-based search: `service.name`, `name` and `status` have columns of
/// their own; any other key is a span or resource attribute.
fn apply_tags(query: &mut SearchQuery, tags: Vec<(String, String)>) -> Result<(), QueryError> {
    for (key, value) in tags {
        match key.as_str() {
            "service.name" => query.service = Some(value),
            "name" => query.span_name = Some(value),
            "status" | "status.code" => match value.to_ascii_lowercase().as_str() {
                status @ ("error" | "ok" | "unset") => query.status = Some(status.to_owned()),
                _ => return Err(invalid(format!("tag {key} must be error, ok or unset, got {value:?}"))),
            },
            _ => query.attributes.push((key, value)),
        }
    }
    Ok(())
}

pub(super) async fn search(TenantState(state): TenantState, uri: Uri) -> Response {
    state.observe("tempo_search", search_response(&state, &uri)).await
}

async fn search_response(state: &AppState, uri: &Uri) -> Result<Response, QueryError> {
    let request = parse_request(&Params::from_uri(uri)?, &state.config)?;
    debug!(limit = request.query.limit, traceql = request.span_sets.is_some(), "tempo search");
    let page = state.engine.search(&request.query).await?;
    let mut span_sets = match &request.span_sets {
        Some((spss, shown)) if !page.traces.is_empty() => {
            let ids: Vec<&str> = page.traces.iter().map(|t| t.trace_id.as_str()).collect();
            Some(span_sets(&state.engine, &request.query, &ids, *spss, shown).await?)
        }
        Some(_) => Some(HashMap::new()),
        None => None,
    };
    let traces: Vec<Value> = page
        .traces
        .iter()
        .map(|summary| {
            let set = span_sets.as_mut().map(|sets| sets.remove(&summary.trace_id).unwrap_or_else(empty_set));
            trace_json(summary, set)
        })
        .collect();
    Ok(axum::Json(json!({ "traces": traces, "metrics": {} })).into_response())
}

fn empty_set() -> Value {
    json!({ "spans": [], "matched": 0 })
}

/// One trace in Tempo's `TraceSearchMetadata` shape (64-bit numbers as strings).
fn trace_json(summary: &TraceSummary, span_set: Option<Value>) -> Value {
    let mut trace = json!({
        "traceID": summary.trace_id,
        "rootServiceName": if summary.has_root { summary.root_service_name.as_str() } else { ROOT_NOT_RECEIVED },
        "startTimeUnixNano": summary.start_time_unix_nano.to_string(),
        "durationMs": summary.duration_nanos / 1_000_000,
    });
    if summary.has_root {
        trace["rootTraceName"] = json!(summary.root_span_name);
    }
    if let Some(set) = span_set {
        // `spanSet` is the deprecated single set older Grafana versions read.
        trace["spanSet"] = set.clone();
        trace["spanSets"] = json!([set]);
    }
    trace
}

const MATCHED: &str = "matched";
const RANK: &str = "rank";

/// The span set of each of `ids`: its first `spss` spans matching `query`
/// (by start time, then span ID) and how many match. One query over the
/// page's traces; the window functions keep only `spss` rows per trace.
async fn span_sets(
    engine: &QueryEngine,
    query: &SearchQuery,
    ids: &[&str],
    spss: usize,
    shown: &[Shown],
) -> Result<HashMap<String, Value>, QueryError> {
    let df_error = |e| engine.datafusion_error(e);
    let in_page = col(span_col::TRACE_ID).in_list(ids.iter().map(|id| lit(*id)).collect(), false);
    let filter = conjunction(query.span_filter().into_iter().chain([in_page])).unwrap_or(lit(true));
    let rank = row_number()
        .partition_by(vec![col(span_col::TRACE_ID)])
        .order_by(vec![col(span_col::START_TIME).sort(true, false), col(span_col::SPAN_ID).sort(true, false)])
        .build()
        .map_err(df_error)?;
    let count = WindowFunction::new(WindowFunctionDefinition::AggregateUDF(count_udaf()), vec![lit(1i64)]);
    let matched =
        Expr::WindowFunction(Box::new(count)).partition_by(vec![col(span_col::TRACE_ID)]).build().map_err(df_error)?;
    let mut columns: Vec<Expr> = vec![
        col(span_col::TRACE_ID),
        col(span_col::SPAN_ID),
        col(span_col::NAME),
        col(span_col::START_TIME),
        col(span_col::DURATION_NS),
        col(MATCHED),
    ];
    for (i, field) in shown.iter().enumerate() {
        columns.push(field.text.clone().alias(format!("text_{i}")));
        columns.push(field.code.clone().alias(format!("code_{i}")));
    }
    engine
        .limited(async {
            let ctx = engine.session()?;
            let frame = ctx
                .table(SPANS_TABLE)
                .await
                .and_then(|f| f.filter(filter))
                // One window per sort order: a plan's window node takes one.
                .and_then(|f| f.window(vec![matched.alias(MATCHED)]))
                .and_then(|f| f.window(vec![rank.alias(RANK)]))
                .and_then(|f| f.filter(col(RANK).lt_eq(lit(spss as u64))))
                .and_then(|f| f.select(columns))
                .map_err(df_error)?;
            let result = engine.collect(frame, ids.len() * spss).await?;
            let mut sets: HashMap<String, Collected> = HashMap::new();
            for batch in &result.batches {
                read_spans(batch, shown, &mut sets)?;
            }
            Ok(sets
                .into_iter()
                .map(|(id, Collected { mut spans, matched })| {
                    spans.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
                    let spans: Vec<Value> = spans.into_iter().map(|(_, _, span)| span).collect();
                    (id, json!({ "spans": spans, "matched": matched }))
                })
                .collect())
        })
        .await
}

/// One trace's span set while it is read: (start, span ID, span JSON) and the match count.
#[derive(Debug, Default)]
struct Collected {
    spans: Vec<(i64, String, Value)>,
    matched: i64,
}

fn column(batch: &RecordBatch, index: usize, to: &DataType) -> Result<ArrayRef, QueryError> {
    cast(batch.column(index), to).map_err(|e| QueryError::Execution(format!("span set column {index}: {e}")))
}

/// Adds the spans of `batch` to `sets`, by trace ID.
fn read_spans(batch: &RecordBatch, shown: &[Shown], sets: &mut HashMap<String, Collected>) -> Result<(), QueryError> {
    let text = |index: usize| column(batch, index, &DataType::Utf8);
    let (trace_ids, span_ids, names) = (text(0)?, text(1)?, text(2)?);
    let (starts, durations) = (column(batch, 3, &DataType::Int64)?, column(batch, 4, &DataType::Int64)?);
    let matched = column(batch, 5, &DataType::Int64)?;
    let values: Vec<(ArrayRef, ArrayRef)> =
        (0..shown.len()).map(|i| Ok((text(6 + 2 * i)?, text(7 + 2 * i)?))).collect::<Result<_, QueryError>>()?;
    let string = |array: &ArrayRef, row: usize| {
        let array = array.as_string::<i32>();
        (!array.is_null(row)).then(|| array.value(row).to_owned())
    };
    let (starts, durations) = (starts.as_primitive::<Int64Type>(), durations.as_primitive::<Int64Type>());
    let matched = matched.as_primitive::<Int64Type>();
    for row in 0..batch.num_rows() {
        let span_id = string(&span_ids, row).unwrap_or_default();
        let mut span = json!({
            "spanID": span_id,
            "name": string(&names, row).unwrap_or_default(),
            "startTimeUnixNano": starts.value(row).to_string(),
            "durationNanos": durations.value(row).to_string(),
        });
        let attributes: Vec<Value> = values
            .iter()
            .enumerate()
            .filter_map(|(i, (text, code))| {
                let value = string(text, row)?;
                Some(json!({ "key": shown[i].key, "value": any_value(&value, &string(code, row).unwrap_or_default()) }))
            })
            .collect();
        if !attributes.is_empty() {
            span["attributes"] = Value::Array(attributes);
        }
        let entry = sets.entry(string(&trace_ids, row).unwrap_or_default()).or_default();
        entry.spans.push((starts.value(row), span_id, span));
        entry.matched = matched.value(row);
    }
    Ok(())
}

/// An OTLP/JSON `AnyValue` from stored text and its type code.
fn any_value(text: &str, code: &str) -> Value {
    match code {
        "i" => json!({ "intValue": text }),
        "d" => match text.parse::<f64>() {
            Ok(number) if number.is_finite() => json!({ "doubleValue": number }),
            _ => json!({ "doubleValue": text }),
        },
        "b" => json!({ "boolValue": text == "true" }),
        _ => json!({ "stringValue": text }),
    }
}

#[cfg(test)]
mod tests;
