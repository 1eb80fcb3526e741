//! The query engine: a fresh, limited DataFusion session per request over
//! the federated `spans`, `metrics`, `logs`, `span_metrics` and `span_links`
//! tables (and the views over them: per metric type, `service_graph`,
//! `traces`), and the collection of results under the time, memory and row
//! limits. The HTTP handlers and tests go through it.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::federation::FederatedTable;
use crate::{QueryConfig, QueryError, duration_quantile, safety, views};

/// Name of the federated span table in every session.
pub const SPANS_TABLE: &str = "spans";
/// Name of the federated metric point table in every session.
pub const METRICS_TABLE: &str = "metrics";
/// Name of the federated log record table in every session.
pub const LOGS_TABLE: &str = "logs";
/// Name of the federated span-derived RED table in every session.
pub const SPAN_METRICS_TABLE: &str = "span_metrics";
/// Name of the federated span links table (one row per link, by target).
pub const SPAN_LINKS_TABLE: &str = "span_links";

/// What the engine reads: one table per shard and signal.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// Every shard's span table (rows in `skein_model::span_schema()`).
    pub spans: Vec<Arc<dyn TableProvider>>,
    /// Every shard's metric table (rows in `skein_model::metric_schema()`).
    pub metrics: Vec<Arc<dyn TableProvider>>,
    /// Every shard's span metrics (rows in `skein_model::span_metrics_schema()`).
    pub span_metrics: Vec<Arc<dyn TableProvider>>,
    /// Every shard's log table (rows in `skein_model::log_schema()`).
    pub logs: Vec<Arc<dyn TableProvider>>,
    /// Every shard's trace parts (rows in `skein_model::trace_parts_schema()`),
    /// merged into the `traces` view.
    pub trace_parts: Vec<Arc<dyn TableProvider>>,
    /// Every shard's span links by target (rows in `skein_model::span_links_schema()`).
    pub span_links: Vec<Arc<dyn TableProvider>>,
    /// Where the newest span start comes from when the trace parts'
    /// statistics cannot say (shards on other processes); `None`: from them.
    pub span_start_bounds: Option<Arc<dyn SpanStartBounds>>,
}

/// Bounds every span start of the shards, for tables whose statistics
/// cannot (a call per bound, as DataFusion's statistics are synchronous).
#[async_trait::async_trait]
pub trait SpanStartBounds: std::fmt::Debug + Send + Sync {
    /// No span starts later (`i64::MIN`: there is no span); `None` when
    /// that is not known now.
    async fn newest_span_start(&self) -> Option<i64>;
}

/// How many memory consumers a memory error names.
const REPORTED_CONSUMERS: usize = 5;

/// The rows of a finished query.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub row_count: usize,
}

/// Runs read-only queries over all shards with per-query limits.
#[derive(Debug)]
pub struct QueryEngine {
    spans: Arc<FederatedTable>,
    metrics: Arc<FederatedTable>,
    span_metrics: Arc<FederatedTable>,
    /// Every shard's trace parts: the `traces` view's source, read directly
    /// by search to rank traces without reading spans.
    trace_parts: Arc<FederatedTable>,
    /// See [`Tables::span_start_bounds`].
    span_start_bounds: Option<Arc<dyn SpanStartBounds>>,
    logs: Arc<FederatedTable>,
    span_links: Arc<FederatedTable>,
    /// The per-type views over `metrics`, `service_graph` over
    /// `span_metrics` and `traces` over the trace parts, planned once.
    views: Vec<(&'static str, Arc<dyn TableProvider>)>,
    /// Shared object stores and file caches; spilling to disk is disabled so
    /// that the memory limit ends a runaway query instead of filling a disk.
    runtime: Arc<RuntimeEnv>,
    timeout: Duration,
    memory_limit: usize,
    max_result_rows: usize,
    max_trace_spans: usize,
    metrics_max_series: usize,
    metrics_max_points: usize,
    stop: CancellationToken,
}

impl QueryEngine {
    /// An engine over the shards' `tables` with the limits of `config`.
    pub fn new(config: &QueryConfig, tables: Tables) -> Result<Self, QueryError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()
            .map_err(|e| QueryError::Config(format!("cannot create the query runtime: {e}")))?;
        let metrics = Arc::new(FederatedTable::metrics(tables.metrics)?);
        let span_metrics = Arc::new(FederatedTable::span_metrics(tables.span_metrics)?);
        let mut views = views::metric_views(&metrics)
            .map_err(|e| QueryError::Config(format!("cannot plan the metric views: {e}")))?;
        views.push(
            views::service_graph_view(&span_metrics)
                .map_err(|e| QueryError::Config(format!("cannot plan the service graph view: {e}")))?,
        );
        let trace_parts = Arc::new(FederatedTable::trace_parts(tables.trace_parts)?);
        views.push(
            views::traces_view(&trace_parts)
                .map_err(|e| QueryError::Config(format!("cannot plan the traces view: {e}")))?,
        );
        Ok(Self {
            spans: Arc::new(FederatedTable::spans(tables.spans)?),
            metrics,
            span_metrics,
            trace_parts,
            span_start_bounds: tables.span_start_bounds,
            logs: Arc::new(FederatedTable::logs(tables.logs)?),
            span_links: Arc::new(FederatedTable::span_links(tables.span_links)?),
            views,
            runtime,
            timeout: config.timeout,
            memory_limit: config.memory_limit_bytes,
            max_result_rows: config.max_result_rows,
            max_trace_spans: config.max_trace_spans,
            metrics_max_series: config.metrics_max_series,
            metrics_max_points: config.metrics_max_points,
            stop: CancellationToken::new(),
        })
    }

