//! The Arrow schema of the `logs` table: one row per OTLP log record,
//! lossless. `timestamp` is what queries and partitions use: the record's
//! time, else its observed time, else when Skein received it; `time` and
//! `observed_time` keep what was sent (null for unset). See ARCHITECTURE.md.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::schema::{attribute_fields, resource_scope_fields, timestamp_type};

/// Column names of the `logs` table, in schema order.
pub mod col {
    pub const TIMESTAMP: &str = "timestamp";
    pub const TIME: &str = "time";
    pub const OBSERVED_TIME: &str = "observed_time";
    pub const SEVERITY_NUMBER: &str = "severity_number";
    pub const SEVERITY_TEXT: &str = "severity_text";
    pub const BODY: &str = "body";
    pub const BODY_TYPE: &str = "body_type";
    pub const EVENT_NAME: &str = "event_name";
    pub const TRACE_ID: &str = "trace_id";
    pub const SPAN_ID: &str = "span_id";
    pub const FLAGS: &str = "flags";
    pub const SERVICE_NAME: &str = "service_name";
    pub const LOG_ATTRIBUTES: &str = "log_attributes";
    pub const LOG_ATTRIBUTE_TYPES: &str = "log_attribute_types";
    pub const DROPPED_ATTRIBUTES_COUNT: &str = "dropped_attributes_count";
    // The resource and scope columns, named as in the `spans` table.
    pub use crate::schema::col::{
        RESOURCE_ATTRIBUTE_TYPES, RESOURCE_ATTRIBUTES, RESOURCE_DROPPED_ATTRIBUTES_COUNT, RESOURCE_SCHEMA_URL,
        SCOPE_ATTRIBUTE_TYPES, SCOPE_ATTRIBUTES, SCOPE_DROPPED_ATTRIBUTES_COUNT, SCOPE_NAME, SCOPE_SCHEMA_URL,
        SCOPE_VERSION,
    };
}

/// Row order within a compacted file: by service, then time, so row-group
/// statistics prune the searches the UI runs (a service, a time range).
pub const SORT_COLUMNS: [&str; 2] = [col::SERVICE_NAME, col::TIMESTAMP];

/// Columns with Parquet bloom filters: equality lookups by trace and service.
pub const BLOOM_FILTER_COLUMNS: [&str; 2] = [col::TRACE_ID, col::SERVICE_NAME];

static LOG_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    let [attrs, attr_types] = attribute_fields(LOG_ATTRIBUTES, LOG_ATTRIBUTE_TYPES);
    let mut fields = vec![
        Field::new(TIMESTAMP, timestamp_type(), false),
        Field::new(TIME, timestamp_type(), true),
        Field::new(OBSERVED_TIME, timestamp_type(), true),
        Field::new(SEVERITY_NUMBER, DataType::Int32, false),
        Field::new(SEVERITY_TEXT, DataType::Utf8, false),
        // Null when the record has no body; `body_type` is the attribute type
        // code of a non-string body (null for strings, as for attributes).
        Field::new(BODY, DataType::Utf8, true),
        Field::new(BODY_TYPE, DataType::Utf8, true),
        Field::new(EVENT_NAME, DataType::Utf8, false),
        // Lowercase hex as sent, null when absent.
        Field::new(TRACE_ID, DataType::Utf8, true),
        Field::new(SPAN_ID, DataType::Utf8, true),
        Field::new(FLAGS, DataType::UInt32, false),
        Field::new(SERVICE_NAME, DataType::Utf8, false),
        attrs,
        attr_types,
        Field::new(DROPPED_ATTRIBUTES_COUNT, DataType::UInt32, false),
    ];
    fields.extend(resource_scope_fields());
    Arc::new(Schema::new(fields))
});

/// The schema of every log batch, in memory, in the WAL and in Parquet.
pub fn log_schema() -> SchemaRef {
    Arc::clone(&LOG_SCHEMA)
}

/// The severity bands of OTLP's `SeverityNumber`, lowest first: each covers
/// four numbers (`trace` 1–4 ... `fatal` 21–24).
pub const SEVERITY_BANDS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];

/// The band of a severity number: `unspecified` for 0 and numbers outside
/// OTLP's range.
pub fn severity_band(number: i32) -> &'static str {
    match number {
        1..=24 => SEVERITY_BANDS[(number as usize - 1) / 4],
        _ => "unspecified",
    }
}

/// The lowest severity number of a band name (`warn` → 13), or of a number
/// given as text (1..24), for "at least this severe" filters.
pub fn severity_floor(text: &str) -> Option<i32> {
    let lower = text.to_ascii_lowercase();
    let band = match lower.as_str() {
        "warning" => Some(3),
        "critical" => Some(5),
        other => SEVERITY_BANDS.iter().position(|b| *b == other),
    };
    match band {
        Some(i) => Some(i as i32 * 4 + 1),
        None => text.parse().ok().filter(|n| (1..=24).contains(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_otlp_numbers() {
        assert_eq!(severity_band(0), "unspecified");
        assert_eq!(severity_band(1), "trace");
        assert_eq!(severity_band(4), "trace");
        assert_eq!(severity_band(9), "info");
        assert_eq!(severity_band(17), "error");
        assert_eq!(severity_band(24), "fatal");
        assert_eq!(severity_band(25), "unspecified");
        assert_eq!(severity_band(-3), "unspecified");
        for (i, band) in SEVERITY_BANDS.iter().enumerate() {
            let floor = severity_floor(band).expect("a band");
            assert_eq!((severity_band(floor), severity_band(floor + 3)), (*band, *band));
            if i > 0 {
                assert_eq!(severity_band(floor - 1), SEVERITY_BANDS[i - 1]);
            }
        }
        assert_eq!(severity_floor("WARN"), Some(13));
        assert_eq!(severity_floor("warning"), Some(13));
        assert_eq!(severity_floor("18"), Some(18));
        assert_eq!(severity_floor("0"), None);
        assert_eq!(severity_floor("loud"), None);
    }

    #[test]
    fn partition_column_is_not_nullable() {
        let schema = log_schema();
        assert!(!schema.field_with_name(col::TIMESTAMP).expect("timestamp").is_nullable());
        for column in SORT_COLUMNS.iter().chain(&BLOOM_FILTER_COLUMNS) {
            assert!(schema.index_of(column).is_ok(), "no column {column}");
        }
    }
}
