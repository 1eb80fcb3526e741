//! The logs signal in storage: durable through a crash, flushed to Parquet
//! sorted by service and time with a trace-ID index that skips records
//! without a trace, and lookups by trace ID that open only the files that
//! may hold the trace.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use skein_model::logs::{log_rows_from_batch, log_rows_to_request};
use skein_model::logs_to_arrow;

use super::*;

fn logs_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("shard-0000/logs")
}

/// `n` records of `service` from `start_ns`, every other one in trace `trace`.
fn logs_request(service: &str, trace: u32, n: u64, start_ns: u64) -> ExportLogsServiceRequest {
    let records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: start_ns + i * 1_000,
            severity_number: 9,
            body: Some(AnyValue { value: Some(Value::StringValue(format!("{service} line {i}"))) }),
            trace_id: if i % 2 == 0 { trace_id(trace) } else { Vec::new() },
            attributes: vec![kv("http.route", &format!("/{service}")), kv("line", &i.to_string())],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![opentelemetry_proto::tonic::common::v1::KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue { value: Some(Value::StringValue(service.into())) }),
                    key_strindex: 0,
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(Default::default()),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

async fn write_logs(storage: &Storage, request: &ExportLogsServiceRequest) {
    let batch = logs_to_arrow(request, &ConvertLimits::default(), 1).expect("converts").batch;
    storage.write(Signal::Logs, 0, batch).await.expect("write accepted");
}

fn log_context(storage: &Storage) -> SessionContext {
    let ctx = SessionContext::new();
    ctx.register_table("logs", Arc::clone(&storage.log_tables()[0])).expect("registers");
    ctx
}

/// Every stored record as one request per record, sorted: comparable with
/// what was written whatever the order of rows.
async fn stored(storage: &Storage) -> Vec<ExportLogsServiceRequest> {
    let batches = log_context(storage).sql("SELECT * FROM logs").await.expect("plans").collect().await.expect("runs");
    let mut rows: Vec<_> = batches.iter().flat_map(|b| log_rows_from_batch(b).expect("decodes")).collect();
    rows.sort_by_key(|r| (r.timestamp_unix_nano, r.service_name.clone()));
    rows.into_iter().map(|r| log_rows_to_request(vec![r])).collect()
}

fn expected(requests: &[ExportLogsServiceRequest]) -> Vec<ExportLogsServiceRequest> {
    let batches: Vec<_> =
        requests.iter().map(|r| logs_to_arrow(r, &ConvertLimits::default(), 1).expect("converts").batch).collect();
    let mut rows: Vec<_> = batches.iter().flat_map(|b| log_rows_from_batch(b).expect("decodes")).collect();
    rows.sort_by_key(|r| (r.timestamp_unix_nano, r.service_name.clone()));
    rows.into_iter().map(|r| log_rows_to_request(vec![r])).collect()
}

#[tokio::test]
async fn logs_survive_a_crash_and_flush_to_indexed_parquet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sent = [logs_request("cart", 1, 6, BASE_NS), logs_request("api", 2, 4, BASE_NS + 500)];
    let storage = open(quiet_config(dir.path())).await;
    for request in &sent {
        write_logs(&storage, request).await;
    }
    crash(storage).await;
    assert_eq!(files_with_suffix(&logs_dir(dir.path()).join("wal"), ".wal").len(), 1, "logs have their own wal");

    let storage = open(quiet_config(dir.path())).await;
    assert_eq!(stored(&storage).await, expected(&sent), "replayed from the wal");
    storage.flush_all().await.expect("flushes");
    assert_eq!(files_with_suffix(&logs_dir(dir.path()), ".parquet").len(), 1);
    assert_eq!(files_with_suffix(&logs_dir(dir.path()), ".tidx").len(), 1, "logs get a trace index");
    assert_eq!(stored(&storage).await, expected(&sent), "read back from parquet");

    let ctx = log_context(&storage);
    // A second file without trace 1: a lookup of trace 1 opens one file
    // only (records without a trace do not make the index incomplete).
    write_logs(&storage, &logs_request("worker", 3, 4, BASE_NS + 10_000)).await;
    storage.flush_all().await.expect("flushes");
    assert_eq!(files_with_suffix(&logs_dir(dir.path()), ".parquet").len(), 2);
    let lookup = format!("SELECT * FROM logs WHERE trace_id = '{}'", trace_hex(1));
    assert_eq!(planned_files_in(&ctx, &lookup).await, 1);
    let found = ctx.sql(&lookup).await.expect("plans").collect().await.expect("runs");
    assert_eq!(found.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
}

#[tokio::test]
async fn logs_are_flushed_in_arrival_order_and_compacted_sorted_by_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(super::compaction::compacting(quiet_config(dir.path()))).await;
    let file_services = || {
        let files = files_with_suffix(&logs_dir(dir.path()), ".parquet");
        files.iter().map(|f| crate::parquet_files::read_file(f).iter().flat_map(log_rows_services).collect()).collect()
    };
    let owned = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<String>>();

    let sent = [
        logs_request("cart", 1, 2, BASE_NS),
        logs_request("api", 2, 2, BASE_NS + 500),
        logs_request("billing", 3, 1, BASE_NS + 900),
    ];
    write_logs(&storage, &sent[0]).await;
    write_logs(&storage, &sent[1]).await;
    storage.flush_all().await.expect("flushes");
    let flushed: Vec<Vec<String>> = file_services();
    assert_eq!(flushed, [owned(&["cart", "cart", "api", "api"])], "a flush keeps arrival order");
    write_logs(&storage, &sent[2]).await;
    storage.flush_all().await.expect("flushes");

    let ctx = log_context(&storage);
    let by_route = "SELECT log_attributes['http.route'] AS route, resource_attributes['service.name'] AS service, \
                    count(*) AS n FROM logs WHERE log_attributes['line'] = '1' GROUP BY 1, 2 ORDER BY 1";
    let flushed_answer = run(&ctx, by_route).await;
    assert_eq!(flushed_answer.matches("| 1 ").count(), 2, "{flushed_answer}");

    assert_eq!(storage.compact_now().await.expect("compacts"), 1);
    let compacted: Vec<Vec<String>> = file_services();
    assert_eq!(compacted, [owned(&["api", "api", "billing", "cart", "cart"])], "compaction sorts by service");
    assert_eq!(stored(&storage).await, expected(&sent), "every record once, attributes intact");
    // Log files carry attribute columns too, and answer lookups alike.
    let files = files_with_suffix(&logs_dir(dir.path()), ".parquet");
    let schema = crate::parquet_files::read_file(&files[0])[0].schema();
    assert!(schema.column_with_name("log_attributes.http.route").is_some(), "{schema:?}");
    assert!(schema.column_with_name("resource_attributes.service.name").is_some(), "{schema:?}");
    assert_eq!(run(&ctx, by_route).await, flushed_answer);
}

fn log_rows_services(batch: &RecordBatch) -> Vec<String> {
    use datafusion::arrow::array::AsArray;
    let services = batch.column_by_name(skein_model::logs::schema::col::SERVICE_NAME).expect("service_name column");
    services.as_string::<i32>().iter().map(|s| s.unwrap_or_default().to_owned()).collect()
}
