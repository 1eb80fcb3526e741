//! Zipkin v2 JSON: the mapping against a golden OTLP/JSON request, every
//! bad input's 400 message, and the endpoint end to end (202 after the
//! write, gzip, media types, the switch, metrics).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::CollectorError;
use crate::http_tests::{GZIP, JSON, PROTOBUF};
use crate::test_support::{Running, TEST_MAX_VALUE_BYTES, TestWriter, gzip, http_post};
use crate::zipkin::to_otlp;

/// Every Zipkin v2 field: a client span and the server side sharing its ID,
/// then a 64-bit trace with no endpoint, kind, parent or duration.
pub(crate) const ZIPKIN_EXAMPLE: &str = r#"[
  {
    "traceId": "5B8EFFF798038103D269B633813FC60C",
    "id": "eee19b7ec3c1b174",
    "parentId": "eee19b7ec3c1b173",
    "name": "get /api",
    "kind": "CLIENT",
    "timestamp": 1731000000000000,
    "duration": 250000,
    "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1", "port": 8080},
    "remoteEndpoint": {"serviceName": "backend", "ipv6": "2001:db8::1", "port": 9000},
    "annotations": [{"timestamp": 1731000000100000, "value": "ws"}, {"timestamp": 1731000000200000, "value": "wr"}],
    "tags": {
      "http.method": "GET", "http.status_code": "500", "error": "Internal Server Error",
      "otel.scope.name": "brave", "otel.scope.version": "6.0", "w3c.tracestate": "rojo=00f067aa0ba902b7"
    },
    "debug": true
  },
  {
    "traceId": "5b8efff798038103d269b633813fc60c",
    "id": "eee19b7ec3c1b174",
    "parentId": "eee19b7ec3c1b173",
    "name": "get /api",
    "kind": "SERVER",
    "timestamp": 1731000000010000,
    "duration": 200000.5,
    "localEndpoint": {"serviceName": "backend", "ipv4": "10.0.0.2"},
    "remoteEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1", "port": 51000},
    "tags": {"otel.status_code": "OK", "peer.service": "explicit"},
    "shared": true
  },
  {
    "traceId": "00f067aa0ba902b7",
    "id": "00f067aa0ba902b8",
    "parentId": "0000000000000000",
    "name": "cron",
    "timestamp": 1731000001000000,
    "tags": {"retries": 3, "ok": true, "error": "true", "otel.status_description": "gave up"}
  }
]"#;

/// ZIPKIN_EXAMPLE as OTLP/JSON: a resource per service (none first), IDs
/// padded to 128 bits, microseconds as nanoseconds, tags as string
/// attributes, endpoints as `network.*` and `peer.service`.
const EXPECTED_OTLP: &str = r#"{"resourceSpans": [
  {"resource": {}, "scopeSpans": [{"spans": [{
    "traceId": "000000000000000000f067aa0ba902b7", "spanId": "00f067aa0ba902b8", "name": "cron", "kind": 1,
    "startTimeUnixNano": "1731000001000000000", "endTimeUnixNano": "1731000001000000000",
    "attributes": [
      {"key": "ok", "value": {"stringValue": "true"}},
      {"key": "retries", "value": {"stringValue": "3"}}
    ],
    "status": {"code": 2, "message": "gave up"}
  }]}]},
  {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "backend"}}]}, "scopeSpans": [{"spans": [{
    "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "parentSpanId": "eee19b7ec3c1b173",
    "name": "get /api", "kind": 2,
    "startTimeUnixNano": "1731000000010000000", "endTimeUnixNano": "1731000000210000500",
    "attributes": [
      {"key": "peer.service", "value": {"stringValue": "explicit"}},
      {"key": "network.local.address", "value": {"stringValue": "10.0.0.2"}},
      {"key": "network.peer.address", "value": {"stringValue": "10.0.0.1"}},
      {"key": "network.peer.port", "value": {"intValue": "51000"}},
      {"key": "zipkin.shared", "value": {"boolValue": true}}
    ],
    "status": {"code": 1}
  }]}]},
  {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "frontend"}}]}, "scopeSpans": [{
    "scope": {"name": "brave", "version": "6.0"},
    "spans": [{
      "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "parentSpanId": "eee19b7ec3c1b173",
      "traceState": "rojo=00f067aa0ba902b7", "name": "get /api", "kind": 3,
      "startTimeUnixNano": "1731000000000000000", "endTimeUnixNano": "1731000000250000000",
      "attributes": [
        {"key": "http.method", "value": {"stringValue": "GET"}},
        {"key": "http.status_code", "value": {"stringValue": "500"}},
        {"key": "network.local.address", "value": {"stringValue": "10.0.0.1"}},
        {"key": "network.local.port", "value": {"intValue": "8080"}},
        {"key": "peer.service", "value": {"stringValue": "backend"}},
        {"key": "network.peer.address", "value": {"stringValue": "2001:db8::1"}},
        {"key": "network.peer.port", "value": {"intValue": "9000"}},
        {"key": "zipkin.debug", "value": {"boolValue": true}}
      ],
      "events": [
        {"timeUnixNano": "1731000000100000000", "name": "ws"},
        {"timeUnixNano": "1731000000200000000", "name": "wr"}
      ],
      "status": {"code": 2, "message": "Internal Server Error"}
    }]
  }]}
]}"#;

