//! OTLP/gRPC metrics (`MetricsService/Export`) end to end with tonic's
//! generated client: points land on their series' shards, partial success,
//! and every error status as for traces, each followed by a good request.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::metrics::v1::exemplar;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::grpc_tests::{GrpcSignal, check_oversized_messages, check_storage_failures, check_undecodable_requests};
use crate::metric_fixtures::{
    all_types_request, assert_stored_exactly, gauge, gauge_point, metric_bomb_request, metrics_request, point_total,
    points_request, series_ids,
};
use crate::signal::Metrics;
use crate::test_support::{Running, TEST_MAX_REQUEST_BYTES, TestWriter, spans_request};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

async fn client(server: &Running) -> MetricsServiceClient<Channel> {
    MetricsServiceClient::connect(server.grpc_url()).await.expect("grpc client connects")
}

async fn export(
    client: &mut MetricsServiceClient<Channel>,
    request: ExportMetricsServiceRequest,
) -> Result<ExportMetricsServiceResponse, Status> {
    client.export(request).await.map(tonic::Response::into_inner)
}

impl GrpcSignal for Metrics {
    type Client = MetricsServiceClient<Channel>;
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
        points_request(n)
    }
    fn bomb(len: usize) -> Self::Request {
        metric_bomb_request(len)
    }
    fn stored(writer: &TestWriter) -> usize {
        writer.point_count()
    }
}

#[tokio::test]
async fn every_point_type_lands_on_its_series_shard() {
    let writer = TestWriter::new(4);
    let server = Running::start(writer.clone()).await;
    let mut client = client(&server).await;
    let sent = all_types_request();
    let response = export(&mut client, sent.clone()).await.expect("export succeeds");
    assert_eq!(response.partial_success, None);
    assert_stored_exactly(&writer, &sent);
    assert!(writer.metric_batches().len() > 1, "several series spread over several shards");
    assert!(writer.batches().is_empty(), "no points written as spans");

    // Another export of the same series goes to the same shards.
    let many = points_request(40);
    export(&mut client, many.clone()).await.expect("export succeeds");
    export(&mut client, many.clone()).await.expect("export succeeds");
    assert_eq!(writer.point_count(), point_total(&sent) + 80);
    let mut shard_of_series = std::collections::HashMap::new();
    for (shard, batch) in writer.metric_batches() {
        for id in series_ids(&batch) {
            let first = *shard_of_series.entry(id.clone()).or_insert(shard);
            assert_eq!(first, shard, "series {id} is on one shard only");
        }
    }
    assert_eq!(shard_of_series.len(), 7 + 40, "one series per host and metric");

    let text = server.metrics_text();
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="metrics",transport="grpc",outcome="ok"} 3"#),
        "{text}"
    );
    assert!(text.contains(&format!("skein_collector_points_accepted_total {}", point_total(&sent) + 80)), "{text}");
    assert!(text.contains("skein_collector_spans_accepted_total 0"), "{text}");
    let bytes = sent.encoded_len() + 2 * many.encoded_len();
    let body_sum = format!("skein_collector_request_body_bytes_sum{{signal=\"metrics\",transport=\"grpc\"}} {bytes}.0");
    assert!(text.lines().any(|l| l == body_sum), "missing {body_sum} in\n{text}");
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn traces_and_metrics_share_one_server() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let mut metrics = client(&server).await;
    let mut traces = TraceServiceClient::connect(server.grpc_url()).await.expect("connect");
    traces.export(spans_request(5)).await.expect("trace export");
    export(&mut metrics, points_request(7)).await.expect("metrics export");
    assert_eq!((writer.span_count(), writer.point_count()), (5, 7));
    drop((metrics, traces));
    server.stop().await;
}

