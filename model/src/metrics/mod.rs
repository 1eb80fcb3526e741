//! The metrics signal: OTLP metric data points ⇄ Arrow rows.
//!
//! On ingest the collector calls [`metrics_to_arrow`], which validates each
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

#[cfg(test)]
mod tests;

use datafusion::arrow::array::RecordBatch;

pub use from_arrow::metric_requests_from_batch;
pub use schema::{col, metric_schema, metric_type, temporality};
pub use series::{series_hash, series_id, shard_for_series};
pub use to_arrow::metrics_to_arrow;

use crate::ModelError;

/// The result of converting one metrics export request.
#[derive(Debug)]
pub struct PointBatch {
    /// Accepted data points, in request order.
    pub batch: RecordBatch,
    /// Shard of each row of `batch` (empty when converted for one shard).
    pub shard_of_row: Vec<u32>,
    /// Data points refused (see [`metrics_to_arrow`] for the rules).
    pub rejected: u64,
    /// Attribute values cut to the size limit.
    pub truncated_values: u64,
    /// A human-readable reason for the first refusal or truncation.
    pub first_error: Option<String>,
}

impl PointBatch {
    /// Splits the batch into one batch per shard, skipping empty shards.
    pub fn split_by_shard(&self, shard_count: usize) -> Result<Vec<(usize, RecordBatch)>, ModelError> {
        crate::arrow_build::split_by_shard(&self.batch, &self.shard_of_row, shard_count)
    }
}
