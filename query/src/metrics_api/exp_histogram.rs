//! Exponential histograms as stored (never re-bucketed on ingest), with the
//! arithmetic the range queries need: downscaling, merging at the smallest
//! scale, the increment between two cumulative points, and their segments
//! for [`quantile`](super::quantile::quantile).
//!
//! At scale `s` the base is `2^(2^-s)`; positive bucket `i` holds values in
//! `(base^i, base^(i+1)]`, negative bucket `i` the mirror image
//! `[-base^(i+1), -base^i)`. Downscaling by `d` maps bucket `i` to
//! `i >> d` (floor division), which merges `2^d` adjacent buckets exactly.
//! The zero bucket counts as a point mass at 0.

use super::quantile::{Range, Segment, push_clamped};

/// Consecutive bucket counts starting at bucket index `offset`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Buckets {
    pub offset: i32,
    pub counts: Vec<f64>,
}

impl Buckets {
    /// The same counts at a scale `by` lower.
    fn downscaled(&self, by: u32) -> Buckets {
        if by == 0 || self.counts.is_empty() {
            return self.clone();
        }
        let by = by.min(63);
        let first = i64::from(self.offset) >> by;
        let last = (i64::from(self.offset) + self.counts.len() as i64 - 1) >> by;
        let mut counts = vec![0.0; (last - first + 1) as usize];
        for (k, count) in self.counts.iter().enumerate() {
            counts[(((i64::from(self.offset) + k as i64) >> by) - first) as usize] += count;
        }
        Buckets { offset: first as i32, counts }
    }

    /// Adds `weight` times `other` (at the same scale), widening as needed.
    fn add(&mut self, other: &Buckets, weight: f64) {
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.offset = other.offset;
            self.counts = other.counts.iter().map(|c| c * weight).collect();
            return;
        }
        let first = self.offset.min(other.offset);
        let end = (i64::from(self.offset) + self.counts.len() as i64)
            .max(i64::from(other.offset) + other.counts.len() as i64);
        if first < self.offset || end > i64::from(self.offset) + self.counts.len() as i64 {
            let mut widened = vec![0.0; (end - i64::from(first)) as usize];
            let shift = (self.offset - first) as usize;
            widened[shift..shift + self.counts.len()].copy_from_slice(&self.counts);
            self.offset = first;
            self.counts = widened;
        }
        let shift = (other.offset - self.offset) as usize;
        for (k, count) in other.counts.iter().enumerate() {
            self.counts[shift + k] += count * weight;
        }
    }

    /// `self - earlier` (same scale), or None when a bucket went down.
    fn since(&self, earlier: &Buckets) -> Option<Buckets> {
        let mut difference = self.clone();
        difference.add(earlier, -1.0);
        difference.counts.iter().all(|c| *c >= 0.0).then_some(difference)
    }
}

/// One exponential histogram point (counts as floats: increments of a
/// step are weighted by how much of them falls into it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExpHistogram {
    pub scale: i32,
    pub zero_count: f64,
    pub zero_threshold: f64,
    pub positive: Buckets,
    pub negative: Buckets,
    pub range: Range,
}

impl ExpHistogram {
    /// The same histogram at `scale` (not above its own).
    fn at_scale(&self, scale: i32) -> ExpHistogram {
        let by = self.scale.saturating_sub(scale).max(0) as u32;
        ExpHistogram {
            scale: self.scale.min(scale),
            positive: self.positive.downscaled(by),
            negative: self.negative.downscaled(by),
            ..self.clone()
        }
    }

    /// `weight` times this histogram.
    pub(crate) fn scaled(&self, weight: f64) -> ExpHistogram {
        let mut scaled = ExpHistogram {
            zero_count: 0.0,
            positive: Buckets::default(),
            negative: Buckets::default(),
            ..self.clone()
        };
        scaled.add(self, weight);
        scaled
    }

