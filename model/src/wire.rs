//! Zero-copy decoding of an OTLP/protobuf traces request into a
//! [`TracesView`]: strings and IDs borrow the request bytes, so decoding
//! allocates a few flat vectors per request instead of a `String` per
//! attribute key and value (prost's decode was a quarter of the ingest CPU).
//!
//! It follows prost's semantics for everything valid OTLP senders write:
//! unknown fields are skipped, a repeated scalar field keeps its last value,
//! strings must be UTF-8. Anything rarer (a singular message field sent
//! twice, which protobuf merges; groups; malformed input) is reported as
//! [`Unsupported`], and the caller decodes with prost instead, which either
//! handles it or gives the canonical error.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use prost::Message;

use crate::arrow_build::AttrRef;
use crate::attributes::ValueRef;
use crate::span_view::{EventView, LinkView, ResourceView, ScopeView, SpanView, TracesView};

/// The fast path does not handle this input; decode it with prost.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unsupported;

pub(crate) type Result<T> = std::result::Result<T, Unsupported>;

/// One field's payload, by wire type.
#[derive(Clone, Copy)]
pub(crate) enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Wire<'a> {
    pub(crate) fn varint(self) -> Result<u64> {
        match self {
            Wire::Varint(v) => Ok(v),
            _ => Err(Unsupported),
        }
    }

    pub(crate) fn fixed64(self) -> Result<u64> {
        match self {
            Wire::Fixed64(v) => Ok(v),
            _ => Err(Unsupported),
        }
    }

    pub(crate) fn fixed32(self) -> Result<u32> {
        match self {
            Wire::Fixed32(v) => Ok(v),
            _ => Err(Unsupported),
        }
    }

    pub(crate) fn bytes(self) -> Result<&'a [u8]> {
        match self {
            Wire::Len(b) => Ok(b),
            _ => Err(Unsupported),
        }
    }

    pub(crate) fn str(self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Unsupported)
    }
}

pub(crate) fn read_varint(buf: &mut &[u8]) -> Result<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first().ok_or(Unsupported)?;
        *buf = rest;
        // The tenth byte may only carry the top bit of a 64-bit value.
        if i == 9 && byte > 1 {
            return Err(Unsupported);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(Unsupported)
}

fn read_array<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N]> {
    let (head, rest) = buf.split_first_chunk::<N>().ok_or(Unsupported)?;
    *buf = rest;
    Ok(*head)
}

/// Visits every field of one message, in order.
pub(crate) fn for_each_field<'a>(mut buf: &'a [u8], mut visit: impl FnMut(u32, Wire<'a>) -> Result<()>) -> Result<()> {
    while !buf.is_empty() {
        // A key must fit 32 bits (field numbers stop at 2^29 - 1), as prost
        // checks; found by fuzzing.
        let key = u32::try_from(read_varint(&mut buf)?).map_err(|_| Unsupported)?;
        let field = key >> 3;
        if field == 0 {
            return Err(Unsupported);
        }
        let wire = match key & 7 {
            0 => Wire::Varint(read_varint(&mut buf)?),
            1 => Wire::Fixed64(u64::from_le_bytes(read_array(&mut buf)?)),
            2 => {
                let len = usize::try_from(read_varint(&mut buf)?).map_err(|_| Unsupported)?;
                if len > buf.len() {
                    return Err(Unsupported);
                }
                let (payload, rest) = buf.split_at(len);
                buf = rest;
                Wire::Len(payload)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(read_array(&mut buf)?)),
            // Groups (3, 4) are long deprecated; prost skips them properly.
            _ => return Err(Unsupported),
        };
        visit(field, wire)?;
    }
    Ok(())
}

/// A singular message field seen twice would be merged by protobuf.
pub(crate) fn once<'a>(slot: &mut Option<&'a [u8]>, wire: Wire<'a>) -> Result<()> {
    if slot.replace(wire.bytes()?).is_some() {
        return Err(Unsupported);
    }
    Ok(())
}

/// Decodes `ExportTraceServiceRequest` bytes into a view borrowing them.
pub(crate) fn traces_view(bytes: &[u8]) -> Result<TracesView<'_>> {
    let mut view = TracesView::default();
    for_each_field(bytes, |field, wire| match field {
        1 => resource_spans(wire.bytes()?, &mut view),
        _ => Ok(()),
    })?;
    Ok(view)
}

