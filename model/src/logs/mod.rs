//! The logs signal: OTLP log records ⇄ Arrow rows.
//!
//! On ingest the collector calls [`logs_to_arrow_from_protobuf`] (or
//! [`logs_to_arrow`] on a decoded request), which builds one batch in the
//! [`log_schema`] (one row per record) with the shard of every row: a
//! record carrying a valid trace ID goes to its trace's shard, so the logs
//! of a trace are read where its spans are. The query service turns rows
//! back into OTLP with [`log_rows_from_batch`] / [`log_rows_to_request`]
//! and renders them as Skein JSON with [`log_to_json`]. The schema is
//! lossless: what is read back equals what was sent.

mod from_arrow;
mod json;
pub mod schema;
mod to_arrow;

#[cfg(test)]
mod tests;

pub use from_arrow::{LogRow, log_rows_from_batch, log_rows_to_request};
pub use json::log_to_json;
pub use schema::{SEVERITY_BANDS, col, log_schema, severity_band, severity_floor};
pub use to_arrow::{LogBatch, logs_to_arrow, logs_to_arrow_from_protobuf};
