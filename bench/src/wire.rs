//! Finds the fields the pool rewrites per send (trace IDs, span IDs and
//! unix-nanosecond times) inside an encoded OTLP export request, by walking
//! the protobuf wire format down the paths where they live. All of them
//! have fixed widths, so rewriting never changes the message's layout.

use crate::error::{Context, bail};

/// What a found field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// 16 bytes.
    TraceId,
    /// 8 bytes.
    SpanId,
    /// A fixed64 unix-nanosecond time.
    Time,
}

/// Where each rewritable field of an encoded request starts.
pub type Fields = Vec<(usize, Field)>;

/// A protobuf field: number, wire type and the byte range of its payload.
struct Raw {
    number: u64,
    wire_type: u64,
    start: usize,
    end: usize,
}

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;

fn varint(buf: &[u8], pos: &mut usize) -> crate::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).context("truncated varint")?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("varint longer than 10 bytes")
}

/// Calls `f` for every field of the message in `buf[start..end]`.
fn for_fields(
    buf: &[u8],
    start: usize,
    end: usize,
    out: &mut Fields,
    mut f: impl FnMut(&Raw, &mut Fields) -> crate::Result<()>,
) -> crate::Result<()> {
    let mut pos = start;
    while pos < end {
        let key = varint(buf, &mut pos)?;
        let (number, wire_type) = (key >> 3, key & 7);
        let payload_start;
        match wire_type {
            VARINT => {
                varint(buf, &mut pos)?;
                payload_start = pos;
            }
            FIXED64 => {
                payload_start = pos;
                pos += 8;
            }
            LEN => {
                let len = usize::try_from(varint(buf, &mut pos)?).context("a length beyond the address space")?;
                payload_start = pos;
                pos = pos.checked_add(len).context("length overflows")?;
            }
            5 => {
                payload_start = pos;
                pos += 4;
            }
            other => bail!("unsupported wire type {other}"),
        }
        if pos > end {
            bail!("field {number} runs past its message");
        }
        f(&Raw { number, wire_type, start: payload_start, end: pos }, out)?;
    }
    Ok(())
}

/// Calls `f` for the embedded messages with field number `number` in `msg`.
fn for_messages(
    buf: &[u8],
    msg: &Raw,
    number: u64,
    out: &mut Fields,
    mut f: impl FnMut(&Raw, &mut Fields) -> crate::Result<()>,
) -> crate::Result<()> {
    for_fields(buf, msg.start, msg.end, out, |field, out| {
        if field.number == number && field.wire_type == LEN { f(field, out) } else { Ok(()) }
    })
}

fn whole(buf: &[u8]) -> Raw {
    Raw { number: 0, wire_type: LEN, start: 0, end: buf.len() }
}

/// ExportTraceServiceRequest.resource_spans(1) → ResourceSpans.scope_spans(2)
/// → ScopeSpans.spans(2) → Span.
pub fn walk_traces(buf: &[u8], out: &mut Fields) -> crate::Result<()> {
    for_messages(buf, &whole(buf), 1, out, |rs, out| {
        for_messages(buf, rs, 2, out, |ss, out| for_messages(buf, ss, 2, out, |span, out| walk_span(buf, span, out)))
    })
}

/// Span: trace_id(1), span_id(2), parent_span_id(4), start(7), end(8),
/// events(11) with time(1), links(13) with trace_id(1) and span_id(2).
fn walk_span(buf: &[u8], span: &Raw, out: &mut Fields) -> crate::Result<()> {
    for_fields(buf, span.start, span.end, out, |field, out| {
        match (field.number, field.wire_type, field.end - field.start) {
            (1, LEN, 16) => out.push((field.start, Field::TraceId)),
            (2 | 4, LEN, 8) => out.push((field.start, Field::SpanId)),
            (7 | 8, FIXED64, _) => out.push((field.start, Field::Time)),
            (11, LEN, _) => for_fields(buf, field.start, field.end, out, |event, out| {
                if event.number == 1 && event.wire_type == FIXED64 {
                    out.push((event.start, Field::Time));
                }
                Ok(())
            })?,
            (13, LEN, _) => for_fields(buf, field.start, field.end, out, |link, out| {
                match (link.number, link.wire_type, link.end - link.start) {
                    (1, LEN, 16) => out.push((link.start, Field::TraceId)),
                    (2, LEN, 8) => out.push((link.start, Field::SpanId)),
                    _ => {}
                }
                Ok(())
            })?,
            _ => {}
        }
        Ok(())
    })
}

