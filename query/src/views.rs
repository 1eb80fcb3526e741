//! One SQL view per metric point type over the `metrics` table
//! (`metrics_gauge`, `metrics_sum`, `metrics_histogram`,
//! `metrics_exp_histogram`, `metrics_summary`): the rows of that type and
//! only the columns that apply to it.
//!
//! `service_graph` over `span_metrics`: its rows of calls across services
//! (the parent span in another service), the caller as `client_service`
//! and the called service and operation as `server_service` and
//! `server_operation`.
//!
//! The views are planned once, over the federated table itself, and
//! registered in every session. DataFusion inlines a view into the query
//! that reads it, so filters on a view still reach the shards.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
use skein_model::metrics::col::*;
use skein_model::metrics::metric_type;

use crate::engine::{METRICS_TABLE, SPAN_METRICS_TABLE};
use crate::federation::FederatedTable;

/// Columns every view keeps: the series, its origin, the point's times.
/// `exemplars` comes last, after the type's own columns.
const COMMON: [&str; 22] = [
    METRIC_NAME,
    UNIT,
    DESCRIPTION,
    METRIC_METADATA,
    METRIC_METADATA_TYPES,
    SERIES_ID,
    SERVICE_NAME,
    RESOURCE_ATTRIBUTES,
    RESOURCE_ATTRIBUTE_TYPES,
    RESOURCE_DROPPED_ATTRIBUTES_COUNT,
    RESOURCE_SCHEMA_URL,
    SCOPE_NAME,
    SCOPE_VERSION,
    SCOPE_ATTRIBUTES,
    SCOPE_ATTRIBUTE_TYPES,
    SCOPE_DROPPED_ATTRIBUTES_COUNT,
    SCOPE_SCHEMA_URL,
    ATTRIBUTES,
    ATTRIBUTE_TYPES,
    START_TIME,
    TIME,
    FLAGS,
];

/// (view name, point type, the type's own columns).
const VIEWS: [(&str, &str, &[&str]); 5] = [
    ("metrics_gauge", metric_type::GAUGE, &[VALUE, VALUE_INT]),
    ("metrics_sum", metric_type::SUM, &[AGGREGATION_TEMPORALITY, IS_MONOTONIC, VALUE, VALUE_INT]),
    (
        "metrics_histogram",
        metric_type::HISTOGRAM,
        &[AGGREGATION_TEMPORALITY, COUNT, SUM, MIN, MAX, EXPLICIT_BOUNDS, BUCKET_COUNTS],
    ),
    (
        "metrics_exp_histogram",
        metric_type::EXPONENTIAL_HISTOGRAM,
        &[
            AGGREGATION_TEMPORALITY,
            COUNT,
            SUM,
            MIN,
            MAX,
            SCALE,
            ZERO_COUNT,
            ZERO_THRESHOLD,
            POSITIVE_OFFSET,
            POSITIVE_BUCKET_COUNTS,
            NEGATIVE_OFFSET,
            NEGATIVE_BUCKET_COUNTS,
        ],
    ),
    ("metrics_summary", metric_type::SUMMARY, &[COUNT, SUM, QUANTILE_VALUES]),
];

/// The names of the per-type views.
pub const METRIC_VIEWS: [&str; 5] = [VIEWS[0].0, VIEWS[1].0, VIEWS[2].0, VIEWS[3].0, VIEWS[4].0];

/// Plans every view over `metrics`.
pub(crate) fn metric_views(metrics: &Arc<FederatedTable>) -> Result<Vec<(&'static str, Arc<dyn TableProvider>)>> {
    let source = provider_as_source(Arc::clone(metrics) as Arc<dyn TableProvider>);
    VIEWS
        .iter()
        .map(|(name, point_type, own)| {
            let columns: Vec<&str> = COMMON.iter().chain(own.iter()).chain([&EXEMPLARS]).copied().collect();
            let plan = LogicalPlanBuilder::scan(METRICS_TABLE, Arc::clone(&source), None)?
                .filter(col(METRIC_TYPE).eq(lit(*point_type)))?
                .project(columns.iter().map(|c| col(*c)))?
                .build()?;
            let definition =
                format!("SELECT {} FROM {METRICS_TABLE} WHERE {METRIC_TYPE} = '{point_type}'", columns.join(", "));
            Ok((*name, Arc::new(ViewTable::new(plan, Some(definition))) as Arc<dyn TableProvider>))
        })
        .collect()
}

/// Name of the view of calls across services.
pub const SERVICE_GRAPH_VIEW: &str = "service_graph";

/// Plans `service_graph` over `span_metrics`.
pub(crate) fn service_graph_view(span_metrics: &Arc<FederatedTable>) -> Result<(&'static str, Arc<dyn TableProvider>)> {
    use skein_model::span_metrics::col as red;
    let source = provider_as_source(Arc::clone(span_metrics) as Arc<dyn TableProvider>);
    let renamed = [
        (red::TIME, red::TIME),
        (red::PARENT_SERVICE, "client_service"),
        (red::SERVICE_NAME, "server_service"),
        (red::NAME, "server_operation"),
        (red::KIND, red::KIND),
        (red::STATUS_CODE, red::STATUS_CODE),
        (red::CALLS, red::CALLS),
        (red::ERRORS, red::ERRORS),
        (red::DURATION_SUM_NS, red::DURATION_SUM_NS),
        (red::DURATION_MIN_NS, red::DURATION_MIN_NS),
        (red::DURATION_MAX_NS, red::DURATION_MAX_NS),
        (red::DURATION_HISTOGRAM, red::DURATION_HISTOGRAM),
    ];
    let plan = LogicalPlanBuilder::scan(SPAN_METRICS_TABLE, source, None)?
        .filter(col(red::PARENT_SERVICE).is_not_null().and(col(red::PARENT_SERVICE).not_eq(col(red::SERVICE_NAME))))?
        .project(renamed.iter().map(|(from, to)| col(*from).alias(*to)))?
        .build()?;
    let columns: Vec<String> = renamed
        .iter()
        .map(|(from, to)| if from == to { from.to_string() } else { format!("{from} AS {to}") })
        .collect();
    let definition = format!(
        "SELECT {} FROM {SPAN_METRICS_TABLE} WHERE {p} IS NOT NULL AND {p} <> {s}",
        columns.join(", "),
        p = red::PARENT_SERVICE,
        s = red::SERVICE_NAME
    );
    Ok((SERVICE_GRAPH_VIEW, Arc::new(ViewTable::new(plan, Some(definition))) as Arc<dyn TableProvider>))
}
