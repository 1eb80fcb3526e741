//! A shard that lives on another process: the query node's `TableProvider`
//! for one signal of one shard, read from the storage node that owns it
//! over Arrow Flight `DoGet`. The scan's projection, filters (as exact
//! DataFusion expressions) and limit travel in the ticket, so the storage
//! node prunes files and filters rows where the data is; filters are
//! declared inexact, so they are applied again here and a filter the node
//! could not use never changes the answer. A node that cannot be reached
//! fails the query with [`ShardUnavailable`] (503), never a silently
//! incomplete answer.

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
use skein_model::cluster::{ScanTicket, StorageNodes};

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
        }
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

/// Streams one shard's rows from its storage node.
#[derive(Debug)]
struct RemoteScanExec {
    ticket: ScanTicket,
    schema: SchemaRef,
    address: String,
    nodes: Arc<StorageNodes>,
    properties: Arc<PlanProperties>,
}

impl RemoteScanExec {
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
            "RemoteScanExec: table={}, shard={}, node={}, filters={}, limit={:?}",
            self.ticket.table,
            self.ticket.shard,
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
        let unavailable = {
            let (shard, node, address) = (self.ticket.shard, self.ticket.node_id.clone(), self.address.clone());
            move |reason: String| {
                DataFusionError::External(Box::new(ShardUnavailable {
                    shard,
                    node: node.clone(),
                    address: address.clone(),
                    reason,
                }))
            }
        };
        let candidates = self.nodes.scan_candidates(self.ticket.shard);
        let mut ticket = self.ticket.clone();
        let on_error = unavailable.clone();
        let batches = futures::stream::once(async move {
            // The owner first; a node that answers it does not hold the shard
            // (it is moving) sends us on to the next. Any other failure is final.
            let mut refusals = Vec::new();
            for node in candidates {
                ticket.node_id = node.id.clone();
                let bytes = serde_json::to_vec(&ticket).map_err(|e| DataFusionError::External(Box::new(e)))?;
                match node.flight().do_get(Ticket::new(bytes)).await {
                    Ok(stream) => return Ok(stream.map_err(move |e| unavailable(e.to_string()))),
                    Err(FlightError::Tonic(status)) if status.code() == tonic::Code::FailedPrecondition => {
                        refusals.push(format!("{}: {}", node.id, status.message()));
                    }
                    Err(e) => return Err(on_error(e.to_string())),
                }
            }
            Err(on_error(if refusals.is_empty() { "no storage node".into() } else { refusals.join("; ") }))
        })
        .try_flatten();
        let target = Arc::clone(&schema);
        let rebound = batches.map(move |batch| rebind(batch?, &target));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rebound)))
    }
}

/// A received batch in the scan's schema: same columns (field metadata
/// may differ after IPC), or none but the row count for an empty projection.
fn rebind(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = if schema.fields().is_empty() { Vec::new() } else { batch.columns().to_vec() };
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)?)
}