/// `ResourceSpans` and `ScopeSpans` share a shape: a header message (1),
/// repeated children (2) and a schema URL (3). Decodes the children with
/// `child`; returns the header bytes and the schema URL.
fn container<'a>(
    bytes: &'a [u8],
    view: &mut TracesView<'a>,
    child: fn(&'a [u8], &mut TracesView<'a>) -> Result<()>,
) -> Result<(Option<&'a [u8]>, &'a str)> {
    let mut header = None;
    let mut schema_url = "";
    for_each_field(bytes, |field, wire| {
        match field {
            1 => once(&mut header, wire)?,
            2 => child(wire.bytes()?, view)?,
            3 => schema_url = wire.str()?,
            _ => {}
        }
        Ok(())
    })?;
    Ok((header, schema_url))
}

fn resource_spans<'a>(bytes: &'a [u8], view: &mut TracesView<'a>) -> Result<()> {
    let first_scope = view.scopes.len();
    let (resource, schema_url) = container(bytes, view, scope_spans)?;
    let mut out = ResourceView { schema_url, scopes: first_scope..view.scopes.len(), ..ResourceView::default() };
    let first_attr = view.attrs.len();
    if let Some(resource) = resource {
        for_each_field(resource, |field, wire| {
            match field {
                1 => view.attrs.push(key_value(wire.bytes()?)?),
                2 => out.dropped_attrs = wire.varint()? as u32,
                // Entity references: unused here, but prost checks them
                // (UTF-8 strings), so it decodes such a request.
                3 => return Err(Unsupported),
                _ => {}
            }
            Ok(())
        })?;
    }
    out.attrs = first_attr..view.attrs.len();
    view.resources.push(out);
    Ok(())
}

fn scope_spans<'a>(bytes: &'a [u8], view: &mut TracesView<'a>) -> Result<()> {
    let first_span = view.spans.len();
    let (scope, schema_url) = container(bytes, view, span)?;
    let mut out = ScopeView { schema_url, spans: first_span..view.spans.len(), ..ScopeView::default() };
    let first_attr = view.attrs.len();
    if let Some(scope) = scope {
        for_each_field(scope, |field, wire| {
            match field {
                1 => out.name = wire.str()?,
                2 => out.version = wire.str()?,
                3 => view.attrs.push(key_value(wire.bytes()?)?),
                4 => out.dropped_attrs = wire.varint()? as u32,
                _ => {}
            }
            Ok(())
        })?;
    }
    out.attrs = first_attr..view.attrs.len();
    view.scopes.push(out);
    Ok(())
}

fn span<'a>(bytes: &'a [u8], view: &mut TracesView<'a>) -> Result<()> {
    let mut out = SpanView::default();
    let mut status = None;
    let (first_event, first_link) = (view.events.len(), view.links.len());
    // The span's own attributes must be contiguous in `view.attrs`; events
    // and links push theirs too, so an attribute after them is refused.
    let mut attrs: Option<std::ops::Range<usize>> = None;
    for_each_field(bytes, |field, wire| {
        match field {
            1 => out.trace_id = wire.bytes()?,
            2 => out.span_id = wire.bytes()?,
            3 => out.trace_state = wire.str()?,
            4 => out.parent_span_id = wire.bytes()?,
            5 => out.name = wire.str()?,
            6 => out.kind = wire.varint()? as i32,
            7 => out.start = wire.fixed64()?,
            8 => out.end = wire.fixed64()?,
            9 => {
                let range = attrs.get_or_insert(view.attrs.len()..view.attrs.len());
                if range.end != view.attrs.len() {
                    return Err(Unsupported);
                }
                view.attrs.push(key_value(wire.bytes()?)?);
                range.end += 1;
            }
            10 => out.dropped_attrs = wire.varint()? as u32,
            11 => event(wire.bytes()?, view)?,
            12 => out.dropped_events = wire.varint()? as u32,
            13 => link(wire.bytes()?, view)?,
            14 => out.dropped_links = wire.varint()? as u32,
            15 => once(&mut status, wire)?,
            16 => out.flags = wire.fixed32()?,
            _ => {}
        }
        Ok(())
    })?;
    if let Some(status) = status {
        for_each_field(status, |field, wire| {
            match field {
                2 => out.status_message = wire.str()?,
                3 => out.status_code = wire.varint()? as i32,
                _ => {}
            }
            Ok(())
        })?;
    }
    let end = view.attrs.len();
    out.attrs = attrs.unwrap_or(end..end);
    out.events = first_event..view.events.len();
    out.links = first_link..view.links.len();
    view.spans.push(out);
    Ok(())
}

