//! Skein's shared data model, used by every role.
//!
//! Data flows through it twice. On ingest, the collector decodes an OTLP
//! request and calls [`spans_to_arrow`] (traces), [`metrics_to_arrow`]
//! (metrics, one row per data point) or [`logs_to_arrow`] (log records),
//! which validate each item and build one Arrow [`RecordBatch`] in the
//! [`span_schema`], [`metric_schema`] or [`log_schema`]; the batch is split
//! by shard ([`shard_for_trace`] for spans and for logs that carry a trace
//! ID, [`metrics::shard_for_series`] so a series lives on one shard) and
//! handed to a [`ShardWriter`] (local storage in all-in-one, a network
//! client in a cluster). On read, the query service turns stored rows back
//! into OTLP with [`records_from_batch`] / [`metric_requests_from_batch`] /
//! [`logs::log_rows_from_batch`] and renders them as Skein JSON
//! ([`trace_json`], [`logs::log_to_json`]) or OTLP/JSON. The schemas are
//! lossless: what is read back equals what was sent. [`ErrorClass`] is the
//! single mapping of failures to HTTP statuses and gRPC codes. In a
//! cluster, [`ShardMap`] says which storage node owns each shard, and
//! [`cluster`] holds the Arrow Flight messages between roles and the
//! collectors' and query nodes' view of the storage nodes (channels, health).
//! [`security`] is what protects every role's external listeners: TLS with
//! reloaded certificates and bearer tokens bound to a tenant and scopes.

mod arrow_build;
mod arrow_read;
pub mod arrow_to_otlp;
pub mod attributes;
pub mod cluster;
mod error;
pub mod ids;
pub mod logs;
pub mod metrics;
pub mod otlp_to_arrow;
pub mod schema;
pub mod security;
mod shard_map;
mod signal;
pub mod span_links;
pub mod span_metrics;
mod span_view;
pub mod trace_json;
pub mod trace_parts;
mod wire;

use std::sync::Arc;
use std::time::Duration;

pub use arrow_to_otlp::{SpanRecord, records_from_batch, records_to_request};
pub use datafusion::arrow::array::RecordBatch;
pub use error::{ErrorClass, ModelError};
pub use logs::{LogBatch, log_schema, logs_to_arrow, logs_to_arrow_from_protobuf};
pub use metrics::{
    PointBatch, metric_requests_from_batch, metric_schema, metrics_to_arrow, metrics_to_arrow_from_protobuf,
};
pub use otlp_to_arrow::{ConvertLimits, ConvertedBatch, SpanBatch, spans_to_arrow, spans_to_arrow_from_protobuf};
pub use schema::span_schema;
pub use shard_map::ShardMap;
pub use signal::{Signal, TableKind};
pub use span_links::span_links_schema;
pub use span_metrics::span_metrics_schema;
pub use trace_parts::trace_parts_schema;

/// The shard that owns a trace: a hash of all 16 ID bytes, so IDs with a
/// zero high half (64-bit tracers) still spread evenly.
pub fn shard_for_trace(trace_id: &[u8], shard_count: usize) -> usize {
    if shard_count <= 1 {
        return 0;
    }
    (xxhash_rust::xxh3::xxh3_64(trace_id) % shard_count as u64) as usize
}

/// Why a shard refused a write. `class()` tells the client whether to retry.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("storage is overloaded, retry after {retry_after:?}")]
    Overloaded { retry_after: Duration },
    #[error("storage is unavailable: {reason}")]
    Unavailable { reason: String, retry_after: Duration },
    #[error("no such shard {0}")]
    NoSuchShard(usize),
    /// The node asked does not own the shard (the sender's shard map is
    /// stale or misconfigured); retryable once the sender routes again.
    #[error("storage node {node} refused shard {shard}: {reason}")]
    NotOwner { shard: usize, node: String, reason: String, retry_after: Duration },
    /// A new tenant past `storage.max_tenants`; not retried.
    #[error(
        "tenant {tenant:?} cannot be added: this Skein already holds its limit of {limit} tenants (storage.max_tenants)"
    )]
    TooManyTenants { tenant: String, limit: usize },
    #[error("storage failed: {0}")]
    Internal(String),
}

impl WriteError {
    pub fn class(&self) -> ErrorClass {
        match self {
            WriteError::Overloaded { retry_after } => ErrorClass::Overloaded { retry_after: *retry_after },
            WriteError::Unavailable { retry_after, .. } | WriteError::NotOwner { retry_after, .. } => {
                ErrorClass::Unavailable { retry_after: *retry_after }
            }
            WriteError::TooManyTenants { .. } => ErrorClass::PermissionDenied,
            WriteError::NoSuchShard(_) | WriteError::Internal(_) => ErrorClass::Internal,
        }
    }
}

/// What a successful write kept. Storage may refuse single rows of a batch
/// under a per-tenant limit (spans of a trace over
/// `storage.max_spans_per_trace`) and store the rest; the refused rows are
/// counted here so the collector reports them in OTLP `partial_success`
/// (the client must not retry them). Sent between roles as the `DoPut`
/// result's `app_metadata` (JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WriteReceipt {
    /// Rows of the batch that were not stored.
    #[serde(default)]
    pub refused_rows: u64,
    /// Why, for the first refused row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

impl WriteReceipt {
    /// Every row stored.
    pub const STORED: WriteReceipt = WriteReceipt { refused_rows: 0, refusal: None };

    /// Adds another part's receipt; the first refusal reason is kept.
    pub fn merge(&mut self, other: WriteReceipt) {
        self.refused_rows += other.refused_rows;
        if self.refusal.is_none() {
            self.refusal = other.refusal;
        }
    }
}

/// The contract between the collector and storage: make a batch of one
/// signal's rows durable on the shard that owns them. A write returns only
/// once the batch survives a crash (it is in the shard's write-ahead log),
/// so the collector can acknowledge the client; its receipt says which rows
/// a per-tenant limit refused.
#[async_trait::async_trait]
pub trait ShardWriter: Send + Sync + 'static {
    /// How many shards the trace-ID space is split into.
    fn shard_count(&self) -> usize;

    /// Durably writes `batch` (rows in [`Signal::schema`]) to `shard`.
    async fn write(&self, signal: Signal, shard: usize, batch: RecordBatch) -> Result<WriteReceipt, WriteError>;

    /// Durably writes `batch` (rows in [`span_schema`]) to `shard`.
    async fn write_spans(&self, shard: usize, batch: RecordBatch) -> Result<WriteReceipt, WriteError> {
        self.write(Signal::Spans, shard, batch).await
    }

    /// Durably writes `batch` (metric data points, one row per point) to
    /// `shard`. Points are sharded by series, so a series lives on one shard.
    async fn write_metrics(&self, shard: usize, batch: RecordBatch) -> Result<WriteReceipt, WriteError> {
        self.write(Signal::Metrics, shard, batch).await
    }
}

/// Where each tenant's writes go: the writer of the tenant a request acts
/// for (see `security::RequestTenant`).
#[async_trait::async_trait]
pub trait TenantWriters: Send + Sync + 'static {
    async fn writer(&self, tenant: &str) -> Result<Arc<dyn ShardWriter>, WriteError>;
}

/// One writer for every request, whatever its tenant: for embedders and
/// tests whose storage holds one tenant's data.
pub struct SingleTenantWriter(pub Arc<dyn ShardWriter>);

#[async_trait::async_trait]
impl TenantWriters for SingleTenantWriter {
    async fn writer(&self, _tenant: &str) -> Result<Arc<dyn ShardWriter>, WriteError> {
        Ok(Arc::clone(&self.0))
    }
}

#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod test_spans;
