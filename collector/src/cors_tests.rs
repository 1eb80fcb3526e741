//! CORS on the OTLP/HTTP port: preflights and real answers (errors
//! included) for allowed and other origins, `*`, and no CORS by default.

use prost::Message;

use crate::http_tests::{JSON, PROTOBUF};
use crate::test_support::{HttpResponse, Running, TestWriter, http_raw, spans_request};

const APP: &str = "https://app.example.com";
const OTHER: &str = "https://evil.example.net";

async fn preflight(server: &Running, path: &str, origin: &str) -> HttpResponse {
    let raw = format!(
        "OPTIONS {path} HTTP/1.1\r\nHost: collector\r\nConnection: close\r\nOrigin: {origin}\r\n\
         Access-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: content-type,content-encoding,x-api-key\r\n\r\n"
    );
    http_raw(server.http, raw.as_bytes()).await
}

async fn post_from(server: &Running, path: &str, origin: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: collector\r\nConnection: close\r\nOrigin: {origin}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    http_raw(server.http, &raw).await
}

#[tokio::test]
async fn allowed_origin_gets_preflight_and_headers_on_every_answer() {
    let writer = TestWriter::new(1);
    let server = Running::start_with(writer.clone(), |c| {
        c.cors_allowed_origins = vec![APP.into(), "http://localhost:8080".into()];
    })
    .await;
    for path in ["/v1/traces", "/v1/metrics", "/api/v2/spans"] {
        let response = preflight(&server, path, APP).await;
        assert!(response.status < 300, "{path}: {}", response.status);
        assert_eq!(response.header("access-control-allow-origin"), Some(APP), "{path}");
        assert!(response.header("access-control-allow-methods").is_some_and(|m| m.contains("POST")), "{path}");
        let allowed = response.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
        for header in ["content-type", "content-encoding", "x-api-key"] {
            assert!(allowed.contains(header), "{path}: {header} not in {allowed:?}");
        }
        assert_eq!(response.header("access-control-max-age"), Some("7200"), "{path}");
        assert_eq!(response.header("access-control-allow-credentials"), None, "{path}");
    }

    let body = spans_request(2).encode_to_vec();
    let response = post_from(&server, "/v1/traces", APP, &[PROTOBUF], &body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("access-control-allow-origin"), Some(APP));
    assert!(
        response
            .header("access-control-expose-headers")
            .is_some_and(|h| h.to_ascii_lowercase().contains("retry-after"))
    );
    assert!(response.header("vary").is_some_and(|v| v.to_ascii_lowercase().contains("origin")));
    assert_eq!(writer.span_count(), 2);

    // Errors carry the header too, or the page cannot read why it failed.
    for (path, headers, status) in [
        ("/v1/traces", vec![("Content-Type", "text/plain")], 415),
        ("/v1/traces", vec![JSON], 400),
        ("/nope", vec![JSON], 404),
        ("/api/v2/spans", vec![JSON], 400),
    ] {
        let response = post_from(&server, path, APP, &headers, b"{").await;
        assert_eq!(response.status, status, "{path} {headers:?}");
        assert_eq!(response.header("access-control-allow-origin"), Some(APP), "{path} {headers:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let writer = TestWriter::new(1);
    let server = Running::start_with(writer.clone(), |c| c.cors_allowed_origins = vec![APP.into()]).await;
    let response = preflight(&server, "/v1/traces", OTHER).await;
    assert_eq!(response.header("access-control-allow-origin"), None);
    // The browser enforces CORS; the server still answers a plain request.
    let response = post_from(&server, "/v1/traces", OTHER, &[PROTOBUF], &spans_request(1).encode_to_vec()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), None);
    server.stop().await;
}

#[tokio::test]
async fn star_allows_every_origin() {
    let server = Running::start_with(TestWriter::new(1), |c| c.cors_allowed_origins = vec!["*".into()]).await;
    let response = preflight(&server, "/v1/traces", OTHER).await;
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    let response = post_from(&server, "/v1/traces", OTHER, &[PROTOBUF], &spans_request(1).encode_to_vec()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    server.stop().await;
}

#[tokio::test]
async fn no_cors_by_default() {
    let server = Running::start(TestWriter::new(1)).await;
    let response = preflight(&server, "/v1/traces", APP).await;
    assert_eq!(response.status, 405, "no preflight handling unless origins are configured");
    assert_eq!(response.header("access-control-allow-origin"), None);
    let response = post_from(&server, "/v1/traces", APP, &[PROTOBUF], &spans_request(1).encode_to_vec()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), None);
    server.stop().await;
}
