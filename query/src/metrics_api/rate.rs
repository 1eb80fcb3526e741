//! Increases over time: the pieces a series' points add up to, and how
//! much of each piece falls into each step. `rate` and histogram
//! `quantile` are both built on them.
//!
//! A piece is an interval `(from, to]` and what was counted in it.
//! Cumulative points give one piece per pair of consecutive points (the
//! difference); a drop in value (monotonic counters and histograms) or a
//! later `start_time` means the counter restarted from 0, so the piece is
//! the new value, counted from its `start_time` when known. The first point
//! of a series counts from its `start_time` only when that lies inside the
//! read range (the whole run is visible); otherwise it only starts the
//! first pair. Delta points are pieces by themselves, `(start_time, time]`
//! (or from the previous point when `start_time` is missing).
//!
//! A step's window is `(t - step, t]`; a piece counts into it in proportion
//! to the overlap (the counter is taken to grow evenly between points). The
//! rate of a step is what its window received divided by the seconds of the
//! window that pieces cover, so a series that starts or stops inside a
//! window is not diluted, and a window no piece touches has no value. When
//! points line up with steps this is exactly "increase over the step /
//! step seconds", for both temporalities.

use super::exp_histogram::ExpHistogram;
use super::points::Histogram;
use super::range::Steps;

/// One point of a series, reduced to what is counted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point<T> {
    pub time: i64,
    pub start_time: Option<i64>,
    pub amount: T,
}

/// What was counted in `(from, to]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Piece<T> {
    pub from: i64,
    pub to: i64,
    pub amount: T,
}

/// Something counted cumulatively: the increment between two points.
pub(crate) trait Increment: Clone {
    /// `self - earlier`, or None when the counter was reset in between.
    fn since(&self, earlier: &Self, monotonic: bool) -> Option<Self>;
}

impl Increment for f64 {
    fn since(&self, earlier: &Self, monotonic: bool) -> Option<Self> {
        let increase = self - earlier;
        (!monotonic || increase >= 0.0).then_some(increase)
    }
}

impl Increment for Histogram {
    fn since(&self, earlier: &Self, _: bool) -> Option<Self> {
        Histogram::since(self, earlier)
    }
}

impl Increment for ExpHistogram {
    fn since(&self, earlier: &Self, _: bool) -> Option<Self> {
        ExpHistogram::since(self, earlier)
    }
}

/// The pieces of one series' points (in time order, one per time).
/// `read_from` is where the read range starts (exclusive).
pub(crate) fn pieces<T: Increment>(
    points: Vec<Point<T>>,
    cumulative: bool,
    monotonic: bool,
    read_from: i64,
) -> Vec<Piece<T>> {
    let mut pieces = Vec::with_capacity(points.len());
    let mut previous: Option<Point<T>> = None;
    for point in points {
        let piece = match (&previous, cumulative) {
            (_, false) => {
                let from = point.start_time.filter(|s| *s <= point.time).or(previous.as_ref().map(|p| p.time));
                from.map(|from| Piece { from, to: point.time, amount: point.amount.clone() })
            }
            (None, true) => point.start_time.filter(|s| *s >= read_from && *s <= point.time).map(|from| Piece {
                from,
                to: point.time,
                amount: point.amount.clone(),
            }),
            (Some(earlier), true) => {
                let restarted = matches!((earlier.start_time, point.start_time), (Some(a), Some(b)) if b > a);
                let increment = if restarted { None } else { point.amount.since(&earlier.amount, monotonic) };
                Some(match increment {
                    Some(amount) => Piece { from: earlier.time, to: point.time, amount },
                    None => {
                        // Restarted from 0: at its start time if that is known and after the earlier point.
                        let from = point.start_time.filter(|s| *s >= earlier.time && *s <= point.time);
                        Piece { from: from.unwrap_or(earlier.time), to: point.time, amount: point.amount.clone() }
                    }
                })
            }
        };
        if let Some(piece) = piece.filter(|p| p.from <= p.to) {
            pieces.push(piece);
        }
        previous = Some(point);
    }
    pieces
}

