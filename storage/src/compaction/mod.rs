//! Compaction: merging each hour partition's small Parquet files into few
//! large ones, re-sorted for the queries that matter (spans by service,
//! then trace; metric points by metric and series), with their trace
//! indexes and bloom filters rebuilt.
//!
//! What to merge ([`Policy::pick`]): files under half the target size are
//! small. In an hour that still receives data, small files are grouped in
//! size tiers (a factor of `min_files` apart) and a tier is merged once it
//! has `min_files` files, so a row is rewritten about log(target / flush
//! size) times at most. Once an hour is finished (`settle` after its end)
//! all its small files are merged, and late files that arrive after that
//! are merged again as soon as there are two.
//!
//! How ([`merge`] then `Shard::compact`): the inputs are merged outside the
//! manifest lock into new files, then one manifest commit swaps inputs for
//! outputs (in the bucket first, when there is one), the same commit point
//! as a flush. A crash before it leaves unlisted outputs, deleted on open;
//! after it, unlisted inputs. Either way each row is listed exactly once.
//! Replaced files stay on disk for `retired_file_grace`, as queries planned
//! before the commit may still open them. One merge runs at a time per
//! node, on one core, with a capped sort memory.

pub(crate) mod merge;

use std::collections::BTreeMap;

use crate::config::CompactionConfig;
use crate::manifest::FileMeta;
use crate::parquet_files::NS_PER_HOUR;

/// Input of one merge, as a multiple of the target file size: bounds how
/// long one merge holds the node's compaction slot.
const MAX_INPUT_TARGETS: u64 = 4;
/// Rows of one merge per byte of sort memory, inverted: a span row takes
/// about 1 KiB decoded, so a merge spills at most ~16 sorted runs, and
/// merging them (a batch or two of each in memory) stays near the cap.
const SORT_BYTES_PER_INPUT_ROW: u64 = 64;
/// Small files are tiered from this fraction of the target size up.
const SMALLEST_TIER_FRACTION: u64 = 256;

/// Which files to merge, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub target_file_bytes: u64,
    pub min_files: usize,
    pub settle_ns: i64,
    /// Most rows one merge reads (from the sort memory).
    pub max_input_rows: u64,
}

impl Policy {
    pub fn new(config: &CompactionConfig) -> Self {
        Self {
            target_file_bytes: config.target_file_bytes,
            min_files: config.min_files,
            settle_ns: i64::try_from(config.settle.as_nanos()).unwrap_or(i64::MAX),
            max_input_rows: config.memory_bytes / SORT_BYTES_PER_INPUT_ROW,
        }
    }

    fn is_small(&self, file: &FileMeta) -> bool {
        file.size_bytes < self.target_file_bytes / 2
    }

    /// Files within a factor of `min_files` of each other in size share a tier.
    fn tier(&self, size_bytes: u64) -> u32 {
        let mut limit = (self.target_file_bytes / SMALLEST_TIER_FRACTION).max(1);
        let mut tier = 0;
        while size_bytes >= limit && tier < 64 {
            limit = limit.saturating_mul(self.min_files as u64);
            tier += 1;
        }
        tier
    }

    /// The files to merge next (all of one hour partition), oldest hour
    /// first, or `None` when nothing needs merging at `now_ns`.
    pub fn pick(&self, files: &[FileMeta], now_ns: i64) -> Option<Vec<FileMeta>> {
        let mut small_by_hour: BTreeMap<i64, Vec<&FileMeta>> = BTreeMap::new();
        for file in files.iter().filter(|f| self.is_small(f)) {
            small_by_hour.entry(file.hour).or_default().push(file);
        }
        for (hour, small) in small_by_hour {
            let finished = hour.saturating_add(1).saturating_mul(NS_PER_HOUR).saturating_add(self.settle_ns) <= now_ns;
            let chosen = if finished {
                small
            } else {
                let mut tiers: BTreeMap<u32, Vec<&FileMeta>> = BTreeMap::new();
                for file in small {
                    tiers.entry(self.tier(file.size_bytes)).or_default().push(file);
                }
                match tiers.into_values().find(|tier| tier.len() >= self.min_files) {
                    Some(tier) => tier,
                    None => continue,
                }
            };
            if chosen.len() >= 2 {
                return Some(self.bounded(chosen));
            }
        }
        None
    }

