//! The metric schema is lossless and the conversion rules hold.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, UInt64Type};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, exemplar, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::series::{series_hash, series_id};
use super::{col, metric_requests_from_batch, metric_schema, metrics_to_arrow, shard_for_series};
use crate::ConvertLimits;

const T0: u64 = 1_700_000_000_000_000_000;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), key_strindex: 0 }
}

fn s(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

fn all_types() -> Vec<KeyValue> {
    vec![
        s("str", "ünïcødé ✓ 日本"),
        kv("bool", Value::BoolValue(true)),
        kv("int", Value::IntValue(-42)),
        kv("double", Value::DoubleValue(3.25)),
        kv("bytes", Value::BytesValue(vec![0xde, 0xad, 0xbe, 0xef])),
        kv(
            "array",
            Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue { value: Some(Value::StringValue("a".into())) },
                    AnyValue { value: Some(Value::IntValue(1)) },
                ],
            }),
        ),
        kv("kvlist", Value::KvlistValue(KeyValueList { values: vec![kv("nested", Value::BoolValue(false))] })),
        KeyValue { key: "empty".into(), value: Some(AnyValue { value: None }), key_strindex: 0 },
    ]
}

fn exemplars() -> Vec<Exemplar> {
    vec![
        Exemplar {
            filtered_attributes: all_types(),
            time_unix_nano: T0 + 5,
            span_id: vec![0x11; 8],
            trace_id: vec![0xab; 16],
            value: Some(exemplar::Value::AsDouble(0.25)),
        },
        Exemplar {
            filtered_attributes: vec![s("user", "u1")],
            time_unix_nano: T0 + 6,
            span_id: vec![],
            trace_id: vec![],
            value: Some(exemplar::Value::AsInt(-7)),
        },
        Exemplar { time_unix_nano: T0 + 7, value: None, ..Default::default() },
    ]
}

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name} description"),
        unit: "ms".into(),
        metadata: vec![],
        data: Some(data),
    }
}

fn number(time: u64, value: Option<number_data_point::Value>, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint { attributes, start_time_unix_nano: T0, time_unix_nano: time, exemplars: vec![], flags: 0, value }
}

