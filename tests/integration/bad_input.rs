//! Every error case gets its documented status, for traces and metrics
//! alike, and the server keeps serving: each bad request is followed by a
//! good one, and what was acknowledged before stays.

use std::io::Write;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde_json::{Value, json};

use crate::support::{ClusterBuilder, TestNode};

fn good_request(n: u64) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bad-input"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{:032x}", 0xbad0000 + n),
            "spanId": format!("{:016x}", 0xbad0000 + n),
            "name": "ok",
            "startTimeUnixNano": "1731000000000000000",
            "endTimeUnixNano": "1731000000000001000"
        }]}]
    }]})
}

fn good_metrics_request(n: u64) -> Value {
    json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bad-input"}}]},
        "scopeMetrics": [{"metrics": [{
            "name": "bad_input.requests",
            "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [{
                "startTimeUnixNano": "1731000000000000000",
                "timeUnixNano": (1_731_000_000_000_000_000_u64 + n).to_string(),
                "asInt": n.to_string()
            }]}
        }]}]
    }]})
}

/// The traces or the metrics signal, as the HTTP error tests see it.
#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }

    fn good(self, n: u64) -> Value {
        match self {
            Signal::Traces => good_request(n),
            Signal::Metrics => good_metrics_request(n),
        }
    }

    fn count_sql(self) -> &'static str {
        match self {
            Signal::Traces => "SELECT count(*) FROM spans WHERE service_name = 'bad-input'",
            Signal::Metrics => "SELECT count(*) FROM metrics WHERE service_name = 'bad-input'",
        }
    }
}

async fn post_to(
    node: &TestNode,
    signal: Signal,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let url = format!("{}{}", node.otlp_http(), signal.path());
    let mut request = node.http.post(url).header("content-type", content_type);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.body(body).send().await.expect("request sent")
}

/// A good request after a bad one proves the server still serves.
async fn still_serving(node: &TestNode, n: u64) {
    still_serving_signal(node, Signal::Traces, n).await;
}