    pub fn shard_count(&self) -> usize {
        self.spans.shard_count()
    }

    /// The span table of one shard (`shard < shard_count()`).
    pub(crate) fn span_shard(&self, shard: usize) -> Option<Arc<dyn TableProvider>> {
        self.spans.shard(shard)
    }

    /// The trace parts of every shard (not registered in SQL sessions).
    pub(crate) fn trace_parts(&self) -> Arc<dyn TableProvider> {
        Arc::clone(&self.trace_parts) as Arc<dyn TableProvider>
    }

    /// An upper bound of every span start (`i64::MIN` when there is no
    /// span): from the shards' trace-part statistics, or from
    /// [`Tables::span_start_bounds`]; `None` when unknown.
    pub(crate) async fn newest_span_start_bound(&self) -> Option<i64> {
        match &self.span_start_bounds {
            Some(bounds) => bounds.newest_span_start().await,
            None => skein_model::trace_parts::newest_span_start_bound(&self.trace_parts.statistics()?),
        }
    }

    /// The log table of one shard (`shard < shard_count()`).
    pub(crate) fn log_shard(&self, shard: usize) -> Option<Arc<dyn TableProvider>> {
        self.logs.shard(shard)
    }

    pub fn max_result_rows(&self) -> usize {
        self.max_result_rows
    }

    /// Most spans of one trace an outline window or summary reads.
    pub fn max_trace_spans(&self) -> usize {
        self.max_trace_spans
    }

    pub(crate) fn metrics_max_series(&self) -> usize {
        self.metrics_max_series
    }

    pub(crate) fn metrics_max_points(&self) -> usize {
        self.metrics_max_points
    }

    /// A new session with its own memory pool and every table registered.
    /// Creating one is cheap (no data is touched).
    pub fn session(&self) -> Result<SessionContext, QueryError> {
        let pool: Arc<dyn MemoryPool> = Arc::new(TrackConsumersPool::new(
            GreedyMemoryPool::new(self.memory_limit),
            NonZeroUsize::new(REPORTED_CONSUMERS).unwrap_or(NonZeroUsize::MIN),
        ));
        let runtime = RuntimeEnvBuilder::from_runtime_env(&self.runtime)
            .with_memory_pool(pool)
            .build_arc()
            .map_err(|e| self.datafusion_error(e))?;
        let mut config = SessionConfig::new().with_information_schema(true);
        // Storage serves plain Utf8 columns; view types would not match the span schema.
        config.options_mut().execution.parquet.schema_force_view_types = false;
        let state =
            SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features().build();
        let ctx = SessionContext::new_with_state(state);
        let tables = [
            (SPANS_TABLE, Arc::clone(&self.spans) as Arc<dyn TableProvider>),
            (METRICS_TABLE, Arc::clone(&self.metrics) as Arc<dyn TableProvider>),
            (SPAN_METRICS_TABLE, Arc::clone(&self.span_metrics) as Arc<dyn TableProvider>),
            (LOGS_TABLE, Arc::clone(&self.logs) as Arc<dyn TableProvider>),
            (SPAN_LINKS_TABLE, Arc::clone(&self.span_links) as Arc<dyn TableProvider>),
        ];
        ctx.register_udaf(duration_quantile::udaf());
        for (name, table) in tables.into_iter().chain(self.views.iter().map(|(name, view)| (*name, Arc::clone(view)))) {
            ctx.register_table(name, table).map_err(|e| self.datafusion_error(e))?;
        }
        Ok(ctx)
    }

