//! Prometheus metrics of the storage role, summed over all local shards and
//! labelled by signal (`signal="spans"` / `signal="metrics"`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::signal::Signal;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    signal: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    signal: &'static str,
    reason: &'static str,
}

type HistogramFamily = Family<SignalLabels, Histogram, fn() -> Histogram>;

fn flush_duration_histogram() -> Histogram {
    // 10ms .. ~80s
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

fn compaction_duration_histogram() -> Histogram {
    // 50ms .. ~14min
    Histogram::new(exponential_buckets(0.05, 2.0, 15))
}

/// The metric families, registered once per [`crate::Storage`].
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    wal_bytes: Family<SignalLabels, Gauge>,
    wal_fsyncs: Family<SignalLabels, Counter>,
    wal_records: Family<SignalLabels, Counter>,
    buffered_bytes: Family<SignalLabels, Gauge>,
    parquet_files: Family<SignalLabels, Gauge>,
    parquet_bytes: Family<SignalLabels, Gauge>,
    files_written: Family<SignalLabels, Counter>,
    rows_flushed: Family<SignalLabels, Counter>,
    flush_duration: HistogramFamily,
    writes_rejected: Family<RejectLabels, Counter>,
    rows_refused: Family<RejectLabels, Counter>,
    duplicate_batches: Family<SignalLabels, Counter>,
    compactions: Family<SignalLabels, Counter>,
    files_compacted: Family<SignalLabels, Counter>,
    compaction_bytes_written: Family<SignalLabels, Counter>,
    compaction_duration: HistogramFamily,
    copies_dropped: Family<SignalLabels, Counter>,
}

