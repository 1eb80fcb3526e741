//! The metric query API the UI charts from:
//! - `GET /api/v1/metrics`: metric names with type, unit, description and
//!   series count;
//! - `GET /api/v1/metrics/{name}/series`: a metric's series and labels;
//! - `GET /api/v1/metrics/query_range`: one metric, filtered by label
//!   matchers, aggregated per step and group.
//!
//! A range query runs in two reads, both filtered on the shards by metric
//! name, time range and matchers: the matching series with their labels
//! (which also tells the metric's type), then only the point columns that
//! type and aggregation need. The step math is plain Rust ([`range`],
//! [`rate`], [`quantile`], [`exp_histogram`]) on a blocking thread.

mod catalog;
mod columns;
mod exp_histogram;
mod fetch;
mod points;
mod quantile;
mod range;
mod rate;
mod request;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::Path;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use catalog::{MetricInfo, SeriesInfo};
pub use points::{Labels, MetricType};
pub use range::Aggregation;
pub use request::{LabelMatcher, ListQuery, RangeQuery, TimeBounds};

pub(crate) use self::catalog::{SERVICE_LABEL, SeriesRow, Start, point_filter};
pub(crate) use self::columns::column;
#[cfg(test)]
pub(crate) use self::exp_histogram::Buckets;
pub(crate) use self::exp_histogram::{ExpHistogram, lower_bound};
pub(crate) use self::fetch::Reading;
pub(crate) use self::points::{Histogram, Series, Value};
#[cfg(test)]
pub(crate) use self::quantile::Range;
use self::range::Evaluation;
use crate::format::float;
use crate::params::{Params, now_ns};
use crate::tenancy::TenantState;
use crate::{QueryEngine, QueryError};

const NANOS_PER_MS: i64 = 1_000_000;

/// The answer of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeResult {
    /// None when the metric has no points in the range.
    pub metric_type: Option<MetricType>,
    /// One series per group, sorted by labels; groups without points are left out.
    pub series: Vec<RangeSeries>,
}

/// One group's values at the steps where it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The `group_by` labels of the group (a label the group lacks is left out).
    pub labels: Labels,
    /// (unix nanoseconds of the step, value).
    pub points: Vec<(i64, f64)>,
}

impl QueryEngine {
    /// Evaluates a range query: the matching series, grouped by the
    /// `group_by` labels, aggregated at every step (semantics in `range`
    /// and `rate`).
    pub async fn query_range(&self, query: &RangeQuery) -> Result<RangeResult, QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let read_from = query.read_from();
            let filter = point_filter(
                Some(&query.metric),
                &query.matchers,
                Some(Start::Exclusive(read_from)),
                Some(query.end_ns),
            );
            let max_series = self.metrics_max_series();
            let rows = self.series_rows(&ctx, filter.clone(), max_series + 1, false).await?;
            if rows.len() > max_series {
                return Err(QueryError::TooMuchData { what: "series", limit: max_series, key: "metrics_max_series" });
            }
            let Some(kind) = single_type(&query.metric, &rows)? else {
                return Ok(RangeResult { metric_type: None, series: Vec::new() });
            };
            query.aggregation.check(&query.metric, kind).map_err(QueryError::InvalidRequest)?;
            let series = self.read_points(&ctx, filter, kind, query.aggregation, rows).await?;
            let evaluation = Evaluation {
                kind,
                aggregation: query.aggregation,
                steps: query.steps(),
                group_by: query.group_by.clone(),
                read_from,
            };
            // The step math is CPU work; keep it off the I/O threads.
            let groups = tokio::task::spawn_blocking(move || evaluation.run(series))
                .await
                .map_err(|e| QueryError::Execution(format!("range evaluation failed: {e}")))?;
            let points: usize = groups.iter().map(|g| g.points.len()).sum();
            if points > self.metrics_max_points() {
                let limit = self.metrics_max_points();
                return Err(QueryError::TooMuchData { what: "result points", limit, key: "metrics_max_points" });
            }
            let series = groups.into_iter().map(|g| RangeSeries { labels: g.labels, points: g.points }).collect();
            Ok(RangeResult { metric_type: Some(kind), series })
        })
        .await
    }
}

/// The one point type of a metric's series; None without series.
fn single_type(metric: &str, rows: &[SeriesRow]) -> Result<Option<MetricType>, QueryError> {
    let types: BTreeSet<&str> = rows.iter().flat_map(|r| [r.types.0.as_str(), r.types.1.as_str()]).collect();
    let mut names = types.iter();
    match (names.next(), names.next()) {
        (None, _) => Ok(None),
        (Some(name), None) => MetricType::parse(name)
            .map(Some)
            .ok_or_else(|| QueryError::Execution(format!("unknown metric_type {name:?} in storage"))),
        (Some(_), Some(_)) => Err(QueryError::InvalidRequest(format!(
            "metric {metric:?} has points of several types in this range ({}); narrow the time range",
            types.into_iter().collect::<Vec<_>>().join(", ")
        ))),
    }
}

pub(crate) async fn list_metrics(TenantState(state): TenantState, uri: Uri) -> Response {
    state
        .observe("metric_list", async {
            let query = ListQuery::from_params(&Params::from_uri(&uri)?, &state.config, false)?;
            let (metrics, truncated) = state.engine.metric_catalog(&query).await?;
            Ok(Json(json!({ "metrics": metrics, "truncated": truncated })).into_response())
        })
        .await
}

pub(crate) async fn list_series(TenantState(state): TenantState, Path(name): Path<String>, uri: Uri) -> Response {
    state
        .observe("metric_series", async {
            let query = ListQuery::from_params(&Params::from_uri(&uri)?, &state.config, true)?;
            let (series, truncated) = state.engine.metric_series(&name, &query).await?;
            Ok(Json(json!({ "series": series, "truncated": truncated })).into_response())
        })
        .await
}

pub(crate) async fn query_range(TenantState(state): TenantState, uri: Uri) -> Response {
    state
        .observe("metric_query_range", async {
            let query = RangeQuery::from_params(&Params::from_uri(&uri)?, &state.config, now_ns())?;
            let result = state.engine.query_range(&query).await?;
            Ok(Json(range_json(&query, &result)).into_response())
        })
        .await
}

/// `{"metric", "type", "aggregation", ["quantile",] "step_ms", "series": [{"labels", "points": [[ms, v]]}]}`
fn range_json(query: &RangeQuery, result: &RangeResult) -> serde_json::Value {
    let series: Vec<serde_json::Value> = result
        .series
        .iter()
        .map(|s| {
            let points: Vec<serde_json::Value> =
                s.points.iter().map(|(t, v)| json!([t.div_euclid(NANOS_PER_MS), float(Some(*v))])).collect();
            json!({ "labels": s.labels, "points": points })
        })
        .collect();
    let mut body = json!({
        "metric": query.metric,
        "type": result.metric_type.map(MetricType::name),
        "aggregation": query.aggregation.name(),
        "step_ms": query.step_ns / NANOS_PER_MS,
        "series": series,
    });
    if let Aggregation::Quantile(q) = query.aggregation {
        body["quantile"] = json!(q);
    }
    body
}