#[test]
fn every_field_maps_as_the_golden_otlp_request_says() {
    let mapped = to_otlp(ZIPKIN_EXAMPLE.as_bytes()).expect("example maps");
    let expected: ExportTraceServiceRequest = serde_json::from_str(EXPECTED_OTLP).expect("golden OTLP/JSON parses");
    assert_eq!(mapped, expected);
}

#[test]
fn kinds_and_parents() {
    let span = |extra: &str| {
        let body = format!(r#"[{{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1{extra}}}]"#);
        to_otlp(body.as_bytes()).expect("maps").resource_spans[0].scope_spans[0].spans[0].clone()
    };
    for (kind, expected) in [("CLIENT", 3), ("SERVER", 2), ("PRODUCER", 4), ("CONSUMER", 5), ("consumer", 5)] {
        assert_eq!(span(&format!(r#", "kind": "{kind}""#)).kind, expected, "{kind}");
    }
    assert_eq!(span("").kind, 1, "no kind is an internal span");
    assert_eq!(span(r#", "kind": null"#).kind, 1);
    assert!(span("").parent_span_id.is_empty(), "no parent is a root");
    assert!(span(r#", "parentId": """#).parent_span_id.is_empty());
    assert!(span(r#", "parentId": "0000000000000002""#).parent_span_id.is_empty(), "its own parent is a root");
    assert_eq!(span(r#", "parentId": "00000000000000ff""#).parent_span_id, vec![0, 0, 0, 0, 0, 0, 0, 0xff]);
    assert!(span("").status.is_none(), "no error tag, no status");
    assert!(to_otlp(b"[]").expect("an empty list is fine").resource_spans.is_empty());
}

#[test]
fn bad_input_names_the_span_and_the_field() {
    let valid = r#"{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1}"#;
    let cases: &[(&str, &str)] = &[
        ("not json", "invalid Zipkin JSON body"),
        (r#"{"traceId": "1"}"#, "expected a JSON array"),
        (r#"[VALID, 7]"#, "spans[1]: expected a JSON object"),
        (r#"[VALID, {"id": "0000000000000002", "timestamp": 1}]"#, "spans[1].traceId: missing"),
        (
            r#"[{"traceId": "abc", "id": "0000000000000002", "timestamp": 1}]"#,
            "spans[0].traceId: \"abc\" is not 16 or 32",
        ),
        (r#"[{"traceId": 12, "id": "0000000000000002", "timestamp": 1}]"#, "spans[0].traceId: must be a string"),
        (
            r#"[{"traceId": "zzzzzzzzzzzzzzzz", "id": "0000000000000002", "timestamp": 1}]"#,
            "spans[0].traceId: \"zzzzzzzzzzzzzzzz\" is not hexadecimal",
        ),
        (
            r#"[{"traceId": "00000000000000000000000000000000", "id": "0000000000000002", "timestamp": 1}]"#,
            "spans[0].traceId: must not be all zeros",
        ),
        (r#"[{"traceId": "0000000000000001", "timestamp": 1}]"#, "spans[0].id: missing"),
        (
            r#"[{"traceId": "0000000000000001", "id": "02", "timestamp": 1}]"#,
            "spans[0].id: \"02\" is not 16 hex digits",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000000", "timestamp": 1}]"#,
            "spans[0].id: must not be all zeros",
        ),
        (
            r#"[VALID, VALID, {"traceId": "0000000000000001", "id": "0000000000000002", "parentId": "x", "timestamp": 1}]"#,
            "spans[2].parentId",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "kind": "LOCAL", "timestamp": 1}]"#,
            "spans[0].kind: \"LOCAL\" is not CLIENT, SERVER",
        ),
        (r#"[{"traceId": "0000000000000001", "id": "0000000000000002"}]"#, "spans[0].timestamp: missing"),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": -5}]"#,
            "spans[0].timestamp: -5 is not a number of microseconds",
        ),
        (r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": "1"}]"#, "spans[0].timestamp"),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "duration": "5"}]"#,
            "spans[0].duration",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 18446744073709552}]"#,
            "spans[0].timestamp",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "tags": {"a": {"b": 1}}}]"#,
            "spans[0].tags.a: must be a string",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "tags": ["a"]}]"#,
            "spans[0].tags: must be an object",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "localEndpoint": {"ipv4": "300.1.1.1"}}]"#,
            "spans[0].localEndpoint.ipv4: \"300.1.1.1\" is not an IPv4 address",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "remoteEndpoint": {"ipv6": "10.0.0.1"}}]"#,
            "spans[0].remoteEndpoint.ipv6",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "remoteEndpoint": {"port": 70000}}]"#,
            "spans[0].remoteEndpoint.port: 70000 is not a port number",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "localEndpoint": "web"}]"#,
            "spans[0].localEndpoint: must be an object",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "annotations": [{"value": "ws"}]}]"#,
            "spans[0].annotations[0].timestamp: missing",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "annotations": [{"timestamp": 2}]}]"#,
            "spans[0].annotations[0].value",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "debug": "yes"}]"#,
            "spans[0].debug: must be true or false",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "shared": 1}]"#,
            "spans[0].shared",
        ),
        (
            r#"[{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "binaryAnnotations": []}]"#,
            "spans[0].binaryAnnotations: this is a Zipkin v1 span",
        ),
    ];
    for (body, message) in cases {
        let body = body.replace("VALID", valid);
        let err = to_otlp(body.as_bytes()).expect_err("refused");
        assert!(matches!(err, CollectorError::InvalidRequest(_)), "{body}: {err}");
        assert_eq!(err.class().http_status().as_u16(), 400);
        let text = err.to_string();
        assert!(text.contains(message), "{body}:\n  {text}\n  should contain {message}");
        if text.contains("spans[") {
            assert!(text.contains("no span of this request was stored"), "{text}");
        }
    }
}

