//! A shard that lives on another process: the query node's `TableProvider`
//! for one signal of one shard, read from the storage node that owns it
//! over Arrow Flight `DoGet`. The scan's projection, filters (as exact
//! DataFusion expressions) and limit travel in the ticket, so the storage
//! node prunes files and filters rows where the data is; filters are
//! declared inexact, so they are applied again here and a filter the node
//! could not use never changes the answer. A node that cannot be reached
//! fails the query with [`ShardUnavailable`] (503), never a silently
//! incomplete answer. The newest span start, which DataFusion's synchronous
//! statistics cannot fetch, comes from [`RemoteSpanStartBounds`]: one
//! `DoAction` per storage node.

use std::fmt;
use std::sync::Arc;

use arrow_flight::Ticket;
use arrow_flight::error::FlightError;
use async_trait::async_trait;
use base64::Engine as _;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use datafusion_proto::bytes::Serializeable;
use futures::{StreamExt, TryStreamExt};
use skein_model::TableKind;
use skein_model::cluster::{ScanTicket, SpanStartQuery, StorageNode, StorageNodes};

/// A shard's storage node could not answer a scan.
#[derive(Debug, thiserror::Error)]
#[error("shard {shard} is unavailable: storage node {node} ({address}) did not answer: {reason}")]
pub struct ShardUnavailable {
    pub shard: usize,
    pub node: String,
    pub address: String,
    pub reason: String,
}

/// One table of one shard, on its owning storage node.
#[derive(Debug)]
pub struct RemoteShardTable {
    table: TableKind,
    shard: usize,
    nodes: Arc<StorageNodes>,
    tenant: Arc<str>,
}

impl RemoteShardTable {
    pub fn new(table: TableKind, shard: usize, nodes: Arc<StorageNodes>, tenant: Arc<str>) -> Self {
        Self { table, shard, nodes, tenant }
    }

    /// One table per shard of `table` of `tenant`, indexed by shard ID.
    pub fn all(table: impl Into<TableKind>, nodes: &Arc<StorageNodes>, tenant: &str) -> Vec<Arc<dyn TableProvider>> {
        let table = table.into();
        let tenant: Arc<str> = Arc::from(tenant);
        (0..nodes.shard_count())
            .map(|shard| {
                Arc::new(Self::new(table, shard, Arc::clone(nodes), Arc::clone(&tenant))) as Arc<dyn TableProvider>
            })
            .collect()
    }

    /// Every table of `tenant`, read from the storage nodes.
    pub fn tables(nodes: &Arc<StorageNodes>, tenant: &str) -> crate::Tables {
        crate::Tables {
            spans: Self::all(skein_model::Signal::Spans, nodes, tenant),
            metrics: Self::all(skein_model::Signal::Metrics, nodes, tenant),
            span_metrics: Self::all(TableKind::SpanMetrics, nodes, tenant),
            logs: Self::all(skein_model::Signal::Logs, nodes, tenant),
            trace_parts: Self::all(TableKind::TraceParts, nodes, tenant),
            span_links: Self::all(TableKind::SpanLinks, nodes, tenant),
            span_start_bounds: Some(Arc::new(RemoteSpanStartBounds {
                nodes: Arc::clone(nodes),
                tenant: Arc::from(tenant),
            })),
        }
    }
}

/// The newest span start of a tenant's shards, asked of the storage nodes
/// that own them (all at once, one call each).
#[derive(Debug)]
pub struct RemoteSpanStartBounds {
    nodes: Arc<StorageNodes>,
    tenant: Arc<str>,
}

#[async_trait]
impl crate::SpanStartBounds for RemoteSpanStartBounds {
    /// `None` when a shard has no owner or its owner cannot answer (it
    /// may be moving): the search then finds the newest span by queries,
    /// which know how to follow a moving shard.
    async fn newest_span_start(&self) -> Option<i64> {
        let mut by_owner: std::collections::BTreeMap<String, (Arc<StorageNode>, Vec<usize>)> =
            std::collections::BTreeMap::new();
        for shard in 0..self.nodes.shard_count() {
            let owner = self.nodes.owner(shard)?;
            by_owner.entry(owner.id.clone()).or_insert_with(|| (owner, Vec::new())).1.push(shard);
        }
        let asks = by_owner.into_values().map(|(node, shards)| {
            let query = SpanStartQuery {
                shards,
                shard_count: self.nodes.shard_count(),
                node_id: node.id.clone(),
                tenant: self.tenant.to_string(),
            };
            async move {
                node.newest_span_start(&query).await.map(|bound| bound.newest_span_start_ns).map_err(|reason| {
                    tracing::debug!(node = %node.id, %reason, "no span start bound from a storage node");
                })
            }
        });
        let bounds = futures::future::join_all(asks).await;
        bounds.into_iter().try_fold(i64::MIN, |newest, bound| bound.ok().map(|bound| newest.max(bound)))
    }
}