/// ExportMetricsServiceRequest.resource_metrics(1) → ResourceMetrics.
/// scope_metrics(2) → ScopeMetrics.metrics(2) → Metric.{gauge(5), sum(7),
/// histogram(9), exponential_histogram(10), summary(11)} → data_points(1).
pub fn walk_metrics(buf: &[u8], out: &mut Fields) -> crate::Result<()> {
    for_messages(buf, &whole(buf), 1, out, |rm, out| {
        for_messages(buf, rm, 2, out, |sm, out| {
            for_messages(buf, sm, 2, out, |metric, out| {
                for_fields(buf, metric.start, metric.end, out, |data, out| {
                    // The field number of the point's exemplars, by data type.
                    let exemplars = match (data.number, data.wire_type) {
                        (5 | 7, LEN) => Some(5),
                        (9, LEN) => Some(8),
                        (10, LEN) => Some(11),
                        (11, LEN) => None,
                        _ => return Ok(()),
                    };
                    for_messages(buf, data, 1, out, |point, out| walk_point(buf, point, exemplars, out))
                })
            })
        })
    })
}

/// Every point type: start_time(2) and time(3); exemplars (field number by
/// type) with time(2), span_id(4) and trace_id(5).
fn walk_point(buf: &[u8], point: &Raw, exemplars: Option<u64>, out: &mut Fields) -> crate::Result<()> {
    for_fields(buf, point.start, point.end, out, |field, out| {
        match (field.number, field.wire_type) {
            (2 | 3, FIXED64) => out.push((field.start, Field::Time)),
            (n, LEN) if Some(n) == exemplars => for_fields(buf, field.start, field.end, out, |ex, out| {
                match (ex.number, ex.wire_type, ex.end - ex.start) {
                    (2, FIXED64, _) => out.push((ex.start, Field::Time)),
                    (4, LEN, 8) => out.push((ex.start, Field::SpanId)),
                    (5, LEN, 16) => out.push((ex.start, Field::TraceId)),
                    _ => {}
                }
                Ok(())
            })?,
            _ => {}
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Summary, SummaryDataPoint, metric,
    };
    use prost::Message;

    use super::*;

    fn u64_at(buf: &[u8], offset: usize) -> u64 {
        u64::from_le_bytes(buf[offset..offset + 8].try_into().expect("8 bytes"))
    }

    #[test]
    fn finds_every_time_and_exemplar_id_of_every_point_type() {
        let exemplar = |n: u8| Exemplar {
            time_unix_nano: 900 + u64::from(n),
            trace_id: vec![n; 16],
            span_id: vec![n; 8],
            ..Default::default()
        };
        let metric = |data| Metric { name: "m".into(), data: Some(data), ..Default::default() };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        metric(metric::Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint { time_unix_nano: 101, ..Default::default() }],
                        })),
                        metric(metric::Data::Sum(opentelemetry_proto::tonic::metrics::v1::Sum {
                            data_points: vec![NumberDataPoint {
                                start_time_unix_nano: 102,
                                time_unix_nano: 103,
                                exemplars: vec![exemplar(1)],
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        metric(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                start_time_unix_nano: 104,
                                time_unix_nano: 105,
                                count: 7,
                                bucket_counts: vec![3, 4],
                                explicit_bounds: vec![1.0],
                                exemplars: vec![exemplar(2)],
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                        })),
                        metric(metric::Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![ExponentialHistogramDataPoint {
                                start_time_unix_nano: 106,
                                time_unix_nano: 107,
                                count: 1,
                                exemplars: vec![exemplar(3)],
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        })),
                        metric(metric::Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                start_time_unix_nano: 108,
                                time_unix_nano: 109,
                                count: 2,
                                ..Default::default()
                            }],
                        })),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bytes = request.encode_to_vec();
        let mut fields = Vec::new();
        walk_metrics(&bytes, &mut fields).expect("walks");
        let mut times: Vec<u64> =
            fields.iter().filter(|(_, f)| *f == Field::Time).map(|(at, _)| u64_at(&bytes, *at)).collect();
        times.sort_unstable();
        assert_eq!(times, vec![101, 102, 103, 104, 105, 106, 107, 108, 109, 901, 902, 903]);
        let traces: Vec<u8> = fields.iter().filter(|(_, f)| *f == Field::TraceId).map(|(at, _)| bytes[*at]).collect();
        let spans: Vec<u8> = fields.iter().filter(|(_, f)| *f == Field::SpanId).map(|(at, _)| bytes[*at]).collect();
        assert_eq!((traces, spans), (vec![1, 2, 3], vec![1, 2, 3]));
    }

    #[test]
    fn malformed_bytes_are_refused() {
        let mut out = Vec::new();
        assert!(walk_traces(&[0x0a, 0x05, 0x01], &mut out).is_err(), "length past the end");
        assert!(walk_traces(&[0x0b], &mut out).is_err(), "group wire type");
        assert!(walk_metrics(&[0x0a, 0x02, 0x12, 0x09], &mut out).is_err(), "nested length past its parent");
    }
}