    /// Adds `weight` times `other`, both brought to the smaller scale.
    pub(crate) fn add(&mut self, other: &ExpHistogram, weight: f64) {
        let scale = self.scale.min(other.scale);
        if self.scale != scale {
            *self = self.at_scale(scale);
        }
        let other = other.at_scale(scale);
        self.positive.add(&other.positive, weight);
        self.negative.add(&other.negative, weight);
        self.zero_count += other.zero_count * weight;
        self.zero_threshold = self.zero_threshold.max(other.zero_threshold);
        self.range = self.range.union(other.range);
    }

    /// The increment from the cumulative point `earlier` to this one, or
    /// None when any count went down (the histogram was reset).
    pub(crate) fn since(&self, earlier: &ExpHistogram) -> Option<ExpHistogram> {
        let scale = self.scale.min(earlier.scale);
        let (now, then) = (self.at_scale(scale), earlier.at_scale(scale));
        let zero_count = now.zero_count - then.zero_count;
        if zero_count < 0.0 {
            return None;
        }
        Some(ExpHistogram {
            zero_count,
            positive: now.positive.since(&then.positive)?,
            negative: now.negative.since(&then.negative)?,
            ..now
        })
    }

    /// Appends one segment per non-empty bucket.
    pub(crate) fn segments(&self, out: &mut Vec<Segment>) {
        push_clamped(Segment { lo: 0.0, hi: 0.0, count: self.zero_count }, self.range, out);
        for (k, &count) in self.positive.counts.iter().enumerate() {
            let index = i64::from(self.positive.offset) + k as i64;
            let (lo, hi) = (lower_bound(index, self.scale), lower_bound(index + 1, self.scale));
            push_clamped(Segment { lo, hi, count }, self.range, out);
        }
        for (k, &count) in self.negative.counts.iter().enumerate() {
            let index = i64::from(self.negative.offset) + k as i64;
            let (lo, hi) = (-lower_bound(index + 1, self.scale), -lower_bound(index, self.scale));
            push_clamped(Segment { lo, hi, count }, self.range, out);
        }
    }
}

/// `base^index` at `scale`: `2^(index * 2^-scale)`.
pub(crate) fn lower_bound(index: i64, scale: i32) -> f64 {
    (index as f64 * (-f64::from(scale)).exp2()).exp2()
}

#[cfg(test)]
mod tests {
    use super::super::quantile::quantile;
    use super::*;

    fn buckets(offset: i32, counts: &[f64]) -> Buckets {
        Buckets { offset, counts: counts.to_vec() }
    }

    fn histogram(scale: i32, zero_count: f64, positive: Buckets, negative: Buckets) -> ExpHistogram {
        ExpHistogram { scale, zero_count, zero_threshold: 0.0, positive, negative, range: Range::UNKNOWN }
    }

    fn q(h: &ExpHistogram, q: f64) -> f64 {
        let mut segments = Vec::new();
        h.segments(&mut segments);
        quantile(&segments, q).expect("a quantile")
    }

