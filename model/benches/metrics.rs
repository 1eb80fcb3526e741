//! The metrics ingest hot path on a realistic 1000-point request:
//! OTLP protobuf decode with prost, OTLP → Arrow from decoded messages
//! (`metrics_to_arrow`, with series hashing and shard assignment), the
//! ingest path's protobuf bytes → Arrow in one pass through the zero-copy
//! reader (`metrics_to_arrow_from_protobuf`), and Arrow → OTLP
//! (`metric_requests_from_batch`). Run with
//! `cargo bench --workspace --bench metrics`.

// The resource and scope are shared with the span benches; the span
// generator is not used here.
#[allow(dead_code)]
mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, exemplar, number_data_point,
};
use prost::Message;
use skein_model::{ConvertLimits, metric_requests_from_batch, metrics_to_arrow, metrics_to_arrow_from_protobuf};

use common::{BASE_NS, SCOPE_SCHEMA_URL, kv, resource, s, scope};

const POINTS: usize = 1000;
const SHARDS: usize = 4;
const SERVICES: [&str; 5] = ["frontend", "cart", "checkout", "payment", "product-catalog"];
/// Series per metric per service: 5 services × 5 metrics × 40 = 1000 points.
const SERIES: usize = 40;
/// OTel's default explicit bucket bounds for durations in ms.
const BOUNDS: [f64; 15] =
    [0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0];

/// HTTP server attributes of series `i` (route × method × status).
fn http_attrs(i: usize) -> Vec<KeyValue> {
    vec![
        s("http.request.method", ["GET", "POST"][i % 2]),
        s("http.route", &format!("/api/v1/items/{}", i / 4)),
        kv("http.response.status_code", Value::IntValue([200, 500][(i / 2) % 2])),
        s("url.scheme", "http"),
        s("network.protocol.version", "1.1"),
    ]
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name} of the service"),
        unit: unit.into(),
        metadata: vec![],
        data: Some(data),
    }
}

fn service_metrics(service: usize) -> Vec<Metric> {
    let t = BASE_NS + 60_000_000_000;
    let v = |i: usize| (service * 1000 + i) as u64;
    let histogram = (0..SERIES)
        .map(|i| HistogramDataPoint {
            attributes: http_attrs(i),
            start_time_unix_nano: BASE_NS,
            time_unix_nano: t,
            count: 120 + v(i),
            sum: Some(3456.5 + i as f64),
            bucket_counts: (0..=BOUNDS.len() as u64).map(|b| (v(i) + b * 7) % 50).collect(),
            explicit_bounds: BOUNDS.to_vec(),
            exemplars: vec![Exemplar {
                filtered_attributes: vec![],
                time_unix_nano: t - 1_000_000,
                span_id: v(i).to_be_bytes().to_vec(),
                trace_id: [v(i).to_be_bytes(), 7u64.to_be_bytes()].concat(),
                value: Some(exemplar::Value::AsDouble(42.5)),
            }],
            flags: 0,
            min: Some(0.4),
            max: Some(9000.0),
        })
        .collect();
    let active = (0..SERIES)
        .map(|i| NumberDataPoint {
            attributes: http_attrs(i),
            start_time_unix_nano: BASE_NS,
            time_unix_nano: t,
            value: Some(number_data_point::Value::AsInt((v(i) % 17) as i64)),
            ..Default::default()
        })
        .collect();
    let cpu = (0..SERIES)
        .map(|i| NumberDataPoint {
            attributes: vec![
                kv("cpu.logical_number", Value::IntValue((i / 4) as i64)),
                s("cpu.mode", ["user", "system", "idle", "iowait"][i % 4]),
            ],
            start_time_unix_nano: BASE_NS,
            time_unix_nano: t,
            value: Some(number_data_point::Value::AsDouble(1234.25 + v(i) as f64)),
            ..Default::default()
        })
        .collect();
    let memory = (0..SERIES)
        .map(|i| NumberDataPoint {
            attributes: vec![
                s("jvm.memory.pool.name", &format!("pool-{i}")),
                s("jvm.memory.type", ["heap", "non_heap"][i % 2]),
            ],
            time_unix_nano: t,
            value: Some(number_data_point::Value::AsInt(64 * 1024 * 1024 + v(i) as i64)),
            ..Default::default()
        })
        .collect();
    let rpc = (0..SERIES)
        .map(|i| ExponentialHistogramDataPoint {
            attributes: vec![s("rpc.system", "grpc"), s("rpc.method", &format!("Method{i}"))],
            start_time_unix_nano: BASE_NS,
            time_unix_nano: t,
            count: 500,
            sum: Some(12345.0),
            scale: 3,
            zero_count: 2,
            positive: Some(Buckets { offset: 10, bucket_counts: (0..24).map(|b| (b * 3 + v(i)) % 40).collect() }),
            negative: None,
            min: Some(0.1),
            max: Some(800.0),
            ..Default::default()
        })
        .collect();
    vec![
        metric(
            "http.server.request.duration",
            "ms",
            Data::Histogram(Histogram { data_points: histogram, aggregation_temporality: 2 }),
        ),
        metric(
            "http.server.active_requests",
            "{request}",
            Data::Sum(Sum { data_points: active, aggregation_temporality: 2, is_monotonic: false }),
        ),
        metric(
            "process.cpu.time",
            "s",
            Data::Sum(Sum { data_points: cpu, aggregation_temporality: 2, is_monotonic: true }),
        ),
        metric("jvm.memory.used", "By", Data::Gauge(Gauge { data_points: memory })),
        metric(
            "rpc.server.duration",
            "ms",
            Data::ExponentialHistogram(ExponentialHistogram { data_points: rpc, aggregation_temporality: 1 }),
        ),
    ]
}