    /// Runs one read-only SQL statement and collects its rows (at most
    /// `max_result_rows`).
    pub async fn sql(&self, sql: &str) -> Result<QueryResult, QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let frame = safety::plan_read_only(&ctx, sql, self.memory_limit).await?;
            self.collect(frame, self.max_result_rows).await
        })
        .await
    }

    /// Runs `work` under the query time limit; stops it when the engine shuts down.
    pub async fn limited<T>(&self, work: impl Future<Output = Result<T, QueryError>>) -> Result<T, QueryError> {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => Err(QueryError::ShuttingDown),
            outcome = tokio::time::timeout(self.timeout, work) => {
                outcome.unwrap_or(Err(QueryError::Timeout { limit: self.timeout }))
            }
        }
    }

    /// Executes `frame`, failing once it produces more than `max_rows` rows
    /// (the stream is dropped then, which stops the query).
    pub async fn collect(&self, frame: DataFrame, max_rows: usize) -> Result<QueryResult, QueryError> {
        let mut stream = frame.execute_stream().await.map_err(|e| self.datafusion_error(e))?;
        let schema = stream.schema();
        let mut batches = Vec::new();
        let mut row_count = 0usize;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| self.datafusion_error(e))?;
            row_count += batch.num_rows();
            if row_count > max_rows {
                return Err(QueryError::TooManyRows { limit: max_rows });
            }
            if batch.num_rows() > 0 {
                batches.push(batch);
            }
        }
        Ok(QueryResult { schema, batches, row_count })
    }

    /// Fails queries in progress and refuses new ones; used at shutdown.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    pub(crate) fn datafusion_error(&self, err: DataFusionError) -> QueryError {
        QueryError::from_datafusion(err, self.memory_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{mem_tables, test_config};
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use skein_model::ErrorClass;

    fn engine(config: &QueryConfig) -> QueryEngine {
        QueryEngine::new(config, mem_tables()).expect("engine")
    }

    #[tokio::test]
    async fn runs_sql_over_all_shards() {
        let result = engine(&test_config()).sql("SELECT count(*) AS n FROM spans").await.expect("runs");
        assert_eq!(result.row_count, 1);
        assert_eq!(result.batches[0].column(0).as_primitive::<Int64Type>().value(0), 5);
    }

    #[tokio::test]
    async fn map_access_and_trace_id_filters_work() {
        let engine = engine(&test_config());
        let result =
            engine.sql("SELECT name FROM spans WHERE span_attributes['http.route'] = '/checkout'").await.expect("runs");
        assert_eq!(result.row_count, 1);
        assert_eq!(result.batches[0].column(0).as_string::<i32>().value(0), "POST /checkout");
        let result = engine
            .sql(&format!("SELECT count(*) FROM spans WHERE trace_id = '{}'", crate::test_support::T1))
            .await
            .expect("runs");
        assert_eq!(result.batches[0].column(0).as_primitive::<Int64Type>().value(0), 2);
    }

    #[tokio::test]
    async fn heavy_query_times_out() {
        let config = QueryConfig { timeout: Duration::from_millis(1), ..test_config() };
        let err = engine(&config)
            .sql(
                "SELECT count(*) FROM generate_series(1, 100000000) a(x) \
                 CROSS JOIN generate_series(1, 100000000) b(y) WHERE x + y = 7",
            )
            .await
            .expect_err("times out");
        assert_eq!(err.class(), ErrorClass::Timeout, "{err}");
    }

    #[tokio::test]
    async fn memory_limit_stops_big_sorts() {
        let config = QueryConfig { memory_limit_bytes: 1024 * 1024, ..test_config() };
        let err = engine(&config)
            .sql("SELECT x FROM generate_series(1, 5000000) t(x) ORDER BY x DESC")
            .await
            .expect_err("runs out of memory");
        assert_eq!(err.class(), ErrorClass::QueryTooExpensive, "{err}");
        assert!(err.to_string().contains("memory_limit_bytes"), "{err}");
    }

    #[tokio::test]
    async fn too_many_rows_is_an_error_not_a_truncation() {
        let config = QueryConfig { max_result_rows: 3, ..test_config() };
        let err = engine(&config).sql("SELECT name FROM spans").await.expect_err("too many rows");
        assert!(matches!(err, QueryError::TooManyRows { limit: 3 }), "{err}");
        assert_eq!(err.class(), ErrorClass::QueryTooExpensive);
        let ok = engine(&config).sql("SELECT name FROM spans LIMIT 3").await.expect("fits");
        assert_eq!(ok.row_count, 3);
    }

    #[tokio::test]
    async fn shutdown_stops_queries() {
        let engine = engine(&test_config());
        engine.shutdown();
        let err = engine.sql("SELECT 1").await.expect_err("stopped");
        assert!(matches!(err, QueryError::ShuttingDown));
    }

    #[tokio::test]
    async fn sessions_see_every_table_with_its_schema() {
        let ctx = engine(&test_config()).session().expect("session");
        let frame = ctx.table(SPANS_TABLE).await.expect("spans is registered");
        assert_eq!(frame.schema().fields().len(), skein_model::span_schema().fields().len());
        let frame = ctx.table(METRICS_TABLE).await.expect("metrics is registered");
        assert_eq!(frame.schema().fields().len(), skein_model::metric_schema().fields().len());
        for view in crate::METRIC_VIEWS {
            ctx.table(view).await.expect("every metric view is registered");
        }
        let setting = ctx.state().config().options().execution.parquet.schema_force_view_types;
        assert!(!setting);
    }
}