/// Every point type and every field, in two resources and three scopes.
pub(super) fn sample_request() -> ExportMetricsServiceRequest {
    use number_data_point::Value::{AsDouble, AsInt};
    let gauge = Metric {
        metadata: all_types(),
        unit: String::new(),
        ..metric(
            "system.cpu.utilization",
            Data::Gauge(Gauge {
                data_points: vec![
                    NumberDataPoint {
                        start_time_unix_nano: 0,
                        exemplars: exemplars(),
                        ..number(T0, Some(AsDouble(0.5)), all_types())
                    },
                    number(T0 + 1, Some(AsInt(i64::MIN)), vec![s("cpu", "1")]),
                    // Flag bit 0: no recorded value.
                    NumberDataPoint { flags: 1, ..number(T0 + 2, None, vec![]) },
                ],
            }),
        )
    };
    let counter = metric(
        "http.server.requests",
        Data::Sum(Sum {
            data_points: vec![
                number(T0 + 10, Some(AsInt(i64::MAX)), vec![s("route", "/a"), kv("code", Value::IntValue(200))]),
                NumberDataPoint { exemplars: exemplars(), ..number(T0 + 11, Some(AsInt(5)), vec![s("route", "/b")]) },
            ],
            aggregation_temporality: 2,
            is_monotonic: true,
        }),
    );
    let updown = metric(
        "queue.size",
        Data::Sum(Sum {
            data_points: vec![number(T0 + 12, Some(AsDouble(-1.5e-300)), vec![])],
            aggregation_temporality: 1,
            is_monotonic: false,
        }),
    );
    let odd_temporality = metric(
        "odd.sum",
        Data::Sum(Sum {
            data_points: vec![number(T0 + 13, Some(AsDouble(1.0)), vec![])],
            aggregation_temporality: 7,
            is_monotonic: false,
        }),
    );
    let unspecified = metric(
        "unspecified.sum",
        Data::Sum(Sum {
            data_points: vec![number(T0 + 14, Some(AsDouble(2.0)), vec![])],
            aggregation_temporality: 0,
            is_monotonic: true,
        }),
    );
    let histogram = metric(
        "http.server.duration",
        Data::Histogram(Histogram {
            data_points: vec![
                HistogramDataPoint {
                    attributes: vec![s("route", "/a")],
                    start_time_unix_nano: T0,
                    time_unix_nano: T0 + 20,
                    count: 10,
                    sum: Some(123.5),
                    bucket_counts: vec![1, 2, 3, 4],
                    explicit_bounds: vec![-1.0, 5.0, 10.0],
                    exemplars: exemplars(),
                    flags: 0,
                    min: Some(-3.0),
                    max: Some(99.0),
                },
                // No sum (negative measurements), no min/max.
                HistogramDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: T0,
                    time_unix_nano: T0 + 21,
                    count: 2,
                    sum: None,
                    bucket_counts: vec![2],
                    explicit_bounds: vec![],
                    exemplars: vec![],
                    flags: 0,
                    min: None,
                    max: None,
                },
                // Bounds without counts (allowed: no buckets recorded).
                HistogramDataPoint {
                    time_unix_nano: T0 + 22,
                    explicit_bounds: vec![1.0, 2.0],
                    flags: 1,
                    ..Default::default()
                },
            ],
            aggregation_temporality: 2,
        }),
    );
    let exp = metric(
        "rpc.latency",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![
                ExponentialHistogramDataPoint {
                    attributes: vec![kv("shard", Value::IntValue(3))],
                    start_time_unix_nano: T0,
                    time_unix_nano: T0 + 30,
                    count: 20,
                    sum: Some(-4.5),
                    scale: -2,
                    zero_count: 3,
                    positive: Some(Buckets { offset: 5, bucket_counts: vec![1, 0, 7] }),
                    negative: Some(Buckets { offset: -3, bucket_counts: vec![4, 5] }),
                    flags: 0,
                    exemplars: exemplars(),
                    min: Some(-100.0),
                    max: Some(1e6),
                    zero_threshold: 1e-9,
                },
                ExponentialHistogramDataPoint {
                    time_unix_nano: T0 + 31,
                    scale: 20,
                    positive: Some(Buckets { offset: 0, bucket_counts: vec![] }),
                    negative: None,
                    ..Default::default()
                },
                ExponentialHistogramDataPoint { time_unix_nano: T0 + 32, ..Default::default() },
            ],
            aggregation_temporality: 1,
        }),
    );
    let summary = metric(
        "gc.pause",
        Data::Summary(Summary {
            data_points: vec![
                SummaryDataPoint {
                    attributes: vec![s("gen", "old")],
                    start_time_unix_nano: T0,
                    time_unix_nano: T0 + 40,
                    count: 9,
                    sum: 12.75,
                    quantile_values: vec![
                        ValueAtQuantile { quantile: 0.0, value: 0.1 },
                        ValueAtQuantile { quantile: 0.5, value: 1.5 },
                        ValueAtQuantile { quantile: 1.0, value: 4.0 },
                    ],
                    flags: 0,
                },
                SummaryDataPoint { time_unix_nano: T0 + 41, ..Default::default() },
            ],
        }),
    );
    ExportMetricsServiceRequest {
        resource_metrics: vec![
            ResourceMetrics {
                resource: Some(Resource {
                    attributes: [vec![s("service.name", "checkout")], all_types()].concat(),
                    dropped_attributes_count: 2,
                    entity_refs: vec![],
                }),
                scope_metrics: vec![
                    ScopeMetrics {
                        scope: Some(InstrumentationScope {
                            name: "io.opentelemetry.runtime".into(),
                            version: "1.2.3".into(),
                            attributes: all_types(),
                            dropped_attributes_count: 3,
                        }),
                        metrics: vec![gauge, counter, updown, odd_temporality, unspecified],
                        schema_url: "https://opentelemetry.io/schemas/1.24.0".into(),
                    },
                    ScopeMetrics {
                        scope: Some(InstrumentationScope { name: "http".into(), ..Default::default() }),
                        metrics: vec![histogram, exp],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
            },
            ResourceMetrics {
                resource: Some(Resource::default()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope::default()),
                    metrics: vec![summary],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

fn one_metric(m: Metric) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource::default()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope::default()),
                metrics: vec![m],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn convert(request: &ExportMetricsServiceRequest) -> super::PointBatch {
    metrics_to_arrow(request, &ConvertLimits::default(), 1).expect("converts")
}

#[test]
fn otlp_arrow_otlp_is_identity() {
    let request = sample_request();
    let converted = convert(&request);
    assert_eq!(converted.rejected, 0, "{:?}", converted.first_error);
    assert_eq!(converted.truncated_values, 0);
    assert_eq!(converted.first_error, None);
    assert_eq!(converted.batch.num_rows(), 16);
    assert_eq!(converted.batch.schema(), metric_schema());
    let back = metric_requests_from_batch(&converted.batch).expect("decodes");
    assert_eq!(back, request);
}

#[test]
fn split_batches_round_trip_too() {
    let request = sample_request();
    let converted = metrics_to_arrow(&request, &ConvertLimits::default(), 3).expect("converts");
    for (_, part) in converted.split_by_shard(3).expect("splits") {
        let back = metric_requests_from_batch(&part).expect("decodes");
        let again = convert(&back);
        assert_eq!(metric_requests_from_batch(&again.batch).expect("decodes"), back);
    }
}

#[test]
fn columns_that_do_not_apply_are_null() {
    let converted = convert(&sample_request());
    let b = &converted.batch;
    let column = |name: &str| b.column_by_name(name).expect("column exists").clone();
    let types = column(col::METRIC_TYPE);
    let types = types.as_string::<i32>();
    let service = column(col::SERVICE_NAME);
    assert_eq!(service.as_string::<i32>().value(0), "checkout");
    assert_eq!(service.as_string::<i32>().value(b.num_rows() - 1), "unknown_service");
    let expect_null = |name: &str, applies: &[&str]| {
        let c = column(name);
        for row in 0..b.num_rows() {
            let ty = types.value(row);
            if !applies.contains(&ty) {
                assert!(c.is_null(row), "{name} should be null for {ty}");
            }
        }
    };
    expect_null(col::VALUE, &["gauge", "sum"]);
    expect_null(col::VALUE_INT, &["gauge", "sum"]);
    expect_null(col::IS_MONOTONIC, &["sum"]);
    expect_null(col::AGGREGATION_TEMPORALITY, &["sum", "histogram", "exponential_histogram"]);
    expect_null(col::COUNT, &["histogram", "exponential_histogram", "summary"]);
    expect_null(col::EXPLICIT_BOUNDS, &["histogram"]);
    expect_null(col::BUCKET_COUNTS, &["histogram"]);
    expect_null(col::SCALE, &["exponential_histogram"]);
    expect_null(col::ZERO_THRESHOLD, &["exponential_histogram"]);
    expect_null(col::POSITIVE_BUCKET_COUNTS, &["exponential_histogram"]);
    expect_null(col::QUANTILE_VALUES, &["summary"]);
    // Gauges have no start time; an int value is also in `value`.
    assert!(column(col::START_TIME).is_null(0));
    let value = column(col::VALUE);
    assert_eq!(value.as_primitive::<Float64Type>().value(1), i64::MIN as f64);
    let temporality = column(col::AGGREGATION_TEMPORALITY);
    let temporality = temporality.as_string::<i32>();
    assert_eq!(temporality.value(3), "cumulative");
    assert_eq!(temporality.value(5), "delta");
    assert_eq!(temporality.value(6), "7");
    assert_eq!(temporality.value(7), "unspecified");
    let counts = column(col::COUNT);
    assert_eq!(counts.as_primitive::<UInt64Type>().value(8), 10);
}

fn rejected(m: Metric) -> super::PointBatch {
    let mut request = one_metric(m);
    // A valid neighbour must survive every refusal.
    request.resource_metrics[0].scope_metrics[0].metrics.push(metric(
        "ok",
        Data::Gauge(Gauge { data_points: vec![number(T0, Some(number_data_point::Value::AsInt(1)), vec![])] }),
    ));
    let converted = convert(&request);
    assert_eq!(converted.batch.num_rows(), 1, "the valid metric is kept");
    converted
}

fn gauge_point(point: NumberDataPoint) -> Metric {
    metric("g", Data::Gauge(Gauge { data_points: vec![point] }))
}

fn histogram_point(bounds: Vec<f64>, counts: Vec<u64>) -> Metric {
    metric(
        "h",
        Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T0,
                explicit_bounds: bounds,
                bucket_counts: counts,
                ..Default::default()
            }],
            aggregation_temporality: 2,
        }),
    )
}

