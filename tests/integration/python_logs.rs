//! The OpenTelemetry Python SDK exports logs (Python `logging` through the
//! SDK's handler, and the Logs API with a structured body) over gRPC and
//! HTTP/protobuf; every record it sent comes back exactly from SQL (read
//! as Arrow, converted back to OTLP) before and after flush, the log API
//! finds them, and the trace's logs are served with the trace.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use prost::Message;
use serde_json::Value;
use skein_model::logs::{log_rows_from_batch, log_rows_to_request};

use crate::support::python::send_logs;
use crate::support::{ClusterBuilder, TestNode};

/// Each record as its own one-record request, protobuf-encoded: a form in
/// which two exports compare exactly, whatever their grouping or order.
fn explode(requests: &[ExportLogsServiceRequest]) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    for request in requests {
        for rl in &request.resource_logs {
            for sl in &rl.scope_logs {
                for record in &sl.log_records {
                    let one = ExportLogsServiceRequest {
                        resource_logs: vec![ResourceLogs {
                            scope_logs: vec![ScopeLogs { log_records: vec![record.clone()], ..sl.clone() }],
                            ..rl.clone()
                        }],
                    };
                    records.push(one.encode_to_vec());
                }
            }
        }
    }
    records.sort();
    records
}

async fn stored_records(node: &TestNode, service: &str) -> Vec<Vec<u8>> {
    let batches = node.sql_arrow(&format!("SELECT * FROM logs WHERE service_name = '{service}'")).await;
    let requests: Vec<ExportLogsServiceRequest> = batches
        .iter()
        .map(|b| log_rows_to_request(log_rows_from_batch(b).expect("stored rows convert back to OTLP")))
        .collect();
    explode(&requests)
}

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

    let buffered = stored_records(&node, &service).await;
    assert!(buffered == want, "every record round-trips exactly before flush");
    node.flush().await;
    let flushed = stored_records(&node, &service).await;
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
