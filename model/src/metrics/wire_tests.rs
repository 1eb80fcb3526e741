//! The metrics wire reader against prost on the same bytes: same batch,
//! same shards, same counts and messages, or the same error.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, number_data_point,
};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

use super::test_gen::{Msg, Rng, reencode, request};
use super::tests::sample_request;
use super::wire::metrics_view;
use super::{metrics_to_arrow, metrics_to_arrow_from_protobuf};
use crate::wire::Unsupported;
use crate::{ConvertLimits, ModelError};

const LIMITS: [ConvertLimits; 2] =
    [ConvertLimits { max_attribute_value_bytes: 64 * 1024 }, ConvertLimits { max_attribute_value_bytes: 5 }];

/// Both paths convert `bytes` to the same result, under every limit and
/// shard count tried.
fn assert_same(bytes: &[u8]) {
    let request = ExportMetricsServiceRequest::decode(bytes).expect("prost decodes");
    for limits in &LIMITS {
        for shards in [1, 3] {
            let expected = metrics_to_arrow(&request, limits, shards).expect("converts");
            let actual = metrics_to_arrow_from_protobuf(bytes, limits, shards).expect("converts");
            // RecordBatch equality compares float bits: NaN payloads and -0.0 count.
            assert_eq!(actual.batch, expected.batch);
            assert_eq!(actual.shard_of_row, expected.shard_of_row);
            assert_eq!(actual.rejected, expected.rejected);
            assert_eq!(actual.truncated_values, expected.truncated_values);
            assert_eq!(actual.first_error, expected.first_error);
        }
    }
}

