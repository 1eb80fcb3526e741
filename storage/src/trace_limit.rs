//! The per-tenant maximum trace size (`storage.max_spans_per_trace`).
//!
//! Spans are sharded by trace ID, so the shard that owns a trace sees all of
//! its spans, in every role layout: the count is kept there, per trace,
//! while the trace keeps receiving spans. A span that would take its trace
//! over the limit is refused before the write-ahead log and reported back
//! in the write's receipt (OTLP `partial_success`); the trace's earlier
//! spans stay. A runaway trace (an instrumentation loop) then costs one
//! hash-map entry, not the store.
//!
//! Memory is bounded by two generations of counts: a trace that received
//! no span for one to two `storage.trace_limit_window`s is forgotten and
//! starts from zero, and when a generation fills up (`MAX_TRACKED_TRACES`
//! over the shards) it turns over early, which shortens the window under
//! very high trace rates instead of growing memory.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::compute::filter_record_batch;
use skein_model::schema::col;

/// Traces whose counts one process keeps per generation, over all its
/// shards (~40 bytes each).
pub(crate) const MAX_TRACKED_TRACES: usize = 1 << 20;

/// Fewest traces a shard keeps per generation, however many shards.
const MIN_TRACKED_PER_SHARD: usize = 4096;

/// Span counts of the traces one shard received recently.
#[derive(Debug)]
pub(crate) struct TraceSpanCounts {
    max_spans: u64,
    window: Duration,
    capacity: usize,
    current: HashMap<u128, TraceCount>,
    previous: HashMap<u128, TraceCount>,
    turned_over: Instant,
}

#[derive(Debug, Clone, Copy)]
struct TraceCount {
    spans: u64,
    /// Whether a refusal of this trace was already logged.
    reported: bool,
}

/// The outcome of [`TraceSpanCounts::admit`] for one batch.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The rows to store: the batch itself, or without the refused rows.
    pub batch: RecordBatch,
    pub refused_rows: u64,
    /// The first trace that went over the limit, when it was not reported before.
    pub newly_over: Option<String>,
    /// The first refused trace, for the receipt.
    pub first_refused: Option<String>,
    /// The limit it was refused under.
    pub max_spans: u64,
    /// What was added to the counts, taken back if the write fails.
    charged: Vec<(u128, u64)>,
}

impl TraceSpanCounts {
    pub fn new(max_spans: u64, window: Duration, shards: usize, now: Instant) -> Self {
        let capacity = (MAX_TRACKED_TRACES / shards.max(1)).max(MIN_TRACKED_PER_SHARD);
        Self { max_spans, window, capacity, current: HashMap::new(), previous: HashMap::new(), turned_over: now }
    }

    /// Counts `batch`'s spans per trace and keeps those within the limit,
    /// in their order. `batch` is in the span schema.
    pub fn admit(
        &mut self,
        batch: RecordBatch,
        now: Instant,
    ) -> Result<Admission, datafusion::arrow::error::ArrowError> {
        self.turn_over(now);
        let trace_ids = trace_ids(&batch)?;
        let mut keep = Vec::with_capacity(batch.num_rows());
        let mut charged: Vec<(u128, u64)> = Vec::new();
        let (mut refused_rows, mut newly_over, mut first_refused) = (0u64, None, None);
        let max_spans = self.max_spans;
        for row in 0..trace_ids.len() {
            let id = trace_ids.value(row);
            let key = trace_key(id);
            let count = self.entry(key);
            if count.spans < max_spans {
                count.spans += 1;
                keep.push(true);
                match charged.last_mut() {
                    Some((last, n)) if *last == key => *n += 1,
                    _ => charged.push((key, 1)),
                }
                continue;
            }
            keep.push(false);
            refused_rows += 1;
            if !count.reported {
                count.reported = true;
                newly_over.get_or_insert_with(|| id.to_owned());
            }
            first_refused.get_or_insert_with(|| id.to_owned());
        }
        let batch = if refused_rows == 0 { batch } else { filter_record_batch(&batch, &BooleanArray::from(keep))? };
        Ok(Admission { batch, refused_rows, newly_over, first_refused, max_spans: self.max_spans, charged })
    }

    /// Takes back what `admission` added: its write failed, and the client
    /// will send the spans again.
    pub fn release(&mut self, admission: &Admission) {
        for (key, spans) in &admission.charged {
            for generation in [&mut self.current, &mut self.previous] {
                if let Some(count) = generation.get_mut(key) {
                    count.spans = count.spans.saturating_sub(*spans);
                    break;
                }
            }
        }
    }

    /// Counts spans already stored (replayed from the write-ahead log on
    /// open) without refusing any, so a restart or failover keeps counting.
    pub fn note(&mut self, batch: &RecordBatch, now: Instant) {
        self.turn_over(now);
        let Ok(trace_ids) = trace_ids(batch) else { return };
        for row in 0..trace_ids.len() {
            let count = self.entry(trace_key(trace_ids.value(row)));
            count.spans = count.spans.saturating_add(1);
        }
    }

    /// The count of `key`, moved into the current generation.
    fn entry(&mut self, key: u128) -> &mut TraceCount {
        if !self.current.contains_key(&key) {
            if self.current.len() >= self.capacity {
                self.rotate(Instant::now());
            }
            let carried = self.previous.remove(&key).unwrap_or(TraceCount { spans: 0, reported: false });
            self.current.insert(key, carried);
        }
        self.current.get_mut(&key).expect("inserted above")
    }

