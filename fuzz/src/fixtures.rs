//! Small, valid OTLP requests that touch every field the converters read:
//! the seeds the mutations start from, and the data the query targets
//! answer over.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

/// 2023-11-14T22:13:20Z in unix nanoseconds: where the fixtures' time starts.
pub const BASE_NANOS: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

/// The fixture traces' IDs, as the API spells them.
pub const TRACE_IDS: [&str; 2] = ["0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"];

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

/// Attributes of every value type, nested ones included.
fn typed_attributes() -> Vec<KeyValue> {
    vec![
        text("http.route", "/checkout"),
        kv("http.status_code", Value::IntValue(200)),
        kv("sampling.ratio", Value::DoubleValue(0.25)),
        kv("cache.hit", Value::BoolValue(true)),
        kv("payload", Value::BytesValue(vec![0, 1, 2, 255])),
        kv(
            "tags",
            Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue { value: Some(Value::StringValue("a".into())) },
                    AnyValue { value: Some(Value::IntValue(-3)) },
                ],
            }),
        ),
        kv("user", Value::KvlistValue(KeyValueList { values: vec![text("id", "u-1"), text("tier", "gold")] })),
    ]
}

fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![text("service.name", service), text("deployment.environment", "prod")],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "fuzz".into(),
        version: "1.0".into(),
        attributes: vec![text("scope.kind", "test")],
        ..Default::default()
    }
}

fn id_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

fn span(trace: usize, id: u8, parent: Option<u8>, name: &str, start_ms: u64, duration_ms: u64) -> Span {
    let start = BASE_NANOS + start_ms * MS;
    Span {
        trace_id: id_bytes(TRACE_IDS[trace]),
        span_id: vec![0, 0, 0, 0, 0, 0, trace as u8 + 1, id],
        parent_span_id: parent.map(|p| vec![0, 0, 0, 0, 0, 0, trace as u8 + 1, p]).unwrap_or_default(),
        trace_state: "vendor=1".into(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration_ms * MS,
        attributes: typed_attributes(),
        dropped_attributes_count: 1,
        events: vec![Event {
            time_unix_nano: start + MS,
            name: "exception".into(),
            attributes: vec![text("exception.message", "boom")],
            dropped_attributes_count: 0,
        }],
        links: vec![Link {
            trace_id: id_bytes(TRACE_IDS[1 - trace]),
            span_id: vec![0, 0, 0, 0, 0, 0, 2 - trace as u8, 1],
            trace_state: String::new(),
            attributes: vec![text("link.kind", "follows")],
            ..Default::default()
        }],
        status: Some(Status { code: if parent.is_some() { 2 } else { 1 }, message: "failed".into() }),
        flags: 0x301,
        ..Default::default()
    }
}

/// Two traces over two services: a root and a failing child each.
pub fn traces_request() -> ExportTraceServiceRequest {
    let resource_spans = |service: &str, spans: Vec<Span>| ResourceSpans {
        resource: Some(resource(service)),
        scope_spans: vec![ScopeSpans {
            scope: Some(scope()),
            spans,
            schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
        }],
        schema_url: String::new(),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(
                "checkout",
                vec![span(0, 1, None, "POST /checkout", 0, 500), span(1, 1, None, "GET /cart", 900, 40)],
            ),
            resource_spans(
                "payments",
                vec![span(0, 2, Some(1), "charge", 100, 300), span(1, 2, Some(1), "lookup", 910, 20)],
            ),
        ],
    }
}

fn number_points(values: &[Number]) -> Vec<NumberDataPoint> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| NumberDataPoint {
            attributes: vec![text("host", "host-a")],
            start_time_unix_nano: BASE_NANOS,
            time_unix_nano: BASE_NANOS + (i as u64 + 1) * 10_000 * MS,
            value: Some(*value),
            exemplars: vec![Exemplar {
                time_unix_nano: BASE_NANOS + 5_000 * MS,
                value: Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(1.5)),
                span_id: vec![0, 0, 0, 0, 0, 0, 1, 1],
                trace_id: id_bytes(TRACE_IDS[0]),
                filtered_attributes: vec![text("user", "u-1")],
            }],
            flags: 0,
        })
        .collect()
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: "fuzz fixture".into(),
        data: Some(data),
        ..Default::default()
    }
}

