//! Test-only: random metrics requests from a seed, and a re-encoder that
//! writes the same message in the other ways protobuf allows (fields out of
//! order, unknown fields, repeated numbers unpacked or in several packed
//! runs), for the wire reader's equivalence tests.

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
use prost::encoding::{WireType, encode_key, encode_varint};

/// splitmix64: deterministic, no dependency.
pub(super) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn count(&mut self, max: u64) -> usize {
        self.below(max + 1) as usize
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Doubles that break careless code: NaNs (one with a payload), infinities,
/// both zeros, a subnormal, extremes.
const SPECIAL_DOUBLES: [f64; 10] =
    [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, 5e-324, f64::MAX, f64::MIN, -1.5e-300, 0.1];

fn double(rng: &mut Rng) -> f64 {
    match rng.below(4) {
        0 if rng.one_in(4) => f64::from_bits(0x7ff8_0000_dead_beef),
        0 => rng.pick(&SPECIAL_DOUBLES),
        1 => (rng.next() as i64) as f64 / 1e3,
        2 => f64::from_bits(rng.next()),
        _ => rng.below(1000) as f64,
    }
}

fn int(rng: &mut Rng) -> i64 {
    match rng.below(3) {
        0 => rng.pick(&[i64::MIN, i64::MAX, 0, -1]),
        1 => rng.next() as i64,
        _ => rng.below(500) as i64,
    }
}

fn big_u64(rng: &mut Rng) -> u64 {
    match rng.below(3) {
        0 => rng.pick(&[u64::MAX, 0, 1 << 63]),
        1 => rng.next(),
        _ => rng.below(100),
    }
}

fn text(rng: &mut Rng) -> String {
    const WORDS: [&str; 8] = ["", "a", "GET", "/api/v1/items", "ünïcødé ✓", "日本語のテキスト", "x-y_z.w", "🌍🌍"];
    let mut s = String::new();
    for _ in 0..rng.below(3) {
        s.push_str(rng.pick(&WORDS));
    }
    s
}

fn bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Up to `max` random bytes.
fn some_bytes(rng: &mut Rng, max: u64) -> Vec<u8> {
    let len = rng.count(max);
    bytes(rng, len)
}

fn any_value(rng: &mut Rng, depth: u32) -> AnyValue {
    let kinds = if depth == 0 { 6 } else { 8 };
    let value = match rng.below(kinds) {
        0 => None,
        1 => Some(Value::StringValue(text(rng))),
        2 => Some(Value::BoolValue(rng.one_in(2))),
        3 => Some(Value::IntValue(int(rng))),
        4 => Some(Value::DoubleValue(double(rng))),
        5 => Some(Value::BytesValue(some_bytes(rng, 12))),
        6 => Some(Value::ArrayValue(ArrayValue {
            values: (0..rng.count(3)).map(|_| any_value(rng, depth - 1)).collect(),
        })),
        _ => Some(Value::KvlistValue(KeyValueList { values: attributes(rng, 3, depth - 1) })),
    };
    AnyValue { value }
}

/// Up to `max` attributes; keys from a small set, so lists come sorted,
/// unsorted and with duplicate keys.
fn attributes(rng: &mut Rng, max: u64, depth: u32) -> Vec<KeyValue> {
    const KEYS: [&str; 7] = ["service.name", "host.name", "http.route", "a", "z", "", "k"];
    (0..rng.count(max))
        .map(|_| KeyValue {
            key: rng.pick(&KEYS).into(),
            value: if rng.one_in(12) { None } else { Some(any_value(rng, depth)) },
            key_strindex: 0,
        })
        .collect()
}

fn id(rng: &mut Rng, good: usize) -> Vec<u8> {
    match rng.below(8) {
        0 => vec![],
        1 => some_bytes(rng, 20),
        _ => bytes(rng, good),
    }
}

fn exemplars(rng: &mut Rng) -> Vec<Exemplar> {
    (0..rng.count(2))
        .map(|_| Exemplar {
            filtered_attributes: attributes(rng, 2, 1),
            time_unix_nano: big_u64(rng),
            span_id: id(rng, 8),
            trace_id: id(rng, 16),
            value: match rng.below(3) {
                0 => None,
                1 => Some(exemplar::Value::AsDouble(double(rng))),
                _ => Some(exemplar::Value::AsInt(int(rng))),
            },
        })
        .collect()
}

/// Common point fields: attributes, start (often 0), time (rarely 0), flags.
fn common(rng: &mut Rng) -> (Vec<KeyValue>, u64, u64, u32) {
    let start = if rng.one_in(3) { 0 } else { big_u64(rng) };
    let time = if rng.one_in(15) { 0 } else { 1_700_000_000_000_000_000 + rng.below(1 << 40) };
    (attributes(rng, 4, 1), start, time, rng.below(4) as u32)
}

fn optional(rng: &mut Rng) -> Option<f64> {
    (!rng.one_in(3)).then(|| double(rng))
}

fn number_points(rng: &mut Rng) -> Vec<NumberDataPoint> {
    (0..rng.count(4))
        .map(|_| {
            let (attributes, start_time_unix_nano, time_unix_nano, flags) = common(rng);
            NumberDataPoint {
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                exemplars: exemplars(rng),
                flags,
                value: match rng.below(3) {
                    0 => None,
                    1 => Some(number_data_point::Value::AsDouble(double(rng))),
                    _ => Some(number_data_point::Value::AsInt(int(rng))),
                },
            }
        })
        .collect()
}

fn histogram_points(rng: &mut Rng) -> Vec<HistogramDataPoint> {
    (0..rng.count(4))
        .map(|_| {
            let (attributes, start_time_unix_nano, time_unix_nano, flags) = common(rng);
            let mut bounds: Vec<f64> = (0..rng.count(5)).map(|_| double(rng)).collect();
            // Mostly valid (sorted, no NaN), sometimes not.
            if !rng.one_in(5) {
                bounds.retain(|b| !b.is_nan());
                bounds.sort_by(f64::total_cmp);
                bounds.dedup();
            }
            let counts = match rng.below(6) {
                0 => 0,
                1 => rng.count(7),
                _ => bounds.len() + 1,
            };
            HistogramDataPoint {
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                count: big_u64(rng),
                sum: optional(rng),
                bucket_counts: (0..counts).map(|_| big_u64(rng)).collect(),
                explicit_bounds: bounds,
                exemplars: exemplars(rng),
                flags,
                min: optional(rng),
                max: optional(rng),
            }
        })
        .collect()
}

fn buckets(rng: &mut Rng) -> Option<Buckets> {
    (!rng.one_in(3)).then(|| Buckets {
        offset: rng.next() as i32 >> rng.below(32),
        bucket_counts: (0..rng.count(6)).map(|_| big_u64(rng)).collect(),
    })
}

fn exponential_points(rng: &mut Rng) -> Vec<ExponentialHistogramDataPoint> {
    (0..rng.count(3))
        .map(|_| {
            let (attributes, start_time_unix_nano, time_unix_nano, flags) = common(rng);
            ExponentialHistogramDataPoint {
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                count: big_u64(rng),
                sum: optional(rng),
                scale: rng.pick(&[0, -10, 20, i32::MIN, i32::MAX, 3]),
                zero_count: big_u64(rng),
                positive: buckets(rng),
                negative: buckets(rng),
                flags,
                exemplars: exemplars(rng),
                min: optional(rng),
                max: optional(rng),
                zero_threshold: double(rng),
            }
        })
        .collect()
}

fn summary_points(rng: &mut Rng) -> Vec<SummaryDataPoint> {
    (0..rng.count(3))
        .map(|_| {
            let (attributes, start_time_unix_nano, time_unix_nano, flags) = common(rng);
            SummaryDataPoint {
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                count: big_u64(rng),
                sum: double(rng),
                quantile_values: (0..rng.count(3))
                    .map(|_| ValueAtQuantile { quantile: double(rng), value: double(rng) })
                    .collect(),
                flags,
            }
        })
        .collect()
}

fn data(rng: &mut Rng) -> Option<Data> {
    let temporality = |rng: &mut Rng| rng.pick(&[0, 1, 2, 7, -1]);
    Some(match rng.below(11) {
        0 => return None,
        1 | 2 => Data::Gauge(Gauge { data_points: number_points(rng) }),
        3 | 4 => Data::Sum(Sum {
            data_points: number_points(rng),
            aggregation_temporality: temporality(rng),
            is_monotonic: rng.one_in(2),
        }),
        5 | 6 => {
            Data::Histogram(Histogram { data_points: histogram_points(rng), aggregation_temporality: temporality(rng) })
        }
        7 | 8 => Data::ExponentialHistogram(ExponentialHistogram {
            data_points: exponential_points(rng),
            aggregation_temporality: temporality(rng),
        }),
        _ => Data::Summary(Summary { data_points: summary_points(rng) }),
    })
}

fn metric(rng: &mut Rng) -> Metric {
    Metric {
        name: if rng.one_in(12) { String::new() } else { format!("m.{}", rng.below(5)) },
        description: text(rng),
        unit: text(rng),
        metadata: attributes(rng, 2, 1),
        data: data(rng),
    }
}

/// A request of up to 3 resources × 3 scopes × 4 metrics × 4 points.
pub(super) fn request(rng: &mut Rng) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: (0..rng.count(3))
            .map(|_| ResourceMetrics {
                resource: (!rng.one_in(5)).then(|| Resource {
                    attributes: attributes(rng, 5, 2),
                    dropped_attributes_count: rng.below(3) as u32,
                    entity_refs: vec![],
                }),
                scope_metrics: (0..rng.count(3))
                    .map(|_| ScopeMetrics {
                        scope: (!rng.one_in(4)).then(|| InstrumentationScope {
                            name: text(rng),
                            version: text(rng),
                            attributes: attributes(rng, 2, 1),
                            dropped_attributes_count: rng.below(2) as u32,
                        }),
                        metrics: (0..rng.count(4)).map(|_| metric(rng)).collect(),
                        schema_url: text(rng),
                    })
                    .collect(),
                schema_url: text(rng),
            })
            .collect(),
    }
}

