//! OTLP/gRPC end to end with tonic's generated client, plus hand-built
//! requests for what that client cannot send (malformed messages, bad gzip).

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::codegen::Service;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::signal::{Signal, Traces};
use crate::test_support::{
    Failure, Running, TEST_MAX_REQUEST_BYTES, TestWriter, bomb_request, gzip, request, span, spans_request,
};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

async fn client(server: &Running) -> TraceServiceClient<Channel> {
    TraceServiceClient::connect(server.grpc_url()).await.expect("grpc client connects")
}

async fn export(
    client: &mut TraceServiceClient<Channel>,
    request: ExportTraceServiceRequest,
) -> Result<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse, Status> {
    client.export(request).await.map(tonic::Response::into_inner)
}

/// What the gRPC checks shared by both signals need from a signal.
pub(crate) trait GrpcSignal: Signal<Response: std::fmt::Debug> {
    type Client;
    const EXPORT_PATH: &'static str;
    async fn client(server: &Running) -> Self::Client;
    fn send_gzip(client: Self::Client) -> Self::Client;
    async fn export(client: &mut Self::Client, request: Self::Request) -> Result<Self::Response, Status>;
    /// A valid request of `n` items.
    fn request(n: u64) -> Self::Request;
    /// A valid request encoding to more than `len` bytes.
    fn bomb(len: usize) -> Self::Request;
    /// Items the writer has stored.
    fn stored(writer: &TestWriter) -> usize;
}

impl GrpcSignal for Traces {
    type Client = TraceServiceClient<Channel>;
    const EXPORT_PATH: &'static str = EXPORT_PATH;
    async fn client(server: &Running) -> Self::Client {
        client(server).await
    }
    fn send_gzip(client: Self::Client) -> Self::Client {
        client.send_compressed(CompressionEncoding::Gzip)
    }
    async fn export(client: &mut Self::Client, request: Self::Request) -> Result<Self::Response, Status> {
        export(client, request).await
    }
    fn request(n: u64) -> Self::Request {
        spans_request(n)
    }
    fn bomb(len: usize) -> Self::Request {
        bomb_request(len)
    }
    fn stored(writer: &TestWriter) -> usize {
        writer.span_count()
    }
}

/// A valid export that must succeed, proving the server is healthy.
async fn assert_accepts<S: GrpcSignal>(client: &mut S::Client, writer: &TestWriter) {
    let before = S::stored(writer);
    let response = S::export(client, S::request(3)).await.expect("export succeeds");
    assert!(S::is_full_success(&response));
    assert_eq!(S::stored(writer), before + 3);
}

/// Asserts the server's metrics count `n` gRPC requests of `S` with `outcome`.
fn assert_outcome<S: GrpcSignal>(server: &Running, outcome: &str, n: u64) {
    let text = server.metrics_text();
    let line = format!(
        r#"skein_collector_requests_total{{signal="{}",transport="grpc",outcome="{outcome}"}} {n}"#,
        S::KIND.as_str()
    );
    assert!(text.contains(&line), "{text}");
}

/// Malformed messages and bad gzip are `InvalidArgument`; the same
/// hand-built frames, when valid, are stored.
pub(crate) async fn check_undecodable_requests<S: GrpcSignal>() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    let mut client = S::client(&server).await;

    let status = raw_export(&server, S::EXPORT_PATH, false, &[0x0a, 0xff, 0xff, 0xff, 0x0f]).await.expect("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("invalid protobuf body"), "{status:?}");
    assert_accepts::<S>(&mut client, &writer).await;

    let status = raw_export(&server, S::EXPORT_PATH, true, b"definitely not gzip").await.expect("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_accepts::<S>(&mut client, &writer).await;

    let before = S::stored(&writer);
    assert!(raw_export(&server, S::EXPORT_PATH, false, &S::request(2).encode_to_vec()).await.is_none());
    assert!(raw_export(&server, S::EXPORT_PATH, true, &gzip(&S::request(2).encode_to_vec())).await.is_none());
    assert_eq!(S::stored(&writer), before + 4);

    assert_outcome::<S>(&server, "invalid_argument", 2);
    drop(client);
    server.stop().await;
}

/// Messages over the size limit, plain or as a gzip bomb, are
/// `InvalidArgument`, and the server stays healthy.
pub(crate) async fn check_oversized_messages<S: GrpcSignal>() {
    let writer = TestWriter::new(1);
    let server = Running::start(writer.clone()).await;
    let mut plain = S::client(&server).await;
    let err = S::export(&mut plain, S::bomb(TEST_MAX_REQUEST_BYTES)).await.expect_err("over the limit");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("limit"), "{err:?}");
    assert_accepts::<S>(&mut plain, &writer).await;

    // A gzip bomb: tiny on the wire, over the limit once decompressed.
    let mut gzipped = S::send_gzip(S::client(&server).await);
    let err = S::export(&mut gzipped, S::bomb(TEST_MAX_REQUEST_BYTES * 16)).await.expect_err("bomb");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_accepts::<S>(&mut gzipped, &writer).await;

    assert_outcome::<S>(&server, "payload_too_large", 2);
    drop((plain, gzipped));
    server.stop().await;
}

