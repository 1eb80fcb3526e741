//! Quantiles from bucket counts.
//!
//! Every histogram is turned into segments: a bucket's count spread evenly
//! over the bucket's range (a point mass when the range is a single value).
//! The quantile is read off the cumulative distribution of all segments
//! together, so it interpolates linearly within a bucket, and histograms of
//! one group with different bounds merge without re-bucketing.
//!
//! Open-ended explicit buckets use the histogram's `min`/`max` when known;
//! otherwise they follow Prometheus: the first bucket starts at 0 when its
//! upper bound is positive (else it is its upper bound), and the `+Inf`
//! bucket is its lower bound. Every segment is clamped to `[min, max]`.

use std::cmp::Ordering;

/// A count spread evenly over `[lo, hi]` (a point mass when `lo == hi`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Segment {
    pub lo: f64,
    pub hi: f64,
    pub count: f64,
}

/// The observed range of the values behind some buckets, when every
/// contributing point reported it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Range {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Range {
    #[cfg(test)]
    pub(crate) const UNKNOWN: Range = Range { min: None, max: None };

    /// The range of the union of two sets of values.
    pub(crate) fn union(self, other: Range) -> Range {
        let both = |a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64| Some(pick(a?, b?));
        Range { min: both(self.min, other.min, f64::min), max: both(self.max, other.max, f64::max) }
    }

    /// `segment` narrowed to the observed range.
    fn clamp(self, mut segment: Segment) -> Segment {
        if let Some(min) = self.min.filter(|m| m.is_finite()) {
            segment.lo = segment.lo.max(min);
            segment.hi = segment.hi.max(min);
        }
        if let Some(max) = self.max.filter(|m| m.is_finite()) {
            segment.lo = segment.lo.min(max);
            segment.hi = segment.hi.min(max);
        }
        segment
    }
}

/// Appends the segments of an explicit-bounds histogram (`counts` has one
/// more entry than `bounds`; anything else is ignored as malformed).
pub(crate) fn explicit_segments(bounds: &[f64], counts: &[f64], range: Range, out: &mut Vec<Segment>) {
    if counts.len() != bounds.len() + 1 {
        return;
    }
    for (i, &count) in counts.iter().enumerate() {
        if count <= 0.0 {
            continue;
        }
        let lo = if i == 0 { f64::NEG_INFINITY } else { bounds[i - 1] };
        let hi = bounds.get(i).copied().unwrap_or(f64::INFINITY);
        let mut segment = range.clamp(Segment { lo, hi, count });
        if segment.lo == f64::NEG_INFINITY {
            segment.lo = if segment.hi > 0.0 { 0.0 } else { segment.hi };
        }
        if segment.hi == f64::INFINITY {
            segment.hi = segment.lo;
        }
        out.push(segment);
    }
}

/// Appends `segment` narrowed to `range`.
pub(crate) fn push_clamped(segment: Segment, range: Range, out: &mut Vec<Segment>) {
    if segment.count > 0.0 {
        out.push(range.clamp(segment));
    }
}

