//! OTLP/HTTP metrics (`POST /v1/metrics`) success paths: protobuf, JSON
//! and gzip exports land on their series' shards exactly as sent, and
//! partial success is answered in the request's encoding. The error
//! statuses are exercised for both signals in http_tests.rs.

use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use prost::Message;

use crate::codec;
use crate::http_tests::{GZIP, JSON, PROTOBUF};
use crate::json_tests::{METRICS_RICH_EXAMPLE, METRICS_SPEC_EXAMPLE};
use crate::metric_fixtures::{
    all_types_request, assert_stored_exactly, gauge, gauge_point, metrics_request, point_total, single_points,
};
use crate::signal::Metrics;
use crate::test_support::{Running, TestWriter, gzip, http_post};

fn decode_json(body: &str) -> ExportMetricsServiceRequest {
    codec::decode_json::<Metrics>(body.as_bytes()).expect("valid OTLP/JSON")
}

#[tokio::test]
async fn protobuf_export_lands_on_series_shards() {
    let writer = TestWriter::new(4);
    let server = Running::start(writer.clone()).await;
    let sent = all_types_request();
    let response = http_post(server.http, "/v1/metrics", &[PROTOBUF], &sent.encode_to_vec()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/x-protobuf"));
    let decoded = ExportMetricsServiceResponse::decode(&response.body[..]).expect("protobuf response");
    assert_eq!(decoded.partial_success, None);
    assert_stored_exactly(&writer, &sent);
    assert!(writer.metric_batches().len() > 1, "series spread over several shards");
    assert!(writer.batches().is_empty(), "no points written as spans");

    let text = server.metrics_text();
    assert!(text.contains(&format!("skein_collector_points_accepted_total {}", point_total(&sent))), "{text}");
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="metrics",transport="http",outcome="ok"} 1"#),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn json_examples_are_stored_and_answered_in_json() {
    let writer = TestWriter::new(3);
    let server = Running::start(writer.clone()).await;
    let response = http_post(
        server.http,
        "/v1/metrics",
        &[("Content-Type", "application/json; charset=utf-8")],
        METRICS_SPEC_EXAMPLE.as_bytes(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.text(), "{}");
    assert_stored_exactly(&writer, &decode_json(METRICS_SPEC_EXAMPLE));
    assert_eq!(writer.point_count(), 3);

    // Every point type, string and number int64s; the metric of an unknown
    // type is rejected, the rest stored exactly.
    let response = http_post(server.http, "/v1/metrics", &[JSON], METRICS_RICH_EXAMPLE.as_bytes()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let value: serde_json::Value = serde_json::from_slice(&response.body).expect("json response");
    assert_eq!(value["partialSuccess"]["rejectedDataPoints"], 1, "{value}");
    assert!(value["partialSuccess"]["errorMessage"].as_str().is_some_and(|m| m.contains("from.the.future")), "{value}");
    let mut both = decode_json(METRICS_SPEC_EXAMPLE);
    both.resource_metrics.extend(decode_json(METRICS_RICH_EXAMPLE).resource_metrics);
    assert_stored_exactly(&writer, &both);
    assert_eq!(writer.point_count(), 3 + 6);
    server.stop().await;
}

#[tokio::test]
async fn int64_as_string_or_number_stores_the_same_point() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    let body = |time: &str, value: &str, count: &str| {
        format!(
            r#"{{"resourceMetrics": [{{"scopeMetrics": [{{"metrics": [
                {{"name": "g", "gauge": {{"dataPoints": [{{"timeUnixNano": {time}, "asInt": {value}}}]}}}},
                {{"name": "h", "histogram": {{"dataPoints": [{{"timeUnixNano": {time}, "count": {count},
                  "bucketCounts": [{count}], "explicitBounds": []}}]}}}}
            ]}}]}}]}}"#
        )
    };
    let as_strings = body("\"1700000000000000001\"", "\"-9007199254740993\"", "\"18446744073709551615\"");
    let as_numbers = body("1700000000000000001", "-9007199254740993", "18446744073709551615");
    for json in [&as_strings, &as_numbers] {
        let response = http_post(server.http, "/v1/metrics", &[JSON], json.as_bytes()).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.text(), "{}");
    }
    let stored = writer.stored_points();
    assert_eq!(stored.len(), 4);
    // Sorted: each point appears twice in a row, once per encoding.
    assert_eq!(stored[0], stored[1]);
    assert_eq!(stored[2], stored[3]);
    assert_eq!(single_points(&decode_json(&as_strings)), single_points(&decode_json(&as_numbers)));
    server.stop().await;
}

