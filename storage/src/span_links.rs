//! The `span_links` table of one shard (schema
//! [`skein_model::span_links_schema`]): one row per span link, by the span
//! it points at, kept in a `.links` sidecar per span file (see `derived`),
//! so the spans linking to a span are found without reading every span's
//! links.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::Expr;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use skein_model::span_links::{SOURCE_COLUMNS, col};
use skein_model::{ModelError, span_links_schema};

use crate::derived::{Derivation, DerivedTable};
use crate::error::StorageError;
use crate::manifest::TimeRange;
use crate::pruning::Pruning;

/// Span links by target.
pub(crate) struct SpanLinks;

/// One shard's span links as a DataFusion table.
pub(crate) type SpanLinksTable = DerivedTable<SpanLinks>;

impl Derivation for SpanLinks {
    const EXTENSION: &'static str = "links";
    const SLOT: usize = 2;
    const WHAT: &'static str = "span links";
    const SOURCE_COLUMNS: &'static [&'static str] = &SOURCE_COLUMNS;

    /// Rows are keyed by the linked trace, which lives on any shard: the
    /// span file's trace index says nothing about it.
    const TRACE_ID_COLUMN: Option<&'static str> = None;

    fn schema() -> SchemaRef {
        span_links_schema()
    }

    fn derive(spans: &[RecordBatch]) -> Result<RecordBatch, ModelError> {
        skein_model::span_links::derive(spans)
    }

    /// A row's time is the start of the span that carries the link.
    fn may_match(span_starts: Option<&TimeRange>, filters: &[Expr]) -> bool {
        let bounds = Pruning::bounds_of(col::START_TIME, filters);
        span_starts.is_none_or(|r| bounds.overlaps(r.min_ns, r.max_ns))
    }

    /// Rows are sorted by linked trace, so page statistics find a target's
    /// links (a lookup reads a page per file that has any).
    fn writer_properties() -> Result<WriterProperties, StorageError> {
        Ok(WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(64 * 1024))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(4096)
            .build())
    }
}
