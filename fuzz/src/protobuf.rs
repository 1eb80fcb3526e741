//! OTLP/protobuf bodies through the converters ingest uses. The zero-copy
//! wire readers must give exactly what prost's decode followed by the
//! converter gives, accept nothing prost refuses, and produce batches in the
//! signal's schema: a differential check, so a misread field is found even
//! when nothing panics.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use skein_model::{
    ConvertLimits, ConvertedBatch, ModelError, Signal, logs_to_arrow_from_protobuf, metrics_to_arrow,
    metrics_to_arrow_from_protobuf, spans_to_arrow, spans_to_arrow_from_protobuf,
};

use crate::fixtures;

/// Shards the fuzzed rows are split over (a cluster's default is 64; a
/// small count makes every shard see rows).
const SHARDS: usize = 8;

/// Small enough that the fixtures' values and mutated ones get truncated.
const LIMITS: ConvertLimits = ConvertLimits { max_attribute_value_bytes: 16 };

pub fn traces(data: &[u8]) {
    let fast = spans_to_arrow_from_protobuf(data, &LIMITS, SHARDS);
    let reference = ExportTraceServiceRequest::decode(data).map(|request| spans_to_arrow(&request, &LIMITS, SHARDS));
    agree(Signal::Spans, fast, reference);
}

pub fn metrics(data: &[u8]) {
    let fast = metrics_to_arrow_from_protobuf(data, &LIMITS, SHARDS);
    let reference =
        ExportMetricsServiceRequest::decode(data).map(|request| metrics_to_arrow(&request, &LIMITS, SHARDS));
    agree(Signal::Metrics, fast, reference);
}

/// Log bodies have one decoder (prost), and records without a time get the
/// time they arrived, so two conversions differ: only the invariants hold.
pub fn logs(data: &[u8]) {
    if let Ok(converted) = logs_to_arrow_from_protobuf(data, &LIMITS, SHARDS) {
        well_formed(Signal::Logs, &converted);
    }
}

/// Panics unless the fast path's result is prost's.
fn agree(
    signal: Signal,
    fast: Result<ConvertedBatch, ModelError>,
    reference: Result<Result<ConvertedBatch, ModelError>, prost::DecodeError>,
) {
    match (fast, reference) {
        (Err(_), Err(_)) => {}
        (Ok(fast), Err(error)) => panic!("the wire reader accepted a body prost refuses ({error}): {fast:?}"),
        (Ok(fast), Ok(Ok(reference))) => {
            assert_eq!(fast.batch, reference.batch, "the wire reader read other rows than prost");
            assert_eq!(fast.shard_of_row, reference.shard_of_row);
            assert_eq!(fast.rejected, reference.rejected);
            assert_eq!(fast.truncated_values, reference.truncated_values);
            assert_eq!(fast.first_error, reference.first_error);
            well_formed(signal, &fast);
        }
        (Err(fast), Ok(Ok(reference))) => panic!("the wire reader refused ({fast}) what prost converts: {reference:?}"),
        (Ok(fast), Ok(Err(reference))) => {
            panic!("the wire reader converted what prost's path refuses ({reference}): {fast:?}")
        }
        (Err(fast), Ok(Err(reference))) => assert_eq!(fast.to_string(), reference.to_string()),
    }
}

/// Panics unless `converted` is in the signal's schema, with a shard in range
/// for every row.
fn well_formed(signal: Signal, converted: &ConvertedBatch) {
    assert_eq!(converted.batch.schema(), signal.schema(), "a converted batch is not in the {signal} schema");
    assert_eq!(converted.shard_of_row.len(), converted.batch.num_rows());
    assert!(converted.shard_of_row.iter().all(|&shard| (shard as usize) < SHARDS));
    let parts = converted.split_by_shard(SHARDS).expect("a converted batch splits by shard");
    assert_eq!(parts.iter().map(|(_, part)| part.num_rows()).sum::<usize>(), converted.batch.num_rows());
}

pub fn traces_seeds() -> Vec<Vec<u8>> {
    vec![fixtures::traces_request().encode_to_vec(), Vec::new()]
}

pub fn metrics_seeds() -> Vec<Vec<u8>> {
    vec![fixtures::metrics_request().encode_to_vec(), Vec::new()]
}

pub fn logs_seeds() -> Vec<Vec<u8>> {
    vec![fixtures::logs_request().encode_to_vec(), Vec::new()]
}
