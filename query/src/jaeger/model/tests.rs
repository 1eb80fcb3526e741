use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use serde_json::json;
use skein_model::SpanRecord;

use super::*;

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn record(service: &str, host: &str, span: Span) -> SpanRecord {
    SpanRecord {
        resource: Resource {
            attributes: vec![
                kv("service.name", Any::StringValue(service.into())),
                kv("host.name", Any::StringValue(host.into())),
            ],
            ..Default::default()
        },
        resource_schema_url: String::new(),
        scope: InstrumentationScope { name: "lib".into(), version: "2.0".into(), ..Default::default() },
        scope_schema_url: String::new(),
        span,
        service_name: service.into(),
    }
}

/// A 64-bit trace ID (zero high half).
fn trace_id() -> Vec<u8> {
    let mut id = vec![0; 8];
    id.extend([0xab; 8]);
    id
}

#[test]
fn typed_tags_as_jaeger_shows_them() {
    let values = [
        kv("s", Any::StringValue("text".into())),
        kv("b", Any::BoolValue(true)),
        kv("i", Any::IntValue(42)),
        kv("big", Any::IntValue(1 << 60)),
        kv("d", Any::DoubleValue(0.5)),
        kv("nan", Any::DoubleValue(f64::NAN)),
        kv("y", Any::BytesValue(vec![1, 2, 255])),
        kv(
            "a",
            Any::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue { value: Some(Any::IntValue(1)) },
                    AnyValue { value: Some(Any::StringValue("x".into())) },
                ],
            }),
        ),
        kv("k", Any::KvlistValue(KeyValueList { values: vec![kv("n", Any::BoolValue(false))] })),
        KeyValue { key: "e".into(), value: None, ..Default::default() },
    ];
    let tags: Vec<Value> = values.iter().map(tag).collect();
    assert_eq!(
        tags,
        [
            json!({"key": "s", "type": "string", "value": "text"}),
            json!({"key": "b", "type": "bool", "value": true}),
            json!({"key": "i", "type": "int64", "value": 42}),
            json!({"key": "big", "type": "int64", "value": "1152921504606846976"}),
            json!({"key": "d", "type": "float64", "value": 0.5}),
            json!({"key": "nan", "type": "float64", "value": "NaN"}),
            json!({"key": "y", "type": "binary", "value": "AQL/"}),
            json!({"key": "a", "type": "string", "value": "[1,\"x\"]"}),
            json!({"key": "k", "type": "string", "value": "{\"n\":false}"}),
            json!({"key": "e", "type": "string", "value": ""}),
        ]
    );
}

#[test]
fn references_logs_processes_and_derived_tags() {
    let parent = Span {
        trace_id: trace_id(),
        span_id: vec![1; 8],
        name: "root".into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_123_456_789,
        end_time_unix_nano: 1_700_000_000_125_456_000,
        trace_state: "k=v".into(),
        status: Some(Status { code: 1, message: String::new() }),
        ..Default::default()
    };
    let other_trace = vec![0x22; 16];
    let child = Span {
        trace_id: trace_id(),
        span_id: vec![2; 8],
        parent_span_id: vec![1; 8],
        name: "child".into(),
        kind: 0,
        start_time_unix_nano: 1_700_000_000_124_000_000,
        end_time_unix_nano: 1_700_000_000_124_500_000,
        status: Some(Status { code: 2, message: "boom".into() }),
        events: vec![
            Event {
                time_unix_nano: 1_700_000_000_124_100_000,
                name: "retry".into(),
                attributes: vec![kv("n", Any::IntValue(2))],
                ..Default::default()
            },
            Event {
                time_unix_nano: 1_700_000_000_124_200_000,
                name: "named".into(),
                attributes: vec![kv("event", Any::StringValue("own".into()))],
                ..Default::default()
            },
        ],
        links: vec![
            Link { trace_id: other_trace.clone(), span_id: vec![3; 8], ..Default::default() },
            Link {
                trace_id: other_trace.clone(),
                span_id: vec![4; 8],
                attributes: vec![kv("opentracing.ref_type", Any::StringValue("child_of".into()))],
                ..Default::default()
            },
            // A link to the parent retypes the parent reference.
            Link { trace_id: trace_id(), span_id: vec![1; 8], ..Default::default() },
        ],
        ..Default::default()
    };
    let third = Span { span_id: vec![5; 8], parent_span_id: vec![1; 8], ..parent.clone() };
    let trace = trace_json(&[record("api", "h1", parent), record("db", "h2", child), record("api", "h1", third)]);

    assert_eq!(trace["traceID"], "abababababababab", "64-bit IDs print as 16 digits");
    assert_eq!(trace["warnings"], Value::Null);
    assert_eq!(
        trace["processes"],
        json!({
            "p1": {"serviceName": "api", "tags": [{"key": "host.name", "type": "string", "value": "h1"}]},
            "p2": {"serviceName": "db", "tags": [{"key": "host.name", "type": "string", "value": "h2"}]},
        })
    );
    let spans = trace["spans"].as_array().expect("spans");
    assert_eq!(
        spans.iter().map(|s| s["processID"].clone()).collect::<Vec<_>>(),
        [json!("p1"), json!("p2"), json!("p1")]
    );

    let root = &spans[0];
    assert_eq!((&root["startTime"], &root["duration"]), (&json!(1_700_000_000_123_456u64), &json!(1_999)));
    assert_eq!(root["references"], json!([]));
    assert_eq!(root["logs"], json!([]));
    assert_eq!(
        root["tags"],
        json!([
            {"key": "otel.scope.name", "type": "string", "value": "lib"},
            {"key": "otel.scope.version", "type": "string", "value": "2.0"},
            {"key": "span.kind", "type": "string", "value": "server"},
            {"key": "otel.status_code", "type": "string", "value": "OK"},
            {"key": "w3c.tracestate", "type": "string", "value": "k=v"},
        ])
    );

    let child = &spans[1];
    assert_eq!(child["spanID"], "0202020202020202");
    assert_eq!(
        child["references"],
        json!([
            {"refType": "FOLLOWS_FROM", "traceID": "abababababababab", "spanID": "0101010101010101"},
            {"refType": "FOLLOWS_FROM", "traceID": "22222222222222222222222222222222", "spanID": "0303030303030303"},
            {"refType": "CHILD_OF", "traceID": "22222222222222222222222222222222", "spanID": "0404040404040404"},
        ])
    );
    assert_eq!(
        child["logs"],
        json!([
            {"timestamp": 1_700_000_000_124_100u64, "fields": [
                {"key": "event", "type": "string", "value": "retry"},
                {"key": "n", "type": "int64", "value": 2},
            ]},
            {"timestamp": 1_700_000_000_124_200u64, "fields": [{"key": "event", "type": "string", "value": "own"}]},
        ])
    );
    assert_eq!(
        child["tags"],
        json!([
            {"key": "otel.scope.name", "type": "string", "value": "lib"},
            {"key": "otel.scope.version", "type": "string", "value": "2.0"},
            {"key": "otel.status_code", "type": "string", "value": "ERROR"},
            {"key": "error", "type": "bool", "value": true},
            {"key": "otel.status_description", "type": "string", "value": "boom"},
        ]),
        "no span.kind for an unspecified kind"
    );
    assert_eq!(
        spans[2]["references"],
        json!([{"refType": "CHILD_OF", "traceID": "abababababababab", "spanID": "0101010101010101"}])
    );
}
