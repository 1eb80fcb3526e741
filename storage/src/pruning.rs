//! File pruning from a scan's filters: which Parquet files cannot hold a
//! matching row, judged from the manifest (time ranges of the signal's range
//! columns) and, for signals that have one, the trace-ID index, without
//! opening them. Conservative: a filter it does not understand prunes
//! nothing.

use std::collections::HashSet;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};

use crate::buffer::DataFile;
use crate::signal::SignalSpec;
use crate::tidx::trace_key;

/// Inclusive bounds on a timestamp column, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub min: i64,
    pub max: i64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { min: i64::MIN, max: i64::MAX }
    }
}

impl Bounds {
    fn apply(&mut self, op: Operator, value: i64) {
        match op {
            Operator::Eq => {
                self.min = self.min.max(value);
                self.max = self.max.min(value);
            }
            Operator::Gt => self.min = self.min.max(value.saturating_add(1)),
            Operator::GtEq => self.min = self.min.max(value),
            Operator::Lt => self.max = self.max.min(value.saturating_sub(1)),
            Operator::LtEq => self.max = self.max.min(value),
            _ => {}
        }
    }

    /// Whether any value in `[lo, hi]` lies within the bounds.
    pub fn overlaps(&self, lo: i64, hi: i64) -> bool {
        lo <= self.max && hi >= self.min
    }
}

#[derive(Debug, PartialEq)]
pub(crate) struct Pruning {
    /// The signal's trace-ID column, when its files have a trace index.
    trace_column: Option<&'static str>,
    /// Keys of the trace IDs a row must have one of; `None` = any trace.
    /// IDs that are not 32 hex digits have no key (no stored row has them).
    pub trace_keys: Option<Vec<u64>>,
    /// Bounds on each of the signal's range columns.
    pub ranges: Vec<(&'static str, Bounds)>,
}

impl Pruning {
    /// Prunes nothing.
    pub fn new(spec: &SignalSpec) -> Self {
        Self {
            trace_column: spec.trace_index_column,
            trace_keys: None,
            ranges: spec.range_columns.iter().map(|c| (*c, Bounds::default())).collect(),
        }
    }

    /// Prunes by the trace IDs `filters` put on `trace_column` only: for
    /// tables derived per trace from a file, whose rows keep the file's trace
    /// IDs (its index) but not its column ranges.
    pub fn traces_only(trace_column: &'static str, filters: &[Expr]) -> Self {
        let mut pruning = Self { trace_column: Some(trace_column), trace_keys: None, ranges: Vec::new() };
        for conjunct in filters.iter().flat_map(split_conjunction) {
            pruning.add(conjunct);
        }
        pruning
    }

    pub fn from_filters(spec: &SignalSpec, filters: &[Expr]) -> Self {
        let mut pruning = Self::new(spec);
        for filter in filters {
            for conjunct in split_conjunction(filter) {
                pruning.add(conjunct);
            }
        }
        pruning
    }

    /// The bounds `filters` put on the timestamp column `column`.
    pub fn bounds_of(column: &'static str, filters: &[Expr]) -> Bounds {
        let mut pruning = Self { trace_column: None, trace_keys: None, ranges: vec![(column, Bounds::default())] };
        for filter in filters {
            for conjunct in split_conjunction(filter) {
                pruning.add(conjunct);
            }
        }
        pruning.ranges[0].1
    }

    fn add(&mut self, expr: &Expr) {
        if let Some(ids) = self.trace_column.and_then(|column| trace_ids(column, expr)) {
            let keys: Vec<u64> = ids.iter().filter_map(|id| trace_key(id)).collect();
            self.trace_keys = Some(match self.trace_keys.take() {
                // Several trace conjuncts: a row must satisfy all of them.
                Some(previous) => previous.into_iter().filter(|k| keys.contains(k)).collect(),
                None => keys,
            });
            return;
        }
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if let Some((column, value)) = column_name(left).zip(timestamp_ns(right)) {
                    self.bound(column, *op, value);
                } else if let (Some(value), Some(column), Some(op)) =
                    (timestamp_ns(left), column_name(right), op.swap())
                {
                    self.bound(column, op, value);
                }
            }
            Expr::Between(Between { expr, negated: false, low, high }) => {
                if let (Some(column), Some(low), Some(high)) =
                    (column_name(expr), timestamp_ns(low), timestamp_ns(high))
                {
                    self.bound(column, Operator::GtEq, low);
                    self.bound(column, Operator::LtEq, high);
                }
            }
            _ => {}
        }
    }

    fn bound(&mut self, column: &str, op: Operator, value: i64) {
        if let Some((_, bounds)) = self.ranges.iter_mut().find(|(c, _)| *c == column) {
            bounds.apply(op, value);
        }
    }

    /// Whether `file` may hold rows matching the filters.
    pub fn may_match(&self, file: &DataFile) -> bool {
        let in_ranges = self.ranges.iter().all(|(column, bounds)| {
            file.meta.ranges.get(*column).is_none_or(|range| bounds.overlaps(range.min_ns, range.max_ns))
        });
        in_ranges
            && match (&self.trace_keys, &file.index) {
                (Some(keys), Some(index)) => index.may_contain_any(keys),
                _ => true,
            }
    }
}

fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(column) => Some(column.name.as_str()),
        _ => None,
    }
}

/// The trace-ID column (possibly cast to another string type, which keeps equality).
fn is_trace_id(trace_column: &str, expr: &Expr) -> bool {
    match expr {
        Expr::Column(column) => column.name == trace_column,
        Expr::Cast(cast) => cast.field.data_type().is_string() && is_trace_id(trace_column, &cast.expr),
        Expr::TryCast(cast) => cast.field.data_type().is_string() && is_trace_id(trace_column, &cast.expr),
        _ => false,
    }
}

fn string_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Some(s.as_str()),
        _ => None,
    }
}

/// The trace IDs `filters` (a conjunction) restrict `trace_column` to;
/// `None` when they allow any.
pub(crate) fn restricted_trace_ids<'a>(trace_column: &str, filters: &'a [Expr]) -> Option<HashSet<&'a str>> {
    let mut allowed: Option<HashSet<&str>> = None;
    for conjunct in filters.iter().flat_map(split_conjunction) {
        if let Some(ids) = trace_ids(trace_column, conjunct) {
            let ids: HashSet<&str> = ids.into_iter().collect();
            allowed = Some(match allowed {
                Some(previous) => previous.intersection(&ids).copied().collect(),
                None => ids,
            });
        }
    }
    allowed
}

/// The trace IDs `expr` restricts the trace-ID column to: `trace_id = 'x'`,
/// `trace_id IN ('x', 'y')`, and ORs of those.
fn trace_ids<'a>(trace_column: &str, expr: &'a Expr) -> Option<Vec<&'a str>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
            if is_trace_id(trace_column, left) {
                string_literal(right).map(|s| vec![s])
            } else if is_trace_id(trace_column, right) {
                string_literal(left).map(|s| vec![s])
            } else {
                None
            }
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
            let mut ids = trace_ids(trace_column, left)?;
            ids.extend(trace_ids(trace_column, right)?);
            Some(ids)
        }
        Expr::InList(list) if !list.negated && is_trace_id(trace_column, &list.expr) => {
            list.list.iter().map(string_literal).collect()
        }
        _ => None,
    }
}

