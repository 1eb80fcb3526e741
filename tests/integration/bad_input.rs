//! Every error case gets its documented status, and the server keeps
//! serving: each bad request is followed by a good one.

use std::io::Write;

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

async fn post(node: &TestNode, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut request = node.http.post(format!("{}/v1/traces", node.otlp_http())).header("content-type", content_type);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.body(body).send().await.expect("request sent")
}

/// A good request after a bad one proves the server still serves.
async fn still_serving(node: &TestNode, n: u64) {
    let (status, body) = node.post_otlp_json(&good_request(n)).await;
    assert_eq!(status, 200, "good request after a bad one: {body}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_have_their_statuses() {
    let node = ClusterBuilder::new().configure(|c| c.collector.max_request_bytes = 64 * 1024).start().await;

    let r = post(&node, "application/x-protobuf", None, vec![0xff; 32]).await;
    assert_eq!(r.status(), 400);
    let status = tonic_types::Status::decode(r.bytes().await.expect("body")).expect("google.rpc.Status body");
    assert!(!status.message.is_empty(), "the 400 says what is wrong");
    still_serving(&node, 1).await;

    let r = post(&node, "application/json", None, b"{\"resourceSpans\": [".to_vec()).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json error body");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    still_serving(&node, 2).await;

    let r = post(&node, "application/json", Some("gzip"), b"not gzip at all".to_vec()).await;
    assert_eq!(r.status(), 400);
    still_serving(&node, 3).await;

    let r = post(&node, "text/plain", None, b"hello".to_vec()).await;
    assert_eq!(r.status(), 415);
    still_serving(&node, 4).await;

    let big = good_request(5).to_string() + &" ".repeat(100 * 1024);
    let r = post(&node, "application/json", None, big.into_bytes()).await;
    assert_eq!(r.status(), 413);
    still_serving(&node, 5).await;

    // A gzip bomb: tiny on the wire, far over the limit once inflated.
    let bomb = gzip(&vec![b' '; 50 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let r = post(&node, "application/json", Some("gzip"), bomb).await;
    assert_eq!(r.status(), 413);
    still_serving(&node, 6).await;

    let r = node.http.get(format!("{}/v1/nope", node.otlp_http())).send().await.expect("sent");
    assert_eq!(r.status(), 404);
    still_serving(&node, 7).await;
    assert_eq!(node.sql_count("SELECT count(*) FROM spans WHERE service_name = 'bad-input'").await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_unavailable_answers_503_and_unavailable_with_retry_info() {
    let node = ClusterBuilder::new().start().await;
    still_serving(&node, 1).await;
    // Storage going away (as during shutdown) must be retryable for clients.
    node.storage.close().await.expect("storage closes");

    let r = post(&node, "application/json", None, good_request(2).to_string().into_bytes()).await;
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
