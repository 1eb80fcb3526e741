//! Trace search (`GET /api/v1/search`).
//!
//! Two phases, both planned with DataFusion expressions (values are
//! literals, never spliced into SQL):
//! 1. candidates: spans matching every filter, grouped by trace, newest
//!    first, `limit` trace IDs. Filters reach the shards, so storage can
//!    prune files and row groups.
//! 2. summaries: one aggregate over all spans of exactly those traces
//!    (`trace_id IN (...)`), giving root span, duration, counts, services.
//!
//! A trace matches when any one of its spans matches all filters.

use std::sync::Arc;

use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::functions_aggregate::expr_fn::{array_agg, bool_or, count, first_value, max, min, sum};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, ExprFunctionExt, SortExpr, cast as cast_expr, col, lit};
use datafusion::prelude::SessionContext;
use serde::Serialize;
use skein_model::schema::col as span_col;

use crate::engine::SPANS_TABLE;
use crate::params::{Params, parse_duration, parse_time, timestamp};
use crate::server::AppState;
use crate::{QueryConfig, QueryEngine, QueryError};

const PARAMETERS: [&str; 10] =
    ["service", "name", "attr", "tags", "min_duration", "max_duration", "status", "start", "end", "limit"];

/// What to search for; every field is optional except `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub service: Option<String>,
    pub span_name: Option<String>,
    /// Span or resource attribute equalities (`key`, `value`).
    pub attributes: Vec<(String, String)>,
    pub min_duration_ns: Option<i64>,
    pub max_duration_ns: Option<i64>,
    /// `error`, `ok` or `unset`.
    pub status: Option<String>,
    /// Spans starting at or after this time (unix nanoseconds).
    pub start_ns: Option<i64>,
    /// Spans starting at or before this time (unix nanoseconds).
    pub end_ns: Option<i64>,
    pub limit: usize,
}

impl SearchQuery {
    /// An unfiltered search for the newest `limit` traces.
    pub fn newest(limit: usize) -> Self {
        Self {
            service: None,
            span_name: None,
            attributes: Vec::new(),
            min_duration_ns: None,
            max_duration_ns: None,
            status: None,
            start_ns: None,
            end_ns: None,
            limit,
        }
    }

    pub(crate) fn from_params(params: &Params, config: &QueryConfig) -> Result<Self, QueryError> {
        params.only(&PARAMETERS)?;
        let mut attributes = Vec::new();
        for pair in params.all("attr").chain(params.all("tags")) {
            match pair.split_once('=') {
                Some((key, value)) if !key.is_empty() => attributes.push((key.to_owned(), value.to_owned())),
                _ => return Err(invalid(format!("attr must be key=value, got {pair:?}"))),
            }
        }
        let status = match params.single("status")? {
            None => None,
            Some(s) => match s.to_ascii_lowercase().as_str() {
                status @ ("error" | "ok" | "unset") => Some(status.to_owned()),
                _ => return Err(invalid(format!("status must be error, ok or unset, got {s:?}"))),
            },
        };
        let limit = match params.single("limit")? {
            None => config.search_default_limit,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=config.search_max_limit).contains(&n) => n,
                _ => {
                    return Err(invalid(format!(
                        "limit must be an integer from 1 to {} (query.search_max_limit), got {text:?}",
                        config.search_max_limit
                    )));
                }
            },
        };
        let query = Self {
            service: params.single("service")?.map(str::to_owned),
            span_name: params.single("name")?.map(str::to_owned),
            attributes,
            min_duration_ns: params.single("min_duration")?.map(|v| parse_duration("min_duration", v)).transpose()?,
            max_duration_ns: params.single("max_duration")?.map(|v| parse_duration("max_duration", v)).transpose()?,
            status,
            start_ns: params.single("start")?.map(|v| parse_time("start", v)).transpose()?,
            end_ns: params.single("end")?.map(|v| parse_time("end", v)).transpose()?,
            limit,
        };
        if let (Some(start), Some(end)) = (query.start_ns, query.end_ns)
            && start > end
        {
            return Err(invalid("start must not be after end".into()));
        }
        if let (Some(min), Some(max)) = (query.min_duration_ns, query.max_duration_ns)
            && min > max
        {
            return Err(invalid("min_duration must not be greater than max_duration".into()));
        }
        Ok(query)
    }

    /// The span-level filter: all conditions must hold on one span.
    fn span_filter(&self) -> Option<Expr> {
        let mut filters = Vec::new();
        if let Some(service) = &self.service {
            filters.push(col(span_col::SERVICE_NAME).eq(lit(service.as_str())));
        }
        if let Some(name) = &self.span_name {
            filters.push(col(span_col::NAME).eq(lit(name.as_str())));
        }
        for (key, value) in &self.attributes {
            let on_span = get_field(col(span_col::SPAN_ATTRIBUTES), key.as_str()).eq(lit(value.as_str()));
            let on_resource = get_field(col(span_col::RESOURCE_ATTRIBUTES), key.as_str()).eq(lit(value.as_str()));
            filters.push(on_span.or(on_resource));
        }
        if let Some(min) = self.min_duration_ns {
            filters.push(col(span_col::DURATION_NS).gt_eq(lit(min)));
        }
        if let Some(max) = self.max_duration_ns {
            filters.push(col(span_col::DURATION_NS).lt_eq(lit(max)));
        }
        if let Some(status) = &self.status {
            filters.push(col(span_col::STATUS_CODE).eq(lit(status.as_str())));
        }
        if let Some(start) = self.start_ns {
            filters.push(col(span_col::START_TIME).gt_eq(timestamp(start)));
        }
        if let Some(end) = self.end_ns {
            filters.push(col(span_col::START_TIME).lt_eq(timestamp(end)));
        }
        conjunction(filters)
    }
}