    fn turn_over(&mut self, now: Instant) {
        let idle = now.saturating_duration_since(self.turned_over);
        if idle >= self.window {
            self.rotate(now);
        }
        if idle >= 2 * self.window {
            // No span for two windows: the older generation is stale too.
            self.previous.clear();
        }
    }

    fn rotate(&mut self, now: Instant) {
        self.previous = std::mem::take(&mut self.current);
        self.turned_over = now;
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

fn trace_ids(batch: &RecordBatch) -> Result<&StringArray, datafusion::arrow::error::ArrowError> {
    let column = batch
        .column_by_name(col::TRACE_ID)
        .ok_or_else(|| datafusion::arrow::error::ArrowError::SchemaError("the batch has no trace_id column".into()))?;
    column
        .as_any()
        .downcast_ref::<StringArray>()
        .filter(|ids| ids.null_count() == 0)
        .ok_or_else(|| datafusion::arrow::error::ArrowError::SchemaError("trace_id is not a non-null string".into()))
}

/// Trace IDs are stored as 32 lowercase hex digits; anything else is hashed.
fn trace_key(id: &str) -> u128 {
    u128::from_str_radix(id, 16).unwrap_or_else(|_| xxhash_rust::xxh3::xxh3_128(id.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    const A: &str = "0000000000000000000000000000000a";
    const B: &str = "0000000000000000000000000000000b";

    /// A batch with a `trace_id` and a `row` column (to see which rows stay).
    fn batch(ids: &[&str]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new(col::TRACE_ID, DataType::Utf8, false),
            Field::new("row", DataType::Utf8, false),
        ]);
        let rows: Vec<String> = (0..ids.len()).map(|i| i.to_string()).collect();
        let columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(ids.to_vec())), Arc::new(StringArray::from(rows))];
        RecordBatch::try_new(Arc::new(schema), columns).expect("valid batch")
    }

    fn rows(batch: &RecordBatch) -> Vec<String> {
        let column = batch.column_by_name("row").expect("row column");
        let rows = column.as_any().downcast_ref::<StringArray>().expect("strings");
        rows.iter().map(|r| r.expect("not null").to_owned()).collect()
    }

    #[test]
    fn spans_over_the_limit_are_refused_in_order_and_other_traces_pass() {
        let now = Instant::now();
        let mut counts = TraceSpanCounts::new(3, Duration::from_secs(60), 1, now);
        let first = counts.admit(batch(&[A, A, B]), now).expect("admits");
        assert_eq!((first.refused_rows, first.batch.num_rows()), (0, 3));

        let second = counts.admit(batch(&[A, B, A, A, B]), now).expect("admits");
        assert_eq!(second.refused_rows, 2, "A's 4th and 5th span");
        assert_eq!(rows(&second.batch), ["0", "1", "4"]);
        assert_eq!(second.newly_over.as_deref(), Some(A));
        assert_eq!(second.first_refused.as_deref(), Some(A));

        let third = counts.admit(batch(&[A, B]), now).expect("admits");
        assert_eq!(rows(&third.batch), Vec::<String>::new(), "both traces are full now");
        assert_eq!(third.newly_over.as_deref(), Some(B), "A was reported already");
    }

    #[test]
    fn a_failed_write_gives_its_spans_back() {
        let now = Instant::now();
        let mut counts = TraceSpanCounts::new(2, Duration::from_secs(60), 1, now);
        let failed = counts.admit(batch(&[A, A]), now).expect("admits");
        counts.release(&failed);
        let retried = counts.admit(batch(&[A, A]), now).expect("admits");
        assert_eq!(retried.refused_rows, 0, "the retry is not counted twice");
    }

    #[test]
    fn replayed_spans_count_and_idle_traces_are_forgotten_after_two_windows() {
        let now = Instant::now();
        let window = Duration::from_secs(60);
        let mut counts = TraceSpanCounts::new(2, window, 1, now);
        counts.note(&batch(&[A, A, A]), now);
        assert_eq!(counts.admit(batch(&[A]), now).expect("admits").refused_rows, 1);

        // Still counted one window later (kept alive by the write above)...
        let later = now + window;
        assert_eq!(counts.admit(batch(&[A]), later).expect("admits").refused_rows, 1);
        // ...forgotten after two idle windows.
        let idle = later + 2 * window;
        assert_eq!(counts.admit(batch(&[A]), idle).expect("admits").refused_rows, 0);
    }

    #[test]
    fn memory_stays_bounded_under_many_traces() {
        let now = Instant::now();
        let mut counts = TraceSpanCounts::new(10, Duration::from_secs(3600), MAX_TRACKED_TRACES, now);
        let ids: Vec<String> = (0..3 * MIN_TRACKED_PER_SHARD).map(|i| format!("{i:032x}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        counts.admit(batch(&ids), now).expect("admits");
        assert!(counts.tracked() <= 2 * MIN_TRACKED_PER_SHARD, "{} traces tracked", counts.tracked());
    }

    #[test]
    fn ids_that_are_not_hex_still_count() {
        let now = Instant::now();
        let mut counts = TraceSpanCounts::new(1, Duration::from_secs(60), 1, now);
        let admitted = counts.admit(batch(&["not-hex", "not-hex"]), now).expect("admits");
        assert_eq!(admitted.refused_rows, 1);
    }
}
