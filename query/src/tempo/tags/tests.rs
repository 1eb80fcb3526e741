use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::test_support::{assert_golden, get};

/// Seconds around the test data (BASE = 1700000000 s; spans within 22 s).
const RANGE: &str = "start=1699999990&end=1700000030";

async fn fetch(uri: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
    let (status, headers, body) = get(uri).await;
    (status, headers, serde_json::from_slice(&body).expect("json"))
}

async fn ok(uri: &str) -> Value {
    let (status, headers, json) = fetch(uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {json}");
    assert!(headers.get("x-skein-truncated").is_none(), "{uri}");
    json
}

#[tokio::test]
async fn tag_names_golden() {
    assert_golden("tempo/search_tags_v1.json", &ok(&format!("/api/search/tags?{RANGE}")).await);
    assert_golden("tempo/search_tags_v2.json", &ok(&format!("/api/v2/search/tags?{RANGE}")).await);
    let span_only = ok(&format!("/api/search/tags?scope=span&{RANGE}")).await;
    assert_eq!(span_only["tagNames"], json!(["http.route", "http.status_code", "payment.provider", "step.index"]));
    let intrinsic = ok(&format!("/api/v2/search/tags?scope=intrinsic&{RANGE}")).await;
    assert_eq!(intrinsic["scopes"][0]["name"], "intrinsic");
}

#[tokio::test]
async fn tag_values_golden() {
    let v2 = |tag: &str| format!("/api/v2/search/tag/{tag}/values?{RANGE}");
    let mut all = serde_json::Map::new();
    for tag in [
        "resource.service.name",
        "span.http.route",
        "span.http.status_code",
        ".deployment.environment",
        "name",
        "status",
        "kind",
        "duration",
    ] {
        all.insert(tag.to_owned(), ok(&v2(tag)).await);
    }
    assert_golden("tempo/search_tag_values_v2.json", &Value::Object(all));
    assert_golden("tempo/search_tag_values_v1.json", &ok(&format!("/api/search/tag/http.route/values?{RANGE}")).await);
}

#[tokio::test]
async fn values_follow_the_q_filter_and_ignore_a_broken_one() {
    let q = "q=%7Bresource.service.name%3D%22payments%22%7D";
    let json = ok(&format!("/api/v2/search/tag/name/values?{q}&{RANGE}")).await;
    assert_eq!(json["tagValues"], json!([{"type": "string", "value": "charge"}]));
    let half_typed = "q=%7Bresource.service.name%3D%7D";
    let json = ok(&format!("/api/v2/search/tag/resource.service.name/values?{half_typed}&{RANGE}")).await;
    assert_eq!(json["tagValues"].as_array().expect("values").len(), 3);
}

#[tokio::test]
async fn discovery_defaults_to_the_last_hour() {
    // The test data is from 2023: nothing in the last hour.
    assert_eq!(ok("/api/v2/search/tag/resource.service.name/values").await["tagValues"], json!([]));
    assert_eq!(ok("/api/search/tags").await["tagNames"], json!([]));
}

#[tokio::test]
async fn cut_lists_say_so() {
    let (status, headers, json) =
        fetch(&format!("/api/v2/search/tag/resource.service.name/values?limit=2&{RANGE}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-skein-truncated"], "true");
    assert_eq!(json["tagValues"].as_array().expect("values").len(), 2);
}

#[tokio::test]
async fn unsupported_tags_and_scopes_are_400() {
    for uri in [
        "/api/v2/search/tag/event.name/values",
        "/api/v2/search/tag/http.route/values",
        "/api/v2/search/tag/span./values",
        "/api/v2/search/tags?scope=event",
        "/api/search/tags?scope=link",
        "/api/search/tags?limit=0",
        "/api/search/tags?start=never",
    ] {
        let (status, _, json) = fetch(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(json["error"]["code"], "invalid_argument", "{uri}");
    }
}
