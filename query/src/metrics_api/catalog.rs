//! What metrics exist (`GET /api/v1/metrics`), which series a metric has
//! and their labels (`GET /api/v1/metrics/{name}/series`), and the filters
//! every metric endpoint pushes down to the shards: metric name, time range
//! and label matchers, so storage reads only matching files and row groups.

use datafusion::arrow::array::{Int64Array, MapArray, StringArray};
use datafusion::functions::core::expr_fn::{coalesce, get_field};
use datafusion::functions_aggregate::expr_fn::{count_distinct, first_value, max, min};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::SessionContext;
use serde::Serialize;
use skein_model::metrics::col::{
    ATTRIBUTES, DESCRIPTION, METRIC_NAME, METRIC_TYPE, RESOURCE_ATTRIBUTES, SERIES_ID, SERVICE_NAME, TIME, UNIT,
};

use super::columns::{column, map_entries};
use super::points::Labels;
use super::request::{LabelMatcher, ListQuery};
use crate::engine::METRICS_TABLE;
use crate::params::timestamp;
use crate::{QueryEngine, QueryError};

/// The label that always exists: the resource's service (`unknown_service` when unset).
pub const SERVICE_LABEL: &str = "service.name";

/// One metric of `GET /api/v1/metrics`: a name with one type, unit and
/// description (a metric whose type or unit changed is listed once per variant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub metric_type: String,
    pub unit: String,
    pub description: String,
    /// Distinct series with points in the time range.
    pub series: u64,
}

/// One series of `GET /api/v1/metrics/{name}/series`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesInfo {
    pub series_id: String,
    pub labels: Labels,
}

/// A series as read for a range query: its labels and the point types seen.
#[derive(Debug, Clone)]
pub(crate) struct SeriesRow {
    pub info: SeriesInfo,
    /// The smallest and largest `metric_type` of its points (equal unless
    /// the metric changed type).
    pub types: (String, String),
}

/// Where the points of a query start.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    Inclusive(i64),
    Exclusive(i64),
}

/// The conjunction of the filters on the metric name, the time range and
/// the label matchers.
pub(crate) fn point_filter(
    metric: Option<&str>,
    matchers: &[LabelMatcher],
    start: Option<Start>,
    end_ns: Option<i64>,
) -> Option<Expr> {
    let mut filters = Vec::new();
    if let Some(metric) = metric {
        filters.push(col(METRIC_NAME).eq(lit(metric)));
    }
    match start {
        Some(Start::Inclusive(ns)) => filters.push(col(TIME).gt_eq(timestamp(ns))),
        Some(Start::Exclusive(ns)) => filters.push(col(TIME).gt(timestamp(ns))),
        None => {}
    }
    if let Some(end) = end_ns {
        filters.push(col(TIME).lt_eq(timestamp(end)));
    }
    for matcher in matchers {
        let label = label_expr(&matcher.name);
        let value = lit(matcher.value.as_str());
        filters.push(if matcher.equal { label.eq(value) } else { label.not_eq(value) });
    }
    conjunction(filters)
}

/// The value of label `name` as SQL: the point attribute, else the resource
/// attribute (the service for `service.name`), else "".
fn label_expr(name: &str) -> Expr {
    let resource = if name == SERVICE_LABEL { col(SERVICE_NAME) } else { get_field(col(RESOURCE_ATTRIBUTES), name) };
    coalesce(vec![get_field(col(ATTRIBUTES), name), resource, lit("")])
}

impl QueryEngine {
    /// The metrics with points in the time range, sorted by name, at most
    /// `limit`; true when more exist.
    pub async fn metric_catalog(&self, query: &ListQuery) -> Result<(Vec<MetricInfo>, bool), QueryError> {
        const SERIES: &str = "series";
        self.limited(async {
            let ctx = self.session()?;
            let bounds = query.bounds;
            let filter = point_filter(None, &[], bounds.start_ns.map(Start::Inclusive), bounds.end_ns);
            let keys = [METRIC_NAME, METRIC_TYPE, UNIT, DESCRIPTION];
            let mut frame = ctx.table(METRICS_TABLE).await.map_err(|e| self.datafusion_error(e))?;
            if let Some(filter) = filter {
                frame = frame.filter(filter).map_err(|e| self.datafusion_error(e))?;
            }
            let frame = frame
                .aggregate(keys.iter().map(|k| col(*k)).collect(), vec![count_distinct(col(SERIES_ID)).alias(SERIES)])
                .and_then(|f| f.sort(keys.iter().map(|k| col(*k).sort(true, false)).collect()))
                .and_then(|f| f.limit(0, Some(query.limit + 1)))
                .map_err(|e| self.datafusion_error(e))?;
            let result = self.collect(frame, query.limit + 1).await?;
            let mut metrics = Vec::with_capacity(result.row_count);
            for batch in &result.batches {
                let text = |name| column::<StringArray>(batch, name);
                let (name, kind, unit, description) =
                    (text(METRIC_NAME)?, text(METRIC_TYPE)?, text(UNIT)?, text(DESCRIPTION)?);
                let series = column::<Int64Array>(batch, SERIES)?;
                for row in 0..batch.num_rows() {
                    metrics.push(MetricInfo {
                        name: name.value(row).to_owned(),
                        metric_type: kind.value(row).to_owned(),
                        unit: unit.value(row).to_owned(),
                        description: description.value(row).to_owned(),
                        series: series.value(row).max(0) as u64,
                    });
                }
            }
            let truncated = metrics.len() > query.limit;
            metrics.truncate(query.limit);
            Ok((metrics, truncated))
        })
        .await
    }

