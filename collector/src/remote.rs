//! The collector's [`ShardWriter`] in a cluster: each shard's batch goes to
//! the storage node that owns the shard, over Arrow Flight `DoPut`, and the
//! write returns once that node has it in its write-ahead log. A node that
//! cannot be reached, is overloaded or refuses the shard turns into a
//! retryable answer for the OTLP client (503 / UNAVAILABLE or 429 /
//! RESOURCE_EXHAUSTED, with retry info), never a silent drop.

use std::sync::Arc;

use arrow_flight::FlightDescriptor;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use async_trait::async_trait;
use futures::TryStreamExt;
use skein_model::cluster::{DEFAULT_RETRY_AFTER, PutCommand, StorageNodes, write_error_from_status};
use skein_model::security::DEFAULT_TENANT;
use skein_model::{RecordBatch, ShardWriter, Signal, TenantWriters, WriteError, WriteReceipt};

/// Writes each shard's rows of one tenant to its owner among `nodes`.
#[derive(Debug, Clone)]
pub struct RemoteShardWriter {
    nodes: Arc<StorageNodes>,
    tenant: Arc<str>,
}

impl RemoteShardWriter {
    /// The writer of the tenant `default`; [`TenantWriters::writer`] gives
    /// the others'.
    pub fn new(nodes: Arc<StorageNodes>) -> Self {
        Self { nodes, tenant: Arc::from(DEFAULT_TENANT) }
    }

    async fn write_signal(&self, signal: Signal, shard: usize, batch: RecordBatch) -> Result<WriteReceipt, WriteError> {
        let node = self.nodes.owner(shard).ok_or(WriteError::NoSuchShard(shard))?;
        let command = PutCommand {
            signal,
            shard,
            shard_count: self.nodes.shard_count(),
            node_id: node.id.clone(),
            tenant: self.tenant.to_string(),
        };
        let cmd = serde_json::to_vec(&command).map_err(|e| WriteError::Internal(e.to_string()))?;
        let messages = FlightDataEncoderBuilder::new()
            .with_flight_descriptor(Some(FlightDescriptor::new_cmd(cmd)))
            .build(futures::stream::iter([Ok(batch)]));
        let answer = async {
            let results = node.flight().do_put(messages).await?;
            results.try_collect::<Vec<_>>().await
        };
        match answer.await {
            Ok(results) => receipt_of(&results, &node.id),
            Err(FlightError::Tonic(status)) => Err(write_error_from_status(&status, &node.id, shard)),
            Err(other) => Err(WriteError::Unavailable {
                reason: format!("writing to storage node {} (shard {shard}) failed: {other}", node.id),
                retry_after: DEFAULT_RETRY_AFTER,
            }),
        }
    }
}

#[async_trait]
impl ShardWriter for RemoteShardWriter {
    fn shard_count(&self) -> usize {
        self.nodes.shard_count()
    }

    async fn write(&self, signal: Signal, shard: usize, batch: RecordBatch) -> Result<WriteReceipt, WriteError> {
        self.write_signal(signal, shard, batch).await
    }
}

/// The receipt in a `DoPut` answer: empty metadata means every row was
/// stored. The rows are durable either way, so a receipt that cannot be
/// read is an internal error, not a retryable one (a retry would be
/// acknowledged as a duplicate).
fn receipt_of(results: &[arrow_flight::PutResult], node: &str) -> Result<WriteReceipt, WriteError> {
    let mut receipt = WriteReceipt::STORED;
    for result in results.iter().filter(|r| !r.app_metadata.is_empty()) {
        let part: WriteReceipt = serde_json::from_slice(&result.app_metadata)
            .map_err(|e| WriteError::Internal(format!("storage node {node} sent an unreadable write receipt: {e}")))?;
        receipt.merge(part);
    }
    Ok(receipt)
}

/// Each tenant's rows go to the same owners, into that tenant's storage there.
#[async_trait]
impl TenantWriters for RemoteShardWriter {
    async fn writer(&self, tenant: &str) -> Result<Arc<dyn ShardWriter>, WriteError> {
        Ok(Arc::new(Self { nodes: Arc::clone(&self.nodes), tenant: Arc::from(tenant) }))
    }
}
