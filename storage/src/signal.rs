//! The signals storage holds (spans, metric data points, log records) and what the shared
//! WAL / buffer / flush / manifest machinery needs to know about each: its
//! schema, directory, partition time column, sort order, bloom-filtered
//! columns, manifest time ranges and whether files get a trace-ID index.

use std::sync::OnceLock;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::basic::Encoding;
use skein_model::logs::{col as log_col, log_schema};
use skein_model::metrics::schema::{BLOOM_FILTER_COLUMNS, PARTITION_TIME_COLUMN, SORT_COLUMNS};
use skein_model::metrics::{col as metric_col, metric_schema};
use skein_model::schema::col as span_col;
use skein_model::span_schema;

pub use skein_model::Signal;

/// The storage description of a [`Signal`].
pub(crate) trait SignalExt {
    fn spec(self) -> &'static SignalSpec;
}

impl SignalExt for Signal {
    fn spec(self) -> &'static SignalSpec {
        static SPANS: OnceLock<SignalSpec> = OnceLock::new();
        static METRICS: OnceLock<SignalSpec> = OnceLock::new();
        static LOGS: OnceLock<SignalSpec> = OnceLock::new();
        match self {
            Signal::Spans => SPANS.get_or_init(|| SignalSpec {
                signal: self,
                dir: "spans",
                schema: span_schema(),
                partition_column: span_col::START_TIME,
                // The span ID last, so copies of one span (a client's retry
                // stored twice) are adjacent and the merge keeps one.
                compaction_sort_columns: &[
                    span_col::SERVICE_NAME,
                    span_col::TRACE_ID,
                    span_col::START_TIME,
                    span_col::SPAN_ID,
                ],
                bloom_columns: &[span_col::TRACE_ID, span_col::SERVICE_NAME, span_col::NAME],
                range_columns: &[span_col::START_TIME, span_col::END_TIME],
                trace_index_column: Some(span_col::TRACE_ID),
                plain_columns: &[
                    (span_col::SPAN_ID, Encoding::DELTA_LENGTH_BYTE_ARRAY),
                    (span_col::PARENT_SPAN_ID, Encoding::DELTA_LENGTH_BYTE_ARRAY),
                    (span_col::START_TIME, Encoding::BYTE_STREAM_SPLIT),
                    (span_col::END_TIME, Encoding::BYTE_STREAM_SPLIT),
                    (span_col::DURATION_NS, Encoding::BYTE_STREAM_SPLIT),
                ],
                // Random IDs (trace IDs too, in arrival order) and free text:
                // min/max prune nothing, and computing them costs the flush.
                unindexed_columns: &[
                    span_col::TRACE_ID,
                    span_col::SPAN_ID,
                    span_col::PARENT_SPAN_ID,
                    span_col::TRACE_STATE,
                    span_col::STATUS_MESSAGE,
                    span_col::SPAN_ATTRIBUTE_TYPES,
                    span_col::RESOURCE_ATTRIBUTE_TYPES,
                    span_col::RESOURCE_SCHEMA_URL,
                    span_col::SCOPE_VERSION,
                    span_col::SCOPE_ATTRIBUTE_TYPES,
                    span_col::SCOPE_SCHEMA_URL,
                ],
                attribute_maps: &[span_col::SPAN_ATTRIBUTES, span_col::RESOURCE_ATTRIBUTES],
            }),
            Signal::Metrics => METRICS.get_or_init(|| SignalSpec {
                signal: self,
                dir: "metrics",
                schema: metric_schema(),
                partition_column: PARTITION_TIME_COLUMN,
                compaction_sort_columns: &SORT_COLUMNS,
                bloom_columns: &BLOOM_FILTER_COLUMNS,
                range_columns: &[metric_col::TIME, metric_col::START_TIME],
                trace_index_column: None,
                plain_columns: &[],
                unindexed_columns: &[],
                // Metric queries select by name and series, not by one key.
                attribute_maps: &[],
            }),
            Signal::Logs => LOGS.get_or_init(|| SignalSpec {
                signal: self,
                dir: "logs",
                schema: log_schema(),
                partition_column: log_col::TIMESTAMP,
                compaction_sort_columns: &skein_model::logs::schema::SORT_COLUMNS,
                bloom_columns: &skein_model::logs::schema::BLOOM_FILTER_COLUMNS,
                range_columns: &[log_col::TIMESTAMP],
                trace_index_column: Some(log_col::TRACE_ID),
                plain_columns: &[(log_col::SPAN_ID, Encoding::DELTA_LENGTH_BYTE_ARRAY)],
                // Random IDs and free text: min/max prune nothing.
                unindexed_columns: &[
                    log_col::TRACE_ID,
                    log_col::SPAN_ID,
                    log_col::BODY,
                    log_col::BODY_TYPE,
                    log_col::LOG_ATTRIBUTE_TYPES,
                    log_col::RESOURCE_ATTRIBUTE_TYPES,
                    log_col::RESOURCE_SCHEMA_URL,
                    log_col::SCOPE_VERSION,
                    log_col::SCOPE_ATTRIBUTE_TYPES,
                    log_col::SCOPE_SCHEMA_URL,
                ],
                attribute_maps: &[log_col::LOG_ATTRIBUTES, log_col::RESOURCE_ATTRIBUTES],
            }),
        }
    }
}