/// What a field holds, as far as the re-encoder cares.
#[derive(Clone, Copy)]
enum Kind {
    Message(Msg),
    /// Repeated `fixed64` / `double`.
    Packed64,
    /// Repeated `uint64`.
    PackedVarint,
    Scalar,
}

#[derive(Clone, Copy)]
pub(super) enum Msg {
    Request,
    ResourceMetrics,
    Resource,
    ScopeMetrics,
    Scope,
    Metric,
    /// `Gauge`, `Sum`, `Histogram`, ... : field 1 holds points of this type.
    Points(Point),
    Point(Point),
    Buckets,
    Quantile,
    Exemplar,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

#[derive(Clone, Copy)]
pub(super) enum Point {
    Number,
    Histogram,
    Exponential,
    Summary,
}

fn kind(msg: Msg, field: u32) -> Kind {
    use Kind::{Message as M, Packed64, PackedVarint, Scalar};
    match (msg, field) {
        (Msg::Request, 1) => M(Msg::ResourceMetrics),
        (Msg::ResourceMetrics, 1) => M(Msg::Resource),
        (Msg::ResourceMetrics, 2) => M(Msg::ScopeMetrics),
        (Msg::Resource, 1) | (Msg::Scope, 3) | (Msg::Metric, 12) | (Msg::Exemplar, 7) | (Msg::KeyValueList, 1) => {
            M(Msg::KeyValue)
        }
        (Msg::ScopeMetrics, 1) => M(Msg::Scope),
        (Msg::ScopeMetrics, 2) => M(Msg::Metric),
        (Msg::Metric, 5 | 7) => M(Msg::Points(Point::Number)),
        (Msg::Metric, 9) => M(Msg::Points(Point::Histogram)),
        (Msg::Metric, 10) => M(Msg::Points(Point::Exponential)),
        (Msg::Metric, 11) => M(Msg::Points(Point::Summary)),
        (Msg::Points(point), 1) => M(Msg::Point(point)),
        (Msg::Point(Point::Number), 5) | (Msg::Point(Point::Histogram), 8) | (Msg::Point(Point::Exponential), 11) => {
            M(Msg::Exemplar)
        }
        (Msg::Point(Point::Number | Point::Summary), 7)
        | (Msg::Point(Point::Histogram), 9)
        | (Msg::Point(Point::Exponential), 1) => M(Msg::KeyValue),
        (Msg::Point(Point::Histogram), 6 | 7) => Packed64,
        (Msg::Point(Point::Exponential), 8 | 9) => M(Msg::Buckets),
        (Msg::Point(Point::Summary), 6) => M(Msg::Quantile),
        (Msg::Buckets, 2) => PackedVarint,
        (Msg::KeyValue, 2) | (Msg::ArrayValue, 1) => M(Msg::AnyValue),
        (Msg::AnyValue, 5) => M(Msg::ArrayValue),
        (Msg::AnyValue, 6) => M(Msg::KeyValueList),
        _ => Scalar,
    }
}

/// One field as read: number, wire type and raw payload (for scalars, the
/// encoded value; for length-delimited fields, the content).
struct Field {
    number: u32,
    wire: WireType,
    payload: Vec<u8>,
}

fn read_varint(buf: &mut &[u8]) -> u64 {
    prost::encoding::decode_varint(buf).expect("valid varint in prost's own encoding")
}

fn fields(mut buf: &[u8]) -> Vec<Field> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = read_varint(&mut buf);
        let number = (key >> 3) as u32;
        let (wire, len) = match key & 7 {
            0 => {
                let mut probe = buf;
                read_varint(&mut probe);
                (WireType::Varint, buf.len() - probe.len())
            }
            1 => (WireType::SixtyFourBit, 8),
            5 => (WireType::ThirtyTwoBit, 4),
            _ => {
                let len = read_varint(&mut buf) as usize;
                (WireType::LengthDelimited, len)
            }
        };
        out.push(Field { number, wire, payload: buf[..len].to_vec() });
        buf = &buf[len..];
    }
    out
}

