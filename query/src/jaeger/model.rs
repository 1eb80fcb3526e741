//! Skein's stored spans in Jaeger's UI JSON model (`internal/uimodel` in
//! jaegertracing/jaeger), following what Jaeger's query service shows for
//! OTLP data (the OpenTelemetry Collector's OTLP→Jaeger translator, then
//! Jaeger's JSON conversion):
//!
//! - a process per distinct resource (`p1`, `p2`, ... in order of first
//!   use): `serviceName` and the other resource attributes as tags;
//! - span tags: `otel.scope.name`, `otel.scope.version`, the attributes,
//!   then `span.kind`, `otel.status_code` (`OK`/`ERROR`), `error` (true),
//!   `otel.status_description` and `w3c.tracestate` when they apply;
//! - `references`: the parent as `CHILD_OF` first, then each link as
//!   `FOLLOWS_FROM` (`CHILD_OF` when its `opentracing.ref_type` says so;
//!   a link to the parent retypes the parent's reference);
//! - `logs` from events: an `event` field with the name, then the attributes;
//! - typed values: `string`, `bool`, `int64` (a string past 2^53, as
//!   JavaScript cannot hold it), `float64`, `binary` (base64); arrays and
//!   maps as their JSON text, typed `string`.
//!
//! Times are microseconds (truncated). Jaeger's query-time adjusters (clock
//! skew, attribute sorting, ...) are not applied: spans come back as stored.

use base64::Engine;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::{Map, Value, json};
use skein_model::SpanRecord;

const JS_MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;
const NANOS_PER_MICRO: u64 = 1_000;

/// One trace in Jaeger's UI JSON (`{"traceID", "spans", "processes", "warnings"}`);
/// `records` are the trace's spans, ordered as they should appear.
pub(crate) fn trace_json(records: &[SpanRecord]) -> Value {
    let mut processes: Vec<(String, Vec<KeyValue>)> = Vec::new();
    let mut spans = Vec::with_capacity(records.len());
    for record in records {
        let tags: Vec<KeyValue> =
            record.resource.attributes.iter().filter(|kv| kv.key != "service.name").cloned().collect();
        let index = match processes.iter().position(|(s, t)| *s == record.service_name && *t == tags) {
            Some(index) => index,
            None => {
                processes.push((record.service_name.clone(), tags));
                processes.len() - 1
            }
        };
        spans.push(span_json(record, &format!("p{}", index + 1)));
    }
    let processes: Map<String, Value> = processes
        .iter()
        .enumerate()
        .map(|(i, (service, tags))| {
            (format!("p{}", i + 1), json!({ "serviceName": service, "tags": tags.iter().map(tag).collect::<Vec<_>>() }))
        })
        .collect();
    let trace_id = records.first().map(|r| trace_id_text(&r.span.trace_id)).unwrap_or_default();
    json!({ "traceID": trace_id, "spans": spans, "processes": processes, "warnings": null })
}

/// Jaeger prints a trace ID with a zero high half as 16 digits.
pub(crate) fn trace_id_text(id: &[u8]) -> String {
    let hex = const_hex::encode(id);
    match hex.strip_prefix("0000000000000000") {
        Some(low) if hex.len() == 32 => low.to_owned(),
        _ => hex,
    }
}

fn micros(nanos: u64) -> u64 {
    nanos / NANOS_PER_MICRO
}

fn span_json(record: &SpanRecord, process_id: &str) -> Value {
    let span = &record.span;
    json!({
        "traceID": trace_id_text(&span.trace_id),
        "spanID": const_hex::encode(&span.span_id),
        "operationName": span.name,
        "references": references(span),
        "startTime": micros(span.start_time_unix_nano),
        "duration": micros(span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano)),
        "tags": span_tags(record),
        "logs": span.events.iter().map(|event| {
            let mut fields = Vec::with_capacity(event.attributes.len() + 1);
            if !event.name.is_empty() && !event.attributes.iter().any(|kv| kv.key == "event") {
                fields.push(json!({ "key": "event", "type": "string", "value": event.name }));
            }
            fields.extend(event.attributes.iter().map(tag));
            json!({ "timestamp": micros(event.time_unix_nano), "fields": fields })
        }).collect::<Vec<_>>(),
        "processID": process_id,
        "warnings": null,
    })
}

fn reference(kind: &str, trace_id: &[u8], span_id: &[u8]) -> Value {
    json!({ "refType": kind, "traceID": trace_id_text(trace_id), "spanID": const_hex::encode(span_id) })
}