/// How one signal is stored.
#[derive(Debug)]
pub(crate) struct SignalSpec {
    pub signal: Signal,
    /// Directory under `shard-NNNN/` holding the signal's manifest, WAL and files.
    pub dir: &'static str,
    pub schema: SchemaRef,
    /// Non-null nanosecond timestamp column whose hour partitions the files.
    pub partition_column: &'static str,
    /// Row order of compacted files (flushes keep arrival order): what the
    /// common queries select on first, so row-group statistics on it are
    /// tight. Spans: by service (searches select on it), then trace, so a
    /// trace's spans sit together and the trace-ID column gets statistics
    /// worth keeping (page pruning of lookups); metric points by series.
    pub compaction_sort_columns: &'static [&'static str],
    pub bloom_columns: &'static [&'static str],
    /// Nanosecond timestamp columns whose per-file min/max the manifest keeps
    /// so scans skip files outside a filter's time range.
    pub range_columns: &'static [&'static str],
    /// Utf8 trace-ID column indexed per file in a `.tidx` sidecar, if any.
    pub trace_index_column: Option<&'static str>,
    /// Columns whose values rarely repeat within a file, with the encoding
    /// that suits them: a dictionary would cost hashing and bytes for nothing.
    pub plain_columns: &'static [(&'static str, Encoding)],
    /// Top-level columns without statistics (nested columns never get them).
    pub unindexed_columns: &'static [&'static str],
    /// Attribute maps whose frequent keys files also store as columns
    /// (module `attribute_columns`).
    pub attribute_maps: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_columns_of_their_schema() {
        for signal in Signal::ALL {
            let spec = signal.spec();
            assert_eq!(spec.signal, signal);
            let schema = signal.schema();
            let columns = spec
                .compaction_sort_columns
                .iter()
                .chain(spec.bloom_columns)
                .chain(spec.range_columns)
                .chain(spec.attribute_maps);
            for column in columns.chain([&spec.partition_column]).chain(spec.trace_index_column.as_ref()) {
                assert!(schema.index_of(column).is_ok(), "{signal}: no column {column}");
            }
            let partition = schema.field_with_name(spec.partition_column).expect("partition column");
            assert!(!partition.is_nullable(), "{signal}: the partition column must not be nullable");
        }
        assert_eq!(Signal::Spans.to_string(), "spans");
        assert_eq!(Signal::Metrics.name(), "metrics");
        assert_eq!(Signal::Logs.name(), "logs");
    }
}
