//! The Arrow schema of the `metrics` table: one row per OTLP data point,
//! all five point types in one schema. Columns that do not apply to a
//! point's type are null (free in Parquet). See ARCHITECTURE.md.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};

use crate::schema::{attribute_fields, attributes_type, resource_scope_fields, timestamp_type};

/// Column names of the `metrics` table, in schema order.
pub mod col {
    pub const METRIC_NAME: &str = "metric_name";
    pub const METRIC_TYPE: &str = "metric_type";
    pub const UNIT: &str = "unit";
    pub const DESCRIPTION: &str = "description";
    pub const METRIC_METADATA: &str = "metric_metadata";
    pub const METRIC_METADATA_TYPES: &str = "metric_metadata_types";
    pub const SERIES_ID: &str = "series_id";
    pub const SERVICE_NAME: &str = "service_name";
    // The resource and scope columns, named as in the `spans` table.
    pub use crate::schema::col::{
        RESOURCE_ATTRIBUTE_TYPES, RESOURCE_ATTRIBUTES, RESOURCE_DROPPED_ATTRIBUTES_COUNT, RESOURCE_SCHEMA_URL,
        SCOPE_ATTRIBUTE_TYPES, SCOPE_ATTRIBUTES, SCOPE_DROPPED_ATTRIBUTES_COUNT, SCOPE_NAME, SCOPE_SCHEMA_URL,
        SCOPE_VERSION,
    };
    pub const ATTRIBUTES: &str = "attributes";
    pub const ATTRIBUTE_TYPES: &str = "attribute_types";
    pub const START_TIME: &str = "start_time";
    pub const TIME: &str = "time";
    pub const FLAGS: &str = "flags";
    pub const AGGREGATION_TEMPORALITY: &str = "aggregation_temporality";
    pub const IS_MONOTONIC: &str = "is_monotonic";
    pub const VALUE: &str = "value";
    pub const VALUE_INT: &str = "value_int";
    pub const COUNT: &str = "count";
    pub const SUM: &str = "sum";
    pub const MIN: &str = "min";
    pub const MAX: &str = "max";
    pub const EXPLICIT_BOUNDS: &str = "explicit_bounds";
    pub const BUCKET_COUNTS: &str = "bucket_counts";
    pub const SCALE: &str = "scale";
    pub const ZERO_COUNT: &str = "zero_count";
    pub const ZERO_THRESHOLD: &str = "zero_threshold";
    pub const POSITIVE_OFFSET: &str = "positive_offset";
    pub const NEGATIVE_OFFSET: &str = "negative_offset";
    pub const POSITIVE_BUCKET_COUNTS: &str = "positive_bucket_counts";
    pub const NEGATIVE_BUCKET_COUNTS: &str = "negative_bucket_counts";
    pub const QUANTILE_VALUES: &str = "quantile_values";
    pub const EXEMPLARS: &str = "exemplars";

    /// Field names inside the `quantile_values` and `exemplars` structs.
    pub mod nested {
        pub const QUANTILE: &str = "quantile";
        pub const VALUE: &str = "value";
        pub const TIME: &str = "time";
        pub const VALUE_INT: &str = "value_int";
        pub const TRACE_ID: &str = "trace_id";
        pub const SPAN_ID: &str = "span_id";
        pub const FILTERED_ATTRIBUTES: &str = "filtered_attributes";
        pub const FILTERED_ATTRIBUTE_TYPES: &str = "filtered_attribute_types";
    }
}

/// Values of the `metric_type` column.
pub mod metric_type {
    pub const GAUGE: &str = "gauge";
    pub const SUM: &str = "sum";
    pub const HISTOGRAM: &str = "histogram";
    pub const EXPONENTIAL_HISTOGRAM: &str = "exponential_histogram";
    pub const SUMMARY: &str = "summary";
    /// Every type, in the order of the per-type SQL views.
    pub const ALL: [&str; 5] = [GAUGE, SUM, HISTOGRAM, EXPONENTIAL_HISTOGRAM, SUMMARY];
}

/// Values of the `aggregation_temporality` column (other numbers are kept as
/// their decimal text, so nothing is lost).
pub mod temporality {
    pub const UNSPECIFIED: &str = "unspecified";
    pub const DELTA: &str = "delta";
    pub const CUMULATIVE: &str = "cumulative";
}

