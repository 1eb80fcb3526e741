//! Series selection: which OpenTelemetry metrics a PromQL selector names
//! (through the [`Family`] mapping of what the store holds in the time
//! range), which of their series match its label matchers, and their points
//! as Prometheus samples. Reads go through the metric API's code paths
//! (`series_rows`, `read_series`), filtered on the shards by metric name,
//! time range and, when the matchers narrow it, series ID.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, BooleanArray, StringArray};
use datafusion::functions_aggregate::expr_fn::min;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::SessionContext;
use promql_parser::label::Matcher;
use skein_model::metrics::col::{DESCRIPTION, IS_MONOTONIC, METRIC_NAME, METRIC_TYPE, SERIES_ID, UNIT};

use super::names::{Component, Family, NAME_LABEL, PromLabels, float_label, prom_labels};
use super::params::bad;
use super::value::{Native, Point, PromSeries};
use crate::engine::METRICS_TABLE;
use crate::metrics_api::{
    Histogram, Labels, MetricType, Reading, Series, SeriesRow, Start, Value, column, point_filter,
};
use crate::{QueryEngine, QueryError};

/// Series ID lists longer than this are not pushed down (the name and time
/// filters already narrow the scan; unlisted series are dropped on read).
const MAX_PUSHED_IDS: usize = 1_000;

/// Native histograms' sums: by series labels, then by time.
type Sums = BTreeMap<Labels, BTreeMap<i64, f64>>;

/// One Prometheus series name of a family and the stored series it covers.
pub(crate) struct Target {
    pub family: Family,
    pub name: String,
    pub component: Component,
    pub rows: Vec<SeriesRow>,
    /// What reading their points pushes down.
    pub filter: Option<Expr>,
}

/// A time range `(from, to]` in unix nanoseconds; None reads everything.
pub(crate) type Window = Option<(i64, i64)>;

impl QueryEngine {
    /// The families of the metrics with points in `window`, sorted by name.
    pub(crate) async fn prom_families(&self, ctx: &SessionContext, window: Window) -> Result<Vec<Family>, QueryError> {
        let df_error = |e| self.datafusion_error(e);
        let mut frame = ctx.table(METRICS_TABLE).await.map_err(df_error)?;
        if let Some(filter) = point_filter(None, &[], window.map(|w| Start::Exclusive(w.0)), window.map(|w| w.1)) {
            frame = frame.filter(filter).map_err(df_error)?;
        }
        let keys = [METRIC_NAME, METRIC_TYPE, UNIT, IS_MONOTONIC];
        let limit = self.metrics_max_series();
        let frame = frame
            .aggregate(keys.iter().map(|k| col(*k)).collect(), vec![min(col(DESCRIPTION)).alias(DESCRIPTION)])
            .and_then(|f| f.limit(0, Some(limit + 1)))
            .map_err(df_error)?;
        let result = self.collect(frame, limit + 1).await?;
        if result.row_count > limit {
            return Err(QueryError::TooMuchData { what: "metrics", limit, key: "metrics_max_series" });
        }
        let mut families = Vec::new();
        for batch in &result.batches {
            let text = |name| column::<StringArray>(batch, name);
            let (names, types, units, descriptions) =
                (text(METRIC_NAME)?, text(METRIC_TYPE)?, text(UNIT)?, text(DESCRIPTION)?);
            let monotonic = column::<BooleanArray>(batch, IS_MONOTONIC)?;
            for row in 0..batch.num_rows() {
                let Some(kind) = MetricType::parse(types.value(row)) else { continue };
                let monotonic = monotonic.is_valid(row) && monotonic.value(row);
                families.push(Family::new(
                    names.value(row),
                    kind,
                    monotonic,
                    units.value(row),
                    descriptions.value(row),
                ));
            }
        }
        families.sort_by(|a, b| (&a.name, &a.otel_name).cmp(&(&b.name, &b.otel_name)));
        Ok(families)
    }