fn assert_rejected(m: Metric, count: u64, reason: &str) {
    let converted = rejected(m);
    assert_eq!(converted.rejected, count);
    let error = converted.first_error.expect("has a reason");
    assert!(error.contains(reason), "{error:?} should mention {reason:?}");
}

#[test]
fn empty_names_are_rejected_per_point() {
    let two = Gauge { data_points: vec![number(T0, None, vec![]), number(T0 + 1, None, vec![])] };
    assert_rejected(metric("", Data::Gauge(two)), 2, "name must not be empty");
}

#[test]
fn metrics_without_data_are_rejected() {
    assert_rejected(Metric { data: None, ..metric("nodata", Data::Gauge(Gauge::default())) }, 1, "no data");
}

#[test]
fn points_without_time_are_rejected() {
    assert_rejected(gauge_point(number(0, None, vec![])), 1, "time_unix_nano");
}

#[test]
fn histograms_with_wrong_bucket_counts_are_rejected() {
    assert_rejected(histogram_point(vec![1.0, 2.0], vec![1, 2]), 1, "3)");
    assert_rejected(histogram_point(vec![], vec![1, 2]), 1, "bucket counts");
}

#[test]
fn histograms_with_unordered_bounds_are_rejected() {
    assert_rejected(histogram_point(vec![1.0, 1.0], vec![]), 1, "strictly increasing");
    assert_rejected(histogram_point(vec![2.0, 1.0], vec![0, 0, 0]), 1, "strictly increasing");
    assert_rejected(histogram_point(vec![0.0, f64::NAN], vec![]), 1, "strictly increasing");
    assert_rejected(histogram_point(vec![f64::NAN], vec![1, 2]), 1, "strictly increasing");
}

