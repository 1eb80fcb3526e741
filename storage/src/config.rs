//! Storage configuration: where data lives, how many shards, and the limits
//! that bound memory and flush latency. The buffer and queue limits apply to
//! each signal (spans, metrics) of each shard separately, as each has its own
//! WAL writer and buffer: a node buffers at most
//! `shards × 2 × max_buffer_bytes`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use skein_model::security::validate_tenant;

use crate::bucket::ObjectStoreConfig;
use crate::encryption::EncryptionConfig;

/// Most shards one process may host (each has a WAL writer thread per signal).
pub const MAX_SHARDS: usize = 1024;

/// Most tenants `storage.max_tenants` may allow.
pub const MAX_TENANTS: usize = 10_000;

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Root directory; each shard lives in `shard-NNNN/` below it, one
    /// directory per signal (`spans/`, `metrics/`).
    pub data_dir: PathBuf,
    /// Number of shards of the whole cluster (1..=1024): all of them in
    /// all-in-one, those this node owns in a cluster. Fixed for a data directory.
    pub shards: usize,
    /// Buffered bytes of one signal in a shard that trigger a flush to Parquet.
    pub flush_max_bytes: u64,
    /// Maximum age of buffered data before it is flushed.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Buffered bytes per shard and signal (unflushed, including data being
    /// flushed) above which writes are refused as overloaded (429): flushing is behind.
    pub max_buffer_bytes: u64,
    /// Pending write requests per shard and signal; when full, writes are refused as overloaded.
    pub wal_queue_depth: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Drop hour partitions whose whole hour is older than this; `None` keeps data forever.
    #[serde(with = "humantime_serde")]
    pub retention: Option<Duration>,
    /// Keep flushed data (Parquet files and manifests) in an object store,
    /// with the data directory as its cache; unset keeps it on local disk only.
    pub object_store: Option<ObjectStoreConfig>,
    /// Background merging of each hour partition's small files.
    pub compaction: CompactionConfig,
    /// Most tenants one process keeps (each has its own shards, buffers
    /// and WAL writers); a write or query for one more is refused (403).
    pub max_tenants: usize,
    /// Settings of single tenants, by name: `[storage.tenants.team-a]`.
    pub tenants: BTreeMap<String, TenantConfig>,
    /// Most spans one trace may have; further spans are refused and
    /// reported in OTLP `partial_success`. 0: no limit.
    pub max_spans_per_trace: u64,
    /// How long a trace's span count is kept after its last span (between
    /// one and two windows): a trace idle for longer starts from zero.
    #[serde(with = "humantime_serde")]
    pub trace_limit_window: Duration,
    /// Encryption at rest of Parquet files and WAL records; unset: none
    /// (beyond the object store's server-side encryption).
    pub encryption: Option<EncryptionConfig>,
}

/// One tenant's own settings; unset ones are the `[storage]` defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantConfig {
    /// The tenant's retention instead of `storage.retention`.
    #[serde(with = "humantime_serde")]
    pub retention: Option<Duration>,
    /// The tenant's `storage.max_spans_per_trace` (0: no limit).
    pub max_spans_per_trace: Option<u64>,
}

/// How small Parquet files are merged into few large, re-sorted ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionConfig {
    pub enabled: bool,
    /// How often every shard's partitions are checked for work.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Size a compacted file is cut at. Files under half of it are "small"
    /// and get merged; larger ones are left alone.
    pub target_file_bytes: u64,
    /// Small files of about the same size that an hour still receiving
    /// data must have before they are merged (size tiers, so each row is
    /// rewritten a few times at most). A finished hour merges all its small
    /// files once it has two.
    pub min_files: usize,
    /// How long after its end an hour counts as finished (late spans still
    /// arrive for a while).
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
    /// Memory for sorting one compaction's rows; beyond it the sort spills
    /// to temporary files. It also caps a merge's input at one row per 64
    /// bytes of it (so merging the spilled runs stays near the cap). One
    /// compaction runs at a time per node.
    pub memory_bytes: u64,
    /// How long replaced files stay on disk for queries that planned to
    /// read them before the compaction committed; longer than the query
    /// timeout.
    #[serde(with = "humantime_serde")]
    pub retired_file_grace: Duration,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(30),
            target_file_bytes: 128 * MIB,
            min_files: 4,
            settle: Duration::from_secs(10 * 60),
            memory_bytes: 128 * MIB,
            retired_file_grace: Duration::from_secs(10 * 60),
        }
    }
}

impl CompactionConfig {
    fn validate(&self) -> Result<(), String> {
        if self.interval.is_zero() {
            return Err("storage.compaction.interval must be greater than 0 (e.g. \"30s\")".into());
        }
        if self.target_file_bytes < MIB {
            return Err(format!(
                "storage.compaction.target_file_bytes must be at least 1 MiB (got {})",
                self.target_file_bytes
            ));
        }
        if !(2..=1000).contains(&self.min_files) {
            return Err(format!("storage.compaction.min_files must be between 2 and 1000 (got {})", self.min_files));
        }
        if self.memory_bytes < 16 * MIB {
            return Err(format!("storage.compaction.memory_bytes must be at least 16 MiB (got {})", self.memory_bytes));
        }
        Ok(())
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            shards: 1,
            flush_max_bytes: 64 * MIB,
            flush_interval: Duration::from_secs(30),
            max_buffer_bytes: 192 * MIB,
            wal_queue_depth: 1024,
            row_group_rows: 65_536,
            retention: None,
            object_store: None,
            compaction: CompactionConfig::default(),
            max_tenants: 32,
            tenants: BTreeMap::new(),
            max_spans_per_trace: 0,
            trace_limit_window: Duration::from_secs(5 * 60),
            encryption: None,
        }
    }
}

