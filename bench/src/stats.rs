//! Latency histograms and failure counts, kept per worker (no locking on the
//! hot path) and merged when the run ends.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies in microseconds, from 1 µs to 10 minutes at 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Latencies {
    pub fn new() -> Self {
        // Only fails for bounds that are not ordered or a precision above 5.
        Self(Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("static bounds are valid")))
    }

    pub fn record(&mut self, latency: Duration) {
        self.0.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1));
    }

    pub fn merge(&mut self, other: &Latencies) {
        // Both have the same bounds, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at `quantile` (0..=1) in milliseconds; None without samples.
    pub fn quantile_ms(&self, quantile: f64) -> Option<f64> {
        (self.count() > 0).then(|| self.0.value_at_quantile(quantile) as f64 / 1000.0)
    }

    pub fn max_ms(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.0.max() as f64 / 1000.0)
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

/// Failures by kind, ordered by name for stable output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failures(BTreeMap<String, u64>);

impl Failures {
    pub fn add(&mut self, kind: &str, count: u64) {
        *self.0.entry(kind.to_owned()).or_default() += count;
    }

    pub fn merge(&mut self, other: &Failures) {
        for (kind, count) in &other.0 {
            self.add(kind, *count);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn into_map(self) -> BTreeMap<String, u64> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_merging() {
        let mut a = Latencies::new();
        assert_eq!(a.quantile_ms(0.5), None);
        for ms in 1..=100 {
            a.record(Duration::from_millis(ms));
        }
        let mut b = Latencies::new();
        b.record(Duration::from_secs(2));
        a.merge(&b);
        assert_eq!(a.count(), 101);
        let p50 = a.quantile_ms(0.5).expect("samples");
        assert!((50.0..=51.5).contains(&p50), "{p50}");
        assert!((1999.0..=2001.0).contains(&a.max_ms().expect("samples")));
        b.record(Duration::from_secs(3600));
        assert!(b.max_ms().expect("samples") >= 599_000.0, "saturates at the top bound");
    }

    #[test]
    fn failures_add_up_by_kind() {
        let mut a = Failures::default();
        a.add("http_503", 2);
        let mut b = Failures::default();
        b.add("http_503", 1);
        b.add("transport", 4);
        a.merge(&b);
        assert_eq!(a.total(), 7);
        assert_eq!(a.into_map().into_iter().collect::<Vec<_>>(), vec![("http_503".into(), 3), ("transport".into(), 4)]);
    }
}
