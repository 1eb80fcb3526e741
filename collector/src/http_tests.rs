//! OTLP/HTTP end to end: a real server on port 0, a raw HTTP/1.1 client,
//! and a recording writer. Every error case is run against both signals'
//! endpoints and followed by a successful request to show the server keeps
//! serving. Metrics' success paths are in metrics_http_tests.rs.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use crate::json_tests::{METRICS_SPEC_EXAMPLE, RICH_EXAMPLE, SPEC_EXAMPLE};
use crate::metric_fixtures::{metric_bomb_request, points_request};
use crate::test_support::{
    Failure, Running, TEST_MAX_REQUEST_BYTES, TestWriter, bomb_request, gzip, http_get, http_post, http_raw, request,
    span, spans_request,
};

pub(crate) const PROTOBUF: (&str, &str) = ("Content-Type", "application/x-protobuf");
pub(crate) const JSON: (&str, &str) = ("Content-Type", "application/json");
pub(crate) const GZIP: (&str, &str) = ("Content-Encoding", "gzip");

/// An export endpoint, with valid data for it.
#[derive(Debug, Clone, Copy)]
enum Target {
    Traces,
    Metrics,
}

const TARGETS: [Target; 2] = [Target::Traces, Target::Metrics];

impl Target {
    fn path(self) -> &'static str {
        match self {
            Target::Traces => "/v1/traces",
            Target::Metrics => "/v1/metrics",
        }
    }

    /// The `signal` label of the collector's own metrics.
    fn signal(self) -> &'static str {
        match self {
            Target::Traces => "traces",
            Target::Metrics => "metrics",
        }
    }

    /// A valid protobuf request with `n` items.
    fn valid(self, n: u64) -> Vec<u8> {
        match self {
            Target::Traces => spans_request(n).encode_to_vec(),
            Target::Metrics => points_request(n).encode_to_vec(),
        }
    }

    /// A protobuf request with one item carrying a `len`-byte value.
    fn bomb(self, len: usize) -> Vec<u8> {
        match self {
            Target::Traces => bomb_request(len).encode_to_vec(),
            Target::Metrics => metric_bomb_request(len).encode_to_vec(),
        }
    }

    /// The OTLP/JSON example from the specification.
    fn json_example(self) -> &'static str {
        match self {
            Target::Traces => SPEC_EXAMPLE,
            Target::Metrics => METRICS_SPEC_EXAMPLE,
        }
    }

    /// Items the writer holds for this signal.
    fn stored(self, writer: &TestWriter) -> usize {
        match self {
            Target::Traces => writer.span_count(),
            Target::Metrics => writer.point_count(),
        }
    }

    fn requests_line(self, outcome: &str, n: u32) -> String {
        format!(
            "skein_collector_requests_total{{signal=\"{}\",transport=\"http\",outcome=\"{outcome}\"}} {n}",
            self.signal()
        )
    }
}

/// A valid protobuf export that must succeed, proving the server is healthy.
async fn assert_accepts(server: &Running, writer: &TestWriter, target: Target) {
    let before = target.stored(writer);
    let response = http_post(server.http, target.path(), &[PROTOBUF], &target.valid(3)).await;
    assert_eq!(response.status, 200, "{target:?}: {}", response.text());
    assert_eq!(target.stored(writer), before + 3, "{target:?}");
}

pub(crate) fn protobuf_status(body: &[u8]) -> tonic_types::Status {
    tonic_types::Status::decode(body).expect("protobuf google.rpc.Status body")
}

#[tokio::test]
async fn protobuf_export_round_trip() {
    let writer = TestWriter::new(4);
    let server = Running::start(writer.clone()).await;
    let sent = spans_request(25);
    let response = http_post(server.http, "/v1/traces", &[PROTOBUF], &sent.encode_to_vec()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/x-protobuf"));
    let decoded = ExportTraceServiceResponse::decode(&response.body[..]).expect("protobuf response");
    assert_eq!(decoded.partial_success, None);
    let mut stored: Vec<_> = writer.records().into_iter().map(|r| r.span).collect();
    stored.sort_by_key(|s| s.span_id.clone());
    assert_eq!(stored, sent.resource_spans[0].scope_spans[0].spans, "stored spans equal the sent spans");
    server.stop().await;
}

#[tokio::test]
async fn json_spec_example_is_stored_and_answered_in_json() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let response = http_post(
        server.http,
        "/v1/traces",
        &[("Content-Type", "application/json; charset=utf-8")],
        SPEC_EXAMPLE.as_bytes(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.text(), "{}");
    let records = writer.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].service_name, "my.service");
    assert_eq!(records[0].span.name, "I'm a server span");
    assert_eq!(records[0].span.start_time_unix_nano, 1_544_712_660_000_000_000);

    let response = http_post(server.http, "/v1/traces", &[JSON], RICH_EXAMPLE.as_bytes()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(writer.span_count(), 2);
    server.stop().await;
}