/// One metric of every point type.
pub fn metrics_request() -> ExportMetricsServiceRequest {
    let histogram = HistogramDataPoint {
        attributes: vec![text("http.route", "/checkout")],
        start_time_unix_nano: BASE_NANOS,
        time_unix_nano: BASE_NANOS + 60_000 * MS,
        count: 6,
        sum: Some(2.5),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![0.1, 1.0],
        min: Some(0.01),
        max: Some(1.9),
        ..Default::default()
    };
    let exponential = ExponentialHistogramDataPoint {
        start_time_unix_nano: BASE_NANOS,
        time_unix_nano: BASE_NANOS + 60_000 * MS,
        count: 4,
        sum: Some(10.0),
        scale: 2,
        zero_count: 1,
        positive: Some(Buckets { offset: -1, bucket_counts: vec![1, 2] }),
        negative: None,
        zero_threshold: 0.0,
        ..Default::default()
    };
    let summary = SummaryDataPoint {
        start_time_unix_nano: BASE_NANOS,
        time_unix_nano: BASE_NANOS + 60_000 * MS,
        count: 3,
        sum: 6.0,
        quantile_values: vec![
            ValueAtQuantile { quantile: 0.5, value: 2.0 },
            ValueAtQuantile { quantile: 0.99, value: 3.0 },
        ],
        ..Default::default()
    };
    let metrics = vec![
        metric(
            "cpu.usage",
            "1",
            Data::Gauge(Gauge { data_points: number_points(&[Number::AsDouble(0.5), Number::AsDouble(0.75)]) }),
        ),
        metric(
            "http.requests",
            "{request}",
            Data::Sum(Sum {
                data_points: number_points(&[Number::AsInt(3), Number::AsInt(9)]),
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "http.duration",
            "s",
            Data::Histogram(Histogram { data_points: vec![histogram], aggregation_temporality: 1 }),
        ),
        metric(
            "rpc.duration",
            "ms",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![exponential],
                aggregation_temporality: 2,
            }),
        ),
        metric("gc.pause", "ms", Data::Summary(Summary { data_points: vec![summary] })),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource("checkout")),
            scope_metrics: vec![ScopeMetrics { scope: Some(scope()), metrics, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    }
}

/// Two log records, one in a trace.
pub fn logs_request() -> ExportLogsServiceRequest {
    let record = |trace: Option<usize>, body: Value| LogRecord {
        time_unix_nano: BASE_NANOS + 150 * MS,
        observed_time_unix_nano: BASE_NANOS + 151 * MS,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: Some(AnyValue { value: Some(body) }),
        attributes: vec![text("code.function", "charge")],
        trace_id: trace.map(|t| id_bytes(TRACE_IDS[t])).unwrap_or_default(),
        span_id: trace.map(|_| vec![0, 0, 0, 0, 0, 0, 1, 2]).unwrap_or_default(),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource("payments")),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records: vec![
                    record(Some(0), Value::StringValue("card declined".into())),
                    record(None, Value::KvlistValue(KeyValueList { values: typed_attributes() })),
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// A Zipkin v2 JSON body of two spans.
pub const ZIPKIN_SPANS: &str = r#"[{"traceId":"0af7651916cd43dd8448eb211c80319c","id":"0000000000000101","name":"get /users","kind":"SERVER","timestamp":1700000000000000,"duration":25000,"localEndpoint":{"serviceName":"users","ipv4":"10.0.0.1","port":8080},"tags":{"http.method":"GET","error":"boom"},"annotations":[{"timestamp":1700000000001000,"value":"retry"}]},{"traceId":"0af7651916cd43dd","id":"0000000000000102","parentId":"0000000000000101","name":"select","kind":"CLIENT","timestamp":1700000000002000,"duration":1000,"localEndpoint":{"serviceName":"users"},"remoteEndpoint":{"serviceName":"postgres"},"shared":true}]"#;
