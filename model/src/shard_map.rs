//! Which shard holds a trace (or a metric series), and which storage node
//! owns each shard.
//!
//! A cluster has a fixed number of virtual shards, decoupled from the number
//! of storage nodes: `shard = hash(trace_id) % shard_count` (the series hash
//! for metrics). Each shard's owner is chosen by rendezvous hashing
//! (highest random weight) over the storage nodes' IDs: every node scores
//! every shard and the highest score owns it. Adding or removing one of N
//! nodes therefore moves only the shards that node gains or loses, about
//! 1/N of them, and every member computes the same map from the same list
//! of IDs without talking to the others.

use std::collections::BTreeSet;

use crate::ModelError;

/// The cluster's shard count and each shard's owning node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    shard_count: usize,
    /// Node IDs, sorted and distinct.
    nodes: Vec<String>,
    /// Per shard, indexes into `nodes` by descending rendezvous score: the
    /// owner first, then who takes the shard over if the owner fails.
    ranking: Vec<Vec<u32>>,
}

impl ShardMap {
    /// The map of `shard_count` shards over the storage nodes `node_ids`.
    pub fn new<I, S>(shard_count: usize, node_ids: I) -> Result<Self, ModelError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if shard_count == 0 {
            return Err(ModelError::InvalidShardMap("the shard count must be at least 1".into()));
        }
        let mut unique = BTreeSet::new();
        for id in node_ids {
            let id = id.into();
            if id.is_empty() {
                return Err(ModelError::InvalidShardMap("a storage node ID is empty".into()));
            }
            if !unique.insert(id.clone()) {
                return Err(ModelError::InvalidShardMap(format!("storage node {id:?} is listed twice")));
            }
        }
        if unique.is_empty() {
            return Err(ModelError::InvalidShardMap("no storage nodes are configured".into()));
        }
        let nodes: Vec<String> = unique.into_iter().collect();
        let ranking = (0..shard_count)
            .map(|shard| {
                // Each score hashed once; ties (never seen) go to the lower index.
                let mut scored: Vec<(std::cmp::Reverse<u64>, u32)> =
                    nodes.iter().enumerate().map(|(i, id)| (std::cmp::Reverse(weight(id, shard)), i as u32)).collect();
                scored.sort_unstable();
                scored.into_iter().map(|(_, i)| i).collect()
            })
            .collect();
        Ok(Self { shard_count, nodes, ranking })
    }

    /// One process owning every shard (all-in-one).
    pub fn local(shard_count: usize) -> Result<Self, ModelError> {
        Self::new(shard_count, ["local"])
    }

    pub fn shard_count(&self) -> usize {
        self.shard_count
    }

    /// The storage node IDs, sorted.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The shard that holds a trace.
    pub fn shard_for_trace(&self, trace_id: &[u8]) -> usize {
        crate::shard_for_trace(trace_id, self.shard_count)
    }

    /// The shard that holds a metric series (by its series hash).
    pub fn shard_for_series(&self, series_hash: u64) -> usize {
        crate::metrics::shard_for_series(series_hash, self.shard_count)
    }

    /// The ID of the node that owns `shard`, or `None` past the shard count.
    pub fn owner(&self, shard: usize) -> Option<&str> {
        self.owner_index(shard).map(|i| self.nodes[i].as_str())
    }

    /// The position in [`ShardMap::nodes`] of the node that owns `shard`.
    pub fn owner_index(&self, shard: usize) -> Option<usize> {
        self.ranking.get(shard).and_then(|order| order.first()).map(|&i| i as usize)
    }

    /// The position of the node that owns `shard` when only the nodes for
    /// which `live` (given a position) is true may own shards: the live
    /// node with the highest score. Removing a node this way moves only
    /// the shards it owned. When no node is live, the owner over all.
    pub fn live_owner_index(&self, shard: usize, live: impl Fn(usize) -> bool) -> Option<usize> {
        let order = self.ranking.get(shard)?;
        order.iter().map(|&i| i as usize).find(|&i| live(i)).or_else(|| self.owner_index(shard))
    }

    /// Positions of the nodes in `shard`'s rendezvous order: its owner
    /// first, then who takes it over next (empty past the shard count).
    pub fn ranked(&self, shard: usize) -> impl Iterator<Item = usize> + '_ {
        self.ranking.get(shard).into_iter().flatten().map(|&i| i as usize)
    }

    /// The shards `node_id` owns, ascending (empty for an unknown node).
    pub fn shards_of(&self, node_id: &str) -> Vec<usize> {
        self.live_shards_of(node_id, |_| true)
    }

    /// The shards `node_id` owns when only the nodes `live` says may own
    /// shards (see [`ShardMap::live_owner_index`]).
    pub fn live_shards_of(&self, node_id: &str, live: impl Fn(usize) -> bool) -> Vec<usize> {
        match self.nodes.iter().position(|n| n == node_id) {
            Some(index) => (0..self.shard_count).filter(|&s| self.live_owner_index(s, &live) == Some(index)).collect(),
            None => Vec::new(),
        }
    }
}

