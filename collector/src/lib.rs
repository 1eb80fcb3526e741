//! The collector role: stateless OTLP receivers in front of storage.
//!
//! Spans, metric data points and log records arrive over OTLP/gRPC
//! (`TraceService/Export`, `MetricsService/Export` and `LogsService/Export`
//! on one server, grpc.rs) or OTLP/HTTP (`POST /v1/traces`, `/v1/metrics`
//! and `/v1/logs`, protobuf or JSON, optionally gzip, http.rs and codec.rs;
//! on the same port Zipkin v2 JSON spans at `POST /api/v2/spans`,
//! zipkin.rs, mapped to an OTLP request, and CORS for browser exporters,
//! cors.rs). The transports and the ingest path are written once, generic
//! over a [`Signal`](signal::Signal) that names what differs per signal
//! (signal.rs): the request and response messages, the conversion, the
//! storage call and the partial-success answer. Each transport checks the
//! request cheaply, takes a slot from the concurrency limit every signal
//! and transport shares (or answers "overloaded" at once), decodes the body
//! under the size limit and hands the request to the shared ingest path
//! (ingest.rs): `skein_model::spans_to_arrow`,
//! `skein_model::metrics::metrics_to_arrow` or `skein_model::logs_to_arrow`
//! validates and converts it, the batch is split by shard (trace ID for
//! spans and for logs that carry one, series for points), every part is
//! written concurrently through the [`ShardWriter`] of the request's tenant
//! (from the injected [`TenantWriters`]), and the
//! client is acknowledged only once all parts are durable. Invalid spans
//! and points are reported in `partial_success`; failures are classified
//! once, by [`CollectorError::class`], into HTTP statuses and gRPC codes.
//! In a cluster the writer is a [`RemoteShardWriter`], which sends each
//! shard's batch to the storage node that owns it over Arrow Flight.
//!
//! [`ShardWriter`]: skein_model::ShardWriter
//! [`TenantWriters`]: skein_model::TenantWriters

mod codec;
mod config;
mod cors;
mod error;
mod grpc;
mod http;
mod http_serve;
mod ingest;
mod metrics;
mod metrics_json;
mod remote;
mod server;
mod signal;
mod tenant_limits;
mod zipkin;

#[cfg(test)]
mod cors_tests;
#[cfg(test)]
mod grpc_tests;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod json_tests;
#[cfg(test)]
mod logs_tests;
#[cfg(test)]
mod metric_fixtures;
#[cfg(test)]
mod metrics_grpc_tests;
#[cfg(test)]
mod metrics_http_tests;
#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod zipkin_tests;

pub use config::CollectorConfig;
pub use error::CollectorError;
pub use remote::RemoteShardWriter;
pub use server::CollectorServer;
pub use tenant_limits::{TenantIngestLimits, TenantRates};
