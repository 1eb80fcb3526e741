use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::test_support::{T1, T2, T3, assert_golden, get};

/// Seconds around the test data (BASE = 1700000000 s; spans within 22 s).
const RANGE: &str = "start=1699999990&end=1700000030";

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn search(query: &str) -> (StatusCode, Value) {
    let (status, _, body) = get(&format!("/api/search?{query}")).await;
    (status, serde_json::from_slice(&body).expect("json"))
}

async fn ids(query: &str) -> Vec<String> {
    let (status, json) = search(query).await;
    assert_eq!(status, StatusCode::OK, "{query}: {json}");
    json["traces"].as_array().expect("traces").iter().map(|t| t["traceID"].as_str().expect("id").to_owned()).collect()
}

fn traceql(q: &str) -> String {
    format!("q={}&{RANGE}", encode(q))
}

#[tokio::test]
async fn traceql_search_golden() {
    let (status, json) = search(&traceql(r#"{ resource.service.name = "checkout" && duration >= 500ms }"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_golden("tempo/search_traceql.json", &json);

    // The tested values come back with each matched span, typed.
    let q = r#"{ status = error && .payment.provider = "stripe" && kind = client && span.http.status_code != 500 }"#;
    let (status, json) = search(&format!("{}&spss=1", traceql(q))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["traces"].as_array().map(Vec::len), Some(0), "charge has no http.status_code");
    let q = r#"{ status = error && .payment.provider = "stripe" && kind = client }"#;
    let (status, json) = search(&format!("{}&spss=1", traceql(q))).await;
    assert_eq!(status, StatusCode::OK);
    assert_golden("tempo/search_traceql_attributes.json", &json);
    let (_, json) = search(&traceql("{ span.http.status_code = 200 }")).await;
    let attributes = &json["traces"][0]["spanSets"][0]["spans"][0]["attributes"];
    assert_eq!(attributes, &json!([{"key": "http.status_code", "value": {"intValue": "200"}}]));
}

#[tokio::test]
async fn tags_search_golden() {
    let (status, json) = search(&format!("tags={}&{RANGE}", encode("service.name=checkout"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_golden("tempo/search_tags.json", &json);
}

#[tokio::test]
async fn traceql_filters_select_traces() {
    assert_eq!(ids(&traceql("{}")).await, [T3, T2, T1]);
    assert_eq!(ids(&traceql("{ status = error }")).await, [T1]);
    assert_eq!(ids(&traceql(r#"{ span.http.route = "/cart" }"#)).await, [T2]);
    assert_eq!(ids(&traceql(r#"{ .deployment.environment = "prod" && kind = internal }"#)).await, [T3]);
    assert_eq!(ids(&traceql("{ duration > 1s }")).await, [T3]);
    assert_eq!(
        ids(&traceql(r#"{ name = "charge" && resource.service.name = "checkout" }"#)).await,
        Vec::<String>::new()
    );
    // Without a range the search is not bounded by time.
    assert_eq!(ids(&format!("q={}", encode("{ kind = server }"))).await, [T2, T1]);
}

#[tokio::test]
async fn span_sets_count_matches_and_keep_spss_spans() {
    let (_, json) = search(&format!("{}&spss=1", traceql("{}"))).await;
    let t3 = &json["traces"][0];
    assert_eq!(t3["traceID"], T3);
    assert_eq!(t3["spanSets"][0]["matched"], 2);
    assert_eq!(t3["spanSets"][0]["spans"].as_array().expect("spans").len(), 1);
    assert_eq!(t3["spanSets"][0]["spans"][0]["name"], "process", "the earliest span");
    assert_eq!(t3["spanSet"], t3["spanSets"][0], "the deprecated single set too");
    assert_eq!(t3["rootServiceName"], "<root span not yet received>");
    assert!(t3.get("rootTraceName").is_none());
}

#[tokio::test]
async fn tags_and_durations() {
    let tags = |t: &str| format!("tags={}&{RANGE}", encode(t));
    assert_eq!(ids(&tags("service.name=payments")).await, [T1]);
    assert_eq!(ids(&tags(r#"name="GET /cart""#)).await, [T2]);
    assert_eq!(ids(&tags("status=error")).await, [T1]);
    assert_eq!(ids(&tags("deployment.environment=prod http.route=/checkout")).await, [T1]);
    assert_eq!(ids(&format!("{}&minDuration=1s", tags(""))).await, [T3]);
    assert_eq!(ids(&format!("minDuration=200ms&maxDuration=0.4s&{RANGE}")).await, [T1]);
    assert_eq!(ids(&format!("limit=1&{RANGE}")).await, [T3]);
    assert_eq!(ids(&format!("limit=100000&{RANGE}")).await, [T3, T2, T1], "a large limit is capped, not refused");
    // end covers its whole second: T1's root starts exactly at 1700000000.
    assert_eq!(ids("start=1700000000&end=1700000000").await, [T1]);
}

#[tokio::test]
async fn refuses_bad_requests_with_a_clear_message() {
    for (query, says) in [
        (traceql("{ name = \"a\" } | count() > 1"), "pipelines"),
        (traceql("{ resource.service.name =~ \"a(b\" }"), "not a valid regular expression"),
        (traceql("{ kind = server } >> { kind = client }"), "structural operator"),
        (format!("q={}&tags=a%3Db", encode("{}")), "q and tags"),
        ("tags=a%3D%22open".to_owned(), "logfmt"),
        ("limit=0".to_owned(), "limit"),
        ("spss=-1".to_owned(), "spss"),
        ("start=soon".to_owned(), "start"),
        ("start=1700000010&end=1700000000".to_owned(), "start"),
        ("minDuration=5".to_owned(), "minDuration"),
        ("minDuration=2s&maxDuration=1s".to_owned(), "maxDuration"),
        ("tags=status%3Dbroken".to_owned(), "status"),
    ] {
        let (status, json) = search(&query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let message = json["error"]["message"].as_str().expect("message");
        assert!(message.contains(says), "{query}: {message}");
    }
    let (_, body) = search(&traceql("{ a = 1 } | count()")).await;
    assert_eq!(body["error"], json!({"code": "invalid_argument", "message": body["error"]["message"]}));
}
