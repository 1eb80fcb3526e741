//! The metrics signal: OTLP metric data points ⇄ Arrow rows.
//!
//! On ingest the collector calls [`metrics_to_arrow_from_protobuf`] (or
//! [`metrics_to_arrow`] on a decoded request), which validates each
//! data point and builds one batch in the [`metric_schema`] (one row per
//! point, all five point types in one table) with the shard of every row:
//! points are sharded by series ([`shard_for_series`]), so a series lives on
//! one shard. The query service turns rows back into OTLP with
//! [`metric_requests_from_batch`]. The schema is lossless.

mod builders;
mod from_arrow;
pub mod schema;
pub mod series;
mod to_arrow;
mod view;
mod wire;

#[cfg(test)]
mod test_gen;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;

pub use from_arrow::metric_requests_from_batch;
pub use schema::{col, metric_schema, metric_type, temporality};
pub use series::{series_hash, series_id, shard_for_series};
pub use to_arrow::{metrics_to_arrow, metrics_to_arrow_from_protobuf};

/// The result of converting one metrics export request.
pub type PointBatch = crate::otlp_to_arrow::ConvertedBatch;
