//! Zero-copy decoding of an OTLP/protobuf metrics request into a
//! [`MetricsView`]: strings and IDs borrow the request bytes, and points,
//! bounds and bucket counts go to a few flat vectors, so decoding allocates
//! nothing per point or attribute (prost builds a message, a `Vec` per
//! repeated field and a `String` per attribute key and value).
//!
//! It follows prost's semantics for everything valid OTLP senders write
//! (see `crate::wire`): unknown fields are skipped, a repeated scalar keeps
//! its last value, the last member of a oneof wins, repeated numbers are
//! read packed or not. A singular message field sent twice (a resource, a
//! metric's data, exponential buckets: protobuf merges them) and malformed
//! input are [`Unsupported`], and the caller decodes with prost instead.

use std::ops::Range;

use super::view::{DataKind, ExemplarView, MetricView, MetricsView, Number, PointView, ResourceView, ScopeView};
use crate::arrow_build::AttrRef;
use crate::wire::{Result, Unsupported, Wire, for_each_field, key_value, once, read_varint};

/// Decodes `ExportMetricsServiceRequest` bytes into a view borrowing them.
pub(crate) fn metrics_view(bytes: &[u8]) -> Result<MetricsView<'_>> {
    let mut view = MetricsView::default();
    for_each_field(bytes, |field, wire| match field {
        1 => resource_metrics(wire.bytes()?, &mut view),
        _ => Ok(()),
    })?;
    Ok(view)
}

fn push_attr<'a>(to: &mut Vec<AttrRef<'a>>, wire: Wire<'a>) -> Result<()> {
    to.push(key_value(wire.bytes()?)?);
    Ok(())
}

/// Protobuf `sint32` (zigzag), exactly as prost reads it.
fn sint32(wire: Wire<'_>) -> Result<i32> {
    let value = wire.varint()? as u32;
    Ok(((value >> 1) as i32) ^ (-((value & 1) as i32)))
}

fn double(wire: Wire<'_>) -> Result<f64> {
    Ok(f64::from_bits(wire.fixed64()?))
}

/// Appends one occurrence of a repeated 64-bit fixed-width field (`fixed64`,
/// `double`): packed (a run of little-endian values) or a single value.
fn fixed64s<T>(wire: Wire<'_>, to: &mut Vec<T>, from_bits: fn(u64) -> T) -> Result<()> {
    match wire {
        Wire::Len(packed) => {
            let (values, rest) = packed.as_chunks::<8>();
            if !rest.is_empty() {
                return Err(Unsupported);
            }
            to.extend(values.iter().map(|v| from_bits(u64::from_le_bytes(*v))));
            Ok(())
        }
        single => {
            to.push(from_bits(single.fixed64()?));
            Ok(())
        }
    }
}

/// Appends one occurrence of a repeated `uint64` field: packed or single.
fn varints(wire: Wire<'_>, to: &mut Vec<u64>) -> Result<()> {
    match wire {
        Wire::Len(mut packed) => {
            while !packed.is_empty() {
                to.push(read_varint(&mut packed)?);
            }
            Ok(())
        }
        single => {
            to.push(single.varint()?);
            Ok(())
        }
    }
}

fn resource_metrics<'a>(bytes: &'a [u8], view: &mut MetricsView<'a>) -> Result<()> {
    let first_scope = view.scopes.len();
    let mut resource = None;
    let mut out = ResourceView::default();
    for_each_field(bytes, |field, wire| {
        match field {
            1 => once(&mut resource, wire)?,
            2 => scope_metrics(wire.bytes()?, view)?,
            3 => out.schema_url = wire.str()?,
            _ => {}
        }
        Ok(())
    })?;
    let first_attr = view.attrs.len();
    if let Some(resource) = resource {
        for_each_field(resource, |field, wire| {
            match field {
                1 => push_attr(&mut view.attrs, wire)?,
                2 => out.dropped_attrs = wire.varint()? as u32,
                // Entity references: see the traces reader (model/src/wire.rs).
                3 => return Err(Unsupported),
                _ => {}
            }
            Ok(())
        })?;
    }
    out.attrs = first_attr..view.attrs.len();
    out.scopes = first_scope..view.scopes.len();
    view.resources.push(out);
    Ok(())
}

fn scope_metrics<'a>(bytes: &'a [u8], view: &mut MetricsView<'a>) -> Result<()> {
    let first_metric = view.metrics.len();
    let mut scope = None;
    let mut out = ScopeView::default();
    for_each_field(bytes, |field, wire| {
        match field {
            1 => once(&mut scope, wire)?,
            2 => metric(wire.bytes()?, view)?,
            3 => out.schema_url = wire.str()?,
            _ => {}
        }
        Ok(())
    })?;
    let first_attr = view.attrs.len();
    if let Some(scope) = scope {
        for_each_field(scope, |field, wire| {
            match field {
                1 => out.name = wire.str()?,
                2 => out.version = wire.str()?,
                3 => push_attr(&mut view.attrs, wire)?,
                4 => out.dropped_attrs = wire.varint()? as u32,
                _ => {}
            }
            Ok(())
        })?;
    }
    out.attrs = first_attr..view.attrs.len();
    out.metrics = first_metric..view.metrics.len();
    view.scopes.push(out);
    Ok(())
}

