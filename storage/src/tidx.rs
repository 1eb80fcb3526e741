//! The per-file trace-ID index (`<file>.tidx` sidecars).
//!
//! Each Parquet file gets the sorted, distinct 64-bit keys of the trace IDs
//! it holds, so a trace lookup opens only files that may contain the trace,
//! with no time range. A key folds the two halves of the 128-bit ID together
//! (`high ^ low`), so 64-bit tracer IDs (zero high half) still spread out.
//! Collisions only cost a wasted file open. Sidecar layout:
//! `magic (8) | complete: u8 | count: u64 LE | count × key: u64 LE | crc32 LE`.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::StringArray;

use crate::error::{IoContext, StorageError};
use crate::fsutil::tmp_path;

const MAGIC: &[u8; 8] = b"SKTIDX1\n";

/// The index key of a trace ID given as 32 hex digits (either case);
/// `None` for anything else, which no stored span can have.
pub(crate) fn trace_key(hex: &str) -> Option<u64> {
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let high = u64::from_str_radix(&hex[..16], 16).ok()?;
    let low = u64::from_str_radix(&hex[16..], 16).ok()?;
    Some(high ^ low)
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TraceIndex {
    keys: Arc<[u64]>,
    /// False when some row's trace ID is not 32 hex digits; such a file is
    /// never skipped, since its IDs have no key.
    complete: bool,
}

/// Collects the keys of a file's trace IDs as its rows are written.
#[derive(Debug)]
pub(crate) struct TraceIndexBuilder {
    keys: Vec<u64>,
    complete: bool,
}

impl Default for TraceIndexBuilder {
    fn default() -> Self {
        Self { keys: Vec::new(), complete: true }
    }
}

impl TraceIndexBuilder {
    pub fn add(&mut self, trace_ids: &StringArray) {
        // A null ID (a log record without a trace) matches no lookup.
        for id in trace_ids.iter().flatten() {
            match trace_key(id) {
                // Rows sorted by trace repeat the last key: skip it early.
                Some(key) if self.keys.last() == Some(&key) => {}
                Some(key) => self.keys.push(key),
                None => self.complete = false,
            }
        }
    }

    pub fn finish(mut self) -> TraceIndex {
        self.keys.sort_unstable();
        self.keys.dedup();
        TraceIndex { keys: self.keys.into(), complete: self.complete }
    }
}

impl TraceIndex {
    pub fn build<'a>(trace_ids: impl IntoIterator<Item = &'a StringArray>) -> Self {
        let mut builder = TraceIndexBuilder::default();
        for array in trace_ids {
            builder.add(array);
        }
        builder.finish()
    }

    /// Whether the file may hold any of `keys`.
    pub fn may_contain_any(&self, keys: &[u64]) -> bool {
        !self.complete || keys.iter().any(|k| self.keys.binary_search(k).is_ok())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 1 + 8 + self.keys.len() * 8 + 4);
        out.extend_from_slice(MAGIC);
        out.push(u8::from(self.complete));
        out.extend_from_slice(&(self.keys.len() as u64).to_le_bytes());
        for key in self.keys.iter() {
            out.extend_from_slice(&key.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let body_len = bytes.len().checked_sub(4).ok_or("file too short")?;
        let (body, crc) = bytes.split_at(body_len);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err("checksum mismatch".into());
        }
        let rest = body.strip_prefix(MAGIC).ok_or("not a trace index file")?;
        let (&complete, rest) = rest.split_first().ok_or("file too short")?;
        let (count, rest) = rest.split_at_checked(8).ok_or("file too short")?;
        let count = u64::from_le_bytes(count.try_into().map_err(|_| "file too short")?) as usize;
        if rest.len() != count.checked_mul(8).ok_or("bad key count")? {
            return Err(format!("expected {count} keys, found {} bytes", rest.len()));
        }
        let keys: Vec<u64> = rest
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        if keys.windows(2).any(|w| w[0] >= w[1]) {
            return Err("keys are not sorted and distinct".into());
        }
        Ok(Self { keys: keys.into(), complete: complete != 0 })
    }

    /// Writes the sidecar under a temporary name, syncs it and renames it into
    /// place. The caller syncs the directory.
    pub fn write(&self, path: &Path) -> Result<(), StorageError> {
        let tmp = tmp_path(path);
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&self.encode())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().ctx(|| format!("writing {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<Self, StorageError> {
        let bytes = std::fs::read(path).ctx(|| format!("reading {}", path.display()))?;
        Self::decode(&bytes).map_err(|reason| StorageError::corrupt(path, reason))
    }
}

/// The sidecar path of a Parquet file.
pub(crate) fn sidecar_path(parquet: &Path) -> std::path::PathBuf {
    parquet.with_extension("tidx")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "00000000000000000000000000abcdef";

    #[test]
    fn keys_fold_both_halves_and_ignore_case() {
        assert_eq!(trace_key(A), Some(0));
        assert_eq!(trace_key(B), Some(0xabcdef));
        assert_eq!(trace_key(&B.to_uppercase()), Some(0xabcdef));
        assert_eq!(trace_key("abc"), None);
        assert_eq!(trace_key(&"g".repeat(32)), None);
    }

    #[test]
    fn lookups_and_encoding_round_trip() {
        let ids = StringArray::from(vec![A, B, A]);
        let index = TraceIndex::build([&ids]);
        assert_eq!(index.len(), 2);
        assert!(index.may_contain_any(&[0xabcdef]));
        assert!(index.may_contain_any(&[5, 0]));
        assert!(!index.may_contain_any(&[5]));
        assert!(!index.may_contain_any(&[]));
        assert_eq!(TraceIndex::decode(&index.encode()).expect("decodes"), index);

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.tidx");
        index.write(&path).expect("writes");
        assert_eq!(TraceIndex::read(&path).expect("reads"), index);

        let mut corrupt = index.encode();
        corrupt[12] ^= 1;
        assert_eq!(TraceIndex::decode(&corrupt).expect_err("corrupt"), "checksum mismatch");
        assert!(TraceIndex::decode(&[1, 2]).is_err());
    }

    #[test]
    fn files_with_unindexable_ids_are_never_skipped() {
        let ids = StringArray::from(vec![A, "not-hex"]);
        let index = TraceIndex::build([&ids]);
        assert!(index.may_contain_any(&[42]));
        assert!(index.may_contain_any(&[]));
    }
}