/// How much of a step's window the pieces reached.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Coverage {
    /// Nanoseconds of the window that pieces span.
    pub nanos: i64,
    /// An instantaneous piece (start time equal to its time) fell in it.
    pub instant: bool,
}

/// Calls `add(step, amount, share)` for every piece overlapping a step's
/// window, `share` being the fraction of the piece inside the window, and
/// returns how much of each window the pieces cover. An instantaneous
/// piece (`from == to`: what an SDK with a coarse clock sends for a job
/// that recorded once) counts whole into the window holding its time.
/// `pieces` must be in time order.
pub(crate) fn spread<T>(pieces: &[Piece<T>], steps: &Steps, mut add: impl FnMut(usize, &T, f64)) -> Vec<Coverage> {
    let mut covered = vec![Coverage::default(); steps.count];
    let mut first = 0;
    for (i, covered) in covered.iter_mut().enumerate() {
        let (lo, hi) = steps.window(i);
        while first < pieces.len() && pieces[first].to <= lo {
            first += 1;
        }
        for piece in &pieces[first..] {
            if piece.from > hi || (piece.from == hi && piece.to > hi) {
                break;
            }
            if piece.from == piece.to {
                // lo < to <= hi, as earlier pieces were skipped.
                covered.instant = true;
                add(i, &piece.amount, 1.0);
                continue;
            }
            let overlap = piece.to.min(hi) - piece.from.max(lo);
            if overlap > 0 {
                covered.nanos += overlap;
                add(i, &piece.amount, overlap as f64 / (piece.to - piece.from) as f64);
            }
        }
    }
    covered
}

