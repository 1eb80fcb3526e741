//! Metric test data: OTLP metrics of every point type, converted with
//! `skein_model::metrics::metrics_to_arrow`, and helpers to query and
//! compare stored points.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::exemplar;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric,
    number_data_point,
};
use skein_model::metrics::{col as mcol, metric_schema, metrics_to_arrow};

use super::*;

/// One gauge point per `(host, time)`, value `value`.
pub(crate) fn gauge(name: &str, points: &[(&str, u64, f64)]) -> Metric {
    let data_points = points
        .iter()
        .map(|(host, time, value)| NumberDataPoint {
            attributes: vec![kv("host", host)],
            time_unix_nano: *time,
            value: Some(number_data_point::Value::AsDouble(*value)),
            ..Default::default()
        })
        .collect();
    Metric {
        name: name.into(),
        unit: "1".into(),
        description: format!("{name} gauge"),
        data: Some(metric::Data::Gauge(Gauge { data_points })),
        ..Default::default()
    }
}

/// A cumulative monotonic counter of one series (integer values).
fn counter(name: &str, start: u64, points: &[(u64, i64)]) -> Metric {
    let data_points = points
        .iter()
        .map(|(time, value)| NumberDataPoint {
            attributes: vec![kv("route", "/cart")],
            start_time_unix_nano: start,
            time_unix_nano: *time,
            value: Some(number_data_point::Value::AsInt(*value)),
            exemplars: vec![Exemplar {
                time_unix_nano: *time - 5,
                value: Some(exemplar::Value::AsInt(1)),
                trace_id: trace_id(7),
                span_id: vec![1; 8],
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    Metric {
        name: name.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn histograms(start: u64, time: u64) -> Vec<Metric> {
    let histogram = HistogramDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: 6,
        sum: Some(12.5),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![1.0, 5.0],
        min: Some(0.5),
        max: Some(9.0),
        ..Default::default()
    };
    let exponential = ExponentialHistogramDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: 5,
        scale: 2,
        zero_count: 1,
        zero_threshold: 0.001,
        positive: Some(Buckets { offset: -1, bucket_counts: vec![1, 2] }),
        negative: Some(Buckets { offset: 3, bucket_counts: vec![1] }),
        ..Default::default()
    };
    let summary = SummaryDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: 3,
        sum: 6.0,
        quantile_values: vec![
            ValueAtQuantile { quantile: 0.5, value: 2.0 },
            ValueAtQuantile { quantile: 1.0, value: 3.0 },
        ],
        ..Default::default()
    };
    let delta = AggregationTemporality::Delta as i32;
    vec![
        Metric {
            name: "http.server.duration".into(),
            unit: "s".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![histogram],
                aggregation_temporality: delta,
            })),
            ..Default::default()
        },
        Metric {
            name: "rpc.latency".into(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![exponential],
                aggregation_temporality: delta,
            })),
            ..Default::default()
        },
        Metric {
            name: "gc.pause".into(),
            data: Some(metric::Data::Summary(Summary { data_points: vec![summary] })),
            ..Default::default()
        },
    ]
}

/// Points of all five types around `time`.
pub(crate) fn mixed_metrics(time: u64) -> Vec<Metric> {
    let mut metrics = vec![
        gauge("system.cpu.utilization", &[("a", time, 0.25), ("b", time, 0.75), ("a", time + 1_000, 0.5)]),
        counter("http.requests", time - 60_000_000_000, &[(time, 10), (time + 1_000, 12)]),
    ];
    metrics.extend(histograms(time - 10_000_000_000, time));
    metrics
}

pub(crate) fn metrics_request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: vec![kv("service.name", "cart")], ..Default::default() }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope { name: "test".into(), version: "1".into(), ..Default::default() }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The points of `metrics` as one batch for a single-shard storage.
pub(crate) fn metric_batch(metrics: Vec<Metric>) -> RecordBatch {
    let converted = metrics_to_arrow(&metrics_request(metrics), &ConvertLimits::default(), 1).expect("converts");
    assert_eq!(converted.rejected, 0, "{:?}", converted.first_error);
    converted.batch
}

pub(crate) async fn write_metric_batch(storage: &Storage, batch: RecordBatch) {
    storage.write_metrics(0, batch).await.expect("write accepted");
}

/// Shard 0's metric table registered as `metrics`.
pub(crate) fn metric_context(storage: &Storage) -> SessionContext {
    let ctx = SessionContext::new();
    ctx.register_table("metrics", Arc::clone(&storage.metric_tables()[0])).expect("registers");
    ctx
}

/// Distinct Parquet files the plan of `sql` on the metric table will open.
pub(crate) async fn metric_planned_files(storage: &Storage, sql: &str) -> usize {
    planned_files_in(&metric_context(storage), sql).await
}

pub(crate) async fn metric_query(storage: &Storage, sql: &str) -> Vec<RecordBatch> {
    metric_context(storage).sql(sql).await.expect("plans").collect().await.expect("runs")
}

/// All rows of `batches` as one batch sorted by (metric_name, series_id,
/// time), for comparing stored points with written ones whatever the order.
pub(crate) fn sorted_points(batches: &[RecordBatch]) -> RecordBatch {
    let schema = metric_schema();
    let all = concat_batches(&schema, batches).expect("concatenates");
    let columns = [mcol::METRIC_NAME, mcol::SERIES_ID, mcol::TIME]
        .map(|name| SortColumn { values: Arc::clone(all.column_by_name(name).expect("sort column")), options: None });
    let order = lexsort_to_indices(&columns, None).expect("sorts");
    take_record_batch(&all, &order).expect("takes")
}

/// Every stored metric point of shard 0, sorted.
pub(crate) async fn all_points(storage: &Storage) -> RecordBatch {
    sorted_points(&metric_query(storage, "SELECT * FROM metrics").await)
}

/// The metric names of `batch`, in row order.
pub(crate) fn metric_names(batch: &RecordBatch) -> Vec<String> {
    let names = batch.column_by_name(mcol::METRIC_NAME).expect("metric_name").as_string::<i32>();
    names.iter().map(|n| n.expect("not null").to_owned()).collect()
}
