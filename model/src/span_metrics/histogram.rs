//! The latency histogram of span metrics: exponential buckets with eight per
//! power of two (each about 9% wide), as an OpenTelemetry exponential
//! histogram of scale 3 would have them. Bucket `i` holds durations in
//! `(2^(i/8), 2^((i+1)/8)]` nanoseconds; durations of at most 1 ns fall in
//! bucket 0. Histograms merge by adding counts, so a quantile over any set
//! of rows is within half a bucket (about ±4.5%) of the exact one.

/// Buckets per power of two.
const PER_OCTAVE: f64 = 8.0;

/// The bucket of a duration in nanoseconds.
pub fn bucket_of(duration_ns: i64) -> i32 {
    if duration_ns <= 1 {
        return 0;
    }
    // At most 63 * 8 for any i64, so the cast cannot overflow.
    (((duration_ns as f64).log2() * PER_OCTAVE).ceil() as i32 - 1).max(0)
}

/// The lower and upper bound of bucket `index`, in nanoseconds.
pub fn bucket_bounds(index: i32) -> (f64, f64) {
    let lower = if index <= 0 { 0.0 } else { (f64::from(index) / PER_OCTAVE).exp2() };
    (lower, (f64::from(index + 1) / PER_OCTAVE).exp2())
}

/// Dense bucket counts starting at bucket `offset`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    pub offset: i32,
    pub counts: Vec<i64>,
}

impl Histogram {
    pub fn record(&mut self, duration_ns: i64) {
        self.add(bucket_of(duration_ns), 1);
    }

    /// Adds `count` to bucket `index`, growing the dense range as needed.
    pub fn add(&mut self, index: i32, count: i64) {
        if self.counts.is_empty() {
            self.offset = index;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        }
        let position = (index - self.offset) as usize;
        if position >= self.counts.len() {
            self.counts.resize(position + 1, 0);
        }
        self.counts[position] += count;
    }

    /// Adds every bucket of `offset`/`counts` (another histogram's),
    /// growing the dense range once.
    pub fn merge(&mut self, offset: i32, counts: &[i64]) {
        if counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.offset = offset;
            self.counts.extend_from_slice(counts);
            return;
        }
        let end = (offset + counts.len() as i32).max(self.offset + self.counts.len() as i32);
        if offset < self.offset {
            let grow = (self.offset - offset) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = offset;
        }
        self.counts.resize((end - self.offset) as usize, 0);
        let start = (offset - self.offset) as usize;
        for (total, count) in self.counts[start..start + counts.len()].iter_mut().zip(counts) {
            *total += count;
        }
    }

    pub fn total(&self) -> i64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0..=1) in nanoseconds: the bucket holding it,
    /// interpolated linearly by rank within the bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        // Rank of the quantile among the values, 1-based.
        let rank = (q * total as f64).max(1.0);
        let mut seen = 0i64;
        for (i, &count) in self.counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            if (seen + count) as f64 >= rank {
                let (lower, upper) = bucket_bounds(self.offset + i as i32);
                let within = (rank - seen as f64) / count as f64;
                return Some(lower + (upper - lower) * within);
            }
            seen += count;
        }
        let (_, upper) = bucket_bounds(self.offset + self.counts.len() as i32 - 1);
        Some(upper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_lies_in_its_bucket() {
        for duration in [2, 3, 7, 8, 9, 1_000, 1_024, 999_999, 1_000_000, 123_456_789, i64::MAX / 2] {
            let (lower, upper) = bucket_bounds(bucket_of(duration));
            let value = duration as f64;
            assert!(lower < value && value <= upper * (1.0 + 1e-12), "{duration} in ({lower}, {upper}]");
        }
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(-5), 0);
        assert_eq!(bucket_of(1), 0);
    }

    #[test]
    fn histograms_grow_both_ways_and_merge_by_adding() {
        let mut histogram = Histogram::default();
        histogram.add(10, 1);
        histogram.add(7, 2);
        histogram.add(12, 3);
        assert_eq!(histogram, Histogram { offset: 7, counts: vec![2, 0, 0, 1, 0, 3] });
        let mut merged = Histogram::default();
        merged.merge(20, &[1]);
        merged.merge(histogram.offset, &histogram.counts);
        merged.merge(9, &[5, 0, 1]);
        assert_eq!(merged.offset, 7);
        assert_eq!(merged.counts, vec![2, 0, 5, 1, 1, 3, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(merged.total(), 13);
    }

    #[test]
    fn quantiles_are_within_a_bucket_of_the_exact_value() {
        let durations: Vec<i64> = (1..=10_000).map(|i| i * 1_000).collect();
        let mut histogram = Histogram::default();
        durations.iter().for_each(|d| histogram.record(*d));
        for q in [0.5, 0.95, 0.99] {
            let exact = durations[(q * durations.len() as f64) as usize - 1] as f64;
            let estimate = histogram.quantile(q).expect("non-empty");
            assert!((estimate - exact).abs() / exact < 0.09, "q{q}: {estimate} against {exact}");
        }
        assert_eq!(Histogram::default().quantile(0.5), None);
        assert_eq!(histogram.quantile(1.5), None);
    }
}
