//! api_v3's trace summaries (`GET /api/v3/trace-summaries`, what Jaeger UI's
//! search results list shows), computed from the whole traces as Jaeger's
//! query service does when its storage has no summaries of its own: root
//! (the earliest span without a parent), time range, span, error and
//! orphan counts, and per-service counts sorted by name.
//!
//! Written as Jaeger's proto3 JSON: zero counts and empty strings left out,
//! 64-bit nanoseconds as strings.

use std::collections::{BTreeMap, HashSet};

use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::{Map, Value, json};
use skein_model::SpanRecord;

/// Per-service counts: spans, error spans.
type Counts = (u64, u64);

/// One trace's summary as `TraceSummary` JSON; `records` are its spans.
pub(crate) fn summary_json(records: &[SpanRecord]) -> Value {
    let ids: HashSet<&[u8]> = records.iter().map(|r| r.span.span_id.as_slice()).collect();
    let mut services: BTreeMap<&str, Counts> = BTreeMap::new();
    let (mut errors, mut orphans) = (0u64, 0u64);
    let mut root: Option<&SpanRecord> = None;
    for record in records {
        let span = &record.span;
        let is_error = span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32);
        let counts = services.entry(record.service_name.as_str()).or_default();
        counts.0 += 1;
        if is_error {
            counts.1 += 1;
            errors += 1;
        }
        if span.parent_span_id.iter().all(|b| *b == 0) {
            if root.is_none_or(|r| span.start_time_unix_nano < r.span.start_time_unix_nano) {
                root = Some(record);
            }
        } else if !ids.contains(span.parent_span_id.as_slice()) {
            orphans += 1;
        }
    }
    let min_start = records.iter().map(|r| r.span.start_time_unix_nano).min().unwrap_or_default();
    let max_end = records.iter().map(|r| r.span.end_time_unix_nano).max().unwrap_or_default();
    let mut summary = Map::new();
    let trace_id = records.first().map(|r| const_hex::encode(&r.span.trace_id)).unwrap_or_default();
    put_text(&mut summary, "traceId", &trace_id);
    put_text(&mut summary, "rootServiceName", root.map_or("", |r| r.service_name.as_str()));
    put_text(&mut summary, "rootOperationName", root.map_or("", |r| r.span.name.as_str()));
    put_nanos(&mut summary, "minStartTimeUnixNano", min_start);
    put_nanos(&mut summary, "maxEndTimeUnixNano", max_end);
    put_count(&mut summary, "spanCount", records.len() as u64);
    put_count(&mut summary, "errorSpanCount", errors);
    put_count(&mut summary, "orphanSpanCount", orphans);
    let services: Vec<Value> = services
        .into_iter()
        .map(|(name, (spans, errors))| {
            let mut service = Map::new();
            put_text(&mut service, "name", name);
            put_count(&mut service, "spanCount", spans);
            put_count(&mut service, "errorSpanCount", errors);
            Value::Object(service)
        })
        .collect();
    if !services.is_empty() {
        summary.insert("services".into(), Value::Array(services));
    }
    Value::Object(summary)
}

/// `FindTraceSummariesResponse`: no `summaries` key when there are none.
pub(crate) fn response_json(summaries: Vec<Value>) -> Value {
    if summaries.is_empty() { json!({}) } else { json!({ "summaries": summaries }) }
}

fn put_text(map: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        map.insert(key.into(), json!(value));
    }
}

fn put_nanos(map: &mut Map<String, Value>, key: &str, value: u64) {
    if value != 0 {
        map.insert(key.into(), json!(value.to_string()));
    }
}

fn put_count(map: &mut Map<String, Value>, key: &str, value: u64) {
    if value != 0 {
        map.insert(key.into(), json!(value));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{T1, T3, engine};

    #[tokio::test]
    async fn summaries_count_services_errors_and_orphans() {
        let engine = engine();
        let t1 = engine.trace(T1).await.expect("trace");
        assert_eq!(
            summary_json(&t1),
            json!({
                "traceId": T1, "rootServiceName": "checkout", "rootOperationName": "POST /checkout",
                "minStartTimeUnixNano": "1700000000000000000", "maxEndTimeUnixNano": "1700000000500000000",
                "spanCount": 2, "errorSpanCount": 1,
                "services": [{"name": "checkout", "spanCount": 1}, {"name": "payments", "spanCount": 1, "errorSpanCount": 1}],
            })
        );
        // T3's root was never received: no root, one orphan (its child's parent is present).
        let t3 = engine.trace(T3).await.expect("trace");
        let summary = summary_json(&t3);
        assert_eq!(summary.get("rootServiceName"), None);
        assert_eq!(summary["orphanSpanCount"], 1);
        assert_eq!(summary["services"], json!([{"name": "checkout", "spanCount": 2}]));
        assert_eq!(response_json(Vec::new()), json!({}));
    }
}
