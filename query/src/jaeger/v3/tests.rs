use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::{Value, json};

use crate::test_support::{T1, T2, T3, assert_golden, get, only_trace, shard_requests};

async fn ok(uri: &str) -> Value {
    let (status, _, body) = get(uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json")
}

const RANGE: &str = "query.start_time_min=2023-11-14T22:12:00Z&query.start_time_max=2023-11-14T22:15:00Z";

/// The trace IDs of the spans of a `result`, in order of first appearance.
fn trace_ids(body: &Value) -> Vec<String> {
    let request: ExportTraceServiceRequest = serde_json::from_value(body["result"].clone()).expect("OTLP/JSON");
    let mut ids: Vec<String> = Vec::new();
    for rs in &request.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let id = const_hex::encode(&span.trace_id);
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

#[tokio::test]
async fn services_and_operations_golden() {
    assert_golden("jaeger/v3_services.json", &ok("/jaeger/api/v3/services").await);
    assert_golden("jaeger/v3_operations.json", &ok("/jaeger/api/v3/operations?service=checkout").await);
    let clients = ok("/jaeger/api/v3/operations?service=payments&span_kind=client").await;
    assert_eq!(clients, json!({ "operations": [{ "name": "charge", "spanKind": "client" }] }));
    let camel = ok("/jaeger/api/v3/operations?service=payments&spanKind=server").await;
    assert_eq!(camel, json!({ "operations": [] }));
}

#[tokio::test]
async fn trace_golden_round_trips_the_spans() {
    let body = ok(&format!("/jaeger/api/v3/traces/{T1}?startTime=2023-11-14T22:13:00Z")).await;
    assert_golden("jaeger/v3_trace.json", &body);
    let request: ExportTraceServiceRequest = serde_json::from_value(body["result"].clone()).expect("OTLP/JSON");
    let (a, b) = shard_requests();
    assert_eq!(request, only_trace(&[a, b], T1));
}

#[tokio::test]
async fn search_golden_and_parameters() {
    let body = ok(&format!("/jaeger/api/v3/traces?{RANGE}&query.service_name=cart")).await;
    assert_golden("jaeger/v3_search.json", &body);
    assert_eq!(trace_ids(&body), [T2]);
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/v3/traces?{RANGE}")).await), [T3, T2, T1]);
    let camel = RANGE.replace("start_time_min", "startTimeMin").replace("start_time_max", "startTimeMax");
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/v3/traces?{camel}&query.searchDepth=2")).await), [T3, T2]);
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/v3/traces?{RANGE}&query.search_depth=1")).await), [T3]);
    let attributes = "query.attributes=%7B%22payment.provider%22%3A%22stripe%22%7D";
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/v3/traces?{RANGE}&{attributes}")).await), [T1]);
    let durations = "query.duration_min=100ms&query.durationMax=400ms";
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/v3/traces?{RANGE}&{durations}")).await), [T1]);
    let operation = "query.operation_name=process.step";
    assert_eq!(trace_ids(&ok(&format!("/jaeger/api/v3/traces?{RANGE}&{operation}")).await), [T3]);
    let (status, _, body) = get(&format!("/jaeger/api/v3/traces?{RANGE}&query.service_name=nobody")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body, json!({ "error": { "httpCode": 404, "message": "No traces found" } }));
}

#[tokio::test]
async fn bad_parameters_are_400() {
    for query in [
        "query.start_time_min=2023-11-14T22:12:00Z".to_owned(),
        "query.start_time_min=yesterday&query.start_time_max=2023-11-14T22:15:00Z".to_owned(),
        "query.start_time_min=2023-11-14T22:15:00Z&query.start_time_max=2023-11-14T22:12:00Z".to_owned(),
        format!("{RANGE}&query.search_depth=many"),
        format!("{RANGE}&query.duration_min=soon"),
        format!("{RANGE}&query.attributes=%5B1%5D"),
        format!("{RANGE}&query.raw_traces=perhaps"),
    ] {
        let (status, _, body) = get(&format!("/jaeger/api/v3/traces?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["error"]["httpCode"], 400, "{query}");
        assert!(body["error"]["message"].is_string());
    }
    let (status, _, _) = get(&format!("/jaeger/api/v3/traces/{T1}?startTime=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = get("/jaeger/api/v3/operations").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn trace_summaries_golden() {
    let body = ok(&format!("/jaeger/api/v3/trace-summaries?{RANGE}&query.service_name=checkout")).await;
    assert_golden("jaeger/v3_trace_summaries.json", &body);
    let ids: Vec<&str> =
        body["summaries"].as_array().expect("summaries").iter().map(|s| s["traceId"].as_str().expect("id")).collect();
    assert_eq!(ids, [T3, T1]);
    let none = ok(&format!("/jaeger/api/v3/trace-summaries?{RANGE}&query.service_name=nobody")).await;
    assert_eq!(none, json!({}), "proto3 JSON leaves out an empty list");
    let (status, _, _) = get("/jaeger/api/v3/trace-summaries?query.service_name=cart").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the time range is required");
}