fn event<'a>(bytes: &'a [u8], view: &mut TracesView<'a>) -> Result<()> {
    let mut out = EventView::default();
    let first_attr = view.attrs.len();
    for_each_field(bytes, |field, wire| {
        match field {
            1 => out.time = wire.fixed64()?,
            2 => out.name = wire.str()?,
            3 => view.attrs.push(key_value(wire.bytes()?)?),
            4 => out.dropped_attrs = wire.varint()? as u32,
            _ => {}
        }
        Ok(())
    })?;
    out.attrs = first_attr..view.attrs.len();
    view.events.push(out);
    Ok(())
}

fn link<'a>(bytes: &'a [u8], view: &mut TracesView<'a>) -> Result<()> {
    let mut out = LinkView::default();
    let first_attr = view.attrs.len();
    for_each_field(bytes, |field, wire| {
        match field {
            1 => out.trace_id = wire.bytes()?,
            2 => out.span_id = wire.bytes()?,
            3 => out.trace_state = wire.str()?,
            4 => view.attrs.push(key_value(wire.bytes()?)?),
            5 => out.dropped_attrs = wire.varint()? as u32,
            6 => out.flags = wire.fixed32()?,
            _ => {}
        }
        Ok(())
    })?;
    out.attrs = first_attr..view.attrs.len();
    view.links.push(out);
    Ok(())
}

