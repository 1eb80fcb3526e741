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

/// Name of the view of trace summaries.
pub const TRACES_VIEW: &str = "traces";

/// Plans `traces` over the shards' trace parts: each trace's parts merged
/// into one summary (a trace lives on one shard, so its parts do too).
/// A filter on `trace_id` reaches the parts; other filters apply to the
/// merged rows.
pub(crate) fn traces_view(trace_parts: &Arc<FederatedTable>) -> Result<(&'static str, Arc<dyn TableProvider>)> {
    use datafusion::functions_aggregate::expr_fn::{array_agg, bool_or, first_value, max, min, sum};
    use datafusion::functions_nested::expr_fn::{array_distinct, array_sort, flatten};
    use datafusion::logical_expr::{SortExpr, cast};
    use skein_model::trace_parts::col as part;

    let source = provider_as_source(Arc::clone(trace_parts) as Arc<dyn TableProvider>);
    // The root: a part's root span first, then the earliest, then by span ID.
    let root_order = || -> Vec<SortExpr> {
        vec![
            col(part::HAS_ROOT).sort(false, false),
            col(part::ROOT_START_TIME).sort(true, false),
            col(part::ROOT_SPAN_ID).sort(true, false),
        ]
    };
    const ORPHANS: &str = "orphans";
    const SERVICE_LISTS: &str = "service_lists";
    let aggregates = vec![
        min(col(part::START_TIME)).alias(part::START_TIME),
        max(col(part::END_TIME)).alias(part::END_TIME),
        first_value(col(part::ROOT_SERVICE_NAME), root_order()).alias(part::ROOT_SERVICE_NAME),
        first_value(col(part::ROOT_NAME), root_order()).alias(part::ROOT_NAME),
        array_agg(col(part::SERVICES)).alias(SERVICE_LISTS),
        sum(col(part::SPAN_COUNT)).alias(part::SPAN_COUNT),
        sum(col(part::ERROR_COUNT)).alias(part::ERROR_COUNT),
        sum(col(part::ORPHAN_COUNT)).alias(ORPHANS),
        bool_or(col(part::HAS_ROOT)).alias(part::HAS_ROOT),
    ];
    let nanos = |name: &str| cast(col(name), datafusion::arrow::datatypes::DataType::Int64);
    let plan = LogicalPlanBuilder::scan(TRACE_PARTS, source, None)?
        .aggregate(vec![col(part::TRACE_ID)], aggregates)?
        .project(vec![
            col(part::TRACE_ID),
            col(part::START_TIME),
            col(part::END_TIME),
            (nanos(part::END_TIME) - nanos(part::START_TIME)).alias(DURATION_NS),
            col(part::ROOT_SERVICE_NAME),
            col(part::ROOT_NAME),
            array_sort(array_distinct(flatten(col(SERVICE_LISTS))), lit("ASC"), lit("NULLS LAST"))
                .alias(part::SERVICES),
            col(part::SPAN_COUNT),
            col(part::ERROR_COUNT),
            col(part::HAS_ROOT),
            col(part::HAS_ROOT).and(col(ORPHANS).eq(lit(0i64))).alias(COMPLETE),
        ])?
        .build()?;
    let definition = format!(
        "SELECT trace_id, start_time, end_time, \
         CAST(end_time AS BIGINT) - CAST(start_time AS BIGINT) AS {DURATION_NS}, root_service_name, root_name, \
         array_sort(array_distinct(flatten(service_lists)), 'ASC', 'NULLS LAST') AS services, span_count, \
         error_count, has_root, has_root AND orphans = 0 AS {COMPLETE} \
         FROM (SELECT trace_id, min(start_time) AS start_time, max(end_time) AS end_time, \
         first_value(root_service_name ORDER BY has_root DESC, root_start_time, root_span_id) AS root_service_name, \
         first_value(root_name ORDER BY has_root DESC, root_start_time, root_span_id) AS root_name, \
         array_agg(services) AS service_lists, sum(span_count) AS span_count, sum(error_count) AS error_count, \
         sum(orphan_count) AS orphans, bool_or(has_root) AS has_root \
         FROM {TRACE_PARTS} GROUP BY trace_id)"
    );
    Ok((TRACES_VIEW, Arc::new(ViewTable::new(plan, Some(definition))) as Arc<dyn TableProvider>))
}

/// The per-file parts the `traces` view merges (not registered in SQL).
const TRACE_PARTS: &str = "trace_parts";
/// `traces`: end minus start of the trace, in nanoseconds.
pub const DURATION_NS: &str = "duration_ns";
/// `traces`: a root span and every span's parent found.
pub const COMPLETE: &str = "complete";
