//! Spans → trace parts.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field};

use super::trace_parts_schema;
use crate::ModelError;
use crate::arrow_read::{times, utf8};
use crate::schema::col as span_col;

/// The span columns trace parts are derived from.
pub const SOURCE_COLUMNS: [&str; 8] = [
    span_col::TRACE_ID,
    span_col::SPAN_ID,
    span_col::PARENT_SPAN_ID,
    span_col::SERVICE_NAME,
    span_col::NAME,
    span_col::STATUS_CODE,
    span_col::START_TIME,
    span_col::END_TIME,
];

/// The root candidate of a part: (not a root, start, span ID) orders the
/// candidates, the smallest wins; service and name ride along.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate<'a> {
    has_parent: bool,
    start_ns: i64,
    span_id: &'a str,
    service: &'a str,
    name: &'a str,
}

struct Part<'a> {
    start_ns: i64,
    end_ns: i64,
    latest_start_ns: i64,
    root: Candidate<'a>,
    spans: i64,
    errors: i64,
    orphans: i64,
    services: BTreeSet<&'a str>,
}

struct SpanColumns<'a> {
    trace_id: &'a StringArray,
    span_id: &'a StringArray,
    parent_span_id: &'a StringArray,
    service: &'a StringArray,
    name: &'a StringArray,
    status: &'a StringArray,
    start: &'a TimestampNanosecondArray,
    end: &'a TimestampNanosecondArray,
}

impl<'a> SpanColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, ModelError> {
        Ok(Self {
            trace_id: utf8(batch, span_col::TRACE_ID)?,
            span_id: utf8(batch, span_col::SPAN_ID)?,
            parent_span_id: utf8(batch, span_col::PARENT_SPAN_ID)?,
            service: utf8(batch, span_col::SERVICE_NAME)?,
            name: utf8(batch, span_col::NAME)?,
            status: utf8(batch, span_col::STATUS_CODE)?,
            start: times(batch, span_col::START_TIME)?,
            end: times(batch, span_col::END_TIME)?,
        })
    }

    /// The parent span ID of `row`; `None` for a root.
    fn parent(&self, row: usize) -> Option<&'a str> {
        (self.parent_span_id.is_valid(row) && !self.parent_span_id.value(row).is_empty())
            .then(|| self.parent_span_id.value(row))
    }
}

