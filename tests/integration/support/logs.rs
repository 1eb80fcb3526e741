//! Comparing the log records an SDK sent with what Skein stored: both as
//! one-record OTLP requests, protobuf-encoded and sorted, a form in which
//! two exports compare exactly whatever their grouping or order.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use prost::Message;
use serde_json::Value;
use skein_model::logs::{log_rows_from_batch, log_rows_to_request};

use super::TestNode;

/// Each record of `requests` as its own request, encoded, sorted.
pub fn explode(requests: &[ExportLogsServiceRequest]) -> Vec<Vec<u8>> {
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

/// Every record of `service` Skein stores (read from SQL as Arrow, turned
/// back into OTLP), exploded.
pub async fn stored(node: &TestNode, service: &str) -> Vec<Vec<u8>> {
    let batches = node.sql_arrow(&format!("SELECT * FROM logs WHERE service_name = '{service}'")).await;
    let requests: Vec<ExportLogsServiceRequest> = batches
        .iter()
        .map(|b| log_rows_to_request(log_rows_from_batch(b).expect("stored rows convert back to OTLP")))
        .collect();
    explode(&requests)
}

/// The exports a client script printed as hex-encoded protobuf.
pub fn decode_hex_requests(printed: &Value) -> Vec<ExportLogsServiceRequest> {
    printed
        .as_array()
        .expect("a list of hex-encoded requests")
        .iter()
        .map(|hex| {
            let bytes = const_hex::decode(hex.as_str().expect("hex")).expect("hex protobuf");
            ExportLogsServiceRequest::decode(bytes.as_slice()).expect("SDK request decodes")
        })
        .collect()
}