pub(crate) fn key_value(bytes: &[u8]) -> Result<AttrRef<'_>> {
    let mut key = "";
    let mut value = None;
    for_each_field(bytes, |field, wire| {
        match field {
            1 => key = wire.str()?,
            2 => once(&mut value, wire)?,
            // `key_strindex` (profiles' string table): unused, but prost
            // refuses it with another wire type, and so must this reader.
            3 => {
                wire.varint()?;
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok((key, value.map_or(Ok(ValueRef::Empty), any_value)?))
}

fn any_value(bytes: &[u8]) -> Result<ValueRef<'_>> {
    let mut value = ValueRef::Empty;
    let mut nested = false;
    // An array or list replaced by a later scalar: prost still decodes
    // (and checks) it, so such a value goes to prost (found by fuzzing).
    let mut replaced_nested = false;
    for_each_field(bytes, |field, wire| {
        // A oneof: the last field sent wins, as in prost.
        value = match field {
            1 => ValueRef::Str(wire.str()?),
            2 => ValueRef::Bool(wire.varint()? != 0),
            3 => ValueRef::Int(wire.varint()? as i64),
            4 => ValueRef::Double(f64::from_bits(wire.fixed64()?)),
            5 | 6 => {
                wire.bytes()?;
                nested = true;
                return Ok(());
            }
            7 => ValueRef::Bytes(wire.bytes()?),
            8 => {
                wire.varint()?;
                ValueRef::Empty
            }
            _ => return Ok(()),
        };
        replaced_nested |= nested;
        nested = false;
        Ok(())
    })?;
    if replaced_nested {
        return Err(Unsupported);
    }
    if nested {
        // Arrays and key-value lists are rare: prost decodes them (and merges
        // repeated parts) exactly. Decoded alone, a value gets prost's whole
        // recursion budget; one nested deep enough to exhaust it inside the
        // request goes to prost with the request, for prost's own answer.
        nesting_within(bytes, MAX_NESTING)?;
        let any = AnyValue::decode(bytes).map_err(|_| Unsupported)?;
        return Ok(ValueRef::Nested(Cow::Owned(any)));
    }
    Ok(value)
}

/// Array and key-value-list levels decoded here; prost allows 100 message
/// levels in a whole request, and an attribute sits under at most ten.
const MAX_NESTING: u32 = 24;

/// Fails when the `AnyValue` in `bytes` nests arrays or lists deeper than `budget`.
fn nesting_within(bytes: &[u8], budget: u32) -> Result<()> {
    for_each_field(bytes, |field, wire| {
        let (5 | 6) = field else { return Ok(()) };
        let budget = budget.checked_sub(1).ok_or(Unsupported)?;
        // ArrayValue { 1: AnyValue } and KeyValueList { 1: KeyValue { 2: AnyValue } }.
        for_each_field(wire.bytes()?, |inner, item| match (field, inner) {
            (5, 1) => nesting_within(item.bytes()?, budget),
            (6, 1) => for_each_field(item.bytes()?, |kv_field, value| match kv_field {
                2 => nesting_within(value.bytes()?, budget),
                _ => Ok(()),
            }),
            _ => Ok(()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_follow_the_protobuf_rules() {
        let read = |bytes: &[u8]| read_varint(&mut &bytes[..]);
        assert_eq!(read(&[0]), Ok(0));
        assert_eq!(read(&[0x96, 0x01]), Ok(150));
        assert_eq!(read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), Ok(u64::MAX));
        assert_eq!(read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]), Err(Unsupported));
        assert_eq!(read(&[0x80]), Err(Unsupported));
    }

    #[test]
    fn truncated_and_malformed_messages_are_left_to_prost() {
        // Field 1, length 5, but only 2 bytes follow.
        assert!(traces_view(&[0x0a, 0x05, 0x01, 0x02]).is_err());
        // Field number 0.
        assert!(traces_view(&[0x00, 0x00]).is_err());
        // A group (wire type 3).
        assert!(traces_view(&[0x0b]).is_err());
        // A key over 32 bits (field 2^29 + 1, wire type 2): prost refuses it.
        assert!(traces_view(&[0x8a, 0x80, 0x80, 0x80, 0x10, 0x00]).is_err());
    }
}

/// The fast path against prost on the same bytes: same batch, same counts.
#[cfg(test)]
mod equivalence_tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use prost::Message;

    use super::*;
    use crate::roundtrip_tests::sample_request;
    use crate::{ConvertLimits, ModelError, spans_to_arrow, spans_to_arrow_from_protobuf};

    fn assert_same(bytes: &[u8], limits: &ConvertLimits, shards: usize) {
        let request = ExportTraceServiceRequest::decode(bytes).expect("prost decodes");
        let expected = spans_to_arrow(&request, limits, shards).expect("converts");
        let actual = spans_to_arrow_from_protobuf(bytes, limits, shards).expect("converts");
        assert_eq!(actual.batch, expected.batch);
        assert_eq!(actual.shard_of_row, expected.shard_of_row);
        assert_eq!(actual.rejected, expected.rejected);
        assert_eq!(actual.truncated_values, expected.truncated_values);
        assert_eq!(actual.first_error, expected.first_error);
    }

    #[test]
    fn every_field_and_value_type_matches_prost() {
        let bytes = sample_request().encode_to_vec();
        assert!(traces_view(&bytes).is_ok(), "the sample takes the fast path");
        assert_same(&bytes, &ConvertLimits::default(), 1);
        assert_same(&bytes, &ConvertLimits::default(), 4);
        assert_same(&bytes, &ConvertLimits { max_attribute_value_bytes: 3 }, 1);
    }

    #[test]
    fn invalid_spans_are_rejected_the_same_way() {
        let mut request = sample_request();
        let spans = &mut request.resource_spans[0].scope_spans[0].spans;
        spans.push(spans[0].clone());
        spans[1].trace_id = vec![0; 16];
        spans.push(spans[0].clone());
        spans[2].span_id = vec![1; 3];
        assert_same(&request.encode_to_vec(), &ConvertLimits::default(), 1);
    }

    /// Appends one length-delimited field to `out`.
    fn field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
        prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, out);
        prost::encoding::encode_varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    /// A request holding one encoded span (in one scope of one resource).
    fn request_of_span(span: &[u8]) -> Vec<u8> {
        let (mut scope_spans, mut rs, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
        field(&mut scope_spans, 2, span);
        field(&mut rs, 2, &scope_spans);
        field(&mut bytes, 1, &rs);
        bytes
    }

    /// Both prost and the fast path refuse `bytes` as invalid protobuf.
    fn refused_like_prost(bytes: &[u8]) {
        assert!(ExportTraceServiceRequest::decode(bytes).is_err());
        let error = spans_to_arrow_from_protobuf(bytes, &ConvertLimits::default(), 1).expect_err("refused");
        assert!(matches!(error, ModelError::InvalidProtobuf(_)), "{error}");
    }

    #[test]
    fn merged_and_reordered_messages_fall_back_to_prost() {
        let request = sample_request();
        let resource_spans = request.resource_spans[0].encode_to_vec();
        // The resource sent twice: protobuf merges both (attributes add up).
        let resource = request.resource_spans[0].resource.as_ref().expect("resource").encode_to_vec();
        let mut twice = resource_spans.clone();
        field(&mut twice, 1, &resource);
        let mut bytes = Vec::new();
        field(&mut bytes, 1, &twice);
        assert_eq!(traces_view(&bytes).err(), Some(Unsupported));
        assert_same(&bytes, &ConvertLimits::default(), 1);

        // A span attribute after the span's events: still the same rows.
        let mut span = request.resource_spans[0].scope_spans[0].spans[0].encode_to_vec();
        let extra =
            KeyValue { key: "late".into(), value: Some(AnyValue { value: Some(Value::IntValue(1)) }), key_strindex: 0 };
        field(&mut span, 9, &extra.encode_to_vec());
        let bytes = request_of_span(&span);
        assert_eq!(traces_view(&bytes).err(), Some(Unsupported));
        assert_same(&bytes, &ConvertLimits::default(), 1);
    }

    #[test]
    fn unknown_fields_are_skipped_and_repeated_scalars_keep_the_last() {
        let request = sample_request();
        let mut span = request.resource_spans[0].scope_spans[0].spans[0].encode_to_vec();
        // An unknown field (99) and the name sent again: prost keeps the last.
        field(&mut span, 99, b"future");
        field(&mut span, 5, b"renamed");
        let bytes = request_of_span(&span);
        assert!(traces_view(&bytes).is_ok());
        assert_same(&bytes, &ConvertLimits::default(), 1);
    }

    #[test]
    fn malformed_bytes_get_prosts_error() {
        let mut span = Vec::new();
        field(&mut span, 5, &[0xff, 0xfe]); // a name that is not UTF-8
        refused_like_prost(&request_of_span(&span));
        refused_like_prost(&sample_request().encode_to_vec()[..40]);
    }

    /// Found by fuzzing: fields this reader does not use, but prost knows,
    /// are refused (or decoded) as prost does.
    #[test]
    fn fields_prost_knows_are_checked_as_prost_does() {
        let request = sample_request();
        // The sample's first span with one more attribute, encoded as given.
        let with_attribute = |attribute: &[u8]| {
            let mut span = request.resource_spans[0].scope_spans[0].spans[0].encode_to_vec();
            field(&mut span, 9, attribute);
            request_of_span(&span)
        };
        // KeyValue.key_strindex (3) is an int32: length-delimited is an error.
        let mut attribute = Vec::new();
        field(&mut attribute, 1, b"k");
        field(&mut attribute, 3, b"not a varint");
        refused_like_prost(&with_attribute(&attribute));

        // An array value replaced by a later string: prost checks the array.
        let mut value = Vec::new();
        field(&mut value, 5, &[0x0a, 0x05, 0x01]); // an ArrayValue whose item overruns it
        field(&mut value, 1, b"wins");
        let mut attribute = Vec::new();
        field(&mut attribute, 1, b"k");
        field(&mut attribute, 2, &value);
        refused_like_prost(&with_attribute(&attribute));

        // Resource.entity_refs (3): prost decodes (and checks) them.
        let mut entity = Vec::new();
        field(&mut entity, 2, b"service");
        let mut resource = request.resource_spans[0].resource.as_ref().expect("resource").encode_to_vec();
        field(&mut resource, 3, &entity);
        let mut rs = Vec::new();
        field(&mut rs, 1, &resource);
        let mut bytes = Vec::new();
        field(&mut bytes, 1, &rs);
        assert_eq!(traces_view(&bytes).err(), Some(Unsupported));
        assert_same(&bytes, &ConvertLimits::default(), 1);
    }
}
