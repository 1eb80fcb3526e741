//! `GET /api/v1/cluster`: the members of the cluster this query node reads,
//! their health (checked afresh for the answer), the shards each owns and
//! how much acknowledged data each shard holds unflushed.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use skein_model::cluster::StorageNodes;

use crate::QueryError;
use crate::server::AppState;

/// What the query node reads from.
#[derive(Debug, Clone)]
pub enum Topology {
    /// Every shard is in this process.
    AllInOne,
    /// Shards live on these storage nodes.
    Cluster(Arc<StorageNodes>),
}

pub(crate) async fn get_cluster(State(state): State<Arc<AppState>>) -> Response {
    state.observe("cluster", cluster_response(&state)).await
}

async fn cluster_response(state: &AppState) -> Result<Response, QueryError> {
    let shard_count = state.engine.shard_count();
    let self_member = json!({ "role": state.role_name(), "address": state.local_addr.to_string(), "healthy": true });
    let body = match &state.topology {
        Topology::AllInOne => json!({
            "mode": "all-in-one",
            "shard_count": shard_count,
            "members": [ self_member ],
        }),
        Topology::Cluster(nodes) => {
            nodes.check_all().await;
            let mut members = vec![self_member];
            let now = std::time::Instant::now();
            members.extend(nodes.nodes().iter().map(|node| {
                let health = node.health();
                let unflushed: Vec<Value> = health
                    .info
                    .iter()
                    .flat_map(|info| &info.shards)
                    .map(|s| json!({ "shard": s.shard, "unflushed_bytes": s.unflushed_bytes }))
                    .collect();
                json!({
                    "role": "storage",
                    "node_id": node.id,
                    "address": node.address,
                    "healthy": health.healthy,
                    "error": health.error,
                    "checked_at_unix_ms": health
                        .checked_at
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map(|d| d.as_millis() as u64),
                    "owned_shards": nodes.live_shards_of(&node.id),
                    "failed": nodes.has_failed(node, now),
                    "shards": unflushed,
                })
            }));
            let discovery = nodes.discovery_state().map(|state| {
                json!({
                    "srv": state.srv_name,
                    "looked_up_at_unix_ms": state.looked_up_at.duration_since(UNIX_EPOCH).ok().map(|d| d.as_millis() as u64),
                    "error": state.error,
                })
            });
            json!({
                "mode": "cluster",
                "shard_count": shard_count,
                "failover": nodes.failover_enabled(),
                "discovery": discovery,
                "members": members,
            })
        }
    };
    Ok(axum::Json(body).into_response())
}
