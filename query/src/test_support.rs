//! Test fixtures: three traces over two in-memory shards, built from OTLP
//! requests with `skein_model::spans_to_arrow` exactly as ingest does.
//!
//! - T1 (oldest): `checkout` root `POST /checkout` (server, ok, 500 ms,
//!   `http.route=/checkout`, `http.status_code=200`) and its child
//!   `charge` in `payments` (client, error, 300 ms). Resources are `prod`.
//! - T2: `cart` root `GET /cart` (server, unset, 50 ms, `http.route=/cart`),
//!   resource `deployment.environment=staging`; the only trace of shard B.
//! - T3 (newest): no root received: `checkout` spans `process` (2 s, parent
//!   missing) and its child `process.step` (500 ms).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::{MemTable, TableProvider};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use skein_model::{ConvertLimits, span_schema, spans_to_arrow};
use tower::ServiceExt;

use crate::{QueryConfig, QueryEngine};

pub(crate) const T1: &str = "11111111111111111111111111111111";
pub(crate) const T2: &str = "22222222222222222222222222222222";
pub(crate) const T3: &str = "33333333333333333333333333333333";
/// 2023-11-14T22:13:20Z in unix nanoseconds.
pub(crate) const BASE: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

fn resource(service: &str, environment: &str) -> Resource {
    Resource {
        attributes: vec![text("service.name", service), text("deployment.environment", environment)],
        dropped_attributes_count: 0,
        entity_refs: vec![],
    }
}

fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, kind: i32, start: u64, duration_ms: u64) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration_ms * MS,
        ..Default::default()
    }
}

fn resource_spans(resource: Resource, scope: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(resource),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope { name: scope.into(), version: "1.0.0".into(), ..Default::default() }),
            spans,
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        }],
        schema_url: String::new(),
    }
}

/// The OTLP requests whose spans the two shards hold.
pub(crate) fn shard_requests() -> (ExportTraceServiceRequest, ExportTraceServiceRequest) {
    let root = Span {
        attributes: vec![text("http.route", "/checkout"), kv("http.status_code", Value::IntValue(200))],
        status: Some(Status { code: 1, message: String::new() }),
        ..span(0x11, 1, None, "POST /checkout", 2, BASE, 500)
    };
    let charge = Span {
        attributes: vec![text("payment.provider", "stripe")],
        status: Some(Status { code: 2, message: "card declined".into() }),
        ..span(0x11, 2, Some(1), "charge", 3, BASE + 100 * MS, 300)
    };
    let cart = Span {
        attributes: vec![text("http.route", "/cart")],
        ..span(0x22, 3, None, "GET /cart", 2, BASE + 10_000 * MS, 50)
    };
    let process = span(0x33, 4, Some(9), "process", 1, BASE + 20_000 * MS, 2000);
    let step = Span {
        attributes: vec![kv("step.index", Value::IntValue(1))],
        ..span(0x33, 5, Some(4), "process.step", 1, BASE + 21_000 * MS, 500)
    };
    let shard_a = ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(resource("checkout", "prod"), "http", vec![root, process, step]),
            resource_spans(resource("payments", "prod"), "payments-sdk", vec![charge]),
        ],
    };
    let shard_b = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(resource("cart", "staging"), "http", vec![cart])],
    };
    (shard_a, shard_b)
}

/// The span batches of shard A and shard B.
pub(crate) fn sample_spans() -> (RecordBatch, RecordBatch) {
    let (a, b) = shard_requests();
    let convert = |request| spans_to_arrow(&request, &ConvertLimits::default(), 1).expect("converts").batch;
    (convert(a), convert(b))
}

/// Two in-memory shards holding [`sample_spans`].
pub(crate) fn mem_shards() -> Vec<Arc<dyn TableProvider>> {
    let (a, b) = sample_spans();
    [a, b]
        .into_iter()
        .map(|batch| {
            Arc::new(MemTable::try_new(span_schema(), vec![vec![batch]]).expect("mem table")) as Arc<dyn TableProvider>
        })
        .collect()
}

/// Only the spans of one trace, with empty scopes and resources removed.
pub(crate) fn only_trace(requests: &[ExportTraceServiceRequest], trace_hex: &str) -> ExportTraceServiceRequest {
    let trace = const_hex::decode(trace_hex).expect("hex trace id");
    let mut resource_spans = Vec::new();
    for request in requests {
        for rs in &request.resource_spans {
            let mut rs = rs.clone();
            for ss in &mut rs.scope_spans {
                ss.spans.retain(|s| s.trace_id == trace);
            }
            rs.scope_spans.retain(|ss| !ss.spans.is_empty());
            if !rs.scope_spans.is_empty() {
                resource_spans.push(rs);
            }
        }
    }
    ExportTraceServiceRequest { resource_spans }
}

pub(crate) fn test_config() -> QueryConfig {
    QueryConfig { listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)), ..QueryConfig::default() }
}

pub(crate) fn engine() -> QueryEngine {
    QueryEngine::new(&test_config(), mem_shards()).expect("engine")
}

/// Sends one request through the router.
pub(crate) async fn request(app: Router, method: &str, uri: &str, body: String) -> (StatusCode, HeaderMap, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, headers, body)
}

pub(crate) async fn get(uri: &str) -> (StatusCode, HeaderMap, Bytes) {
    request(crate::server::test_router(test_config()), "GET", uri, String::new()).await
}

pub(crate) async fn post_sql(sql: &str, format: Option<&str>) -> (StatusCode, HeaderMap, Bytes) {
    let uri = match format {
        Some(format) => format!("/api/v1/sql?format={format}"),
        None => "/api/v1/sql".to_owned(),
    };
    let body = serde_json::json!({ "sql": sql }).to_string();
    request(crate::server::test_router(test_config()), "POST", &uri, body).await
}
