//! The web UI in a real browser: a real node loaded by the Python SDK (traces
//! with a span link, metrics with exemplars) plus one 20,000-span trace, then
//! `ui/e2e/*.test.mjs` (Playwright driving Debian's chromium) against it.
//!
//! Needs `/usr/bin/chromium` (or `SKEIN_CHROMIUM`): under `CI=true` a missing
//! browser fails the test; elsewhere it is skipped with a loud message.
//! Screenshots go to `target/ui-e2e/`; `SKEIN_UI_SCREENSHOTS=docs/ui`
//! refreshes the ones in the docs.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use skein_model::security::{Scope, create_token};

use crate::support::python::{send_logs, send_metrics, send_traces, send_traces_with_env};
use crate::support::{ClusterBuilder, TestNode, workspace_root};

/// The large trace: a root, 20 children and 999 grandchildren under each.
const BIG_TRACE: &str = "b16b16b16b16b16b16b16b16b16b16b1";
const BIG_CHILDREN: usize = 20;
const BIG_GRANDCHILDREN: usize = 999;
/// Spans per OTLP/JSON request when loading the large trace.
const BATCH: usize = 2_000;
const BATCH_SERVICE: &str = "batch-worker";
const ITEM_SERVICE: &str = "item-store";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether `test` may run: what it needs is `present`, or, outside CI, it
/// is not and the test says it is skipped. Under `CI=true` it must be there.
fn may_run(test: &str, present: bool, missing: &str) -> bool {
    if !present {
        assert!(!in_ci(), "CI=true but {missing}");
        eprintln!("\n*** SKIPPED {test}: {missing} ***\n");
    }
    present
}

