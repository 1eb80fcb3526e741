//! `histogram_quantile` as Prometheus computes it: over classic buckets
//! (cumulative counts by `le`, linear interpolation within the bucket, the
//! `+Inf` bucket answered by the highest finite bound) and over native
//! histograms (exponential buckets, interpolated exponentially within a
//! bucket and linearly within the zero bucket, as Prometheus 3 does).

use super::value::Native;
use crate::metrics_api::lower_bound;

/// Prometheus' answer for a `q` outside [0, 1] (or NaN), whatever the data.
fn outside_unit_range(q: f64) -> Option<f64> {
    if q.is_nan() {
        Some(f64::NAN)
    } else if q < 0.0 {
        Some(f64::NEG_INFINITY)
    } else if q > 1.0 {
        Some(f64::INFINITY)
    } else {
        None
    }
}

/// The quantile `q` of classic buckets `(le, cumulative count)`; NaN when
/// there is no `+Inf` bucket, fewer than two buckets or no observations.
pub(crate) fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if let Some(answer) = outside_unit_range(q) {
        return answer;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Series with the same bound add up; counts are forced monotonic
    // (buckets scraped at slightly different moments can disagree).
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (le, count) in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == le => last.1 += count,
            _ => merged.push((le, count)),
        }
    }
    let mut highest = f64::NEG_INFINITY;
    for bucket in &mut merged {
        highest = highest.max(bucket.1);
        bucket.1 = highest;
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let last = merged.len() - 1;
    let b = merged[..last].iter().position(|bucket| bucket.1 >= rank).unwrap_or(last);
    if b == last {
        return merged[last - 1].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (mut start, end, mut count) = (0.0, merged[b].0, merged[b].1);
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// The quantile `q` of a native histogram; NaN without observations.
pub(crate) fn native_quantile(q: f64, native: &Native) -> f64 {
    if let Some(answer) = outside_unit_range(q) {
        return answer;
    }
    let total = native.count();
    if total <= 0.0 {
        return f64::NAN;
    }
    let h = &native.hist;
    let has_negative = h.negative.counts.iter().any(|c| *c > 0.0);
    let has_positive = h.positive.counts.iter().any(|c| *c > 0.0);
    // Buckets from the lowest values up: negative (largest magnitude first), zero, positive.
    let mut buckets: Vec<(f64, f64, f64)> = Vec::new();
    for (k, &count) in h.negative.counts.iter().enumerate().rev() {
        let index = i64::from(h.negative.offset) + k as i64;
        buckets.push((-lower_bound(index + 1, h.scale), -lower_bound(index, h.scale), count));
    }
    let zero_index = buckets.len();
    let zero_lower = if has_positive && !has_negative { 0.0 } else { -h.zero_threshold };
    let zero_upper = if has_negative && !has_positive { 0.0 } else { h.zero_threshold };
    buckets.push((zero_lower, zero_upper, h.zero_count));
    for (k, &count) in h.positive.counts.iter().enumerate() {
        let index = i64::from(h.positive.offset) + k as i64;
        buckets.push((lower_bound(index, h.scale), lower_bound(index + 1, h.scale), count));
    }
    let rank = q * total;
    let mut seen = 0.0;
    let mut chosen = None;
    for (i, bucket) in buckets.iter().enumerate() {
        if bucket.2 <= 0.0 {
            continue;
        }
        chosen = Some(i);
        seen += bucket.2;
        if seen >= rank {
            break;
        }
    }
    let Some(i) = chosen else { return f64::NAN };
    let (lower, upper, count) = buckets[i];
    let fraction = ((rank - (seen - count)) / count).clamp(0.0, 1.0);
    if i == zero_index {
        return lower + (upper - lower) * fraction;
    }
    let (log_lower, log_upper) = (lower.abs().log2(), upper.abs().log2());
    if lower > 0.0 {
        (log_lower + (log_upper - log_lower) * fraction).exp2()
    } else {
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics_api::{Buckets, ExpHistogram, Range};

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
    }

    #[test]
    fn classic_buckets_interpolate_linearly() {
        // 10 ≤ 10, 30 ≤ 50, 40 ≤ 100, 40 ≤ +Inf.
        let buckets = vec![(100.0, 40.0), (10.0, 10.0), (f64::INFINITY, 40.0), (50.0, 30.0)];
        close(bucket_quantile(0.5, buckets.clone()), 10.0 + 40.0 * (10.0 / 20.0));
        close(bucket_quantile(0.25, buckets.clone()), 10.0);
        close(bucket_quantile(0.1, buckets.clone()), 4.0);
        close(bucket_quantile(0.9, buckets.clone()), 50.0 + 50.0 * (6.0 / 10.0));
        assert_eq!(bucket_quantile(-1.0, buckets.clone()), f64::NEG_INFINITY);
        assert_eq!(bucket_quantile(2.0, buckets.clone()), f64::INFINITY);
    }

    #[test]
    fn the_inf_bucket_answers_the_highest_finite_bound() {
        let buckets = vec![(1.0, 1.0), (2.0, 2.0), (f64::INFINITY, 10.0)];
        close(bucket_quantile(0.99, buckets), 2.0);
    }

    #[test]
    fn classic_edge_cases_are_nan() {
        assert!(bucket_quantile(0.5, vec![(1.0, 1.0), (2.0, 2.0)]).is_nan(), "no +Inf bucket");
        assert!(bucket_quantile(0.5, vec![(f64::INFINITY, 3.0)]).is_nan(), "one bucket");
        assert!(bucket_quantile(0.5, vec![(1.0, 0.0), (f64::INFINITY, 0.0)]).is_nan(), "no observations");
        // Non-monotonic counts are forced up: (1: 5), (2: 3 → 5), (+Inf: 10).
        close(bucket_quantile(0.5, vec![(1.0, 5.0), (2.0, 3.0), (f64::INFINITY, 10.0)]), 1.0);
    }

    fn native(scale: i32, zero: f64, positive: Buckets, negative: Buckets) -> Native {
        let hist = ExpHistogram {
            scale,
            zero_count: zero,
            zero_threshold: 0.0,
            positive,
            negative,
            range: Range { min: None, max: None },
        };
        Native { hist, sum: 0.0 }
    }

    #[test]
    fn native_buckets_interpolate_exponentially() {
        // Scale 0: 4 values in (1,2], 4 in (2,4].
        let h = native(0, 0.0, Buckets { offset: 0, counts: vec![4.0, 4.0] }, Buckets::default());
        // Rank 2 of 8 is halfway through (1,2]: 2^0.5.
        close(native_quantile(0.25, &h), 2f64.sqrt());
        close(native_quantile(0.5, &h), 2.0);
        // Rank 7: 3/4 through (2,4]: 2^(1 + 0.75).
        close(native_quantile(0.875, &h), 2f64.powf(1.75));
        close(native_quantile(1.0, &h), 4.0);
    }

    #[test]
    fn native_negative_and_zero_buckets() {
        // Scale 0: 2 values in [-2,-1), 2 zeros, 4 in (1,2].
        let h = native(0, 2.0, Buckets { offset: 0, counts: vec![4.0] }, Buckets { offset: 0, counts: vec![2.0] });
        // Rank 1 of 8: halfway through [-2,-1) from -2 up: -(2^(0 + 1 * 0.5)).
        close(native_quantile(0.125, &h), -(2f64.sqrt()));
        close(native_quantile(0.375, &h), 0.0);
        close(native_quantile(0.75, &h), 2f64.sqrt());
        assert!(native_quantile(0.5, &native(0, 0.0, Buckets::default(), Buckets::default())).is_nan());
    }
}
