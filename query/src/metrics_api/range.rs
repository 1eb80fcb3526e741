//! The step math of `query_range`: the step grid, each series' value at
//! every step, and the aggregation across the series of a group.
//!
//! Steps are at `start, start + step, …` up to `end`; the window of step
//! `t` is `(t - step, t]`. Gauges and sums take the last point of each
//! series in the window, then `sum`/`avg`/`min`/`max` across the group's
//! series. `rate` sums the series' rates ([`super::rate`]). `quantile`
//! merges the group's bucket increments per window, then interpolates
//! ([`super::quantile`]); for summaries it averages the matching stored
//! quantile of each series' last point. A step where no series has a
//! value gives no point.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::exp_histogram::ExpHistogram;
use super::points::{Histogram, Labels, MetricType, Sample, Series, Value};
use super::quantile::{Range, explicit_segments, quantile};
use super::rate::{Point, pieces, rates, spread};

/// The step grid (unix nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Steps {
    pub start: i64,
    pub step: i64,
    pub count: usize,
}

impl Steps {
    /// Steps from `start` to at most `end`; needs `start <= end` and `step > 0`.
    pub(crate) fn new(start: i64, end: i64, step: i64) -> Steps {
        Steps { start, step, count: ((end - start) / step) as usize + 1 }
    }

    pub(crate) fn time(&self, i: usize) -> i64 {
        self.start + self.step * i as i64
    }

    /// The window `(t - step, t]` of step `i`.
    pub(crate) fn window(&self, i: usize) -> (i64, i64) {
        let t = self.time(i);
        (t - self.step, t)
    }
}

/// How the series of a group are combined at each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    Sum,
    Avg,
    Min,
    Max,
    Rate,
    /// The quantile, between 0 and 1.
    Quantile(f64),
}

impl Aggregation {
    pub const NAMES: &'static str = "sum, avg, min, max, rate or quantile";

