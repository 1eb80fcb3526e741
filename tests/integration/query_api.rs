//! The query API end to end: search, services, SQL formats and safety,
//! health and metrics.

use serde_json::{Value, json};

use crate::support::{ClusterBuilder, TestNode};

const BASE: u64 = 1_731_000_000_000_000_000;
const MS: u64 = 1_000_000;

struct SpanSpec {
    service: &'static str,
    name: &'static str,
    parent: Option<u64>,
    start_ms: u64,
    duration_ms: u64,
    error: bool,
    route: &'static str,
}

/// One trace per call: spans numbered from 1 within the trace.
fn trace_request(trace: u64, spans: &[SpanSpec]) -> Value {
    let resource_spans: Vec<Value> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let start = BASE + (trace * 1000 + s.start_ms) * MS;
            let mut span = json!({
                "traceId": format!("{trace:032x}"),
                "spanId": format!("{:016x}", trace * 100 + i as u64 + 1),
                "name": s.name,
                "kind": if s.parent.is_none() { 2 } else { 3 },
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + s.duration_ms * MS).to_string(),
                "attributes": [{"key": "http.route", "value": {"stringValue": s.route}}],
                "status": {"code": if s.error { 2 } else { 0 }}
            });
            if let Some(parent) = s.parent {
                span["parentSpanId"] = json!(format!("{:016x}", trace * 100 + parent));
            }
            json!({
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": s.service}},
                    {"key": "deployment.environment.name", "value": {"stringValue": if trace.is_multiple_of(2) { "prod" } else { "staging" }}}
                ]},
                "scopeSpans": [{"spans": [span]}]
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

/// Six traces: frontend → cart/checkout, with errors and varied durations;
/// trace 6 has no root span (a partial trace).
async fn load(node: &TestNode) {
    let spec = |service, name, parent, start_ms, duration_ms, error, route| SpanSpec {
        service,
        name,
        parent,
        start_ms,
        duration_ms,
        error,
        route,
    };
    for trace in 1..=5_u64 {
        let slow = trace * 100;
        let spans = [
            spec("frontend", "GET /cart", None, 0, slow, false, "/cart"),
            spec("cart", "SELECT cart", Some(1), 1, 10, trace == 3, "/db"),
            spec("checkout", "charge", Some(1), 2, 5, false, "/charge"),
        ];
        let (status, body) = node.post_otlp_json(&trace_request(trace, &spans)).await;
        assert_eq!(status, 200, "{body}");
    }
    let orphan = [spec("cart", "late fragment", Some(9), 0, 7, false, "/late")];
    let (status, body) = node.post_otlp_json(&trace_request(6, &orphan)).await;
    assert_eq!(status, 200, "{body}");
}

async fn search(node: &TestNode, query: &str) -> Vec<Value> {
    let (status, body) = node.get(&format!("/api/v1/search?{query}")).await;
    assert_eq!(status, 200, "search {query}: {body}");
    body["traces"].as_array().expect("traces").clone()
}

fn ids(traces: &[Value]) -> Vec<u64> {
    traces.iter().map(|t| u64::from_str_radix(t["traceId"].as_str().expect("id"), 16).expect("hex")).collect()
}

