//! Lossless encoding of OTLP attributes into two Arrow columns.
//!
//! An attribute set is stored as a `Map<Utf8, Utf8>` (so SQL can say
//! `span_attributes['http.route']`) plus a parallel type-code string with one
//! character per entry, in entry order (so the exact OTLP type comes back).
//! The type string is NULL when every value is a string, which is the common
//! case and costs nothing in Parquet.
//!
//! Value text by type: strings as-is; bools `true`/`false`; ints in decimal;
//! doubles in Rust's shortest round-trip form (`0.1`, `1e300`, `NaN`, `inf`);
//! bytes in standard base64; arrays and key-value lists as OTLP/JSON `AnyValue`.

use base64::Engine as _;
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD as BASE64;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use serde_json::json;

use crate::ModelError;

/// One-character type codes stored in the `*_attribute_types` columns.
pub mod code {
    pub const STRING: char = 's';
    pub const BOOL: char = 'b';
    pub const INT: char = 'i';
    pub const DOUBLE: char = 'd';
    pub const BYTES: char = 'y';
    pub const ARRAY: char = 'a';
    pub const KVLIST: char = 'k';
    /// An `AnyValue` with no value set.
    pub const EMPTY: char = 'e';
}

/// Renders one attribute value as its stored text and type code.
pub fn encode_value(value: Option<&AnyValue>) -> (std::borrow::Cow<'_, str>, char) {
    use std::borrow::Cow;
    match ValueRef::of(value) {
        ValueRef::Str(s) => (Cow::Borrowed(s), code::STRING),
        other => {
            let mut text = String::new();
            let ty = other.encode_into(&mut text);
            (Cow::Owned(text), ty)
        }
    }
}

/// A borrowed attribute value: what the converters need of an `AnyValue`,
/// whether it comes from a decoded message or straight from protobuf bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValueRef<'a> {
    /// No value (or a profiles-only string-table reference, which OTLP says
    /// to treat as absent outside the profiling signal).
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// Arrays and key-value lists: rare, so kept as (or decoded into) a message.
    Nested(std::borrow::Cow<'a, AnyValue>),
}

impl<'a> ValueRef<'a> {
    pub fn of(value: Option<&'a AnyValue>) -> Self {
        match value.and_then(|v| v.value.as_ref()) {
            None | Some(Value::StringValueStrindex(_)) => ValueRef::Empty,
            Some(Value::StringValue(s)) => ValueRef::Str(s),
            Some(Value::BoolValue(b)) => ValueRef::Bool(*b),
            Some(Value::IntValue(i)) => ValueRef::Int(*i),
            Some(Value::DoubleValue(d)) => ValueRef::Double(*d),
            Some(Value::BytesValue(b)) => ValueRef::Bytes(b),
            Some(Value::ArrayValue(_) | Value::KvlistValue(_)) => {
                ValueRef::Nested(std::borrow::Cow::Borrowed(value.expect("a value is set")))
            }
        }
    }

    pub fn type_code(&self) -> char {
        match self {
            ValueRef::Empty => code::EMPTY,
            ValueRef::Str(_) => code::STRING,
            ValueRef::Bool(_) => code::BOOL,
            ValueRef::Int(_) => code::INT,
            ValueRef::Double(_) => code::DOUBLE,
            ValueRef::Bytes(_) => code::BYTES,
            ValueRef::Nested(any) => match any.value {
                Some(Value::KvlistValue(_)) => code::KVLIST,
                _ => code::ARRAY,
            },
        }
    }

    /// Writes the stored text of the value to `out`; returns its type code.
    pub fn encode_into<W: std::fmt::Write>(&self, out: &mut W) -> char {
        // Writing to a String or a string builder cannot fail.
        let _ = match self {
            ValueRef::Empty => Ok(()),
            ValueRef::Str(s) => out.write_str(s),
            ValueRef::Bool(b) => out.write_str(if *b { "true" } else { "false" }),
            ValueRef::Int(i) => write!(out, "{i}"),
            ValueRef::Double(d) => write!(out, "{d:?}"),
            ValueRef::Bytes(b) => write!(out, "{}", Base64Display::new(b, &BASE64)),
            ValueRef::Nested(any) => out.write_str(&serde_json::to_string(any.as_ref()).unwrap_or_default()),
        };
        self.type_code()
    }

    /// The value cut to `max` bytes (strings at a character boundary), and
    /// whether it was cut. Only strings and bytes are ever long.
    pub fn truncated(self, max: usize) -> (Self, bool) {
        match self {
            ValueRef::Str(s) if s.len() > max => {
                let mut end = max;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                (ValueRef::Str(&s[..end]), true)
            }
            ValueRef::Bytes(b) if b.len() > max => (ValueRef::Bytes(&b[..max]), true),
            other => (other, false),
        }
    }
}