async fn still_serving_signal(node: &TestNode, signal: Signal, n: u64) {
    let r = post_to(node, signal, "application/json", None, signal.good(n).to_string().into_bytes()).await;
    let status = r.status();
    assert_eq!(status, 200, "good request after a bad one: {}", r.text().await.unwrap_or_default());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_have_their_statuses() {
    http_errors(Signal::Traces).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_http_errors_have_their_statuses() {
    http_errors(Signal::Metrics).await;
}

async fn http_errors(signal: Signal) {
    let node = ClusterBuilder::new().configure(|c| c.collector.max_request_bytes = 64 * 1024).start().await;
    let node_ref = &node;
    let post = move |content_type: &'static str, encoding: Option<&'static str>, body: Vec<u8>| {
        post_to(node_ref, signal, content_type, encoding, body)
    };

    let r = post("application/x-protobuf", None, vec![0xff; 32]).await;
    assert_eq!(r.status(), 400);
    let status = tonic_types::Status::decode(r.bytes().await.expect("body")).expect("google.rpc.Status body");
    assert!(!status.message.is_empty(), "the 400 says what is wrong");
    still_serving_signal(&node, signal, 1).await;

    let r = post("application/json", None, b"{\"resourceSpans\": [".to_vec()).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json error body");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    still_serving_signal(&node, signal, 2).await;

    let r = post("application/json", Some("gzip"), b"not gzip at all".to_vec()).await;
    assert_eq!(r.status(), 400);
    still_serving_signal(&node, signal, 3).await;

    let r = post("text/plain", None, b"hello".to_vec()).await;
    assert_eq!(r.status(), 415);
    still_serving_signal(&node, signal, 4).await;

    let big = signal.good(5).to_string() + &" ".repeat(100 * 1024);
    let r = post("application/json", None, big.into_bytes()).await;
    assert_eq!(r.status(), 413);
    still_serving_signal(&node, signal, 5).await;

    // A gzip bomb: tiny on the wire, far over the limit once inflated.
    let bomb = gzip(&vec![b' '; 50 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let r = post("application/json", Some("gzip"), bomb).await;
    assert_eq!(r.status(), 413);
    still_serving_signal(&node, signal, 6).await;

    let r = node.http.get(format!("{}/v1/nope", node.otlp_http())).send().await.expect("sent");
    assert_eq!(r.status(), 404);
    still_serving_signal(&node, signal, 7).await;
    assert_eq!(node.sql_count(signal.count_sql()).await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_unavailable_answers_503_and_unavailable_with_retry_info() {
    let node = ClusterBuilder::new().start().await;
    still_serving(&node, 1).await;
    // Storage going away (as during shutdown) must be retryable for clients.
    node.storage.close().await.expect("storage closes");

    let r = post_to(&node, Signal::Traces, "application/json", None, good_request(2).to_string().into_bytes()).await;
    assert_eq!(r.status(), 503);
    let retry_after: u64 = r.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry_after >= 1);

    let mut client = TraceServiceClient::connect(node.otlp_grpc()).await.expect("grpc connects");
    let request: ExportTraceServiceRequest = serde_json::from_value(good_request(3)).expect("parses");
    let err = client.export(request).await.expect_err("refused while storage is closed");
    assert_eq!(err.code(), tonic::Code::Unavailable);
    use tonic_types::StatusExt;
    assert!(err.get_details_retry_info().is_some_and(|r| r.retry_delay.is_some()), "RetryInfo: {err:?}");
    // What was acknowledged before is still there.
    assert_eq!(node.sql_count("SELECT count(*) FROM spans").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_partial_success_and_limits() {
    let node = ClusterBuilder::new().configure(|c| c.collector.max_request_bytes = 64 * 1024).start().await;
    let mut client = TraceServiceClient::connect(node.otlp_grpc()).await.expect("grpc connects");
    let mut request: ExportTraceServiceRequest = serde_json::from_value(good_request(1)).expect("parses");
    let mut bad = request.resource_spans[0].scope_spans[0].spans[0].clone();
    bad.span_id = vec![0; 8];
    request.resource_spans[0].scope_spans[0].spans.push(bad);
    let response = client.export(request).await.expect("accepted").into_inner();
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("span_id"), "{}", partial.error_message);

    let mut huge: ExportTraceServiceRequest = serde_json::from_value(good_request(2)).expect("parses");
    huge.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(100 * 1024);
    let err = client.export(huge).await.expect_err("too large");
    assert_ne!(err.code(), tonic::Code::Ok);
    assert_ne!(err.code(), tonic::Code::Unavailable, "a too-large message must not be retried");

    let ok: ExportTraceServiceRequest = serde_json::from_value(good_request(3)).expect("parses");
    client.export(ok).await.expect("still serving");
    assert_eq!(node.sql_count("SELECT count(*) FROM spans").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_grpc_partial_success_and_unavailable() {
    let node = ClusterBuilder::new().configure(|c| c.collector.max_request_bytes = 64 * 1024).start().await;
    let mut client = MetricsServiceClient::connect(node.otlp_grpc()).await.expect("grpc connects");
    let mut request: ExportMetricsServiceRequest = serde_json::from_value(good_metrics_request(1)).expect("parses");
    // A point without a timestamp cannot be placed in time: refused alone.
    let metric = &mut request.resource_metrics[0].scope_metrics[0].metrics[0];
    let mut bad = metric.clone();
    bad.name = "bad_input.untimed".into();
    if let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(sum)) = bad.data.as_mut() {
        sum.data_points[0].time_unix_nano = 0;
    }
    request.resource_metrics[0].scope_metrics[0].metrics.push(bad);
    let response = client.export(request).await.expect("accepted").into_inner();
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_data_points, 1);
    assert!(!partial.error_message.is_empty());

    let mut huge: ExportMetricsServiceRequest = serde_json::from_value(good_metrics_request(2)).expect("parses");
    huge.resource_metrics[0].scope_metrics[0].metrics[0].description = "x".repeat(100 * 1024);
    let err = client.export(huge).await.expect_err("too large");
    assert_ne!(err.code(), tonic::Code::Ok);
    assert_ne!(err.code(), tonic::Code::Unavailable, "a too-large message must not be retried");
    assert_eq!(node.sql_count("SELECT count(*) FROM metrics").await, 1);

    node.storage.close().await.expect("storage closes");
    let request: ExportMetricsServiceRequest = serde_json::from_value(good_metrics_request(3)).expect("parses");
    let err = client.export(request).await.expect_err("refused while storage is closed");
    assert_eq!(err.code(), tonic::Code::Unavailable);
    use tonic_types::StatusExt;
    assert!(err.get_details_retry_info().is_some_and(|r| r.retry_delay.is_some()), "RetryInfo: {err:?}");
    let r = post_to(&node, Signal::Metrics, "application/json", None, good_metrics_request(4).to_string().into_bytes())
        .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(node.sql_count("SELECT count(*) FROM metrics").await, 1, "acknowledged points stay");
}