/// Per-second rate of one series at every step (None where no piece
/// reaches). Increases in a window are divided by the seconds pieces cover
/// in it; a window that only instantaneous pieces reached divides by the
/// whole step.
pub(crate) fn rates(pieces: &[Piece<f64>], steps: &Steps) -> Vec<Option<f64>> {
    let mut increase = vec![0.0; steps.count];
    let covered = spread(pieces, steps, |i, amount, share| increase[i] += amount * share);
    increase
        .into_iter()
        .zip(covered)
        .map(|(increase, covered)| match covered {
            Coverage { nanos, .. } if nanos > 0 => Some(increase / (nanos as f64 / 1e9)),
            Coverage { instant: true, .. } => Some(increase / (steps.step as f64 / 1e9)),
            Coverage { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn point(seconds: i64, start: Option<i64>, amount: f64) -> Point<f64> {
        Point { time: seconds * S, start_time: start.map(|s| s * S), amount }
    }

    /// Rates over 10 s steps ending at 0 s, 10 s, 20 s, 30 s and 40 s; the
    /// read range starts at -10 s.
    fn rates_of(points: Vec<Point<f64>>, cumulative: bool, monotonic: bool) -> Vec<Option<f64>> {
        let steps = Steps::new(0, 40 * S, 10 * S);
        rates(&pieces(points, cumulative, monotonic, -10 * S), &steps)
    }

    #[track_caller]
    fn assert_close(actual: Vec<Option<f64>>, expected: Vec<Option<f64>>) {
        let same = actual.len() == expected.len()
            && actual.iter().zip(&expected).all(|(a, e)| match (a, e) {
                (Some(a), Some(e)) => (a - e).abs() < 1e-9,
                (None, None) => true,
                _ => false,
            });
        assert!(same, "expected {expected:?}, got {actual:?}");
    }

    #[test]
    fn cumulative_counter_reset_counts_from_zero() {
        let points = vec![
            point(0, None, 100.0),
            point(10, None, 110.0),
            point(20, None, 130.0),
            point(30, None, 5.0), // restarted: 5 counted since the previous point
            point(40, None, 25.0),
        ];
        // The first step has no earlier point: no value (an empty step).
        assert_close(rates_of(points, true, true), vec![None, Some(1.0), Some(2.0), Some(0.5), Some(2.0)]);
    }

    #[test]
    fn a_later_start_time_is_a_reset_even_without_a_drop() {
        // Started at 0 s (inside the read range): 100 in 10 s. Restarted at
        // 15 s and counted 150 by 20 s: 150 over the 5 s covered.
        let points = vec![point(10, Some(0), 100.0), point(20, Some(15), 150.0), point(30, Some(15), 160.0)];
        assert_close(rates_of(points, true, true), vec![None, Some(10.0), Some(30.0), Some(1.0), None]);
    }

    #[test]
    fn delta_and_cumulative_give_the_same_rates() {
        let cumulative = vec![
            point(0, Some(-50), 0.0),
            point(10, Some(-50), 10.0),
            point(20, Some(-50), 30.0),
            point(30, Some(-50), 35.0),
        ];
        let delta = vec![point(10, Some(0), 10.0), point(20, Some(10), 20.0), point(30, Some(20), 5.0)];
        let expected = vec![None, Some(1.0), Some(2.0), Some(0.5), None];
        assert_close(rates_of(cumulative, true, true), expected.clone());
        assert_close(rates_of(delta, false, true), expected.clone());
        // Delta points without start_time run from the previous point; the first is skipped.
        let bare = vec![point(0, None, 99.0), point(10, None, 10.0), point(20, None, 20.0), point(30, None, 5.0)];
        assert_close(rates_of(bare, false, true), expected);
    }

    #[test]
    fn sparse_points_spread_evenly_over_small_steps() {
        // Exported every 30 s, charted every 10 s: 1/s throughout.
        let points = vec![point(0, None, 0.0), point(30, None, 30.0), point(60, None, 60.0)];
        let steps = Steps::new(10 * S, 60 * S, 10 * S);
        let rates = rates(&pieces(points, true, true, 0), &steps);
        assert_close(rates, vec![Some(1.0); 6]);
        // And dense points add up over a large step.
        let dense: Vec<_> = (0..=6).map(|i| point(i * 10, None, (i * i) as f64)).collect();
        let steps = Steps::new(60 * S, 60 * S, 60 * S);
        assert_close(super::rates(&pieces(dense, true, true, 0), &steps), vec![Some(36.0 / 60.0)]);
    }

    #[test]
    fn partially_covered_windows_are_not_diluted() {
        // The series stops at 25 s: the window (20, 30] is covered for 5 s.
        let points = vec![point(10, None, 0.0), point(20, None, 10.0), point(25, None, 20.0)];
        assert_close(rates_of(points, true, true), vec![None, None, Some(1.0), Some(2.0), None]);
    }

    #[test]
    fn non_monotonic_sums_may_go_down() {
        let points = vec![point(0, None, 10.0), point(10, None, 5.0)];
        assert_close(rates_of(points, true, false), vec![None, Some(-0.5), None, None, None]);
    }

    #[test]
    fn first_point_counts_from_a_start_time_inside_the_read_range() {
        // Started at 5 s (inside the read range, which begins at -10 s).
        assert_close(rates_of(vec![point(10, Some(5), 20.0)], true, true), vec![None, Some(4.0), None, None, None]);
        // Started long before the read range: nothing is known about the step.
        assert_close(rates_of(vec![point(10, Some(-100), 20.0)], true, true), vec![None; 5]);
    }

    #[test]
    fn a_point_whose_start_time_equals_its_time_counts_in_its_step() {
        // A short-lived job with a millisecond clock: recorded once, start == time.
        assert_close(rates_of(vec![point(10, Some(10), 20.0)], true, true), vec![None, Some(2.0), None, None, None]);
        assert_close(rates_of(vec![point(10, Some(10), 20.0)], false, true), vec![None, Some(2.0), None, None, None]);
        // Beside a regular piece in the same window, it adds to the increase
        // spread over the seconds that piece covers.
        let points = vec![point(2, Some(0), 4.0), point(4, Some(4), 6.0)];
        assert_close(rates_of(points, false, true), vec![None, Some(5.0), None, None, None]);
    }
}
