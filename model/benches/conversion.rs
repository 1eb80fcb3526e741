//! Hot paths of ingest and trace lookup on a realistic 512-span request:
//! OTLP protobuf decode (prost), OTLP → Arrow (`spans_to_arrow`), the
//! ingest path's protobuf bytes → Arrow in one pass
//! (`spans_to_arrow_from_protobuf`) and Arrow → OTLP (`records_from_batch`).
//! Run with `cargo bench -p skein-model`.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use skein_model::{ConvertLimits, records_from_batch, spans_to_arrow, spans_to_arrow_from_protobuf};

const SPANS: usize = 512;
/// A typical all-in-one shard count; it only changes the shard column.
const SHARDS: usize = 4;

fn otlp_decode(c: &mut Criterion) {
    let encoded = common::request(SPANS).encode_to_vec();
    let mut group = c.benchmark_group("otlp_decode");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("512_spans", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(encoded.as_slice())).expect("valid protobuf"))
    });
    group.finish();
}

fn otlp_to_arrow(c: &mut Criterion) {
    let request = common::request(SPANS);
    let limits = ConvertLimits::default();
    let mut group = c.benchmark_group("otlp_to_arrow");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("512_spans", |b| {
        b.iter(|| spans_to_arrow(black_box(&request), &limits, SHARDS).expect("converts"))
    });
    group.finish();
}

fn protobuf_to_arrow(c: &mut Criterion) {
    let encoded = common::request(SPANS).encode_to_vec();
    let limits = ConvertLimits::default();
    let mut group = c.benchmark_group("protobuf_to_arrow");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("512_spans", |b| {
        b.iter(|| spans_to_arrow_from_protobuf(black_box(&encoded), &limits, SHARDS).expect("converts"))
    });
    group.finish();
}

fn arrow_to_otlp(c: &mut Criterion) {
    let converted = spans_to_arrow(&common::request(SPANS), &ConvertLimits::default(), SHARDS).expect("converts");
    assert_eq!(converted.batch.num_rows(), SPANS, "every generated span is valid");
    let mut group = c.benchmark_group("arrow_to_otlp");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("512_spans", |b| {
        b.iter(|| records_from_batch(black_box(&converted.batch)).expect("converts back"))
    });
    group.finish();
}

criterion_group!(benches, otlp_decode, otlp_to_arrow, protobuf_to_arrow, arrow_to_otlp);
criterion_main!(benches);
