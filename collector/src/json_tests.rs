//! OTLP/JSON decoding as the specification describes it, for traces and
//! metrics: hex IDs (any case), integer enums, lowerCamelCase names, 64-bit
//! integers as strings or numbers, unknown fields ignored.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{exemplar, number_data_point};

use crate::codec::decode_json;
use crate::signal::{Metrics, Traces};

/// `examples/trace.json` from opentelemetry-proto, verbatim.
pub(crate) const SPEC_EXAMPLE: &str = r#"{
  "resourceSpans": [
    {
      "resource": {
        "attributes": [
          {
            "key": "service.name",
            "value": {
              "stringValue": "my.service"
            }
          }
        ]
      },
      "scopeSpans": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [
              {
                "key": "my.scope.attribute",
                "value": {
                  "stringValue": "some scope attribute"
                }
              }
            ]
          },
          "spans": [
            {
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "parentSpanId": "EEE19B7EC3C1B173",
              "name": "I'm a server span",
              "startTimeUnixNano": "1544712660000000000",
              "endTimeUnixNano": "1544712661000000000",
              "kind": 2,
              "attributes": [
                {
                  "key": "my.span.attr",
                  "value": {
                    "stringValue": "some value"
                  }
                }
              ]
            }
          ]
        }
      ]
    }
  ]
}"#;

/// Numbers where the example has strings, every value type, events, links,
/// status, and unknown fields at every level.
pub(crate) const RICH_EXAMPLE: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}], "futureResourceField": 1},
    "scopeSpans": [{
      "scope": {"name": "lib"},
      "spans": [{
        "traceId": "0102030405060708090a0b0c0d0e0f10",
        "spanId": "0102030405060708",
        "name": "numeric",
        "kind": 3,
        "startTimeUnixNano": 1544712660000000000,
        "endTimeUnixNano": "1544712660500000000",
        "flags": 257,
        "attributes": [
          {"key": "int.string", "value": {"intValue": "-9007199254740993"}},
          {"key": "int.number", "value": {"intValue": 42}},
          {"key": "double", "value": {"doubleValue": 1.5}},
          {"key": "bool", "value": {"boolValue": true}},
          {"key": "bytes", "value": {"bytesValue": "3q2+7w=="}},
          {"key": "array", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "7"}]}}},
          {"key": "kvlist", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": false}}]}}},
          {"key": "future.type", "value": {"futureValue": {"x": 1}}}
        ],
        "events": [{"timeUnixNano": "1544712660100000000", "name": "exception", "attributes": [], "futureEventField": "x"}],
        "links": [{"traceId": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "spanId": "BBBBBBBBBBBBBBBB", "flags": 1}],
        "status": {"code": 2, "message": "boom"},
        "futureSpanField": {"nested": [1, 2, 3]}
      }]
    }]
  }],
  "futureTopLevelField": true
}"#;

/// `examples/metrics.json` from opentelemetry-proto, verbatim.
pub(crate) const METRICS_SPEC_EXAMPLE: &str = r#"{
  "resourceMetrics": [
    {
      "resource": {
        "attributes": [
          {
            "key": "service.name",
            "value": {
              "stringValue": "my.service"
            }
          }
        ]
      },
      "scopeMetrics": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [
              {
                "key": "my.scope.attribute",
                "value": {
                  "stringValue": "some scope attribute"
                }
              }
            ]
          },
          "metrics": [
            {
              "name": "my.counter",
              "unit": "1",
              "description": "I am a Counter",
              "sum": {
                "aggregationTemporality": 1,
                "isMonotonic": true,
                "dataPoints": [
                  {
                    "asDouble": 5,
                    "startTimeUnixNano": 1544712660300000000,
                    "timeUnixNano": 1544712660300000000,
                    "attributes": [
                      {
                        "key": "my.counter.attr",
                        "value": {
                          "stringValue": "some value"
                        }
                      }
                    ]
                  }
                ]
              }
            },
            {
              "name": "my.gauge",
              "unit": "1",
              "description": "I am a Gauge",
              "gauge": {
                "dataPoints": [
                  {
                    "asDouble": 10,
                    "timeUnixNano": 1544712660300000000,
                    "attributes": [
                      {
                        "key": "my.gauge.attr",
                        "value": {
                          "stringValue": "some value"
                        }
                      }
                    ]
                  }
                ]
              }
            },
            {
              "name": "my.histogram",
              "unit": "1",
              "description": "I am a Histogram",
              "histogram": {
                "aggregationTemporality": 1,
                "dataPoints": [
                  {
                    "startTimeUnixNano": 1544712660300000000,
                    "timeUnixNano": 1544712660300000000,
                    "count": 2,
                    "sum": 2,
                    "bucketCounts": [1,1],
                    "explicitBounds": [1],
                    "min": 0,
                    "max": 2,
                    "attributes": [
                      {
                        "key": "my.histogram.attr",
                        "value": {
                          "stringValue": "some value"
                        }
                      }
                    ]
                  }
                ]
              }
            }
          ]
        }
      ]
    }
  ]
}"#;