#[tokio::test]
async fn gzip_bodies_in_both_encodings() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let proto = gzip(&spans_request(4).encode_to_vec());
    let response = http_post(server.http, "/v1/traces", &[PROTOBUF, GZIP], &proto).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/x-protobuf"));
    let json = gzip(SPEC_EXAMPLE.as_bytes());
    let response = http_post(server.http, "/v1/traces", &[JSON, GZIP], &json).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(writer.span_count(), 5);
    server.stop().await;
}

#[tokio::test]
async fn partial_success_reports_rejected_spans_in_the_request_encoding() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let mut bad = span(9, 9);
    bad.span_id = vec![0; 8];
    let body = request(vec![span(1, 1), bad.clone(), span(2, 2)]).encode_to_vec();
    let response = http_post(server.http, "/v1/traces", &[PROTOBUF], &body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let partial = ExportTraceServiceResponse::decode(&response.body[..])
        .expect("protobuf response")
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("span_id"), "{}", partial.error_message);
    assert_eq!(writer.span_count(), 2);

    // Every span rejected: still 200 (the data is not retryable), in JSON.
    let json =
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"","spanId":"0102030405060708","name":"x"}]}]}]}"#;
    let response = http_post(server.http, "/v1/traces", &[JSON], json.as_bytes()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let value: serde_json::Value = serde_json::from_slice(&response.body).expect("json response");
    assert_eq!(value["partialSuccess"]["rejectedSpans"], 1);
    assert!(value["partialSuccess"]["errorMessage"].as_str().is_some_and(|m| m.contains("trace_id")), "{value}");
    assert_eq!(writer.span_count(), 2);

    let text = server.metrics_text();
    assert!(text.contains("skein_collector_spans_rejected_total 2"), "{text}");
    assert!(text.contains("skein_collector_spans_accepted_total 2"), "{text}");
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="traces",transport="http",outcome="partial"} 2"#),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_status_body() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    for target in TARGETS {
        let path = target.path();
        let response = http_post(server.http, path, &[PROTOBUF], &[0x0a, 0xff, 0xff, 0xff, 0x0f]).await;
        assert_eq!(response.status, 400, "{target:?}");
        assert_eq!(response.header("content-type"), Some("application/x-protobuf"));
        let status = protobuf_status(&response.body);
        assert_eq!(status.code, 3);
        assert!(status.message.contains("invalid protobuf body"), "{}", status.message);
        assert_accepts(&server, &writer, target).await;

        let response = http_post(server.http, path, &[JSON], b"{\"resourceSpans\": [").await;
        assert_eq!(response.status, 400, "{target:?}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        let (code, message) = response.json_status();
        assert_eq!(code, 3);
        assert!(message.contains("invalid OTLP/JSON body"), "{message}");
        assert_accepts(&server, &writer, target).await;

        let response = http_post(server.http, path, &[PROTOBUF, GZIP], b"this is not gzip").await;
        assert_eq!(response.status, 400, "{target:?}");
        assert!(protobuf_status(&response.body).message.contains("invalid gzip body"), "{}", response.text());
        assert_accepts(&server, &writer, target).await;
    }

    let text = server.metrics_text();
    for target in TARGETS {
        let line = target.requests_line("invalid_argument", 3);
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413_however_they_arrive() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    for target in TARGETS {
        let path = target.path();
        // Declared too large: refused from the headers alone, body never sent.
        // The client asks to keep the connection; the server must close it.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: c\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            TEST_MAX_REQUEST_BYTES + 1
        );
        let response = http_raw(server.http, head.as_bytes()).await;
        assert_eq!(response.status, 413, "{target:?}");
        // The body was left unread, so the connection is not offered for reuse.
        assert_eq!(response.header("connection"), Some("close"), "{target:?}");
        let (code, message) = response.json_status();
        assert_eq!(code, 3);
        assert!(message.contains(&format!("limit of {TEST_MAX_REQUEST_BYTES} bytes")), "{message}");
        assert_accepts(&server, &writer, target).await;

        // Chunked, so no declared length: refused while reading. The client
        // sends exactly the limit, then one byte more as the last thing it
        // sends (no chunk terminator), so the server has read everything
        // sent when it answers and closes.
        let mut raw = format!(
            "POST {path} HTTP/1.1\r\nHost: c\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        let chunk = vec![0u8; 16 * 1024];
        for _ in 0..TEST_MAX_REQUEST_BYTES / chunk.len() {
            raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            raw.extend_from_slice(&chunk);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"1\r\nX");
        let response = http_raw(server.http, &raw).await;
        assert_eq!(response.status, 413, "{target:?}");
        assert_eq!(protobuf_status(&response.body).code, 3);
        assert_accepts(&server, &writer, target).await;

        // A gzip bomb: small on the wire, over the limit once decompressed.
        let bomb = gzip(&target.bomb(TEST_MAX_REQUEST_BYTES * 16));
        assert!(bomb.len() < TEST_MAX_REQUEST_BYTES / 8, "bomb should be small compressed");
        let response = http_post(server.http, path, &[PROTOBUF, GZIP], &bomb).await;
        assert_eq!(response.status, 413, "{target:?}");
        assert_accepts(&server, &writer, target).await;

        // Just under the limit after decompression is fine.
        let fits = gzip(&target.bomb(TEST_MAX_REQUEST_BYTES / 2));
        let response = http_post(server.http, path, &[PROTOBUF, GZIP], &fits).await;
        assert_eq!(response.status, 200, "{target:?}: {}", response.text());
    }
    let text = server.metrics_text();
    for target in TARGETS {
        let line = target.requests_line("payload_too_large", 3);
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn unsupported_media_is_415() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    for target in TARGETS {
        let body = target.valid(1);
        for headers in [
            vec![("Content-Type", "text/plain")],
            vec![],
            vec![("Content-Type", "application/protobuf")],
            vec![PROTOBUF, ("Content-Encoding", "br")],
        ] {
            let response = http_post(server.http, target.path(), &headers, &body).await;
            assert_eq!(response.status, 415, "{target:?} {headers:?}: {}", response.text());
            assert_accepts(&server, &writer, target).await;
        }
        let response = http_post(server.http, target.path(), &[("Content-Type", "text/plain")], &body).await;
        let (code, message) = response.json_status();
        assert_eq!(code, 3);
        assert!(message.contains("application/x-protobuf") && message.contains("text/plain"), "{message}");
    }
    server.stop().await;
}

#[tokio::test]
async fn storage_failures_map_to_retryable_statuses() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    for target in TARGETS {
        let body = target.valid(6);
        for (failure, status, retry_after, code) in [
            (Failure::Overloaded, 429, Some("2"), 8),
            (Failure::Unavailable, 503, Some("3"), 14),
            (Failure::Internal, 500, None, 13),
        ] {
            writer.fail_with(Some(failure));
            let response = http_post(server.http, target.path(), &[PROTOBUF], &body).await;
            assert_eq!(response.status, status, "{target:?} {failure:?}");
            assert_eq!(response.header("retry-after"), retry_after, "{target:?} {failure:?}");
            assert_eq!(protobuf_status(&response.body).code, code, "{target:?} {failure:?}");
            writer.fail_with(None);
            assert_accepts(&server, &writer, target).await;
        }
        writer.fail_with(Some(Failure::Unavailable));
        let response = http_post(server.http, target.path(), &[JSON], target.json_example().as_bytes()).await;
        assert_eq!(response.status, 503, "{target:?}");
        assert_eq!(response.header("retry-after"), Some("3"), "{target:?}");
        let (code, message) = response.json_status();
        assert_eq!(code, 14);
        assert!(message.contains("shard is recovering"), "{message}");
        writer.fail_with(None);
    }

    let text = server.metrics_text();
    for target in TARGETS {
        for (outcome, n) in [("unavailable", 2), ("overloaded", 1), ("internal", 1)] {
            let line = target.requests_line(outcome, n);
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn other_paths_and_health() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    for path in ["/", "/healthz"] {
        let response = http_get(server.http, path).await;
        assert_eq!(response.status, 200, "{path}");
    }
    let response = http_get(server.http, "/nope").await;
    assert_eq!(response.status, 404);
    let message = response.json_status().1;
    assert!(["/v1/traces", "/v1/metrics", "/v1/logs"].iter().all(|p| message.contains(p)), "{message}");
    for path in ["/v1/traces", "/v1/metrics", "/v1/logs"] {
        let response = http_get(server.http, path).await;
        assert_eq!(response.status, 405, "{path}");
    }
    for target in TARGETS {
        assert_accepts(&server, &writer, target).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn body_size_metric_counts_decompressed_bytes() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    for target in TARGETS {
        let body = target.bomb(10_000);
        let response = http_post(server.http, target.path(), &[PROTOBUF, GZIP], &gzip(&body)).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let text = server.metrics_text();
        let expected = format!(
            "skein_collector_request_body_bytes_sum{{signal=\"{}\",transport=\"http\"}} {}.0",
            target.signal(),
            body.len()
        );
        assert!(text.lines().any(|l| l == expected), "missing {expected} in\n{text}");
    }
    server.stop().await;
}

/// Sends `raw` and keeps the connection open (a stalled client), reading
/// until the server closes it; fails the test if that takes too long.
async fn stall(server: &Running, raw: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.http).await.expect("connect");
    stream.write_all(raw).await.expect("send");
    let mut received = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut received))
        .await
        .expect("the server must close a stalled connection")
        .expect("read");
    received
}