/// The rendezvous score of `node_id` for `shard`: a hash of both, so each
/// shard ranks the nodes in an independent pseudo-random order.
fn weight(node_id: &str, shard: usize) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(node_id.as_bytes(), shard as u64 ^ 0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("storage-{i}")).collect()
    }

    #[test]
    fn every_shard_has_one_owner_among_the_nodes() {
        let map = ShardMap::new(64, names(3)).expect("map");
        let mut owned: Vec<usize> = map.nodes().iter().flat_map(|n| map.shards_of(n)).collect();
        owned.sort_unstable();
        assert_eq!(owned, (0..64).collect::<Vec<_>>());
        assert!(map.nodes().iter().all(|n| !map.shards_of(n).is_empty()), "64 shards over 3 nodes leave none empty");
        assert_eq!(map.owner(64), None);
        assert!(map.shards_of("nobody").is_empty());
    }

    #[test]
    fn the_map_depends_only_on_the_set_of_ids() {
        let forward = ShardMap::new(64, names(5)).expect("map");
        let reversed = ShardMap::new(64, names(5).into_iter().rev()).expect("map");
        assert_eq!(forward, reversed);
    }

    #[test]
    fn adding_or_removing_one_of_n_nodes_moves_about_one_nth() {
        // Many shards so the fractions are measurable at 100 nodes.
        const SHARDS: usize = 10_000;
        let mut previous = ShardMap::new(SHARDS, names(1)).expect("map");
        for n in 2..=100 {
            let next = ShardMap::new(SHARDS, names(n)).expect("map");
            let added = format!("storage-{}", n - 1);
            let mut moved = 0;
            for shard in 0..SHARDS {
                if previous.owner(shard) != next.owner(shard) {
                    // Only shards the new node takes move; the rest stay put.
                    assert_eq!(next.owner(shard), Some(added.as_str()), "shard {shard} moved between old nodes");
                    moved += 1;
                }
            }
            let expected = SHARDS as f64 / n as f64;
            let ratio = moved as f64 / expected;
            assert!((0.6..1.4).contains(&ratio), "adding node {n}: moved {moved} shards, expected about {expected:.0}");
            // Removing it again restores the previous map exactly.
            let without = ShardMap::new(SHARDS, names(n).into_iter().filter(|id| *id != added)).expect("map");
            assert_eq!(without, previous);
            previous = next;
        }
    }

    #[test]
    fn a_failed_nodes_shards_spread_over_the_live_ones_and_only_those_move() {
        let map = ShardMap::new(256, names(4)).expect("map");
        let failed = map.nodes().iter().position(|n| n == "storage-2").expect("listed");
        let live = |i: usize| i != failed;
        let mut takers = BTreeSet::new();
        for shard in 0..256 {
            let owner = map.owner_index(shard).expect("owner");
            let live_owner = map.live_owner_index(shard, live).expect("live owner");
            if owner == failed {
                assert_ne!(live_owner, failed);
                takers.insert(live_owner);
            } else {
                assert_eq!(live_owner, owner, "shard {shard} of a live node moved");
            }
        }
        assert_eq!(takers.len(), 3, "the failed node's shards spread over every live node");
        // The same answer as a map built without the failed node.
        let without = ShardMap::new(256, ["storage-0", "storage-1", "storage-3"]).expect("map");
        for node in without.nodes() {
            assert_eq!(map.live_shards_of(node, live), without.shards_of(node));
        }
        assert!(map.live_shards_of("storage-2", live).is_empty());
        // No live node at all: the owners over all nodes.
        assert_eq!(map.live_owner_index(7, |_| false), map.owner_index(7));
    }

    #[test]
    fn bad_maps_are_refused() {
        assert!(ShardMap::new(0, names(1)).is_err());
        assert!(ShardMap::new(8, Vec::<String>::new()).is_err());
        assert!(ShardMap::new(8, ["a", "a"]).is_err());
        assert!(ShardMap::new(8, [""]).is_err());
    }

    #[test]
    fn shard_for_trace_agrees_with_the_converters() {
        let map = ShardMap::local(16).expect("map");
        let trace_id = [7u8; 16];
        assert_eq!(map.shard_for_trace(&trace_id), crate::shard_for_trace(&trace_id, 16));
        assert_eq!(map.shards_of("local").len(), 16);
    }
}
