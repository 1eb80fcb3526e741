//! Reads the points of a range query: only the columns its metric type and
//! aggregation need, filtered on the shards, decoded into [`Series`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, Int32Array, ListArray, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{Float64Type, UInt64Type};
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;
use skein_model::metrics::col::{self as mcol, nested};
use skein_model::metrics::temporality;

use super::catalog::SeriesRow;
use super::columns::column;
use super::exp_histogram::{Buckets, ExpHistogram};
use super::points::{Histogram, MetricType, Sample, Series, Value};
use super::quantile::Range;
use super::range::Aggregation;
use crate::engine::METRICS_TABLE;
use crate::{QueryEngine, QueryError};

/// Data point flag bit 0: the point has no recorded value (e.g. the series
/// went stale); such points are skipped.
const NO_RECORDED_VALUE: u32 = 1;

/// What a query reads of each point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// `value` of gauges and sums.
    Values,
    /// `count` of histograms and summaries (for `rate`).
    Counts,
    /// `sum` of histograms and summaries (Prometheus' `_sum` series).
    Sums,
    Histograms,
    Exponential,
    Summaries,
}

impl Reading {
    fn of(kind: MetricType, aggregation: Aggregation) -> Self {
        match (kind, aggregation) {
            (MetricType::Gauge | MetricType::Sum, _) => Self::Values,
            (_, Aggregation::Rate) => Self::Counts,
            (MetricType::Histogram, _) => Self::Histograms,
            (MetricType::ExponentialHistogram, _) => Self::Exponential,
            (MetricType::Summary, _) => Self::Summaries,
        }
    }

    fn columns(self) -> Vec<&'static str> {
        use mcol::*;
        let mut columns = vec![SERIES_ID, TIME, START_TIME, FLAGS, AGGREGATION_TEMPORALITY, IS_MONOTONIC];
        columns.extend_from_slice(match self {
            Self::Values => &[VALUE][..],
            Self::Counts => &[COUNT],
            Self::Sums => &[SUM],
            Self::Histograms => &[MIN, MAX, EXPLICIT_BOUNDS, BUCKET_COUNTS],
            Self::Exponential => &[
                MIN,
                MAX,
                SCALE,
                ZERO_COUNT,
                ZERO_THRESHOLD,
                POSITIVE_OFFSET,
                POSITIVE_BUCKET_COUNTS,
                NEGATIVE_OFFSET,
                NEGATIVE_BUCKET_COUNTS,
            ],
            Self::Summaries => &[QUANTILE_VALUES],
        });
        columns
    }
}

impl QueryEngine {
    /// The points matching `filter` of the series in `rows`, grouped into
    /// series sorted by ID (series without points are left out). Fails
    /// past `query.metrics_max_points` points.
    pub(crate) async fn read_points(
        &self,
        ctx: &SessionContext,
        filter: Option<Expr>,
        kind: MetricType,
        aggregation: Aggregation,
        rows: Vec<SeriesRow>,
    ) -> Result<Vec<Series>, QueryError> {
        self.read_series(ctx, filter, kind, Reading::of(kind, aggregation), rows).await
    }

    /// As [`QueryEngine::read_points`], reading what `reading` says.
    pub(crate) async fn read_series(
        &self,
        ctx: &SessionContext,
        filter: Option<Expr>,
        kind: MetricType,
        reading: Reading,
        rows: Vec<SeriesRow>,
    ) -> Result<Vec<Series>, QueryError> {
        let df_error = |e| self.datafusion_error(e);
        let mut frame = ctx.table(METRICS_TABLE).await.map_err(df_error)?;
        if let Some(filter) = filter {
            frame = frame.filter(filter).map_err(df_error)?;
        }
        let frame = frame.select_columns(&reading.columns()).map_err(df_error)?;
        let limit = self.metrics_max_points();
        let result = self.collect(frame, limit).await.map_err(|e| match e {
            QueryError::TooManyRows { limit } => {
                QueryError::TooMuchData { what: "data points", limit, key: "metrics_max_points" }
            }
            other => other,
        })?;
        let mut series: BTreeMap<String, Series> = rows
            .into_iter()
            .map(|row| {
                let series = Series {
                    labels: row.info.labels,
                    cumulative: true,
                    // Counts of histograms and summaries only grow; sums say.
                    monotonic: kind != MetricType::Sum,
                    samples: Vec::new(),
                };
                (row.info.series_id, series)
            })
            .collect();
        let mut bounds = BoundsInterner::default();
        for batch in &result.batches {
            decode(batch, reading, &mut series, &mut bounds)?;
        }
        Ok(series
            .into_values()
            .filter(|s| !s.samples.is_empty())
            .map(|mut s| {
                s.sort_samples();
                s
            })
            .collect())
    }
}

