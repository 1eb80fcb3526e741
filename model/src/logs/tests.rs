//! The log schema is lossless, and records are sharded with their traces.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::to_arrow::logs_to_arrow_at;
use super::*;
use crate::roundtrip_tests::{all_types, kv};
use crate::{ConvertLimits, shard_for_trace};

const RECEIVED: i64 = 1_800_000_000_000_000_000;

fn record(body: Option<Value>) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_001,
        observed_time_unix_nano: 1_700_000_000_000_000_002,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: body.map(|value| AnyValue { value: Some(value) }),
        attributes: all_types(),
        dropped_attributes_count: 2,
        flags: 1,
        trace_id: vec![0xab; 16],
        span_id: vec![1; 8],
        event_name: "payment.declined".into(),
    }
}

fn sample_request() -> ExportLogsServiceRequest {
    let bodies = all_types().into_iter().map(|kv| kv.value.and_then(|v| v.value));
    let mut records: Vec<LogRecord> = bodies.map(record).collect();
    // No body, unset times, no IDs, an empty AnyValue body, odd IDs.
    records.push(LogRecord { severity_text: "bare".into(), ..Default::default() });
    records.push(LogRecord { body: Some(AnyValue { value: None }), ..Default::default() });
    records.push(LogRecord { trace_id: vec![1, 2, 3], span_id: vec![0; 8], ..record(None) });
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue("payments".into()))],
                    dropped_attributes_count: 1,
                    entity_refs: vec![],
                }),
                scope_logs: vec![
                    ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "app.logger".into(),
                            version: "1.2".into(),
                            attributes: vec![kv("scope.k", Value::IntValue(5))],
                            dropped_attributes_count: 3,
                        }),
                        log_records: records,
                        schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
                    },
                    ScopeLogs {
                        scope: Some(InstrumentationScope::default()),
                        log_records: vec![record(Some(Value::StringValue("second scope".into())))],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.20.0".into(),
            },
            ResourceLogs {
                resource: Some(Resource::default()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope::default()),
                    log_records: vec![LogRecord { trace_id: vec![7; 16], ..record(None) }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

#[test]
fn logs_round_trip_losslessly() {
    let request = sample_request();
    let converted = logs_to_arrow(&request, &ConvertLimits::default(), 1).expect("converts");
    assert_eq!(converted.batch.num_rows(), 13);
    assert_eq!((converted.rejected, converted.truncated_values), (0, 0));
    let rows = log_rows_from_batch(&converted.batch).expect("decodes");
    assert_eq!(log_rows_to_request(rows), request);
    // And through protobuf bytes.
    let bytes = request.encode_to_vec();
    let again = logs_to_arrow_from_protobuf(&bytes, &ConvertLimits::default(), 1).expect("converts");
    assert_eq!(log_rows_to_request(log_rows_from_batch(&again.batch).expect("decodes")), request);
}

#[test]
fn timestamp_falls_back_to_observed_time_then_receipt() {
    let mut only_observed = record(None);
    only_observed.time_unix_nano = 0;
    let unset = LogRecord::default();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![record(None), only_observed, unset], ..Default::default() }],
            ..Default::default()
        }],
    };
    let batch = logs_to_arrow_at(&request, &ConvertLimits::default(), 1, RECEIVED).expect("converts").batch;
    let rows = log_rows_from_batch(&batch).expect("decodes");
    let stamps: Vec<i64> = rows.iter().map(|r| r.timestamp_unix_nano).collect();
    assert_eq!(stamps, [1_700_000_000_000_000_001, 1_700_000_000_000_000_002, RECEIVED]);
    // What was sent comes back, unset times included.
    assert_eq!((rows[2].record.time_unix_nano, rows[2].record.observed_time_unix_nano), (0, 0));
    assert_eq!(rows[2].service_name, crate::schema::UNKNOWN_SERVICE);
}

#[test]
fn records_with_a_trace_live_on_its_shard_and_others_spread() {
    let shards = 16;
    let mut records: Vec<LogRecord> =
        (0u8..64).map(|i| LogRecord { trace_id: vec![i + 1; 16], ..record(None) }).collect();
    records.extend((0..256).map(|i| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        trace_id: vec![],
        body: Some(AnyValue { value: Some(Value::StringValue(format!("line {i}"))) }),
        ..record(None)
    }));
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: records.clone(), ..Default::default() }],
            ..Default::default()
        }],
    };
    let converted = logs_to_arrow(&request, &ConvertLimits::default(), shards).expect("converts");
    for (row, record) in records.iter().take(64).enumerate() {
        assert_eq!(converted.shard_of_row[row] as usize, shard_for_trace(&record.trace_id, shards));
    }
    let untraced = &converted.shard_of_row[64..];
    let used: std::collections::BTreeSet<u32> = untraced.iter().copied().collect();
    assert!(used.len() > shards / 2, "256 records without a trace should spread, used {used:?}");
    // Deterministic: a retried request goes where the first one went.
    let again = logs_to_arrow(&request, &ConvertLimits::default(), shards).expect("converts");
    assert_eq!(again.shard_of_row, converted.shard_of_row);
    let parts = converted.split_by_shard(shards).expect("splits");
    assert_eq!(parts.iter().map(|(_, b)| b.num_rows()).sum::<usize>(), records.len());
}

#[test]
fn long_attribute_values_are_cut_and_counted_but_bodies_kept() {
    let long = "x".repeat(100);
    let mut r = record(Some(Value::StringValue(long.clone())));
    r.attributes = vec![kv("long", Value::StringValue(long.clone()))];
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![r], ..Default::default() }],
            ..Default::default()
        }],
    };
    let limits = ConvertLimits { max_attribute_value_bytes: 10 };
    let converted = logs_to_arrow(&request, &limits, 1).expect("converts");
    assert_eq!(converted.truncated_values, 1);
    assert!(converted.first_error.as_deref().is_some_and(|e| e.contains("truncated")));
    let rows = log_rows_from_batch(&converted.batch).expect("decodes");
    assert_eq!(rows[0].record.body, Some(AnyValue { value: Some(Value::StringValue(long)) }));
    assert_eq!(rows[0].record.attributes[0].value, Some(AnyValue { value: Some(Value::StringValue("x".repeat(10))) }));
}

#[test]
fn json_types_the_body_and_names_the_severity_band() {
    let request = sample_request();
    let batch = logs_to_arrow(&request, &ConvertLimits::default(), 1).expect("converts").batch;
    let rows = log_rows_from_batch(&batch).expect("decodes");
    let first = log_to_json(&rows[0]);
    assert_eq!(first["body"], serde_json::json!({"type": "string", "value": "ünïcødé ✓ 日本"}));
    assert_eq!(first["severity"], "error");
    assert_eq!(first["traceId"], "abababababababababababababababab");
    assert_eq!(first["spanId"], "0101010101010101");
    assert_eq!(first["timeUnixNano"], "1700000000000000001");
    assert_eq!(first["serviceName"], "payments");
    assert_eq!(first["eventName"], "payment.declined");
    assert_eq!(log_to_json(&rows[1])["body"], serde_json::json!({"type": "bool", "value": true}));
    assert_eq!(log_to_json(&rows[5])["body"]["type"], "array");
    let bare = log_to_json(&rows[8]);
    assert_eq!(bare["body"], serde_json::Value::Null);
    assert_eq!(bare["traceId"], serde_json::Value::Null);
    assert_eq!(bare["observedTimeUnixNano"], serde_json::Value::Null);
    assert_eq!(bare["severity"], "unspecified");
    assert_eq!(log_to_json(&rows[9])["body"], serde_json::json!({"type": "empty", "value": null}));
}
