//! The messages storage nodes, collectors and query nodes exchange over
//! Arrow Flight, on each storage node's internal port.
//!
//! - **Write** (`DoPut`): the descriptor's command is a JSON [`PutCommand`]
//!   naming the signal, shard and expected owner; the stream carries the
//!   rows (Arrow IPC, the signal's schema). The storage node answers once the
//!   batch is in the shard's write-ahead log, exactly as a local write.
//! - **Scan** (`DoGet`): the ticket is a JSON [`ScanTicket`] with the shard
//!   (or several shards of the node), projection, filters (DataFusion
//!   logical expressions, protobuf-encoded) and limit; the answer streams
//!   the matching rows of the shards' table (buffered and flushed data).
//! - **Node info** (`DoAction` [`ACTION_NODE_INFO`]): a JSON [`NodeInfo`]
//!   with the node's ID, shard count and per-shard unflushed bytes, used for
//!   health checks, the join-time shard count check and cluster status.
//! - **Newest span start** (`DoAction` [`ACTION_NEWEST_SPAN_START`]): a JSON
//!   [`SpanStartQuery`] naming shards the node owns; the answer, a JSON
//!   [`SpanStartBound`], bounds every span start in them (from manifests and
//!   buffers, no file read), so a query node's search skips the queries
//!   that would find it.
//!
//! Every request carries the sender's shard count and the node ID it meant
//! to reach, so a node refuses work from a member with a different cluster
//! configuration (typed, FAILED_PRECONDITION) instead of storing rows on
//! the wrong shard.

mod discovery;
mod nodes;
#[cfg(any(test, feature = "test-dns"))]
pub mod test_dns;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use discovery::{DiscoveredNode, DnsDiscovery};
pub use nodes::{
    DiscoveryState, MAX_MESSAGE_BYTES, NodeHealth, NodeTimeouts, StorageNode, StorageNodes, parse_storage_node,
};

use crate::security::DEFAULT_TENANT;
use crate::{Signal, TableKind, WriteError};

/// The `DoAction` type that returns [`NodeInfo`].
pub const ACTION_NODE_INFO: &str = "node_info";

/// The `DoAction` type that returns a [`SpanStartBound`].
pub const ACTION_NEWEST_SPAN_START: &str = "newest_span_start";

/// Which shards' newest span start is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanStartQuery {
    /// The shards, each owned by the node asked.
    pub shards: Vec<usize>,
    pub shard_count: usize,
    pub node_id: String,
    /// The tenant whose spans count (absent: `default`).
    #[serde(default = "default_tenant", skip_serializing_if = "is_default_tenant")]
    pub tenant: String,
}

/// The answer to a [`SpanStartQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanStartBound {
    /// No span in the shards starts later (ns since the epoch);
    /// `i64::MIN` when they hold no span.
    pub newest_span_start_ns: i64,
}

/// Which node and shard a `DoPut` stream is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutCommand {
    pub signal: Signal,
    pub shard: usize,
    /// The sender's cluster shard count; must equal the node's.
    pub shard_count: usize,
    /// The node the sender believes owns `shard`.
    pub node_id: String,
    /// The tenant whose storage takes the rows (absent: `default`).
    #[serde(default = "default_tenant", skip_serializing_if = "is_default_tenant")]
    pub tenant: String,
}

impl ScanTicket {
    /// Every shard the ticket scans: `shard`, then `more_shards`.
    pub fn shards(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.shard).chain(self.more_shards.iter().copied())
    }
}

fn default_tenant() -> String {
    DEFAULT_TENANT.to_owned()
}

fn is_default_tenant(tenant: &str) -> bool {
    tenant == DEFAULT_TENANT
}

/// A scan of one shard's table (a signal's, or one derived from it), or of
/// several shards on one node in one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanTicket {
    pub table: TableKind,
    pub shard: usize,
    /// Further shards of the same node scanned alike, their rows in the
    /// same stream: one call per node instead of one per shard. Left out
    /// when empty, so a one-shard ticket reads as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_shards: Vec<usize>,
    pub shard_count: usize,
    pub node_id: String,
    /// Column indexes of the signal's schema to return; all when `None`.
    pub projection: Option<Vec<usize>>,
    /// Conjunctive filters, each a DataFusion `Expr` as protobuf bytes,
    /// base64-encoded. The node applies them; the sender re-applies any it
    /// needs exactly.
    pub filters: Vec<String>,
    pub limit: Option<usize>,
    /// The tenant whose tables are scanned (absent: `default`).
    #[serde(default = "default_tenant", skip_serializing_if = "is_default_tenant")]
    pub tenant: String,
}

/// A storage node's identity and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: String,
    pub shard_count: usize,
    /// The shards the node holds, ascending.
    pub shards: Vec<ShardInfo>,
    /// Whether the node keeps its WAL in the object store, so that its
    /// shards can move to another node when it fails.
    #[serde(default)]
    pub failover: bool,
    /// Whether the node is handing its shards off before it stops: the
    /// other members treat it as owning nothing.
    #[serde(default)]
    pub draining: bool,
}

/// One shard on a storage node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub shard: usize,
    /// Acknowledged bytes (all signals) not yet in Parquet: what a crash
    /// would make the node replay from its write-ahead log.
    pub unflushed_bytes: u64,
}

