//! The metrics load as a target receives it: requests from the pool over
//! several passes, decoded and checked series by series.

use std::collections::{HashMap, HashSet};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Exemplar, metric, number_data_point};
use prost::Message;
use skein_model::{ConvertLimits, metric_requests_from_batch, metrics_to_arrow};

use super::ids::IdScheme;
use super::metrics_workload::{MetricsPlan, generate};
use super::pool::Pool;

const NOW: u64 = 1_750_000_000_000_000_000;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
const DELTA: i32 = AggregationTemporality::Delta as i32;

fn plan(seed: u64, requests: usize, points: usize) -> MetricsPlan {
    MetricsPlan { seed, requests, points, now_ns: NOW, rate: None }
}

/// How a point's values may evolve within one start..time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Shape {
    Gauge,
    /// Cumulative; `values` never decrease while the start time stays.
    Monotonic,
    /// Cumulative up-down counter: any value, stable start time.
    UpDown,
    /// Delta: the start time is the previous point's time.
    Delta,
}

#[derive(Debug, Clone)]
struct Flat {
    metric: String,
    /// Metric name, resource and point attributes: the series identity.
    series: String,
    type_name: &'static str,
    shape: Shape,
    start: u64,
    time: u64,
    /// What must not decrease for `Monotonic` (count, sum, buckets, max, -min).
    values: Vec<f64>,
    int_value: Option<i64>,
    exemplars: Vec<Exemplar>,
    attributes: Vec<KeyValue>,
    resource: String,
}

fn flatten(request: &ExportMetricsServiceRequest) -> Vec<Flat> {
    let mut out = Vec::new();
    for rm in &request.resource_metrics {
        let resource = format!("{:?}", rm.resource.as_ref().map(|r| &r.attributes));
        for metric in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            let mut push = |type_name, shape, attributes: &Vec<KeyValue>, start, time, values, int_value, exemplars| {
                out.push(Flat {
                    metric: metric.name.clone(),
                    series: format!("{}|{resource}|{attributes:?}", metric.name),
                    type_name,
                    shape,
                    start,
                    time,
                    values,
                    int_value,
                    exemplars,
                    attributes: attributes.clone(),
                    resource: resource.clone(),
                });
            };
            let number = |p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint| match p.value {
                Some(number_data_point::Value::AsDouble(v)) => (v, None),
                Some(number_data_point::Value::AsInt(v)) => (v as f64, Some(v)),
                None => (f64::NAN, None),
            };
            match metric.data.as_ref().expect("every metric has data") {
                metric::Data::Gauge(g) => {
                    for p in &g.data_points {
                        let (v, i) = number(p);
                        push(
                            "gauge",
                            Shape::Gauge,
                            &p.attributes,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            vec![v],
                            i,
                            p.exemplars.clone(),
                        );
                    }
                }
                metric::Data::Sum(sum) => {
                    assert_eq!(sum.aggregation_temporality, CUMULATIVE, "{}", metric.name);
                    let shape = if sum.is_monotonic { Shape::Monotonic } else { Shape::UpDown };
                    for p in &sum.data_points {
                        let (v, i) = number(p);
                        push(
                            "sum",
                            shape,
                            &p.attributes,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            vec![v],
                            i,
                            p.exemplars.clone(),
                        );
                    }
                }
                metric::Data::Histogram(h) => {
                    assert_eq!(h.aggregation_temporality, CUMULATIVE, "{}", metric.name);
                    for p in &h.data_points {
                        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
                        assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
                        let mut values = vec![p.count as f64, p.sum.unwrap_or(0.0)];
                        values.extend(p.bucket_counts.iter().map(|c| *c as f64));
                        if p.count > 0 {
                            values.extend([p.max.expect("max"), -p.min.expect("min")]);
                        }
                        push(
                            "histogram",
                            Shape::Monotonic,
                            &p.attributes,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            values,
                            None,
                            p.exemplars.clone(),
                        );
                    }
                }
                metric::Data::ExponentialHistogram(h) => {
                    assert_eq!(h.aggregation_temporality, DELTA, "{}", metric.name);
                    for p in &h.data_points {
                        let positive = p.positive.as_ref().expect("positive buckets");
                        assert_eq!(positive.bucket_counts.iter().sum::<u64>() + p.zero_count, p.count);
                        push(
                            "exponential_histogram",
                            Shape::Delta,
                            &p.attributes,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            vec![p.count as f64],
                            None,
                            p.exemplars.clone(),
                        );
                    }
                }
                metric::Data::Summary(summary) => {
                    for p in &summary.data_points {
                        assert!(p.quantile_values.windows(2).all(|w| w[0].value <= w[1].value));
                        push(
                            "summary",
                            Shape::Monotonic,
                            &p.attributes,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            vec![p.count as f64, p.sum],
                            None,
                            Vec::new(),
                        );
                    }
                }
            }
        }
    }
    out
}

