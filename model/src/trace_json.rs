//! Skein's JSON form of a trace: spans with typed attributes, for the trace
//! API and the UI. Times are nanosecond strings (they exceed 2^53);
//! durations are JSON integers.

use std::collections::BTreeSet;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Value, json};

use crate::arrow_to_otlp::SpanRecord;
use crate::attributes::key_values_to_typed_json;
use crate::ids::hex_lower;
use crate::schema;

/// One span as Skein JSON.
pub fn span_to_json(record: &SpanRecord) -> Value {
    let span = &record.span;
    let status = span.status.as_ref();
    json!({
        "traceId": hex_lower(&span.trace_id),
        "spanId": hex_lower(&span.span_id),
        "parentSpanId": (!span.parent_span_id.is_empty()).then(|| hex_lower(&span.parent_span_id)),
        "traceState": span.trace_state,
        "flags": span.flags,
        "name": span.name,
        "kind": schema::kind_name(span.kind),
        "startTimeUnixNano": span.start_time_unix_nano.to_string(),
        "endTimeUnixNano": span.end_time_unix_nano.to_string(),
        "durationNanos": (span.end_time_unix_nano as i64).wrapping_sub(span.start_time_unix_nano as i64),
        "status": {
            "code": schema::status_name(status.map_or(0, |s| s.code)),
            "message": status.map_or("", |s| s.message.as_str()),
        },
        "serviceName": record.service_name,
        "attributes": key_values_to_typed_json(&span.attributes),
        "droppedAttributesCount": span.dropped_attributes_count,
        "events": span.events.iter().map(|e| json!({
            "timeUnixNano": e.time_unix_nano.to_string(),
            "name": e.name,
            "attributes": key_values_to_typed_json(&e.attributes),
            "droppedAttributesCount": e.dropped_attributes_count,
        })).collect::<Vec<_>>(),
        "droppedEventsCount": span.dropped_events_count,
        "links": span.links.iter().map(|l| json!({
            "traceId": hex_lower(&l.trace_id),
            "spanId": hex_lower(&l.span_id),
            "traceState": l.trace_state,
            "flags": l.flags,
            "attributes": key_values_to_typed_json(&l.attributes),
            "droppedAttributesCount": l.dropped_attributes_count,
        })).collect::<Vec<_>>(),
        "droppedLinksCount": span.dropped_links_count,
        "resource": resource_json(&record.resource, &record.resource_schema_url),
        "scope": scope_json(&record.scope, &record.scope_schema_url),
    })
}

/// A resource as Skein JSON (spans and log records alike).
pub fn resource_json(resource: &Resource, schema_url: &str) -> Value {
    json!({
        "attributes": key_values_to_typed_json(&resource.attributes),
        "droppedAttributesCount": resource.dropped_attributes_count,
        "schemaUrl": schema_url,
    })
}

/// An instrumentation scope as Skein JSON (spans and log records alike).
pub fn scope_json(scope: &InstrumentationScope, schema_url: &str) -> Value {
    json!({
        "name": scope.name,
        "version": scope.version,
        "attributes": key_values_to_typed_json(&scope.attributes),
        "droppedAttributesCount": scope.dropped_attributes_count,
        "schemaUrl": schema_url,
    })
}

/// A whole trace as Skein JSON: a summary and its spans, ordered by start time.
pub fn trace_to_json(trace_id: &str, mut records: Vec<SpanRecord>) -> Value {
    records.sort_by_key(|r| (r.span.start_time_unix_nano, r.span.span_id.clone()));
    let start = records.iter().map(|r| r.span.start_time_unix_nano).min().unwrap_or(0);
    let end = records.iter().map(|r| r.span.end_time_unix_nano).max().unwrap_or(0);
    let services: BTreeSet<&str> = records.iter().map(|r| r.service_name.as_str()).collect();
    let errors = records.iter().filter(|r| r.span.status.as_ref().is_some_and(|s| s.code == 2)).count();
    json!({
        "traceId": trace_id,
        "spanCount": records.len(),
        "errorCount": errors,
        "services": services,
        "startTimeUnixNano": start.to_string(),
        "durationNanos": end.saturating_sub(start),
        "spans": records.iter().map(span_to_json).collect::<Vec<_>>(),
    })
}