/// The three ways a request can address the wrong member, checked in this
/// order by every storage node before any work.
pub fn check_addressing(
    node_id: &str,
    shard_count: usize,
    request_node: &str,
    request_shard_count: usize,
    owns_shard: bool,
    shard: usize,
) -> Result<(), String> {
    if request_shard_count != shard_count {
        return Err(format!(
            "cluster shard counts differ: the sender has {request_shard_count} shards, storage node {node_id} has \
             {shard_count}; every member of a cluster needs the same storage.shards"
        ));
    }
    if request_node != node_id {
        return Err(format!(
            "the sender meant storage node {request_node:?} but reached {node_id:?}; its storage_nodes list names \
             the wrong address"
        ));
    }
    if !owns_shard {
        return Err(format!("storage node {node_id} does not own shard {shard}"));
    }
    Ok(())
}

/// gRPC metadata key carrying how long to wait before retrying, in milliseconds.
const RETRY_AFTER_MS: &str = "skein-retry-after-ms";

/// How a storage node answers a refused write on the wire.
pub fn write_error_to_status(error: &WriteError) -> tonic::Status {
    let code = match error {
        WriteError::NotOwner { .. } => tonic::Code::FailedPrecondition,
        other => other.class().grpc_code(),
    };
    let mut status = tonic::Status::new(code, error.to_string());
    if let Some(retry_after) = error.class().retry_after()
        && let Ok(value) = retry_after.as_millis().to_string().parse()
    {
        status.metadata_mut().insert(RETRY_AFTER_MS, value);
    }
    status
}

/// The write error a sender reports for a storage node's answer `status`
/// (`node` names the node in messages): retryable for the client when the
/// node is busy, down, or not the owner.
pub fn write_error_from_status(status: &tonic::Status, node: &str, shard: usize) -> WriteError {
    let retry_after = status
        .metadata()
        .get(RETRY_AFTER_MS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_millis);
    match status.code() {
        tonic::Code::ResourceExhausted => WriteError::Overloaded { retry_after },
        tonic::Code::FailedPrecondition => {
            WriteError::NotOwner { shard, node: node.to_owned(), reason: status.message().to_owned(), retry_after }
        }
        tonic::Code::Unavailable
        | tonic::Code::DeadlineExceeded
        | tonic::Code::Cancelled
        | tonic::Code::Unknown
        | tonic::Code::Aborted => WriteError::Unavailable {
            reason: format!("storage node {node} (shard {shard}) is unreachable: {}", status.message()),
            retry_after,
        },
        _ => WriteError::Internal(format!("storage node {node} (shard {shard}): {}", status.message())),
    }
}

/// Retry hint when a node gave none (it could not be reached at all).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_cross_the_wire_with_their_retry_hint() {
        let sent = WriteError::Overloaded { retry_after: Duration::from_millis(1500) };
        let received = write_error_from_status(&write_error_to_status(&sent), "s-0", 2);
        assert!(
            matches!(received, WriteError::Overloaded { retry_after } if retry_after == Duration::from_millis(1500))
        );
        let sent = WriteError::NotOwner {
            shard: 2,
            node: "s-0".into(),
            reason: "not here".into(),
            retry_after: Duration::from_secs(1),
        };
        let received = write_error_from_status(&write_error_to_status(&sent), "s-0", 2);
        assert!(matches!(received, WriteError::NotOwner { shard: 2, .. }), "{received}");
        let down = tonic::Status::unavailable("connection refused");
        let received = write_error_from_status(&down, "s-1", 5);
        assert!(matches!(received, WriteError::Unavailable { .. }), "{received}");
        assert!(received.to_string().contains("s-1"), "{received}");
    }

    #[test]
    fn addressing_checks_shard_count_then_node_then_shard() {
        assert!(check_addressing("s-0", 8, "s-0", 8, true, 1).is_ok());
        let err = check_addressing("s-0", 8, "s-0", 16, true, 1).expect_err("count");
        assert!(err.contains("shard counts differ"), "{err}");
        let err = check_addressing("s-0", 8, "s-1", 8, true, 1).expect_err("node");
        assert!(err.contains("wrong address"), "{err}");
        let err = check_addressing("s-0", 8, "s-0", 8, false, 3).expect_err("owner");
        assert!(err.contains("does not own shard 3"), "{err}");
    }

    #[test]
    fn tickets_round_trip_as_json() {
        let ticket = ScanTicket {
            table: TableKind::SpanMetrics,
            shard: 3,
            more_shards: Vec::new(),
            shard_count: 8,
            node_id: "s-1".into(),
            projection: Some(vec![0, 2]),
            filters: vec!["AAE=".into()],
            limit: Some(10),
            tenant: "acme".into(),
        };
        let json = serde_json::to_string(&ticket).expect("json");
        assert!(json.contains(r#""table":"span_metrics""#) && json.contains(r#""tenant":"acme""#), "{json}");
        assert_eq!(serde_json::from_str::<ScanTicket>(&json).expect("parses"), ticket);
        // The default tenant is left out, so nodes of the previous version
        // (which refuse unknown fields) still take it.
        let default = ScanTicket { tenant: DEFAULT_TENANT.into(), ..ticket };
        let json = serde_json::to_string(&default).expect("json");
        assert!(!json.contains("tenant") && !json.contains("more_shards"), "{json}");
        assert_eq!(serde_json::from_str::<ScanTicket>(&json).expect("parses"), default);
        let several = ScanTicket { more_shards: vec![5, 7], ..default };
        let json = serde_json::to_string(&several).expect("json");
        assert!(json.contains(r#""more_shards":[5,7]"#), "{json}");
        assert_eq!(serde_json::from_str::<ScanTicket>(&json).expect("parses"), several);
        assert_eq!(several.shards().collect::<Vec<_>>(), [3, 5, 7]);
    }
}
