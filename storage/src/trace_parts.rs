//! The `trace_parts` table of one shard (schema
//! [`skein_model::trace_parts_schema`]): one row per trace per span file or
//! buffer, kept in a `.tparts` sidecar per span file (see `derived`); the
//! query side merges a trace's parts into its summary.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::Expr;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use skein_model::trace_parts::{SOURCE_COLUMNS, col};
use skein_model::{ModelError, trace_parts_schema};

use crate::derived::{Derivation, DerivedTable};
use crate::error::StorageError;
use crate::manifest::TimeRange;
use crate::pruning::Pruning;

/// Per-trace parts of trace summaries.
pub(crate) struct TraceParts;

/// One shard's trace parts as a DataFusion table.
pub(crate) type TracePartsTable = DerivedTable<TraceParts>;

impl Derivation for TraceParts {
    const EXTENSION: &'static str = "tparts";
    const WHAT: &'static str = "trace parts";
    const SOURCE_COLUMNS: &'static [&'static str] = &SOURCE_COLUMNS;

    const TRACE_ID_COLUMN: Option<&'static str> = Some(col::TRACE_ID);

    fn schema() -> SchemaRef {
        trace_parts_schema()
    }

    fn derive(spans: &[RecordBatch]) -> Result<RecordBatch, ModelError> {
        skein_model::trace_parts::derive(spans)
    }

    /// Every time in a part but its end is the start of one of its spans.
    fn may_match(span_starts: Option<&TimeRange>, filters: &[Expr]) -> bool {
        let Some(range) = span_starts else { return true };
        [col::START_TIME, col::LATEST_START_TIME, col::ROOT_START_TIME]
            .into_iter()
            .all(|column| Pruning::bounds_of(column, filters).overlaps(range.min_ns, range.max_ns))
    }

    /// Rows are sorted by trace ID, so page statistics find a trace's part
    /// (a lookup of search results reads a page per file).
    fn writer_properties() -> Result<WriterProperties, StorageError> {
        Ok(WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(64 * 1024))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(4096)
            .build())
    }
}