fn invalid(message: String) -> QueryError {
    QueryError::InvalidRequest(message)
}

/// One trace in search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    pub trace_id: String,
    pub root_service_name: String,
    pub root_span_name: String,
    /// A string in JSON: nanoseconds exceed 2^53.
    #[serde(serialize_with = "as_string")]
    pub start_time_unix_nano: i64,
    pub duration_nanos: i64,
    pub span_count: u64,
    pub error_count: u64,
    /// Distinct services of the trace, sorted.
    pub services: Vec<String>,
    /// False when no span lacks a parent (the root was not received); the
    /// earliest span stands in for it.
    pub has_root: bool,
}

fn as_string<S: serde::Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

impl QueryEngine {
    /// Traces matching `query`, newest first.
    pub async fn search(&self, query: &SearchQuery) -> Result<Vec<TraceSummary>, QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let ids = self.candidate_traces(&ctx, query).await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut summaries = self.summaries(&ctx, &ids).await?;
            summaries.sort_by(|a, b| {
                b.start_time_unix_nano.cmp(&a.start_time_unix_nano).then_with(|| a.trace_id.cmp(&b.trace_id))
            });
            Ok(summaries)
        })
        .await
    }

    /// Phase 1: IDs of the newest `limit` traces with a matching span.
    async fn candidate_traces(&self, ctx: &SessionContext, query: &SearchQuery) -> Result<Vec<String>, QueryError> {
        const FIRST_START: &str = "first_start";
        let df_error = |e| self.datafusion_error(e);
        let mut frame = ctx.table(SPANS_TABLE).await.map_err(df_error)?;
        if let Some(filter) = query.span_filter() {
            frame = frame.filter(filter).map_err(df_error)?;
        }
        let frame = frame
            .aggregate(vec![col(span_col::TRACE_ID)], vec![min(col(span_col::START_TIME)).alias(FIRST_START)])
            .and_then(|f| f.sort(vec![col(FIRST_START).sort(false, false), col(span_col::TRACE_ID).sort(true, false)]))
            .and_then(|f| f.limit(0, Some(query.limit)))
            .map_err(df_error)?;
        let result = self.collect(frame, query.limit).await?;
        let mut ids = Vec::with_capacity(result.row_count);
        for batch in &result.batches {
            let column = utf8(batch.column(0))?;
            ids.extend(column.as_string::<i32>().iter().flatten().map(str::to_owned));
        }
        Ok(ids)
    }

    /// Phase 2: one summary per trace in `ids`.
    async fn summaries(&self, ctx: &SessionContext, ids: &[String]) -> Result<Vec<TraceSummary>, QueryError> {
        let df_error = |e| self.datafusion_error(e);
        let ids: Vec<Expr> = ids.iter().map(|id| lit(id.as_str())).collect();
        // The root: spans without a parent first, then the earliest.
        let root_order: Vec<SortExpr> = vec![
            col(span_col::PARENT_SPAN_ID).is_not_null().sort(true, false),
            col(span_col::START_TIME).sort(true, false),
            col(span_col::SPAN_ID).sort(true, false),
        ];
        let distinct_services = array_agg(col(span_col::SERVICE_NAME)).distinct().build().map_err(df_error)?;
        let aggregates = vec![
            min(col(span_col::START_TIME)).alias("start"),
            max(col(span_col::END_TIME)).alias("end"),
            count(col(span_col::SPAN_ID)).alias("spans"),
            sum(cast_expr(col(span_col::STATUS_CODE).eq(lit("error")), DataType::Int64)).alias("errors"),
            distinct_services.alias("services"),
            bool_or(col(span_col::PARENT_SPAN_ID).is_null()).alias("has_root"),
            first_value(col(span_col::NAME), root_order.clone()).alias("root_name"),
            first_value(col(span_col::SERVICE_NAME), root_order).alias("root_service"),
        ];
        let frame = ctx
            .table(SPANS_TABLE)
            .await
            .and_then(|f| f.filter(col(span_col::TRACE_ID).in_list(ids.clone(), false)))
            .and_then(|f| f.aggregate(vec![col(span_col::TRACE_ID)], aggregates))
            .map_err(df_error)?;
        let result = self.collect(frame, ids.len()).await?;
        let mut summaries = Vec::with_capacity(result.row_count);
        for batch in &result.batches {
            summaries.extend(summaries_from_batch(batch)?);
        }
        Ok(summaries)
    }
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef, QueryError> {
    batch.column_by_name(name).cloned().ok_or_else(|| QueryError::Execution(format!("search result lacks {name}")))
}