#[test]
fn exemplars_with_bad_ids_are_rejected() {
    let with = |e: Exemplar| gauge_point(NumberDataPoint { exemplars: vec![e], ..number(T0, None, vec![]) });
    assert_rejected(with(Exemplar { trace_id: vec![1; 15], ..Default::default() }), 1, "trace_id");
    assert_rejected(with(Exemplar { span_id: vec![1; 9], ..Default::default() }), 1, "span_id");
}

#[test]
fn long_values_are_truncated() {
    let point = number(T0, None, vec![s("big", &"é".repeat(10)), s("small", "ok")]);
    let mut request = one_metric(gauge_point(point));
    request.resource_metrics[0].resource = Some(Resource { attributes: vec![s("r", "123456")], ..Default::default() });
    let limits = ConvertLimits { max_attribute_value_bytes: 5 };
    let converted = metrics_to_arrow(&request, &limits, 1).expect("converts");
    assert_eq!(converted.truncated_values, 2);
    assert!(converted.first_error.expect("reported").contains("truncated"));
    let back = metric_requests_from_batch(&converted.batch).expect("decodes");
    let rm = &back.resource_metrics[0];
    let Some(Data::Gauge(g)) = &rm.scope_metrics[0].metrics[0].data else { panic!("a gauge") };
    assert_eq!(g.data_points[0].attributes, vec![s("big", "éé"), s("small", "ok")]);
    assert_eq!(rm.resource.as_ref().expect("resource").attributes, vec![s("r", "12345")]);
    // The series is identified by the stored (truncated) values.
    let hash = series_hash("g", &[s("r", "12345")], &g.data_points[0].attributes, &ConvertLimits::default());
    let ids = converted.batch.column_by_name(col::SERIES_ID).expect("column").clone();
    assert_eq!(ids.as_string::<i32>().value(0), series_id(hash));
}

#[test]
fn series_id_is_stable() {
    let resource = [s("service.name", "api"), kv("host.cpus", Value::IntValue(8))];
    let attrs = [s("route", "/a"), kv("code", Value::IntValue(200))];
    let hash = series_hash("http.requests", &resource, &attrs, &ConvertLimits::default());
    // The documented canonical encoding, spelled out.
    let mut key = Vec::new();
    let mut put = |bytes: &[u8]| {
        key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        key.extend_from_slice(bytes);
    };
    put(b"http.requests");
    let entries = |key: &mut Vec<u8>, list: &[(&str, u8, &str)]| {
        key.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for (k, ty, v) in list {
            key.extend_from_slice(&(k.len() as u32).to_le_bytes());
            key.extend_from_slice(k.as_bytes());
            key.push(*ty);
            key.extend_from_slice(&(v.len() as u32).to_le_bytes());
            key.extend_from_slice(v.as_bytes());
        }
    };
    entries(&mut key, &[("host.cpus", b'i', "8"), ("service.name", b's', "api")]);
    entries(&mut key, &[("code", b'i', "200"), ("route", b's', "/a")]);
    assert_eq!(hash, xxhash_rust::xxh3::xxh3_64(&key));
    // A fixed value: changing the hashing re-shards every series.
    assert_eq!(series_id(hash), "2e1e192e5e9f859d");
}