    fn total(h: &ExpHistogram) -> f64 {
        h.zero_count + h.positive.counts.iter().sum::<f64>() + h.negative.counts.iter().sum::<f64>()
    }

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
    }

    #[test]
    fn bucket_bounds_follow_the_scale() {
        close(lower_bound(1, 0), 2.0);
        close(lower_bound(3, 1), 2f64.powf(1.5));
        close(lower_bound(-2, 0), 0.25);
        close(lower_bound(1, -1), 4.0);
    }

    #[test]
    fn quantiles_cover_negative_zero_and_positive_buckets() {
        // Scale 0 (base 2): 2 values in [-2,-1), 2 zeros, 4 in (1,2], 4 in (2,4].
        let h = histogram(0, 2.0, buckets(0, &[4.0, 4.0]), buckets(0, &[2.0]));
        assert_eq!(total(&h), 12.0);
        close(q(&h, 0.1), -1.4); // rank 1.2 of 2 in [-2,-1)
        close(q(&h, 0.3), 0.0); // rank 3.6 is a zero
        close(q(&h, 0.5), 1.5); // rank 6: 2 into (1,2]
        close(q(&h, 0.9), 3.4); // rank 10.8: 2.8 of 4 into (2,4]
        close(q(&h, 1.0), 4.0);
        // A negative offset: buckets (1/4,1/2] and (1/2,1] at scale 0.
        let small = histogram(0, 0.0, buckets(-2, &[1.0, 1.0]), Buckets::default());
        close(q(&small, 0.25), 0.375);
        close(q(&small, 0.75), 0.75);
        // min/max narrow the outer buckets.
        let clamped = ExpHistogram { range: Range { min: Some(-1.5), max: Some(3.0) }, ..h.clone() };
        close(q(&clamped, 0.9), 2.0 + 2.8 / 4.0);
        close(q(&clamped, 0.0), -1.5);
    }

    #[test]
    fn downscaling_merges_adjacent_buckets_with_floor_division() {
        assert_eq!(buckets(0, &[1.0, 1.0, 1.0, 1.0]).downscaled(1), buckets(0, &[2.0, 2.0]));
        assert_eq!(buckets(-3, &[1.0, 1.0, 1.0]).downscaled(1), buckets(-2, &[1.0, 2.0]));
        assert_eq!(buckets(5, &[1.0, 2.0, 3.0]).downscaled(2), buckets(1, &[6.0]));
        assert_eq!(buckets(-1, &[1.0, 1.0]).downscaled(40), buckets(-1, &[1.0, 1.0]));
    }

    #[test]
    fn merges_at_the_smallest_scale() {
        // Scale 1: one value in each of (1,√2] (√2,2] (2,2√2] (2√2,4]; scale 0: 3 in (2,4].
        let fine = histogram(1, 1.0, buckets(0, &[1.0, 1.0, 1.0, 1.0]), Buckets::default());
        let coarse = histogram(0, 0.0, buckets(1, &[3.0]), buckets(0, &[1.0]));
        let mut merged = fine.scaled(1.0);
        merged.add(&coarse, 1.0);
        assert_eq!(merged.scale, 0);
        assert_eq!(merged.positive, buckets(0, &[2.0, 5.0]));
        assert_eq!(merged.negative, buckets(0, &[1.0]));
        assert_eq!(merged.zero_count, 1.0);
        // 9 values: 1 in [-2,-1), 1 zero, 2 in (1,2], 5 in (2,4]; rank 4.5 is 0.5 into (2,4].
        close(q(&merged, 0.5), 2.2);
        // The same merge in the other order gives the same histogram.
        let mut other = coarse.scaled(1.0);
        other.add(&fine, 1.0);
        assert_eq!(other, merged);
        // Weights scale every count.
        let half = fine.scaled(0.5);
        assert_eq!(half.positive, buckets(0, &[0.5, 0.5, 0.5, 0.5]));
        assert_eq!(half.zero_count, 0.5);
    }

    #[test]
    fn cumulative_increments_and_resets() {
        let earlier = histogram(1, 1.0, buckets(0, &[1.0, 1.0]), Buckets::default());
        // The later point was downscaled by the SDK and gained values.
        let later = histogram(0, 3.0, buckets(0, &[4.0, 1.0]), buckets(-1, &[1.0]));
        let increment = later.since(&earlier).expect("no reset");
        assert_eq!(increment.scale, 0);
        assert_eq!(increment.zero_count, 2.0);
        assert_eq!(increment.positive, buckets(0, &[2.0, 1.0]));
        assert_eq!(increment.negative, buckets(-1, &[1.0]));
        assert_eq!(total(&increment), 6.0);
        // Fewer values in a bucket than before: the histogram restarted.
        let restarted = histogram(1, 5.0, buckets(0, &[0.0, 1.0]), Buckets::default());
        assert_eq!(restarted.since(&earlier), None);
        let fewer_zeros = histogram(1, 0.0, buckets(0, &[1.0, 1.0]), Buckets::default());
        assert_eq!(fewer_zeros.since(&earlier), None);
    }
}