/// Shares one allocation between all points with the same bounds.
#[derive(Debug, Default)]
struct BoundsInterner(HashMap<Vec<u64>, Arc<[f64]>>);

impl BoundsInterner {
    fn intern(&mut self, bounds: Vec<f64>) -> Arc<[f64]> {
        let key: Vec<u64> = bounds.iter().map(|b| b.to_bits()).collect();
        Arc::clone(self.0.entry(key).or_insert_with(|| Arc::from(bounds)))
    }
}

fn decode(
    batch: &RecordBatch,
    reading: Reading,
    series: &mut BTreeMap<String, Series>,
    bounds: &mut BoundsInterner,
) -> Result<(), QueryError> {
    let ids = column::<StringArray>(batch, mcol::SERIES_ID)?;
    let times = column::<TimestampNanosecondArray>(batch, mcol::TIME)?;
    let starts = column::<TimestampNanosecondArray>(batch, mcol::START_TIME)?;
    let flags = column::<UInt32Array>(batch, mcol::FLAGS)?;
    let temporalities = column::<StringArray>(batch, mcol::AGGREGATION_TEMPORALITY)?;
    let monotonic = column::<BooleanArray>(batch, mcol::IS_MONOTONIC)?;
    let values = Columns::new(batch, reading)?;
    for row in 0..batch.num_rows() {
        if flags.value(row) & NO_RECORDED_VALUE != 0 {
            continue;
        }
        // Points of series that appeared after the series were listed are left out.
        let Some(series) = series.get_mut(ids.value(row)) else { continue };
        let Some(value) = values.value(row, bounds)? else { continue };
        if temporalities.is_valid(row) {
            series.cumulative = temporalities.value(row) != temporality::DELTA;
        }
        if monotonic.is_valid(row) {
            series.monotonic = monotonic.value(row);
        }
        let start_time = starts.is_valid(row).then(|| starts.value(row));
        series.samples.push(Sample { time: times.value(row), start_time, value });
    }
    Ok(())
}