    /// The aggregation named `name`; a quantile needs its value.
    pub fn parse(name: &str, quantile: Option<f64>) -> Option<Self> {
        Some(match name {
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "rate" => Self::Rate,
            "quantile" => Self::Quantile(quantile?),
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::Rate => "rate",
            Self::Quantile(_) => "quantile",
        }
    }

    /// Whether this aggregation applies to `kind`; the error says what does.
    pub(crate) fn check(self, metric: &str, kind: MetricType) -> Result<(), String> {
        use MetricType::*;
        let (fits, needs) = match self {
            Self::Sum | Self::Avg | Self::Min | Self::Max => {
                (matches!(kind, Gauge | Sum), "a gauge or sum; use rate or quantile for histograms and summaries")
            }
            Self::Rate => (kind != Gauge, "a sum, histogram or summary; a gauge has no rate, use sum, avg, min or max"),
            Self::Quantile(_) => (
                matches!(kind, Histogram | ExponentialHistogram | Summary),
                "a histogram, exponential histogram or summary",
            ),
        };
        if fits {
            Ok(())
        } else {
            Err(format!("aggregation {} needs {needs}; {metric:?} is a {}", self.name(), kind.name()))
        }
    }
}

/// One query's evaluation over the series it read.
#[derive(Debug, Clone)]
pub(crate) struct Evaluation {
    pub kind: MetricType,
    pub aggregation: Aggregation,
    pub steps: Steps,
    pub group_by: Vec<String>,
    /// Where the read range starts (exclusive): see [`super::rate`].
    pub read_from: i64,
}

/// One output series: the group's labels and its points (time, value).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

impl Evaluation {
    /// Groups `series` by the `group_by` labels (a missing label is left out
    /// of the group's labels) and evaluates every group; groups without any
    /// point are left out. Groups come sorted by labels.
    pub(crate) fn run(&self, series: Vec<Series>) -> Vec<Group> {
        let mut groups: BTreeMap<Labels, Vec<Series>> = BTreeMap::new();
        for series in series {
            let key =
                self.group_by.iter().filter_map(|k| series.labels.get(k).map(|v| (k.clone(), v.clone()))).collect();
            groups.entry(key).or_default().push(series);
        }
        groups
            .into_iter()
            .filter_map(|(labels, members)| {
                let points: Vec<(i64, f64)> = self
                    .values(&members)
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (self.steps.time(i), v)))
                    .collect();
                (!points.is_empty()).then_some(Group { labels, points })
            })
            .collect()
    }

    /// The group's value at every step.
    fn values(&self, members: &[Series]) -> Vec<Option<f64>> {
        let steps = &self.steps;
        match (self.aggregation, self.kind) {
            (Aggregation::Rate, _) => {
                let mut total = vec![Stats::default(); steps.count];
                for series in members {
                    let points = series.samples.iter().filter_map(|s| number(s).map(|v| point(s, v))).collect();
                    let pieces = pieces(points, series.cumulative, series.monotonic, self.read_from);
                    for (stats, rate) in total.iter_mut().zip(rates(&pieces, steps)) {
                        stats.add_opt(rate);
                    }
                }
                total.iter().map(|s| s.get(Aggregation::Sum)).collect()
            }
            (Aggregation::Quantile(q), MetricType::Histogram) => {
                let mut merged: Vec<ExplicitStep> = (0..steps.count).map(|_| ExplicitStep::default()).collect();
                for series in members {
                    let points = series
                        .samples
                        .iter()
                        .filter_map(|s| match &s.value {
                            Value::Histogram(h) => Some(point(s, h.clone())),
                            _ => None,
                        })
                        .collect();
                    let pieces = pieces(points, series.cumulative, true, self.read_from);
                    spread(&pieces, steps, |i, h, share| merged[i].add(h, share));
                }
                merged.iter().map(|m| m.quantile(q)).collect()
            }
            (Aggregation::Quantile(q), MetricType::ExponentialHistogram) => {
                let mut merged: Vec<Option<ExpHistogram>> = vec![None; steps.count];
                for series in members {
                    let points = series
                        .samples
                        .iter()
                        .filter_map(|s| match &s.value {
                            Value::Exponential(h) => Some(point(s, h.clone())),
                            _ => None,
                        })
                        .collect();
                    let pieces = pieces(points, series.cumulative, true, self.read_from);
                    spread(&pieces, steps, |i, h, share| match &mut merged[i] {
                        Some(m) => m.add(h, share),
                        slot @ None => *slot = Some(h.scaled(share)),
                    });
                }
                merged
                    .iter()
                    .map(|m| {
                        let m = m.as_ref()?;
                        let mut segments = Vec::new();
                        m.segments(&mut segments);
                        quantile(&segments, q)
                    })
                    .collect()
            }
            (Aggregation::Quantile(q), _) => {
                // Summaries: the stored quantile of each series' last point, averaged.
                self.last_values(members, |s| match &s.value {
                    Value::Summary(quantiles) => {
                        quantiles.iter().find(|(stored, _)| (stored - q).abs() < 1e-9).map(|(_, v)| *v)
                    }
                    _ => None,
                })
                .iter()
                .map(|s| s.get(Aggregation::Avg))
                .collect()
            }
            (aggregation, _) => self.last_values(members, number).iter().map(|s| s.get(aggregation)).collect(),
        }
    }

    /// Per step, the statistics of `value` of each series' last point in the window.
    fn last_values(&self, members: &[Series], value: impl Fn(&Sample) -> Option<f64>) -> Vec<Stats> {
        let mut stats = vec![Stats::default(); self.steps.count];
        for series in members {
            for (stats, last) in stats.iter_mut().zip(last_in_window(&series.samples, &self.steps)) {
                stats.add_opt(last.and_then(|i| value(&series.samples[i])));
            }
        }
        stats
    }
}

fn number(sample: &Sample) -> Option<f64> {
    match sample.value {
        Value::Number(v) => Some(v),
        _ => None,
    }
}

fn point<T>(sample: &Sample, amount: T) -> Point<T> {
    Point { time: sample.time, start_time: sample.start_time, amount }
}

/// For every step, the index of the last sample in its window, if any
/// (`samples` in time order).
pub(crate) fn last_in_window(samples: &[Sample], steps: &Steps) -> Vec<Option<usize>> {
    let mut next = 0;
    (0..steps.count)
        .map(|i| {
            let (lo, hi) = steps.window(i);
            while next < samples.len() && samples[next].time <= hi {
                next += 1;
            }
            (next > 0 && samples[next - 1].time > lo).then(|| next - 1)
        })
        .collect()
}