fn put(out: &mut Vec<u8>, number: u32, wire: WireType, payload: &[u8]) {
    encode_key(number, wire, out);
    if wire == WireType::LengthDelimited {
        encode_varint(payload.len() as u64, out);
    }
    out.extend_from_slice(payload);
}

fn unknown_field(rng: &mut Rng, out: &mut Vec<u8>) {
    let number = 100 + rng.below(1000) as u32;
    match rng.below(4) {
        0 => {
            let mut v = Vec::new();
            encode_varint(rng.next(), &mut v);
            put(out, number, WireType::Varint, &v);
        }
        1 => put(out, number, WireType::SixtyFourBit, &rng.next().to_le_bytes()),
        2 => put(out, number, WireType::ThirtyTwoBit, &(rng.next() as u32).to_le_bytes()),
        _ => put(out, number, WireType::LengthDelimited, &some_bytes(rng, 9)),
    }
}

/// Writes a repeated number field packed (`width` 8: fixed, 0: varints) in
/// one or two runs, or unpacked.
fn repeated_numbers(rng: &mut Rng, out: &mut Vec<u8>, number: u32, payload: &[u8], width: usize) {
    let mut values: Vec<&[u8]> = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let len = if width == 8 {
            8
        } else {
            let mut probe = rest;
            read_varint(&mut probe);
            rest.len() - probe.len()
        };
        values.push(&rest[..len]);
        rest = &rest[len..];
    }
    match rng.below(3) {
        0 => {
            let wire = if width == 8 { WireType::SixtyFourBit } else { WireType::Varint };
            values.iter().for_each(|v| put(out, number, wire, v));
        }
        1 => {
            let cut = rng.count(values.len() as u64);
            put(out, number, WireType::LengthDelimited, &values[..cut].concat());
            put(out, number, WireType::LengthDelimited, &values[cut..].concat());
        }
        _ => put(out, number, WireType::LengthDelimited, payload),
    }
}

