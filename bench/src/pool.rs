//! Pre-encoded requests, so that sending costs the generator a copy and a
//! few thousand byte patches rather than a protobuf encode.
//!
//! A [`Template`] is one generated request (traces or metrics), encoded
//! once, plus the offset of every trace ID, span ID and timestamp inside
//! the encoding (found by [`wire`](super::wire)). Each send copies the
//! bytes, writes the IDs of a fresh epoch (see [`IdScheme`]) and shifts the
//! timestamps by the pool's [`Clock`]. IDs and timestamps have fixed widths
//! in protobuf, so patching never changes the length or the structure of
//! the message.

use std::collections::{HashMap, HashSet};

use crate::error::{Context, bail};
use bytes::Bytes;
use prost::Message;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::ids::{IdScheme, MAX_EPOCH};
use super::metrics_workload::{self, MetricsPlan};
use super::wire::{self, Field, Fields};
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
    items: usize,
}

impl Template {
    /// Takes an encoded request holding `items` spans or data points and
    /// the fields `wire` found in it. Its IDs must be `ids`' epoch-0 IDs
    /// with local numbers up to `traces` and `spans`.
    fn new(
        bytes: Vec<u8>,
        fields: Fields,
        ids: &IdScheme,
        traces: u32,
        spans: u32,
        items: usize,
    ) -> crate::Result<Self> {
        let trace_locals: HashMap<[u8; 16], u32> = (1..=traces).map(|n| (ids.trace_id(0, n), n)).collect();
        let span_locals: HashMap<[u8; 8], u32> = (1..=spans).map(|n| (ids.span_id(0, n), n)).collect();
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
        Ok(Self { bytes, patches, items })
    }

    /// A trace request; its trace `n` and span `n` use local number `n`.
    pub fn traces(
        request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        ids: &IdScheme,
    ) -> crate::Result<Self> {
        let spans: Vec<_> = request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
        let traces = spans.iter().map(|s| s.trace_id.as_slice()).collect::<HashSet<_>>().len();
        let bytes = request.encode_to_vec();
        let mut fields = Vec::new();
        wire::walk_traces(&bytes, &mut fields).context("walking the encoded request")?;
        let traces = u32::try_from(traces).context("too many traces in one request")?;
        let span_count = u32::try_from(spans.len()).context("too many spans in one request")?;
        Self::new(bytes, fields, ids, traces, span_count, spans.len())
    }

    /// A metrics request of `points` data points whose exemplar `n` has
    /// trace and span local number `n`.
    pub fn metrics(
        request: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
        ids: &IdScheme,
        points: usize,
        exemplars: u32,
    ) -> crate::Result<Self> {
        let bytes = request.encode_to_vec();
        let mut fields = Vec::new();
        wire::walk_metrics(&bytes, &mut fields).context("walking the encoded request")?;
        Self::new(bytes, fields, ids, exemplars, exemplars, points)
    }

    /// Spans or data points in the request.
    pub fn items(&self) -> usize {
        self.items
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

/// How a send's times are shifted from its template's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// By the wall time since the pool was generated, so spans look current.
    /// With a replay, the templates lie `spread_ns` in the past and time
    /// runs `spread_ns / run_ns` faster: the run sends a whole window of
    /// history in order, ending at the present.
    Wall { generated_at_ns: u64, replay: Option<Replay> },
    /// By whole passes over the pool: pass `c` (from 0) adds `c × pass_ns`.
    /// The templates are consecutive stretches of one timeline `pass_ns`
    /// long, so a series' times keep increasing and never repeat.
    Passes { pass_ns: u64 },
}

/// Past data sent fast: `spread_ns` of history over a run of `run_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    pub spread_ns: u64,
    pub run_ns: u64,
}

impl Replay {
    /// How far into the window the send at `elapsed_ns` of the run is.
    fn offset_ns(&self, elapsed_ns: u64) -> u64 {
        let fraction = elapsed_ns.min(self.run_ns) as f64 / self.run_ns.max(1) as f64;
        (self.spread_ns as f64 * fraction) as u64
    }
}

/// Distinct pre-encoded requests, used round-robin; every send gets a new
/// epoch, so no trace or span ID repeats within a run.
#[derive(Debug)]
pub struct Pool {
    templates: Vec<Template>,
    ids: IdScheme,
    clock: Clock,
}