/// Running sum, count, min and max of the values at one step.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    count: u32,
    sum: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn add_opt(&mut self, value: Option<f64>) {
        let Some(value) = value else { return };
        if self.count == 0 {
            (self.min, self.max) = (value, value);
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    fn get(&self, aggregation: Aggregation) -> Option<f64> {
        (self.count > 0).then(|| match aggregation {
            Aggregation::Avg => self.sum / f64::from(self.count),
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            _ => self.sum,
        })
    }
}

/// The explicit-bucket increments of a group in one window, by bounds.
#[derive(Debug, Default)]
struct ExplicitStep {
    parts: Vec<(Arc<[f64]>, Vec<f64>)>,
    range: Option<Range>,
}

impl ExplicitStep {
    fn add(&mut self, histogram: &Histogram, share: f64) {
        self.range = Some(self.range.map_or(histogram.range, |r| r.union(histogram.range)));
        let same = |(bounds, counts): &&mut (Arc<[f64]>, Vec<f64>)| {
            bounds[..] == histogram.bounds[..] && counts.len() == histogram.counts.len()
        };
        match self.parts.iter_mut().find(same) {
            Some((_, counts)) => counts.iter_mut().zip(&histogram.counts).for_each(|(c, n)| *c += n * share),
            None => {
                self.parts.push((Arc::clone(&histogram.bounds), histogram.counts.iter().map(|n| n * share).collect()))
            }
        }
    }

    fn quantile(&self, q: f64) -> Option<f64> {
        let range = self.range?;
        let mut segments = Vec::new();
        for (bounds, counts) in &self.parts {
            explicit_segments(bounds, counts, range, &mut segments);
        }
        quantile(&segments, q)
    }
}

#[cfg(test)]
mod tests {
    use super::super::exp_histogram::Buckets;
    use super::*;

    const S: i64 = 1_000_000_000;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn numbers(pairs: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
        Series {
            labels: labels(pairs),
            cumulative: true,
            monotonic: true,
            samples: points
                .iter()
                .map(|(t, v)| Sample { time: t * S, start_time: None, value: Value::Number(*v) })
                .collect(),
        }
    }

    /// Steps every 10 s from 10 s to 40 s, reading from 0 s.
    fn evaluation(kind: MetricType, aggregation: Aggregation, group_by: &[String]) -> Evaluation {
        let steps = Steps::new(10 * S, 40 * S, 10 * S);
        Evaluation { kind, aggregation, steps, group_by: group_by.to_vec(), read_from: 0 }
    }

    fn points(groups: &[Group]) -> Vec<Vec<(i64, f64)>> {
        groups.iter().map(|g| g.points.iter().map(|(t, v)| (t / S, (v * 1e9).round() / 1e9)).collect()).collect()
    }

    #[test]
    fn steps_cover_start_to_end() {
        let steps = Steps::new(100, 130, 10);
        assert_eq!(steps.count, 4);
        assert_eq!((steps.time(3), steps.window(0)), (130, (90, 100)));
        assert_eq!(Steps::new(100, 109, 10).count, 1);
    }

    #[test]
    fn last_sample_in_each_window_or_none() {
        let series = numbers(&[], &[(5, 1.0), (12, 2.0), (18, 3.0), (40, 4.0)]);
        let steps = Steps::new(10 * S, 40 * S, 10 * S);
        assert_eq!(last_in_window(&series.samples, &steps), vec![Some(0), Some(2), None, Some(3)]);
    }

    #[test]
    fn aggregates_last_samples_across_series_and_skips_empty_steps() {
        let series = vec![
            numbers(&[("host", "a")], &[(10, 1.0), (20, 2.0), (40, 4.0)]),
            numbers(&[("host", "b")], &[(10, 3.0), (15, 5.0), (40, 1.0)]),
        ];
        let run = |aggregation| evaluation(MetricType::Gauge, aggregation, &[]).run(series.clone());
        // Step 30 s has no sample in (20, 30]: no point.
        assert_eq!(points(&run(Aggregation::Sum)), vec![vec![(10, 4.0), (20, 7.0), (40, 5.0)]]);
        assert_eq!(points(&run(Aggregation::Avg)), vec![vec![(10, 2.0), (20, 3.5), (40, 2.5)]]);
        assert_eq!(points(&run(Aggregation::Min)), vec![vec![(10, 1.0), (20, 2.0), (40, 1.0)]]);
        assert_eq!(points(&run(Aggregation::Max)), vec![vec![(10, 3.0), (20, 5.0), (40, 4.0)]]);
        // No samples at all: no series.
        assert!(evaluation(MetricType::Gauge, Aggregation::Sum, &[]).run(vec![numbers(&[], &[(100, 1.0)])]).is_empty());
    }

    #[test]
    fn groups_by_labels_and_leaves_missing_labels_out() {
        let group_by = vec!["host".to_string()];
        let series = vec![
            numbers(&[("host", "b"), ("cpu", "0")], &[(10, 1.0)]),
            numbers(&[("host", "a"), ("cpu", "0")], &[(10, 2.0)]),
            numbers(&[("host", "a"), ("cpu", "1")], &[(10, 3.0)]),
            numbers(&[("cpu", "2")], &[(10, 4.0)]),
        ];
        let groups = evaluation(MetricType::Gauge, Aggregation::Sum, &group_by).run(series);
        let summary: Vec<(Labels, f64)> = groups.iter().map(|g| (g.labels.clone(), g.points[0].1)).collect();
        assert_eq!(summary, vec![(labels(&[]), 4.0), (labels(&[("host", "a")]), 5.0), (labels(&[("host", "b")]), 1.0)]);
    }

    #[test]
    fn rate_sums_the_series_rates() {
        let series = vec![
            numbers(&[("host", "a")], &[(0, 0.0), (10, 10.0), (20, 30.0), (30, 0.0), (40, 10.0)]),
            numbers(&[("host", "b")], &[(0, 5.0), (10, 15.0), (20, 25.0)]),
        ];
        let groups = evaluation(MetricType::Sum, Aggregation::Rate, &[]).run(series);
        // At 30 s host a restarted (0 counted) and host b has no point: rate 0.
        assert_eq!(points(&groups), vec![vec![(10, 2.0), (20, 3.0), (30, 0.0), (40, 1.0)]]);
    }

    fn histogram_series(cumulative: bool, points: &[(i64, [f64; 3])], max: Option<f64>) -> Series {
        let bounds: Arc<[f64]> = Arc::from(vec![10.0, 20.0]);
        Series {
            labels: Labels::new(),
            cumulative,
            monotonic: true,
            samples: points
                .iter()
                .map(|(t, counts)| Sample {
                    time: t * S,
                    start_time: None,
                    value: Value::Histogram(Histogram {
                        bounds: Arc::clone(&bounds),
                        counts: counts.to_vec(),
                        range: Range { min: None, max },
                    }),
                })
                .collect(),
        }
    }

    #[test]
    fn histogram_quantile_merges_increments_per_window() {
        // Cumulative, buckets (-inf,10] (10,20] (20,+inf): 10 values in the
        // first by 10 s, then 10 more per step in the second.
        let cumulative = histogram_series(
            true,
            &[(0, [0.0, 0.0, 0.0]), (10, [10.0, 0.0, 0.0]), (20, [10.0, 10.0, 0.0]), (30, [10.0, 20.0, 0.0])],
            None,
        );
        // Delta: the same increments, then an empty point.
        let delta = histogram_series(
            false,
            &[
                (0, [0.0, 0.0, 0.0]),
                (10, [10.0, 0.0, 0.0]),
                (20, [0.0, 10.0, 0.0]),
                (30, [0.0, 10.0, 0.0]),
                (40, [0.0; 3]),
            ],
            None,
        );
        let median = Aggregation::Quantile(0.5);
        let c = evaluation(MetricType::Histogram, median, &[]).run(vec![cumulative.clone()]);
        assert_eq!(points(&c), vec![vec![(10, 5.0), (20, 15.0), (30, 15.0)]]);
        let d = evaluation(MetricType::Histogram, median, &[]).run(vec![delta.clone()]);
        assert_eq!(points(&d), points(&c), "the last delta point is empty: no value");
        // Merged: at 20 s, 20 values in (10,20] → median 15; at 10 s, 20 in (0,10] → 5.
        let both = evaluation(MetricType::Histogram, median, &[]).run(vec![cumulative, delta]);
        assert_eq!(points(&both), vec![vec![(10, 5.0), (20, 15.0), (30, 15.0)]]);
        // A counter reset in a cumulative histogram counts the new values from 0.
        let reset = histogram_series(true, &[(10, [0.0, 50.0, 0.0]), (20, [0.0, 0.0, 4.0])], Some(40.0));
        let r = evaluation(MetricType::Histogram, Aggregation::Quantile(0.75), &[]).run(vec![reset]);
        assert_eq!(points(&r), vec![vec![(20, 35.0)]]);
    }

    #[test]
    fn a_histogram_recorded_once_with_start_equal_to_time_has_a_quantile() {
        // A short-lived job: one point, start time equal to its time (ms clock).
        for cumulative in [true, false] {
            let mut once = histogram_series(cumulative, &[(15, [0.0, 4.0, 0.0])], None);
            once.samples[0].start_time = Some(15 * S);
            let q = evaluation(MetricType::Histogram, Aggregation::Quantile(0.5), &[]).run(vec![once]);
            assert_eq!(points(&q), vec![vec![(20, 15.0)]], "cumulative: {cumulative}");
        }
    }

    #[test]
    fn exponential_quantile_merges_series_at_different_scales() {
        let exp = |scale, offset, counts: &[f64]| Series {
            labels: Labels::new(),
            cumulative: false,
            monotonic: true,
            samples: vec![Sample {
                time: 10 * S,
                start_time: Some(0),
                value: Value::Exponential(ExpHistogram {
                    scale,
                    zero_count: 0.0,
                    zero_threshold: 0.0,
                    positive: Buckets { offset, counts: counts.to_vec() },
                    negative: Buckets::default(),
                    range: Range::UNKNOWN,
                }),
            }],
        };
        let series = vec![exp(1, 0, &[1.0, 1.0, 1.0, 1.0]), exp(0, 1, &[3.0])];
        let groups = evaluation(MetricType::ExponentialHistogram, Aggregation::Quantile(0.5), &[]).run(series);
        // Scale 0: 2 in (1,2], 5 in (2,4]; rank 3.5 is 1.5 into (2,4].
        assert_eq!(points(&groups), vec![vec![(10, 2.6)]]);
    }

    #[test]
    fn summary_quantile_averages_the_stored_quantile() {
        let summary = |points: &[(i64, f64)]| Series {
            labels: Labels::new(),
            cumulative: true,
            monotonic: true,
            samples: points
                .iter()
                .map(|(t, p95)| Sample {
                    time: t * S,
                    start_time: None,
                    value: Value::Summary(vec![(0.5, 1.0), (0.95, *p95)]),
                })
                .collect(),
        };
        let groups = evaluation(MetricType::Summary, Aggregation::Quantile(0.95), &[])
            .run(vec![summary(&[(10, 4.0), (20, 8.0)]), summary(&[(10, 6.0)])]);
        assert_eq!(points(&groups), vec![vec![(10, 5.0), (20, 8.0)]]);
        let missing = evaluation(MetricType::Summary, Aggregation::Quantile(0.9), &[]).run(vec![summary(&[(10, 4.0)])]);
        assert!(missing.is_empty());
    }

    #[test]
    fn aggregations_are_checked_against_the_type() {
        assert!(Aggregation::Sum.check("m", MetricType::Gauge).is_ok());
        assert!(Aggregation::Rate.check("m", MetricType::Histogram).is_ok());
        assert!(Aggregation::Quantile(0.9).check("m", MetricType::Summary).is_ok());
        let err = Aggregation::Rate.check("cpu", MetricType::Gauge).expect_err("no rate of a gauge");
        assert!(err.contains("\"cpu\" is a gauge"), "{err}");
        assert!(Aggregation::Avg.check("m", MetricType::Histogram).is_err());
        assert!(Aggregation::Quantile(0.5).check("m", MetricType::Sum).is_err());
        assert_eq!(Aggregation::parse("quantile", None), None);
        assert_eq!(Aggregation::parse("quantile", Some(0.9)), Some(Aggregation::Quantile(0.9)));
        assert_eq!(Aggregation::parse("median", None), None);
    }
}
