//! Metric test data: request builders for every point type, and a
//! normalized form (one request per data point) to compare what was sent
//! with what the writer stored.

use datafusion::arrow::array::StringArray;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, exemplar, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use skein_model::metrics::col;
use skein_model::metrics::series::series_hash;
use skein_model::metrics::shard_for_series;
use skein_model::{ConvertLimits, RecordBatch, ShardWriter, metric_requests_from_batch};

use crate::test_support::{TEST_MAX_VALUE_BYTES, TestWriter, string_attr};

pub(crate) const T0: u64 = 1_700_000_000_000_000_000;

pub(crate) fn int_attr(key: &str, value: i64) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(Value::IntValue(value)) }), key_strindex: 0 }
}

/// A gauge point of series `host-{host}` at `T0 + offset`.
pub(crate) fn gauge_point(host: u64, offset: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![string_attr("host", &format!("host-{host}"))],
        time_unix_nano: T0 + offset,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

pub(crate) fn gauge(name: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: "a gauge".into(),
        unit: "1".into(),
        metadata: vec![],
        data: Some(Data::Gauge(Gauge { data_points })),
    }
}

/// One resource (`service.name = checkout`) and scope holding `metrics`.
pub(crate) fn metrics_request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", "checkout")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope { name: "meter".into(), version: "2.0".into(), ..Default::default() }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// `n` valid gauge points, each in its own series.
pub(crate) fn points_request(n: u64) -> ExportMetricsServiceRequest {
    metrics_request(vec![gauge("cpu.utilization", (0..n).map(|i| gauge_point(i, i, i as f64 / 10.0)).collect())])
}

/// A request whose point has one highly compressible attribute value of
/// `len` bytes: tiny when gzipped, large when decoded.
pub(crate) fn metric_bomb_request(len: usize) -> ExportMetricsServiceRequest {
    let mut point = gauge_point(1, 1, 1.0);
    point.attributes.push(string_attr("payload", &"0".repeat(len)));
    metrics_request(vec![gauge("bomb", vec![point])])
}

fn exemplar(offset: u64, trace: u8, span: u8) -> Exemplar {
    Exemplar {
        filtered_attributes: vec![string_attr("user", "u-1")],
        time_unix_nano: T0 + offset,
        span_id: vec![span; 8],
        trace_id: vec![trace; 16],
        value: Some(exemplar::Value::AsInt(7)),
    }
}

/// Every point type, each field set, over several series: gauges (double
/// and int), a cumulative monotonic sum, a delta histogram with an exemplar
/// linking to a span, an exponential histogram and a summary.
pub(crate) fn all_types_request() -> ExportMetricsServiceRequest {
    let mut int_gauge = gauge_point(2, 5, 0.0);
    int_gauge.value = Some(number_data_point::Value::AsInt(-9_007_199_254_740_993));
    int_gauge.attributes.push(int_attr("core", 3));
    let sum_point = |host: u64, value: i64| NumberDataPoint {
        attributes: vec![string_attr("host", &format!("host-{host}")), string_attr("route", "/cart")],
        start_time_unix_nano: T0,
        time_unix_nano: T0 + 10,
        exemplars: vec![exemplar(9, 0xab, 0xcd)],
        flags: 0,
        value: Some(number_data_point::Value::AsInt(value)),
    };
    let histogram_point = HistogramDataPoint {
        attributes: vec![string_attr("route", "/cart")],
        start_time_unix_nano: T0,
        time_unix_nano: T0 + 20,
        count: 6,
        sum: Some(12.5),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![0.5, 2.0],
        exemplars: vec![exemplar(19, 0x11, 0x22)],
        flags: 0,
        min: Some(0.1),
        max: Some(9.0),
    };
    let exp_point = ExponentialHistogramDataPoint {
        attributes: vec![string_attr("route", "/pay")],
        start_time_unix_nano: T0,
        time_unix_nano: T0 + 30,
        count: 10,
        sum: Some(-3.0),
        scale: -2,
        zero_count: 1,
        positive: Some(Buckets { offset: -3, bucket_counts: vec![1, 0, 4] }),
        negative: Some(Buckets { offset: 2, bucket_counts: vec![4] }),
        flags: 1,
        exemplars: vec![],
        min: None,
        max: Some(40.0),
        zero_threshold: 1e-9,
    };
    let summary_point = SummaryDataPoint {
        attributes: vec![],
        start_time_unix_nano: T0,
        time_unix_nano: T0 + 40,
        count: 4,
        sum: 8.0,
        quantile_values: vec![
            ValueAtQuantile { quantile: 0.5, value: 1.5 },
            ValueAtQuantile { quantile: 0.99, value: 3.25 },
        ],
        flags: 0,
    };
    let metric = |name: &str, unit: &str, data: Data| Metric {
        name: name.into(),
        description: format!("{name} description"),
        unit: unit.into(),
        metadata: vec![string_attr("origin", "sdk")],
        data: Some(data),
    };
    metrics_request(vec![
        gauge("process.memory", vec![gauge_point(1, 1, 0.25), gauge_point(1, 2, 0.5), int_gauge]),
        metric(
            "http.requests",
            "{request}",
            Data::Sum(Sum {
                data_points: vec![sum_point(1, 10), sum_point(2, 20)],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "http.duration",
            "s",
            Data::Histogram(Histogram { data_points: vec![histogram_point], aggregation_temporality: 1 }),
        ),
        metric(
            "payload.size",
            "By",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![exp_point],
                aggregation_temporality: 2,
            }),
        ),
        metric("gc.pause", "ms", Data::Summary(Summary { data_points: vec![summary_point] })),
    ])
}

