//! Pre-encoded requests, so that sending costs the generator a copy and a
//! few thousand byte patches rather than a protobuf encode.
//!
//! A [`Template`] is one generated request, encoded once, plus the offset of
//! every trace ID, span ID and timestamp inside the encoding (found by
//! walking the protobuf wire format). Each send copies the bytes, writes the
//! IDs of a fresh epoch (see [`IdScheme`]) and shifts the timestamps so that
//! spans look current. IDs and timestamps have fixed widths in protobuf, so
//! patching never changes the length or the structure of the message.

use std::collections::HashMap;

use anyhow::{Context, bail};
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::ids::{IdScheme, MAX_EPOCH};
use super::workload::generate_request;

/// A field to rewrite per send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patch {
    /// 16 bytes: the trace with this local number.
    Trace(u32),
    /// 8 bytes: the span with this local number.
    Span(u32),
    /// A fixed64 unix-nanosecond time to shift.
    Time,
}

/// One encoded request and where to patch it.
#[derive(Debug)]
pub struct Template {
    bytes: Vec<u8>,
    patches: Vec<(usize, Patch)>,
    spans: usize,
}

impl Template {
    /// Encodes `request`, whose IDs must be `ids`' epoch-0 IDs.
    pub fn new(request: &ExportTraceServiceRequest, ids: &IdScheme) -> anyhow::Result<Self> {
        let spans: Vec<_> = request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
        let traces = spans.iter().map(|s| s.trace_id.as_slice()).collect::<std::collections::HashSet<_>>().len();
        let trace_locals: HashMap<[u8; 16], u32> = (1..=traces as u32).map(|n| (ids.trace_id(0, n), n)).collect();
        let span_locals: HashMap<[u8; 8], u32> = (1..=spans.len() as u32).map(|n| (ids.span_id(0, n), n)).collect();
        let bytes = request.encode_to_vec();
        let mut fields = Vec::new();
        walk_request(&bytes, &mut fields).context("walking the encoded request")?;
        let mut patches = Vec::with_capacity(fields.len());
        for (offset, field) in fields {
            let patch = match field {
                Field::TraceId => {
                    let id: [u8; 16] = bytes[offset..offset + 16].try_into().context("trace ID width")?;
                    Patch::Trace(*trace_locals.get(&id).context("a trace ID not made by the ID scheme")?)
                }
                Field::SpanId => {
                    let id: [u8; 8] = bytes[offset..offset + 8].try_into().context("span ID width")?;
                    Patch::Span(*span_locals.get(&id).context("a span ID not made by the ID scheme")?)
                }
                Field::Time => Patch::Time,
            };
            patches.push((offset, patch));
        }
        Ok(Self { bytes, patches, spans: spans.len() })
    }

    pub fn spans(&self) -> usize {
        self.spans
    }

    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// The request with IDs of `epoch` and every time moved by `shift_ns`.
    pub fn instantiate(&self, ids: &IdScheme, epoch: u64, shift_ns: u64) -> Bytes {
        let mut out = self.bytes.clone();
        for &(offset, patch) in &self.patches {
            match patch {
                Patch::Trace(local) => out[offset..offset + 16].copy_from_slice(&ids.trace_id(epoch, local)),
                Patch::Span(local) => out[offset..offset + 8].copy_from_slice(&ids.span_id(epoch, local)),
                Patch::Time => {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(&out[offset..offset + 8]);
                    let shifted = u64::from_le_bytes(raw).saturating_add(shift_ns);
                    out[offset..offset + 8].copy_from_slice(&shifted.to_le_bytes());
                }
            }
        }
        Bytes::from(out)
    }
}

/// Distinct pre-encoded requests, used round-robin; every send gets a new
/// epoch, so no trace or span ID repeats within a run.
#[derive(Debug)]
pub struct Pool {
    templates: Vec<Template>,
    ids: IdScheme,
    generated_at_ns: u64,
}

impl Pool {
    /// Generates `size` requests of `spans` spans each, deterministic from `seed`.
    pub fn generate(seed: u64, size: usize, spans: usize, nonce: u64, now_ns: u64) -> anyhow::Result<Self> {
        let ids = IdScheme::new(nonce);
        let mut rng = StdRng::seed_from_u64(seed);
        let templates = (0..size)
            .map(|_| Template::new(&generate_request(&mut rng, &ids, spans, now_ns), &ids))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { templates, ids, generated_at_ns: now_ns })
    }

    /// The request for send number `epoch` (from 1) made at `now_ns`, and
    /// how many spans it holds.
    pub fn request(&self, epoch: u64, now_ns: u64) -> anyhow::Result<(Bytes, usize)> {
        if epoch == 0 || epoch > MAX_EPOCH {
            bail!("send number {epoch} is out of range 1..={MAX_EPOCH}");
        }
        let template = &self.templates[((epoch - 1) % self.templates.len() as u64) as usize];
        let shift = now_ns.saturating_sub(self.generated_at_ns);
        Ok((template.instantiate(&self.ids, epoch, shift), template.spans()))
    }

    /// Bytes of all pre-encoded requests.
    pub fn encoded_bytes(&self) -> usize {
        self.templates.iter().map(Template::encoded_len).sum()
    }
}

/// What a found field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    TraceId,
    SpanId,
    Time,
}

/// A protobuf field: number, wire type and the byte range of its payload.
struct Raw {
    number: u64,
    wire_type: u64,
    start: usize,
    end: usize,
}

