//! What differs between the OTLP signals the collector accepts, and nothing
//! else: the request and response messages, the conversion to Arrow, the
//! storage call, and the partial-success answer. The transports and the
//! ingest path are written once, generic over [`Signal`].

use futures::future::BoxFuture;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use skein_model::metrics::{metrics_to_arrow, metrics_to_arrow_from_protobuf};
use skein_model::{
    ConvertLimits, ConvertedBatch, ModelError, RecordBatch, ShardWriter, WriteError, WriteReceipt, logs_to_arrow,
    logs_to_arrow_from_protobuf, spans_to_arrow, spans_to_arrow_from_protobuf,
};

use crate::CollectorError;

/// The signals, as a value: for metric labels, log fields and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SignalKind {
    Traces,
    Metrics,
    Logs,
}

impl SignalKind {
    /// The `signal` label value and log field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SignalKind::Traces => "traces",
            SignalKind::Metrics => "metrics",
            SignalKind::Logs => "logs",
        }
    }

    /// What one item of the signal is called in messages.
    pub(crate) fn item(self) -> &'static str {
        match self {
            SignalKind::Traces => "span",
            SignalKind::Metrics => "data point",
            SignalKind::Logs => "log record",
        }
    }
}

/// A request converted and split by shard, ready to write.
pub(crate) struct Converted {
    /// One batch per shard that has rows, each written to that shard.
    pub parts: Vec<(usize, RecordBatch)>,
    /// Items (spans, points) in `parts`.
    pub accepted: u64,
    /// Items refused as invalid.
    pub rejected: u64,
    /// Attribute values cut to the size limit.
    pub truncated: u64,
    /// Why the first item was refused (or a value truncated).
    pub first_error: Option<String>,
}

impl Converted {
    /// Splits either signal's conversion result over `shard_count` shards.
    fn split(converted: ConvertedBatch, shard_count: usize) -> Result<Self, ModelError> {
        Ok(Converted {
            parts: converted.split_by_shard(shard_count)?,
            accepted: converted.batch.num_rows() as u64,
            rejected: converted.rejected,
            truncated: converted.truncated_values,
            first_error: converted.first_error,
        })
    }

    /// [`Converted::split`] for a conversion from protobuf bytes: bytes that
    /// do not decode are the client's error.
    fn from_protobuf(
        converted: Result<ConvertedBatch, ModelError>,
        shard_count: usize,
    ) -> Result<Self, CollectorError> {
        match converted {
            Ok(converted) => Ok(Self::split(converted, shard_count)?),
            Err(ModelError::InvalidProtobuf(e)) => Err(invalid_protobuf(e)),
            Err(e) => Err(e.into()),
        }
    }
}

/// An export request as received: protobuf bytes, decoded in the
/// conversion task (without copying strings), or a message decoded
/// from OTLP/JSON.
pub(crate) enum Payload<R> {
    Protobuf(bytes::Bytes),
    Decoded(R),
}

/// The rejected count and reason for a response's `partial_success`.
pub(crate) struct PartialSuccess {
    pub rejected: u64,
    pub message: String,
}

/// One OTLP signal: everything the shared transport and ingest code needs
/// to know about it.
pub(crate) trait Signal: Send + Sync + 'static {
    type Request: prost::Message + Default + DeserializeOwned + Send + 'static;
    type Response: prost::Message + Serialize + Send + 'static;

    const KIND: SignalKind;
    /// The gRPC service (`package.Service`) whose `Export` method takes the signal.
    const GRPC_SERVICE: &'static str;

    /// Validates and converts a request (CPU work; run off the async
    /// workers) and splits it over `shard_count` shards.
    fn convert(request: &Self::Request, limits: &ConvertLimits, shard_count: usize) -> Result<Converted, ModelError>;

    /// [`Signal::convert`] for a protobuf-encoded request; bytes that do not
    /// decode are the client's error.
    fn convert_protobuf(body: &[u8], limits: &ConvertLimits, shard_count: usize) -> Result<Converted, CollectorError> {
        let request = <Self::Request as prost::Message>::decode(body).map_err(invalid_protobuf)?;
        Ok(Self::convert(&request, limits, shard_count)?)
    }

    /// Durably writes one shard's part.
    fn write(
        writer: &dyn ShardWriter,
        shard: usize,
        batch: RecordBatch,
    ) -> BoxFuture<'_, Result<WriteReceipt, WriteError>>;

    /// The export response, with `partial_success` set when given.
    fn response(partial: Option<PartialSuccess>) -> Self::Response;

    /// Whether the response reports full success (no `partial_success`).
    fn is_full_success(response: &Self::Response) -> bool;

    /// Checks a request decoded from OTLP/JSON `body` for errors the
    /// decoder lets pass.
    fn check_json(body: &[u8], request: &Self::Request) -> Result<(), CollectorError> {
        let _ = (body, request);
        Ok(())
    }
}

