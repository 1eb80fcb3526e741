//! `GET /api/v1/metrics/{name}/exemplars`: the exemplars of a metric's
//! points in a time range (time, value, trace and span IDs), so a chart can
//! draw them and open the span behind a point.

use axum::extract::Path;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use serde::Serialize;
use skein_model::metrics::col as metric_col;

use crate::engine::METRICS_TABLE;
use crate::metrics_api::{LabelMatcher, Start, point_filter};
use crate::params::{Params, now_ns, parse_time};
use crate::tenancy::TenantState;
use crate::trace_outline::cast_column;
use crate::{QueryEngine, QueryError};

const DEFAULT_RANGE_NS: i64 = 3_600 * 1_000_000_000;
const DEFAULT_LIMIT: usize = 1_000;
const MAX_LIMIT: usize = 10_000;

/// One exemplar of a metric point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exemplar {
    /// Unix milliseconds (exemplars are drawn on charts).
    pub time_ms: f64,
    pub value: Option<f64>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub series_id: String,
}

impl QueryEngine {
    /// Exemplars of the points of `metric`'s series that `matchers` select
    /// in `[start_ns, end_ns]`, oldest first, at most `limit`; true when
    /// there were more.
    pub async fn metric_exemplars(
        &self,
        metric: &str,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
        limit: usize,
    ) -> Result<(Vec<Exemplar>, bool), QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let filter = point_filter(Some(metric), matchers, Some(Start::Inclusive(start_ns)), Some(end_ns))
                .expect("a metric name is a filter");
            let frame = ctx
                .table(METRICS_TABLE)
                .await
                .and_then(|f| f.filter(filter))
                .and_then(|f| f.select_columns(&[metric_col::SERIES_ID, metric_col::EXEMPLARS]))
                .map_err(|e| self.datafusion_error(e))?;
            let result = self.collect(frame, self.max_result_rows()).await?;
            let mut exemplars = Vec::new();
            for batch in &result.batches {
                read_exemplars(batch, &mut exemplars)?;
            }
            exemplars.sort_by(|a, b| a.time_ms.total_cmp(&b.time_ms));
            let truncated = exemplars.len() > limit;
            exemplars.truncate(limit);
            Ok((exemplars, truncated))
        })
        .await
    }
}

fn read_exemplars(batch: &RecordBatch, out: &mut Vec<Exemplar>) -> Result<(), QueryError> {
    use skein_model::metrics::col::nested;
    let series = cast_column(batch, metric_col::SERIES_ID, &DataType::Utf8)?;
    let series = series.as_string::<i32>();
    let lists = batch
        .column_by_name(metric_col::EXEMPLARS)
        .and_then(|c| c.as_list_opt::<i32>())
        .ok_or_else(|| QueryError::Execution("the exemplars column is not a list".into()))?;
    for row in 0..batch.num_rows() {
        if lists.is_null(row) {
            continue;
        }
        let items = lists.value(row);
        let Some(items) = items.as_struct_opt() else {
            return Err(QueryError::Execution("exemplars are not structs".into()));
        };
        if items.is_empty() {
            continue;
        }
        let field = |name: &str, to: &DataType| {
            let array = items
                .column_by_name(name)
                .ok_or_else(|| QueryError::Execution(format!("exemplars have no field {name}")))?;
            datafusion::arrow::compute::cast(array, to).map_err(|e| QueryError::Execution(e.to_string()))
        };
        let time = field(nested::TIME, &DataType::Int64)?;
        let value = field(nested::VALUE, &DataType::Float64)?;
        let value_int = field(nested::VALUE_INT, &DataType::Float64)?;
        let (trace, span) = (field(nested::TRACE_ID, &DataType::Utf8)?, field(nested::SPAN_ID, &DataType::Utf8)?);
        let time = time.as_primitive::<Int64Type>();
        let (value, value_int) = (value.as_primitive::<Float64Type>(), value_int.as_primitive::<Float64Type>());
        let (trace, span) = (trace.as_string::<i32>(), span.as_string::<i32>());
        let text = |a: &datafusion::arrow::array::StringArray, i: usize| {
            (a.is_valid(i) && !a.value(i).is_empty()).then(|| a.value(i).to_owned())
        };
        for i in 0..items.len() {
            out.push(Exemplar {
                time_ms: time.value(i) as f64 / 1e6,
                value: if value.is_valid(i) {
                    Some(value.value(i))
                } else {
                    value_int.is_valid(i).then(|| value_int.value(i))
                },
                trace_id: text(trace, i),
                span_id: text(span, i),
                series_id: series.value(row).to_owned(),
            });
        }
    }
    Ok(())
}

pub(crate) async fn get_exemplars(TenantState(state): TenantState, Path(name): Path<String>, uri: Uri) -> Response {
    state
        .observe("metric_exemplars", async {
            let params = Params::from_uri(&uri)?;
            params.only(&["start", "end", "limit", "match", "match[]"])?;
            let matchers = LabelMatcher::all(&params)?;
            let end = params.single("end")?.map(|v| parse_time("end", v)).transpose()?.unwrap_or_else(now_ns);
            let start =
                params.single("start")?.map(|v| parse_time("start", v)).transpose()?.unwrap_or(end - DEFAULT_RANGE_NS);
            let limit = match params.single("limit")? {
                None => DEFAULT_LIMIT,
                Some(text) => text.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                    QueryError::InvalidRequest(format!("limit must be an integer from 1 to {MAX_LIMIT}, got {text:?}"))
                })?,
            };
            let (exemplars, truncated) = state.engine.metric_exemplars(&name, &matchers, start, end, limit).await?;
            Ok(axum::Json(serde_json::json!({ "exemplars": exemplars, "truncated": truncated })).into_response())
        })
        .await
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::Value;

    use crate::test_support::{BASE_SECONDS, get};

    #[tokio::test]
    async fn exemplars_of_a_metric_in_a_range() {
        let range = format!("start={}&end={}", BASE_SECONDS - 60, BASE_SECONDS + 600);
        let (status, _, body) = get(&format!("/api/v1/metrics/http.server.duration/exemplars?{range}")).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let json: Value = serde_json::from_slice(&body).expect("json");
        let exemplars = json["exemplars"].as_array().expect("exemplars");
        assert_eq!(json["truncated"], false);
        for e in exemplars {
            assert!(e["time_ms"].as_f64().is_some() && e["series_id"].as_str().is_some(), "{e}");
        }
        let (status, _, _) = get(&format!("/api/v1/metrics/http.server.duration/exemplars?{range}&limit=0")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Label matchers select series, as query_range's do.
        let series_of = |json: &Value| -> std::collections::BTreeSet<String> {
            json["exemplars"].as_array().expect("exemplars").iter().map(|e| e["series_id"].to_string()).collect()
        };
        let all = series_of(&json);
        assert!(all.len() >= 2, "the fixture has exemplars in several series: {json}");
        let mut narrowed = std::collections::BTreeSet::new();
        for matcher in ["host.name=host-a", "host.name!=host-a"] {
            let uri = format!("/api/v1/metrics/http.server.duration/exemplars?{range}&match={matcher}");
            let (status, _, body) = get(&uri).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            let some = series_of(&serde_json::from_slice(&body).expect("json"));
            assert!(some.len() < all.len(), "{matcher} selects fewer series: {some:?} of {all:?}");
            narrowed.extend(some);
        }
        assert_eq!(narrowed, all, "a matcher and its negation select every series between them");
        let (status, _, _) = get(&format!("/api/v1/metrics/http.server.duration/exemplars?{range}&match=oops")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