/// The number of data points in a request.
pub(crate) fn point_total(request: &ExportMetricsServiceRequest) -> usize {
    single_points(request).len()
}

/// A request split into one request per data point (resource, scope and
/// metric fields copied), sorted so that grouping and order do not matter.
pub(crate) fn single_points(request: &ExportMetricsServiceRequest) -> Vec<ExportMetricsServiceRequest> {
    let mut out = Vec::new();
    for rm in &request.resource_metrics {
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                for metric in split_metric(metric) {
                    let scope = ScopeMetrics { metrics: vec![metric], ..sm.clone() };
                    let resource = ResourceMetrics { scope_metrics: vec![scope], ..rm.clone() };
                    out.push(ExportMetricsServiceRequest { resource_metrics: vec![resource] });
                }
            }
        }
    }
    out.sort_by_cached_key(|r| format!("{r:?}"));
    out
}

/// One metric per data point.
fn split_metric(metric: &Metric) -> Vec<Metric> {
    let with = |data: Data| Metric { data: Some(data), ..metric.clone() };
    match &metric.data {
        Some(Data::Gauge(g)) => {
            g.data_points.iter().map(|p| with(Data::Gauge(Gauge { data_points: vec![p.clone()] }))).collect()
        }
        Some(Data::Sum(s)) => {
            s.data_points.iter().map(|p| with(Data::Sum(Sum { data_points: vec![p.clone()], ..s.clone() }))).collect()
        }
        Some(Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| with(Data::Histogram(Histogram { data_points: vec![p.clone()], ..h.clone() })))
            .collect(),
        Some(Data::ExponentialHistogram(e)) => e
            .data_points
            .iter()
            .map(|p| {
                with(Data::ExponentialHistogram(ExponentialHistogram { data_points: vec![p.clone()], ..e.clone() }))
            })
            .collect(),
        Some(Data::Summary(s)) => {
            s.data_points.iter().map(|p| with(Data::Summary(Summary { data_points: vec![p.clone()] }))).collect()
        }
        None => vec![],
    }
}

/// The attributes of a single-point request's point.
fn point_attributes(single: &ExportMetricsServiceRequest) -> &[KeyValue] {
    let metric = &single.resource_metrics[0].scope_metrics[0].metrics[0];
    match metric.data.as_ref().expect("point has data") {
        Data::Gauge(g) => &g.data_points[0].attributes,
        Data::Sum(s) => &s.data_points[0].attributes,
        Data::Histogram(h) => &h.data_points[0].attributes,
        Data::ExponentialHistogram(e) => &e.data_points[0].attributes,
        Data::Summary(s) => &s.data_points[0].attributes,
    }
}

/// The shard a single-point request's series belongs on, computed from the
/// OTLP fields alone.
pub(crate) fn expected_shard(single: &ExportMetricsServiceRequest, shard_count: usize) -> usize {
    let rm = &single.resource_metrics[0];
    let resource = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
    let name = &rm.scope_metrics[0].metrics[0].name;
    let limits = ConvertLimits { max_attribute_value_bytes: TEST_MAX_VALUE_BYTES };
    shard_for_series(series_hash(name, resource, point_attributes(single), &limits), shard_count)
}

/// The `series_id` values of a stored batch.
pub(crate) fn series_ids(batch: &RecordBatch) -> Vec<String> {
    let column = batch.column_by_name(col::SERIES_ID).expect("series_id column");
    let ids = column.as_any().downcast_ref::<StringArray>().expect("series_id is Utf8");
    ids.iter().map(|id| id.expect("series_id is never null").to_owned()).collect()
}

impl TestWriter {
    /// Every stored point as a single-point request, with its shard.
    pub(crate) fn stored_points(&self) -> Vec<(usize, ExportMetricsServiceRequest)> {
        let mut out: Vec<_> = self
            .metric_batches()
            .iter()
            .flat_map(|(shard, batch)| {
                let request = metric_requests_from_batch(batch).expect("stored batch converts back");
                single_points(&request).into_iter().map(|point| (*shard, point))
            })
            .collect();
        out.sort_by_cached_key(|(_, r)| format!("{r:?}"));
        out
    }
}

/// Checks that the writer holds exactly `sent`'s points, each on the shard
/// of its series, and that every batch's `series_id`s belong on its shard.
pub(crate) fn assert_stored_exactly(writer: &TestWriter, sent: &ExportMetricsServiceRequest) {
    let shard_count = writer.shard_count();
    let stored = writer.stored_points();
    let points: Vec<_> = stored.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(points, single_points(sent), "stored points equal the sent points");
    for (shard, point) in &stored {
        assert_eq!(*shard, expected_shard(point, shard_count), "point routed to its series' shard: {point:?}");
    }
    for (shard, batch) in writer.metric_batches() {
        for id in series_ids(&batch) {
            let hash = u64::from_str_radix(&id, 16).expect("series_id is hex");
            assert_eq!(shard_for_series(hash, shard_count), shard, "series {id} on shard {shard}");
        }
    }
}