/// The trace parts of `batches` (span rows; only [`SOURCE_COLUMNS`] need be
/// present): one row per trace, newest last (by latest span start, then
/// trace ID), so a file's row groups cover narrow time ranges and a search
/// window reads the newest of them only. A parent is looked for among all
/// of `batches`.
pub fn derive(batches: &[RecordBatch]) -> Result<RecordBatch, ModelError> {
    let columns = batches.iter().map(SpanColumns::of).collect::<Result<Vec<_>, _>>()?;
    let mut span_ids: HashSet<(&str, &str)> = HashSet::new();
    for c in &columns {
        for row in 0..c.span_id.len() {
            span_ids.insert((c.trace_id.value(row), c.span_id.value(row)));
        }
    }
    let mut parts: HashMap<&str, Part<'_>> = HashMap::new();
    for c in &columns {
        for row in 0..c.span_id.len() {
            let trace = c.trace_id.value(row);
            let parent = c.parent(row);
            let start_ns = c.start.value(row);
            let candidate = Candidate {
                has_parent: parent.is_some(),
                start_ns,
                span_id: c.span_id.value(row),
                service: c.service.value(row),
                name: c.name.value(row),
            };
            let part = parts.entry(trace).or_insert_with(|| Part {
                start_ns,
                end_ns: c.end.value(row),
                latest_start_ns: start_ns,
                root: candidate,
                spans: 0,
                errors: 0,
                orphans: 0,
                services: BTreeSet::new(),
            });
            part.start_ns = part.start_ns.min(start_ns);
            part.end_ns = part.end_ns.max(c.end.value(row));
            part.latest_start_ns = part.latest_start_ns.max(start_ns);
            part.root = part.root.min(candidate);
            part.spans += 1;
            part.errors += i64::from(c.status.value(row) == "error");
            part.orphans += i64::from(parent.is_some_and(|p| !span_ids.contains(&(trace, p))));
            part.services.insert(candidate.service);
        }
    }
    let mut rows: Vec<(&str, Part<'_>)> = parts.into_iter().collect();
    rows.sort_unstable_by(|a, b| (a.1.latest_start_ns, a.0).cmp(&(b.1.latest_start_ns, b.0)));
    to_batch(&rows)
}

fn to_batch<'a>(rows: &[(&'a str, Part<'a>)]) -> Result<RecordBatch, ModelError> {
    let text = |pick: fn(&(&'a str, Part<'a>)) -> &'a str| -> ArrayRef {
        Arc::new(rows.iter().map(|r| Some(pick(r))).collect::<StringArray>())
    };
    let time = |pick: fn(&Part<'a>) -> i64| -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from_iter_values(rows.iter().map(|(_, p)| pick(p))).with_timezone("UTC"))
    };
    let number = |pick: fn(&Part<'a>) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, p)| pick(p))))
    };
    let mut services =
        ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new("item", DataType::Utf8, false)));
    for (_, part) in rows {
        for service in &part.services {
            services.values().append_value(service);
        }
        services.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        text(|r| r.0),
        time(|p| p.start_ns),
        time(|p| p.end_ns),
        time(|p| p.latest_start_ns),
        text(|r| r.1.root.span_id),
        text(|r| r.1.root.service),
        text(|r| r.1.root.name),
        time(|p| p.root.start_ns),
        Arc::new(rows.iter().map(|(_, p)| Some(!p.root.has_parent)).collect::<BooleanArray>()),
        number(|p| p.spans),
        number(|p| p.errors),
        number(|p| p.orphans),
        Arc::new(services.finish()),
    ];
    Ok(RecordBatch::try_new(trace_parts_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::Int64Type;

    use super::*;
    use crate::trace_parts::col;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::TimestampNanosecondType;

    use crate::test_spans::span_batch as spans;

    /// (trace, start, end, root span, root service, has root, spans, errors, orphans, services).
    type Summary = (String, i64, i64, String, String, bool, i64, i64, i64, Vec<String>);

    fn summaries(parts: &RecordBatch) -> Vec<Summary> {
        let text = |name| parts.column_by_name(name).expect("col").as_string::<i32>().clone();
        let time = |name| parts.column_by_name(name).expect("col").as_primitive::<TimestampNanosecondType>().clone();
        let number = |name| parts.column_by_name(name).expect("col").as_primitive::<Int64Type>().clone();
        let (trace, root, service) = (text(col::TRACE_ID), text(col::ROOT_SPAN_ID), text(col::ROOT_SERVICE_NAME));
        let (start, end) = (time(col::START_TIME), time(col::END_TIME));
        let (spans, errors, orphans) = (number(col::SPAN_COUNT), number(col::ERROR_COUNT), number(col::ORPHAN_COUNT));
        let has_root = parts.column_by_name(col::HAS_ROOT).expect("col").as_boolean().clone();
        let services = parts.column_by_name(col::SERVICES).expect("col").as_list::<i32>().clone();
        (0..parts.num_rows())
            .map(|i| {
                let names = services.value(i);
                let names = names.as_string::<i32>().iter().map(|s| s.expect("service").to_owned()).collect();
                (
                    trace.value(i).to_owned(),
                    start.value(i),
                    end.value(i),
                    root.value(i).to_owned(),
                    service.value(i).to_owned(),
                    has_root.value(i),
                    spans.value(i),
                    errors.value(i),
                    orphans.value(i),
                    names,
                )
            })
            .collect()
    }

    #[test]
    fn one_part_per_trace_with_root_counts_and_services() {
        let first = spans(&[
            ("t2", "b", Some("a"), "cart", "get", "error", 30, 30),
            ("t1", "b", Some("a"), "cart", "get", "error", 20, 20),
            ("t1", "a", None, "front", "GET /", "unset", 10, 80),
        ]);
        let second = spans(&[
            // t1's parent `a` is in the other batch; t2's `a` is not there.
            ("t1", "c", Some("b"), "db", "query", "ok", 25, 5),
            ("t3", "x", Some("gone"), "cart", "late", "unset", 50, 5),
            ("t3", "w", Some("gone"), "cart", "early", "unset", 45, 25),
        ]);
        let parts = derive(&[first, second]).expect("derive");
        assert_eq!(parts.schema(), trace_parts_schema());
        let strings = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            summaries(&parts),
            vec![
                ("t1".into(), 10, 90, "a".into(), "front".into(), true, 3, 1, 0, strings(&["cart", "db", "front"])),
                ("t2".into(), 30, 60, "b".into(), "cart".into(), false, 1, 1, 1, strings(&["cart"])),
                // No root: the earliest span stands in.
                ("t3".into(), 45, 70, "w".into(), "cart".into(), false, 2, 0, 2, strings(&["cart"])),
            ]
        );
        let latest = parts.column_by_name(col::LATEST_START_TIME).expect("col");
        assert_eq!(latest.as_primitive::<TimestampNanosecondType>().values().to_vec(), vec![25, 30, 50]);
        assert_eq!(derive(&[]).expect("derive nothing").num_rows(), 0);
    }

    #[test]
    fn among_several_roots_the_earliest_then_smallest_id_wins() {
        let parts = derive(&[spans(&[
            ("t", "z", None, "late", "x", "unset", 20, 10),
            ("t", "m", None, "tie-m", "x", "unset", 10, 20),
            ("t", "k", None, "tie-k", "x", "unset", 10, 20),
            ("t", "e", Some("k"), "child", "x", "unset", 5, 25),
        ])])
        .expect("derive");
        let summary = &summaries(&parts)[0];
        assert_eq!((summary.3.as_str(), summary.4.as_str(), summary.5), ("k", "tie-k", true));
    }
}
