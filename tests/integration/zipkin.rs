//! Zipkin v2 JSON posted to a running node's OTLP/HTTP port comes back
//! through the query API as OTLP-shaped spans, before and after a flush;
//! CORS is answered on the same port when configured.

use serde_json::{Value, json};

use crate::support::{ClusterBuilder, TestNode};

const TRACE_ID: &str = "463ac35c9f6413ad48485a3953bb6124";
/// A 64-bit Zipkin trace ID, stored with 16 leading zeros.
const SHORT_TRACE_ID: &str = "48485a3953bb6124";
const ORIGIN: &str = "https://shop.example.com";

fn zipkin_spans() -> Value {
    json!([
        {
            "traceId": TRACE_ID, "id": "a2fb4a1d1a96d312", "name": "get /checkout", "kind": "SERVER",
            "timestamp": 1_731_000_000_000_000u64, "duration": 150_000,
            "localEndpoint": {"serviceName": "shop", "ipv4": "10.1.0.7", "port": 8080},
            "remoteEndpoint": {"ipv4": "192.0.2.10", "port": 53211},
            "tags": {"http.method": "GET", "http.path": "/checkout", "error": "payment declined"},
            "annotations": [{"timestamp": 1_731_000_000_050_000u64, "value": "payment.retry"}]
        },
        {
            "traceId": TRACE_ID, "id": "0020000000000001", "parentId": "a2fb4a1d1a96d312", "name": "charge",
            "kind": "CLIENT", "timestamp": 1_731_000_000_010_000u64, "duration": 90_000,
            "localEndpoint": {"serviceName": "shop"},
            "remoteEndpoint": {"serviceName": "payments", "ipv4": "10.1.0.9", "port": 443}
        },
        {
            "traceId": SHORT_TRACE_ID, "id": "0000000000000abc", "name": "nightly",
            "timestamp": 1_731_000_100_000_000u64, "duration": 5, "localEndpoint": {"serviceName": "cron"}
        }
    ])
}

fn attribute<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["attributes"]
        .as_array()
        .and_then(|attrs| attrs.iter().find(|a| a["key"] == key))
        .map_or(&Value::Null, |a| &a["value"])
}

async fn check_read_back(node: &TestNode) {
    let trace = node.trace(TRACE_ID).await;
    assert_eq!(trace["spanCount"], 2, "{trace}");
    assert_eq!(trace["services"], json!(["shop"]));
    let spans = trace["spans"].as_array().expect("spans");
    let server = spans.iter().find(|s| s["spanId"] == "a2fb4a1d1a96d312").expect("server span");
    assert_eq!(server["serviceName"], "shop");
    assert_eq!(server["kind"], "server");
    assert_eq!(server["parentSpanId"], Value::Null);
    assert_eq!(server["startTimeUnixNano"], "1731000000000000000");
    assert_eq!(server["durationNanos"], 150_000_000);
    assert_eq!(server["status"], json!({"code": "error", "message": "payment declined"}));
    assert_eq!(attribute(server, "http.path"), "/checkout");
    assert_eq!(attribute(server, "error"), &Value::Null, "the error tag became the status");
    assert_eq!(attribute(server, "network.local.address"), "10.1.0.7");
    assert_eq!(attribute(server, "network.local.port"), 8080);
    assert_eq!(attribute(server, "network.peer.address"), "192.0.2.10");
    assert_eq!(server["events"][0]["name"], "payment.retry");
    assert_eq!(server["events"][0]["timeUnixNano"], "1731000000050000000");

    let client = spans.iter().find(|s| s["spanId"] == "0020000000000001").expect("client span");
    assert_eq!(client["kind"], "client");
    assert_eq!(client["parentSpanId"], "a2fb4a1d1a96d312");
    assert_eq!(attribute(client, "peer.service"), "payments");
    assert_eq!(attribute(client, "network.peer.port"), 443);

    // A 64-bit ID is found by its 16 digits and by the padded 32.
    for id in [SHORT_TRACE_ID.to_owned(), format!("{:0>32}", SHORT_TRACE_ID)] {
        let trace = node.trace(&id).await;
        assert_eq!(trace["spans"][0]["name"], "nightly", "{id}: {trace}");
        assert_eq!(trace["spans"][0]["kind"], "internal");
        assert_eq!(trace["spans"][0]["durationNanos"], 5000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipkin_spans_are_durable_then_queryable() {
    let node =
        ClusterBuilder::new().configure(|c| c.collector.cors_allowed_origins = vec![ORIGIN.to_owned()]).start().await;
    let url = format!("{}/api/v2/spans", node.otlp_http());
    let response = node
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("origin", ORIGIN)
        .body(zipkin_spans().to_string())
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(response.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some(ORIGIN));
    assert_eq!(response.text().await.expect("body"), "");

    check_read_back(&node).await;
    node.flush().await;
    check_read_back(&node).await;

    // One bad span refuses the batch, and says which.
    let mut bad = zipkin_spans();
    bad[1]["id"] = json!("not-an-id");
    let response = node.http.post(&url).header("content-type", "application/json").body(bad.to_string()).send().await;
    let response = response.expect("request sent");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("json status");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("spans[1].id")), "{body}");

    let preflight = node
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight sent");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some(ORIGIN));
    node.stop().await;
}