fn decode(bytes: &[u8]) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest::decode(bytes).expect("valid protobuf")
}

/// Every point of sends 1..=`sends`.
fn sent(pool: &Pool, sends: u64) -> Vec<Vec<Flat>> {
    (1..=sends).map(|epoch| flatten(&decode(&pool.request(epoch, NOW).expect("request").0))).collect()
}

#[test]
fn generation_is_deterministic_from_the_seed() {
    let ids = IdScheme::new(5);
    let a = generate(&plan(3, 6, 400), &ids);
    assert_eq!(a, generate(&plan(3, 6, 400), &ids), "same seed, same requests");
    assert_ne!(a.requests, generate(&plan(4, 6, 400), &ids).requests);
    let (x, y) = (Pool::metrics(&plan(3, 6, 400), 9).expect("pool"), Pool::metrics(&plan(3, 6, 400), 9).expect("pool"));
    for epoch in [1, 6, 7, 40] {
        assert_eq!(x.request(epoch, NOW).expect("x"), y.request(epoch, NOW).expect("y"));
    }
}

#[test]
fn requests_hold_exactly_the_batch_and_every_point_type() {
    let generated = generate(&plan(1, 12, 300), &IdScheme::new(1));
    assert_eq!(generated.requests.len(), 12);
    let mut types = HashSet::new();
    let (mut ints, mut doubles, mut exemplars) = (0, 0, 0);
    for built in &generated.requests {
        let points = flatten(&built.request);
        assert_eq!((points.len(), built.points), (300, 300));
        let with_ids =
            points.iter().flat_map(|p| &p.exemplars).filter(|e| e.trace_id.len() == 16 && e.span_id.len() == 8);
        assert_eq!(with_ids.count(), built.exemplars as usize);
        for point in &points {
            types.insert((point.type_name, point.shape));
            match point.int_value {
                Some(_) => ints += 1,
                None if point.type_name == "gauge" || point.type_name == "sum" => doubles += 1,
                None => {}
            }
            exemplars += point.exemplars.len();
        }
    }
    let expected = [
        ("gauge", Shape::Gauge),
        ("sum", Shape::Monotonic),
        ("sum", Shape::UpDown),
        ("histogram", Shape::Monotonic),
        ("exponential_histogram", Shape::Delta),
        ("summary", Shape::Monotonic),
    ];
    assert_eq!(types, expected.into_iter().collect(), "every point type");
    assert!(ints > 0 && doubles > 0 && exemplars > 0, "ints {ints}, doubles {doubles}, exemplars {exemplars}");
}

#[test]
fn each_metric_has_a_realistic_number_of_series() {
    let generated = generate(&plan(2, 4, 1000), &IdScheme::new(1));
    let mut series: HashMap<String, HashSet<String>> = HashMap::new();
    for point in generated.requests.iter().flat_map(|b| flatten(&b.request)) {
        series.entry(point.metric.clone()).or_default().insert(point.series);
    }
    assert_eq!(series.len(), 13, "{:?}", series.keys());
    for (metric, set) in &series {
        assert!((4..=50).contains(&set.len()), "{metric}: {} series", set.len());
    }
    let total: usize = series.values().map(HashSet::len).sum();
    assert!((200..=300).contains(&total), "{total} series in all");
}