impl StorageConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.data_dir.as_os_str().is_empty() {
            return Err("storage.data_dir must not be empty".into());
        }
        if !(1..=MAX_SHARDS).contains(&self.shards) {
            return Err(format!("storage.shards must be between 1 and {MAX_SHARDS} (got {})", self.shards));
        }
        if self.flush_max_bytes == 0 {
            return Err("storage.flush_max_bytes must be greater than 0".into());
        }
        if self.max_buffer_bytes < self.flush_max_bytes {
            return Err(format!(
                "storage.max_buffer_bytes ({}) must be at least storage.flush_max_bytes ({}), \
                 or writes would be refused before a flush starts",
                self.max_buffer_bytes, self.flush_max_bytes
            ));
        }
        if self.flush_interval.is_zero() {
            return Err("storage.flush_interval must be greater than 0 (e.g. \"30s\")".into());
        }
        if !(1..=1_000_000).contains(&self.wal_queue_depth) {
            return Err(format!(
                "storage.wal_queue_depth must be between 1 and 1000000 (got {})",
                self.wal_queue_depth
            ));
        }
        if !(1..=16 * 1024 * 1024).contains(&self.row_group_rows) {
            return Err(format!("storage.row_group_rows must be between 1 and 16777216 (got {})", self.row_group_rows));
        }
        check_retention("storage.retention", self.retention)?;
        if let Some(encryption) = &self.encryption {
            encryption.validate()?;
        }
        if self.trace_limit_window.is_zero() {
            return Err("storage.trace_limit_window must be greater than 0 (e.g. \"5m\")".into());
        }
        if !(1..=MAX_TENANTS).contains(&self.max_tenants) {
            return Err(format!("storage.max_tenants must be between 1 and {MAX_TENANTS} (got {})", self.max_tenants));
        }
        for (name, tenant) in &self.tenants {
            validate_tenant(name).map_err(|reason| format!("storage.tenants: {reason}"))?;
            check_retention(&format!("storage.tenants.{name}.retention"), tenant.retention)?;
        }
        if let Some(object_store) = &self.object_store {
            object_store.validate()?;
        }
        self.compaction.validate()
    }
}

fn check_retention(key: &str, retention: Option<Duration>) -> Result<(), String> {
    match retention {
        Some(retention) if retention < Duration::from_secs(3600) => Err(format!(
            "{key} must be at least 1h, as data is dropped in whole hour partitions (got {})",
            humantime_serde::re::humantime::format_duration(retention)
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        StorageConfig::default().validate().expect("defaults validate");
    }

    #[test]
    fn parses_humantime_and_rejects_unknown_fields() {
        let config: StorageConfig =
            serde_json::from_str(r#"{"shards": 4, "flush_interval": "5s", "retention": "7days"}"#).expect("parses");
        assert_eq!(config.shards, 4);
        assert_eq!(config.flush_interval, Duration::from_secs(5));
        assert_eq!(config.retention, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(config.row_group_rows, 65_536);
        let unknown = serde_json::from_str::<StorageConfig>(r#"{"shard": 4}"#).expect_err("unknown field");
        assert!(unknown.to_string().contains("unknown field"), "{unknown}");
    }

    #[test]
    fn rejects_bad_values_with_clear_messages() {
        let bad = |f: fn(&mut StorageConfig)| {
            let mut config = StorageConfig::default();
            f(&mut config);
            config.validate().expect_err("invalid")
        };
        assert!(bad(|c| c.shards = 0).contains("storage.shards"));
        assert!(bad(|c| c.shards = 1025).contains("storage.shards"));
        assert!(bad(|c| c.max_buffer_bytes = 1).contains("max_buffer_bytes"));
        assert!(bad(|c| c.flush_interval = Duration::ZERO).contains("flush_interval"));
        assert!(bad(|c| c.wal_queue_depth = 0).contains("wal_queue_depth"));
        assert!(bad(|c| c.row_group_rows = 0).contains("row_group_rows"));
        assert!(bad(|c| c.retention = Some(Duration::from_secs(60))).contains("at least 1h"));
        assert!(bad(|c| c.compaction.min_files = 1).contains("min_files"));
        assert!(bad(|c| c.compaction.target_file_bytes = 10).contains("target_file_bytes"));
        assert!(bad(|c| c.compaction.interval = Duration::ZERO).contains("compaction.interval"));
        assert!(bad(|c| c.max_tenants = 0).contains("storage.max_tenants"));
        assert!(
            bad(|c| {
                c.tenants.insert("../x".into(), TenantConfig::default());
            })
            .contains("\"../x\"")
        );
        assert!(
            bad(|c| {
                c.tenants.insert(
                    "a".into(),
                    TenantConfig { retention: Some(Duration::from_secs(60)), ..TenantConfig::default() },
                );
            })
            .contains("storage.tenants.a.retention must be at least 1h")
        );
    }
}
