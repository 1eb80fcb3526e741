//! Spans → span-metrics rows.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray, TimestampNanosecondArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};

use super::histogram::Histogram;
use super::{MINUTE_NS, histogram_fields, span_metrics_schema};
use crate::ModelError;
use crate::arrow_read::{prims, times, utf8};
use crate::schema::col as span_col;

/// (minute, service, operation, kind, status, parent service).
type Key<'a> = (i64, &'a str, &'a str, &'a str, &'a str, Option<&'a str>);

#[derive(Default)]
struct Totals {
    calls: i64,
    errors: i64,
    sum_ns: i64,
    min_ns: i64,
    max_ns: i64,
    histogram: Histogram,
}

/// The columns of one span batch that the metrics are computed from.
struct SpanColumns<'a> {
    trace_id: &'a StringArray,
    span_id: &'a StringArray,
    parent_span_id: &'a StringArray,
    service: &'a StringArray,
    name: &'a StringArray,
    kind: &'a StringArray,
    status: &'a StringArray,
    start: &'a TimestampNanosecondArray,
    duration: &'a Int64Array,
}

impl<'a> SpanColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, ModelError> {
        Ok(Self {
            trace_id: utf8(batch, span_col::TRACE_ID)?,
            span_id: utf8(batch, span_col::SPAN_ID)?,
            parent_span_id: utf8(batch, span_col::PARENT_SPAN_ID)?,
            service: utf8(batch, span_col::SERVICE_NAME)?,
            name: utf8(batch, span_col::NAME)?,
            kind: utf8(batch, span_col::KIND)?,
            status: utf8(batch, span_col::STATUS_CODE)?,
            start: times(batch, span_col::START_TIME)?,
            duration: prims::<Int64Type>(batch, span_col::DURATION_NS)?,
        })
    }
}

/// The span-metrics rows of `batches` (span rows; only the columns named in
/// `skein_model::schema::col` that the metrics use need be present), in key
/// order. A parent is looked for among all of `batches`.
pub fn derive(batches: &[RecordBatch]) -> Result<RecordBatch, ModelError> {
    let columns = batches.iter().map(SpanColumns::of).collect::<Result<Vec<_>, _>>()?;
    let mut services: HashMap<(&str, &str), &str> = HashMap::new();
    for c in &columns {
        for row in 0..c.span_id.len() {
            services.insert((c.trace_id.value(row), c.span_id.value(row)), c.service.value(row));
        }
    }
    let mut groups: HashMap<Key<'_>, Totals> = HashMap::new();
    for c in &columns {
        for row in 0..c.span_id.len() {
            let parent = (c.parent_span_id.is_valid(row) && !c.parent_span_id.value(row).is_empty())
                .then(|| services.get(&(c.trace_id.value(row), c.parent_span_id.value(row))).copied())
                .flatten();
            let minute = c.start.value(row).div_euclid(MINUTE_NS) * MINUTE_NS;
            let status = c.status.value(row);
            let key = (minute, c.service.value(row), c.name.value(row), c.kind.value(row), status, parent);
            let duration = c.duration.value(row);
            let totals = groups.entry(key).or_insert_with(|| Totals {
                min_ns: i64::MAX,
                max_ns: i64::MIN,
                ..Default::default()
            });
            totals.calls += 1;
            totals.errors += i64::from(status == "error");
            totals.sum_ns = totals.sum_ns.saturating_add(duration);
            totals.min_ns = totals.min_ns.min(duration);
            totals.max_ns = totals.max_ns.max(duration);
            totals.histogram.record(duration);
        }
    }
    let mut rows: Vec<(Key<'_>, Totals)> = groups.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    to_batch(&rows)
}

fn to_batch(rows: &[(Key<'_>, Totals)]) -> Result<RecordBatch, ModelError> {
    let text = |pick: for<'k> fn(&'k Key<'_>) -> &'k str| -> ArrayRef {
        Arc::new(rows.iter().map(|(k, _)| Some(pick(k))).collect::<StringArray>())
    };
    let number =
        |pick: fn(&Totals) -> i64| -> ArrayRef { Arc::new(rows.iter().map(|(_, t)| pick(t)).collect::<Int64Array>()) };
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    offsets.push(0i32);
    let mut counts = Vec::new();
    for (_, totals) in rows {
        counts.extend_from_slice(&totals.histogram.counts);
        let end =
            i32::try_from(counts.len()).map_err(|_| ModelError::Corrupt("span metrics histogram too large".into()))?;
        offsets.push(end);
    }
    let item = Arc::new(Field::new("item", DataType::Int64, false));
    let counts = ListArray::try_new(item, OffsetBuffer::new(offsets.into()), Arc::new(Int64Array::from(counts)), None)?;
    let bucket_offsets = Int32Array::from_iter_values(rows.iter().map(|(_, t)| t.histogram.offset));
    let histogram = StructArray::try_new(histogram_fields(), vec![Arc::new(bucket_offsets), Arc::new(counts)], None)?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampNanosecondArray::from_iter_values(rows.iter().map(|(k, _)| k.0)).with_timezone("UTC")),
        text(|k| k.1),
        text(|k| k.2),
        text(|k| k.3),
        text(|k| k.4),
        Arc::new(rows.iter().map(|(k, _)| k.5).collect::<StringArray>()),
        number(|t| t.calls),
        number(|t| t.errors),
        number(|t| t.sum_ns),
        number(|t| t.min_ns),
        number(|t| t.max_ns),
        Arc::new(histogram),
    ];
    Ok(RecordBatch::try_new(span_metrics_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span_metrics::col;
    use datafusion::arrow::array::AsArray;

    use crate::test_spans::span_batch as spans;

    #[test]
    fn groups_by_minute_and_operation_and_finds_parents_across_batches() {
        let first = spans(&[
            ("t1", "a", None, "front", "GET /", "unset", 10, 500),
            ("t1", "b", Some("a"), "cart", "get", "error", 20, 100),
            // Same span ID in another trace: its parent is not front's span.
            ("t2", "b", Some("a"), "cart", "get", "unset", 30, 300),
        ]);
        let second = spans(&[
            ("t2", "a", None, "front", "GET /", "unset", MINUTE_NS + 5, 700),
            ("t3", "c", Some("missing"), "cart", "get", "ok", 40, 200),
        ]);
        let derived = derive(&[first, second]).expect("derive");
        assert_eq!(derived.schema(), span_metrics_schema());
        let service = derived.column_by_name(col::SERVICE_NAME).expect("col").as_string::<i32>();
        let parent = derived.column_by_name(col::PARENT_SERVICE).expect("col").as_string::<i32>();
        let calls = derived.column_by_name(col::CALLS).expect("col").as_primitive::<Int64Type>();
        let errors = derived.column_by_name(col::ERRORS).expect("col").as_primitive::<Int64Type>();
        let sums = derived.column_by_name(col::DURATION_SUM_NS).expect("col").as_primitive::<Int64Type>();
        let rows: Vec<(&str, Option<&str>, i64, i64, i64)> = (0..derived.num_rows())
            .map(|i| {
                (
                    service.value(i),
                    parent.is_valid(i).then(|| parent.value(i)),
                    calls.value(i),
                    errors.value(i),
                    sums.value(i),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("cart", Some("front"), 1, 1, 100),
                ("cart", None, 1, 0, 200),
                ("cart", Some("front"), 1, 0, 300),
                ("front", None, 1, 0, 500),
                ("front", None, 1, 0, 700),
            ]
        );
        let empty = derive(&[]).expect("derive nothing");
        assert_eq!(empty.num_rows(), 0);
    }
}
