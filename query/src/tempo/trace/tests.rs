use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;

use super::TraceByIdResponse;
use crate::test_support::{T1, T3, assert_golden, get, get_with_headers, only_trace, shard_requests};

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("json")
}

#[tokio::test]
async fn v1_json_is_tempo_batches() {
    let (status, headers, body) = get(&format!("/api/traces/{T1}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_golden("tempo/trace_v1.json", &json(&body));
}

#[tokio::test]
async fn v2_json_wraps_the_trace() {
    let (status, _, body) = get(&format!("/api/v2/traces/{T3}?start=1700000000&end=1700000060")).await;
    assert_eq!(status, StatusCode::OK);
    assert_golden("tempo/trace_v2.json", &json(&body));
}

#[tokio::test]
async fn protobuf_when_accepted_round_trips_the_spans() {
    let (a, b) = shard_requests();
    for trace in [T1, T3] {
        let expected = only_trace(&[a.clone(), b.clone()], trace);
        let accept = [("accept", "application/protobuf")];
        let (status, headers, body) = get_with_headers(&format!("/api/traces/{trace}"), &accept).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/protobuf");
        assert_eq!(ExportTraceServiceRequest::decode(body).expect("Tempo Trace = OTLP TracesData"), expected);

        let accept = [("accept", "application/protobuf, application/json;q=0.5")];
        let (status, _, body) = get_with_headers(&format!("/api/v2/traces/{trace}"), &accept).await;
        assert_eq!(status, StatusCode::OK);
        let response = TraceByIdResponse::decode(body).expect("TraceByIDResponse");
        assert_eq!(response.trace, Some(expected));
    }
}

#[tokio::test]
async fn ids_with_trimmed_leading_zeros_are_padded() {
    // Grafana sends IDs without their leading zeros; 64-bit IDs are 16 digits.
    for (sent, padded) in [
        ("abcdef0123456789abcdef01234", "00000abcdef0123456789abcdef01234"),
        ("0123456789abcdef", "00000000000000000123456789abcdef"),
        ("ABC", "00000000000000000000000000000abc"),
    ] {
        for path in ["/api/traces", "/api/v2/traces", "/api/v1/traces"] {
            let (status, _, body) = get(&format!("{path}/{sent}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}/{sent}");
            let message = json(&body)["error"]["message"].as_str().expect("message").to_owned();
            assert!(message.contains(padded), "{message}");
        }
    }
}

#[tokio::test]
async fn bad_ids_and_times_are_400() {
    for uri in [
        "/api/traces/xyz".to_owned(),
        format!("/api/traces/{}", "0".repeat(32)),
        format!("/api/v2/traces/{}", "a".repeat(33)),
        format!("/api/traces/{T1}?start=yesterday"),
        format!("/api/v2/traces/{T1}?start=1700000060&end=1700000000"),
    ] {
        let (status, _, body) = get(&uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(json(&body)["error"]["code"], "invalid_argument", "{uri}");
    }
    let (_, _, body) = get("/api/traces/xyz").await;
    assert!(json(&body)["error"]["message"].as_str().expect("message").contains("hex digits"));
}
