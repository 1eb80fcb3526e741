//! Routing under the base path and the error bodies of both APIs.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::test_support::{T1, get, request, test_config};
use crate::{BasePath, JaegerConfig, QueryConfig};

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("json")
}

#[tokio::test]
async fn served_under_the_configured_base_path() {
    let config = QueryConfig {
        jaeger: JaegerConfig { base_path: BasePath::new("/tools/jaeger").expect("valid") },
        ..test_config()
    };
    let router = crate::server::test_router(config);
    let (status, _, body) = request(router.clone(), "GET", "/tools/jaeger/api/services", String::new()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["data"], json!(["cart", "checkout", "payments"]));
    // Not at the default path any more; the root's /api/traces stays Tempo's.
    // (the UI's fallback may answer that path with its page, never with services).
    let (_, _, body) = request(router.clone(), "GET", "/jaeger/api/v3/services", String::new()).await;
    let answer = serde_json::from_slice::<serde_json::Value>(&body).ok();
    assert!(answer.is_none_or(|v| v.get("services").is_none()), "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = request(router, "GET", &format!("/api/traces/{T1}"), String::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(json(&body)["batches"].is_array(), "Tempo's shape at the root");
}

#[tokio::test]
async fn internal_api_errors_are_jaeger_envelopes() {
    let (status, _, body) = get("/jaeger/api/traces/xyz").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body = json(&body);
    assert_eq!(
        (&body["data"], &body["total"], &body["limit"], &body["offset"]),
        (&Value::Null, &json!(0), &json!(0), &json!(0))
    );
    assert_eq!(body["errors"][0]["code"], 400);
    assert!(body["errors"][0]["msg"].as_str().expect("msg").contains("xyz"), "{body}");

    let (status, _, body) = get(&format!("/jaeger/api/traces/{}", "f".repeat(32))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["errors"], json!([{ "code": 404, "msg": "trace not found" }]));

    let (status, _, body) = get("/jaeger/api/archive/abc").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["errors"][0]["code"], 404);
}

#[tokio::test]
async fn v3_errors_are_gateway_errors() {
    let (status, _, body) = get(&format!("/jaeger/api/v3/traces/{}", "f".repeat(32))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body), json!({ "error": { "httpCode": 404, "message": "No traces found" } }));
    let (status, _, body) = get("/jaeger/api/v3/traces?query.service_name=cart").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["error"]["httpCode"], 400);
}

#[tokio::test]
async fn trace_ids_accept_trimmed_zeros_and_base64() {
    for id in [T1.to_owned(), T1.to_uppercase(), "EREREREREREREREREREREQ==".to_owned()] {
        let (status, _, body) = get(&format!("/jaeger/api/v3/traces/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}: {}", String::from_utf8_lossy(&body));
    }
    // Leading zeros left out: padded, then looked up (and not found here).
    let (status, _, body) = get("/jaeger/api/traces/abc").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", String::from_utf8_lossy(&body));
    for bad in ["0".repeat(32), "a".repeat(33), "not-an-id".to_owned()] {
        let (status, _, _) = get(&format!("/jaeger/api/traces/{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}