    /// The oldest of `files` (by name, which starts with the WAL checkpoint
    /// or the compaction) up to the input budgets of bytes and rows, at
    /// least two.
    fn bounded(&self, mut files: Vec<&FileMeta>) -> Vec<FileMeta> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let budget = self.target_file_bytes.saturating_mul(MAX_INPUT_TARGETS);
        let (mut bytes, mut rows) = (0u64, 0u64);
        let mut chosen = Vec::new();
        for file in files {
            let over =
                bytes.saturating_add(file.size_bytes) > budget || rows.saturating_add(file.rows) > self.max_input_rows;
            if chosen.len() >= 2 && over {
                break;
            }
            bytes = bytes.saturating_add(file.size_bytes);
            rows = rows.saturating_add(file.rows);
            chosen.push(file.clone());
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn policy() -> Policy {
        Policy { target_file_bytes: 256 * MIB, min_files: 4, settle_ns: 600 * 1_000_000_000, max_input_rows: 1000 }
    }

    fn file(name: &str, hour: i64, size_bytes: u64) -> FileMeta {
        FileMeta { path: format!("h{hour}/{name}"), size_bytes, rows: 1, hour, ranges: BTreeMap::new() }
    }

    fn names(files: Option<Vec<FileMeta>>) -> Vec<String> {
        files.unwrap_or_default().into_iter().map(|f| f.path).collect()
    }

    const HOUR: i64 = 480_000;
    /// In the middle of `HOUR`: it still receives data.
    const DURING: i64 = HOUR * NS_PER_HOUR + NS_PER_HOUR / 2;
    /// Well after `HOUR` ended.
    const AFTER: i64 = (HOUR + 2) * NS_PER_HOUR;

    #[test]
    fn an_open_hour_waits_for_min_files_of_one_tier() {
        let p = policy();
        let three: Vec<_> = (0..3).map(|i| file(&format!("{i}"), HOUR, MIB)).collect();
        assert_eq!(p.pick(&three, DURING), None, "three of four");
        let mut four = three.clone();
        four.push(file("3", HOUR, MIB));
        assert_eq!(names(p.pick(&four, DURING)), ["h480000/0", "h480000/1", "h480000/2", "h480000/3"]);
        // One much larger small file is in another tier and waits for its peers.
        let mut mixed = four.clone();
        mixed.push(file("big", HOUR, 100 * MIB));
        assert_eq!(p.pick(&mixed, DURING).map(|f| f.len()), Some(4));
        assert!(!names(p.pick(&mixed, DURING)).contains(&"h480000/big".to_owned()));
    }

    #[test]
    fn a_finished_hour_merges_every_small_file_and_leaves_large_ones() {
        let p = policy();
        let files = vec![file("a", HOUR, MIB), file("b", HOUR, 100 * MIB), file("large", HOUR, 200 * MIB)];
        assert_eq!(p.pick(&files, DURING), None);
        assert_eq!(names(p.pick(&files, AFTER)), ["h480000/a", "h480000/b"]);
        assert_eq!(p.pick(&[file("a", HOUR, MIB), file("large", HOUR, 200 * MIB)], AFTER), None, "one small file");
    }

    #[test]
    fn oldest_hour_first_and_input_bounded() {
        let p = policy();
        let mut files: Vec<_> = (0..10).map(|i| file(&format!("{i:02}"), HOUR + 1, 127 * MIB)).collect();
        files.push(file("x", HOUR, MIB));
        files.push(file("y", HOUR, MIB));
        assert_eq!(names(p.pick(&files, AFTER + 2 * NS_PER_HOUR)), ["h480000/x", "h480000/y"]);
        let later: Vec<_> = files.into_iter().filter(|f| f.hour == HOUR + 1).collect();
        // 4 × 256 MiB of input at most: eight files of 127 MiB.
        assert_eq!(p.pick(&later, AFTER + 2 * NS_PER_HOUR).map(|f| f.len()), Some(8));
        // And at most max_input_rows (1000) rows: three files of 400 rows would be 1200.
        let rows: Vec<_> = (0..5).map(|i| FileMeta { rows: 400, ..file(&format!("{i}"), HOUR, MIB) }).collect();
        assert_eq!(p.pick(&rows, AFTER).map(|f| f.len()), Some(2));
        let one_big: Vec<_> = (0..3).map(|i| FileMeta { rows: 5000, ..file(&format!("{i}"), HOUR, MIB) }).collect();
        assert_eq!(p.pick(&one_big, AFTER).map(|f| f.len()), Some(2), "at least two files, whatever their rows");
    }

    #[test]
    fn tiers_grow_by_min_files() {
        let p = policy();
        assert_eq!(p.tier(0), 0);
        assert_eq!(p.tier(MIB - 1), 0);
        assert_eq!(p.tier(MIB), 1);
        assert_eq!(p.tier(4 * MIB - 1), 1);
        assert_eq!(p.tier(4 * MIB), 2);
        assert_eq!(p.tier(u64::MAX), 64);
    }
}