/// Debian's chromium (or `SKEIN_CHROMIUM`) for `test`; `None` skips it.
pub fn chromium_for(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("SKEIN_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let missing = "/usr/bin/chromium is missing: .ci/run installs it (apt-get install chromium)";
    may_run(test, path.exists(), missing).then_some(path)
}

/// Whether `page` (what `/` answered) is the built UI; if not, `test` is skipped.
fn ui_built_for(test: &str, page: &str) -> bool {
    may_run(test, !page.contains("SKEIN_SKIP_UI"), "the binary was built without the UI (SKEIN_SKIP_UI)")
}

/// Every span of the large trace, in OTLP/JSON `spans` form, starting now.
fn big_trace_spans(now_ns: u128) -> Vec<Value> {
    let span = |id: usize, parent: Option<usize>, name: String, offset_us: u128, duration_us: u128, error: bool| {
        let start = now_ns + offset_us * 1_000;
        let mut span = json!({
            "traceId": BIG_TRACE,
            "spanId": format!("{:016x}", id + 1),
            "name": name,
            "kind": 1,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": (start + duration_us * 1_000).to_string(),
            "attributes": [{"key": "item", "value": {"intValue": id.to_string()}}],
        });
        if let Some(parent) = parent {
            span["parentSpanId"] = json!(format!("{:016x}", parent + 1));
        }
        if error {
            span["status"] = json!({"code": 2, "message": "item failed"});
        }
        span
    };
    let total_us = (BIG_CHILDREN * (BIG_GRANDCHILDREN + 1)) as u128 * 10;
    let mut spans = vec![span(0, None, "big batch".into(), 0, total_us, false)];
    for c in 0..BIG_CHILDREN {
        let child = spans.len();
        let child_start = (c * (BIG_GRANDCHILDREN + 1)) as u128 * 10;
        spans.push(span(
            child,
            Some(0),
            format!("chunk {c}"),
            child_start,
            (BIG_GRANDCHILDREN as u128 + 1) * 10,
            false,
        ));
        for g in 0..BIG_GRANDCHILDREN {
            let id = spans.len();
            let name = format!("item {c}.{g}");
            spans.push(span(id, Some(child), name, child_start + 10 * g as u128 + 5, 8, g % 250 == 7));
        }
    }
    spans
}

/// Loads the large trace; returns what the browser tests need to know of it.
async fn load_big_trace(node: &TestNode) -> Value {
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let spans = big_trace_spans(now_ns);
    let last = spans.last().expect("spans");
    let last_chunk =
        spans.iter().rfind(|s| s["name"].as_str().is_some_and(|n| n.starts_with("chunk"))).expect("chunks");
    let errors: Vec<&Value> = spans.iter().filter(|s| s.get("status").is_some()).collect();
    let facts = json!({
        "traceId": BIG_TRACE,
        "spanCount": spans.len(),
        "children": BIG_CHILDREN,
        "lastSpanId": last["spanId"],
        "lastSpanName": last["name"],
        "lastChunkId": last_chunk["spanId"],
        "grandchildren": BIG_GRANDCHILDREN,
        "errorCount": errors.len(),
        "firstErrorName": errors.first().expect("errors")["name"],
        "itemService": ITEM_SERVICE,
    });
    // The items run in another service, so the service map has an edge.
    let service = |span: &Value| {
        if span["name"].as_str().is_some_and(|n| n.starts_with("item")) { ITEM_SERVICE } else { BATCH_SERVICE }
    };
    for chunk in spans.chunks(BATCH) {
        let resource_spans: Vec<Value> = [BATCH_SERVICE, ITEM_SERVICE]
            .iter()
            .map(|name| {
                let mine: Vec<&Value> = chunk.iter().filter(|s| service(s) == *name).collect();
                json!({
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
                    "scopeSpans": [{"scope": {"name": "ui-test"}, "spans": mine}],
                })
            })
            .collect();
        let body = json!({ "resourceSpans": resource_spans });
        let (status, response) = node.post_otlp_json(&body).await;
        assert_eq!(status, 200, "large trace export: {response}");
    }
    facts
}

/// Runs the browser tests against `node`; `data` tells them what was loaded.
/// Runs the browser tests in `ui/<suite>/` against `node`.
fn run_browser_tests(node: &TestNode, chromium: &std::path::Path, data: &Value, suite: &str) {
    let root = workspace_root();
    let artifacts = root.join("target/ui-e2e");
    std::fs::create_dir_all(&artifacts).expect("artifact dir");
    let screenshots = std::env::var_os("SKEIN_UI_SCREENSHOTS").map_or(artifacts.clone(), |dir| root.join(dir));
    let mut command = Command::new("node");
    command.args(["--test", "--test-concurrency=1"]);
    // SKEIN_E2E_ONLY=pattern runs the browser tests whose name matches.
    if let Some(pattern) = std::env::var_os("SKEIN_E2E_ONLY") {
        command.arg("--test-name-pattern").arg(pattern);
    }
    let output = command
        .arg(format!("{suite}/"))
        .current_dir(root.join("ui"))
        .env("SKEIN_URL", node.query())
        .env("SKEIN_E2E_DATA", data.to_string())
        .env("SKEIN_E2E_ARTIFACTS", &artifacts)
        .env("SKEIN_E2E_SCREENSHOTS", &screenshots)
        .env("SKEIN_CHROMIUM", chromium)
        .output()
        .expect("node runs (npm and Node.js are needed to build the UI anyway)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "browser tests failed ({}); screenshots in {}",
        output.status,
        artifacts.display()
    );
}

/// With `[auth]`, the UI asks for a token, refuses bad ones with the
/// server's reason, then works with a good one (`ui/e2e-auth/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_signs_in_with_a_token_in_chromium() {
    let Some(browser) = chromium_for("ui_signs_in_with_a_token_in_chromium") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens_file = dir.path().join("tokens.toml");
    let token = |scope| {
        let scopes = std::collections::BTreeSet::from([scope]);
        create_token("acme", scopes, Some(format!("ui {scope}")), None).expect("token")
    };
    let (query, ingest) = (token(Scope::Query), token(Scope::Ingest));
    std::fs::write(&tokens_file, format!("{}{}", query.entry.to_toml(), ingest.entry.to_toml())).expect("tokens");
    let path = tokens_file.clone();
    let node = ClusterBuilder::new().configure(move |c| c.auth.tokens_file = Some(path)).start().await;
    let (_, page) = node.get("/").await;
    if !ui_built_for("ui_signs_in_with_a_token_in_chromium", page.as_str().unwrap_or_default()) {
        return;
    }
    let http = node.otlp_http();
    let header = format!("authorization=Bearer%20{}", ingest.token);
    let spans = tokio::task::spawn_blocking(move || {
        send_traces_with_env(&http, "http", "signin-shop", 1, &[("OTEL_EXPORTER_OTLP_HEADERS", &header)])
    })
    .await
    .expect("python client")
    .expect("export with an ingest token");
    let data = json!({
        "token": query.token,
        "ingestToken": ingest.token,
        "service": "signin-shop",
        "traceId": spans[0]["traceId"],
    });
    run_browser_tests(&node, &browser, &data, "e2e-auth");
    node.stop().await;
}

