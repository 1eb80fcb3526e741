//! Span-derived RED metrics: one row per (minute, service, operation, span
//! kind, status, parent service) with the call and error counts and a
//! mergeable latency histogram, computed from spans by [`derive`].
//!
//! Storage derives these rows from each span file (kept beside it) and from
//! its buffers, so the `span_metrics` table and the `service_graph` view over
//! it answer "rate, errors, duration" and "who calls whom" without scanning
//! spans. `parent_service` is the service of the span's parent when the
//! parent is in the same file: a row whose `parent_service` differs from its
//! `service_name` is a call across services (an edge of the service graph).

mod derive;
pub mod histogram;

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

pub use derive::derive;

use crate::schema::timestamp_type;

/// Column names of the `span_metrics` table.
pub mod col {
    /// Start of the minute the spans started in.
    pub const TIME: &str = "time";
    pub const SERVICE_NAME: &str = "service_name";
    /// The span name (the operation).
    pub const NAME: &str = "name";
    pub const KIND: &str = "kind";
    pub const STATUS_CODE: &str = "status_code";
    /// Service of the parent span; null for roots and parents not found.
    pub const PARENT_SERVICE: &str = "parent_service";
    pub const CALLS: &str = "calls";
    /// Calls whose status is `error`.
    pub const ERRORS: &str = "errors";
    pub const DURATION_SUM_NS: &str = "duration_sum_ns";
    pub const DURATION_MIN_NS: &str = "duration_min_ns";
    pub const DURATION_MAX_NS: &str = "duration_max_ns";
    /// [`super::histogram`] of the durations: `{offset, counts}`.
    pub const DURATION_HISTOGRAM: &str = "duration_histogram";
    pub const HISTOGRAM_OFFSET: &str = "offset";
    pub const HISTOGRAM_COUNTS: &str = "counts";
}

/// The struct type of [`col::DURATION_HISTOGRAM`].
pub fn histogram_type() -> DataType {
    DataType::Struct(histogram_fields())
}

fn histogram_fields() -> Fields {
    Fields::from(vec![
        Field::new(col::HISTOGRAM_OFFSET, DataType::Int32, false),
        Field::new(col::HISTOGRAM_COUNTS, DataType::List(Arc::new(Field::new("item", DataType::Int64, false))), false),
    ])
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    let int64 = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        Field::new(TIME, timestamp_type(), false),
        utf8(SERVICE_NAME),
        utf8(NAME),
        utf8(KIND),
        utf8(STATUS_CODE),
        Field::new(PARENT_SERVICE, DataType::Utf8, true),
        int64(CALLS),
        int64(ERRORS),
        int64(DURATION_SUM_NS),
        int64(DURATION_MIN_NS),
        int64(DURATION_MAX_NS),
        Field::new(DURATION_HISTOGRAM, histogram_type(), false),
    ]))
});

/// The schema of `span_metrics` rows, in memory, in files and on the wire.
pub fn span_metrics_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// Minute granularity of the rows, in nanoseconds.
pub const MINUTE_NS: i64 = 60_000_000_000;