/// One request of 1000 points: one `ResourceMetrics` per service.
fn request() -> ExportMetricsServiceRequest {
    let resource_metrics = SERVICES
        .iter()
        .enumerate()
        .map(|(n, service)| ResourceMetrics {
            resource: Some(resource(service)),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: service_metrics(n),
                schema_url: SCOPE_SCHEMA_URL.into(),
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportMetricsServiceRequest { resource_metrics }
}

fn metrics_decode(c: &mut Criterion) {
    let encoded = request().encode_to_vec();
    let mut group = c.benchmark_group("metrics_otlp_decode");
    group.throughput(Throughput::Elements(POINTS as u64));
    group.bench_function("1000_points", |b| {
        b.iter(|| ExportMetricsServiceRequest::decode(black_box(encoded.as_slice())).expect("valid protobuf"))
    });
    group.finish();
}

fn metrics_to_arrow_bench(c: &mut Criterion) {
    let request = request();
    let limits = ConvertLimits::default();
    let mut group = c.benchmark_group("metrics_to_arrow");
    group.throughput(Throughput::Elements(POINTS as u64));
    group.bench_function("1000_points", |b| {
        b.iter(|| metrics_to_arrow(black_box(&request), &limits, SHARDS).expect("converts"))
    });
    group.finish();
}

fn metrics_protobuf_to_arrow(c: &mut Criterion) {
    let encoded = request().encode_to_vec();
    let limits = ConvertLimits::default();
    let mut group = c.benchmark_group("metrics_protobuf_to_arrow");
    group.throughput(Throughput::Elements(POINTS as u64));
    group.bench_function("1000_points", |b| {
        b.iter(|| metrics_to_arrow_from_protobuf(black_box(&encoded), &limits, SHARDS).expect("converts"))
    });
    group.finish();
}

fn metrics_from_arrow(c: &mut Criterion) {
    let converted = metrics_to_arrow(&request(), &ConvertLimits::default(), SHARDS).expect("converts");
    assert_eq!(converted.batch.num_rows(), POINTS, "every generated point is valid");
    let mut group = c.benchmark_group("metrics_from_arrow");
    group.throughput(Throughput::Elements(POINTS as u64));
    group.bench_function("1000_points", |b| {
        b.iter(|| metric_requests_from_batch(black_box(&converted.batch)).expect("converts back"))
    });
    group.finish();
}

criterion_group!(benches, metrics_decode, metrics_to_arrow_bench, metrics_protobuf_to_arrow, metrics_from_arrow);
criterion_main!(benches);