/// A timestamp literal in nanoseconds.
fn timestamp_ns(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{col as column, lit};

    use super::*;
    use crate::manifest::{FileMeta, TimeRange};
    use crate::signal::{Signal, SignalExt};
    use crate::tidx::TraceIndex;
    use skein_model::metrics::col as mcol;
    use skein_model::schema::col;

    const T1: &str = "000000000000000000000000000000a1";
    const T2: &str = "000000000000000000000000000000b2";

    fn ts(ns: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(Some(ns), Some("UTC".into())))
    }

    fn ranges(ranges: &[(&str, (i64, i64))]) -> std::collections::BTreeMap<String, TimeRange> {
        ranges
            .iter()
            .map(|(c, (min_ns, max_ns))| ((*c).to_owned(), TimeRange { min_ns: *min_ns, max_ns: *max_ns }))
            .collect()
    }

    fn file(ids: &[&str], start: (i64, i64), end: (i64, i64)) -> DataFile {
        let ids = datafusion::arrow::array::StringArray::from(ids.to_vec());
        DataFile {
            meta: FileMeta {
                path: "x.parquet".into(),
                size_bytes: 1,
                rows: 1,
                hour: 0,
                ranges: ranges(&[(col::START_TIME, start), (col::END_TIME, end)]),
            },
            location: "x.parquet".into(),
            index: Some(TraceIndex::build([&ids])),
            sidecars: Default::default(),
        }
    }

    fn spans(filters: &[Expr]) -> Pruning {
        Pruning::from_filters(Signal::Spans.spec(), filters)
    }

    #[test]
    fn trace_id_filters_select_files_by_index() {
        let f1 = file(&[T1], (0, 10), (0, 10));
        let f2 = file(&[T2], (0, 10), (0, 10));
        let eq = spans(&[column(col::TRACE_ID).eq(lit(T1))]);
        assert!(eq.may_match(&f1));
        assert!(!eq.may_match(&f2));
        // Literal on the left, upper case.
        let flipped = spans(&[lit(T2.to_uppercase()).eq(column(col::TRACE_ID))]);
        assert!(!flipped.may_match(&f1));
        assert!(flipped.may_match(&f2));
        let in_list = spans(&[column(col::TRACE_ID).in_list(vec![lit(T1), lit(T2)], false)]);
        assert!(in_list.may_match(&f1) && in_list.may_match(&f2));
        let or = spans(&[column(col::TRACE_ID).eq(lit(T2)).or(column(col::TRACE_ID).eq(lit("zz")))]);
        assert!(!or.may_match(&f1) && or.may_match(&f2));
        // Not a valid ID: no stored span can match.
        let bogus = spans(&[column(col::TRACE_ID).eq(lit("nope"))]);
        assert!(!bogus.may_match(&f1));
        // Contradictory conjuncts.
        let both = spans(&[column(col::TRACE_ID).eq(lit(T1)).and(column(col::TRACE_ID).eq(lit(T2)))]);
        assert!(!both.may_match(&f1) && !both.may_match(&f2));
        // Not understood: prunes nothing.
        let negated = spans(&[column(col::TRACE_ID).in_list(vec![lit(T1)], true)]);
        assert_eq!(negated, Pruning::new(Signal::Spans.spec()));
        let other = spans(&[column(col::NAME).eq(lit(T1))]);
        assert!(other.may_match(&f2));
    }

    #[test]
    fn time_filters_use_file_ranges() {
        let f = file(&[T1], (100, 200), (150, 300));
        let keep = |filters: Vec<Expr>| spans(&filters).may_match(&f);
        assert!(keep(vec![column(col::START_TIME).gt_eq(ts(200))]));
        assert!(!keep(vec![column(col::START_TIME).gt(ts(200))]));
        assert!(!keep(vec![column(col::START_TIME).lt(ts(100))]));
        assert!(keep(vec![column(col::START_TIME).lt_eq(ts(100))]));
        assert!(!keep(vec![ts(99).gt_eq(column(col::START_TIME))]));
        assert!(keep(vec![ts(100).gt_eq(column(col::START_TIME))]));
        assert!(!keep(vec![column(col::END_TIME).gt(ts(300))]));
        assert!(keep(vec![column(col::START_TIME).between(ts(0), ts(100))]));
        assert!(!keep(vec![column(col::START_TIME).between(ts(201), ts(900))]));
        assert!(!keep(vec![column(col::START_TIME).gt(ts(150)).and(column(col::END_TIME).lt(ts(150)))]));
        let micros = lit(ScalarValue::TimestampMicrosecond(Some(1), None));
        assert!(!keep(vec![column(col::START_TIME).gt_eq(micros)]), "1µs = 1000ns > 200");
        // Casts of the time columns are not understood.
        let cast = Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(column(col::START_TIME)), DataType::Int64));
        assert!(keep(vec![cast.gt(lit(1_000_i64))]));
    }

    #[test]
    fn metric_files_prune_on_time_and_start_time() {
        let spec = Signal::Metrics.spec();
        let meta = |r: &[(&str, (i64, i64))]| DataFile {
            meta: FileMeta { path: "x.parquet".into(), size_bytes: 1, rows: 1, hour: 0, ranges: ranges(r) },
            location: "x.parquet".into(),
            index: None,
            sidecars: Default::default(),
        };
        let f = meta(&[(mcol::TIME, (100, 200)), (mcol::START_TIME, (50, 60))]);
        // Gauges only: start_time is null everywhere, so nothing is known about it.
        let gauges = meta(&[(mcol::TIME, (100, 200))]);
        let keep = |file: &DataFile, filters: Vec<Expr>| Pruning::from_filters(spec, &filters).may_match(file);
        assert!(keep(&f, vec![column(mcol::TIME).gt_eq(ts(200))]));
        assert!(!keep(&f, vec![column(mcol::TIME).gt(ts(200))]));
        assert!(!keep(&f, vec![column(mcol::TIME).between(ts(0), ts(99))]));
        assert!(!keep(&f, vec![column(mcol::START_TIME).gt(ts(60))]));
        assert!(keep(&gauges, vec![column(mcol::START_TIME).gt(ts(60))]));
        assert!(!keep(&gauges, vec![column(mcol::TIME).lt(ts(100))]));
        // Metrics have no trace index: a trace_id filter (there is no such column) prunes nothing.
        assert!(keep(&f, vec![column(col::TRACE_ID).eq(lit(T1))]));
        assert_eq!(Pruning::from_filters(spec, &[column(col::TRACE_ID).eq(lit(T1))]).trace_keys, None);
    }
}
