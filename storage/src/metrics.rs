//! Prometheus metrics of the storage role, summed over all local shards.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RejectLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    /// Bytes of WAL segments on disk.
    pub wal_bytes: Gauge,
    pub wal_fsyncs: Counter,
    pub wal_records: Counter,
    /// Bytes held in memory, not yet in Parquet (active and being flushed).
    pub buffered_bytes: Gauge,
    pub parquet_files: Gauge,
    pub parquet_bytes: Gauge,
    pub files_written: Counter,
    pub rows_flushed: Counter,
    pub flush_duration: Histogram,
    pub writes_rejected: Family<RejectLabels, Counter>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            wal_bytes: Gauge::default(),
            wal_fsyncs: Counter::default(),
            wal_records: Counter::default(),
            buffered_bytes: Gauge::default(),
            parquet_files: Gauge::default(),
            parquet_bytes: Gauge::default(),
            files_written: Counter::default(),
            rows_flushed: Counter::default(),
            // 10ms .. ~80s
            flush_duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            writes_rejected: Family::default(),
        };
        let skein = registry.sub_registry_with_prefix("skein");
        skein.register("wal_bytes", "Bytes of write-ahead log segments on disk", metrics.wal_bytes.clone());
        skein.register("wal_fsyncs", "Write-ahead log fsyncs (one per group commit)", metrics.wal_fsyncs.clone());
        skein.register("wal_records", "Batches appended to the write-ahead log", metrics.wal_records.clone());
        skein.register(
            "storage_buffered_bytes",
            "Span data held in memory and not yet in Parquet",
            metrics.buffered_bytes.clone(),
        );
        skein.register("storage_parquet_files", "Parquet files in the manifests", metrics.parquet_files.clone());
        skein.register(
            "storage_parquet_bytes",
            "Bytes of Parquet files in the manifests",
            metrics.parquet_bytes.clone(),
        );
        skein.register(
            "storage_parquet_files_written",
            "Parquet files written by flushes",
            metrics.files_written.clone(),
        );
        skein.register("storage_rows_flushed", "Span rows flushed to Parquet", metrics.rows_flushed.clone());
        skein.register(
            "storage_flush_duration_seconds",
            "Time to flush a shard's buffer to Parquet",
            metrics.flush_duration.clone(),
        );
        skein.register(
            "storage_writes_rejected",
            "Writes refused by storage, by reason",
            metrics.writes_rejected.clone(),
        );
        metrics
    }

    pub fn rejected(&self, reason: &'static str) {
        self.writes_rejected.get_or_create(&RejectLabels { reason }).inc();
    }
}

/// Converts a byte count to a gauge value (saturating; gauges are i64).
pub(crate) fn gauge_value(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}