/// Every point type; 64-bit integers as strings where the spec example has
/// numbers and the other way round; exemplar IDs in upper-case hex; unknown
/// fields (and an unknown metric type) at every level.
pub(crate) const METRICS_RICH_EXAMPLE: &str = r#"{
  "resourceMetrics": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}], "futureResourceField": 1},
    "schemaUrl": "https://opentelemetry.io/schemas/1.26.0",
    "scopeMetrics": [{
      "scope": {"name": "meter", "version": "1.2"},
      "metrics": [
        {"name": "queue.depth", "unit": "{item}", "futureMetricField": "x", "gauge": {"dataPoints": [
          {"timeUnixNano": "1544712660300000000", "asInt": "-9007199254740993",
           "attributes": [{"key": "queue", "value": {"stringValue": "a"}}]},
          {"timeUnixNano": 1544712660400000000, "asInt": 42, "flags": 1, "futurePointField": {"nested": [1]}}
        ]}},
        {"name": "requests", "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [
          {"startTimeUnixNano": "1544712600000000000", "timeUnixNano": "1544712660000000000", "asDouble": 12.5,
           "exemplars": [{"timeUnixNano": "1544712659000000000", "asInt": "3",
                          "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
                          "filteredAttributes": [{"key": "user", "value": {"stringValue": "u1"}}]}]}
        ]}},
        {"name": "latency", "unit": "ms", "histogram": {"aggregationTemporality": 1, "dataPoints": [
          {"startTimeUnixNano": 1544712600000000000, "timeUnixNano": "1544712660000000000", "count": "6",
           "sum": 12.5, "min": 0.5, "max": 9, "bucketCounts": ["1", 2, "3"], "explicitBounds": [1, 5.5]}
        ]}},
        {"name": "size", "unit": "By", "exponentialHistogram": {"aggregationTemporality": 2, "dataPoints": [
          {"timeUnixNano": "1544712660000000000", "count": 5, "sum": 40, "scale": -1, "zeroCount": "1",
           "zeroThreshold": 0.001, "positive": {"offset": -2, "bucketCounts": ["1", 2]},
           "negative": {"bucketCounts": [1]}}
        ]}},
        {"name": "gc.pause", "summary": {"dataPoints": [
          {"timeUnixNano": "1544712660000000000", "count": "4", "sum": 8,
           "quantileValues": [{"quantile": 0.5, "value": 1.5}, {"quantile": 0.99, "value": 3}]}
        ]}},
        {"name": "from.the.future", "futureType": {"dataPoints": [{"timeUnixNano": "1"}]}}
      ]
    }]
  }],
  "futureTopLevelField": true
}"#;

#[test]
fn decodes_the_spec_example() {
    let request = decode_json::<Traces>(SPEC_EXAMPLE.as_bytes()).expect("spec example decodes");
    let rs = &request.resource_spans[0];
    let service = &rs.resource.as_ref().expect("resource").attributes[0];
    assert_eq!(service.key, "service.name");
    let scope = rs.scope_spans[0].scope.as_ref().expect("scope");
    assert_eq!((scope.name.as_str(), scope.version.as_str()), ("my.library", "1.0.0"));
    let span = &rs.scope_spans[0].spans[0];
    // Upper-case hex IDs are accepted.
    assert_eq!(span.trace_id, const_hex_decode("5b8efff798038103d269b633813fc60c"));
    assert_eq!(span.span_id, const_hex_decode("eee19b7ec3c1b174"));
    assert_eq!(span.parent_span_id, const_hex_decode("eee19b7ec3c1b173"));
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(span.kind, 2);
    assert_eq!(span.name, "I'm a server span");
}