fn varint(buf: &[u8], pos: &mut usize) -> anyhow::Result<u64> {
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
    mut f: impl FnMut(&Raw, &mut Vec<(usize, Field)>) -> anyhow::Result<()>,
    out: &mut Vec<(usize, Field)>,
) -> anyhow::Result<()> {
    let mut pos = start;
    while pos < end {
        let key = varint(buf, &mut pos)?;
        let (number, wire_type) = (key >> 3, key & 7);
        let payload_start;
        match wire_type {
            0 => {
                varint(buf, &mut pos)?;
                payload_start = pos;
            }
            1 => {
                payload_start = pos;
                pos += 8;
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?)?;
                payload_start = pos;
                pos += len;
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

/// ExportTraceServiceRequest.resource_spans(1) → ResourceSpans.scope_spans(2)
/// → ScopeSpans.spans(2) → Span.
fn walk_request(buf: &[u8], out: &mut Vec<(usize, Field)>) -> anyhow::Result<()> {
    for_fields(
        buf,
        0,
        buf.len(),
        |rs, out| {
            if rs.number != 1 || rs.wire_type != 2 {
                return Ok(());
            }
            for_fields(
                buf,
                rs.start,
                rs.end,
                |ss, out| {
                    if ss.number != 2 || ss.wire_type != 2 {
                        return Ok(());
                    }
                    for_fields(
                        buf,
                        ss.start,
                        ss.end,
                        |span, out| {
                            if span.number == 2 && span.wire_type == 2 { walk_span(buf, span, out) } else { Ok(()) }
                        },
                        out,
                    )
                },
                out,
            )
        },
        out,
    )
}

/// Span: trace_id(1), span_id(2), parent_span_id(4), start(7), end(8),
/// events(11) with time(1), links(13) with trace_id(1) and span_id(2).
fn walk_span(buf: &[u8], span: &Raw, out: &mut Vec<(usize, Field)>) -> anyhow::Result<()> {
    for_fields(
        buf,
        span.start,
        span.end,
        |field, out| {
            match (field.number, field.wire_type, field.end - field.start) {
                (1, 2, 16) => out.push((field.start, Field::TraceId)),
                (2 | 4, 2, 8) => out.push((field.start, Field::SpanId)),
                (7 | 8, 1, _) => out.push((field.start, Field::Time)),
                (11, 2, _) => for_fields(
                    buf,
                    field.start,
                    field.end,
                    |event, out| {
                        if event.number == 1 && event.wire_type == 1 {
                            out.push((event.start, Field::Time));
                        }
                        Ok(())
                    },
                    out,
                )?,
                (13, 2, _) => for_fields(
                    buf,
                    field.start,
                    field.end,
                    |link, out| {
                        match (link.number, link.wire_type, link.end - link.start) {
                            (1, 2, 16) => out.push((link.start, Field::TraceId)),
                            (2, 2, 8) => out.push((link.start, Field::SpanId)),
                            _ => {}
                        }
                        Ok(())
                    },
                    out,
                )?,
                _ => {}
            }
            Ok(())
        },
        out,
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const NOW: u64 = 1_750_000_000_000_000_000;

    fn decode(bytes: &Bytes) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(bytes.as_ref()).expect("still valid protobuf")
    }

    #[test]
    fn patching_rewrites_every_id_and_time_consistently() {
        let ids = IdScheme::new(99);
        let original = generate_request(&mut StdRng::seed_from_u64(1), &ids, 1000, NOW);
        let template = Template::new(&original, &ids).expect("template");
        let sent = decode(&template.instantiate(&ids, 5, 1_000));

        // Same request as if generated with epoch 5's IDs, times shifted.
        let mut expected = original.clone();
        let remap_trace = |id: &mut Vec<u8>| {
            let local = (1..=1000).find(|n| ids.trace_id(0, *n).as_slice() == id.as_slice()).expect("known trace");
            *id = ids.trace_id(5, local).to_vec();
        };
        let remap_span = |id: &mut Vec<u8>| {
            if !id.is_empty() {
                let local = (1..=1000).find(|n| ids.span_id(0, *n).as_slice() == id.as_slice()).expect("known span");
                *id = ids.span_id(5, local).to_vec();
            }
        };
        for span in expected.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans).flat_map(|s| &mut s.spans) {
            remap_trace(&mut span.trace_id);
            remap_span(&mut span.span_id);
            remap_span(&mut span.parent_span_id);
            span.start_time_unix_nano += 1_000;
            span.end_time_unix_nano += 1_000;
            for event in &mut span.events {
                event.time_unix_nano += 1_000;
            }
            for link in &mut span.links {
                remap_trace(&mut link.trace_id);
                remap_span(&mut link.span_id);
            }
        }
        assert_eq!(sent, expected);
        assert!(
            original
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .any(|s| !s.links.is_empty())
        );
    }

    #[test]
    fn no_span_or_trace_repeats_across_sends() {
        let pool = Pool::generate(3, 2, 200, 1, NOW).expect("pool");
        let mut spans = HashSet::new();
        let mut traces_seen: HashSet<Vec<u8>> = HashSet::new();
        for epoch in 1..=6 {
            let (bytes, count) = pool.request(epoch, NOW + 5).expect("request");
            assert_eq!(count, 200);
            let request = decode(&bytes);
            let mut traces_here = HashSet::new();
            for span in request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
                assert!(spans.insert(span.span_id.clone()), "span ID repeated in send {epoch}");
                traces_here.insert(span.trace_id.clone());
            }
            for trace in traces_here {
                assert!(traces_seen.insert(trace), "trace repeated in send {epoch}");
            }
        }
        assert!(pool.request(0, NOW).is_err());
    }

    #[test]
    fn malformed_bytes_are_refused() {
        let mut out = Vec::new();
        assert!(walk_request(&[0x0a, 0x05, 0x01], &mut out).is_err(), "length past the end");
        assert!(walk_request(&[0x0b], &mut out).is_err(), "group wire type");
    }
}
