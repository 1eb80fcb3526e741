//! Crash safety with the real binary: acknowledged spans and metric points
//! survive SIGKILL exactly once, and SIGTERM flushes everything to Parquet.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::support::process::SkeinProcess;

/// An export request with `spans` spans of one new trace.
pub(crate) fn request(trace: u32, spans: u32) -> Value {
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

/// An export request with `points` gauge points of distinct series, all at
/// a time no other request of this test uses.
fn metrics_request(round: u32, points: u32) -> Value {
    let time = (1_731_000_000_000_000_000_u64 + u64::from(round) * 1_000_000).to_string();
    let points: Vec<Value> = (0..points)
        .map(|p| {
            json!({
                "timeUnixNano": time,
                "asDouble": f64::from(round) + f64::from(p) / 100.0,
                "attributes": [{"key": "core", "value": {"intValue": p.to_string()}}]
            })
        })
        .collect();
    json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "crash-test"}}]},
        "scopeMetrics": [{"scope": {"name": "t"}, "metrics": [
            {"name": "cpu.load", "unit": "1", "gauge": {"dataPoints": points}}
        ]}]
    }]})
}

pub(crate) async fn count(query_url: &str, sql: &str) -> i64 {
    let body: Value = skein_bench::client::http_client()
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

#[derive(Debug, Default, Clone, Copy)]
struct Acked {
    spans: i64,
    points: i64,
}

async fn assert_exactly(process: &SkeinProcess, acked: Acked) {
    let (total, points) = totals(process).await;
    let distinct = count(&process.query, "SELECT count(DISTINCT span_id) FROM spans").await;
    assert_eq!(distinct, total, "no span may be stored twice");
    assert!(total >= acked.spans, "{total} spans stored but {} were acknowledged", acked.spans);
    let distinct =
        count(&process.query, "SELECT count(*) FROM (SELECT DISTINCT series_id, time FROM metrics) AS d").await;
    assert_eq!(distinct, points, "no metric point may be stored twice");
    assert!(points >= acked.points, "{points} points stored but {} were acknowledged", acked.points);
}

async fn totals(process: &SkeinProcess) -> (i64, i64) {
    (
        count(&process.query, "SELECT count(*) FROM spans").await,
        count(&process.query, "SELECT count(*) FROM metrics").await,
    )
}

/// POSTs an OTLP/JSON export; true once the server acknowledged it.
pub(crate) async fn acknowledged(client: &reqwest::Client, url: &str, body: &Value) -> bool {
    let sent = client.post(url).header("content-type", "application/json").body(body.to_string()).send().await;
    sent.is_ok_and(|r| r.status() == 200)
}

pub(crate) fn parquet_files(dir: &Path) -> usize {
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
async fn acknowledged_spans_and_points_survive_sigkill_exactly_once() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let process = SkeinProcess::start(&data);
    let client = skein_bench::client::http_client();

    // A writer keeps sending while the process is killed; only what was
    // acknowledged before the kill is promised.
    let acked = Arc::new(std::sync::Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, url, client) = (acked.clone(), stop.clone(), process.otlp_http.clone(), client.clone());
        tokio::spawn(async move {
            let mut trace = 0;
            while !stop.load(Ordering::SeqCst) {
                trace += 1;
                if !acknowledged(&client, &format!("{url}/v1/traces"), &request(trace, 10)).await {
                    break;
                }
                acked.lock().expect("lock").spans += 10;
                if !acknowledged(&client, &format!("{url}/v1/metrics"), &metrics_request(trace, 10)).await {
                    break;
                }
                acked.lock().expect("lock").points += 10;
            }
        })
    };
    // Kill once a good number of batches are acknowledged.
    while acked.lock().expect("lock").points < 500 {
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
    // A second process on the directory in use is refused before it
    // touches it, naming the holder; the first serves on, nothing lost.
    let (status, stderr) = process.start_another(&data);
    assert!(!status.success(), "a second skein started on a data directory in use");
    let holder = format!("is in use by another Skein process (pid {})", process.pid());
    assert!(stderr.contains(&holder), "{stderr}");
    assert_exactly(&process, acked).await;
    let after_replay = totals(&process).await;

    // SIGTERM flushes to Parquet; the next start must not replay it again.
    process.terminate();
    for signal in ["spans", "metrics"] {
        let files: usize = std::fs::read_dir(&data)
            .expect("data dir")
            .flatten()
            .map(|shard| shard.path().join(signal))
            .filter(|dir| dir.is_dir())
            .map(|dir| parquet_files(&dir))
            .sum();
        assert!(files > 0, "shutdown flushed the {signal} buffers to Parquet");
    }
    let process = SkeinProcess::start(&data);
    assert_exactly(&process, acked).await;
    assert_eq!(totals(&process).await, after_replay);
    process.terminate();
}