/// Compacted metric files are sorted by these columns: one series' points
/// are contiguous and in time order, and a metric's series are adjacent.
pub const SORT_COLUMNS: [&str; 3] = [col::METRIC_NAME, col::SERIES_ID, col::TIME];
/// Columns with Parquet bloom filters (point lookups by name or series).
pub const BLOOM_FILTER_COLUMNS: [&str; 2] = [col::METRIC_NAME, col::SERIES_ID];
/// The column whose hour partitions metric files.
pub const PARTITION_TIME_COLUMN: &str = col::TIME;

/// Item field of the plain numeric list columns.
pub fn list_item(data_type: DataType) -> FieldRef {
    Arc::new(Field::new("item", data_type, false))
}

/// `List<Float64>` (`explicit_bounds`).
pub fn f64_list_type() -> DataType {
    DataType::List(list_item(DataType::Float64))
}

/// `List<UInt64>` (bucket counts).
pub fn u64_list_type() -> DataType {
    DataType::List(list_item(DataType::UInt64))
}

pub fn quantile_fields() -> Fields {
    use col::nested::*;
    Fields::from(vec![Field::new(QUANTILE, DataType::Float64, false), Field::new(VALUE, DataType::Float64, false)])
}

pub fn exemplar_fields() -> Fields {
    use col::nested::*;
    Fields::from(vec![
        Field::new(TIME, timestamp_type(), false),
        // Null only when the exemplar carries no value at all.
        Field::new(VALUE, DataType::Float64, true),
        Field::new(VALUE_INT, DataType::Int64, true),
        Field::new(TRACE_ID, DataType::Utf8, true),
        Field::new(SPAN_ID, DataType::Utf8, true),
        Field::new(FILTERED_ATTRIBUTES, attributes_type(), false),
        Field::new(FILTERED_ATTRIBUTE_TYPES, DataType::Utf8, true),
    ])
}

static METRIC_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    let u32f = |name: &str| Field::new(name, DataType::UInt32, false);
    let opt = |name: &str, t: DataType| Field::new(name, t, true);
    let mut fields = vec![utf8(METRIC_NAME), utf8(METRIC_TYPE), utf8(UNIT), utf8(DESCRIPTION)];
    fields.extend(attribute_fields(METRIC_METADATA, METRIC_METADATA_TYPES));
    fields.extend([utf8(SERIES_ID), utf8(SERVICE_NAME)]);
    fields.extend(resource_scope_fields());
    fields.extend(attribute_fields(ATTRIBUTES, ATTRIBUTE_TYPES));
    fields.extend([
        opt(START_TIME, timestamp_type()),
        Field::new(TIME, timestamp_type(), false),
        u32f(FLAGS),
        opt(AGGREGATION_TEMPORALITY, DataType::Utf8),
        opt(IS_MONOTONIC, DataType::Boolean),
        opt(VALUE, DataType::Float64),
        opt(VALUE_INT, DataType::Int64),
        opt(COUNT, DataType::UInt64),
        opt(SUM, DataType::Float64),
        opt(MIN, DataType::Float64),
        opt(MAX, DataType::Float64),
        opt(EXPLICIT_BOUNDS, f64_list_type()),
        opt(BUCKET_COUNTS, u64_list_type()),
        opt(SCALE, DataType::Int32),
        opt(ZERO_COUNT, DataType::UInt64),
        opt(ZERO_THRESHOLD, DataType::Float64),
        opt(POSITIVE_OFFSET, DataType::Int32),
        opt(NEGATIVE_OFFSET, DataType::Int32),
        opt(POSITIVE_BUCKET_COUNTS, u64_list_type()),
        opt(NEGATIVE_BUCKET_COUNTS, u64_list_type()),
        opt(QUANTILE_VALUES, DataType::List(crate::schema::list_item(quantile_fields()))),
        Field::new(EXEMPLARS, DataType::List(crate::schema::list_item(exemplar_fields())), false),
    ]);
    Arc::new(Schema::new(fields))
});

/// The schema of every metric point batch, in memory, in the WAL and in Parquet.
pub fn metric_schema() -> SchemaRef {
    Arc::clone(&METRIC_SCHEMA)
}

/// OTLP `AggregationTemporality` as stored in `aggregation_temporality`.
pub fn temporality_name(value: i32) -> std::borrow::Cow<'static, str> {
    match value {
        0 => temporality::UNSPECIFIED.into(),
        1 => temporality::DELTA.into(),
        2 => temporality::CUMULATIVE.into(),
        other => other.to_string().into(),
    }
}

pub fn temporality_from_name(name: &str) -> Option<i32> {
    Some(match name {
        temporality::UNSPECIFIED => 0,
        temporality::DELTA => 1,
        temporality::CUMULATIVE => 2,
        other => return other.parse().ok(),
    })
}
