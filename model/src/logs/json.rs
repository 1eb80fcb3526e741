//! Skein's JSON form of a log record, for the log API and the UI: the
//! shape of a span's resource, scope and typed attributes (`trace_json`),
//! nanosecond times as strings.

use serde_json::{Value, json};

use super::from_arrow::LogRow;
use super::schema::severity_band;
use crate::attributes::{key_values_to_typed_json, typed_value_json};
use crate::ids::hex_lower;
use crate::trace_json::{resource_json, scope_json};

/// One log record as Skein JSON.
pub fn log_to_json(row: &LogRow) -> Value {
    let record = &row.record;
    let id = |bytes: &[u8]| (!bytes.is_empty()).then(|| hex_lower(bytes));
    json!({
        "timeUnixNano": row.timestamp_unix_nano.to_string(),
        "observedTimeUnixNano": (record.observed_time_unix_nano != 0).then(|| record.observed_time_unix_nano.to_string()),
        "severityNumber": record.severity_number,
        "severityText": record.severity_text,
        "severity": severity_band(record.severity_number),
        "body": record.body.as_ref().map(|body| typed_value_json(Some(body))),
        "eventName": record.event_name,
        "traceId": id(&record.trace_id),
        "spanId": id(&record.span_id),
        "flags": record.flags,
        "serviceName": row.service_name,
        "attributes": key_values_to_typed_json(&record.attributes),
        "droppedAttributesCount": record.dropped_attributes_count,
        "resource": resource_json(&row.resource, &row.resource_schema_url),
        "scope": scope_json(&row.scope, &row.scope_schema_url),
    })
}
