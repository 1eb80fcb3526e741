//! The Rust `opentelemetry-otlp` exporter, over gRPC (tonic) and
//! HTTP/protobuf, as a real client.

use opentelemetry::trace::{Link, Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Array, Context, KeyValue, Value};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::json;

use crate::support::ClusterBuilder;

/// Emits one trace (server → client with an error, an event and a link) and
/// returns its trace ID and the linked span's ID.
fn emit(provider: &SdkTracerProvider) -> (String, String) {
    let tracer = provider.tracer("skein.tests.rust");
    let mut root = tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.response.status_code", 201_i64),
            KeyValue::new("checkout.amount", 99.5_f64),
            KeyValue::new("checkout.express", true),
            KeyValue::new("checkout.skus", Value::Array(Array::String(vec!["a".into(), "ß".into()]))),
            KeyValue::new("checkout.counts", Value::Array(Array::I64(vec![1, 2]))),
        ])
        .start(&tracer);
    root.add_event("payment.authorized", vec![KeyValue::new("attempt", 2_i64)]);
    let trace_id = root.span_context().trace_id().to_string();
    let root_cx = Context::current().with_span(root);
    let mut child = tracer
        .span_builder("charge")
        .with_kind(SpanKind::Client)
        .with_links(vec![Link::new(root_cx.span().span_context().clone(), vec![KeyValue::new("link.note", "self")], 0)])
        .start_with_context(&tracer, &root_cx);
    child.set_status(Status::error("card declined"));
    let child_id = child.span_context().span_id().to_string();
    child.end();
    root_cx.span().end();
    (trace_id, child_id)
}

async fn export_and_verify(grpc: bool) {
    let node = ClusterBuilder::new().start().await;
    let endpoint = if grpc { node.otlp_grpc() } else { format!("{}/v1/traces", node.otlp_http()) };
    let exporter = if grpc {
        SpanExporter::builder().with_tonic().with_endpoint(endpoint).build().expect("grpc exporter")
    } else {
        // The blocking HTTP client runs its own thread: build it off the runtime.
        tokio::task::spawn_blocking(move || {
            SpanExporter::builder().with_http().with_endpoint(endpoint).build().expect("http exporter")
        })
        .await
        .expect("builder thread")
    };
    let service = if grpc { "rust-grpc" } else { "rust-http" };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder_empty().with_service_name(service).build())
        .build();
    let (trace_id, child_id) = emit(&provider);
    let flushed = tokio::task::spawn_blocking(move || {
        let flushed = provider.force_flush();
        provider.shutdown().expect("provider shuts down");
        flushed
    })
    .await
    .expect("flush thread");
    flushed.expect("spans exported");

    let trace = node.trace(&trace_id).await;
    assert_eq!(trace["spanCount"], 2, "{trace}");
    let spans = trace["spans"].as_array().expect("spans");
    let root = &spans[0];
    assert_eq!(root["name"], "POST /checkout");
    assert_eq!(root["kind"], "server");
    assert_eq!(root["serviceName"], service);
    assert_eq!(
        root["attributes"],
        json!([
            {"key": "http.request.method", "type": "string", "value": "POST"},
            {"key": "http.response.status_code", "type": "int", "value": 201},
            {"key": "checkout.amount", "type": "double", "value": 99.5},
            {"key": "checkout.express", "type": "bool", "value": true},
            {"key": "checkout.skus", "type": "array", "value": [{"type": "string", "value": "a"}, {"type": "string", "value": "ß"}]},
            {"key": "checkout.counts", "type": "array", "value": [{"type": "int", "value": 1}, {"type": "int", "value": 2}]},
        ])
    );
    assert_eq!(root["events"][0]["name"], "payment.authorized");
    assert_eq!(root["events"][0]["attributes"], json!([{"key": "attempt", "type": "int", "value": 2}]));
    let child = spans.iter().find(|s| s["spanId"] == child_id.as_str()).expect("child stored");
    assert_eq!(child["parentSpanId"], root["spanId"]);
    assert_eq!(child["status"], json!({"code": "error", "message": "card declined"}));
    assert_eq!(child["links"][0]["spanId"], root["spanId"]);
    assert_eq!(child["links"][0]["attributes"], json!([{"key": "link.note", "type": "string", "value": "self"}]));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_over_grpc() {
    export_and_verify(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_over_http_protobuf() {
    export_and_verify(false).await;
}