/// A multi-tenant Skein without tokens: the UI offers a choice of tenant
/// and each tenant's screens show its own data (`ui/e2e-tenants/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_switches_tenants_in_chromium() {
    let Some(browser) = chromium_for("ui_switches_tenants_in_chromium") else {
        return;
    };
    let node = ClusterBuilder::new().configure(|c| c.auth.multi_tenant = true).start().await;
    let (_, page) = node.get("/").await;
    if !ui_built_for("ui_switches_tenants_in_chromium", page.as_str().unwrap_or_default()) {
        return;
    }
    let send = |service: &'static str, header: &'static str| {
        let http = node.otlp_http();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                if header.is_empty() { Vec::new() } else { vec![("OTEL_EXPORTER_OTLP_HEADERS", header)] };
            send_traces_with_env(&http, "http", service, 1, &env)
        })
    };
    let default_spans = send("default-shop", "").await.expect("python client").expect("export");
    let tenant_spans = send("team-a-shop", "X-Scope-OrgID=team-a").await.expect("python client").expect("export");
    let data = json!({
        "tenant": "team-a",
        "defaultService": "default-shop",
        "tenantService": "team-a-shop",
        "defaultTraceId": default_spans[0]["traceId"],
        "tenantTraceId": tenant_spans[0]["traceId"],
    });
    run_browser_tests(&node, &browser, &data, "e2e-tenants");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_end_to_end_in_chromium() {
    let Some(browser) = chromium_for("ui_end_to_end_in_chromium") else {
        return;
    };
    let node = ClusterBuilder::new().start().await;
    let (status, page) = node.get("/").await;
    if !ui_built_for("ui_end_to_end_in_chromium", page.as_str().unwrap_or_default()) {
        return;
    }
    assert_eq!(status, 200, "{page}");

    let (grpc, http) = (node.otlp_grpc(), node.otlp_http());
    let (spans, _, logs) = tokio::task::spawn_blocking(move || {
        let spans = send_traces(&grpc, "grpc", "checkout", 3);
        send_traces(&http, "http", "payments", 2);
        let logs = send_logs(&http, "http", "orders");
        (spans, send_metrics(&http, "http", "cumulative", "shop"), logs)
    })
    .await
    .expect("python clients");
    // The consumer span links to the root of a cart trace in another trace.
    let consumer = spans.iter().find(|s| s["name"] == "process order").expect("a linked consumer span");
    let big_trace = load_big_trace(&node).await;
    // The SDK attached exemplars (with trace and span IDs) to the histogram.
    let (status, exemplars) = node.get("/api/v1/metrics/http.server.duration/exemplars").await;
    assert_eq!(status, 200, "{exemplars}");
    let exemplars = exemplars["exemplars"].as_array().expect("exemplars");
    assert!(exemplars.iter().any(|e| e["trace_id"].as_str().is_some_and(|t| t.len() == 32)), "{exemplars:?}");

    // The other direction of the link: the target span is linked from the consumer.
    let target = &consumer["links"][0];
    let path = format!(
        "/api/v1/traces/{}/spans/{}/linked_from",
        target["traceId"].as_str().expect("id"),
        target["spanId"].as_str().expect("id")
    );
    let (status, linked) = node.get(&path).await;
    assert_eq!(status, 200, "{linked}");
    assert_eq!(
        linked["spans"],
        json!([{"traceId": consumer["traceId"], "spanId": consumer["spanId"], "name": "process order", "serviceName": "checkout"}])
    );

    let data = json!({
        "linkedFrom": {"traceId": consumer["traceId"], "spanId": consumer["spanId"]},
        "linkTarget": {"traceId": consumer["links"][0]["traceId"], "spanId": consumer["links"][0]["spanId"]},
        "bigTrace": big_trace,
        "metric": "http.server.duration",
        "logs": {"traceId": logs.trace_id, "spanId": logs.span_id, "service": logs.service,
                 "errorBody": logs.error_body, "count": logs.count},
    });
    run_browser_tests(&node, &browser, &data, "e2e");
    node.stop().await;
}

#[tokio::test]
async fn ui_is_served_with_caching_and_compression() {
    let node = ClusterBuilder::new().start().await;
    let index = node.http.get(format!("{}/trace/abc", node.query())).send().await.expect("sent");
    let status = index.status();
    let html = index.text().await.expect("body");
    if !ui_built_for("ui_is_served_with_caching_and_compression", &html) {
        return;
    }
    assert_eq!(status, 200);
    // The app's script, by the hashed name index.html refers to.
    let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script in index.html");
    assert!(script.starts_with("/assets/"), "{script}");
    let response = node
        .http
        .get(format!("{}{script}", node.query()))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "br");
    assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/javascript"));
    // API paths keep their JSON errors.
    let (status, body) = node.get("/api/v1/nope").await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    node.stop().await;
}