#[test]
fn series_move_forward_over_passes_with_planned_resets_only() {
    let (requests, points, passes) = (8usize, 500usize, 3u64);
    let pool = Pool::metrics(&plan(7, requests, points), 11).expect("pool");
    let ticks = generate(&plan(7, requests, points), &IdScheme::new(11)).ticks;
    let mut by_series: HashMap<String, Vec<Flat>> = HashMap::new();
    let mut trace_ids = HashSet::new();
    for point in sent(&pool, requests as u64 * passes).into_iter().flatten() {
        for exemplar in &point.exemplars {
            assert!(trace_ids.insert(exemplar.trace_id.clone()), "exemplar trace IDs differ per send");
            assert!(exemplar.time_unix_nano < point.time && exemplar.time_unix_nano > point.time - 1_000_000_000);
        }
        by_series.entry(point.series.clone()).or_default().push(point);
    }
    let mut resets = 0u64;
    let mut increases = 0u64;
    for (series, points) in &mut by_series {
        points.sort_by_key(|p| p.time);
        let times: HashSet<u64> = points.iter().map(|p| p.time).collect();
        assert_eq!(times.len(), points.len(), "{series}: a (series, time) point repeats");
        let mut series_resets = 0;
        for pair in points.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            match after.shape {
                Shape::Gauge => assert_eq!(after.start, 0, "{series}"),
                Shape::Delta => assert!(before.time <= after.start && after.start < after.time, "{series}"),
                Shape::Monotonic | Shape::UpDown if after.start == before.start => {
                    if after.shape == Shape::Monotonic {
                        for (b, a) in before.values.iter().zip(&after.values) {
                            assert!(a >= b, "{series}: {:?} then {:?}", before.values, after.values);
                        }
                        increases += u64::from(after.values[0] > before.values[0]);
                    }
                }
                Shape::Monotonic | Shape::UpDown => {
                    // A restart: the new window opens between the two points.
                    assert!(before.time < after.start && after.start < after.time, "{series}");
                    series_resets += 1;
                }
            }
        }
        assert!(series_resets <= passes, "{series}: {series_resets} resets in {passes} passes");
        resets += series_resets;
        let first = &points[0];
        if first.shape != Shape::Gauge {
            assert!(first.start < first.time, "{series}");
        }
    }
    assert!(resets > 0, "instances restart now and then");
    assert!(increases > resets * 5, "counters mostly increase: {increases} increases, {resets} resets");
    assert!(ticks > 10, "{ticks} ticks per pass");
}

#[test]
fn request_counters_agree_with_the_request_histogram() {
    let generated = generate(&plan(5, 6, 1000), &IdScheme::new(1));
    let points: Vec<Flat> = generated.requests.iter().flat_map(|b| flatten(&b.request)).collect();
    let key = |p: &Flat| {
        let route: Vec<&KeyValue> = p.attributes.iter().take(3).collect();
        format!("{}|{route:?}|{}", p.resource, p.time)
    };
    let histograms: HashMap<String, f64> = points
        .iter()
        .filter(|p| p.metric == "http.server.request.duration" && p.resource.contains("frontend"))
        .map(|p| (key(p), p.values[0]))
        .collect();
    let counters: Vec<&Flat> = points.iter().filter(|p| p.metric == "app.frontend.requests").collect();
    assert!(!counters.is_empty());
    for counter in counters {
        let count = histograms.get(&key(counter)).expect("the same route is measured both ways");
        assert_eq!(counter.int_value, Some(*count as i64), "{}", counter.series);
    }
}

#[test]
fn skein_accepts_every_generated_point_losslessly() {
    let generated = generate(&plan(6, 4, 500), &IdScheme::new(1));
    for built in &generated.requests {
        let converted = metrics_to_arrow(&built.request, &ConvertLimits::default(), 4).expect("converts");
        assert_eq!(converted.rejected, 0, "{:?}", converted.first_error);
        assert_eq!(converted.batch.num_rows(), built.points);
        let back = metric_requests_from_batch(&converted.batch).expect("converts back");
        assert_eq!(back, built.request, "the generated requests are grouped as Skein regroups them");
    }
}
