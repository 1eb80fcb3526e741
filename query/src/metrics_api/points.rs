//! The series a range query works on, decoded from the stored rows into
//! what the step math needs (and nothing else).

use std::collections::BTreeMap;
use std::sync::Arc;

use skein_model::metrics::metric_type;

use super::exp_histogram::ExpHistogram;
use super::quantile::Range;

/// A series' labels: resource attributes, overridden by the point's
/// attributes, plus `service.name`.
pub type Labels = BTreeMap<String, String>;

/// The five OTLP point types, as stored in `metric_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
}

impl MetricType {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            metric_type::GAUGE => Self::Gauge,
            metric_type::SUM => Self::Sum,
            metric_type::HISTOGRAM => Self::Histogram,
            metric_type::EXPONENTIAL_HISTOGRAM => Self::ExponentialHistogram,
            metric_type::SUMMARY => Self::Summary,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Gauge => metric_type::GAUGE,
            Self::Sum => metric_type::SUM,
            Self::Histogram => metric_type::HISTOGRAM,
            Self::ExponentialHistogram => metric_type::EXPONENTIAL_HISTOGRAM,
            Self::Summary => metric_type::SUMMARY,
        }
    }
}

/// One series with its points in time order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub labels: Labels,
    /// False for delta temporality; cumulative and unspecified count as
    /// cumulative (summaries are cumulative by definition).
    pub cumulative: bool,
    /// Whether a drop in value is a counter reset (monotonic sums, and every
    /// histogram or summary count).
    pub monotonic: bool,
    pub samples: Vec<Sample>,
}

impl Series {
    /// Sorts the samples by time; of several at the same time the last read wins.
    pub(crate) fn sort_samples(&mut self) {
        self.samples.sort_by_key(|s| s.time);
        let mut kept: Vec<Sample> = Vec::with_capacity(self.samples.len());
        for sample in self.samples.drain(..) {
            match kept.last_mut() {
                Some(last) if last.time == sample.time => *last = sample,
                _ => kept.push(sample),
            }
        }
        self.samples = kept;
    }
}

/// One data point (unix nanoseconds).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub time: i64,
    pub start_time: Option<i64>,
    pub value: Value,
}

/// What a point holds, as far as the query needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A gauge or sum value, or the `count` of a histogram or summary (for `rate`).
    Number(f64),
    Histogram(Histogram),
    Exponential(ExpHistogram),
    /// A summary's (quantile, value) pairs.
    Summary(Vec<(f64, f64)>),
}

/// An explicit-bounds histogram point (or the increment between two).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Histogram {
    /// Shared by every point with the same bounds.
    pub bounds: Arc<[f64]>,
    /// One more than `bounds`.
    pub counts: Vec<f64>,
    pub range: Range,
}

impl Histogram {
    /// The increment from the cumulative point `earlier` to this one, or
    /// None when the bounds changed or a count went down (a reset).
    pub(crate) fn since(&self, earlier: &Histogram) -> Option<Histogram> {
        if self.bounds != earlier.bounds || self.counts.len() != earlier.counts.len() {
            return None;
        }
        let counts: Vec<f64> = self.counts.iter().zip(&earlier.counts).map(|(now, then)| now - then).collect();
        counts.iter().all(|c| *c >= 0.0).then(|| Histogram { counts, ..self.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_types_round_trip_their_names() {
        for name in metric_type::ALL {
            assert_eq!(MetricType::parse(name).expect("known").name(), name);
        }
        assert_eq!(MetricType::parse("counter"), None);
    }

    #[test]
    fn samples_sort_and_the_last_duplicate_wins() {
        let sample = |time, value| Sample { time, start_time: None, value: Value::Number(value) };
        let mut series = Series {
            labels: Labels::new(),
            cumulative: true,
            monotonic: true,
            samples: vec![sample(20, 2.0), sample(10, 1.0), sample(20, 3.0)],
        };
        series.sort_samples();
        assert_eq!(series.samples, vec![sample(10, 1.0), sample(20, 3.0)]);
    }

    #[test]
    fn histogram_increments_detect_resets_and_new_bounds() {
        let bounds: Arc<[f64]> = Arc::from(vec![1.0, 2.0]);
        let h =
            |counts: &[f64]| Histogram { bounds: Arc::clone(&bounds), counts: counts.to_vec(), range: Range::UNKNOWN };
        assert_eq!(h(&[2.0, 3.0, 4.0]).since(&h(&[1.0, 1.0, 1.0])), Some(h(&[1.0, 2.0, 3.0])));
        assert_eq!(h(&[0.0, 3.0, 4.0]).since(&h(&[1.0, 1.0, 1.0])), None);
        let other = Histogram { bounds: Arc::from(vec![1.0, 5.0]), ..h(&[2.0, 3.0, 4.0]) };
        assert_eq!(other.since(&h(&[1.0, 1.0, 1.0])), None);
    }
}
