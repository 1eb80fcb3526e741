//! The collector role: stateless OTLP receivers in front of storage.
//!
//! Spans arrive over OTLP/gRPC (`TraceService/Export`, grpc.rs) or
//! OTLP/HTTP (`POST /v1/traces`, protobuf or JSON, optionally gzip,
//! http.rs and codec.rs). Each transport checks the request cheaply, takes a slot from
//! the concurrency limit both share (or answers "overloaded" at once),
//! decodes the body under the size limit and hands the request to the
//! shared ingest path (ingest.rs): `skein_model::spans_to_arrow` validates
//! and converts the spans, the batch is split by shard, every part is
//! written concurrently through the injected [`ShardWriter`], and the
//! client is acknowledged only once all parts are durable. Invalid spans
//! are reported in `partial_success`; failures are classified once, by
//! [`CollectorError::class`], into HTTP statuses and gRPC codes.
//!
//! [`ShardWriter`]: skein_model::ShardWriter

mod codec;
mod config;
mod error;
mod grpc;
mod http;
mod ingest;
mod metrics;
mod server;

#[cfg(test)]
mod grpc_tests;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod json_tests;
#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod test_support;

pub use config::CollectorConfig;
pub use error::CollectorError;
pub use server::CollectorServer;
