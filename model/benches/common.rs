//! A realistic OTLP export request for the benchmarks, built without any
//! randomness crate: a small shop's services, 5–30 spans per trace, about ten
//! semantic-convention attributes per span, with occasional events, errors
//! and links. Deterministic, so runs are comparable.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

const SERVICES: [&str; 6] = ["frontend", "cart", "checkout", "payment", "currency", "product-catalog"];
pub const BASE_NS: u64 = 1_700_000_000_000_000_000;

/// The schema URL of every scope.
pub const SCOPE_SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.26.0";

/// The resource of one service's SDK.
pub fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![
            s("service.name", service),
            s("service.version", "2.0.2"),
            s("service.namespace", "shop"),
            s("host.name", &format!("{service}-7d9f8c6b5-x2k4q")),
            s("telemetry.sdk.language", "rust"),
            s("telemetry.sdk.name", "opentelemetry"),
            s("telemetry.sdk.version", "0.31.0"),
        ],
        ..Default::default()
    }
}

/// The instrumentation scope of every request.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "opentelemetry-instrumentation".into(),
        version: "0.31.0".into(),
        ..Default::default()
    }
}

/// xorshift64*: enough variety for benchmark data, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), key_strindex: 0 }
}

pub fn s(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

fn i(key: &str, value: i64) -> KeyValue {
    kv(key, Value::IntValue(value))
}

/// About ten attributes in the style of the span's layer (http, rpc or db).
fn attributes(service: &str, layer: u64, rng: &mut Rng) -> Vec<KeyValue> {
    let id = rng.below(10_000) as i64;
    match layer {
        0 => vec![
            s("http.request.method", if id % 3 == 0 { "POST" } else { "GET" }),
            s("http.route", "/api/products/{id}"),
            s("url.path", &format!("/api/products/{id}")),
            s("url.scheme", "http"),
            i("http.response.status_code", 200),
            s("server.address", "frontend"),
            i("server.port", 8080),
            s("client.address", &format!("10.0.{}.{}", id % 256, id % 200)),
            s("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"),
            s("network.protocol.version", "1.1"),
        ],
        1 => vec![
            s("rpc.system", "grpc"),
            s("rpc.service", &format!("oteldemo.{service}")),
            s("rpc.method", "GetProduct"),
            i("rpc.grpc.status_code", 0),
            s("server.address", service),
            i("server.port", 50051),
            s("network.peer.address", &format!("10.1.0.{}", id % 250)),
            i("network.peer.port", 50051),
            s("network.transport", "tcp"),
            s("app.product.id", &format!("OLJCESPC{id}")),
        ],
        _ => vec![
            s("db.system.name", "postgresql"),
            s("db.namespace", "catalog"),
            s("db.operation.name", "SELECT"),
            s("db.collection.name", "products"),
            s("db.query.text", "SELECT id, name, price_units FROM products WHERE id = $1"),
            s("server.address", "postgres"),
            i("server.port", 5432),
            s("network.peer.address", "10.2.0.7"),
            i("db.response.returned_rows", (id % 20) + 1),
            kv("db.cached", Value::BoolValue(id % 4 == 0)),
        ],
    }
}

/// One request of exactly `spans` spans, one `ResourceSpans` per service.
pub fn request(spans: usize) -> ExportTraceServiceRequest {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
    let mut made = 0usize;
    let mut trace = 0u64;
    let mut previous: Option<(Vec<u8>, Vec<u8>)> = None;
    while made < spans {
        trace += 1;
        let trace_id = [trace.to_be_bytes(), rng.next().to_be_bytes()].concat();
        let size = (5 + rng.below(26) as usize).min(spans - made);
        let start = BASE_NS + trace * 1_000_000;
        let failed = rng.below(20) == 0;
        for n in 0..size {
            let span_id = ((trace << 16) | (n as u64 + 1)).to_be_bytes().to_vec();
            let parent = if n == 0 { vec![] } else { ((trace << 16) | n as u64).to_be_bytes().to_vec() };
            let service = n % SERVICES.len();
            let layer = if n == 0 {
                0
            } else if n % 4 == 3 {
                2
            } else {
                1
            };
            let begin = start + n as u64 * 100_000;
            let mut span = Span {
                trace_id: trace_id.clone(),
                span_id: span_id.clone(),
                parent_span_id: parent,
                name: [
                    "GET /api/products/{id}",
                    "oteldemo.ProductCatalogService/GetProduct",
                    "SELECT catalog.products",
                ][layer as usize]
                    .into(),
                kind: if layer == 0 { 2 } else { 3 },
                start_time_unix_nano: begin,
                end_time_unix_nano: begin + 1_000_000 + rng.below(50_000_000),
                attributes: attributes(SERVICES[service], layer, &mut rng),
                status: Some(Status::default()),
                ..Default::default()
            };
            if failed && n == size - 1 {
                span.status = Some(Status { code: 2, message: "payment declined".into() });
                span.events.push(Event {
                    time_unix_nano: begin + 500_000,
                    name: "exception".into(),
                    attributes: vec![
                        s("exception.type", "PaymentDeclined"),
                        s("exception.message", "card expired"),
                        s("exception.stacktrace", "at charge (charge.js:37:13)\nat processTicksAndRejections"),
                    ],
                    dropped_attributes_count: 0,
                });
            }
            if n == 0
                && rng.below(10) == 0
                && let Some((linked_trace, linked_span)) = &previous
            {
                span.links.push(Link {
                    trace_id: linked_trace.clone(),
                    span_id: linked_span.clone(),
                    attributes: vec![s("messaging.operation.type", "process")],
                    ..Default::default()
                });
            }
            if n == 0 {
                previous = Some((trace_id.clone(), span_id));
            }
            by_service[service].push(span);
        }
        made += size;
    }
    let resource_spans = by_service
        .into_iter()
        .zip(SERVICES)
        .filter(|(spans, _)| !spans.is_empty())
        .map(|(spans, service)| ResourceSpans {
            resource: Some(resource(service)),
            scope_spans: vec![ScopeSpans { scope: Some(scope()), spans, schema_url: SCOPE_SCHEMA_URL.into() }],
            schema_url: String::new(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}
