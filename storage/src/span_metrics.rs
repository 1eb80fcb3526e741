//! The `span_metrics` table of one shard (schema
//! [`skein_model::span_metrics_schema`]): RED rows derived from its spans,
//! kept in a `.red` sidecar per span file (see `derived`).

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::Expr;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use skein_model::schema::col as span_col;
use skein_model::span_metrics::{MINUTE_NS, col};
use skein_model::{ModelError, span_metrics_schema};

use crate::derived::{Derivation, DerivedTable};
use crate::error::StorageError;
use crate::manifest::TimeRange;
use crate::pruning::Pruning;

/// RED rows per (minute, service, operation, kind, status, parent service).
pub(crate) struct SpanMetrics;

/// One shard's span metrics as a DataFusion table.
pub(crate) type SpanMetricsTable = DerivedTable<SpanMetrics>;

impl Derivation for SpanMetrics {
    const EXTENSION: &'static str = "red";
    const SLOT: usize = 0;
    const WHAT: &'static str = "span metrics";
    const SOURCE_COLUMNS: &'static [&'static str] = &[
        span_col::TRACE_ID,
        span_col::SPAN_ID,
        span_col::PARENT_SPAN_ID,
        span_col::SERVICE_NAME,
        span_col::NAME,
        span_col::KIND,
        span_col::STATUS_CODE,
        span_col::START_TIME,
        span_col::DURATION_NS,
    ];

    const TRACE_ID_COLUMN: Option<&'static str> = None;

    fn schema() -> SchemaRef {
        span_metrics_schema()
    }

    fn derive(spans: &[RecordBatch]) -> Result<RecordBatch, ModelError> {
        skein_model::span_metrics::derive(spans)
    }

    fn may_match(span_starts: Option<&TimeRange>, filters: &[Expr]) -> bool {
        let minute = |ns: i64| ns.div_euclid(MINUTE_NS) * MINUTE_NS;
        let bounds = Pruning::bounds_of(col::TIME, filters);
        span_starts.is_none_or(|r| bounds.overlaps(minute(r.min_ns), minute(r.max_ns)))
    }

    fn writer_properties() -> Result<WriterProperties, StorageError> {
        Ok(WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(64 * 1024))
            .build())
    }
}