#[test]
fn series_identity_is_typed_sorted_and_scope_free() {
    let limits = ConvertLimits::default();
    let h = |name: &str, res: &[KeyValue], attrs: &[KeyValue]| series_hash(name, res, attrs, &limits);
    let base = h("m", &[s("service.name", "a")], &[s("k", "1"), s("j", "2")]);
    assert_eq!(base, h("m", &[s("service.name", "a")], &[s("j", "2"), s("k", "1")]), "key order does not matter");
    assert_ne!(base, h("m", &[s("service.name", "a")], &[kv("k", Value::IntValue(1)), s("j", "2")]), "types matter");
    assert_ne!(base, h("n", &[s("service.name", "a")], &[s("k", "1"), s("j", "2")]), "the name matters");
    assert_ne!(base, h("m", &[s("service.name", "b")], &[s("k", "1"), s("j", "2")]), "the resource matters");
    assert_ne!(h("m", &[s("k", "1")], &[]), h("m", &[], &[s("k", "1")]), "resource and point attributes differ");
    assert_ne!(h("m", &[], &[s("ab", "c")]), h("m", &[], &[s("a", "bc")]), "lengths delimit");

    // Scope is not part of the identity: one series across two scopes.
    let point = || number(T0, Some(number_data_point::Value::AsInt(1)), vec![s("k", "1")]);
    let mut request = one_metric(gauge_point(point()));
    let mut other_scope = request.resource_metrics[0].scope_metrics[0].clone();
    other_scope.scope = Some(InstrumentationScope { name: "other".into(), ..Default::default() });
    request.resource_metrics[0].scope_metrics.push(other_scope);
    let converted = convert(&request);
    let ids = converted.batch.column_by_name(col::SERIES_ID).expect("column").clone();
    let ids = ids.as_string::<i32>();
    assert_eq!(ids.value(0), ids.value(1));
    assert_eq!(ids.value(0), series_id(h("g", &[], &[s("k", "1")])));
    assert_eq!(ids.value(0).len(), 16);
}

#[test]
fn split_by_shard_keeps_series_together() {
    let points: Vec<NumberDataPoint> = (0..64)
        .map(|i| {
            number(T0 + i, Some(number_data_point::Value::AsInt(1)), vec![kv("n", Value::IntValue((i % 16) as i64))])
        })
        .collect();
    let request = one_metric(metric("m", Data::Gauge(Gauge { data_points: points })));
    assert!(convert(&request).shard_of_row.is_empty(), "one shard: no per-row shards");
    let converted = metrics_to_arrow(&request, &ConvertLimits::default(), 4).expect("converts");
    assert_eq!(converted.shard_of_row.len(), 64);
    let parts = converted.split_by_shard(4).expect("splits");
    assert!(parts.len() > 1, "16 series spread over several shards");
    let total: usize = parts.iter().map(|(_, b)| b.num_rows()).sum();
    assert_eq!(total, 64);
    for (shard, part) in &parts {
        let ids = part.column_by_name(col::SERIES_ID).expect("column").clone();
        let ids = ids.as_string::<i32>();
        for row in 0..part.num_rows() {
            let hash = u64::from_str_radix(ids.value(row), 16).expect("hex");
            assert_eq!(shard_for_series(hash, 4), *shard);
        }
    }
}

#[test]
fn shard_for_series_is_modulo() {
    assert_eq!(shard_for_series(u64::MAX, 1), 0);
    assert_eq!(shard_for_series(u64::MAX, 0), 0);
    assert_eq!(shard_for_series(10, 4), 2);
}

#[test]
fn unknown_metric_types_are_corrupt() {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use std::sync::Arc;
    let converted = convert(&one_metric(gauge_point(number(T0, None, vec![]))));
    let b = &converted.batch;
    let mut columns: Vec<ArrayRef> = b.columns().to_vec();
    let index = b.schema().index_of(col::METRIC_TYPE).expect("column exists");
    columns[index] = Arc::new(StringArray::from(vec!["bogus"]));
    let bad = RecordBatch::try_new(b.schema(), columns).expect("same schema");
    let error = metric_requests_from_batch(&bad).expect_err("refused").to_string();
    assert!(error.contains("unknown metric type"), "{error}");
    let empty = RecordBatch::new_empty(metric_schema());
    assert_eq!(metric_requests_from_batch(&empty).expect("decodes"), ExportMetricsServiceRequest::default());
}
