//! Retried writes stored once.
//!
//! An OTLP client retries a whole request when any part of it failed (a
//! collector answers 503 when one shard's owner did not acknowledge), so
//! the shards that did acknowledge see the same rows again. The collector
//! turns equal requests into byte-equal batches per shard (the conversion
//! is deterministic), so each signal of a shard remembers the 128-bit hash
//! of the batches it acknowledged recently and acknowledges a repeat
//! without writing it. The memory is bounded (entries and age) and rebuilt
//! from the WAL on open, so it also covers batches a failed-over shard
//! replayed; a retry that comes after the window, or after a flush and a
//! restart, is stored twice.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Most batch hashes remembered per signal of a shard (~32 bytes each).
const MAX_ENTRIES: usize = 4096;
/// How long a batch hash is remembered: longer than an OTLP exporter's
/// whole retry schedule (the SDKs give up after about a minute).
const WINDOW: Duration = Duration::from_secs(600);

/// The identity of a batch: a hash of its encoded bytes.
pub(crate) fn batch_key(payload: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(payload)
}

/// Recently acknowledged batch keys, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RecentBatches {
    seen: HashSet<u128>,
    order: VecDeque<(u128, Instant)>,
}

impl RecentBatches {
    /// Whether `key` was acknowledged within the window.
    pub fn contains(&mut self, key: u128, now: Instant) -> bool {
        self.expire(now);
        self.seen.contains(&key)
    }

    pub fn insert(&mut self, key: u128, now: Instant) {
        self.expire(now);
        if self.seen.insert(key) {
            if self.order.len() == MAX_ENTRIES
                && let Some((oldest, _)) = self.order.pop_front()
            {
                self.seen.remove(&oldest);
            }
            self.order.push_back((key, now));
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(key, at)) = self.order.front() {
            if now.saturating_duration_since(at) < WINDOW {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_the_window_and_the_bound() {
        let start = Instant::now();
        let mut recent = RecentBatches::default();
        recent.insert(batch_key(b"a"), start);
        assert!(recent.contains(batch_key(b"a"), start + Duration::from_secs(1)));
        assert!(!recent.contains(batch_key(b"b"), start));
        assert!(!recent.contains(batch_key(b"a"), start + WINDOW), "expired after the window");

        for n in 0..=MAX_ENTRIES as u128 {
            recent.insert(n, start);
        }
        assert!(!recent.contains(0, start), "the oldest goes first when full");
        assert!(recent.contains(MAX_ENTRIES as u128, start));
        assert_eq!(recent.order.len(), MAX_ENTRIES);
        assert_eq!(recent.seen.len(), MAX_ENTRIES);
    }
}
