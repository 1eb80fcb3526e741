//! Log records over the two test shards, converted and sharded exactly as
//! ingest does (`skein_model::logs_to_arrow`):
//! - T1: `checkout` INFO "order 17 placed" (span 01, `BASE + 10 ms`) and
//!   `payments` ERROR "card declined: 50% off_code" (span 02, `BASE + 200
//!   ms`, `card=visa`);
//! - T2: `cart` WARN "cart is 95% full" (span 03, `BASE + 10 s`);
//! - no trace: `cart` DEBUG with a kvlist body (`BASE + 15 s`), and two
//!   `worker` INFO records "tick" at the same time (`BASE + 30 s`).

use std::sync::Arc;

use datafusion::catalog::{MemTable, TableProvider};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use skein_model::{ConvertLimits, log_schema, logs_to_arrow};

use crate::test_support::BASE;

const MS: u64 = 1_000_000;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn record(at_ms: u64, severity: i32, text_: &str, trace: u8, span: u8) -> LogRecord {
    LogRecord {
        time_unix_nano: BASE + at_ms * MS,
        severity_number: severity,
        severity_text: skein_model::logs::severity_band(severity).to_uppercase(),
        body: Some(AnyValue { value: Some(Value::StringValue(text_.into())) }),
        trace_id: if trace == 0 { vec![] } else { vec![trace; 16] },
        span_id: if span == 0 { vec![] } else { vec![span; 8] },
        ..Default::default()
    }
}

fn resource_logs(service: &str, records: Vec<LogRecord>) -> ResourceLogs {
    ResourceLogs {
        resource: Some(Resource { attributes: vec![text("service.name", service)], ..Default::default() }),
        scope_logs: vec![ScopeLogs {
            scope: Some(Default::default()),
            log_records: records,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// The request every test log record comes from.
pub(crate) fn logs_request() -> ExportLogsServiceRequest {
    let declined =
        LogRecord { attributes: vec![text("card", "visa")], ..record(200, 17, "card declined: 50% off_code", 0x11, 2) };
    let kvlist = LogRecord {
        body: Some(AnyValue {
            value: Some(Value::KvlistValue(KeyValueList { values: vec![text("event", "cart.viewed")] })),
        }),
        ..record(15_000, 5, "", 0, 0)
    };
    ExportLogsServiceRequest {
        resource_logs: vec![
            resource_logs("checkout", vec![record(10, 9, "order 17 placed", 0x11, 1)]),
            resource_logs("payments", vec![declined]),
            resource_logs("cart", vec![record(10_000, 13, "cart is 95% full", 0x22, 3), kvlist]),
            resource_logs("worker", vec![record(30_000, 9, "tick", 0, 0), record(30_000, 9, "tick", 0, 0)]),
        ],
    }
}

/// Two in-memory log shards, each record on the shard ingest puts it on.
pub(crate) fn log_shards() -> Vec<Arc<dyn TableProvider>> {
    let converted = logs_to_arrow(&logs_request(), &ConvertLimits::default(), 2).expect("converts");
    let parts = converted.split_by_shard(2).expect("splits");
    (0..2)
        .map(|shard| {
            let batches: Vec<_> = parts.iter().filter(|(s, _)| *s == shard).map(|(_, b)| b.clone()).collect();
            Arc::new(MemTable::try_new(log_schema(), vec![batches]).expect("mem table")) as Arc<dyn TableProvider>
        })
        .collect()
}