/// The value columns of one batch, by what is read.
enum Columns<'a> {
    Values(&'a Float64Array),
    Counts(&'a UInt64Array),
    Sums(&'a Float64Array),
    Histograms { min: &'a Float64Array, max: &'a Float64Array, bounds: &'a ListArray, counts: &'a ListArray },
    Exponential(Box<ExpColumns<'a>>),
    Summaries(&'a ListArray),
}

struct ExpColumns<'a> {
    min: &'a Float64Array,
    max: &'a Float64Array,
    scale: &'a Int32Array,
    zero_count: &'a UInt64Array,
    zero_threshold: &'a Float64Array,
    positive_offset: &'a Int32Array,
    positive: &'a ListArray,
    negative_offset: &'a Int32Array,
    negative: &'a ListArray,
}

impl<'a> Columns<'a> {
    fn new(batch: &'a RecordBatch, reading: Reading) -> Result<Self, QueryError> {
        Ok(match reading {
            Reading::Values => Self::Values(column(batch, mcol::VALUE)?),
            Reading::Counts => Self::Counts(column(batch, mcol::COUNT)?),
            Reading::Sums => Self::Sums(column(batch, mcol::SUM)?),
            Reading::Histograms => Self::Histograms {
                min: column(batch, mcol::MIN)?,
                max: column(batch, mcol::MAX)?,
                bounds: column(batch, mcol::EXPLICIT_BOUNDS)?,
                counts: column(batch, mcol::BUCKET_COUNTS)?,
            },
            Reading::Exponential => Self::Exponential(Box::new(ExpColumns {
                min: column(batch, mcol::MIN)?,
                max: column(batch, mcol::MAX)?,
                scale: column(batch, mcol::SCALE)?,
                zero_count: column(batch, mcol::ZERO_COUNT)?,
                zero_threshold: column(batch, mcol::ZERO_THRESHOLD)?,
                positive_offset: column(batch, mcol::POSITIVE_OFFSET)?,
                positive: column(batch, mcol::POSITIVE_BUCKET_COUNTS)?,
                negative_offset: column(batch, mcol::NEGATIVE_OFFSET)?,
                negative: column(batch, mcol::NEGATIVE_BUCKET_COUNTS)?,
            })),
            Reading::Summaries => Self::Summaries(column(batch, mcol::QUANTILE_VALUES)?),
        })
    }

    /// The value of `row`, or None when the point lacks it.
    fn value(&self, row: usize, interner: &mut BoundsInterner) -> Result<Option<Value>, QueryError> {
        Ok(Some(match self {
            Self::Values(values) => match optional(values, row) {
                Some(v) => Value::Number(v),
                None => return Ok(None),
            },
            Self::Counts(counts) if counts.is_valid(row) => Value::Number(counts.value(row) as f64),
            Self::Counts(_) => return Ok(None),
            Self::Sums(sums) => match optional(sums, row) {
                Some(v) => Value::Number(v),
                None => return Ok(None),
            },
            Self::Histograms { min, max, bounds, counts } => {
                if bounds.is_null(row) || counts.is_null(row) {
                    return Ok(None);
                }
                Value::Histogram(Histogram {
                    bounds: interner.intern(floats(bounds, row)?),
                    counts: counts_of(counts, row)?,
                    range: Range { min: optional(min, row), max: optional(max, row) },
                })
            }
            Self::Exponential(c) => {
                if c.scale.is_null(row) {
                    return Ok(None);
                }
                let buckets = |offset: &Int32Array, counts: &ListArray| -> Result<Buckets, QueryError> {
                    Ok(Buckets {
                        offset: if offset.is_valid(row) { offset.value(row) } else { 0 },
                        counts: counts_of(counts, row)?,
                    })
                };
                Value::Exponential(ExpHistogram {
                    scale: c.scale.value(row),
                    zero_count: if c.zero_count.is_valid(row) { c.zero_count.value(row) as f64 } else { 0.0 },
                    zero_threshold: optional(c.zero_threshold, row).unwrap_or(0.0),
                    positive: buckets(c.positive_offset, c.positive)?,
                    negative: buckets(c.negative_offset, c.negative)?,
                    range: Range { min: optional(c.min, row), max: optional(c.max, row) },
                })
            }
            Self::Summaries(list) => {
                if list.is_null(row) {
                    return Ok(None);
                }
                let entries = list.value(row);
                let entries = entries.as_struct_opt().ok_or_else(|| unexpected(mcol::QUANTILE_VALUES))?;
                let field = |name| {
                    entries
                        .column_by_name(name)
                        .and_then(|c| c.as_primitive_opt::<Float64Type>())
                        .ok_or_else(|| unexpected(mcol::QUANTILE_VALUES))
                };
                let (quantiles, values) = (field(nested::QUANTILE)?, field(nested::VALUE)?);
                Value::Summary(quantiles.values().iter().copied().zip(values.values().iter().copied()).collect())
            }
        }))
    }
}

fn optional(array: &Float64Array, row: usize) -> Option<f64> {
    array.is_valid(row).then(|| array.value(row))
}

/// The Float64 items of one list row.
fn floats(list: &ListArray, row: usize) -> Result<Vec<f64>, QueryError> {
    let items = list.value(row);
    let items = items.as_primitive_opt::<Float64Type>().ok_or_else(|| unexpected("explicit_bounds"))?;
    Ok(items.values().to_vec())
}

/// The UInt64 items of one list row (empty when null), as floats.
fn counts_of(list: &ListArray, row: usize) -> Result<Vec<f64>, QueryError> {
    if list.is_null(row) {
        return Ok(Vec::new());
    }
    let items = list.value(row);
    let items = items.as_primitive_opt::<UInt64Type>().ok_or_else(|| unexpected("bucket counts"))?;
    Ok(items.values().iter().map(|c| *c as f64).collect())
}

fn unexpected(what: &str) -> QueryError {
    QueryError::Execution(format!("metric column {what} has an unexpected type"))
}