    /// The series of `metric` with points in the time range that match the
    /// matchers, sorted by ID, at most `limit`; true when more exist.
    pub async fn metric_series(&self, metric: &str, query: &ListQuery) -> Result<(Vec<SeriesInfo>, bool), QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let bounds = query.bounds;
            let filter =
                point_filter(Some(metric), &query.matchers, bounds.start_ns.map(Start::Inclusive), bounds.end_ns);
            let rows = self.series_rows(&ctx, filter, query.limit + 1, true).await?;
            let truncated = rows.len() > query.limit;
            Ok((rows.into_iter().take(query.limit).map(|row| row.info).collect(), truncated))
        })
        .await
    }

    /// Up to `limit` series with points matching `filter` (sorted by ID if
    /// `sorted`), with their labels.
    pub(crate) async fn series_rows(
        &self,
        ctx: &SessionContext,
        filter: Option<Expr>,
        limit: usize,
        sorted: bool,
    ) -> Result<Vec<SeriesRow>, QueryError> {
        const POINT: &str = "point_attributes";
        const RESOURCE: &str = "resource_attributes";
        const SERVICE: &str = "service";
        const TYPE_MIN: &str = "type_min";
        const TYPE_MAX: &str = "type_max";
        let df_error = |e| self.datafusion_error(e);
        let mut frame = ctx.table(METRICS_TABLE).await.map_err(df_error)?;
        if let Some(filter) = filter {
            frame = frame.filter(filter).map_err(df_error)?;
        }
        // A series' attributes are part of its identity: any point has them.
        let aggregates = vec![
            first_value(col(ATTRIBUTES), vec![]).alias(POINT),
            first_value(col(RESOURCE_ATTRIBUTES), vec![]).alias(RESOURCE),
            first_value(col(SERVICE_NAME), vec![]).alias(SERVICE),
            min(col(METRIC_TYPE)).alias(TYPE_MIN),
            max(col(METRIC_TYPE)).alias(TYPE_MAX),
        ];
        let mut frame = frame.aggregate(vec![col(SERIES_ID)], aggregates).map_err(df_error)?;
        if sorted {
            frame = frame.sort(vec![col(SERIES_ID).sort(true, false)]).map_err(df_error)?;
        }
        let frame = frame.limit(0, Some(limit)).map_err(df_error)?;
        let result = self.collect(frame, limit).await?;
        let mut rows = Vec::with_capacity(result.row_count);
        for batch in &result.batches {
            let ids = column::<StringArray>(batch, SERIES_ID)?;
            let point = column::<MapArray>(batch, POINT)?;
            let resource = column::<MapArray>(batch, RESOURCE)?;
            let service = column::<StringArray>(batch, SERVICE)?;
            let (type_min, type_max) =
                (column::<StringArray>(batch, TYPE_MIN)?, column::<StringArray>(batch, TYPE_MAX)?);
            for row in 0..batch.num_rows() {
                let mut labels = Labels::new();
                labels.insert(SERVICE_LABEL.to_owned(), service.value(row).to_owned());
                for (key, value) in map_entries(resource, row)?.into_iter().chain(map_entries(point, row)?) {
                    labels.insert(key.to_owned(), value.to_owned());
                }
                rows.push(SeriesRow {
                    info: SeriesInfo { series_id: ids.value(row).to_owned(), labels },
                    types: (type_min.value(row).to_owned(), type_max.value(row).to_owned()),
                });
            }
        }
        Ok(rows)
    }
}
