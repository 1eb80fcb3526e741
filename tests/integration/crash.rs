//! Crash safety with the real binary: acknowledged spans survive SIGKILL
//! exactly once, and SIGTERM flushes everything to Parquet.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::support::process::SkeinProcess;

/// An export request with `spans` spans of one new trace.
fn request(trace: u32, spans: u32) -> Value {
    let trace_id = format!("{:032x}", u128::from(0x00C0_FFEE_0000_0000_u64) * 1_000_000 + u128::from(trace));
    let spans: Vec<Value> = (1..=spans)
        .map(|s| {
            json!({
                "traceId": trace_id,
                "spanId": format!("{:016x}", u64::from(trace) << 16 | u64::from(s)),
                "name": format!("op-{s}"),
                "kind": 2,
                "startTimeUnixNano": (1_731_000_000_000_000_000_u64 + u64::from(trace) * 1000).to_string(),
                "endTimeUnixNano": (1_731_000_000_000_500_000_u64 + u64::from(trace) * 1000).to_string(),
                "attributes": [{"key": "n", "value": {"intValue": s.to_string()}}]
            })
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "crash-test"}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]
    }]})
}

async fn count(query_url: &str, sql: &str) -> i64 {
    let body: Value = reqwest::Client::new()
        .post(format!("{query_url}/api/v1/sql"))
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .expect("sql request")
        .json()
        .await
        .expect("json");
    body["rows"][0][0].as_i64().unwrap_or_else(|| panic!("{sql}: {body}"))
}

async fn assert_exactly(process: &SkeinProcess, acked_spans: i64) {
    let total = count(&process.query, "SELECT count(*) FROM spans").await;
    let distinct = count(&process.query, "SELECT count(DISTINCT span_id) FROM spans").await;
    assert_eq!(distinct, total, "no span may be stored twice");
    assert!(total >= acked_spans, "{total} spans stored but {acked_spans} were acknowledged");
}

fn parquet_files(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            n += parquet_files(&path);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_sigkill_exactly_once() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let process = SkeinProcess::start(&data);
    let client = reqwest::Client::new();

    // A writer keeps sending while the process is killed; only what was
    // acknowledged before the kill is promised.
    let acked = Arc::new(std::sync::Mutex::new(0_i64));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, url, client) = (acked.clone(), stop.clone(), process.otlp_http.clone(), client.clone());
        tokio::spawn(async move {
            let mut trace = 0;
            while !stop.load(Ordering::SeqCst) {
                trace += 1;
                let sent = client
                    .post(format!("{url}/v1/traces"))
                    .header("content-type", "application/json")
                    .body(request(trace, 10).to_string())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => *acked.lock().expect("lock") += 10,
                    _ => break,
                }
            }
        })
    };
    // Kill once a good number of batches are acknowledged.
    while *acked.lock().expect("lock") < 500 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    process.kill9();
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer task");
    let acked = *acked.lock().expect("lock");
    assert_eq!(parquet_files(&data), 0, "nothing was flushed before the kill");

    // Restart: the WAL is replayed.
    let process = SkeinProcess::start(&data);
    assert_exactly(&process, acked).await;
    let after_replay = count(&process.query, "SELECT count(*) FROM spans").await;

    // SIGTERM flushes to Parquet; the next start must not replay it again.
    process.terminate();
    assert!(parquet_files(&data) > 0, "shutdown flushed the buffers to Parquet");
    let process = SkeinProcess::start(&data);
    assert_exactly(&process, acked).await;
    assert_eq!(count(&process.query, "SELECT count(*) FROM spans").await, after_replay);
    process.terminate();
}
