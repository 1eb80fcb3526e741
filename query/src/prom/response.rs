//! Prometheus' JSON envelope and value encoding: timestamps as unix
//! seconds (numbers), sample values as strings (`"NaN"`, `"+Inf"`), native
//! histograms as `{"count", "sum", "buckets": [[boundary, lower, upper, count]]}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as JsonValue, json};

use super::names::PromLabels;
use super::value::{Element, Evaluated, Native, Point, PromSeries};
use crate::metrics_api::lower_bound;

/// `{"status": "success", "data": data}`.
pub(crate) fn success(data: JsonValue) -> Response {
    Json(json!({ "status": "success", "data": data })).into_response()
}

/// Unix nanoseconds as Prometheus writes times: seconds, millisecond precision.
pub(crate) fn timestamp(nanos: i64) -> JsonValue {
    let millis = nanos.div_euclid(1_000_000);
    if millis % 1000 == 0 { json!(millis / 1000) } else { json!(millis as f64 / 1000.0) }
}

/// A float as Prometheus' JSON writes it.
pub(crate) fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value}")
    }
}

/// Positive buckets are `(lower, upper]` (boundary rule 0), negative ones
/// `[lower, upper)` (1), the zero bucket `[-threshold, threshold]` (3).
fn native(h: &Native) -> JsonValue {
    let mut buckets = Vec::new();
    let hist = &h.hist;
    for (k, &count) in hist.negative.counts.iter().enumerate().rev() {
        if count != 0.0 {
            let index = i64::from(hist.negative.offset) + k as i64;
            let (lower, upper) = (-lower_bound(index + 1, hist.scale), -lower_bound(index, hist.scale));
            buckets.push(json!([1, number(lower), number(upper), number(count)]));
        }
    }
    if hist.zero_count != 0.0 {
        let t = hist.zero_threshold;
        buckets.push(json!([3, number(-t), number(t), number(hist.zero_count)]));
    }
    for (k, &count) in hist.positive.counts.iter().enumerate() {
        if count != 0.0 {
            let index = i64::from(hist.positive.offset) + k as i64;
            let (lower, upper) = (lower_bound(index, hist.scale), lower_bound(index + 1, hist.scale));
            buckets.push(json!([0, number(lower), number(upper), number(count)]));
        }
    }
    json!({ "count": number(h.count()), "sum": number(h.sum), "buckets": buckets })
}

fn sample(time: i64, point: &Point) -> (&'static str, JsonValue) {
    match point {
        Point::Float(v) => ("value", json!([timestamp(time), number(*v)])),
        Point::Native(h) => ("histogram", json!([timestamp(time), native(h)])),
    }
}

/// An instant query's `data`: `resultType` and `result` at `time`.
pub(crate) fn instant_data(time: i64, value: Evaluated) -> JsonValue {
    match value {
        Evaluated::Scalar(v) => json!({ "resultType": "scalar", "result": [timestamp(time), number(v[0])] }),
        Evaluated::String(s) => json!({ "resultType": "string", "result": [timestamp(time), s] }),
        Evaluated::Vector(mut steps) => {
            let mut elements: Vec<Element> = steps.pop().unwrap_or_default();
            elements.sort_by(|a, b| a.labels.cmp(&b.labels));
            let result: Vec<JsonValue> = elements
                .iter()
                .map(|e| {
                    let (key, value) = sample(time, &e.point);
                    json!({ "metric": e.labels, key: value })
                })
                .collect();
            json!({ "resultType": "vector", "result": result })
        }
        Evaluated::Matrix(series) => json!({ "resultType": "matrix", "result": series_json(&series) }),
    }
}

/// A range query's `data`: every series' points over the steps `times`.
pub(crate) fn range_data(times: &[i64], value: Evaluated) -> JsonValue {
    let series: Vec<PromSeries> = match value {
        Evaluated::Scalar(values) => vec![PromSeries {
            labels: PromLabels::new(),
            samples: times.iter().zip(values).map(|(t, v)| (*t, Point::Float(v))).collect(),
        }],
        Evaluated::Vector(steps) => {
            let mut by_labels: BTreeMap<PromLabels, Vec<(i64, Point)>> = BTreeMap::new();
            for (t, step) in times.iter().zip(steps) {
                for e in step {
                    by_labels.entry(e.labels).or_default().push((*t, e.point));
                }
            }
            by_labels.into_iter().map(|(labels, samples)| PromSeries { labels, samples }).collect()
        }
        Evaluated::Matrix(_) | Evaluated::String(_) => Vec::new(),
    };
    json!({ "resultType": "matrix", "result": series_json(&series) })
}

/// `[{"metric", "values": [...]}]`, with `"histograms"` for native histogram samples.
fn series_json(series: &[PromSeries]) -> Vec<JsonValue> {
    series
        .iter()
        .map(|s| {
            let mut out = serde_json::Map::new();
            out.insert("metric".into(), json!(s.labels));
            let (mut values, mut histograms) = (Vec::new(), Vec::new());
            for (t, point) in &s.samples {
                match sample(*t, point) {
                    ("value", v) => values.push(v),
                    (_, h) => histograms.push(h),
                }
            }
            if !values.is_empty() {
                out.insert("values".into(), JsonValue::Array(values));
            }
            if !histograms.is_empty() {
                out.insert("histograms".into(), JsonValue::Array(histograms));
            }
            JsonValue::Object(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_are_written_like_prometheus() {
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(timestamp(1_700_000_000_000_000_000), json!(1_700_000_000));
        assert_eq!(timestamp(1_700_000_000_500_000_000), json!(1_700_000_000.5));
    }
}
