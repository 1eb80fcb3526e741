//! OTLP/JSON decoding as the specification describes it: hex IDs (any
//! case), integer enums, lowerCamelCase names, 64-bit integers as strings or
//! numbers, unknown fields ignored.

use opentelemetry_proto::tonic::common::v1::any_value::Value;

use crate::codec::{Encoding, decode_request};

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

#[test]
fn decodes_the_spec_example() {
    let request = decode_request(SPEC_EXAMPLE.as_bytes(), Encoding::Json).expect("spec example decodes");
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
    let request = decode_request(RICH_EXAMPLE.as_bytes(), Encoding::Json).expect("rich example decodes");
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
    let request = decode_request(b"{}", Encoding::Json).expect("empty object");
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
        let err = decode_request(body, Encoding::Json).expect_err("malformed body");
        assert!(matches!(err, crate::CollectorError::InvalidRequest(_)), "{err}");
        let text = err.to_string();
        assert!(text.starts_with("invalid OTLP/JSON body"), "{text}");
        assert!(text.to_lowercase().contains(&expect.to_lowercase()), "{text} should mention {expect}");
    }
}

fn const_hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit pair")).collect()
}