#[tokio::test]
async fn gzip_requests_are_accepted() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let mut client = client(&server).await.send_compressed(CompressionEncoding::Gzip);
    let sent = all_types_request();
    export(&mut client, sent.clone()).await.expect("gzip export succeeds");
    assert_stored_exactly(&writer, &sent);
    export(&mut client, metric_bomb_request(TEST_MAX_REQUEST_BYTES / 2)).await.expect("compressible export succeeds");
    assert_eq!(writer.point_count(), point_total(&sent) + 1);
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn partial_success_counts_rejected_points() {
    let writer = TestWriter::new(2);
    let server = Running::start(writer.clone()).await;
    let mut client = client(&server).await;
    let mut no_time = gauge_point(2, 0, 1.0);
    no_time.time_unix_nano = 0;
    let mut bad_exemplar = gauge_point(3, 3, 1.0);
    bad_exemplar.exemplars.push(opentelemetry_proto::tonic::metrics::v1::Exemplar {
        trace_id: vec![1; 5],
        value: Some(exemplar::Value::AsDouble(1.0)),
        ..Default::default()
    });
    let mut no_data = gauge("empty", vec![]);
    no_data.data = None;
    let request = metrics_request(vec![
        gauge("cpu", vec![gauge_point(1, 1, 0.5), no_time, bad_exemplar, gauge_point(4, 4, 0.7)]),
        no_data,
    ]);
    let partial = export(&mut client, request).await.expect("export").partial_success.expect("partial success");
    assert_eq!(partial.rejected_data_points, 3);
    assert!(partial.error_message.starts_with("3 data point(s) rejected; first: "), "{}", partial.error_message);
    assert!(partial.error_message.contains("time_unix_nano"), "{}", partial.error_message);
    assert_eq!(writer.point_count(), 2);

    // Every point rejected: still an answer, nothing written.
    let calls = writer.write_calls();
    let mut unnamed = gauge("", vec![gauge_point(1, 1, 1.0), gauge_point(2, 2, 2.0)]);
    unnamed.name.clear();
    let partial = export(&mut client, metrics_request(vec![unnamed]))
        .await
        .expect("export")
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_data_points, 2);
    assert!(partial.error_message.contains("name"), "{}", partial.error_message);
    assert_eq!(writer.write_calls(), calls);

    let text = server.metrics_text();
    assert!(text.contains("skein_collector_points_rejected_total 5"), "{text}");
    assert!(text.contains("skein_collector_points_accepted_total 2"), "{text}");
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="metrics",transport="grpc",outcome="partial"} 2"#),
        "{text}"
    );
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn undecodable_requests_are_invalid_argument() {
    check_undecodable_requests::<Metrics>().await;
}

#[tokio::test]
async fn oversized_messages_are_invalid_argument() {
    check_oversized_messages::<Metrics>().await;
}

#[tokio::test]
async fn storage_failures_carry_codes_and_retry_info() {
    check_storage_failures::<Metrics>(8).await;
}

#[tokio::test]
async fn metrics_and_traces_share_the_concurrency_limit() {
    let writer = TestWriter::gated(1);
    let server = Running::start_with(writer.clone(), |c| c.max_concurrent_requests = 1).await;
    let mut client = client(&server).await;

    // A trace export holds the only slot; a metrics export is refused at once.
    let mut traces = TraceServiceClient::connect(server.grpc_url()).await.expect("connect");
    let held = tokio::spawn(async move { traces.export(spans_request(2)).await });
    writer.wait_for_held_write().await;
    let status = export(&mut client, points_request(1)).await.expect_err("no free slot");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.get_details_retry_info().and_then(|r| r.retry_delay), Some(Duration::from_secs(1)));

    writer.release(1);
    held.await.expect("held request task").expect("held request completes");
    writer.release(1);
    export(&mut client, points_request(1)).await.expect("metrics export after overload");
    assert_eq!((writer.span_count(), writer.point_count()), (2, 1));
    let text = server.metrics_text();
    assert!(
        text.contains(r#"skein_collector_requests_total{signal="metrics",transport="grpc",outcome="overloaded"} 1"#),
        "{text}"
    );
    drop(client);
    server.stop().await;
}
