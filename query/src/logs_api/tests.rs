//! The log API over the fixtures of `test_fixtures.rs`.

use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use serde_json::{Value, json};

use super::test_fixtures::logs_request;
use crate::test_support::{BASE_SECONDS, T1, T2, get};

/// The minute the fixtures live in.
fn range() -> String {
    format!("start={BASE_SECONDS}&end={}", BASE_SECONDS + 60)
}

async fn get_json(uri: &str) -> Value {
    let (status, _, body) = get(uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json")
}

async fn bodies(query: &str) -> Vec<String> {
    let json = get_json(&format!("/api/v1/logs?{}&{query}", range())).await;
    json["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|log| match &log["body"]["value"] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[tokio::test]
async fn search_returns_records_newest_first_as_skein_json() {
    let json = get_json(&format!("/api/v1/logs?{}", range())).await;
    let logs = json["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 6);
    assert_eq!(json["nextCursor"], Value::Null);
    let services: Vec<&str> = logs.iter().map(|l| l["serviceName"].as_str().expect("service")).collect();
    assert_eq!(services, ["worker", "worker", "cart", "cart", "payments", "checkout"]);
    let declined = &logs[4];
    assert_eq!(declined["severity"], "error");
    assert_eq!(declined["severityNumber"], 17);
    assert_eq!(declined["traceId"], T1);
    assert_eq!(declined["spanId"], "0202020202020202");
    assert_eq!(declined["attributes"], json!([{"key": "card", "type": "string", "value": "visa"}]));
    assert_eq!(declined["timeUnixNano"], (1_700_000_000_200_000_000u64).to_string());
    assert_eq!(
        logs[2]["body"],
        json!({"type": "kvlist", "value": [{"key": "event", "type": "string", "value": "cart.viewed"}]})
    );
    assert_eq!(logs[2]["traceId"], Value::Null);
}

#[tokio::test]
async fn filters_by_service_severity_text_attributes_and_ids() {
    assert_eq!(bodies("service=cart").await.len(), 2);
    assert_eq!(bodies("severity=warn").await, ["cart is 95% full", "card declined: 50% off_code"]);
    assert_eq!(bodies("severity=ERROR").await, ["card declined: 50% off_code"]);
    assert_eq!(bodies("severity=18").await, Vec::<String>::new());
    // Case-insensitive and literal: % and _ are not wildcards.
    assert_eq!(bodies("q=DECLINED").await, ["card declined: 50% off_code"]);
    assert_eq!(bodies("q=50%25%20off_").await, ["card declined: 50% off_code"]);
    assert_eq!(bodies("q=95%25").await, ["cart is 95% full"]);
    assert_eq!(bodies("q=o_d").await, Vec::<String>::new());
    assert_eq!(bodies("attr=card=visa").await, ["card declined: 50% off_code"]);
    assert_eq!(bodies("attr=service.name=checkout").await, ["order 17 placed"]);
    assert_eq!(bodies(&format!("trace_id={T1}")).await, ["card declined: 50% off_code", "order 17 placed"]);
    assert_eq!(bodies(&format!("trace_id={T1}&span_id=0101010101010101")).await, ["order 17 placed"]);
    // Only inside the time range.
    let json = get_json(&format!("/api/v1/logs?start={}&end={}", BASE_SECONDS + 11, BASE_SECONDS + 20)).await;
    assert_eq!(json["logs"].as_array().expect("logs").len(), 1);
}

#[tokio::test]
async fn pages_return_every_record_once_even_across_equal_times() {
    for limit in 1..=6 {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let mut uri = format!("/api/v1/logs?{}&limit={limit}", range());
            if let Some(c) = &cursor {
                uri.push_str(&format!("&cursor={c}"));
            }
            let json = get_json(&uri).await;
            let page = json["logs"].as_array().expect("logs");
            assert!(page.len() <= limit);
            seen.extend(page.iter().map(|l| (l["timeUnixNano"].clone(), l["serviceName"].clone())));
            match json["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let all: Vec<_> = get_json(&format!("/api/v1/logs?{}", range())).await["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .map(|l| (l["timeUnixNano"].clone(), l["serviceName"].clone()))
            .collect();
        assert_eq!(seen, all, "limit {limit}");
    }
}

#[tokio::test]
async fn volume_counts_records_per_step_and_band() {
    let json = get_json(&format!("/api/v1/logs/volume?{}&step=10s", range())).await;
    let base_ms = BASE_SECONDS * 1000;
    assert_eq!(json["step_ms"], 10_000);
    assert_eq!(json["total"], 6);
    assert_eq!(
        json["series"],
        json!([
            {"severity": "debug", "counts": [[base_ms + 10_000, 1]]},
            {"severity": "info", "counts": [[base_ms, 1], [base_ms + 30_000, 2]]},
            {"severity": "warn", "counts": [[base_ms + 10_000, 1]]},
            {"severity": "error", "counts": [[base_ms, 1]]},
        ])
    );
    let json = get_json(&format!("/api/v1/logs/volume?{}&service=worker", range())).await;
    assert_eq!(json["total"], 2);
    assert_eq!(json["step_ms"], 1_000);
}

#[tokio::test]
async fn trace_logs_come_oldest_first_and_as_otlp() {
    let json = get_json(&format!("/api/v1/traces/{T1}/logs")).await;
    assert_eq!(json["traceId"], T1);
    assert_eq!(json["truncated"], false);
    let logs = json["logs"].as_array().expect("logs");
    let bodies: Vec<&Value> = logs.iter().map(|l| &l["body"]["value"]).collect();
    assert_eq!(bodies, [&json!("order 17 placed"), &json!("card declined: 50% off_code")]);
    // Leading zeros may be trimmed, as for trace lookups.
    let json = get_json(&format!("/api/v1/traces/{}/logs", T2.trim_start_matches('0'))).await;
    assert_eq!(json["logs"].as_array().expect("logs").len(), 1);
    let json = get_json(&format!("/api/v1/traces/{}/logs", "f".repeat(32))).await;
    assert_eq!(json["logs"], json!([]));

    let (status, _, body) = get(&format!("/api/v1/traces/{T1}/logs?format=otlp")).await;
    assert_eq!(status, StatusCode::OK);
    let request: ExportLogsServiceRequest = serde_json::from_slice(&body).expect("OTLP/JSON");
    let sent = logs_request();
    let expected = ExportLogsServiceRequest { resource_logs: sent.resource_logs[..2].to_vec() };
    assert_eq!(request, expected);
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_reason() {
    for (query, reason) in [
        ("severity=loud", "severity must be"),
        ("limit=0", "limit must be"),
        ("limit=5000", "limit must be"),
        ("trace_id=xyz", "trace_id must be"),
        ("span_id=12", "span_id must be"),
        ("attr=novalue", "attr must be key=value"),
        ("cursor=abc", "cursor must be"),
        ("start=2024-01-02T00:00:00Z&end=2024-01-01T00:00:00Z", "start must not be after end"),
        ("colour=red", "unknown parameter"),
    ] {
        let (status, _, body) = get(&format!("/api/v1/logs?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert!(json["error"]["message"].as_str().is_some_and(|m| m.contains(reason)), "{query}: {json}");
    }
    let (status, _, _) = get(&format!("/api/v1/logs/volume?{}&step=1ms", range())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = get("/api/v1/traces/xyz/logs").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = get(&format!("/api/v1/traces/{T1}/logs?format=xml")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_logs_table_answers_sql() {
    let (status, _, body) = crate::test_support::post_sql(
        "SELECT service_name, count(*) AS n FROM logs WHERE severity_number >= 9 GROUP BY service_name ORDER BY n DESC, service_name",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let json: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["rows"], json!([["worker", 2], ["cart", 1], ["checkout", 1], ["payments", 1]]));
}

/// The exact JSON of each log endpoint, as the UI and scripts parse it.
#[tokio::test]
async fn log_endpoints_match_their_golden_files() {
    use crate::test_support::assert_golden;
    assert_golden("logs/search.json", &get_json(&format!("/api/v1/logs?{}&limit=4", range())).await);
    assert_golden("logs/volume.json", &get_json(&format!("/api/v1/logs/volume?{}&step=15s", range())).await);
    assert_golden("logs/trace_logs.json", &get_json(&format!("/api/v1/traces/{T1}/logs")).await);
    assert_golden("logs/trace_logs_otlp.json", &get_json(&format!("/api/v1/traces/{T1}/logs?format=otlp")).await);
}
