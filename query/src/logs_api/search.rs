//! The log queries on the engine: a page of matching records (newest
//! first), counts per step and severity, and the logs of one trace.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{SortExpr, cast as cast_expr, col, lit};
use skein_model::logs::{LogRow, col as log_col, log_rows_from_batch};
use skein_model::shard_for_trace;

use super::filter::LogFilter;
use crate::engine::LOGS_TABLE;
use crate::{QueryEngine, QueryError};

/// The first window a page looks in, back from its end, and how much
/// longer each next one is: the newest records are found by reading the
/// newest data only.
const FIRST_WINDOW_NS: i64 = 60 * 1_000_000_000;
const WINDOW_GROWTH: i64 = 8;
/// The most log records of one trace returned.
pub const MAX_TRACE_LOGS: usize = 10_000;

/// Where a page ends: the timestamp of its last record and how many
/// records with that timestamp the pages so far returned. Records are
/// ordered by every column a user sees, so records tied on time keep
/// their order from page to page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCursor {
    pub timestamp_ns: i64,
    pub seen_at_timestamp: usize,
}

impl LogCursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.timestamp_ns, self.seen_at_timestamp)
    }

    pub(crate) fn parse(text: &str) -> Result<Self, QueryError> {
        let bad =
            || QueryError::InvalidRequest(format!("cursor must be a nextCursor from an earlier page, got {text:?}"));
        let (ns, seen) = text.split_once('_').ok_or_else(bad)?;
        Ok(Self { timestamp_ns: ns.parse().map_err(|_| bad())?, seen_at_timestamp: seen.parse().map_err(|_| bad())? })
    }
}

/// A page of log records, newest first.
#[derive(Debug)]
pub struct LogPage {
    pub rows: Vec<LogRow>,
    /// Set when the page is full: where the next one starts.
    pub next: Option<LogCursor>,
}

/// Records counted per step and severity number.
#[derive(Debug, Default)]
pub struct LogVolume {
    /// `(step index, severity number, records)`.
    pub counts: Vec<(i64, i32, u64)>,
}

/// Newest first; ties broken by what the records show, so the order is stable.
fn page_order() -> Vec<SortExpr> {
    vec![
        col(log_col::TIMESTAMP).sort(false, false),
        col(log_col::SERVICE_NAME).sort(true, false),
        col(log_col::SEVERITY_NUMBER).sort(false, false),
        col(log_col::BODY).sort(true, true),
        col(log_col::TRACE_ID).sort(true, true),
        col(log_col::SPAN_ID).sort(true, true),
        col(log_col::OBSERVED_TIME).sort(true, true),
    ]
}

impl QueryEngine {
    /// The `limit` newest records matching `filter`, after `cursor` if given.
    pub async fn search_logs(
        &self,
        filter: &LogFilter,
        limit: usize,
        cursor: Option<LogCursor>,
    ) -> Result<LogPage, QueryError> {
        let skip = cursor.map_or(0, |c| c.seen_at_timestamp);
        let need = limit.saturating_add(skip);
        let top = cursor.map_or(filter.end_ns, |c| c.timestamp_ns.min(filter.end_ns));
        self.limited(async {
            let mut rows: Vec<LogRow> = Vec::new();
            let (mut upper, mut window) = (top, FIRST_WINDOW_NS);
            loop {
                let lower = upper.saturating_sub(window).max(filter.start_ns);
                // Windows after the first exclude their upper bound: the
                // previous window read it.
                let inclusive_upper = if upper == top { upper } else { upper - 1 };
                if inclusive_upper >= lower {
                    rows.extend(self.newest_logs(filter, lower, inclusive_upper, need - rows.len()).await?);
                }
                if rows.len() >= need || lower <= filter.start_ns {
                    break;
                }
                upper = lower;
                window = window.saturating_mul(WINDOW_GROWTH);
            }
            Ok(page_after(rows, cursor, limit))
        })
        .await
    }

    /// The newest `limit` matches within `lower..=upper`, in page order.
    async fn newest_logs(
        &self,
        filter: &LogFilter,
        lower: i64,
        upper: i64,
        limit: usize,
    ) -> Result<Vec<LogRow>, QueryError> {
        let ctx = self.session()?;
        let frame = ctx
            .table(LOGS_TABLE)
            .await
            .and_then(|logs| logs.filter(filter.predicate(lower, upper)))
            .and_then(|logs| logs.sort(page_order()))
            .and_then(|logs| logs.limit(0, Some(limit)))
            .map_err(|e| self.datafusion_error(e))?;
        let result = self.collect(frame, self.max_result_rows()).await?;
        let mut rows = Vec::with_capacity(result.row_count);
        for batch in &result.batches {
            rows.extend(log_rows_from_batch(batch)?);
        }
        Ok(rows)
    }