#[tokio::test]
async fn a_body_that_stalls_gets_408_and_frees_its_slot() {
    let writer = TestWriter::new(1);
    // One slot: if the stalled request kept it, the next request would be 429.
    let server = Running::start_with(writer.clone(), |c| {
        c.body_read_timeout = std::time::Duration::from_millis(300);
        c.max_concurrent_requests = 1;
    })
    .await;
    for target in TARGETS {
        for framing in ["Content-Length: 1000", "Transfer-Encoding: chunked"] {
            let mut raw = format!(
                "POST {} HTTP/1.1\r\nHost: c\r\nContent-Type: application/x-protobuf\r\n{framing}\r\n\r\n",
                target.path()
            )
            .into_bytes();
            let half = target.valid(3);
            let half = &half[..half.len() / 2];
            if framing.starts_with("Transfer") {
                raw.extend_from_slice(format!("{:x}\r\n", half.len()).as_bytes());
                raw.extend_from_slice(half);
                raw.extend_from_slice(b"\r\n");
            } else {
                raw.extend_from_slice(half);
            }
            let response = crate::test_support::parse_response(&stall(&server, &raw).await);
            assert_eq!(response.status, 408, "{target:?} {framing}");
            assert_eq!(response.header("connection"), Some("close"), "{target:?} {framing}");
            let status = protobuf_status(&response.body);
            assert_eq!(status.code, 4, "DEADLINE_EXCEEDED");
            assert!(status.message.contains("body_read_timeout"), "{}", status.message);
            assert_accepts(&server, &writer, target).await;
        }
    }
    let text = server.metrics_text();
    for target in TARGETS {
        let line = target.requests_line("timeout", 2);
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn headers_that_stall_are_cut_off() {
    let writer = TestWriter::new(1);
    let server =
        Running::start_with(writer.clone(), |c| c.header_read_timeout = std::time::Duration::from_millis(300)).await;
    // Half a request head, then nothing: hyper closes the connection.
    stall(&server, b"POST /v1/traces HTTP/1.1\r\nHost: c\r\nContent-Ty").await;
    // A connection that never sends a byte is closed too.
    stall(&server, b"").await;
    // So is a keep-alive connection left idle after its request.
    let body = Target::Traces.valid(1);
    let mut raw = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: c\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let response = crate::test_support::parse_response(&stall(&server, &raw).await);
    assert_eq!(response.status, 200);
    assert_accepts(&server, &writer, Target::Traces).await;
    server.stop().await;
}