impl Pool {
    /// Generates `size` trace requests of `spans` spans each, deterministic
    /// from `seed`; with a `replay`, sends walk through its window of the past.
    pub fn traces(
        seed: u64,
        size: usize,
        spans: usize,
        nonce: u64,
        now_ns: u64,
        replay: Option<Replay>,
    ) -> crate::Result<Self> {
        let ids = IdScheme::new(nonce);
        let mut rng = StdRng::seed_from_u64(seed);
        let base_ns = now_ns.saturating_sub(replay.map_or(0, |r| r.spread_ns));
        let templates = (0..size)
            .map(|_| Template::traces(&generate_request(&mut rng, &ids, spans, base_ns), &ids))
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Self { templates, ids, clock: Clock::Wall { generated_at_ns: now_ns, replay } })
    }

    /// Generates the metrics `plan` asks for: consecutive requests of the
    /// shop's metrics timeline (see [`metrics_workload`]).
    pub fn metrics(plan: &MetricsPlan, nonce: u64) -> crate::Result<Self> {
        let ids = IdScheme::new(nonce);
        let generated = metrics_workload::generate(plan, &ids);
        let templates = generated
            .requests
            .iter()
            .map(|r| Template::metrics(&r.request, &ids, r.points, r.exemplars))
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Self { templates, ids, clock: Clock::Passes { pass_ns: generated.pass_ns } })
    }

    /// The request for send number `epoch` (from 1) made at `now_ns`, and
    /// how many spans or data points it holds.
    pub fn request(&self, epoch: u64, now_ns: u64) -> crate::Result<(Bytes, usize)> {
        if epoch == 0 || epoch > MAX_EPOCH {
            bail!("send number {epoch} is out of range 1..={MAX_EPOCH}");
        }
        let size = self.templates.len() as u64;
        let template = &self.templates[((epoch - 1) % size) as usize];
        let shift = match self.clock {
            Clock::Wall { generated_at_ns, replay } => {
                let elapsed = now_ns.saturating_sub(generated_at_ns);
                elapsed + replay.map_or(0, |r| r.offset_ns(elapsed))
            }
            Clock::Passes { pass_ns } => ((epoch - 1) / size).saturating_mul(pass_ns),
        };
        Ok((template.instantiate(&self.ids, epoch, shift), template.items()))
    }

    /// Bytes of all pre-encoded requests.
    pub fn encoded_bytes(&self) -> usize {
        self.templates.iter().map(Template::encoded_len).sum()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    use super::*;

    const NOW: u64 = 1_750_000_000_000_000_000;

    fn decode(bytes: &Bytes) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(bytes.as_ref()).expect("still valid protobuf")
    }

    #[test]
    fn patching_rewrites_every_id_and_time_consistently() {
        let ids = IdScheme::new(99);
        let original = generate_request(&mut StdRng::seed_from_u64(1), &ids, 1000, NOW);
        let template = Template::traces(&original, &ids).expect("template");
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
        let pool = Pool::traces(3, 2, 200, 1, NOW, None).expect("pool");
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
    fn a_replay_walks_through_the_window_and_ends_at_the_present() {
        const HOUR: u64 = 3_600_000_000_000;
        let replay = Replay { spread_ns: 24 * HOUR, run_ns: 60_000_000_000 };
        let pool = Pool::traces(3, 1, 100, 1, NOW, Some(replay)).expect("pool");
        let starts = |now: u64| {
            let request = decode(&pool.request(1, now).expect("request").0);
            let spans: Vec<u64> = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| s.start_time_unix_nano)
                .collect();
            (spans.iter().copied().min().expect("spans"), spans.iter().copied().max().expect("spans"))
        };
        // Generated traces start within two seconds before their base time.
        let (first, _) = starts(NOW);
        assert!(first > NOW - 24 * HOUR - 3_000_000_000 && first < NOW - 24 * HOUR, "run start: a day ago");
        let (half, _) = starts(NOW + 30_000_000_000);
        assert!(half > NOW - 12 * HOUR - 3_000_000_000 && half < NOW - 12 * HOUR + 30_000_000_000, "halfway");
        let (end, last) = starts(NOW + 90_000_000_000);
        assert!(end > NOW + 90_000_000_000 - 3_000_000_000, "after the run: real time");
        assert!(last <= NOW + 90_000_000_000, "never in the future");
    }
}