/// OTLP traces: spans, sharded by trace ID.
pub(crate) struct Traces;

impl Signal for Traces {
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;

    const KIND: SignalKind = SignalKind::Traces;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";

    fn convert(request: &Self::Request, limits: &ConvertLimits, shard_count: usize) -> Result<Converted, ModelError> {
        Converted::split(spans_to_arrow(request, limits, shard_count)?, shard_count)
    }

    fn convert_protobuf(body: &[u8], limits: &ConvertLimits, shard_count: usize) -> Result<Converted, CollectorError> {
        Converted::from_protobuf(spans_to_arrow_from_protobuf(body, limits, shard_count), shard_count)
    }

    fn write(
        writer: &dyn ShardWriter,
        shard: usize,
        batch: RecordBatch,
    ) -> BoxFuture<'_, Result<WriteReceipt, WriteError>> {
        writer.write(skein_model::Signal::Spans, shard, batch)
    }

    fn response(partial: Option<PartialSuccess>) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: partial.map(|p| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(p.rejected).unwrap_or(i64::MAX),
                error_message: p.message,
            }),
        }
    }

    fn is_full_success(response: &Self::Response) -> bool {
        response.partial_success.is_none()
    }
}

/// OTLP metrics: data points, sharded by series.
pub(crate) struct Metrics;

impl Signal for Metrics {
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;

    const KIND: SignalKind = SignalKind::Metrics;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";

    fn convert(request: &Self::Request, limits: &ConvertLimits, shard_count: usize) -> Result<Converted, ModelError> {
        Converted::split(metrics_to_arrow(request, limits, shard_count)?, shard_count)
    }

    fn convert_protobuf(body: &[u8], limits: &ConvertLimits, shard_count: usize) -> Result<Converted, CollectorError> {
        Converted::from_protobuf(metrics_to_arrow_from_protobuf(body, limits, shard_count), shard_count)
    }

    fn write(
        writer: &dyn ShardWriter,
        shard: usize,
        batch: RecordBatch,
    ) -> BoxFuture<'_, Result<WriteReceipt, WriteError>> {
        writer.write(skein_model::Signal::Metrics, shard, batch)
    }

    fn response(partial: Option<PartialSuccess>) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: partial.map(|p| ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(p.rejected).unwrap_or(i64::MAX),
                error_message: p.message,
            }),
        }
    }

    fn is_full_success(response: &Self::Response) -> bool {
        response.partial_success.is_none()
    }

    fn check_json(body: &[u8], request: &Self::Request) -> Result<(), CollectorError> {
        crate::metrics_json::check(body, request)
    }
}

/// OTLP logs: log records, sharded by trace ID when they carry one.
pub(crate) struct Logs;

impl Signal for Logs {
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;

    const KIND: SignalKind = SignalKind::Logs;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";

    fn convert(request: &Self::Request, limits: &ConvertLimits, shard_count: usize) -> Result<Converted, ModelError> {
        Converted::split(logs_to_arrow(request, limits, shard_count)?, shard_count)
    }

    fn convert_protobuf(body: &[u8], limits: &ConvertLimits, shard_count: usize) -> Result<Converted, CollectorError> {
        Converted::from_protobuf(logs_to_arrow_from_protobuf(body, limits, shard_count), shard_count)
    }

    fn write(
        writer: &dyn ShardWriter,
        shard: usize,
        batch: RecordBatch,
    ) -> BoxFuture<'_, Result<WriteReceipt, WriteError>> {
        writer.write(skein_model::Signal::Logs, shard, batch)
    }

    fn response(partial: Option<PartialSuccess>) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: partial.map(|p| ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(p.rejected).unwrap_or(i64::MAX),
                error_message: p.message,
            }),
        }
    }

    fn is_full_success(response: &Self::Response) -> bool {
        response.partial_success.is_none()
    }
}

fn invalid_protobuf(error: prost::DecodeError) -> CollectorError {
    CollectorError::InvalidRequest(format!("invalid protobuf body: {error}"))
}