    /// Records per `step_ns` step from `filter.start_ns` and severity number.
    pub async fn log_volume(&self, filter: &LogFilter, step_ns: i64) -> Result<LogVolume, QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let step = (cast_expr(col(log_col::TIMESTAMP), DataType::Int64) - lit(filter.start_ns)) / lit(step_ns);
            let frame = ctx
                .table(LOGS_TABLE)
                .await
                .and_then(|logs| logs.filter(filter.predicate(filter.start_ns, filter.end_ns)))
                .and_then(|logs| {
                    logs.aggregate(
                        vec![step.alias("step"), col(log_col::SEVERITY_NUMBER)],
                        vec![count(lit(1)).alias("records")],
                    )
                })
                .map_err(|e| self.datafusion_error(e))?;
            let result = self.collect(frame, self.max_result_rows()).await?;
            let mut volume = LogVolume::default();
            for batch in &result.batches {
                let column = |name: &str, to: &DataType| {
                    let array = batch.column_by_name(name).ok_or_else(|| internal(name))?;
                    cast(array, to).map_err(|e| QueryError::Execution(format!("log volume column {name}: {e}")))
                };
                let steps = column("step", &DataType::Int64)?;
                let severities = column(log_col::SEVERITY_NUMBER, &DataType::Int32)?;
                let records = column("records", &DataType::Int64)?;
                let (steps, severities, records) = (
                    steps.as_primitive::<Int64Type>(),
                    severities.as_primitive::<Int32Type>(),
                    records.as_primitive::<Int64Type>(),
                );
                for row in 0..batch.num_rows() {
                    if steps.is_valid(row) {
                        volume.counts.push((steps.value(row), severities.value(row), records.value(row).max(0) as u64));
                    }
                }
            }
            volume.counts.sort_unstable();
            Ok(volume)
        })
        .await
    }

    /// The records carrying `trace_id` (32 lowercase hex digits), oldest
    /// first, at most [`MAX_TRACE_LOGS`], and whether more are stored. Only
    /// the shard that owns the trace is asked: a record with a trace is
    /// stored where the trace's spans are.
    pub async fn trace_logs(&self, trace_id: &str) -> Result<(Vec<LogRow>, bool), QueryError> {
        let id_bytes = const_hex::decode(trace_id)
            .map_err(|_| QueryError::InvalidRequest(format!("invalid trace ID {trace_id:?}")))?;
        let Some(shard) = self.log_shard(shard_for_trace(&id_bytes, self.shard_count())) else {
            return Ok((Vec::new(), false));
        };
        self.limited(async {
            let ctx = self.session()?;
            let mut order = page_order();
            order[0] = col(log_col::TIMESTAMP).sort(true, false);
            let frame = ctx
                .read_table(shard)
                .and_then(|logs| logs.filter(col(log_col::TRACE_ID).eq(lit(trace_id))))
                .and_then(|logs| logs.sort(order))
                .and_then(|logs| logs.limit(0, Some(MAX_TRACE_LOGS + 1)))
                .map_err(|e| self.datafusion_error(e))?;
            let result = self.collect(frame, MAX_TRACE_LOGS + 1).await?;
            let mut rows = Vec::with_capacity(result.row_count);
            for batch in &result.batches {
                rows.extend(log_rows_from_batch(batch)?);
            }
            let truncated = rows.len() > MAX_TRACE_LOGS;
            rows.truncate(MAX_TRACE_LOGS);
            Ok((rows, truncated))
        })
        .await
    }
}

/// Drops what earlier pages returned (the first `seen_at_timestamp`
/// records at the cursor's time) and keeps `limit`.
fn page_after(rows: Vec<LogRow>, cursor: Option<LogCursor>, limit: usize) -> LogPage {
    let skip = match cursor {
        Some(c) => {
            rows.iter().take(c.seen_at_timestamp).take_while(|r| r.timestamp_unix_nano == c.timestamp_ns).count()
        }
        None => 0,
    };
    let rows: Vec<LogRow> = rows.into_iter().skip(skip).take(limit).collect();
    let next = (rows.len() == limit).then(|| rows.last()).flatten().map(|last| {
        let at_last = rows.iter().filter(|r| r.timestamp_unix_nano == last.timestamp_unix_nano).count();
        let carried = cursor.filter(|c| c.timestamp_ns == last.timestamp_unix_nano).map_or(0, |c| c.seen_at_timestamp);
        LogCursor { timestamp_ns: last.timestamp_unix_nano, seen_at_timestamp: at_last + carried }
    });
    LogPage { rows, next }
}

fn internal(column: &str) -> QueryError {
    QueryError::Execution(format!("log volume: no column {column}"))
}