    /// The series matching every matcher (a missing label reads as ""),
    /// with their samples in `window` (time order).
    pub(crate) async fn prom_select(
        &self,
        ctx: &SessionContext,
        matchers: &[Matcher],
        window: Window,
    ) -> Result<Vec<PromSeries>, QueryError> {
        let label_matchers: Vec<&Matcher> = matchers.iter().filter(|m| m.name != NAME_LABEL).collect();
        let mut out = Vec::new();
        for target in self.prom_resolve(ctx, matchers, window).await? {
            let Target { family, name, component, rows, filter } = target;
            let series = self.read_component(ctx, filter, &family, &name, component, rows).await?;
            // `le` and `quantile` matchers apply once the points are read.
            out.extend(series.into_iter().filter(|s| {
                label_matchers.iter().all(|m| m.is_match(s.labels.get(&m.name).map_or("", String::as_str)))
            }));
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Which series of which families the matchers select in `window`,
    /// without their points (`le` and `quantile` matchers are left to the
    /// caller, as those labels live in the points).
    pub(crate) async fn prom_resolve(
        &self,
        ctx: &SessionContext,
        matchers: &[Matcher],
        window: Window,
    ) -> Result<Vec<Target>, QueryError> {
        if matchers.iter().all(|m| m.is_match("")) {
            return Err(bad("vector selector must contain at least one non-empty matcher".into()));
        }
        let (name_matchers, label_matchers): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| m.name == NAME_LABEL);
        let mut targets = Vec::new();
        for family in self.prom_families(ctx, window).await? {
            let names: Vec<(String, Component)> = family
                .series_names()
                .into_iter()
                .filter(|(name, _)| name_matchers.iter().all(|m| m.is_match(name)))
                .collect();
            if names.is_empty() {
                continue;
            }
            let filter = family_filter(&family, window);
            let max_series = self.metrics_max_series();
            let rows = self.series_rows(ctx, filter.clone(), max_series + 1, false).await?;
            if rows.len() > max_series {
                return Err(QueryError::TooMuchData { what: "series", limit: max_series, key: "metrics_max_series" });
            }
            for (name, component) in names {
                let expanded = matches!(component, Component::Bucket | Component::Quantile);
                let keep = |labels: &PromLabels| {
                    label_matchers.iter().all(|m| {
                        (expanded && (m.name == "le" || m.name == "quantile"))
                            || m.is_match(labels.get(&m.name).map_or("", String::as_str))
                    })
                };
                let chosen: Vec<SeriesRow> =
                    rows.iter().filter(|r| keep(&prom_labels(&name, &r.info.labels))).cloned().collect();
                if chosen.is_empty() {
                    continue;
                }
                let filter = narrowed(filter.clone(), &chosen, rows.len());
                targets.push(Target { family: family.clone(), name, component, rows: chosen, filter });
            }
        }
        Ok(targets)
    }

    /// The Prometheus series `name` of one component of `family`'s series `rows`.
    async fn read_component(
        &self,
        ctx: &SessionContext,
        filter: Option<Expr>,
        family: &Family,
        name: &str,
        component: Component,
        rows: Vec<SeriesRow>,
    ) -> Result<Vec<PromSeries>, QueryError> {
        let reading = match component {
            Component::Value => Reading::Values,
            Component::Bucket => Reading::Histograms,
            Component::Sum => Reading::Sums,
            Component::Count => Reading::Counts,
            Component::Quantile => Reading::Summaries,
            Component::Native => Reading::Exponential,
        };
        let series = self.read_series(ctx, filter.clone(), family.kind, reading, rows.clone()).await?;
        let sums = if component == Component::Native {
            // Native histograms carry their sum: read it beside the buckets.
            let sums = self.read_series(ctx, filter, family.kind, Reading::Sums, rows).await?;
            sums.into_iter()
                .map(|s| {
                    let by_time = s
                        .samples
                        .into_iter()
                        .filter_map(|p| match p.value {
                            Value::Number(v) => Some((p.time, v)),
                            _ => None,
                        })
                        .collect();
                    (s.labels, by_time)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        Ok(to_prom(name, component, series, &sums))
    }
}

/// The points of one family in `window`: its name, and the type, unit and
/// monotonicity that tell it from other variants of the same metric.
fn family_filter(family: &Family, window: Window) -> Option<Expr> {
    let by_name =
        point_filter(Some(&family.otel_name), &[], window.map(|w| Start::Exclusive(w.0)), window.map(|w| w.1));
    let mut variant = col(METRIC_TYPE).eq(lit(family.kind.name())).and(col(UNIT).eq(lit(family.unit.clone())));
    if family.kind == MetricType::Sum {
        variant = variant.and(col(IS_MONOTONIC).eq(lit(family.monotonic)));
    }
    Some(match by_name {
        Some(filter) => filter.and(variant),
        None => variant,
    })
}

/// Adds `series_id IN (...)` when the matchers dropped some series.
fn narrowed(filter: Option<Expr>, chosen: &[SeriesRow], all: usize) -> Option<Expr> {
    if chosen.len() == all || chosen.len() > MAX_PUSHED_IDS {
        return filter;
    }
    let ids = col(SERIES_ID).in_list(chosen.iter().map(|r| lit(r.info.series_id.clone())).collect(), false);
    Some(match filter {
        Some(filter) => filter.and(ids),
        None => ids,
    })
}

/// The Prometheus series of one component; delta series are accumulated
/// into cumulative ones from their first point read.
/// `sums` holds native histograms' sums.
fn to_prom(name: &str, component: Component, series: Vec<Series>, sums: &Sums) -> Vec<PromSeries> {
    let mut out: BTreeMap<PromLabels, Vec<(i64, Point)>> = BTreeMap::new();
    for s in series {
        let base = prom_labels(name, &s.labels);
        let mut push = |labels: PromLabels, time: i64, point: Point| out.entry(labels).or_default().push((time, point));
        let mut total: Option<Value> = None;
        let mut total_sum = 0.0;
        let series_sums = sums.get(&s.labels);
        for sample in s.samples {
            let mut sum = series_sums.and_then(|by_time| by_time.get(&sample.time)).copied().unwrap_or(f64::NAN);
            if !s.cumulative {
                total_sum += sum;
                sum = total_sum;
            }
            let value = if s.cumulative { sample.value } else { accumulate(&mut total, sample.value) };
            match (component, value) {
                (Component::Bucket, Value::Histogram(h)) => {
                    let mut running = 0.0;
                    for (i, count) in h.counts.iter().enumerate() {
                        running += count;
                        let le = h.bounds.get(i).copied().unwrap_or(f64::INFINITY);
                        let mut labels = base.clone();
                        labels.insert("le".into(), float_label(le));
                        push(labels, sample.time, Point::Float(running));
                    }
                }
                (Component::Quantile, Value::Summary(quantiles)) => {
                    for (q, v) in quantiles {
                        let mut labels = base.clone();
                        labels.insert("quantile".into(), float_label(q));
                        push(labels, sample.time, Point::Float(v));
                    }
                }
                (Component::Native, Value::Exponential(hist)) => {
                    push(base.clone(), sample.time, Point::Native(Box::new(Native { hist, sum })));
                }
                (_, Value::Number(v)) => push(base.clone(), sample.time, Point::Float(v)),
                _ => {}
            }
        }
    }
    out.into_iter().map(|(labels, samples)| PromSeries { labels, samples }).collect()
}

/// The running total of a delta series after `value`.
fn accumulate(total: &mut Option<Value>, value: Value) -> Value {
    let next = match (total.take(), value) {
        (None, value) => value,
        (Some(Value::Number(a)), Value::Number(b)) => Value::Number(a + b),
        (Some(Value::Histogram(a)), Value::Histogram(b)) if a.bounds == b.bounds => {
            let counts = a.counts.iter().zip(&b.counts).map(|(x, y)| x + y).collect();
            Value::Histogram(Histogram { counts, ..b })
        }
        (Some(Value::Exponential(mut a)), Value::Exponential(b)) => {
            a.add(&b, 1.0);
            Value::Exponential(a)
        }
        // New bounds restart the total.
        (_, value) => value,
    };
    *total = Some(next.clone());
    next
}