#[test]
fn decodes_numbers_strings_all_value_types_and_ignores_unknown_fields() {
    let request = decode_json::<Traces>(RICH_EXAMPLE.as_bytes()).expect("rich example decodes");
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.kind, 3);
    assert_eq!(span.flags, 257);
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_660_500_000_000);
    let value = |key: &str| {
        span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.clone())
    };
    assert_eq!(value("int.string"), Some(Value::IntValue(-9_007_199_254_740_993)));
    assert_eq!(value("int.number"), Some(Value::IntValue(42)));
    assert_eq!(value("double"), Some(Value::DoubleValue(1.5)));
    assert_eq!(value("bool"), Some(Value::BoolValue(true)));
    assert_eq!(value("bytes"), Some(Value::BytesValue(vec![0xde, 0xad, 0xbe, 0xef])));
    let Some(Value::ArrayValue(array)) = value("array") else { panic!("array value expected") };
    assert_eq!(array.values[1].value, Some(Value::IntValue(7)));
    assert!(matches!(value("kvlist"), Some(Value::KvlistValue(_))));
    // A value of a type this version does not know is empty, not an error.
    assert_eq!(value("future.type"), None);
    assert_eq!(span.events[0].time_unix_nano, 1_544_712_660_100_000_000);
    assert_eq!(span.links[0].trace_id, vec![0xaa; 16]);
    assert_eq!(span.links[0].span_id, vec![0xbb; 8]);
    let status = span.status.as_ref().expect("status");
    assert_eq!((status.code, status.message.as_str()), (2, "boom"));
}

#[test]
fn empty_object_is_an_empty_request() {
    let request = decode_json::<Traces>(b"{}").expect("empty object");
    assert!(request.resource_spans.is_empty());
}

#[test]
fn malformed_json_is_a_clear_invalid_request() {
    for (body, expect) in [
        (&b"{\"resourceSpans\": ["[..], "EOF"),
        (b"not json", "expected"),
        (br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}"#, "Invalid"),
        (br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}"#, "invalid digit"),
    ] {
        let err = decode_json::<Traces>(body).expect_err("malformed body");
        assert!(matches!(err, crate::CollectorError::InvalidRequest(_)), "{err}");
        let text = err.to_string();
        assert!(text.starts_with("invalid OTLP/JSON body"), "{text}");
        assert!(text.to_lowercase().contains(&expect.to_lowercase()), "{text} should mention {expect}");
    }
}

fn decode_metrics(body: &str) -> ExportMetricsServiceRequest {
    decode_json::<Metrics>(body.as_bytes()).expect("metrics example decodes")
}

#[test]
fn decodes_the_metrics_spec_example() {
    let request = decode_metrics(METRICS_SPEC_EXAMPLE);
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    let names: Vec<_> = metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["my.counter", "my.gauge", "my.histogram"]);
    let Some(Data::Sum(sum)) = &metrics[0].data else { panic!("sum expected") };
    assert_eq!((sum.aggregation_temporality, sum.is_monotonic), (1, true));
    assert_eq!(sum.data_points[0].value, Some(number_data_point::Value::AsDouble(5.0)));
    assert_eq!(sum.data_points[0].start_time_unix_nano, 1_544_712_660_300_000_000);
    let Some(Data::Gauge(gauge)) = &metrics[1].data else { panic!("gauge expected") };
    assert_eq!(gauge.data_points[0].start_time_unix_nano, 0);
    assert_eq!(gauge.data_points[0].time_unix_nano, 1_544_712_660_300_000_000);
    let Some(Data::Histogram(histogram)) = &metrics[2].data else { panic!("histogram expected") };
    let point = &histogram.data_points[0];
    assert_eq!((point.count, point.sum, point.min, point.max), (2, Some(2.0), Some(0.0), Some(2.0)));
    assert_eq!((&point.bucket_counts[..], &point.explicit_bounds[..]), (&[1, 1][..], &[1.0][..]));
}

#[test]
fn doubles_are_parsed_exactly() {
    // The shortest decimal forms round-trip to the same bits only with an
    // exact parser (serde_json's float_roundtrip); the default one is off
    // by an ulp on values like these.
    let values: [f64; 6] =
        [-1.5e-300, 2.2250738585072014e-308, 0.1 + 0.2, 1.7976931348623157e308, 5e-324, 123456.789e-5];
    for value in values {
        let text = format!("{value:?}");
        let body = format!(
            r#"{{"resourceMetrics": [{{"scopeMetrics": [{{"metrics": [{{"name": "m",
                "gauge": {{"dataPoints": [{{"timeUnixNano": "1", "asDouble": {text}}}]}}}}]}}]}}]}}"#
        );
        let request = decode_metrics(&body);
        let Some(Data::Gauge(gauge)) = &request.resource_metrics[0].scope_metrics[0].metrics[0].data else {
            panic!("gauge expected")
        };
        let Some(number_data_point::Value::AsDouble(parsed)) = gauge.data_points[0].value else {
            panic!("double expected")
        };
        assert_eq!(parsed.to_bits(), value.to_bits(), "{text} parsed as {parsed:?}");
    }
}

