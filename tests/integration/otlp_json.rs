//! Every OTLP field survives OTLP/JSON → WAL/buffer → Parquet → trace API,
//! SQL and `?format=otlp`.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::Value;

use crate::support::{ClusterBuilder, TestNode, assert_golden};

const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";

fn sample() -> Value {
    serde_json::from_str(include_str!("data/all_fields.json")).expect("sample is JSON")
}

/// An empty `status: {}` and an absent status mean the same in OTLP; compare
/// requests with that one normalization.
fn normalized(mut request: ExportTraceServiceRequest) -> ExportTraceServiceRequest {
    for rs in &mut request.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                if span.status.as_ref().is_some_and(|s| s.code == 0 && s.message.is_empty()) {
                    span.status = None;
                }
            }
        }
    }
    request
}

async fn check_read_back(node: &TestNode) {
    let trace = node.trace(TRACE_ID).await;
    assert_golden("trace_all_fields.json", &trace);

    let (status, otlp) = node.get(&format!("/api/v1/traces/{TRACE_ID}?format=otlp")).await;
    assert_eq!(status, 200, "{otlp}");
    let returned: ExportTraceServiceRequest = serde_json::from_value(otlp).expect("OTLP/JSON parses");
    let sent: ExportTraceServiceRequest = serde_json::from_value(sample()).expect("sample parses");
    assert_eq!(normalized(returned), normalized(sent), "?format=otlp must give back what was sent");

    let rows = node
        .sql(&format!(
            "SELECT name, service_name, kind, status_code, span_attributes['http.route'] AS route, \
             span_attributes['cart.total'] AS total, resource_attributes['host.cpu.count'] AS cpus \
             FROM spans WHERE trace_id = '{TRACE_ID}' ORDER BY start_time"
        ))
        .await;
    assert_eq!(
        rows["rows"],
        serde_json::json!([
            ["GET /cart/{id}", "cart", "server", "error", "/cart/{id}", "129.95", "8"],
            ["SELECT carts", "cart", "client", "unset", null, null, "8"],
            ["decode", "unknown_service", "internal", "unset", null, null, null],
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_round_trips_before_and_after_flush() {
    let node = ClusterBuilder::new().start().await;
    let (status, body) = node.post_otlp_json(&sample()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("partialSuccess").is_none_or(|p| p.get("rejectedSpans").is_none_or(|r| r == "0" || r == 0)),
        "nothing rejected: {body}"
    );

    // Buffered (WAL + memory) data is visible...
    check_read_back(&node).await;
    // ...and so is the same data once it is in Parquet.
    node.flush().await;
    check_read_back(&node).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_json_and_numeric_ints_are_accepted() {
    use std::io::Write;
    let node = ClusterBuilder::new().start().await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(sample().to_string().as_bytes()).expect("gzip");
    let response = node
        .http
        .post(format!("{}/v1/traces", node.otlp_http()))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().expect("gzip"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(node.sql_count(&format!("SELECT count(*) FROM spans WHERE trace_id = '{TRACE_ID}'")).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spans_are_rejected_with_partial_success() {
    let node = ClusterBuilder::new().start().await;
    let mut body = sample();
    let spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array_mut().expect("spans");
    let mut bad = spans[1].clone();
    bad["traceId"] = Value::String("00000000000000000000000000000000".into());
    spans.push(bad.clone());
    bad["traceId"] = Value::String("5b8efff7".into());
    spans.push(bad.clone());
    bad["traceId"] = Value::String(TRACE_ID.into());
    bad["spanId"] = Value::String("0000000000000000".into());
    spans.push(bad);
    let (status, response) = node.post_otlp_json(&body).await;
    assert_eq!(status, 200, "{response}");
    let partial = &response["partialSuccess"];
    // OTLP/JSON writes int64 as a string; accept a number too.
    let rejected =
        partial["rejectedSpans"].as_str().map_or_else(|| partial["rejectedSpans"].to_string(), str::to_owned);
    assert_eq!(rejected, "3", "{response}");
    assert!(partial["errorMessage"].as_str().is_some_and(|m| m.contains("trace_id")), "{response}");
    assert_eq!(node.sql_count(&format!("SELECT count(*) FROM spans WHERE trace_id = '{TRACE_ID}'")).await, 3);
}