/// A query node's tables: every tenant's are read from the storage nodes,
/// which keep each tenant's data apart.
#[derive(Debug)]
pub struct RemoteTenantTables(pub Arc<StorageNodes>);

#[async_trait]
impl crate::TenantTables for RemoteTenantTables {
    async fn tables(&self, tenant: &str) -> std::result::Result<crate::Tables, crate::QueryError> {
        Ok(RemoteShardTable::tables(&self.0, tenant))
    }
}

#[async_trait]
impl TableProvider for RemoteShardTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let node = self
            .nodes
            .owner(self.shard)
            .ok_or_else(|| DataFusionError::Plan(format!("shard {} has no owner", self.shard)))?;
        let mut encoded = Vec::with_capacity(filters.len());
        // One conjunction: the node applies all of them or none.
        if let Some(filter) = conjunction(filters.iter().cloned()) {
            let unqualified = datafusion::logical_expr::expr_rewriter::unnormalize_col(filter);
            match unqualified.to_bytes() {
                Ok(bytes) => encoded.push(base64::engine::general_purpose::STANDARD.encode(bytes)),
                // Still correct: the filters run again above this scan.
                Err(e) => tracing::debug!(error = %e, "scan filter not pushed to storage"),
            }
        }
        let schema = self.table.schema();
        let projected = match projection {
            Some(p) => Arc::new(schema.project(p)?),
            None => schema,
        };
        // An empty projection (count(*)) still needs rows: fetch one column, drop it here.
        let wire_projection = match projection {
            Some(p) if p.is_empty() => Some(vec![0]),
            other => other.cloned(),
        };
        let ticket = ScanTicket {
            table: self.table,
            shard: self.shard,
            more_shards: Vec::new(),
            shard_count: self.nodes.shard_count(),
            node_id: node.id.clone(),
            projection: wire_projection,
            filters: encoded,
            limit,
            tenant: self.tenant.to_string(),
        };
        Ok(Arc::new(RemoteScanExec::new(ticket, projected, node.address.clone(), Arc::clone(&self.nodes))))
    }
}

/// The scans of `plans` with the shards of one storage node joined into one
/// (one call per node, not one per shard), the other plans as they were.
/// Scans join when they differ in nothing but the shard.
pub(crate) fn one_scan_per_node(plans: Vec<Arc<dyn ExecutionPlan>>) -> Vec<Arc<dyn ExecutionPlan>> {
    let mut joined: Vec<RemoteScanExec> = Vec::new();
    let mut others = Vec::new();
    for plan in plans {
        let Some(scan) = plan.downcast_ref::<RemoteScanExec>() else {
            others.push(plan);
            continue;
        };
        match joined.iter_mut().find(|group| group.differs_only_in_shards(scan)) {
            Some(group) => group.ticket.more_shards.push(scan.ticket.shard),
            None => joined.push(scan.clone()),
        }
    }
    others.extend(joined.into_iter().map(|scan| Arc::new(scan) as Arc<dyn ExecutionPlan>));
    others
}

/// Streams the rows of one shard, or of several on one node, from the
/// storage node that owns them.
#[derive(Debug, Clone)]
struct RemoteScanExec {
    ticket: ScanTicket,
    schema: SchemaRef,
    address: String,
    nodes: Arc<StorageNodes>,
    properties: Arc<PlanProperties>,
}

impl RemoteScanExec {
    /// Whether `other` scans the same node, table, columns, filters and
    /// limit (its shards may differ).
    fn differs_only_in_shards(&self, other: &RemoteScanExec) -> bool {
        let shardless = |ticket: &ScanTicket| ScanTicket { shard: 0, more_shards: Vec::new(), ..ticket.clone() };
        self.address == other.address
            && self.schema == other.schema
            && shardless(&self.ticket) == shardless(&other.ticket)
    }

