//! The `spans`, `metrics`, `logs` and `span_metrics` tables, each as one DataFusion
//! table over every shard.
//!
//! Each shard serves one `TableProvider` per signal (local storage in
//! all-in-one, a remote client in a cluster). A scan of the federated table
//! scans every shard with the same projection, filters and limit,
//! concurrently, and unions the plans, so filtering and pruning happen where
//! the data is. The federation is the same for every signal; only the
//! schema the shards must serve differs.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use futures::future::try_join_all;
use skein_model::{log_schema, metric_schema, span_links_schema, span_metrics_schema, span_schema, trace_parts_schema};

use crate::QueryError;

/// The union of all shards' tables of one signal.
#[derive(Debug)]
pub struct FederatedTable {
    schema: SchemaRef,
    shards: Vec<Arc<dyn TableProvider>>,
}

impl FederatedTable {
    /// The `spans` table over every shard's span table.
    pub fn spans(shards: Vec<Arc<dyn TableProvider>>) -> Result<Self, QueryError> {
        Self::new("span", span_schema(), shards)
    }

    /// The `metrics` table over every shard's metric table.
    pub fn metrics(shards: Vec<Arc<dyn TableProvider>>) -> Result<Self, QueryError> {
        Self::new("metric", metric_schema(), shards)
    }

    /// The `logs` table over every shard's log table.
    pub fn logs(shards: Vec<Arc<dyn TableProvider>>) -> Result<Self, QueryError> {
        Self::new("log", log_schema(), shards)
    }

    /// The `span_metrics` table over every shard's span metrics.
    pub fn span_metrics(shards: Vec<Arc<dyn TableProvider>>) -> Result<Self, QueryError> {
        Self::new("span metrics", span_metrics_schema(), shards)
    }

    /// The `span_links` table over every shard's span links.
    pub fn span_links(shards: Vec<Arc<dyn TableProvider>>) -> Result<Self, QueryError> {
        Self::new("span links", span_links_schema(), shards)
    }

    /// The trace parts of every shard, merged by the `traces` view.
    pub fn trace_parts(shards: Vec<Arc<dyn TableProvider>>) -> Result<Self, QueryError> {
        Self::new("trace parts", trace_parts_schema(), shards)
    }