/// Rebuilds an OTLP value from its stored text and type code.
pub fn decode_value(text: &str, type_code: char) -> Result<AnyValue, ModelError> {
    let bad = |what: &str| ModelError::Corrupt(format!("attribute value {text:?} is not a valid {what}"));
    let value = match type_code {
        code::STRING => Some(Value::StringValue(text.to_owned())),
        code::BOOL => Some(Value::BoolValue(text == "true")),
        code::INT => Some(Value::IntValue(text.parse().map_err(|_| bad("int"))?)),
        code::DOUBLE => Some(Value::DoubleValue(text.parse().map_err(|_| bad("double"))?)),
        code::BYTES => Some(Value::BytesValue(BASE64.decode(text).map_err(|_| bad("base64"))?)),
        code::ARRAY | code::KVLIST => {
            let any: AnyValue = serde_json::from_str(text).map_err(|_| bad("OTLP/JSON value"))?;
            return Ok(any);
        }
        code::EMPTY => None,
        other => return Err(ModelError::Corrupt(format!("unknown attribute type code {other:?}"))),
    };
    Ok(AnyValue { value })
}

/// Name of a type code as shown in Skein's JSON (`"int"`, `"kvlist"` ...).
pub fn type_name(type_code: char) -> &'static str {
    match type_code {
        code::STRING => "string",
        code::BOOL => "bool",
        code::INT => "int",
        code::DOUBLE => "double",
        code::BYTES => "bytes",
        code::ARRAY => "array",
        code::KVLIST => "kvlist",
        _ => "empty",
    }
}

/// Skein's typed JSON form of an attribute list: `[{"key", "type", "value"}]`.
/// Ints are exact JSON integers, non-finite doubles are strings, bytes base64.
pub fn key_values_to_typed_json(attrs: &[KeyValue]) -> serde_json::Value {
    serde_json::Value::Array(
        attrs
            .iter()
            .map(|kv| {
                let (ty, value) = typed_json(kv.value.as_ref());
                json!({"key": kv.key, "type": ty, "value": value})
            })
            .collect(),
    )
}

/// One value in Skein's typed JSON form: `{"type", "value"}`.
pub fn typed_value_json(value: Option<&AnyValue>) -> serde_json::Value {
    let (ty, value) = typed_json(value);
    json!({"type": ty, "value": value})
}

fn typed_json(value: Option<&AnyValue>) -> (&'static str, serde_json::Value) {
    match value.and_then(|v| v.value.as_ref()) {
        None | Some(Value::StringValueStrindex(_)) => ("empty", serde_json::Value::Null),
        Some(Value::StringValue(s)) => ("string", json!(s)),
        Some(Value::BoolValue(b)) => ("bool", json!(b)),
        Some(Value::IntValue(i)) => ("int", json!(i)),
        Some(Value::DoubleValue(d)) => match serde_json::Number::from_f64(*d) {
            Some(n) => ("double", serde_json::Value::Number(n)),
            None => ("double", json!(format!("{d:?}"))),
        },
        Some(Value::BytesValue(b)) => ("bytes", json!(BASE64.encode(b))),
        Some(Value::ArrayValue(a)) => (
            "array",
            serde_json::Value::Array(
                a.values
                    .iter()
                    .map(|v| {
                        let (ty, value) = typed_json(Some(v));
                        json!({"type": ty, "value": value})
                    })
                    .collect(),
            ),
        ),
        Some(Value::KvlistValue(kv)) => ("kvlist", key_values_to_typed_json(&kv.values)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn roundtrip(v: Option<Value>) {
        let any = AnyValue { value: v };
        let (text, ty) = encode_value(Some(&any));
        let back = decode_value(&text, ty).expect("decodes");
        assert_eq!(back, any, "text {text:?} type {ty}");
    }

    #[test]
    fn every_type_round_trips() {
        roundtrip(Some(Value::StringValue("héllo 🌍".into())));
        roundtrip(Some(Value::BoolValue(true)));
        roundtrip(Some(Value::BoolValue(false)));
        roundtrip(Some(Value::IntValue(i64::MIN)));
        roundtrip(Some(Value::IntValue(i64::MAX)));
        roundtrip(Some(Value::DoubleValue(0.1)));
        roundtrip(Some(Value::DoubleValue(1e300)));
        roundtrip(Some(Value::DoubleValue(-0.0)));
        roundtrip(Some(Value::DoubleValue(f64::INFINITY)));
        roundtrip(Some(Value::BytesValue(vec![0, 1, 254, 255])));
        roundtrip(None);
        let nested = Value::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key_strindex: 0,
                key: "inner".into(),
                value: Some(AnyValue {
                    value: Some(Value::ArrayValue(ArrayValue {
                        values: vec![
                            AnyValue { value: Some(Value::IntValue(7)) },
                            AnyValue { value: Some(Value::BytesValue(vec![9])) },
                            AnyValue { value: Some(Value::DoubleValue(2.5)) },
                        ],
                    })),
                }),
            }],
        });
        roundtrip(Some(nested));
    }

    #[test]
    fn nan_round_trips_as_nan() {
        let any = AnyValue { value: Some(Value::DoubleValue(f64::NAN)) };
        let (text, ty) = encode_value(Some(&any));
        match decode_value(&text, ty).expect("decodes").value {
            Some(Value::DoubleValue(d)) => assert!(d.is_nan()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn typed_json_is_exact() {
        let attrs = vec![KeyValue {
            key_strindex: 0,
            key: "big".into(),
            value: Some(AnyValue { value: Some(Value::IntValue(9_007_199_254_740_993)) }),
        }];
        let json = key_values_to_typed_json(&attrs).to_string();
        assert_eq!(json, r#"[{"key":"big","type":"int","value":9007199254740993}]"#);
    }
}