#[tokio::test]
async fn stored_before_202_through_the_ingest_path() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let response = http_post(server.http, "/api/v2/spans", &[JSON], ZIPKIN_EXAMPLE.as_bytes()).await;
    assert_eq!(response.status, 202, "{}", response.text());
    assert!(response.body.is_empty(), "{}", response.text());
    let mut records = writer.records();
    records.sort_by_key(|r| r.span.start_time_unix_nano);
    let services: Vec<_> = records.iter().map(|r| (r.service_name.as_str(), r.span.name.as_str())).collect();
    assert_eq!(services, [("frontend", "get /api"), ("backend", "get /api"), ("unknown_service", "cron")]);

    // gzip, and no Content-Type (some reporters send none).
    let response = http_post(server.http, "/api/v2/spans", &[GZIP], &gzip(ZIPKIN_EXAMPLE.as_bytes())).await;
    assert_eq!(response.status, 202, "{}", response.text());
    assert_eq!(writer.span_count(), 6);

    let text = server.metrics_text();
    for line in [
        r#"skein_collector_requests_total{signal="traces",transport="zipkin",outcome="ok"} 2"#,
        "skein_collector_spans_accepted_total 6",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn refusals_are_json_statuses_and_store_nothing() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    let bad = ZIPKIN_EXAMPLE.replacen(r#""kind": "SERVER""#, r#""kind": "SERVANT""#, 1);
    let response = http_post(server.http, "/api/v2/spans", &[JSON], bad.as_bytes()).await;
    assert_eq!(response.status, 400);
    let (code, message) = response.json_status();
    assert_eq!(code, 3);
    assert!(message.contains("spans[1].kind") && message.contains("no span of this request was stored"), "{message}");
    assert_eq!(writer.span_count(), 0, "the valid spans around the bad one are not stored either");

    for (headers, status) in [
        (vec![PROTOBUF], 415),
        (vec![("Content-Type", "text/plain")], 415),
        (vec![JSON, ("Content-Encoding", "br")], 415),
    ] {
        let response = http_post(server.http, "/api/v2/spans", &headers, ZIPKIN_EXAMPLE.as_bytes()).await;
        assert_eq!(response.status, status, "{headers:?}");
        assert_eq!(response.header("content-type"), Some("application/json"), "{headers:?}");
        assert!(response.json_status().1.contains("Content-"), "{}", response.text());
    }
    let response = http_post(server.http, "/api/v1/spans", &[JSON], b"[]").await;
    assert_eq!(response.status, 404);
    assert!(response.json_status().1.contains("POST /api/v2/spans"), "{}", response.text());
    assert_eq!(writer.span_count(), 0);

    let text = server.metrics_text();
    for line in [
        r#"skein_collector_requests_total{signal="traces",transport="zipkin",outcome="invalid_argument"} 1"#,
        r#"skein_collector_requests_total{signal="traces",transport="zipkin",outcome="unsupported_media_type"} 3"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn truncation_is_reported_in_the_202_body() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    let long = "x".repeat(TEST_MAX_VALUE_BYTES + 1);
    let body = format!(
        r#"[{{"traceId": "0000000000000001", "id": "0000000000000002", "timestamp": 1, "tags": {{"big": "{long}"}}}}]"#
    );
    let response = http_post(server.http, "/api/v2/spans", &[JSON], body.as_bytes()).await;
    assert_eq!(response.status, 202, "{}", response.text());
    let value: serde_json::Value = serde_json::from_slice(&response.body).expect("json body");
    let message = value["partialSuccess"]["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("truncated"), "{value}");
    assert_eq!(writer.span_count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn the_switch_turns_the_endpoint_off() {
    let writer = TestWriter::new(1);
    let server = Running::start_with(writer.clone(), |c| c.zipkin_enabled = false).await;
    let response = http_post(server.http, "/api/v2/spans", &[JSON], ZIPKIN_EXAMPLE.as_bytes()).await;
    assert_eq!(response.status, 404);
    let message = response.json_status().1;
    assert!(message.contains("no such endpoint /api/v2/spans") && !message.contains("Zipkin"), "{message}");
    assert_eq!(writer.span_count(), 0);
    server.stop().await;
}
