//! Behaviour of the whole server: the concurrency limit shared by both
//! transports, and graceful shutdown with requests in flight.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prometheus_client::registry::Registry;
use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;

use crate::test_support::{Running, TestWriter, http_post, spans_request};
use crate::{CollectorConfig, CollectorError, CollectorServer};

const PROTOBUF: (&str, &str) = ("Content-Type", "application/x-protobuf");

#[tokio::test]
async fn concurrency_limit_is_shared_and_answers_at_once() {
    let writer = TestWriter::gated(1);
    let server = Running::start_with(writer.clone(), |c| c.max_concurrent_requests = 1).await;
    let mut client = TraceServiceClient::connect(server.grpc_url()).await.expect("connect");

    // One gRPC request holds the only slot (its write is held).
    let mut held_client = client.clone();
    let held = tokio::spawn(async move { held_client.export(spans_request(2)).await });
    writer.wait_for_held_write().await;

    let response = http_post(server.http, "/v1/traces", &[PROTOBUF], &spans_request(1).encode_to_vec()).await;
    assert_eq!(response.status, 429);
    assert_eq!(response.header("retry-after"), Some("1"));
    let status = client.export(spans_request(1)).await.expect_err("no free slot");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.get_details_retry_info().and_then(|r| r.retry_delay), Some(Duration::from_secs(1)));

    writer.release(1);
    held.await.expect("held request task").expect("held request completes");
    // The slot is free again, for both transports.
    writer.release(2);
    client.export(spans_request(1)).await.expect("grpc export after overload");
    let response = http_post(server.http, "/v1/traces", &[PROTOBUF], &spans_request(1).encode_to_vec()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(writer.span_count(), 4);

    let text = server.metrics_text();
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="traces",transport="grpc",outcome="overloaded"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="traces",transport="http",outcome="overloaded"} 1"#),
        "{text}"
    );
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let writer = TestWriter::gated(1);
    let server = Running::start(writer.clone()).await;
    let mut client = TraceServiceClient::connect(server.grpc_url()).await.expect("connect");
    let grpc = tokio::spawn(async move { client.export(spans_request(2)).await });
    let http_addr = server.http;
    let http = tokio::spawn(async move {
        http_post(http_addr, "/v1/traces", &[PROTOBUF], &spans_request(3).encode_to_vec()).await
    });
    writer.wait_for_held_write().await;
    writer.wait_for_held_write().await;

    server.begin_stop();
    writer.release(2);
    let grpc = grpc.await.expect("grpc task");
    assert!(grpc.is_ok(), "in-flight grpc request completes: {grpc:?}");
    let http = http.await.expect("http task");
    assert_eq!(http.status, 200, "in-flight http request completes: {}", http.text());
    assert_eq!(writer.span_count(), 5);
    server.stop().await;
}

#[tokio::test]
async fn bind_reports_config_and_address_errors() {
    let mut registry = Registry::default();
    let invalid = CollectorConfig { max_concurrent_requests: 0, ..CollectorConfig::default() };
    let err = CollectorServer::bind(invalid, TestWriter::new(1), &mut registry).await.err().expect("invalid config");
    assert!(matches!(err, CollectorError::Config(_)), "{err}");

    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let config = CollectorConfig {
        grpc_listen: "127.0.0.1:0".parse().expect("addr"),
        http_listen: taken.local_addr().expect("addr"),
        ..CollectorConfig::default()
    };
    let err = CollectorServer::bind(config, TestWriter::new(1), &mut registry).await.err().expect("port in use");
    assert!(matches!(err, CollectorError::Bind { what: "OTLP/HTTP", .. }), "{err}");
    assert!(err.to_string().contains(&taken.local_addr().expect("addr").to_string()), "{err}");
}
