//! The OpenTelemetry Python SDK exports logs (Python `logging` through the
//! SDK's handler, and the Logs API with a structured body) over gRPC and
//! HTTP/protobuf; every record it sent comes back exactly from SQL (read
//! as Arrow, converted back to OTLP) before and after flush, the log API
//! finds them, and the trace's logs are served with the trace.

use serde_json::Value;

use crate::support::ClusterBuilder;
use crate::support::logs::{explode, stored};
use crate::support::python::send_logs;

async fn round_trip(protocol: &'static str) {
    let node = ClusterBuilder::new().shards(3).start().await;
    let endpoint = if protocol == "grpc" { node.otlp_grpc() } else { node.otlp_http() };
    let service = format!("logs-py-{protocol}");
    let service_arg = service.clone();
    let sent =
        tokio::task::spawn_blocking(move || send_logs(&endpoint, protocol, &service_arg)).await.expect("script task");
    let want = explode(&sent.requests);
    assert_eq!(want.len(), sent.count, "the SDK exported every record");
    let records: Vec<_> = sent
        .requests
        .iter()
        .flat_map(|r| &r.resource_logs)
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .collect();
    assert!(
        records.iter().any(|r| r.body.as_ref().is_some_and(|b| matches!(
            b.value,
            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::KvlistValue(_))
        ))),
        "a structured body was sent"
    );
    assert!(records.iter().any(|r| r.attributes.iter().any(|a| a.key == "exception.type")), "an exception was logged");

    let buffered = stored(&node, &service).await;
    assert!(buffered == want, "every record round-trips exactly before flush");
    node.flush().await;
    let flushed = stored(&node, &service).await;
    assert!(flushed == want, "every record round-trips exactly after flush");

    // The log API: the error of the trace, found by severity and text.
    let (status, found) = node.get(&format!("/api/v1/logs?service={service}&severity=error&q=ORDER%2017")).await;
    assert_eq!(status, 200, "{found}");
    let logs = found["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1, "{found}");
    assert_eq!(logs[0]["body"]["value"], sent.error_body.as_str());
    assert_eq!(logs[0]["traceId"], sent.trace_id.as_str());
    assert_eq!(logs[0]["spanId"], sent.span_id.as_str());
    let (status, volume) = node.get(&format!("/api/v1/logs/volume?service={service}")).await;
    assert_eq!(status, 200, "{volume}");
    assert_eq!(volume["total"], sent.count);

    // The trace's logs: the three records logged inside its span, oldest first.
    let (status, trace_logs) = node.get(&format!("/api/v1/traces/{}/logs", sent.trace_id)).await;
    assert_eq!(status, 200, "{trace_logs}");
    let bodies: Vec<&Value> =
        trace_logs["logs"].as_array().expect("logs").iter().map(|l| &l["body"]["value"]).collect();
    assert_eq!(bodies, ["order 17 placed by ada", "stock low", sent.error_body.as_str()]);
    let (status, trace) = node.get(&format!("/api/v1/traces/{}", sent.trace_id)).await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["spans"][0]["spanId"], sent.span_id.as_str());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_logs_over_grpc() {
    round_trip("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_logs_over_http() {
    round_trip("http").await;
}
