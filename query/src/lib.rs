//! Skein's query role: federates DataFusion over every storage shard and
//! serves the HTTP API (default port 7300).
//!
//! Each shard hands over one DataFusion `TableProvider` per signal, spans,
//! metric points and log records ([`Tables`]; local storage in all-in-one,
//! a remote client in a cluster). [`FederatedTable`] joins a signal's shard
//! tables into one table, `spans`, `metrics` or `logs`: a scan is pushed down to every
//! shard (projection, filters, limit) and the shard plans are unioned; five
//! views (`metrics_gauge`, `metrics_sum`, `metrics_histogram`,
//! `metrics_exp_histogram`, `metrics_summary`) keep one point type's rows
//! and columns. Each tenant has its own engine over its own tables
//! ([`TenantTables`]; a request's tenant comes from its token or
//! `X-Scope-OrgID`), and each request gets a fresh session from [`QueryEngine`], with
//! its own memory pool, a time limit and a cap on returned rows, so one
//! query cannot starve the others. On top of the engine: read-only SQL
//! (`/api/v1/sql`, checked before planning), trace lookup decoded back to
//! OTLP with `skein-model`, two-phase trace search, service/operation
//! listings, and the metric API (`/api/v1/metrics…`): metric and series
//! listings, and range queries that push the metric name, time range and
//! label matchers down to the shards, then do the step math (last sample,
//! sum/avg/min/max, rate with resets and both temporalities, quantiles from
//! explicit and exponential buckets or summaries) in Rust, and the log API
//! (`/api/v1/logs…`: search, volume, the logs of a trace). The Grafana
//! Tempo API and the Jaeger query API (under `query.jaeger.base_path`)
//! translate onto the same trace lookup, search and listings; the
//! Prometheus API evaluates PromQL over the metric points. [`QueryServer`]
//! binds the listener and serves the API plus health and metrics. On a
//! query node of a cluster each shard is a [`RemoteShardTable`], which reads
//! the shard from its storage node over Arrow Flight, and
//! `/api/v1/cluster` reports the storage nodes ([`Topology`]).

mod cluster_api;
mod concurrency_limits;
mod config;
mod duration_quantile;
mod engine;
mod error;
mod federation;
mod format;
mod jaeger;
mod logs_api;
mod metric_exemplars;
mod metrics;
mod metrics_api;
mod params;
mod prom;
mod remote;
mod safety;
mod search;
mod server;
mod service_stats;
mod services;
mod span_links;
mod sql_api;
mod tempo;
mod tenancy;
mod trace_outline;
mod trace_summary;
mod trace_tree;
mod traces;
mod ui;
mod views;

#[cfg(test)]
mod span_metrics_tests;
#[cfg(test)]
mod test_support;

pub use cluster_api::Topology;
pub use config::QueryConfig;
pub use engine::{
    LOGS_TABLE, METRICS_TABLE, QueryEngine, QueryResult, SPAN_LINKS_TABLE, SPAN_METRICS_TABLE, SPANS_TABLE,
    SpanStartBounds, Tables,
};
pub use error::QueryError;
pub use federation::FederatedTable;
pub use format::OutputFormat;
pub use jaeger::{BasePath, JaegerConfig};
pub use logs_api::{LogCursor, LogFilter, LogPage, LogVolume, MAX_TRACE_LOGS};
pub use metric_exemplars::Exemplar;
pub use metrics_api::{
    Aggregation, LabelMatcher, Labels, ListQuery, MetricInfo, MetricType, RangeQuery, RangeResult, RangeSeries,
    SeriesInfo, TimeBounds,
};
pub use remote::{RemoteShardTable, RemoteSpanStartBounds, RemoteTenantTables, ShardUnavailable};
pub use search::{Rank, SearchPage, SearchQuery, TraceSummary};
pub use server::{QueryServer, SecureListener};
pub use service_stats::{OperationStats, Red, ServiceEdge, ServiceNode, StatsQuery};
pub use services::Operation;
pub use span_links::LinkingSpan;
pub use tenancy::TenantTables;
pub use trace_outline::{OutlineSpan, OutlineWindow, TraceOutline};
pub use trace_summary::{ErrorOrigin, LevelCount, ServiceCount, SummarySpan, TraceOverview};
pub use views::{METRIC_VIEWS, SERVICE_GRAPH_VIEW};