fn metric<'a>(bytes: &'a [u8], view: &mut MetricsView<'a>) -> Result<()> {
    let mut out = MetricView::default();
    // The data oneof: (field number, message bytes), decoded after the loop.
    let mut data: Option<(u32, &'a [u8])> = None;
    let first_metadata = view.metadata.len();
    for_each_field(bytes, |field, wire| {
        match field {
            1 => out.name = wire.str()?,
            2 => out.description = wire.str()?,
            3 => out.unit = wire.str()?,
            5 | 7 | 9 | 10 | 11 => data_once(&mut data, field, wire)?,
            12 => push_attr(&mut view.metadata, wire)?,
            _ => {}
        }
        Ok(())
    })?;
    out.metadata = first_metadata..view.metadata.len();
    let first_point = view.points.len();
    if let Some((field, bytes)) = data {
        out.data = Some(data_points(field, bytes, view)?);
    }
    out.points = first_point..view.points.len();
    view.metrics.push(out);
    Ok(())
}

/// Keeps a metric's data message; a second one would be merged (same type)
/// or replace the first (another type): prost decides.
fn data_once<'a>(slot: &mut Option<(u32, &'a [u8])>, field: u32, wire: Wire<'a>) -> Result<()> {
    if slot.replace((field, wire.bytes()?)).is_some() {
        return Err(Unsupported);
    }
    Ok(())
}

/// Decodes a `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram` or
/// `Summary` (by its field number in `Metric`): its points and its kind.
fn data_points<'a>(field: u32, bytes: &'a [u8], view: &mut MetricsView<'a>) -> Result<DataKind> {
    let (mut temporality, mut is_monotonic) = (0, false);
    for_each_field(bytes, |inner, wire| {
        match (inner, field) {
            (1, 5 | 7) => number_point(wire.bytes()?, view)?,
            (1, 9) => histogram_point(wire.bytes()?, view)?,
            (1, 10) => exponential_point(wire.bytes()?, view)?,
            (1, _) => summary_point(wire.bytes()?, view)?,
            (2, 7 | 9 | 10) => temporality = wire.varint()? as i32,
            (3, 7) => is_monotonic = wire.varint()? != 0,
            _ => {}
        }
        Ok(())
    })?;
    Ok(match field {
        5 => DataKind::Gauge,
        7 => DataKind::Sum { temporality, is_monotonic },
        9 => DataKind::Histogram { temporality },
        10 => DataKind::ExponentialHistogram { temporality },
        _ => DataKind::Summary,
    })
}

/// The attribute range of the point being decoded: its entries are pushed
/// one by one, and only its own fields push to `point_attrs`.
fn point_attrs(view: &MetricsView<'_>, first: usize) -> Range<usize> {
    first..view.point_attrs.len()
}

fn number_point<'a>(bytes: &'a [u8], view: &mut MetricsView<'a>) -> Result<()> {
    let mut out = PointView::default();
    let (first_attr, first_exemplar) = (view.point_attrs.len(), view.exemplars.len());
    for_each_field(bytes, |field, wire| {
        match field {
            2 => out.start = wire.fixed64()?,
            3 => out.time = wire.fixed64()?,
            4 => out.value = Some(Number::Double(double(wire)?)),
            5 => exemplar(wire.bytes()?, view)?,
            6 => out.value = Some(Number::Int(wire.fixed64()? as i64)),
            7 => push_attr(&mut view.point_attrs, wire)?,
            8 => out.flags = wire.varint()? as u32,
            _ => {}
        }
        Ok(())
    })?;
    out.attrs = point_attrs(view, first_attr);
    out.exemplars = first_exemplar..view.exemplars.len();
    view.points.push(out);
    Ok(())
}