#[tokio::test]
async fn gzip_bodies_in_both_encodings() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let sent = all_types_request();
    let response = http_post(server.http, "/v1/metrics", &[PROTOBUF, GZIP], &gzip(&sent.encode_to_vec())).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/x-protobuf"));
    let json = gzip(METRICS_SPEC_EXAMPLE.as_bytes());
    let response = http_post(server.http, "/v1/metrics", &[JSON, GZIP], &json).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let mut both = sent;
    both.resource_metrics.extend(decode_json(METRICS_SPEC_EXAMPLE).resource_metrics);
    assert_stored_exactly(&writer, &both);
    server.stop().await;
}

#[tokio::test]
async fn partial_success_reports_rejected_points_in_the_request_encoding() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let mut no_time = gauge_point(9, 9, 1.0);
    no_time.time_unix_nano = 0;
    let body = metrics_request(vec![gauge("cpu", vec![gauge_point(1, 1, 0.1), no_time, gauge_point(2, 2, 0.2)])]);
    let response = http_post(server.http, "/v1/metrics", &[PROTOBUF], &body.encode_to_vec()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let partial = ExportMetricsServiceResponse::decode(&response.body[..])
        .expect("protobuf response")
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_data_points, 1);
    assert!(partial.error_message.starts_with("1 data point(s) rejected; first: "), "{}", partial.error_message);
    assert!(partial.error_message.contains("time_unix_nano"), "{}", partial.error_message);
    assert_eq!(writer.point_count(), 2);

    // Every point rejected: still 200 (the data is not retryable), in JSON.
    let json = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"dataPoints":[
        {"timeUnixNano":"1","bucketCounts":["1","2"],"explicitBounds":[1,2]},
        {"timeUnixNano":"2","bucketCounts":["1","2","3"],"explicitBounds":[2,1]}]}}]}]}]}"#;
    let response = http_post(server.http, "/v1/metrics", &[JSON], json.as_bytes()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let value: serde_json::Value = serde_json::from_slice(&response.body).expect("json response");
    assert_eq!(value["partialSuccess"]["rejectedDataPoints"], 2, "{value}");
    assert!(value["partialSuccess"]["errorMessage"].as_str().is_some_and(|m| m.contains("bucket counts")), "{value}");
    assert_eq!(writer.point_count(), 2);

    // Truncated values are accepted, with a warning and nothing rejected.
    let mut long = gauge_point(3, 3, 0.3);
    long.attributes.push(crate::test_support::string_attr("big", &"x".repeat(5000)));
    let body = metrics_request(vec![gauge("cpu", vec![long])]);
    let response = http_post(server.http, "/v1/metrics", &[PROTOBUF], &body.encode_to_vec()).await;
    let partial = ExportMetricsServiceResponse::decode(&response.body[..])
        .expect("protobuf response")
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_data_points, 0);
    assert!(partial.error_message.contains("truncated"), "{}", partial.error_message);
    assert_eq!(writer.point_count(), 3);

    let text = server.metrics_text();
    assert!(text.contains("skein_collector_points_rejected_total 3"), "{text}");
    assert!(text.contains("skein_collector_points_accepted_total 3"), "{text}");
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="metrics",transport="http",outcome="partial"} 2"#),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn values_the_decoder_would_drop_are_400() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    let json = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[
        {"timeUnixNano":"1","asInt":"12"},{"timeUnixNano":"2","asInt":"twelve"}]}}]}]}]}"#;
    let response = http_post(server.http, "/v1/metrics", &[JSON], json.as_bytes()).await;
    assert_eq!(response.status, 400, "{}", response.text());
    let (code, message) = response.json_status();
    assert_eq!(code, 3);
    assert!(message.contains(r#"metrics[0] ("g").gauge.dataPoints[1].asInt"#), "{message}");
    assert_eq!(writer.write_calls(), 0, "nothing of a bad request is stored");

    let fixed = json.replace("twelve", "13");
    let response = http_post(server.http, "/v1/metrics", &[JSON], fixed.as_bytes()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(writer.point_count(), 2);
    server.stop().await;
}
