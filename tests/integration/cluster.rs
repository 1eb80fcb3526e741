//! The cluster as separate processes: collectors route by shard to storage
//! nodes, query nodes federate over Arrow Flight, and answers equal
//! all-in-one's on the same data. Failures: a killed collector or storage
//! node never loses an acknowledged span, writes and queries that need a
//! down node get retryable 503s that name it, and a restarted storage node
//! replays its WAL. `skein cluster up` starts and stops a whole cluster.
//! Failover with the WAL in SeaweedFS is in `failover.rs`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::cluster::{ProcessCluster, ProcessClusterBuilder};
use crate::support::process::SkeinProcess;
use crate::support::seaweedfs::SeaweedFs;

pub(crate) fn trace_id(trace: u32) -> String {
    format!("{:032x}", 0xC1A5_7E00_0000_u128 * 1_000_000 + u128::from(trace))
}

/// An OTLP/JSON export of one trace with `spans` spans in two services.
pub(crate) fn trace_request(trace: u32, spans: u32) -> Value {
    let trace_id = trace_id(trace);
    let base = 1_731_000_000_000_000_000_u64 + u64::from(trace) * 1_000_000;
    let span = |s: u32| {
        json!({
            "traceId": trace_id,
            "spanId": format!("{:016x}", u64::from(trace) << 16 | u64::from(s)),
            "parentSpanId": if s == 1 { String::new() } else { format!("{:016x}", u64::from(trace) << 16 | 1) },
            "name": format!("op-{}", s % 3),
            "kind": 2,
            "startTimeUnixNano": (base + u64::from(s) * 1000).to_string(),
            "endTimeUnixNano": (base + u64::from(s) * 1000 + u64::from(trace % 7 + 1) * 100_000).to_string(),
            "status": { "code": if trace.is_multiple_of(5) && s == 1 { 2 } else { 0 } },
            "attributes": [{"key": "http.route", "value": {"stringValue": format!("/r/{}", trace % 4)}}]
        })
    };
    let (front, back): (Vec<u32>, Vec<u32>) = (1..=spans).partition(|s| s % 2 == 1);
    let resource = |service: &str, ids: &[u32]| {
        json!({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"scope": {"name": "t"}, "spans": ids.iter().map(|&s| span(s)).collect::<Vec<_>>()}]
        })
    };
    json!({"resourceSpans": [resource("frontend", &front), resource("backend", &back)]})
}

fn metrics_request(round: u32) -> Value {
    let points: Vec<Value> = (0..8)
        .map(|p| {
            json!({
                "timeUnixNano": (1_731_000_000_000_000_000_u64 + u64::from(round) * 1_000_000_000).to_string(),
                "asDouble": f64::from(round * 10 + p),
                "attributes": [{"key": "core", "value": {"intValue": p.to_string()}}]
            })
        })
        .collect();
    json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "frontend"}}]},
        "scopeMetrics": [{"scope": {"name": "t"}, "metrics": [
            {"name": "cpu.load", "unit": "1", "gauge": {"dataPoints": points}}
        ]}]
    }]})
}

/// An OTLP/JSON logs export: a record in each of traces 1..=10 (so each
/// lives on its trace's shard) and ten without a trace.
fn logs_request() -> Value {
    let record = |i: u32, traced: bool| {
        let mut record = json!({
            "timeUnixNano": (1_731_000_000_000_000_000_u64 + u64::from(i) * 1_000_000).to_string(),
            "severityNumber": if i.is_multiple_of(3) { 17 } else { 9 },
            "severityText": if i.is_multiple_of(3) { "ERROR" } else { "INFO" },
            "body": {"stringValue": format!("request {i} handled")},
            "attributes": [{"key": "attempt", "value": {"intValue": (i % 2).to_string()}}]
        });
        if traced {
            record["traceId"] = json!(trace_id(i));
            record["spanId"] = json!(format!("{:016x}", u64::from(i) << 16 | 1));
        }
        record
    };
    let records: Vec<Value> = (1..=10).map(|i| record(i, true)).chain((11..=20).map(|i| record(i, false))).collect();
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "frontend"}}]},
        "scopeLogs": [{"scope": {"name": "t"}, "logRecords": records}]
    }]})
}