    fn new(ticket: ScanTicket, schema: SchemaRef, address: String, nodes: Arc<StorageNodes>) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self { ticket, schema, address, nodes, properties }
    }
}

impl DisplayAs for RemoteScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RemoteScanExec: table={}, shards={:?}, node={}, filters={}, limit={:?}",
            self.ticket.table,
            self.ticket.shards().collect::<Vec<_>>(),
            self.ticket.node_id,
            self.ticket.filters.len(),
            self.ticket.limit
        )
    }
}

impl ExecutionPlan for RemoteScanExec {
    fn name(&self) -> &str {
        "RemoteScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal("RemoteScanExec has no children".into()))
        }
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("RemoteScanExec has one partition, not {partition}")));
        }
        let schema = Arc::clone(&self.schema);
        let (ticket, nodes, address) = (self.ticket.clone(), Arc::clone(&self.nodes), self.address.clone());
        let batches = if ticket.more_shards.is_empty() {
            shard_rows(ticket, nodes, address)
        } else {
            joined_rows(ticket, nodes, address)
        };
        let target = Arc::clone(&schema);
        let rebound = batches.map(move |batch| rebind(batch?, &target));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rebound)))
    }
}

type Batches = futures::stream::BoxStream<'static, Result<RecordBatch>>;

fn unavailable(shard: usize, node: &str, address: &str, reason: String) -> DataFusionError {
    DataFusionError::External(Box::new(ShardUnavailable {
        shard,
        node: node.to_owned(),
        address: address.to_owned(),
        reason,
    }))
}

/// One shard's rows: from its owner first; a node that answers it does not
/// hold the shard (it is moving) sends us on to the next. Any other
/// failure is final.
fn shard_rows(mut ticket: ScanTicket, nodes: Arc<StorageNodes>, planned_address: String) -> Batches {
    let candidates = nodes.scan_candidates(ticket.shard);
    let planned_node = ticket.node_id.clone();
    futures::stream::once(async move {
        let mut refusals = Vec::new();
        for node in candidates {
            ticket.node_id = node.id.clone();
            match ask(&node, &ticket).await? {
                Answer::Rows(rows) => return Ok(rows),
                Answer::NotHeld(refusal) => refusals.push(format!("{}: {refusal}", node.id)),
            }
        }
        let reason = if refusals.is_empty() { "no storage node".into() } else { refusals.join("; ") };
        Err(unavailable(ticket.shard, &planned_node, &planned_address, reason))
    })
    .try_flatten()
    .boxed()
}

/// The rows of several shards of one node, in one call. If the node no
/// longer holds one of them (it is moving), shard by shard instead, each
/// from whoever holds it now.
fn joined_rows(ticket: ScanTicket, nodes: Arc<StorageNodes>, address: String) -> Batches {
    let node = nodes.nodes().into_iter().find(|node| node.id == ticket.node_id);
    futures::stream::once(async move {
        let answer = match &node {
            Some(node) => ask(node, &ticket).await?,
            None => Answer::NotHeld("not a member".into()),
        };
        Ok::<_, DataFusionError>(match answer {
            Answer::Rows(rows) => rows,
            Answer::NotHeld(_) => rows_shard_by_shard(ticket, nodes, address),
        })
    })
    .try_flatten()
    .boxed()
}

/// What a storage node answers a scan.
enum Answer {
    Rows(Batches),
    /// It does not hold a shard of the ticket (it is moving): why.
    NotHeld(String),
}

/// Sends `ticket` to `node`. Any failure but "not held" is final.
async fn ask(node: &StorageNode, ticket: &ScanTicket) -> Result<Answer> {
    let bytes = serde_json::to_vec(ticket).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let (shard, id, address) = (ticket.shard, node.id.clone(), node.address.clone());
    match node.flight().do_get(Ticket::new(bytes)).await {
        Ok(stream) => {
            Ok(Answer::Rows(stream.map_err(move |e| unavailable(shard, &id, &address, e.to_string())).boxed()))
        }
        Err(FlightError::Tonic(status)) if status.code() == tonic::Code::FailedPrecondition => {
            Ok(Answer::NotHeld(status.message().to_owned()))
        }
        Err(e) => Err(unavailable(shard, &node.id, &node.address, e.to_string())),
    }
}