fn utf8(array: &ArrayRef) -> Result<ArrayRef, QueryError> {
    cast(array, &DataType::Utf8).map_err(|e| QueryError::Execution(e.to_string()))
}

fn int64(array: &ArrayRef) -> Result<ArrayRef, QueryError> {
    cast(array, &DataType::Int64).map_err(|e| QueryError::Execution(e.to_string()))
}

fn summaries_from_batch(batch: &RecordBatch) -> Result<Vec<TraceSummary>, QueryError> {
    let trace_id = utf8(&column(batch, span_col::TRACE_ID)?)?;
    let start = int64(&column(batch, "start")?)?;
    let end = int64(&column(batch, "end")?)?;
    let spans = int64(&column(batch, "spans")?)?;
    let errors = int64(&column(batch, "errors")?)?;
    let services = column(batch, "services")?;
    let has_root = column(batch, "has_root")?;
    let root_name = utf8(&column(batch, "root_name")?)?;
    let root_service = utf8(&column(batch, "root_service")?)?;
    let services =
        services.as_list_opt::<i32>().ok_or_else(|| QueryError::Execution("search services are not a list".into()))?;
    let has_root =
        has_root.as_boolean_opt().ok_or_else(|| QueryError::Execution("search has_root is not a boolean".into()))?;
    let (start, end) = (start.as_primitive::<Int64Type>(), end.as_primitive::<Int64Type>());
    let (spans, errors) = (spans.as_primitive::<Int64Type>(), errors.as_primitive::<Int64Type>());
    let text = |array: &ArrayRef, row: usize| -> String {
        let array = array.as_string::<i32>();
        if array.is_null(row) { String::new() } else { array.value(row).to_owned() }
    };
    (0..batch.num_rows())
        .map(|row| {
            let names = utf8(&services.value(row))?;
            let names = names.as_string::<i32>();
            let mut services: Vec<String> = names.iter().flatten().map(str::to_owned).collect();
            services.sort();
            services.dedup();
            Ok(TraceSummary {
                trace_id: text(&trace_id, row),
                root_service_name: text(&root_service, row),
                root_span_name: text(&root_name, row),
                start_time_unix_nano: start.value(row),
                duration_nanos: end.value(row).saturating_sub(start.value(row)),
                span_count: spans.value(row).max(0) as u64,
                error_count: if errors.is_null(row) { 0 } else { errors.value(row).max(0) as u64 },
                services,
                has_root: has_root.is_valid(row) && has_root.value(row),
            })
        })
        .collect()
}

pub(crate) async fn search(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    state.observe("search", search_response(&state, &uri)).await
}