    /// Federates `shards`; each must serve `schema` (same column names and
    /// types), or the union could not be planned. `signal` names it in errors.
    pub fn new(signal: &str, schema: SchemaRef, shards: Vec<Arc<dyn TableProvider>>) -> Result<Self, QueryError> {
        for (index, shard) in shards.iter().enumerate() {
            let shard_schema = shard.schema();
            let same = shard_schema.fields().len() == schema.fields().len()
                && shard_schema
                    .fields()
                    .iter()
                    .zip(schema.fields())
                    .all(|(a, b)| a.name() == b.name() && a.data_type().equals_datatype(b.data_type()));
            if !same {
                return Err(QueryError::Config(format!(
                    "shard {index} does not serve the {signal} schema; its columns are {:?}",
                    shard_schema
                        .fields()
                        .iter()
                        .map(|f| format!("{}: {}", f.name(), f.data_type()))
                        .collect::<Vec<_>>()
                )));
            }
        }
        Ok(Self { schema, shards })
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The table of shard `shard`; tables are indexed by shard ID.
    pub(crate) fn shard(&self, shard: usize) -> Option<Arc<dyn TableProvider>> {
        self.shards.get(shard).cloned()
    }

    /// The pushdown each shard offers for each filter (`[shard][filter]`).
    fn shard_pushdowns(&self, filters: &[&Expr]) -> Result<Vec<Vec<TableProviderFilterPushDown>>> {
        self.shards.iter().map(|shard| shard.supports_filters_pushdown(filters)).collect()
    }
}

/// What the union offers for one filter, given what every shard offers:
/// exact only if every shard is exact, unsupported only if no shard can use it.
fn combine(per_shard: impl Iterator<Item = TableProviderFilterPushDown>) -> TableProviderFilterPushDown {
    use TableProviderFilterPushDown::*;
    let (mut all_exact, mut any_used, mut any) = (true, false, false);
    for pushdown in per_shard {
        any = true;
        all_exact &= pushdown == Exact;
        any_used |= pushdown != Unsupported;
    }
    match (any, all_exact, any_used) {
        (false, _, _) => Unsupported,
        (true, true, _) => Exact,
        (true, false, true) => Inexact,
        (true, false, false) => Unsupported,
    }
}

#[async_trait]
impl TableProvider for FederatedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        let per_shard = self.shard_pushdowns(filters)?;
        Ok((0..filters.len()).map(|f| combine(per_shard.iter().map(|shard| shard[f].clone()))).collect())
    }

    /// Each column's maximum over the shards, where every shard bounds it
    /// (search starts at the newest data with it); nothing else is merged.
    fn statistics(&self) -> Option<Statistics> {
        let mut merged = Statistics::new_unknown(&self.schema);
        let mut shards = self.shards.iter().map(|shard| shard.statistics());
        let first = shards.next()??;
        for (column, first) in merged.column_statistics.iter_mut().zip(first.column_statistics) {
            column.max_value = first.max_value.to_inexact();
        }
        for shard in shards {
            let shard = shard?;
            for (column, other) in merged.column_statistics.iter_mut().zip(shard.column_statistics) {
                column.max_value = column.max_value.max(&other.max_value).to_inexact();
            }
        }
        Some(merged)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let args = ScanArgs::default()
            .with_projection(projection.map(|p| p.as_slice()))
            .with_filters(Some(filters))
            .with_limit(limit);
        Ok(self.scan_with_args(state, args).await?.into_inner())
    }

    async fn scan_with_args<'a>(&self, state: &dyn Session, args: ScanArgs<'a>) -> Result<ScanResult> {
        if self.shards.is_empty() {
            let schema = match args.projection() {
                Some(indices) => Arc::new(self.schema.project(indices)?),
                None => self.schema(),
            };
            return Ok(ScanResult::new(Arc::new(EmptyExec::new(schema))));
        }
        let filters = args.filters().unwrap_or(&[]);
        let refs: Vec<&Expr> = filters.iter().collect();
        let per_shard = self.shard_pushdowns(&refs)?;
        // A shard only gets the filters it said it can use.
        let shard_filters: Vec<Vec<Expr>> = per_shard
            .iter()
            .map(|pushdowns| {
                filters
                    .iter()
                    .zip(pushdowns)
                    .filter(|(_, p)| **p != TableProviderFilterPushDown::Unsupported)
                    .map(|(f, _)| f.clone())
                    .collect()
            })
            .collect();
        let scans = self.shards.iter().zip(&shard_filters).map(|(shard, filters)| {
            let shard_args = ScanArgs::default()
                .with_projection(args.projection())
                .with_filters(Some(filters.as_slice()))
                .with_limit(args.limit())
                .with_statistics_requests(args.statistics_requests());
            async move { shard.scan_with_args(state, shard_args).await.map(ScanResult::into_inner) }
        });
        let plans = crate::remote::one_scan_per_node(try_join_all(scans).await?);
        Ok(ScanResult::new(UnionExec::try_new(plans)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{mem_shards, recording, sample_spans};
    use datafusion::catalog::MemTable;
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::SessionContext;

    #[test]
    fn pushdown_is_exact_only_when_every_shard_is_exact() {
        use TableProviderFilterPushDown::*;
        assert_eq!(combine([Exact, Exact].into_iter()), Exact);
        assert_eq!(combine([Exact, Inexact].into_iter()), Inexact);
        assert_eq!(combine([Exact, Unsupported].into_iter()), Inexact);
        assert_eq!(combine([Unsupported, Unsupported].into_iter()), Unsupported);
        assert_eq!(combine(std::iter::empty()), Unsupported);
    }

    #[test]
    fn statistics_bound_each_column_by_the_greatest_shard_bound() {
        use datafusion::common::stats::Precision;
        let (_, bounded) = crate::test_support::recording_parts_engine(true);
        let (_, unbounded) = crate::test_support::recording_parts_engine(false);
        let federate = |shards: [&Arc<crate::test_support::RecordingShard>; 2]| {
            let shards = shards.into_iter().map(|s| Arc::clone(s) as Arc<dyn TableProvider>).collect();
            FederatedTable::trace_parts(shards).expect("federates")
        };
        let column = trace_parts_schema().index_of(skein_model::trace_parts::col::LATEST_START_TIME).expect("column");
        let bound =
            |table: &dyn TableProvider| table.statistics().map(|s| s.column_statistics[column].max_value.clone());
        let shard_bounds: Vec<Precision<_>> =
            bounded.iter().map(|shard| bound(shard.as_ref()).expect("a shard bound")).collect();
        assert_ne!(shard_bounds[0], shard_bounds[1], "the shards' newest spans differ");
        let greatest = shard_bounds[0].max(&shard_bounds[1]);
        assert_eq!(bound(&federate([&bounded[0], &bounded[1]])), Some(greatest.clone()));
        assert!(matches!(greatest, Precision::Inexact(_)), "{greatest:?}");
        // A shard without statistics: no bound at all.
        assert_eq!(bound(&federate([&bounded[0], &unbounded[1]])), None);
        assert_eq!(bound(&federate([&unbounded[0], &unbounded[1]])), None);
    }

    #[tokio::test]
    async fn scans_every_shard_with_projection_filters_and_limit() {
        let (a, b) = sample_spans();
        let shard_a = recording(span_schema(), TableProviderFilterPushDown::Inexact, vec![a]);
        let shard_b = recording(span_schema(), TableProviderFilterPushDown::Unsupported, vec![b]);
        let shards: Vec<Arc<dyn TableProvider>> = vec![shard_a.clone(), shard_b.clone()];
        let ctx = SessionContext::new();
        ctx.register_table("spans", Arc::new(FederatedTable::spans(shards).expect("federates"))).expect("registers");
        let rows = ctx
            .table("spans")
            .await
            .expect("table")
            .filter(col("service_name").eq(lit("checkout")))
            .expect("filter")
            .select(vec![col("name")])
            .expect("select")
            .collect()
            .await
            .expect("runs");
        let names: usize = rows.iter().map(|b| b.num_rows()).sum();
        assert_eq!(names, 3, "the filter is still applied above inexact shards");

        let (projection, filters, _) = shard_a.seen.lock().expect("lock")[0].clone();
        let projection = projection.expect("projected");
        assert!(projection.len() < span_schema().fields().len());
        assert_eq!(filters.len(), 1);
        let filter = filters[0].to_string();
        assert!(filter.contains("service_name") && filter.contains("checkout"), "{filter}");
        let (projection_b, filters_b, _) = shard_b.seen.lock().expect("lock")[0].clone();
        assert_eq!(projection_b.expect("projected"), projection);
        assert!(filters_b.is_empty(), "a shard only gets filters it supports");

        // Without filters, a limit reaches every shard.
        ctx.sql("SELECT name FROM spans LIMIT 1").await.expect("plans").collect().await.expect("runs");
        assert_eq!(shard_a.seen.lock().expect("lock").last().expect("scanned").2, Some(1));
        assert_eq!(shard_b.seen.lock().expect("lock").last().expect("scanned").2, Some(1));
    }

    #[tokio::test]
    async fn unions_all_shards_and_handles_none() {
        let ctx = SessionContext::new();
        ctx.register_table("spans", Arc::new(FederatedTable::spans(mem_shards()).expect("federates")))
            .expect("registers");
        let batches = ctx.sql("SELECT count(*) FROM spans").await.expect("plans").collect().await.expect("runs");
        let (a, b) = sample_spans();
        let expected = (a.num_rows() + b.num_rows()) as i64;
        let count = batches[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().expect("i64");
        assert_eq!(count.value(0), expected);

        let empty = SessionContext::new();
        empty.register_table("spans", Arc::new(FederatedTable::spans(vec![]).expect("federates"))).expect("registers");
        let batches = empty.sql("SELECT name FROM spans").await.expect("plans").collect().await.expect("runs");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }

    #[test]
    fn refuses_a_shard_with_another_schema() {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let other: Arc<dyn TableProvider> = Arc::new(MemTable::try_new(schema, vec![vec![]]).expect("mem table"));
        let err = FederatedTable::spans(vec![other]).expect_err("refused");
        assert!(err.to_string().contains("shard 0"), "{err}");
        let spans: Arc<dyn TableProvider> =
            Arc::new(MemTable::try_new(span_schema(), vec![vec![]]).expect("mem table"));
        let err = FederatedTable::metrics(vec![spans]).expect_err("a span table is not a metric table");
        assert!(err.to_string().contains("metric schema"), "{err}");
    }
}