fn rows_shard_by_shard(ticket: ScanTicket, nodes: Arc<StorageNodes>, address: String) -> Batches {
    let tickets: Vec<ScanTicket> =
        ticket.shards().map(|shard| ScanTicket { shard, more_shards: Vec::new(), ..ticket.clone() }).collect();
    futures::stream::iter(tickets)
        .flat_map(move |ticket| shard_rows(ticket, Arc::clone(&nodes), address.clone()))
        .boxed()
}

/// A received batch in the scan's schema: same columns (field metadata
/// may differ after IPC), or none but the row count for an empty projection.
fn rebind(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = if schema.fields().is_empty() { Vec::new() } else { batch.columns().to_vec() };
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus_client::registry::Registry;
    use skein_model::cluster::{NodeTimeouts, SpanStartQuery, StorageNodes};
    use skein_model::security::DEFAULT_TENANT;
    use skein_model::{ConvertLimits, ShardWriter, Signal, spans_to_arrow};
    use skein_storage::{InternalServer, StorageConfig, StorageFlight, TenantStorages};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::test_support::{shard_requests, test_config};
    use crate::{QueryEngine, SearchQuery};

    const SHARDS: usize = 2;

    /// Writes a request's spans to their shards; returns their newest start.
    async fn write(
        storage: &skein_storage::Storage,
        request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    ) -> i64 {
        let converted = spans_to_arrow(request, &ConvertLimits::default(), SHARDS).expect("converts");
        let mut newest = i64::MIN;
        for (shard, batch) in converted.split_by_shard(SHARDS).expect("splits") {
            let starts = batch.column_by_name(skein_model::schema::col::START_TIME).expect("start column");
            let starts = datafusion::arrow::array::AsArray::as_primitive::<
                datafusion::arrow::datatypes::TimestampNanosecondType,
            >(starts);
            newest = newest.max(datafusion::arrow::compute::max(starts).expect("spans"));
            storage.write(Signal::Spans, shard, batch).await.expect("written");
        }
        newest
    }

    fn timeouts() -> NodeTimeouts {
        let second = Duration::from_secs(5);
        NodeTimeouts { connect: second, request: second, failover_after: Duration::from_secs(3600) }
    }

    /// Serves `tenants` as storage node `id` on a free port: its address.
    async fn serve(tenants: &Arc<TenantStorages>, id: &str, stop: &CancellationToken) -> String {
        let flight = StorageFlight::new(Arc::clone(tenants), id.into());
        let server = InternalServer::bind("127.0.0.1:0".parse().expect("address"), flight, None).await.expect("binds");
        let address = server.local_addr().to_string();
        tokio::spawn(server.serve(stop.clone()));
        address
    }

    async fn search_pages(engine: &QueryEngine, newest: i64, flushed: i64) -> Vec<crate::SearchPage> {
        let mut pages = Vec::new();
        for end in [None, Some(newest), Some(newest - 1), Some(flushed - 1)] {
            for limit in [1, 3] {
                let query = SearchQuery { end_ns: end, ..SearchQuery::newest(limit) };
                pages.push(engine.search(&query).await.expect("search"));
            }
        }
        pages
    }

    async fn span_count(engine: &QueryEngine) -> String {
        let result = engine.sql("SELECT count(*) AS n, count(DISTINCT trace_id) AS t FROM spans").await.expect("sql");
        datafusion::arrow::util::pretty::pretty_format_batches(&result.batches).expect("formats").to_string()
    }

    /// A query node reads a real storage node over Flight: the shards it
    /// owns in one scan per query (not one per shard), the newest span
    /// start from one call (exact over flushed and buffered spans), with
    /// answers equal to the local tables'. A node asked for what it does
    /// not hold refuses; then scans go shard by shard to whoever holds
    /// each, and the bound is unknown (searches find the newest span by
    /// queries): answers stay the same.
    #[tokio::test]
    async fn storage_nodes_answer_scans_and_span_start_bounds_over_flight() {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let config = StorageConfig { data_dir: data_dir.path().to_owned(), shards: SHARDS, ..StorageConfig::default() };
        let tenants = TenantStorages::open(config, &mut Registry::default(), CancellationToken::new())
            .await
            .expect("storage opens");
        let stop = CancellationToken::new();
        let entries = [("s-1".to_owned(), serve(&tenants, "s-1", &stop).await)];
        let nodes = StorageNodes::new(SHARDS, &entries, timeouts(), None, &mut Registry::default()).expect("nodes");
        nodes.check_all().await;
        let remote =
            QueryEngine::new(&test_config(), RemoteShardTable::tables(&nodes, DEFAULT_TENANT)).expect("engine");
        assert_eq!(remote.newest_span_start_bound().await, Some(i64::MIN), "no span yet");

        let storage = tenants.default_tenant();
        let (a, b) = shard_requests();
        let newest_flushed = write(&storage, &a).await;
        storage.flush_all().await.expect("flushes");
        assert_eq!(remote.newest_span_start_bound().await, Some(newest_flushed));
        let newest = newest_flushed.max(write(&storage, &b).await);
        assert_eq!(remote.newest_span_start_bound().await, Some(newest), "buffered spans count");

        let local_tables = crate::Tables {
            spans: storage.span_tables(),
            span_metrics: storage.span_metrics_tables(),
            trace_parts: storage.trace_parts_tables(),
            span_links: storage.span_links_tables(),
            ..crate::Tables::default()
        };
        let local = QueryEngine::new(&test_config(), local_tables).expect("engine");
        let expected = search_pages(&local, newest, newest_flushed).await;
        assert_eq!(search_pages(&remote, newest, newest_flushed).await, expected);
        assert_eq!(span_count(&remote).await, span_count(&local).await);
        let plan = remote.sql("EXPLAIN SELECT count(*) FROM spans").await.expect("explain");
        let plan = datafusion::arrow::util::pretty::pretty_format_batches(&plan.batches).expect("formats").to_string();
        assert_eq!(plan.matches("RemoteScanExec").count(), 1, "one scan for the node's two shards: {plan}");
        assert!(plan.contains("shards=[0, 1]"), "{plan}");

        let node = nodes.owner(0).expect("an owner");
        let misaddressed = SpanStartQuery {
            shards: vec![0],
            shard_count: SHARDS,
            node_id: "s-2".into(),
            tenant: DEFAULT_TENANT.into(),
        };
        let refusal = node.newest_span_start(&misaddressed).await.expect_err("not this node's request");
        assert!(refusal.contains("s-2"), "{refusal}");
        let past_the_count = SpanStartQuery { shards: vec![SHARDS], node_id: "s-1".into(), ..misaddressed };
        node.newest_span_start(&past_the_count).await.expect_err("no such shard");

        // A second node that the shard map gives every shard to (so its
        // scans are joined) but that holds none.
        let empty_id = (0..100)
            .map(|n| format!("e-{n}"))
            .find(|id| {
                let entries = [("s-1".to_owned(), "127.0.0.1:1".to_owned()), (id.clone(), "127.0.0.1:1".to_owned())];
                let nodes =
                    StorageNodes::new(SHARDS, &entries, timeouts(), None, &mut Registry::default()).expect("ok");
                (0..SHARDS).all(|shard| nodes.owner(shard).is_some_and(|owner| owner.id == *id))
            })
            .expect("an ID that ranks first for every shard");
        let empty_dir = tempfile::tempdir().expect("temporary directory");
        let holds_nothing =
            skein_storage::NodeShards { wal: skein_storage::WalPlacement::LocalDisk, owned: Arc::new(Vec::new) };
        let config =
            StorageConfig { data_dir: empty_dir.path().to_owned(), shards: SHARDS, ..StorageConfig::default() };
        let empty =
            TenantStorages::open_node(config, holds_nothing, &mut Registry::default(), CancellationToken::new())
                .await
                .expect("storage opens");
        let two = [
            ("s-1".to_owned(), serve(&tenants, "s-1", &stop).await),
            (empty_id.clone(), serve(&empty, &empty_id, &stop).await),
        ];
        let nodes = StorageNodes::new(SHARDS, &two, timeouts(), None, &mut Registry::default()).expect("nodes");
        nodes.check_all().await;
        assert!((0..SHARDS).all(|shard| nodes.owner(shard).is_some_and(|owner| owner.id == empty_id)));
        let remote =
            QueryEngine::new(&test_config(), RemoteShardTable::tables(&nodes, DEFAULT_TENANT)).expect("engine");
        assert_eq!(remote.newest_span_start_bound().await, None, "s-2 cannot bound what it does not hold");
        assert_eq!(search_pages(&remote, newest, newest_flushed).await, expected);
        assert_eq!(span_count(&remote).await, span_count(&local).await);

        stop.cancel();
        tenants.close().await.expect("closes");
        empty.close().await.expect("closes");
    }
}
