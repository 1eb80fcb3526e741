//! The `trace_parts` table of one shard (schema
//! [`skein_model::trace_parts_schema`]): one row per trace per span file or
//! buffer, kept in a `.tparts` sidecar per span file (see `derived`); the
//! query side merges a trace's parts into its summary.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::Expr;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use skein_model::trace_parts::{SOURCE_COLUMNS, col};
use skein_model::{ModelError, trace_parts_schema};

use crate::derived::{Derivation, DerivedTable};
use crate::error::StorageError;
use crate::manifest::TimeRange;
use crate::parquet_files::BLOOM_FILTER_FPP;
use crate::pruning::Pruning;

/// Rows per row group of a sidecar.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Per-trace parts of trace summaries.
pub(crate) struct TraceParts;

/// One shard's trace parts as a DataFusion table.
pub(crate) type TracePartsTable = DerivedTable<TraceParts>;

impl Derivation for TraceParts {
    const EXTENSION: &'static str = "tparts";
    const SLOT: usize = 1;
    const WHAT: &'static str = "trace parts";
    const SOURCE_COLUMNS: &'static [&'static str] = &SOURCE_COLUMNS;

    const TRACE_ID_COLUMN: Option<&'static str> = Some(col::TRACE_ID);
    /// Every time in a part but its end.
    const SPAN_START_COLUMNS: &'static [&'static str] =
        &[col::START_TIME, col::LATEST_START_TIME, col::ROOT_START_TIME];

    fn schema() -> SchemaRef {
        trace_parts_schema()
    }

    fn derive(spans: &[RecordBatch]) -> Result<RecordBatch, ModelError> {
        skein_model::trace_parts::derive(spans)
    }

    fn may_match(span_starts: Option<&TimeRange>, filters: &[Expr]) -> bool {
        let Some(range) = span_starts else { return true };
        Self::SPAN_START_COLUMNS
            .iter()
            .all(|column| Pruning::bounds_of(column, filters).overlaps(range.min_ns, range.max_ns))
    }

    /// Rows are in time order (latest span start), so statistics prune a
    /// search window to the newest row groups and pages; a lookup by trace
    /// ID (the summaries of search results) finds its row groups through a
    /// bloom filter on the trace ID.
    fn writer_properties() -> Result<WriterProperties, StorageError> {
        let trace_id = ColumnPath::from(col::TRACE_ID);
        Ok(WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(4096)
            .set_column_bloom_filter_enabled(trace_id.clone(), true)
            .set_column_bloom_filter_fpp(trace_id.clone(), BLOOM_FILTER_FPP)
            .set_column_bloom_filter_max_ndv(trace_id, ROW_GROUP_ROWS as u64)
            .build())
    }
}