pub(crate) async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, String, Option<String>) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_owned());
    (status, response.text().await.expect("body"), retry_after)
}

pub(crate) async fn sql(client: &reqwest::Client, query_url: &str, statement: &str) -> (u16, Value) {
    let response = client
        .post(format!("{query_url}/api/v1/sql"))
        .json(&json!({ "sql": statement }))
        .send()
        .await
        .expect("sql sent");
    (response.status().as_u16(), response.json().await.expect("json"))
}

pub(crate) async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.expect("get sent");
    (response.status().as_u16(), response.json().await.expect("json"))
}

pub(crate) async fn count(client: &reqwest::Client, query_url: &str, statement: &str) -> i64 {
    let (status, body) = sql(client, query_url, statement).await;
    assert_eq!(status, 200, "{statement}: {body}");
    body["rows"][0][0].as_i64().unwrap_or_else(|| panic!("{statement}: {body}"))
}

const TRACE_SQL: &[&str] = &[
    "SELECT count(*) FROM spans",
    "SELECT service_name, name, count(*) AS n, sum(duration_ns) AS total FROM spans GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT trace_id, span_id, parent_span_id, start_time FROM spans ORDER BY trace_id, span_id LIMIT 25",
    "SELECT span_attributes['http.route'] AS route, count(*) FROM spans WHERE service_name = 'backend' \
     GROUP BY 1 ORDER BY 1",
    "SELECT count(*) FROM spans WHERE status_code = 'error' AND start_time >= TIMESTAMP '2024-11-07T17:20:00Z'",
    "SELECT count(*) FROM spans WHERE duration_ns > 400000",
    "SELECT metric_name, count(*), sum(value) FROM metrics GROUP BY 1 ORDER BY 1",
    "SELECT service_name, name, kind, status_code, time, sum(calls), sum(errors), sum(duration_sum_ns), \
     duration_quantile(duration_histogram, 0.9) FROM span_metrics GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
    "SELECT client_service, server_service, sum(calls) FROM service_graph GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT severity_text, count(*), min(body), max(log_attributes['attempt']) FROM logs GROUP BY 1 ORDER BY 1",
    "SELECT trace_id, span_id, timestamp, body FROM logs WHERE trace_id IS NOT NULL ORDER BY timestamp",
    "SELECT trace_id, start_time, duration_ns, root_service_name, root_name, services, span_count, error_count, \
     has_root FROM traces ORDER BY trace_id",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_answers_equal_all_in_one() {
    let cluster = ProcessClusterBuilder::new().collectors(2).storage(3).query(1).shards(8).start();
    let temp = tempfile::tempdir().expect("temp dir");
    let single = SkeinProcess::start(&temp.path().join("aio"));
    cluster.wait_healthy().await;
    let client = skein_bench::client::http_client();
    for trace in 1..=40 {
        let body = trace_request(trace, 6);
        // Alternate collectors: they are interchangeable.
        let collector = cluster.otlp_http(trace as usize % 2);
        for url in [format!("{collector}/v1/traces"), format!("{}/v1/traces", single.otlp_http)] {
            let (status, text, _) = post(&client, &url, &body).await;
            assert_eq!(status, 200, "{url}: {text}");
        }
    }
    for round in 1..=5 {
        let body = metrics_request(round);
        for url in [format!("{}/v1/metrics", cluster.otlp_http(0)), format!("{}/v1/metrics", single.otlp_http)] {
            let (status, text, _) = post(&client, &url, &body).await;
            assert_eq!(status, 200, "{url}: {text}");
        }
    }
    let logs = logs_request();
    for url in [format!("{}/v1/logs", cluster.otlp_http(1)), format!("{}/v1/logs", single.otlp_http)] {
        let (status, text, _) = post(&client, &url, &logs).await;
        assert_eq!(status, 200, "{url}: {text}");
    }
    let query = cluster.query_url(0);
    assert_eq!(count(&client, &query, "SELECT count(*) FROM spans").await, 240);
    assert_eq!(count(&client, &query, "SELECT count(*) FROM logs").await, 20, "logs over Flight");
    assert_eq!(count(&client, &query, "SELECT sum(calls) FROM span_metrics").await, 240, "span metrics over Flight");
    assert!(count(&client, &query, "SELECT count(*) FROM service_graph").await > 0, "calls across services");
    assert_eq!(count(&client, &query, "SELECT sum(span_count) FROM traces").await, 240, "trace parts over Flight");
    assert_eq!(count(&client, &query, "SELECT count(*) FROM traces").await, 40);
    for statement in TRACE_SQL {
        let (status, clustered) = sql(&client, &query, statement).await;
        assert_eq!(status, 200, "{statement}: {clustered}");
        let (_, alone) = sql(&client, &single.query, statement).await;
        assert_eq!(clustered["rows"], alone["rows"], "{statement}");
    }
    for path in [
        format!("/api/v1/traces/{}", trace_id(10)),
        "/api/v1/search?limit=10&start=1731000000&end=1731000100".to_owned(),
        "/api/v1/search?service=backend&limit=5&start=1731000000&end=1731000100".to_owned(),
        "/api/v1/services".to_owned(),
        "/api/v1/services/frontend/operations".to_owned(),
        "/api/v1/service_stats?start=1731000000&end=1731000100&step=60s".to_owned(),
        "/api/v1/service_graph?start=1731000000&end=1731000100".to_owned(),
        "/api/v1/logs?start=1731000000&end=1731000100&limit=7".to_owned(),
        "/api/v1/logs?start=1731000000&end=1731000100&severity=error&q=REQUEST".to_owned(),
        "/api/v1/logs/volume?start=1731000000&end=1731000100".to_owned(),
        format!("/api/v1/traces/{}/logs", trace_id(7)),
    ] {
        let (status, clustered) = get(&client, &format!("{query}{path}")).await;
        assert_eq!(status, 200, "{path}: {clustered}");
        let (_, alone) = get(&client, &format!("{}{path}", single.query)).await;
        assert_eq!(clustered, alone, "{path}");
    }

    // Every shard is owned by exactly one storage node, and the nodes hold
    // the data of the shards they own.
    let (status, topology) = get(&client, &format!("{query}/api/v1/cluster")).await;
    assert_eq!(status, 200);
    assert_eq!(topology["shard_count"], 8);
    let mut owned: Vec<u64> = topology["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|m| m["role"] == "storage")
        .flat_map(|m| m["owned_shards"].as_array().expect("owned").iter().filter_map(Value::as_u64))
        .collect();
    owned.sort_unstable();
    assert_eq!(owned, (0..8).collect::<Vec<u64>>());
    single.terminate();
}

/// Sends one trace through `collector`; returns the HTTP status.
async fn send(client: &reqwest::Client, collector: &str, trace: u32) -> (u16, Option<String>) {
    let (status, _, retry_after) = post(client, &format!("{collector}/v1/traces"), &trace_request(trace, 4)).await;
    (status, retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_any_member_loses_nothing_acknowledged() {
    let mut cluster: ProcessCluster = ProcessClusterBuilder::new().collectors(2).storage(2).query(2).shards(8).start();
    cluster.wait_healthy().await;
    let client = skein_bench::client::http_client();
    let mut acked = 0i64;
    let mut refused = 0i64;
    let mut trace = 0;
    for _ in 0..20 {
        trace += 1;
        assert_eq!(send(&client, &cluster.otlp_http(0), trace).await.0, 200);
        acked += 4;
    }

    // kill -9 a storage node: writes touching its shards get a retryable
    // 503 with Retry-After; queries fail with a 503 that names the node.
    cluster.storage[1].kill9();
    let mut saw_unavailable = false;
    for _ in 0..20 {
        trace += 1;
        match send(&client, &cluster.otlp_http(0), trace).await {
            (200, _) => acked += 4,
            (503, retry_after) => {
                assert!(retry_after.is_some(), "503 without Retry-After");
                saw_unavailable = true;
                refused += 4;
            }
            (other, _) => panic!("a write during the outage got {other}"),
        }
    }
    assert!(saw_unavailable, "no write touched the down node's shards");
    let (status, body) = sql(&client, &cluster.query_url(0), "SELECT count(*) FROM spans").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("storage-1"), "{body}");

    // Restart it over the same data directory: its WAL is replayed.
    cluster.storage[1].start();
    cluster.wait_healthy().await;

    // kill -9 a collector and a query node: the others serve.
    cluster.collectors[0].kill9();
    cluster.query[0].kill9();
    for _ in 0..20 {
        trace += 1;
        assert_eq!(send(&client, &cluster.otlp_http(1), trace).await.0, 200);
        acked += 4;
    }
    let query = cluster.query_url(1);
    let total = count(&client, &query, "SELECT count(*) FROM spans").await;
    let distinct = count(&client, &query, "SELECT count(DISTINCT span_id) FROM spans").await;
    assert_eq!(distinct, total, "no span is stored twice");
    // Refused requests may have landed on their other shards (the client
    // was told to retry); nothing acknowledged may be missing.
    assert!(total >= acked && total <= acked + refused, "{total} stored, {acked} acknowledged, {refused} refused");
    for t in 1..=20 {
        let id = trace_id(t);
        let (status, body) = get(&client, &format!("{query}/api/v1/traces/{id}")).await;
        assert_eq!(status, 200, "trace {id}: {body}");
        assert_eq!(body["spans"].as_array().map(Vec::len), Some(4), "trace {id}");
    }

    // A clean stop of a storage node flushes its shards to Parquet.
    cluster.storage[0].terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_storage_node_gets_retryable_answers_not_a_hang() {
    let cluster = ProcessClusterBuilder::new().collectors(1).storage(2).query(1).shards(4).start();
    cluster.wait_healthy().await;
    let client = skein_bench::client::http_client();
    cluster.storage[0].signal("STOP");
    let started = Instant::now();
    let mut statuses = Vec::new();
    for trace in 1..=8 {
        statuses.push(send(&client, &cluster.otlp_http(0), trace).await.0);
    }
    cluster.storage[0].signal("CONT");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(statuses.contains(&503), "no write reached the stopped node: {statuses:?}");
    // Each refused write waited at most the request timeout (3 s in tests), not forever.
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_over_its_size_limit_is_cut_where_it_is_stored_whichever_collector_sends_it() {
    let cluster = ProcessClusterBuilder::new()
        .collectors(2)
        .storage(2)
        .query(1)
        .shards(4)
        .env("SKEIN_STORAGE__MAX_SPANS_PER_TRACE", "4")
        .start();
    cluster.wait_healthy().await;
    let client = skein_bench::client::http_client();
    let (status, body, _) = post(&client, &format!("{}/v1/traces", cluster.otlp_http(0)), &trace_request(7, 3)).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("partialSuccess"), "3 of 4 spans: all stored: {body}");

    // The other collector cannot know the trace's count; its owner does.
    let (status, body, _) = post(&client, &format!("{}/v1/traces", cluster.otlp_http(1)), &trace_request(7, 6)).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("json");
    let partial = &answer["partialSuccess"];
    let rejected =
        partial["rejectedSpans"].as_str().map_or_else(|| partial["rejectedSpans"].as_i64(), |s| s.parse().ok());
    assert_eq!(rejected, Some(5), "{body}");
    let message = partial["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains(&trace_id(7)) && message.contains("max_spans_per_trace"), "{body}");
    assert_eq!(count(&client, &cluster.query_url(0), "SELECT count(*) FROM spans").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_with_a_different_shard_count_are_refused() {
    let cluster = ProcessClusterBuilder::new().collectors(1).storage(1).query(1).shards(4).start();
    cluster.wait_healthy().await;
    // A collector configured with 8 shards against a 4-shard node.
    let temp = tempfile::tempdir().expect("temp");
    let ready = temp.path().join("ready.json");
    let storage_nodes = format!("storage-0={}", cluster.storage[0].address("internal"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_skein"))
        .args(["--shards", "8", "--storage-nodes", &storage_nodes, "--log-filter", "warn"])
        .args(["--otlp-grpc-listen", "127.0.0.1:0", "--otlp-http-listen", "127.0.0.1:0", "collector", "--ready-file"])
        .arg(&ready)
        .stdin(Stdio::null())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "collector not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let addresses: Value = serde_json::from_str(&std::fs::read_to_string(&ready).expect("ready")).expect("json");
    let url = format!("http://{}", addresses["otlp_http"].as_str().expect("otlp_http"));
    let client = skein_bench::client::http_client();
    let (status, text, _) = post(&client, &format!("{url}/v1/traces"), &trace_request(1, 2)).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("shard counts differ"), "{text}");
    // Nothing reached the node.
    assert_eq!(count(&client, &cluster.query_url(0), "SELECT count(*) FROM spans").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_up_starts_every_member_and_sigterm_stops_them() {
    let temp = tempfile::tempdir().expect("temp dir");
    let ready = temp.path().join("cluster.json");
    let mut up = Command::new(env!("CARGO_BIN_EXE_skein"))
        .args(["cluster", "up", "--collectors", "2", "--storage", "2", "--query", "1", "--shards", "4"])
        .args(["--member-log-filter", "warn", "--data-dir"])
        .arg(temp.path().join("data"))
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("cluster up starts");
    let deadline = Instant::now() + Duration::from_secs(180);
    while !ready.exists() {
        assert!(up.try_wait().expect("poll").is_none(), "cluster up exited early");
        assert!(Instant::now() < deadline, "cluster not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&ready).expect("ready")).expect("json");
    let members = report["members"].as_array().expect("members").clone();
    let roles: Vec<&str> = members.iter().map(|m| m["role"].as_str().expect("role")).collect();
    assert_eq!(roles.iter().filter(|r| **r == "collector").count(), 2);
    assert_eq!(roles.iter().filter(|r| **r == "storage").count(), 2);
    assert_eq!(roles.iter().filter(|r| **r == "query").count(), 1);
    let address = |role: &str, key: &str| {
        let member = members.iter().find(|m| m["role"] == role).expect("member");
        format!("http://{}", member["addresses"][key].as_str().expect("address"))
    };
    let client = skein_bench::client::http_client();
    let (status, text, _) =
        post(&client, &format!("{}/v1/traces", address("collector", "otlp_http")), &trace_request(3, 4)).await;
    assert_eq!(status, 200, "{text}");
    let query = address("query", "query");
    assert_eq!(count(&client, &query, "SELECT count(*) FROM spans").await, 4);
    let status = Command::new(env!("CARGO_BIN_EXE_skein"))
        .args(["cluster", "status", "--query", &query])
        .stdout(Stdio::piped())
        .output()
        .expect("status runs");
    let printed = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{printed}");
    assert!(printed.contains("storage-0") && printed.contains("storage-1"), "{printed}");

    let kill = Command::new("kill").args(["-TERM", &up.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let exit = up.wait().expect("reaped");
    assert!(exit.success(), "cluster up exited with {exit}");
    for member in &members {
        let pid = member["pid"].as_u64().expect("pid");
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ");
        assert!(!alive, "member {} still runs after cluster up stopped", member["name"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_spans_reach_every_shard_through_a_collector() {
    let cluster = ProcessClusterBuilder::new().collectors(1).storage(3).query(1).shards(8).start();
    cluster.wait_healthy().await;
    let endpoint = cluster.collectors[0].url("otlp_grpc");
    let sdk_spans = tokio::task::spawn_blocking(move || {
        crate::support::python::send_traces(&endpoint, "grpc", "python-cluster", 6)
    })
    .await
    .expect("python thread");
    assert_eq!(sdk_spans.len(), 6 * 5, "the script emits five spans per trace");
    let client = skein_bench::client::http_client();
    let query = cluster.query_url(0);
    let stored = count(&client, &query, "SELECT count(*) FROM spans WHERE service_name = 'python-cluster'").await;
    let distinct = count(&client, &query, "SELECT count(DISTINCT span_id) FROM spans").await;
    assert_eq!(stored, 30);
    assert_eq!(distinct, 30, "no span stored twice");
    // Each trace comes back whole from the one shard that owns it.
    let mut spans_per_trace = std::collections::BTreeMap::<String, usize>::new();
    for span in &sdk_spans {
        let trace_id = span["traceId"].as_str().unwrap_or_else(|| panic!("no traceId in {span}"));
        *spans_per_trace.entry(trace_id.to_owned()).or_default() += 1;
    }
    for (trace_id, expected) in spans_per_trace {
        let (status, body) = get(&client, &format!("{query}/api/v1/traces/{trace_id}")).await;
        assert_eq!(status, 200, "trace {trace_id}: {body}");
        assert_eq!(body["spans"].as_array().map(Vec::len), Some(expected), "trace {trace_id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_data_lives_in_seaweedfs_and_outlives_a_storage_nodes_disk() {
    let mut weed = SeaweedFs::start().await;
    let mut cluster =
        ProcessClusterBuilder::new().collectors(1).storage(2).query(1).shards(4).object_store(&weed).start();
    cluster.wait_healthy().await;
    let client = skein_bench::client::http_client();
    for trace in 1..=12 {
        assert_eq!(send(&client, &cluster.otlp_http(0), trace).await.0, 200);
    }

    // A clean stop flushes storage-0's shards; its Parquet files and
    // manifests land in the bucket.
    cluster.storage[0].terminate();
    let prefix = cluster.object_prefix();
    let keys = weed.keys(&prefix).await;
    assert!(keys.iter().any(|k| k.ends_with(".parquet")), "no Parquet file in the bucket: {keys:?}");
    assert!(keys.iter().any(|k| k.contains("/manifest/")), "no manifest in the bucket: {keys:?}");
    assert!(keys.iter().any(|k| k == &format!("{prefix}/shard_count")), "{keys:?}");

    // Its disk is lost; restarted empty, it serves its shards from the bucket.
    std::fs::remove_dir_all(cluster.storage_dir(0)).expect("wipes storage-0's data directory");
    cluster.storage[0].start();
    cluster.wait_healthy().await;
    assert_eq!(count(&client, &cluster.query_url(0), "SELECT count(*) FROM spans").await, 12 * 4);
    for trace in 1..=12 {
        let (status, body) = get(&client, &format!("{}/api/v1/traces/{}", cluster.query_url(0), trace_id(trace))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["spans"].as_array().map(Vec::len), Some(4));
    }

    // An object-store outage shows in the storage nodes' readiness, naming the endpoint.
    weed.kill();
    let admin = cluster.storage[1].url("admin");
    let response = client.get(format!("{admin}/readyz")).send().await.expect("readyz answers");
    assert_eq!(response.status(), 503);
    let reason = response.text().await.expect("body");
    assert!(reason.contains(&weed.endpoint()), "{reason}");
}
