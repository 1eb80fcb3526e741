//! A browser page instrumented with the OpenTelemetry web SDK
//! (`@opentelemetry/sdk-trace-web` + `@opentelemetry/exporter-trace-otlp-http`,
//! tests/js/browser/app.js bundled by esbuild) exports to Skein's OTLP/HTTP
//! port from another origin, in Debian's headless chromium: the CORS
//! preflight passes for the one origin `collector.cors_allowed_origins`
//! lists, and the trace is found through the query API. The same page on an
//! origin not listed cannot export.
//!
//! Needs `/usr/bin/chromium` (or `SKEIN_CHROMIUM`): under `CI=true` a missing
//! browser fails the test; elsewhere it is skipped with a loud message.

use std::path::Path;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::support::ClusterBuilder;
use crate::support::js::{bundle_browser_app, run_node};
use crate::ui::chromium_for;

const PAGE: &str =
    "<!doctype html><html><head><title>shop</title><script src=\"/app.js\"></script></head><body>shop</body></html>";

/// Serves the page and its bundled script on 127.0.0.1, port 0, until
/// `stop`; returns the page's origin.
async fn serve_page(script: String, stop: CancellationToken) -> String {
    let app = Router::new()
        .route("/", get(|| async { ([(header::CONTENT_TYPE, "text/html")], PAGE) }))
        .route("/app.js", get(move || async move { ([(header::CONTENT_TYPE, "text/javascript")], script) }))
        // Browsers ask for one; a 404 would show up as a console error.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("page port");
    let origin = format!("http://{}", listener.local_addr().expect("page address"));
    tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await.expect("page server");
    });
    origin
}

/// Loads the page in chromium, exporting to `otlp`; what the page reported.
async fn open(browser: &Path, origin: &str, otlp: &str) -> Value {
    let url = format!("{origin}/?otlp={otlp}");
    let browser = browser.to_owned();
    tokio::task::spawn_blocking(move || run_node("browser/drive.mjs", &[&url], &[("SKEIN_CHROMIUM", &browser)]))
        .await
        .expect("browser driver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_web_sdk_exports_over_cors() {
    let Some(browser) = chromium_for("browser_web_sdk_exports_over_cors") else {
        return;
    };
    let out = tempfile::tempdir().expect("bundle dir");
    let bundle = bundle_browser_app(out.path());
    let script = std::fs::read_to_string(&bundle).expect("bundle");
    let stop = CancellationToken::new();
    let allowed = serve_page(script.clone(), stop.clone()).await;
    let other = serve_page(script, stop.clone()).await;
    assert_ne!(allowed, other, "two origins (ports)");

    let listed = allowed.clone();
    let node = ClusterBuilder::new()
        .configure(move |config| config.collector.cors_allowed_origins = vec![listed])
        .start()
        .await;
    let otlp = node.otlp_http();

    let result = open(&browser, &allowed, &otlp).await;
    assert_eq!(result["problems"], serde_json::json!([]), "{result}");
    let results = result["results"].as_array().expect("export results");
    assert!(!results.is_empty() && results.iter().all(|r| r["code"] == 0), "exports from the listed origin: {result}");
    let trace_id = result["traceId"].as_str().expect("trace id");
    let trace = node.trace(trace_id).await;
    assert_eq!(trace["spanCount"], 2, "{trace}");
    assert_eq!(trace["services"], serde_json::json!(["browser-shop"]));
    let spans = trace["spans"].as_array().expect("spans");
    let span = |name: &str| spans.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name} in {trace}"));
    let (root, click) = (span("page load"), span("click buy"));
    assert_eq!(root["spanId"], result["spanIds"][0]);
    assert_eq!(root["parentSpanId"], serde_json::Value::Null);
    assert_eq!(click["parentSpanId"], root["spanId"]);
    assert_eq!(click["attributes"], serde_json::json!([{"key": "ui.button", "type": "string", "value": "buy"}]));
    let (status, found) = node.get("/api/v1/search?service=browser-shop").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["traces"][0]["traceId"], trace_id);

    // The same page from an origin Skein does not list: the browser refuses
    // the export (no CORS headers), and nothing new is stored.
    let refused = open(&browser, &other, &otlp).await;
    let results = refused["results"].as_array().expect("export results");
    let failed = results.iter().all(|r| r["code"] != 0) && (!results.is_empty() || refused["error"].is_string());
    assert!(failed, "exports from another origin: {refused}");
    let other_trace = refused["traceId"].as_str().expect("trace id");
    let (status, _) = node.get(&format!("/api/v1/traces/{other_trace}")).await;
    assert_eq!(status, 404, "a refused export stores nothing");

    stop.cancel();
    node.stop().await;
}
