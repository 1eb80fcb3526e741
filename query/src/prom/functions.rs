//! `rate`, `increase` and `irate` over the samples of a range, with
//! Prometheus' semantics: counter resets add the value before the drop,
//! and `rate`/`increase` extrapolate to the range's edges (to at most half
//! a sample interval beyond the data, and never below zero).

use super::value::{Native, Point};

const NANOS: f64 = 1e9;

/// Which range function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFunction {
    Rate,
    Increase,
    Irate,
}

impl RangeFunction {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "rate" => Self::Rate,
            "increase" => Self::Increase,
            "irate" => Self::Irate,
            _ => return None,
        })
    }

    /// The function over `samples` (time order, all in `(range_start,
    /// range_end]`); None when it has no value (fewer than two samples,
    /// floats mixed with histograms).
    pub(crate) fn apply(self, samples: &[(i64, Point)], range_start: i64, range_end: i64) -> Option<Point> {
        if samples.len() < 2 {
            return None;
        }
        if self == Self::Irate {
            return irate(&samples[samples.len() - 2], &samples[samples.len() - 1]);
        }
        let (first, last) = (&samples[0], &samples[samples.len() - 1]);
        let (increase, first_count) = match &first.1 {
            Point::Float(_) => {
                let values: Option<Vec<f64>> =
                    samples.iter().map(|(_, p)| if let Point::Float(v) = p { Some(*v) } else { None }).collect();
                let values = values?;
                (Point::Float(float_increase(&values)), values[0])
            }
            Point::Native(h) => {
                let natives: Option<Vec<&Native>> =
                    samples.iter().map(|(_, p)| if let Point::Native(h) = p { Some(&**h) } else { None }).collect();
                (Point::Native(Box::new(native_increase(&natives?))), h.count())
            }
        };
        let result_count = match &increase {
            Point::Float(v) => *v,
            Point::Native(h) => h.count(),
        };
        let range = (range_end - range_start) as f64 / NANOS;
        let factor = extrapolation_factor(
            (first.0, last.0),
            samples.len(),
            (range_start, range_end),
            (first_count, result_count),
        ) / if self == Self::Rate { range } else { 1.0 };
        Some(scale(increase, factor))
    }
}

/// `last - first` plus the value before every drop (a counter reset).
fn float_increase(values: &[f64]) -> f64 {
    let mut increase = values[values.len() - 1] - values[0];
    for pair in values.windows(2) {
        if pair[1] < pair[0] {
            increase += pair[0];
        }
    }
    increase
}

/// The sum of the increments between consecutive histograms; after a
/// reset, the later histogram counts whole.
fn native_increase(natives: &[&Native]) -> Native {
    let mut total = natives[0].scaled(0.0);
    for pair in natives.windows(2) {
        match pair[1].since(pair[0]) {
            Some(increment) => total.add(&increment, 1.0),
            None => total.add(pair[1], 1.0),
        }
    }
    total
}

/// Prometheus' extrapolation: the data covers `sampled` seconds; it is
/// extended to each range edge when the gap is under 1.1 average sample
/// intervals, else by half an interval, and at the start not past where
/// the counter would have been zero.
fn extrapolation_factor(
    (first_t, last_t): (i64, i64),
    samples: usize,
    (range_start, range_end): (i64, i64),
    (first_value, increase): (f64, f64),
) -> f64 {
    let sampled = (last_t - first_t) as f64 / NANOS;
    let average = sampled / (samples - 1) as f64;
    let threshold = average * 1.1;
    let mut to_start = (first_t - range_start) as f64 / NANOS;
    let mut to_end = (range_end - last_t) as f64 / NANOS;
    if to_start >= threshold {
        to_start = average / 2.0;
    }
    if increase > 0.0 && first_value >= 0.0 {
        to_start = to_start.min(sampled * (first_value / increase));
    }
    if to_end >= threshold {
        to_end = average / 2.0;
    }
    (sampled + to_start + to_end) / sampled
}

fn irate(previous: &(i64, Point), last: &(i64, Point)) -> Option<Point> {
    let seconds = (last.0 - previous.0) as f64 / NANOS;
    if seconds <= 0.0 {
        return None;
    }
    let increase = match (&previous.1, &last.1) {
        (Point::Float(a), Point::Float(b)) => Point::Float(if b < a { *b } else { b - a }),
        (Point::Native(a), Point::Native(b)) => Point::Native(Box::new(b.since(a).unwrap_or_else(|| (**b).clone()))),
        _ => return None,
    };
    Some(scale(increase, 1.0 / seconds))
}

fn scale(point: Point, factor: f64) -> Point {
    match point {
        Point::Float(v) => Point::Float(v * factor),
        Point::Native(h) => Point::Native(Box::new(h.scaled(factor))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn floats(points: &[(i64, f64)]) -> Vec<(i64, Point)> {
        points.iter().map(|(t, v)| (t * S, Point::Float(*v))).collect()
    }

    fn value(point: Option<Point>) -> f64 {
        match point {
            Some(Point::Float(v)) => v,
            other => panic!("expected a float, got {other:?}"),
        }
    }

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
    }

    #[test]
    fn increase_extrapolates_to_the_range_edges() {
        // Range (0, 60]: samples at 10..50 s every 10 s rising by 10. The gaps to
        // the edges (10 s) are under 1.1 intervals: extrapolated by 10 s each way.
        let samples = floats(&[(10, 100.0), (20, 110.0), (30, 120.0), (40, 130.0), (50, 140.0)]);
        close(value(RangeFunction::Increase.apply(&samples, 0, 60 * S)), 40.0 * 60.0 / 40.0);
        close(value(RangeFunction::Rate.apply(&samples, 0, 60 * S)), 60.0 / 60.0);
        // A gap of 30 s at the start is past 1.1 intervals: half an interval (5 s) instead.
        let late = floats(&[(30, 100.0), (40, 110.0), (50, 120.0)]);
        close(value(RangeFunction::Increase.apply(&late, 0, 60 * S)), 20.0 * (20.0 + 5.0 + 10.0) / 20.0);
    }

    #[test]
    fn extrapolation_stops_where_the_counter_was_zero() {
        // 2 → 12 over 10 s: at that pace the counter was 0 two seconds before the first
        // sample, so the start is extended by 2 s, not 10.
        let samples = floats(&[(10, 2.0), (20, 12.0)]);
        close(value(RangeFunction::Increase.apply(&samples, 0, 20 * S)), 10.0 * (10.0 + 2.0) / 10.0);
    }

    #[test]
    fn counter_resets_add_the_value_before_the_drop() {
        // 100 → 160, reset to 5 → 45: 60 + 45 = 105 over samples covering the whole range.
        let samples = floats(&[(0, 100.0), (10, 130.0), (20, 160.0), (30, 5.0), (40, 45.0)]);
        close(value(RangeFunction::Increase.apply(&samples, 0, 40 * S)), 105.0);
        close(value(RangeFunction::Rate.apply(&samples, 0, 40 * S)), 105.0 / 40.0);
        close(value(RangeFunction::Irate.apply(&samples, 0, 40 * S)), 4.0);
        close(value(RangeFunction::Irate.apply(&samples[..4], 0, 40 * S)), 0.5);
    }

    #[test]
    fn fewer_than_two_samples_have_no_rate() {
        assert_eq!(RangeFunction::Rate.apply(&floats(&[(10, 1.0)]), 0, 60 * S), None);
        assert_eq!(RangeFunction::Irate.apply(&[], 0, 60 * S), None);
    }
}