#[test]
fn decodes_every_point_type_with_string_and_number_int64s() {
    let request = decode_metrics(METRICS_RICH_EXAMPLE);
    assert_eq!(request.resource_metrics[0].schema_url, "https://opentelemetry.io/schemas/1.26.0");
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;

    let Some(Data::Gauge(gauge)) = &metrics[0].data else { panic!("gauge expected") };
    assert_eq!(gauge.data_points[0].value, Some(number_data_point::Value::AsInt(-9_007_199_254_740_993)));
    assert_eq!(gauge.data_points[0].time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(gauge.data_points[1].value, Some(number_data_point::Value::AsInt(42)));
    assert_eq!(gauge.data_points[1].time_unix_nano, 1_544_712_660_400_000_000);
    assert_eq!(gauge.data_points[1].flags, 1);

    let Some(Data::Sum(sum)) = &metrics[1].data else { panic!("sum expected") };
    assert_eq!((sum.aggregation_temporality, sum.is_monotonic), (2, true));
    let exemplar = &sum.data_points[0].exemplars[0];
    assert_eq!(exemplar.value, Some(exemplar::Value::AsInt(3)));
    assert_eq!(exemplar.trace_id, const_hex_decode("5b8efff798038103d269b633813fc60c"));
    assert_eq!(exemplar.span_id, const_hex_decode("eee19b7ec3c1b174"));
    assert_eq!(exemplar.time_unix_nano, 1_544_712_659_000_000_000);
    assert_eq!(exemplar.filtered_attributes[0].key, "user");

    let Some(Data::Histogram(histogram)) = &metrics[2].data else { panic!("histogram expected") };
    let point = &histogram.data_points[0];
    assert_eq!(point.start_time_unix_nano, 1_544_712_600_000_000_000);
    assert_eq!((point.count, point.sum, point.min, point.max), (6, Some(12.5), Some(0.5), Some(9.0)));
    assert_eq!((&point.bucket_counts[..], &point.explicit_bounds[..]), (&[1, 2, 3][..], &[1.0, 5.5][..]));

    let Some(Data::ExponentialHistogram(exp)) = &metrics[3].data else { panic!("exponential histogram expected") };
    let point = &exp.data_points[0];
    assert_eq!((point.count, point.sum, point.scale, point.zero_count), (5, Some(40.0), -1, 1));
    assert_eq!(point.zero_threshold, 0.001);
    let positive = point.positive.as_ref().expect("positive buckets");
    assert_eq!((positive.offset, &positive.bucket_counts[..]), (-2, &[1, 2][..]));
    let negative = point.negative.as_ref().expect("negative buckets");
    assert_eq!((negative.offset, &negative.bucket_counts[..]), (0, &[1][..]));

    let Some(Data::Summary(summary)) = &metrics[4].data else { panic!("summary expected") };
    let point = &summary.data_points[0];
    assert_eq!((point.count, point.sum), (4, 8.0));
    let quantiles: Vec<_> = point.quantile_values.iter().map(|q| (q.quantile, q.value)).collect();
    assert_eq!(quantiles, [(0.5, 1.5), (0.99, 3.0)]);

    // A metric type this version does not know decodes without data; the
    // model rejects it (counted in partial success), not the whole request.
    assert_eq!(metrics[5].name, "from.the.future");
    assert_eq!(metrics[5].data, None);
}

#[test]
fn malformed_metrics_json_is_a_clear_invalid_request() {
    for (body, expect) in [
        (
            r#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": {"dataPoints": [{"timeUnixNano": "soon"}]}}]}]}]}"#,
            "invalid digit",
        ),
        (
            r#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"histogram": {"dataPoints": [{"bucketCounts": ["x"]}]}}]}]}]}"#,
            "invalid digit",
        ),
        (
            r#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"histogram": {"dataPoints": [{"count": -1}]}}]}]}]}"#,
            "out of range",
        ),
        (r#"{"resourceMetrics": {}}"#, "invalid type"),
        (r#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": 5}]}]}]}"#, "invalid type"),
        (
            r#"{"resourceMetrics": [{"resource": {"attributes": [{"key": "k", "value": {"intValue": "x"}}]}}]}"#,
            "invalid digit",
        ),
    ] {
        let err = decode_json::<Metrics>(body.as_bytes()).expect_err("malformed body");
        assert!(matches!(err, crate::CollectorError::InvalidRequest(_)), "{err}");
        let text = err.to_string();
        assert!(text.starts_with("invalid OTLP/JSON body"), "{text}");
        assert!(text.to_lowercase().contains(expect), "{text} should mention {expect}");
    }
}

fn const_hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit pair")).collect()
}