async fn search_response(state: &AppState, uri: &Uri) -> Result<Response, QueryError> {
    let query = SearchQuery::from_params(&Params::from_uri(uri)?, &state.config)?;
    let traces = state.engine.search(&query).await?;
    Ok(axum::Json(serde_json::json!({ "traces": traces })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::test_support::{BASE, T1, T2, T3, get};

    /// The trace IDs a search returns, in order.
    async fn search_ids(query: &str) -> Vec<String> {
        let (status, _, body) = get(&format!("/api/v1/search?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {}", String::from_utf8_lossy(&body));
        let json: Value = serde_json::from_slice(&body).expect("json");
        json["traces"]
            .as_array()
            .expect("traces")
            .iter()
            .map(|t| t["traceId"].as_str().expect("id").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn summarizes_traces_newest_first() {
        let (status, _, body) = get("/api/v1/search").await;
        assert_eq!(status, StatusCode::OK);
        let json: Value = serde_json::from_slice(&body).expect("json");
        let traces = json["traces"].as_array().expect("traces");
        assert_eq!(traces.len(), 3);
        assert_eq!(
            traces[0],
            json!({
                "traceId": T3, "rootServiceName": "checkout", "rootSpanName": "process",
                "startTimeUnixNano": (BASE + 20_000_000_000).to_string(), "durationNanos": 2_000_000_000i64,
                "spanCount": 2, "errorCount": 0, "services": ["checkout"], "hasRoot": false,
            })
        );
        assert_eq!(traces[1]["traceId"], T2);
        assert_eq!(traces[1]["rootSpanName"], "GET /cart");
        assert_eq!(
            traces[2],
            json!({
                "traceId": T1, "rootServiceName": "checkout", "rootSpanName": "POST /checkout",
                "startTimeUnixNano": BASE.to_string(), "durationNanos": 500_000_000i64,
                "spanCount": 2, "errorCount": 1, "services": ["checkout", "payments"], "hasRoot": true,
            })
        );
    }

    #[tokio::test]
    async fn filters_by_service_name_and_status() {
        assert_eq!(search_ids("service=payments").await, vec![T1]);
        assert_eq!(search_ids("service=checkout").await, vec![T3, T1]);
        assert_eq!(search_ids("name=charge").await, vec![T1]);
        assert_eq!(search_ids("name=GET%20%2Fcart").await, vec![T2]);
        assert_eq!(search_ids("status=error").await, vec![T1]);
        assert_eq!(search_ids("status=OK").await, vec![T1]);
        assert_eq!(search_ids("status=unset").await, vec![T3, T2], "T1 has only ok and error spans");
        assert!(search_ids("service=nobody").await.is_empty());
    }

    #[tokio::test]
    async fn filters_by_span_or_resource_attributes() {
        assert_eq!(search_ids("attr=http.route=/cart").await, vec![T2]);
        assert_eq!(search_ids("attr=http.route%3D%2Fcheckout").await, vec![T1]);
        assert_eq!(search_ids("attr=http.status_code=200").await, vec![T1]);
        assert_eq!(search_ids("attr=deployment.environment=staging").await, vec![T2]);
        assert_eq!(search_ids("tags=deployment.environment=prod").await, vec![T3, T1]);
        assert_eq!(search_ids("attr=deployment.environment=prod&attr=payment.provider=stripe").await, vec![T1]);
        assert!(search_ids("attr=http.route=/nowhere").await.is_empty());
    }

    #[tokio::test]
    async fn all_filters_must_hold_on_one_span() {
        // T1 has a payments span and a span with this route, but not one span with both.
        assert!(search_ids("service=payments&attr=http.route=/checkout").await.is_empty());
        assert_eq!(search_ids("service=payments&status=error").await, vec![T1]);
    }

    #[tokio::test]
    async fn filters_by_duration() {
        assert_eq!(search_ids("min_duration=1s").await, vec![T3]);
        assert_eq!(search_ids("max_duration=100ms").await, vec![T2]);
        assert_eq!(search_ids("min_duration=200ms&max_duration=400000000").await, vec![T1]);
        assert_eq!(search_ids("min_duration=2000000000").await, vec![T3]);
    }

    #[tokio::test]
    async fn filters_by_time_range() {
        assert_eq!(search_ids("start=2023-11-14T22:13:25Z").await, vec![T3, T2]);
        assert_eq!(search_ids("end=1700000005").await, vec![T1]);
        assert_eq!(search_ids("start=2023-11-14T22:13:25Z&end=1700000015000").await, vec![T2]);
        assert_eq!(search_ids(&format!("start={}", BASE + 20_000_000_000)).await, vec![T3]);
    }

    #[tokio::test]
    async fn limit_keeps_the_newest() {
        assert_eq!(search_ids("limit=1").await, vec![T3]);
        assert_eq!(search_ids("limit=2&service=checkout").await, vec![T3, T1]);
    }

    #[tokio::test]
    async fn bad_parameters_are_400() {
        for query in [
            "limit=0",
            "limit=5000",
            "limit=many",
            "status=broken",
            "min_duration=soon",
            "max_duration=-5",
            "start=yesterday",
            "start=1700000010&end=1700000000",
            "min_duration=2s&max_duration=1s",
            "attr=no-equals-sign",
            "attr==value",
            "service=a&service=b",
            "colour=blue",
        ] {
            let (status, _, body) = get(&format!("/api/v1/search?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            let json: Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(json["error"]["code"], "invalid_argument", "{query}");
        }
    }

    #[tokio::test]
    async fn engine_search_is_usable_without_http() {
        let engine = crate::test_support::engine();
        let traces = engine.search(&SearchQuery { status: Some("error".into()), ..SearchQuery::newest(10) }).await;
        let traces = traces.expect("searches");
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].trace_id, T1);
        assert_eq!(traces[0].error_count, 1);
    }
}
