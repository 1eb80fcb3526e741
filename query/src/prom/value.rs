//! PromQL values: samples (floats or native histograms), series, and what
//! an expression evaluates to over the steps of a query.

use super::names::PromLabels;
use crate::metrics_api::ExpHistogram;

/// A native histogram sample: exponential buckets plus the sum of the
/// observations (NaN when the point had none).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Native {
    pub hist: ExpHistogram,
    pub sum: f64,
}

impl Native {
    /// The number of observations.
    pub(crate) fn count(&self) -> f64 {
        self.hist.zero_count
            + self.hist.positive.counts.iter().sum::<f64>()
            + self.hist.negative.counts.iter().sum::<f64>()
    }

    /// `weight` times this histogram.
    pub(crate) fn scaled(&self, weight: f64) -> Native {
        Native { hist: self.hist.scaled(weight), sum: self.sum * weight }
    }

    /// Adds `weight` times `other` (merged at the smaller scale).
    pub(crate) fn add(&mut self, other: &Native, weight: f64) {
        self.hist.add(&other.hist, weight);
        self.sum += other.sum * weight;
    }

    /// The increase from the cumulative `earlier` to this one, or None on a reset.
    pub(crate) fn since(&self, earlier: &Native) -> Option<Native> {
        if self.count() < earlier.count() {
            return None;
        }
        Some(Native { hist: self.hist.since(&earlier.hist)?, sum: self.sum - earlier.sum })
    }
}

/// One sample's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Point {
    Float(f64),
    Native(Box<Native>),
}

/// A series with its samples (unix nanoseconds, time order).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PromSeries {
    pub labels: PromLabels,
    pub samples: Vec<(i64, Point)>,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Element {
    pub labels: PromLabels,
    pub point: Point,
}

#[cfg(test)]
impl Element {
    /// A float sample with `labels`, for tests.
    pub(crate) fn float(labels: &[(&str, &str)], value: f64) -> Self {
        Element {
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            point: Point::Float(value),
        }
    }
}

/// An expression's value at every step of the query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Evaluated {
    /// One number per step.
    Scalar(Vec<f64>),
    /// One instant vector per step.
    Vector(Vec<Vec<Element>>),
    /// A range vector (only at the top of an instant query).
    Matrix(Vec<PromSeries>),
    String(String),
}

impl Evaluated {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Evaluated::Scalar(_) => "scalar",
            Evaluated::Vector(_) => "vector",
            Evaluated::Matrix(_) => "matrix",
            Evaluated::String(_) => "string",
        }
    }
}