/// The metrics of one signal, shared by all its shards.
#[derive(Debug, Clone)]
pub(crate) struct SignalMetrics {
    signal: &'static str,
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
    writes_rejected: Family<RejectLabels, Counter>,
    rows_refused: Family<RejectLabels, Counter>,
    /// Batches acknowledged without writing: repeats of a recent batch.
    pub duplicate_batches: Counter,
    pub compactions: Counter,
    /// Files replaced by compactions.
    pub files_compacted: Counter,
    pub compaction_bytes_written: Counter,
    pub compaction_duration: Histogram,
    /// Repeated rows (one span stored twice) compactions left out.
    pub copies_dropped: Counter,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            wal_bytes: Family::default(),
            wal_fsyncs: Family::default(),
            wal_records: Family::default(),
            buffered_bytes: Family::default(),
            parquet_files: Family::default(),
            parquet_bytes: Family::default(),
            files_written: Family::default(),
            rows_flushed: Family::default(),
            flush_duration: Family::new_with_constructor(flush_duration_histogram),
            writes_rejected: Family::default(),
            rows_refused: Family::default(),
            duplicate_batches: Family::default(),
            compactions: Family::default(),
            files_compacted: Family::default(),
            compaction_bytes_written: Family::default(),
            compaction_duration: Family::new_with_constructor(compaction_duration_histogram),
            copies_dropped: Family::default(),
        };
        let skein = registry.sub_registry_with_prefix("skein");
        skein.register("wal_bytes", "Bytes of write-ahead log segments on disk", metrics.wal_bytes.clone());
        skein.register("wal_fsyncs", "Write-ahead log fsyncs (one per group commit)", metrics.wal_fsyncs.clone());
        skein.register("wal_records", "Batches appended to the write-ahead log", metrics.wal_records.clone());
        skein.register(
            "storage_buffered_bytes",
            "Data held in memory and not yet in Parquet",
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
        skein.register("storage_rows_flushed", "Rows flushed to Parquet", metrics.rows_flushed.clone());
        skein.register(
            "storage_flush_duration_seconds",
            "Time to flush one signal of a shard to Parquet",
            metrics.flush_duration.clone(),
        );
        skein.register(
            "storage_writes_rejected",
            "Writes refused by storage, by reason",
            metrics.writes_rejected.clone(),
        );
        skein.register(
            "storage_rows_refused",
            "Rows of acknowledged writes that storage left out under a per-tenant limit, by reason",
            metrics.rows_refused.clone(),
        );
        skein.register(
            "storage_duplicate_batches",
            "Batches acknowledged without storing them again: repeats of a recently acknowledged batch (client retries)",
            metrics.duplicate_batches.clone(),
        );
        skein.register("storage_compactions", "Compactions committed", metrics.compactions.clone());
        skein.register(
            "storage_files_compacted",
            "Parquet files replaced by compactions",
            metrics.files_compacted.clone(),
        );
        skein.register(
            "storage_compaction_written_bytes",
            "Bytes of Parquet files written by compactions",
            metrics.compaction_bytes_written.clone(),
        );
        skein.register(
            "storage_compaction_duration_seconds",
            "Time to merge and commit one compaction",
            metrics.compaction_duration.clone(),
        );
        skein.register(
            "storage_compaction_copies_dropped",
            "Repeated rows (a span stored twice by a late client retry) that compactions kept once",
            metrics.copies_dropped.clone(),
        );
        // Every signal's series exist from the start, at zero.
        for signal in Signal::ALL {
            metrics.signal(signal);
        }
        metrics
    }

    /// The metrics labelled with `signal`.
    pub fn signal(&self, signal: Signal) -> SignalMetrics {
        let labels = SignalLabels { signal: signal.name() };
        SignalMetrics {
            signal: labels.signal,
            wal_bytes: self.wal_bytes.get_or_create_owned(&labels),
            wal_fsyncs: self.wal_fsyncs.get_or_create_owned(&labels),
            wal_records: self.wal_records.get_or_create_owned(&labels),
            buffered_bytes: self.buffered_bytes.get_or_create_owned(&labels),
            parquet_files: self.parquet_files.get_or_create_owned(&labels),
            parquet_bytes: self.parquet_bytes.get_or_create_owned(&labels),
            files_written: self.files_written.get_or_create_owned(&labels),
            rows_flushed: self.rows_flushed.get_or_create_owned(&labels),
            flush_duration: self.flush_duration.get_or_create_owned(&labels),
            writes_rejected: self.writes_rejected.clone(),
            rows_refused: self.rows_refused.clone(),
            duplicate_batches: self.duplicate_batches.get_or_create_owned(&labels),
            compactions: self.compactions.get_or_create_owned(&labels),
            files_compacted: self.files_compacted.get_or_create_owned(&labels),
            compaction_bytes_written: self.compaction_bytes_written.get_or_create_owned(&labels),
            compaction_duration: self.compaction_duration.get_or_create_owned(&labels),
            copies_dropped: self.copies_dropped.get_or_create_owned(&labels),
        }
    }
}

impl SignalMetrics {
    pub fn rejected(&self, reason: &'static str) {
        self.writes_rejected.get_or_create(&RejectLabels { signal: self.signal, reason }).inc();
    }

    /// Counts `rows` of a write left out under a limit.
    pub fn refused_rows(&self, reason: &'static str, rows: u64) {
        self.rows_refused.get_or_create(&RejectLabels { signal: self.signal, reason }).inc_by(rows);
    }
}

/// Converts a byte count to a gauge value (saturating; gauges are i64).
pub(crate) fn gauge_value(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// What the storages of one process's tenants share: the metric families
/// (summed over tenants) and the one compaction that runs at a time.
#[derive(Debug, Clone)]
pub(crate) struct ProcessShared {
    pub(crate) metrics: Metrics,
    /// Tenants whose storage is open.
    pub(crate) tenants: Gauge,
    /// One permit: compactions of every tenant take turns, so their memory
    /// stays within one `storage.compaction.memory_bytes`.
    compactions: std::sync::Arc<tokio::sync::Semaphore>,
}

impl ProcessShared {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let tenants = Gauge::default();
        registry.register("skein_storage_tenants", "Tenants whose storage is open in this process", tenants.clone());
        let metrics = Metrics::register(registry);
        Self { metrics, tenants, compactions: std::sync::Arc::new(tokio::sync::Semaphore::new(1)) }
    }

    /// Waits for the turn to run one merge.
    pub(crate) async fn compaction_slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.compactions.acquire().await.expect("the compaction semaphore is never closed")
    }
}