/// Re-encodes message `bytes` of type `msg`: fields grouped by number in a
/// random order (each field's own elements keep theirs), unknown fields
/// here and there, repeated numbers re-packed or unpacked. The result means
/// exactly what the input meant.
pub(super) fn reencode(rng: &mut Rng, msg: Msg, bytes: &[u8]) -> Vec<u8> {
    let mut fields = fields(bytes);
    let order: Vec<u64> = (0..32).map(|_| rng.next()).collect();
    fields.sort_by_key(|f| order[f.number as usize % 32] ^ u64::from(f.number));
    let mut out = Vec::new();
    for field in fields {
        if rng.one_in(6) {
            unknown_field(rng, &mut out);
        }
        match (kind(msg, field.number), field.wire) {
            (Kind::Message(inner), WireType::LengthDelimited) => {
                let payload = reencode(rng, inner, &field.payload);
                put(&mut out, field.number, field.wire, &payload);
            }
            (Kind::Packed64, WireType::LengthDelimited) => {
                repeated_numbers(rng, &mut out, field.number, &field.payload, 8)
            }
            (Kind::PackedVarint, WireType::LengthDelimited) => {
                repeated_numbers(rng, &mut out, field.number, &field.payload, 0)
            }
            _ => put(&mut out, field.number, field.wire, &field.payload),
        }
    }
    if rng.one_in(6) {
        unknown_field(rng, &mut out);
    }
    out
}
