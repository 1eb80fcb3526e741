//! Skein's query role: federates DataFusion over every storage shard and
//! serves the HTTP API (default port 7300).
//!
//! Each shard hands over one DataFusion `TableProvider` of its spans (local
//! storage in all-in-one, a remote client in a cluster). [`FederatedSpans`]
//! joins them into one `spans` table: a scan is pushed down to every shard
//! (projection, filters, limit) and the shard plans are unioned. Each
//! request gets a fresh session from [`QueryEngine`], with its own memory
//! pool, a time limit and a cap on returned rows, so one query cannot starve
//! the others. On top of the engine: read-only SQL (`/api/v1/sql`, checked
//! before planning), trace lookup decoded back to OTLP with `skein-model`,
//! two-phase trace search, and service/operation listings. [`QueryServer`]
//! binds the listener and serves the API plus health and metrics.

mod config;
mod engine;
mod error;
mod federation;
mod format;
mod metrics;
mod params;
mod safety;
mod search;
mod server;
mod services;
mod sql_api;
mod traces;

#[cfg(test)]
mod test_support;

pub use config::QueryConfig;
pub use engine::{QueryEngine, QueryResult, SPANS_TABLE};
pub use error::QueryError;
pub use federation::FederatedSpans;
pub use format::OutputFormat;
pub use search::{SearchQuery, TraceSummary};
pub use server::QueryServer;
pub use services::Operation;
