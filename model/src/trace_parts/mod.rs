//! Trace parts: one row per trace per span file (and per buffer), holding
//! what a trace summary needs from that part of the trace — its time span,
//! root candidate, span, error and orphan counts and services — computed
//! from spans by [`derive`].
//!
//! Storage derives these rows from each span file (kept beside it) and from
//! its buffers; the query side merges the parts of each trace (a trace lives
//! on one shard, so per shard) into the `traces` table. Every column merges
//! exactly (min, max, sum, union, first by root order) except the orphan
//! count: a span whose parent is in another part counts as an orphan in its
//! own, so a trace split across files reads as incomplete until compaction
//! writes its hour's spans into one file and the parts become one.

mod derive;

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{ScalarValue, Statistics};

pub use derive::{SOURCE_COLUMNS, derive};

use crate::schema::timestamp_type;

/// Column names of trace parts.
pub mod col {
    pub const TRACE_ID: &str = "trace_id";
    /// Earliest span start in the part.
    pub const START_TIME: &str = "start_time";
    /// Latest span end in the part.
    pub const END_TIME: &str = "end_time";
    /// Latest span start in the part.
    pub const LATEST_START_TIME: &str = "latest_start_time";
    /// The part's root candidate: a span without a parent if there is one
    /// (the earliest, then the smallest span ID), else the earliest span.
    pub const ROOT_SPAN_ID: &str = "root_span_id";
    pub const ROOT_SERVICE_NAME: &str = "root_service_name";
    pub const ROOT_NAME: &str = "root_name";
    pub const ROOT_START_TIME: &str = "root_start_time";
    /// Whether the root candidate has no parent (is the trace's root).
    pub const HAS_ROOT: &str = "has_root";
    pub const SPAN_COUNT: &str = "span_count";
    /// Spans whose status is `error`.
    pub const ERROR_COUNT: &str = "error_count";
    /// Spans with a parent that is not in the part.
    pub const ORPHAN_COUNT: &str = "orphan_count";
    /// Distinct services of the part's spans, sorted.
    pub const SERVICES: &str = "services";
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    let int64 = |name: &str| Field::new(name, DataType::Int64, false);
    let time = |name: &str| Field::new(name, timestamp_type(), false);
    Arc::new(Schema::new(vec![
        utf8(TRACE_ID),
        time(START_TIME),
        time(END_TIME),
        time(LATEST_START_TIME),
        utf8(ROOT_SPAN_ID),
        utf8(ROOT_SERVICE_NAME),
        utf8(ROOT_NAME),
        time(ROOT_START_TIME),
        Field::new(HAS_ROOT, DataType::Boolean, false),
        int64(SPAN_COUNT),
        int64(ERROR_COUNT),
        int64(ORPHAN_COUNT),
        Field::new(SERVICES, DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))), false),
    ]))
});

/// The schema of trace parts, in memory, in files and on the wire.
pub fn trace_parts_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// The newest span start that trace-part `statistics` bound: the maximum
/// of [`col::LATEST_START_TIME`] (`i64::MIN` when the table holds no span),
/// if they bound it.
pub fn newest_span_start_bound(statistics: &Statistics) -> Option<i64> {
    let column = SCHEMA.index_of(col::LATEST_START_TIME).ok()?;
    match statistics.column_statistics.get(column)?.max_value.get_value()? {
        ScalarValue::TimestampNanosecond(Some(newest), _) => Some(*newest),
        _ => None,
    }
}
