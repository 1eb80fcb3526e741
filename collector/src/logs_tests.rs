//! OTLP logs (`POST /v1/logs`, `LogsService/Export`): protobuf, JSON and
//! gzip exports over both transports land on the shards of their traces
//! exactly as sent. The error paths are the ones every signal shares
//! (tested for traces and metrics in http_tests.rs and grpc_tests.rs).

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use skein_model::logs::{log_rows_from_batch, log_rows_to_request};
use skein_model::shard_for_trace;
use tonic::codec::CompressionEncoding;

use crate::codec;
use crate::http_tests::{GZIP, JSON, PROTOBUF};
use crate::signal::Logs;
use crate::test_support::{Running, TestWriter, gzip, http_post, string_attr};

/// `n` records of service `checkout`, each in its own trace, plus one
/// without a trace.
fn logs_request(n: u8) -> ExportLogsServiceRequest {
    let mut records: Vec<LogRecord> = (1..=n)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i),
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue { value: Some(Value::StringValue(format!("request {i} done"))) }),
            attributes: vec![string_attr("http.route", "/cart")],
            trace_id: vec![i; 16],
            span_id: vec![i; 8],
            ..Default::default()
        })
        .collect();
    records.push(LogRecord {
        observed_time_unix_nano: 1_700_000_000_500_000_000,
        severity_number: 17,
        body: Some(AnyValue { value: Some(Value::IntValue(42)) }),
        ..Default::default()
    });
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", "checkout")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs { scope: Some(Default::default()), log_records: records, ..Default::default() }],
            schema_url: String::new(),
        }],
    }
}

/// Every record written, in shard order, regrouped into one request; and
/// checks each record with a trace sits on its trace's shard.
fn stored(writer: &TestWriter) -> ExportLogsServiceRequest {
    let mut rows = Vec::new();
    for (shard, batch) in writer.log_batches() {
        for row in log_rows_from_batch(&batch).expect("stored batch decodes") {
            if row.record.trace_id.len() == 16 {
                assert_eq!(shard, shard_for_trace(&row.record.trace_id, 4), "a record on its trace's shard");
            }
            rows.push(row);
        }
    }
    rows.sort_by_key(|r| (r.record.time_unix_nano, r.record.observed_time_unix_nano));
    log_rows_to_request(rows)
}

fn sorted(mut request: ExportLogsServiceRequest) -> ExportLogsServiceRequest {
    for resource in &mut request.resource_logs {
        for scope in &mut resource.scope_logs {
            scope.log_records.sort_by_key(|r| (r.time_unix_nano, r.observed_time_unix_nano));
        }
    }
    request
}

#[tokio::test]
async fn http_protobuf_json_and_gzip_logs_are_stored_exactly() {
    let writer = TestWriter::new(4);
    let server = Running::start(writer.clone()).await;
    let sent = logs_request(8);
    let response = http_post(server.http, "/v1/logs", &[PROTOBUF], &sent.encode_to_vec()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/x-protobuf"));
    let answer = ExportLogsServiceResponse::decode(&response.body[..]).expect("protobuf response");
    assert_eq!(answer.partial_success, None);
    assert_eq!(stored(&writer), sorted(sent.clone()));
    assert!(writer.log_batches().len() > 1, "records spread over the shards of their traces");
    assert!(writer.batches().is_empty() && writer.metric_batches().is_empty(), "logs stay logs");

    // The same request as OTLP/JSON (hex IDs, lowerCamelCase), gzipped.
    let writer = TestWriter::new(4);
    let server2 = Running::start(writer.clone()).await;
    let json = serde_json::to_vec(&sent).expect("serializes");
    let decoded = codec::decode_json::<Logs>(&json).expect("valid OTLP/JSON");
    assert_eq!(decoded, sent);
    let response = http_post(server2.http, "/v1/logs", &[JSON, GZIP], &gzip(&json)).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), "{}");
    assert_eq!(stored(&writer), sorted(sent.clone()));

    let text = server2.metrics_text();
    assert!(text.contains("skein_collector_log_records_accepted_total 9"), "{text}");
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="logs",transport="http",outcome="ok"} 1"#),
        "{text}"
    );
    server.stop().await;
    server2.stop().await;
}

#[tokio::test]
async fn http_logs_refuse_bad_bodies_with_400() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    let response = http_post(server.http, "/v1/logs", &[PROTOBUF], b"\xff\xff\xff").await;
    assert_eq!(response.status, 400, "{}", response.text());
    let response = http_post(server.http, "/v1/logs", &[JSON], br#"{"resourceLogs": [{"scopeLogs": 7}]}"#).await;
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(writer.log_batches().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn grpc_logs_are_stored_exactly_plain_and_gzipped() {
    let writer = TestWriter::new(4);
    let server = Running::start(writer.clone()).await;
    let sent = logs_request(5);
    let mut client = LogsServiceClient::connect(server.grpc_url()).await.expect("grpc client connects");
    let answer = client.export(sent.clone()).await.expect("export succeeds").into_inner();
    assert_eq!(answer.partial_success, None);
    assert_eq!(stored(&writer), sorted(sent.clone()));

    let mut gzipped = client.send_compressed(CompressionEncoding::Gzip);
    gzipped.export(sent.clone()).await.expect("gzipped export succeeds");
    let rows: usize = writer.log_batches().iter().map(|(_, b)| b.num_rows()).sum();
    assert_eq!(rows, 2 * 6);
    let text = server.metrics_text();
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="logs",transport="grpc",outcome="ok"} 2"#),
        "{text}"
    );
    server.stop().await;
}