/// Appends one length-delimited field.
fn field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A request holding one metric given as raw `Metric` bytes.
fn wrap_metric(metric: &[u8]) -> Vec<u8> {
    let (mut scope_metrics, mut resource_metrics, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    field(&mut scope_metrics, 2, metric);
    field(&mut resource_metrics, 2, &scope_metrics);
    field(&mut bytes, 1, &resource_metrics);
    bytes
}

#[test]
fn every_point_type_and_field_matches_prost() {
    let bytes = sample_request().encode_to_vec();
    assert!(metrics_view(&bytes).is_ok(), "the sample takes the fast path");
    assert_same(&bytes);
}

#[test]
fn generated_requests_match_prost() {
    let (mut rows, mut rejected) = (0, 0);
    for seed in 0..400 {
        let mut rng = Rng::new(seed);
        let request = request(&mut rng);
        let bytes = request.encode_to_vec();
        assert!(metrics_view(&bytes).is_ok(), "seed {seed}: prost's own encoding takes the fast path");
        assert_same(&bytes);
        let converted = metrics_to_arrow(&request, &LIMITS[0], 1).expect("converts");
        rows += converted.batch.num_rows();
        rejected += converted.rejected;
    }
    // The generator exercises both accepted and refused points.
    assert!(rows > 1500 && rejected > 200, "{rows} rows, {rejected} rejected");
}

/// Fields reordered, unknown fields added, repeated numbers unpacked or
/// split into several packed runs: all valid protobuf, all on the fast path.
#[test]
fn reencoded_requests_take_the_fast_path_and_match_prost() {
    for seed in 0..400 {
        let mut rng = Rng::new(seed);
        let original = request(&mut rng).encode_to_vec();
        let bytes = reencode(&mut rng, Msg::Request, &original);
        // Compared re-encoded by prost (deterministic), since NaN != NaN.
        let canonical = |b: &[u8]| ExportMetricsServiceRequest::decode(b).expect("decodes").encode_to_vec();
        assert!(canonical(&bytes) == original, "seed {seed}: the re-encoding means the same request");
        assert!(metrics_view(&bytes).is_ok(), "seed {seed}");
        assert_same(&bytes);
    }
}

#[test]
fn empty_messages_match_prost() {
    assert_same(&[]);
    let empty = |m: Metric| wrap_metric(&m.encode_to_vec());
    // A metric with nothing set (no data: rejected), and one with an empty gauge.
    assert_same(&empty(Metric::default()));
    assert_same(&empty(Metric { name: "g".into(), data: Some(Data::Gauge(Gauge::default())), ..Metric::default() }));
    // Empty resource, scope and points.
    let mut scope_metrics = Vec::new();
    field(&mut scope_metrics, 1, &[]);
    let mut resource_metrics = Vec::new();
    field(&mut resource_metrics, 1, &[]);
    field(&mut resource_metrics, 2, &scope_metrics);
    let mut bytes = Vec::new();
    field(&mut bytes, 1, &resource_metrics);
    field(&mut bytes, 1, &[]);
    assert!(metrics_view(&bytes).is_ok());
    assert_same(&bytes);
    let mut gauge = Vec::new();
    field(&mut gauge, 1, &[]);
    let mut metric = Vec::new();
    field(&mut metric, 1, b"g");
    field(&mut metric, 5, &gauge);
    assert_same(&wrap_metric(&metric));
}

#[test]
fn repeated_scalars_and_oneofs_keep_the_last_value() {
    let point = NumberDataPoint {
        time_unix_nano: 5,
        value: Some(number_data_point::Value::AsDouble(1.5)),
        ..Default::default()
    };
    let mut point = point.encode_to_vec();
    // as_int after as_double: the oneof takes the int; time sent again.
    encode_key(6, WireType::SixtyFourBit, &mut point);
    point.extend_from_slice(&(-7i64).to_le_bytes());
    encode_key(3, WireType::SixtyFourBit, &mut point);
    point.extend_from_slice(&9u64.to_le_bytes());
    let mut gauge = Vec::new();
    field(&mut gauge, 1, &point);
    let mut metric = Vec::new();
    field(&mut metric, 1, b"first");
    field(&mut metric, 5, &gauge);
    field(&mut metric, 1, b"second");
    let bytes = wrap_metric(&metric);
    assert!(metrics_view(&bytes).is_ok());
    assert_same(&bytes);
}

#[test]
fn merged_singular_messages_fall_back_to_prost() {
    let request = sample_request();
    let resource_metrics = request.resource_metrics[0].encode_to_vec();
    let resource = request.resource_metrics[0].resource.as_ref().expect("resource").encode_to_vec();
    let scope_metrics = request.resource_metrics[0].scope_metrics[1].encode_to_vec();
    let scope = request.resource_metrics[0].scope_metrics[1].scope.as_ref().expect("scope").encode_to_vec();
    let metrics = &request.resource_metrics[0].scope_metrics[1].metrics;
    let (histogram, exponential) = (&metrics[0], &metrics[1]);
    let data_of = |m: &Metric| match m.data.as_ref().expect("data") {
        Data::Histogram(h) => (9, h.encode_to_vec()),
        Data::ExponentialHistogram(e) => (10, e.encode_to_vec()),
        _ => unreachable!("the sample's second scope holds histograms"),
    };
    let mut cases = Vec::new();
    // The resource twice (attributes add up).
    let mut twice = resource_metrics.clone();
    field(&mut twice, 1, &resource);
    let mut bytes = Vec::new();
    field(&mut bytes, 1, &twice);
    cases.push(bytes);
    // The scope twice.
    let mut twice = scope_metrics.clone();
    field(&mut twice, 1, &scope);
    let mut rm = Vec::new();
    field(&mut rm, 2, &twice);
    let mut bytes = Vec::new();
    field(&mut bytes, 1, &rm);
    cases.push(bytes);
    // A metric's data twice: same type (merged), other type (replaced).
    let (number, data) = data_of(histogram);
    let mut same = histogram.encode_to_vec();
    field(&mut same, number, &data);
    cases.push(wrap_metric(&same));
    let (number, data) = data_of(exponential);
    let mut other = histogram.encode_to_vec();
    field(&mut other, number, &data);
    cases.push(wrap_metric(&other));
    // Positive buckets twice (counts add up), and an attribute's value twice.
    let Some(Data::ExponentialHistogram(e)) = exponential.data.as_ref() else { unreachable!() };
    let buckets = e.data_points[0].positive.as_ref().expect("buckets").encode_to_vec();
    let mut point = e.data_points[0].encode_to_vec();
    field(&mut point, 8, &buckets);
    let mut data = Vec::new();
    field(&mut data, 1, &point);
    let mut metric = Vec::new();
    field(&mut metric, 1, b"exp");
    field(&mut metric, 10, &data);
    cases.push(wrap_metric(&metric));
    let mut kv = KeyValue { key: "k".into(), value: Some(str_value("a")), key_strindex: 0 }.encode_to_vec();
    field(&mut kv, 2, &str_value("b").encode_to_vec());
    let mut point = NumberDataPoint { time_unix_nano: 1, ..Default::default() }.encode_to_vec();
    field(&mut point, 7, &kv);
    let mut gauge = Vec::new();
    field(&mut gauge, 1, &point);
    let mut metric = Vec::new();
    field(&mut metric, 1, b"g");
    field(&mut metric, 5, &gauge);
    cases.push(wrap_metric(&metric));
    for (i, bytes) in cases.iter().enumerate() {
        assert_eq!(metrics_view(bytes).err(), Some(Unsupported), "case {i}");
        assert_same(bytes);
    }
}

fn str_value(s: &str) -> AnyValue {
    AnyValue { value: Some(Value::StringValue(s.into())) }
}

#[test]
fn deeply_nested_values_are_left_to_prost() {
    // Arrays nested past the reader's budget: prost decides, and past its
    // own recursion limit it refuses the request.
    for depth in [20, 30, 60] {
        let mut value = str_value("leaf");
        for _ in 0..depth {
            value = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![value] })) };
        }
        let point = NumberDataPoint {
            time_unix_nano: 1,
            attributes: vec![KeyValue { key: "deep".into(), value: Some(value), key_strindex: 0 }],
            ..Default::default()
        };
        let metric = Metric {
            name: "g".into(),
            data: Some(Data::Gauge(Gauge { data_points: vec![point] })),
            ..Metric::default()
        };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics { metrics: vec![metric], ..Default::default() }],
                ..Default::default()
            }],
        };
        let bytes = request.encode_to_vec();
        assert_eq!(metrics_view(&bytes).is_ok(), depth <= 24, "depth {depth}");
        match ExportMetricsServiceRequest::decode(&bytes[..]) {
            Ok(_) => assert_same(&bytes),
            Err(_) => {
                let error = metrics_to_arrow_from_protobuf(&bytes, &LIMITS[0], 1).expect_err("refused");
                assert!(matches!(error, ModelError::InvalidProtobuf(_)), "{error}");
            }
        }
    }
}

#[test]
fn malformed_bytes_get_prosts_error() {
    let sample = sample_request().encode_to_vec();
    let mut not_utf8 = Vec::new();
    field(&mut not_utf8, 1, &[0xff, 0xfe]);
    // Packed doubles whose length is not a multiple of 8.
    let mut point = Vec::new();
    field(&mut point, 7, &[0; 12]);
    let mut data = Vec::new();
    field(&mut data, 1, &point);
    let mut ragged = Vec::new();
    field(&mut ragged, 1, b"h");
    field(&mut ragged, 9, &data);
    // A string field sent as a varint.
    let mut wrong_wire = Vec::new();
    encode_key(1, WireType::Varint, &mut wrong_wire);
    encode_varint(3, &mut wrong_wire);
    for bytes in [&sample[..40], &wrap_metric(&not_utf8), &wrap_metric(&ragged), &wrap_metric(&wrong_wire)] {
        assert!(metrics_view(bytes).is_err());
        let error = metrics_to_arrow_from_protobuf(bytes, &LIMITS[0], 1).expect_err("refused");
        assert!(matches!(error, ModelError::InvalidProtobuf(_)), "{error}");
    }
}