/// The `q` quantile (0 ≤ q ≤ 1) of the values the segments describe; None
/// when they hold no count.
pub(crate) fn quantile(segments: &[Segment], q: f64) -> Option<f64> {
    let total: f64 = segments.iter().map(|s| s.count).sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let lowest = segments.iter().map(|s| s.lo).min_by(f64::total_cmp)?;
    let highest = segments.iter().map(|s| s.hi).max_by(f64::total_cmp)?;
    if q <= 0.0 {
        return Some(lowest);
    }
    if q >= 1.0 {
        return Some(highest);
    }
    let rank = q * total;
    // Sweep the breakpoints left to right: between two of them the
    // cumulative count grows linearly (slope = density), at a point mass it jumps.
    struct Event {
        x: f64,
        slope: f64,
        jump: f64,
    }
    let mut events = Vec::with_capacity(segments.len() * 2);
    for s in segments {
        if s.hi > s.lo {
            let density = s.count / (s.hi - s.lo);
            events.push(Event { x: s.lo, slope: density, jump: 0.0 });
            events.push(Event { x: s.hi, slope: -density, jump: 0.0 });
        } else {
            events.push(Event { x: s.lo, slope: 0.0, jump: s.count });
        }
    }
    events.sort_by(|a, b| a.x.partial_cmp(&b.x).unwrap_or(Ordering::Equal));
    let (mut previous, mut below, mut slope) = (events[0].x, 0.0_f64, 0.0_f64);
    let mut i = 0;
    while i < events.len() {
        let x = events[i].x;
        let reached = below + slope * (x - previous);
        if reached >= rank && slope > 0.0 {
            return Some(previous + (rank - below) / slope);
        }
        below = reached;
        while i < events.len() && events[i].x == x {
            below += events[i].jump;
            slope += events[i].slope;
            i += 1;
        }
        if below >= rank {
            return Some(x);
        }
        previous = x;
    }
    // Only rounding leaves the rank unreached.
    Some(highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit(bounds: &[f64], counts: &[f64], range: Range, q: f64) -> Option<f64> {
        let mut segments = Vec::new();
        explicit_segments(bounds, counts, range, &mut segments);
        quantile(&segments, q)
    }

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a quantile");
        assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
    }

    #[test]
    fn interpolates_linearly_within_explicit_buckets() {
        // Buckets (-inf,0] (0,10] (10,20] (20,+inf): 10 values in each middle one.
        let (bounds, counts) = ([0.0, 10.0, 20.0], [0.0, 10.0, 10.0, 0.0]);
        close(explicit(&bounds, &counts, Range::UNKNOWN, 0.25), 5.0);
        close(explicit(&bounds, &counts, Range::UNKNOWN, 0.5), 10.0);
        close(explicit(&bounds, &counts, Range::UNKNOWN, 0.75), 15.0);
        close(explicit(&bounds, &counts, Range::UNKNOWN, 0.95), 19.0);
        close(explicit(&bounds, &counts, Range::UNKNOWN, 0.0), 0.0);
        close(explicit(&bounds, &counts, Range::UNKNOWN, 1.0), 20.0);
        // Prometheus' classic example: (0,1] 1, (1,2] 2, (2,4] 4, (4,+inf) 0.
        close(explicit(&[1.0, 2.0, 4.0], &[1.0, 2.0, 4.0, 0.0], Range::UNKNOWN, 0.5), 2.25);
    }

    #[test]
    fn open_buckets_use_min_and_max_or_prometheus_rules() {
        let (bounds, counts) = ([10.0, 20.0], [0.0, 10.0, 10.0]);
        // Without max the +Inf bucket is its lower bound.
        close(explicit(&bounds, &counts, Range::UNKNOWN, 0.75), 20.0);
        // With max = 40 its values spread over (20, 40].
        close(explicit(&bounds, &counts, Range { min: None, max: Some(40.0) }, 0.75), 30.0);
        // The first bucket starts at 0 when its bound is positive, or at min.
        let first = ([10.0], [10.0, 0.0]);
        close(explicit(&first.0, &first.1, Range::UNKNOWN, 0.5), 5.0);
        close(explicit(&first.0, &first.1, Range { min: Some(6.0), max: Some(8.0) }, 0.5), 7.0);
        // A non-positive first bound is returned as is.
        close(explicit(&[-5.0], &[4.0, 0.0], Range::UNKNOWN, 0.5), -5.0);
        // min/max also narrow inner buckets: values in (10,20] are all in [12,14].
        close(explicit(&bounds, &[0.0, 10.0, 0.0], Range { min: Some(12.0), max: Some(14.0) }, 0.5), 13.0);
    }

    #[test]
    fn merges_histograms_with_different_bounds() {
        let mut segments = Vec::new();
        explicit_segments(&[10.0], &[10.0, 0.0], Range::UNKNOWN, &mut segments); // 10 in (0,10]
        explicit_segments(&[5.0, 10.0], &[0.0, 10.0, 0.0], Range::UNKNOWN, &mut segments); // 10 in (5,10]
        // Density 1 on (0,5], 3 on (5,10]: the median (rank 10) is at 5 + 5/3.
        close(quantile(&segments, 0.5), 5.0 + 5.0 / 3.0);
        close(quantile(&segments, 0.25), 5.0);
    }

    #[test]
    fn point_masses_and_empty_input() {
        let segments = [Segment { lo: 0.0, hi: 0.0, count: 2.0 }, Segment { lo: 1.0, hi: 2.0, count: 2.0 }];
        close(quantile(&segments, 0.25), 0.0);
        close(quantile(&segments, 0.5), 0.0);
        close(quantile(&segments, 0.75), 1.5);
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[Segment { lo: 1.0, hi: 2.0, count: 0.0 }], 0.5), None);
        assert_eq!(explicit(&[1.0], &[1.0], Range::UNKNOWN, 0.5), None, "malformed: one count too few");
    }

    #[test]
    fn ranges_combine_only_when_known_everywhere() {
        let a = Range { min: Some(1.0), max: Some(5.0) };
        let b = Range { min: Some(-1.0), max: None };
        assert_eq!(a.union(a), a);
        assert_eq!(a.union(b), Range { min: Some(-1.0), max: None });
        assert_eq!(a.union(Range::UNKNOWN), Range::UNKNOWN);
    }
}