fn references(span: &Span) -> Vec<Value> {
    let has_parent = !span.parent_span_id.is_empty() && span.parent_span_id.iter().any(|b| *b != 0);
    let mut refs = Vec::with_capacity(span.links.len() + 1);
    if has_parent {
        refs.push(reference("CHILD_OF", &span.trace_id, &span.parent_span_id));
    }
    for link in &span.links {
        let child_of = link
            .attributes
            .iter()
            .any(|kv| kv.key == "opentracing.ref_type" && matches!(string_value(kv), Some("child_of")));
        let kind = if child_of { "CHILD_OF" } else { "FOLLOWS_FROM" };
        if has_parent && link.trace_id == span.trace_id && link.span_id == span.parent_span_id {
            refs[0]["refType"] = json!(kind);
            continue;
        }
        refs.push(reference(kind, &link.trace_id, &link.span_id));
    }
    refs
}

fn string_value(kv: &KeyValue) -> Option<&str> {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn span_tags(record: &SpanRecord) -> Vec<Value> {
    let span = &record.span;
    let string = |key: &str, value: &str| json!({ "key": key, "type": "string", "value": value });
    let mut tags = Vec::with_capacity(span.attributes.len() + 6);
    if !record.scope.name.is_empty() {
        tags.push(string("otel.scope.name", &record.scope.name));
    }
    if !record.scope.version.is_empty() {
        tags.push(string("otel.scope.version", &record.scope.version));
    }
    tags.extend(span.attributes.iter().map(tag));
    let kind = match SpanKind::try_from(span.kind) {
        Ok(SpanKind::Client) => Some("client"),
        Ok(SpanKind::Server) => Some("server"),
        Ok(SpanKind::Producer) => Some("producer"),
        Ok(SpanKind::Consumer) => Some("consumer"),
        Ok(SpanKind::Internal) => Some("internal"),
        _ => None,
    };
    if let Some(kind) = kind {
        tags.push(string("span.kind", kind));
    }
    let status = span.status.clone().unwrap_or_default();
    match StatusCode::try_from(status.code) {
        Ok(StatusCode::Ok) => tags.push(string("otel.status_code", "OK")),
        Ok(StatusCode::Error) => {
            tags.push(string("otel.status_code", "ERROR"));
            tags.push(json!({ "key": "error", "type": "bool", "value": true }));
        }
        _ => {}
    }
    if !status.message.is_empty() {
        tags.push(string("otel.status_description", &status.message));
    }
    if !span.trace_state.is_empty() {
        tags.push(string("w3c.tracestate", &span.trace_state));
    }
    tags
}

/// One attribute as a Jaeger `KeyValue`.
pub(crate) fn tag(kv: &KeyValue) -> Value {
    let (kind, value) = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => ("string", json!(s)),
        Some(Any::BoolValue(b)) => ("bool", json!(b)),
        Some(Any::IntValue(i)) if (-JS_MAX_SAFE_INTEGER..=JS_MAX_SAFE_INTEGER).contains(i) => ("int64", json!(i)),
        Some(Any::IntValue(i)) => ("int64", json!(i.to_string())),
        // JSON has no NaN or infinities: those go as text.
        Some(Any::DoubleValue(d)) if d.is_finite() => ("float64", json!(d)),
        Some(Any::DoubleValue(d)) => ("float64", json!(d.to_string())),
        Some(Any::BytesValue(b)) => ("binary", json!(base64::engine::general_purpose::STANDARD.encode(b))),
        Some(other @ (Any::ArrayValue(_) | Any::KvlistValue(_))) => ("string", json!(plain(other).to_string())),
        // A string-table index is profiles-only; Skein stores it as empty.
        None | Some(Any::StringValueStrindex(_)) => ("string", json!("")),
    };
    json!({ "key": kv.key, "type": kind, "value": value })
}

/// An OTLP value as plain JSON (arrays and maps of their raw values), as
/// the collector's `AsString` writes nested values.
fn plain(value: &Any) -> Value {
    let inner = |v: &AnyValue| v.value.as_ref().map_or(Value::Null, plain);
    match value {
        Any::StringValue(s) => json!(s),
        Any::BoolValue(b) => json!(b),
        Any::IntValue(i) => json!(i),
        Any::DoubleValue(d) if d.is_finite() => json!(d),
        Any::DoubleValue(d) => json!(d.to_string()),
        Any::BytesValue(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        Any::ArrayValue(array) => Value::Array(array.values.iter().map(inner).collect()),
        Any::KvlistValue(list) => Value::Object(
            list.values.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, inner))).collect(),
        ),
        Any::StringValueStrindex(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests;