fn histogram_point<'a>(bytes: &'a [u8], view: &mut MetricsView<'a>) -> Result<()> {
    let mut out = PointView::default();
    let (first_attr, first_exemplar) = (view.point_attrs.len(), view.exemplars.len());
    let (first_bound, first_count) = (view.f64s.len(), view.u64s.len());
    for_each_field(bytes, |field, wire| {
        match field {
            2 => out.start = wire.fixed64()?,
            3 => out.time = wire.fixed64()?,
            4 => out.count = wire.fixed64()?,
            5 => out.sum = Some(double(wire)?),
            6 => fixed64s(wire, &mut view.u64s, |bits| bits)?,
            7 => fixed64s(wire, &mut view.f64s, f64::from_bits)?,
            8 => exemplar(wire.bytes()?, view)?,
            9 => push_attr(&mut view.point_attrs, wire)?,
            10 => out.flags = wire.varint()? as u32,
            11 => out.min = Some(double(wire)?),
            12 => out.max = Some(double(wire)?),
            _ => {}
        }
        Ok(())
    })?;
    out.attrs = point_attrs(view, first_attr);
    out.exemplars = first_exemplar..view.exemplars.len();
    out.bounds = first_bound..view.f64s.len();
    out.bucket_counts = first_count..view.u64s.len();
    view.points.push(out);
    Ok(())
}

fn exponential_point<'a>(bytes: &'a [u8], view: &mut MetricsView<'a>) -> Result<()> {
    let mut out = PointView::default();
    let (first_attr, first_exemplar) = (view.point_attrs.len(), view.exemplars.len());
    let (mut positive, mut negative) = (None, None);
    for_each_field(bytes, |field, wire| {
        match field {
            1 => push_attr(&mut view.point_attrs, wire)?,
            2 => out.start = wire.fixed64()?,
            3 => out.time = wire.fixed64()?,
            4 => out.count = wire.fixed64()?,
            5 => out.sum = Some(double(wire)?),
            6 => out.scale = sint32(wire)?,
            7 => out.zero_count = wire.fixed64()?,
            8 => once(&mut positive, wire)?,
            9 => once(&mut negative, wire)?,
            10 => out.flags = wire.varint()? as u32,
            11 => exemplar(wire.bytes()?, view)?,
            12 => out.min = Some(double(wire)?),
            13 => out.max = Some(double(wire)?),
            14 => out.zero_threshold = double(wire)?,
            _ => {}
        }
        Ok(())
    })?;
    // Decoded one after the other, so each side's counts are contiguous.
    out.positive = positive.map(|b| buckets(b, &mut view.u64s)).transpose()?;
    out.negative = negative.map(|b| buckets(b, &mut view.u64s)).transpose()?;
    out.attrs = point_attrs(view, first_attr);
    out.exemplars = first_exemplar..view.exemplars.len();
    view.points.push(out);
    Ok(())
}

/// `ExponentialHistogramDataPoint.Buckets`: the offset and the counts' range.
fn buckets(bytes: &[u8], u64s: &mut Vec<u64>) -> Result<(i32, Range<usize>)> {
    let first = u64s.len();
    let mut offset = 0;
    for_each_field(bytes, |field, wire| {
        match field {
            1 => offset = sint32(wire)?,
            2 => varints(wire, u64s)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok((offset, first..u64s.len()))
}

fn summary_point<'a>(bytes: &'a [u8], view: &mut MetricsView<'a>) -> Result<()> {
    let mut out = PointView { sum: Some(0.0), ..PointView::default() };
    let (first_attr, first_quantile) = (view.point_attrs.len(), view.quantiles.len());
    for_each_field(bytes, |field, wire| {
        match field {
            2 => out.start = wire.fixed64()?,
            3 => out.time = wire.fixed64()?,
            4 => out.count = wire.fixed64()?,
            5 => out.sum = Some(double(wire)?),
            6 => {
                let (mut quantile, mut value) = (0.0, 0.0);
                for_each_field(wire.bytes()?, |field, wire| {
                    match field {
                        1 => quantile = double(wire)?,
                        2 => value = double(wire)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                view.quantiles.push((quantile, value));
            }
            7 => push_attr(&mut view.point_attrs, wire)?,
            8 => out.flags = wire.varint()? as u32,
            _ => {}
        }
        Ok(())
    })?;
    out.attrs = point_attrs(view, first_attr);
    out.quantiles = first_quantile..view.quantiles.len();
    view.points.push(out);
    Ok(())
}

fn exemplar<'a>(bytes: &'a [u8], view: &mut MetricsView<'a>) -> Result<()> {
    let mut out = ExemplarView::default();
    let first_attr = view.exemplar_attrs.len();
    for_each_field(bytes, |field, wire| {
        match field {
            2 => out.time = wire.fixed64()?,
            3 => out.value = Some(Number::Double(double(wire)?)),
            4 => out.span_id = wire.bytes()?,
            5 => out.trace_id = wire.bytes()?,
            6 => out.value = Some(Number::Int(wire.fixed64()? as i64)),
            7 => push_attr(&mut view.exemplar_attrs, wire)?,
            _ => {}
        }
        Ok(())
    })?;
    out.attrs = first_attr..view.exemplar_attrs.len();
    view.exemplars.push(out);
    Ok(())
}