/// Each storage failure maps to its gRPC code and retry info; a good
/// request follows each. `items` per failing request.
pub(crate) async fn check_storage_failures<S: GrpcSignal>(items: u64) {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let mut client = S::client(&server).await;
    for (failure, code, delay) in [
        (Failure::Overloaded, Code::ResourceExhausted, Some(Duration::from_secs(2))),
        (Failure::Unavailable, Code::Unavailable, Some(Duration::from_secs(3))),
        (Failure::Internal, Code::Internal, None),
    ] {
        writer.fail_with(Some(failure));
        let status = S::export(&mut client, S::request(items)).await.expect_err("write fails");
        assert_eq!(status.code(), code, "{failure:?}: {status:?}");
        assert_eq!(status.get_details_retry_info().and_then(|r| r.retry_delay), delay, "{failure:?}");
        writer.fail_with(None);
        assert_accepts::<S>(&mut client, &writer).await;
    }
    assert_outcome::<S>(&server, "unavailable", 1);
    drop(client);
    server.stop().await;
}

/// Sends one gRPC frame built by hand to `path`. Returns the status of a
/// call that failed before the handler ran ("trailers-only": the status is
/// in the headers), or `None` when the handler answered.
pub(crate) async fn raw_export(server: &Running, path: &str, compressed: bool, payload: &[u8]) -> Option<Status> {
    let mut frame = vec![u8::from(compressed)];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if compressed {
        builder = builder.header("grpc-encoding", "gzip");
    }
    let request = builder.body(tonic::body::Body::new(axum::body::Body::from(frame))).expect("grpc request");
    let mut channel = Channel::from_shared(server.grpc_url()).expect("url").connect().await.expect("connect");
    std::future::poll_fn(|cx| channel.poll_ready(cx)).await.expect("channel ready");
    let response = channel.call(request).await.expect("http/2 response");
    Status::from_header_map(response.headers())
}

#[tokio::test]
async fn export_round_trip() {
    let writer = TestWriter::new(4);
    let server = Running::start(writer.clone()).await;
    let mut client = client(&server).await;
    let sent = spans_request(30);
    let response = export(&mut client, sent.clone()).await.expect("export succeeds");
    assert_eq!(response.partial_success, None);
    let mut stored: Vec<_> = writer.records().into_iter().map(|r| r.span).collect();
    stored.sort_by_key(|s| s.span_id.clone());
    assert_eq!(stored, sent.resource_spans[0].scope_spans[0].spans);
    assert!(writer.batches().len() > 1, "30 traces spread over several shards");
    let text = server.metrics_text();
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="traces",transport="grpc",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(text.contains("skein_collector_spans_accepted_total 30"), "{text}");
    let body_sum = format!(
        "skein_collector_request_body_bytes_sum{{signal=\"traces\",transport=\"grpc\"}} {}.0",
        sent.encoded_len()
    );
    assert!(text.lines().any(|l| l == body_sum), "missing {body_sum} in\n{text}");
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn gzip_requests_are_accepted() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let mut client = client(&server).await.send_compressed(CompressionEncoding::Gzip);
    export(&mut client, spans_request(5)).await.expect("gzip export succeeds");
    // Larger than a gzip block and well compressible, still under the limit.
    export(&mut client, bomb_request(TEST_MAX_REQUEST_BYTES / 2)).await.expect("compressible export succeeds");
    assert_eq!(writer.span_count(), 6);
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn partial_success_counts_rejected_spans() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let mut client = client(&server).await;
    let mut short_trace = span(5, 5);
    short_trace.trace_id = vec![1; 8];
    let mut zero_span = span(6, 6);
    zero_span.span_id = vec![0; 8];
    let response = export(&mut client, request(vec![span(1, 1), short_trace, zero_span])).await.expect("export");
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(partial.error_message.starts_with("2 span(s) rejected"), "{}", partial.error_message);
    assert_eq!(writer.span_count(), 1);
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn spans_storage_refuses_are_rejected_in_partial_success_with_invalid_ones() {
    let writer = TestWriter::new(2);
    writer.limit_spans_per_trace(2);
    let server = Running::start(writer.clone()).await;
    let mut client = client(&server).await;
    let mut zero_span = span(9, 9);
    zero_span.span_id = vec![0; 8];
    // Trace 1 (3 spans) and trace 2 (4 spans) land on either shard; the
    // limit keeps 2 of each, and the invalid span is rejected before storage.
    let spans = vec![span(1, 1), span(1, 2), span(1, 3), span(2, 4), span(2, 5), span(2, 6), span(2, 7), zero_span];
    let response = export(&mut client, request(spans)).await.expect("export");
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 4, "1 invalid + 1 of trace 1 + 2 of trace 2");
    assert!(partial.error_message.starts_with("4 span(s) rejected; first: "), "{}", partial.error_message);
    assert_eq!(writer.span_count(), 4);

    let over = export(&mut client, request(vec![span(1, 10)])).await.expect("export");
    let partial = over.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("over the limit of 2 spans"), "{}", partial.error_message);
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn undecodable_requests_are_invalid_argument() {
    check_undecodable_requests::<Traces>().await;
}

#[tokio::test]
async fn oversized_messages_are_invalid_argument() {
    check_oversized_messages::<Traces>().await;
}

#[tokio::test]
async fn storage_failures_carry_codes_and_retry_info() {
    check_storage_failures::<Traces>(4).await;
}
