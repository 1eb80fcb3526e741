use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::test_support::{BASE_SECONDS, T1, T2, T3, assert_golden, get};

async fn ok(uri: &str) -> Value {
    let (status, headers, body) = get(uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/json");
    serde_json::from_slice(&body).expect("json")
}

/// `start` and `end` (µs) around the test data.
fn range() -> String {
    format!("start={}&end={}", (BASE_SECONDS - 60) * 1_000_000, (BASE_SECONDS + 60) * 1_000_000)
}

fn trace_ids(body: &Value) -> Vec<String> {
    body["data"].as_array().expect("data").iter().map(|t| t["traceID"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test]
async fn services_and_operations_golden() {
    assert_golden("jaeger/services.json", &ok("/jaeger/api/services").await);
    assert_golden("jaeger/service_operations.json", &ok("/jaeger/api/services/checkout/operations").await);
    assert_golden("jaeger/operations.json", &ok("/jaeger/api/operations?service=checkout").await);
    let servers = ok("/jaeger/api/operations?service=checkout&spanKind=server").await;
    assert_eq!(servers["data"], json!([{ "name": "POST /checkout", "spanKind": "server" }]));
    assert_eq!(servers["total"], 1);
    assert_eq!(ok("/jaeger/api/services/nobody/operations").await["data"], json!([]));
    let (status, _, _) = get("/jaeger/api/operations").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "service is required");
    let (status, _, _) = get("/jaeger/api/operations?service=checkout&spanKind=sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn trace_golden() {
    // T1: a server root with an int attribute and a client child in error.
    assert_golden("jaeger/trace.json", &ok(&format!("/jaeger/api/traces/{T1}")).await);
}

#[tokio::test]
async fn search_golden_and_filters() {
    let body = ok(&format!("/jaeger/api/traces?service=payments&{}&limit=20&lookback=1h", range())).await;
    assert_golden("jaeger/search.json", &body);
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/traces?{}", range())).await), [T3, T2, T1]);
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/traces?{}&limit=1", range())).await), [T3]);
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/traces?operation=charge&{}", range())).await), [T1]);
    let tags = "tags=%7B%22http.route%22%3A%22%2Fcart%22%7D";
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/traces?{tags}&{}", range())).await), [T2]);
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/traces?tag=error:true&{}", range())).await), [T1]);
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/traces?tags=span.kind:client&{}", range())).await), [T1]);
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/traces?minDuration=1s&{}", range())).await), [T3]);
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/traces?maxDuration=60ms&{}", range())).await), [T2]);
    // Outside the default range (the last two days) the old test data is not searched.
    assert!(trace_ids(&ok("/jaeger/api/traces").await).is_empty());
    let end_only = format!("/jaeger/api/traces?end={}", (BASE_SECONDS + 60) * 1_000_000);
    assert_eq!(trace_ids(&ok(&end_only).await), [T3, T2, T1]);
}

#[tokio::test]
async fn search_by_trace_ids_reports_the_missing_ones() {
    let missing = "f".repeat(32);
    let body = ok(&format!("/jaeger/api/traces?traceID={T2}&traceID={missing}")).await;
    assert_eq!(trace_ids(&body), [T2]);
    assert_eq!(body["errors"], json!([{ "msg": "trace not found", "traceID": missing }]));
}

#[tokio::test]
async fn bad_search_parameters_are_400() {
    for query in [
        "start=yesterday",
        "end=-5",
        "limit=many",
        "minDuration=soon",
        "minDuration=2s&maxDuration=1s",
        "tag=no-colon",
        "tags=%7Bbroken",
        "start=2000000000000000&end=1000000000000000",
        "service=a&service=b",
    ] {
        let (status, _, body) = get(&format!("/jaeger/api/traces?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["errors"][0]["code"], 400, "{query}");
    }
}

#[tokio::test]
async fn dependencies_golden() {
    let end_ms = (BASE_SECONDS + 120) * 1000;
    let body = ok(&format!("/jaeger/api/dependencies?endTs={end_ms}&lookback=300000")).await;
    assert_golden("jaeger/dependencies.json", &body);
    assert_eq!(body["data"], json!([{ "parent": "checkout", "child": "payments", "callCount": 1 }]));
    let only = ok(&format!("/jaeger/api/dependencies?endTs={end_ms}&lookback=300000&service=cart")).await;
    assert_eq!(only["data"], json!([]));
    let before = ok(&format!("/jaeger/api/dependencies?endTs={}&lookback=60000", (BASE_SECONDS - 120) * 1000)).await;
    assert_eq!(before["data"], json!([]), "nothing before the data");
}