async fn check_search(node: &TestNode) {
    // No service needed; newest first.
    let all = search(node, "").await;
    assert_eq!(ids(&all), vec![6, 5, 4, 3, 2, 1]);
    let t3 = &all[3];
    assert_eq!(t3["rootServiceName"], "frontend");
    assert_eq!(t3["rootSpanName"], "GET /cart");
    assert_eq!(t3["spanCount"], 3);
    assert_eq!(t3["errorCount"], 1);
    assert_eq!(t3["durationNanos"], 300 * MS);
    assert_eq!(t3["startTimeUnixNano"], (BASE + 3000 * MS).to_string());
    assert_eq!(t3["hasRoot"], true);
    assert_eq!(all[0]["hasRoot"], false, "trace 6 is only a fragment");

    assert_eq!(ids(&search(node, "service=checkout").await), vec![5, 4, 3, 2, 1]);
    assert_eq!(ids(&search(node, "service=cart&name=late%20fragment").await), vec![6]);
    assert_eq!(ids(&search(node, "status=error").await), vec![3]);
    assert_eq!(ids(&search(node, "min_duration=250ms").await), vec![5, 4, 3]);
    assert_eq!(ids(&search(node, "min_duration=250ms&max_duration=350ms").await), vec![3]);
    assert_eq!(ids(&search(node, "attr=http.route%3D/charge&limit=2").await), vec![5, 4]);
    assert_eq!(ids(&search(node, "attr=deployment.environment.name%3Dprod").await), vec![6, 4, 2]);
    let start = BASE + 2000 * MS;
    let end = BASE + 4000 * MS;
    // Both bounds are inclusive: trace 4 starts exactly at `end`.
    assert_eq!(ids(&search(node, &format!("start={start}&end={end}")).await), vec![4, 3, 2]);
    assert_eq!(ids(&search(node, &format!("start={start}&end={}", end - 1)).await), vec![3, 2]);
    assert!(search(node, "service=nobody").await.is_empty());

    let (status, body) = node.get("/api/v1/services").await;
    assert_eq!(status, 200);
    assert_eq!(body["services"], json!(["cart", "checkout", "frontend"]));
    let (status, body) = node.get("/api/v1/services/cart/operations").await;
    assert_eq!(status, 200);
    let mut names: Vec<&str> =
        body["operations"].as_array().expect("ops").iter().filter_map(|o| o["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["SELECT cart", "late fragment"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_services_before_and_after_flush() {
    let node = ClusterBuilder::new().start().await;
    load(&node).await;
    check_search(&node).await;
    node.flush().await;
    check_search(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_formats_safety_and_operational_endpoints() {
    let node = ClusterBuilder::new().start().await;
    load(&node).await;

    let result =
        node.sql("SELECT service_name, count(*) AS spans FROM spans GROUP BY service_name ORDER BY service_name").await;
    assert_eq!(result["rows"], json!([["cart", 6], ["checkout", 5], ["frontend", 5]]));
    assert_eq!(result["columns"][0]["name"], "service_name");

    let sql = json!({"sql": "SELECT name FROM spans WHERE trace_id = '00000000000000000000000000000001' ORDER BY start_time"});
    let csv = node.http.post(format!("{}/api/v1/sql?format=csv", node.query())).json(&sql).send().await.expect("sent");
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.text().await.expect("text"), "name\nGET /cart\nSELECT cart\ncharge\n");
    let ndjson =
        node.http.post(format!("{}/api/v1/sql?format=ndjson", node.query())).json(&sql).send().await.expect("sent");
    let lines: Vec<Value> =
        ndjson.text().await.expect("text").lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines, vec![json!({"name": "GET /cart"}), json!({"name": "SELECT cart"}), json!({"name": "charge"})]);
    let arrow =
        node.http.post(format!("{}/api/v1/sql?format=arrow", node.query())).json(&sql).send().await.expect("sent");
    assert_eq!(arrow.headers()["content-type"], "application/vnd.apache.arrow.stream");
    let bytes = arrow.bytes().await.expect("bytes");
    let reader = datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).expect("ipc");
    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, 3);

    for refused in [
        "CREATE TABLE t AS SELECT 1",
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'",
        "INSERT INTO spans SELECT * FROM spans",
        "DROP TABLE spans",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SET datafusion.execution.batch_size = 1",
        "SELECT * FROM '/etc/passwd'",
    ] {
        let (status, body) = node.sql_status(refused).await;
        assert_eq!(status, 400, "{refused}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    let (status, _) = node.sql_status("SELEC nonsense").await;
    assert_eq!(status, 400);

    let (status, body) = node.get("/api/v1/traces/0000000000000000000000000000abcd").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = node.get("/api/v1/traces/not-hex").await;
    assert_eq!(status, 400);

    let health = node.http.get(format!("{}/healthz", node.query())).send().await.expect("sent");
    assert_eq!(health.status(), 200);
    let ready = node.http.get(format!("{}/readyz", node.query())).send().await.expect("sent");
    assert_eq!(ready.status(), 200);
    let metrics = node.http.get(format!("{}/metrics", node.query())).send().await.expect("sent");
    let text = metrics.text().await.expect("text");
    for name in ["skein_collector_spans_accepted_total", "skein_query_duration_seconds", "skein_wal"] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    assert!(text.contains("skein_collector_spans_accepted_total 16"), "16 spans were accepted:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_limits_end_runaway_queries() {
    let node = ClusterBuilder::new()
        .configure(|c| {
            c.query.timeout = std::time::Duration::from_millis(1);
            c.query.memory_limit_bytes = 1024 * 1024;
        })
        .start()
        .await;
    load(&node).await;
    // An unbounded cross join cannot finish in a millisecond.
    let (status, body) = node
        .sql_status("SELECT count(*) FROM spans a, spans b, spans c, spans d, spans e, spans f, (SELECT * FROM generate_series(1, 1000000)) g")
        .await;
    assert!(status == 408 || status == 422, "runaway query ended with {status}: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

/// Every page of a search with `limit`, following `nextCursor`.
async fn all_pages(node: &TestNode, query: &str, limit: usize) -> Vec<Vec<u64>> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = node.get(&format!("/api/v1/search?limit={limit}{query}{cursor}")).await;
        assert_eq!(status, 200, "{body}");
        pages.push(ids(body["traces"].as_array().expect("traces")));
        match body["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_returns_every_matching_trace_once_in_rank_order() {
    let node = ClusterBuilder::new()
        .configure(|c| {
            c.storage.compaction.min_files = 2;
            c.storage.compaction.retired_file_grace = std::time::Duration::ZERO;
        })
        .start()
        .await;
    // 40 traces whose spans interleave in time (trace t has spans at t s
    // and at (80 - t) s + 0.5 s), sent in two halves with flushes between,
    // then compacted: ranks by latest match differ from trace order, and
    // later pages meet the early spans of traces earlier pages returned.
    let spec = |parent, start_ms, route| SpanSpec {
        service: "frontend",
        name: "GET /x",
        parent,
        start_ms,
        duration_ms: 1,
        error: false,
        route,
    };
    for half in [1..=20_u64, 21..=40] {
        for trace in half {
            // trace_request starts trace t's spans at t s; the late one at (80 - t) s + 0.5 s.
            let late = 80_500 - 2000 * trace;
            let spans = [spec(None, 0, "/a"), spec(Some(1), late, if trace % 3 == 0 { "/b" } else { "/a" })];
            let (status, body) = node.post_otlp_json(&trace_request(trace, &spans)).await;
            assert_eq!(status, 200, "{body}");
        }
        node.flush().await;
    }
    node.storage.compact_now().await.expect("compacts");
    let expected = |filter: &str| {
        format!(
            "SELECT trace_id FROM spans {filter} GROUP BY trace_id ORDER BY max(start_time) DESC, trace_id LIMIT 1000"
        )
    };
    for (query, filter) in [("", ""), ("&attr=http.route%3D/b", "WHERE span_attributes['http.route'] = '/b'")] {
        let rows = node.sql(&expected(filter)).await;
        let ranked: Vec<u64> = rows["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| u64::from_str_radix(r[0].as_str().expect("id"), 16).expect("hex"))
            .collect();
        for limit in [1, 7, 40] {
            let pages = all_pages(&node, query, limit).await;
            let paged: Vec<u64> = pages.concat();
            assert_eq!(paged, ranked, "limit {limit}{query}: every trace once, in rank order; pages {pages:?}");
        }
    }
    node.stop().await;
}
