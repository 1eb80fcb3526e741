//! The schema is lossless: OTLP → Arrow → OTLP gives back the request.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use crate::{ConvertLimits, records_from_batch, records_to_request, spans_to_arrow};

pub(crate) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), key_strindex: 0 }
}

pub(crate) fn all_types() -> Vec<KeyValue> {
    vec![
        kv("str", Value::StringValue("ünïcødé ✓ 日本".into())),
        kv("bool", Value::BoolValue(true)),
        kv("int", Value::IntValue(-42)),
        kv("double", Value::DoubleValue(3.25)),
        kv("bytes", Value::BytesValue(vec![0xde, 0xad, 0xbe, 0xef])),
        kv(
            "array",
            Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue { value: Some(Value::StringValue("a".into())) },
                    AnyValue { value: Some(Value::IntValue(1)) },
                ],
            }),
        ),
        kv("kvlist", Value::KvlistValue(KeyValueList { values: vec![kv("nested", Value::BoolValue(false))] })),
        KeyValue { key: "empty".into(), value: Some(AnyValue { value: None }), key_strindex: 0 },
    ]
}

pub(crate) fn sample_request() -> ExportTraceServiceRequest {
    let root = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![1; 8],
        trace_state: "vendor=x".into(),
        parent_span_id: vec![],
        flags: 0x301,
        name: "GET /cart".into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_250_000_000,
        attributes: all_types(),
        dropped_attributes_count: 3,
        events: vec![Event {
            time_unix_nano: 1_700_000_000_100_000_000,
            name: "exception".into(),
            attributes: all_types(),
            dropped_attributes_count: 1,
        }],
        dropped_events_count: 2,
        links: vec![Link {
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            trace_state: "k=v".into(),
            attributes: vec![kv("link.kind", Value::StringValue("follows".into()))],
            dropped_attributes_count: 4,
            flags: 1,
        }],
        dropped_links_count: 5,
        status: Some(Status { message: "boom".into(), code: 2 }),
    };
    let child = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![2; 8],
        parent_span_id: vec![1; 8],
        name: "SELECT".into(),
        kind: 3,
        start_time_unix_nano: 1_700_000_000_010_000_000,
        end_time_unix_nano: 1_700_000_000_020_000_000,
        attributes: vec![kv("db.system", Value::StringValue("postgresql".into()))],
        ..Default::default()
    };
    let other_service = Span { span_id: vec![3; 8], parent_span_id: vec![2; 8], kind: 9, ..child.clone() };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", Value::StringValue("cart".into())),
                        kv("host.cpu", Value::IntValue(8)),
                    ],
                    dropped_attributes_count: 1,
                    entity_refs: vec![],
                }),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "io.opentelemetry.http".into(),
                            version: "1.2.3".into(),
                            attributes: all_types(),
                            dropped_attributes_count: 6,
                        }),
                        spans: vec![root],
                        schema_url: "https://opentelemetry.io/schemas/1.24.0".into(),
                    },
                    ScopeSpans {
                        scope: Some(InstrumentationScope { name: "db".into(), ..Default::default() }),
                        spans: vec![child],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
            },
            ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope::default()),
                    spans: vec![other_service],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

#[test]
fn otlp_arrow_otlp_is_identity() {
    let request = sample_request();
    let converted = spans_to_arrow(&request, &ConvertLimits::default(), 1).expect("converts");
    assert_eq!(converted.rejected, 0);
    assert_eq!(converted.batch.num_rows(), 3);
    let records = records_from_batch(&converted.batch).expect("decodes");
    assert_eq!(records[2].service_name, "unknown_service");
    assert_eq!(records_to_request(records), request);
}

#[test]
fn invalid_ids_are_rejected_and_counted() {
    let mut request = sample_request();
    let spans = &mut request.resource_spans[0].scope_spans[0].spans;
    spans.push(Span { trace_id: vec![0; 16], span_id: vec![1; 8], ..Default::default() });
    spans.push(Span { trace_id: vec![1; 15], span_id: vec![1; 8], ..Default::default() });
    spans.push(Span { trace_id: vec![1; 16], span_id: vec![0; 8], ..Default::default() });
    let converted = spans_to_arrow(&request, &ConvertLimits::default(), 1).expect("converts");
    assert_eq!(converted.rejected, 3);
    assert_eq!(converted.batch.num_rows(), 3);
    assert!(converted.first_error.expect("has a reason").contains("trace_id"));
}

#[test]
fn long_values_are_truncated_on_char_boundaries() {
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![1; 8],
        attributes: vec![kv("big", Value::StringValue("é".repeat(10))), kv("small", Value::StringValue("ok".into()))],
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
            ..Default::default()
        }],
    };
    let converted = spans_to_arrow(&request, &ConvertLimits { max_attribute_value_bytes: 5 }, 1).expect("converts");
    assert_eq!(converted.truncated_values, 1);
    assert!(converted.first_error.expect("reported").contains("truncated"));
    let records = records_from_batch(&converted.batch).expect("decodes");
    let values: Vec<_> = records[0].span.attributes.iter().map(|a| a.value.clone()).collect();
    assert_eq!(
        values,
        vec![
            Some(AnyValue { value: Some(Value::StringValue("éé".into())) }),
            Some(AnyValue { value: Some(Value::StringValue("ok".into())) })
        ]
    );
}

#[test]
fn split_by_shard_keeps_every_row_once() {
    let request = sample_request();
    let converted = spans_to_arrow(&request, &ConvertLimits::default(), 4).expect("converts");
    let parts = converted.split_by_shard(4).expect("splits");
    let total: usize = parts.iter().map(|(_, b)| b.num_rows()).sum();
    assert_eq!(total, 3);
    // One trace: every span lands on the same shard.
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].0, crate::shard_for_trace(&[0xab; 16], 4));
}
