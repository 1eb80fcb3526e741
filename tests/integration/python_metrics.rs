//! The OpenTelemetry Python SDK exports every instrument kind over gRPC and
//! HTTP/protobuf, with cumulative and delta temporality; every data point it
//! sent comes back exactly from SQL (read as Arrow, converted back to OTLP),
//! before and after flush.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use prost::Message;
use skein_model::metric_requests_from_batch;

use crate::support::python::send_metrics;
use crate::support::{ClusterBuilder, TestNode};

/// Each data point as its own one-point request, protobuf-encoded: a form in
/// which two exports compare exactly, whatever their grouping or order.
pub fn explode(requests: &[ExportMetricsServiceRequest]) -> Vec<Vec<u8>> {
    let mut points = Vec::new();
    for request in requests {
        for rm in &request.resource_metrics {
            for sm in &rm.scope_metrics {
                for metric in &sm.metrics {
                    for data in single_point_data(metric.data.as_ref()) {
                        let one = ExportMetricsServiceRequest {
                            resource_metrics: vec![ResourceMetrics {
                                scope_metrics: vec![ScopeMetrics {
                                    metrics: vec![Metric { data: Some(data), ..metric.clone() }],
                                    ..sm.clone()
                                }],
                                ..rm.clone()
                            }],
                        };
                        points.push(one.encode_to_vec());
                    }
                }
            }
        }
    }
    points.sort();
    points
}

/// `data` split into one `Data` per point (empty when there is none).
fn single_point_data(data: Option<&Data>) -> Vec<Data> {
    match data {
        None => vec![],
        Some(Data::Gauge(g)) => g
            .data_points
            .iter()
            .map(|p| Data::Gauge(opentelemetry_proto::tonic::metrics::v1::Gauge { data_points: vec![p.clone()] }))
            .collect(),
        Some(Data::Sum(s)) => s
            .data_points
            .iter()
            .map(|p| Data::Sum(opentelemetry_proto::tonic::metrics::v1::Sum { data_points: vec![p.clone()], ..*s }))
            .collect(),
        Some(Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                Data::Histogram(opentelemetry_proto::tonic::metrics::v1::Histogram {
                    data_points: vec![p.clone()],
                    aggregation_temporality: h.aggregation_temporality,
                })
            })
            .collect(),
        Some(Data::ExponentialHistogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                Data::ExponentialHistogram(opentelemetry_proto::tonic::metrics::v1::ExponentialHistogram {
                    data_points: vec![p.clone()],
                    aggregation_temporality: h.aggregation_temporality,
                })
            })
            .collect(),
        Some(Data::Summary(s)) => s
            .data_points
            .iter()
            .map(|p| Data::Summary(opentelemetry_proto::tonic::metrics::v1::Summary { data_points: vec![p.clone()] }))
            .collect(),
    }
}

/// Every point of `service` that Skein stores, exploded.
async fn stored_points(node: &TestNode, service: &str) -> Vec<Vec<u8>> {
    let batches = node.sql_arrow(&format!("SELECT * FROM metrics WHERE service_name = '{service}'")).await;
    let requests: Vec<ExportMetricsServiceRequest> =
        batches.iter().map(|b| metric_requests_from_batch(b).expect("stored rows convert back to OTLP")).collect();
    explode(&requests)
}

/// Which point types and features the SDK's exports contain, so the test
/// cannot pass by comparing two empty or trivial sets.
fn assert_covers_every_instrument(requests: &[ExportMetricsServiceRequest]) {
    let metrics: Vec<&Metric> = requests
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .collect();
    let has = |name: &str, pred: &dyn Fn(&Data) -> bool| {
        metrics.iter().any(|m| m.name == name && m.data.as_ref().is_some_and(pred))
    };
    assert!(has("http.server.requests", &|d| matches!(d, Data::Sum(s) if s.is_monotonic)));
    assert!(has("http.server.active_requests", &|d| matches!(d, Data::Sum(s) if !s.is_monotonic)));
    assert!(has("http.server.duration", &|d| matches!(d, Data::Histogram(_))));
    assert!(has("rpc.server.duration", &|d| matches!(d, Data::ExponentialHistogram(h)
        if h.data_points.iter().any(|p| p.zero_count > 0
            && p.positive.as_ref().is_some_and(|b| b.bucket_counts.len() > 1)))));
    assert!(has("queue.depth", &|d| matches!(d, Data::Gauge(_))));
    assert!(has("process.cpu.utilization", &|d| matches!(d, Data::Gauge(_))));
    assert!(has("process.page_faults", &|d| matches!(d, Data::Sum(_))));
    assert!(has("process.threads", &|d| matches!(d, Data::Sum(_))));
    assert!(
        has("http.server.duration", &|d| matches!(d, Data::Histogram(h)
            if h.data_points.iter().any(|p| p.exemplars.iter().any(|e| e.trace_id.len() == 16 && e.span_id.len() == 8)))),
        "the SDK attached exemplars with trace and span IDs"
    );
}

async fn round_trip(protocol: &str, temporality: &str) {
    let node = ClusterBuilder::new().shards(3).start().await;
    let service = format!("py-{protocol}-{temporality}");
    let endpoint = if protocol == "grpc" { node.otlp_grpc() } else { node.otlp_http() };
    let (protocol_owned, temporality_owned, service_owned) =
        (protocol.to_owned(), temporality.to_owned(), service.clone());
    let sent = tokio::task::spawn_blocking(move || {
        send_metrics(&endpoint, &protocol_owned, &temporality_owned, &service_owned)
    })
    .await
    .expect("script task");
    assert_covers_every_instrument(&sent);
    let temporality_code = if temporality == "delta" { 1 } else { 2 };
    assert!(
        sent.iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .any(|m| matches!(&m.data, Some(Data::Histogram(h)) if h.aggregation_temporality == temporality_code)),
        "histograms are exported with {temporality} temporality"
    );
    let want = explode(&sent);

    let buffered = stored_points(&node, &service).await;
    assert_eq!(buffered.len(), want.len(), "point count before flush");
    assert!(buffered == want, "every point round-trips exactly before flush");

    node.flush().await;
    let flushed = stored_points(&node, &service).await;
    assert!(flushed == want, "every point round-trips exactly after flush");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_metrics_over_grpc_cumulative() {
    round_trip("grpc", "cumulative").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_metrics_over_grpc_delta() {
    round_trip("grpc", "delta").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_metrics_over_http_cumulative() {
    round_trip("http", "cumulative").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_metrics_over_http_delta() {
    round_trip("http", "delta").await;
}
