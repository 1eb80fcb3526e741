//! Strict OTLP/JSON for metrics.
//!
//! opentelemetry-proto decodes the metric oneofs (`Metric.data`, a number
//! point's and an exemplar's `value`) with `#[serde(flatten)]` on an
//! `Option`, and serde turns *any* error inside a flattened `Option` into
//! `None`. A gauge with `"timeUnixNano": "soon"` or a point with
//! `"asInt": "x"` would decode as "no data" / "no value" and be stored (or
//! rejected) as if the client had sent nothing: silent data loss instead of
//! the 400 OTLP asks for. [`check`] finds such oneofs and reports the real
//! error. It costs a walk of the decoded request; the body is parsed a
//! second time only when some oneof is empty, which valid data rarely has.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, NumberDataPoint, exemplar, number_data_point};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::CollectorError;

/// The JSON keys of `Metric.data`.
const DATA_KEYS: [&str; 5] = ["gauge", "sum", "histogram", "exponentialHistogram", "summary"];
/// The JSON keys of a number point's and an exemplar's `value`.
const VALUE_KEYS: [&str; 2] = ["asDouble", "asInt"];

/// Fails when a oneof of `request` is empty although `body` (the JSON it
/// was decoded from) sets it, i.e. when its value did not decode.
pub(crate) fn check(body: &[u8], request: &ExportMetricsServiceRequest) -> Result<(), CollectorError> {
    if !has_empty_oneof(request) {
        return Ok(());
    }
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| CollectorError::InvalidRequest(format!("invalid OTLP/JSON body: {e}")))?;
    for (i, rm) in request.resource_metrics.iter().enumerate() {
        for (j, sm) in rm.scope_metrics.iter().enumerate() {
            for (k, metric) in sm.metrics.iter().enumerate() {
                let node = &json["resourceMetrics"][i]["scopeMetrics"][j]["metrics"][k];
                let at = || format!("resourceMetrics[{i}].scopeMetrics[{j}].metrics[{k}] ({:?})", metric.name);
                check_metric(metric.data.as_ref(), node, at)?;
            }
        }
    }
    Ok(())
}

fn has_empty_oneof(request: &ExportMetricsServiceRequest) -> bool {
    let empty_exemplar = |exemplars: &[Exemplar]| exemplars.iter().any(|e| e.value.is_none());
    let empty_number =
        |points: &[NumberDataPoint]| points.iter().any(|p| p.value.is_none() || empty_exemplar(&p.exemplars));
    let mut metrics = request.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics).flat_map(|sm| &sm.metrics);
    metrics.any(|metric| match &metric.data {
        None => true,
        Some(Data::Gauge(g)) => empty_number(&g.data_points),
        Some(Data::Sum(s)) => empty_number(&s.data_points),
        Some(Data::Histogram(h)) => h.data_points.iter().any(|p| empty_exemplar(&p.exemplars)),
        Some(Data::ExponentialHistogram(e)) => e.data_points.iter().any(|p| empty_exemplar(&p.exemplars)),
        Some(Data::Summary(_)) => false,
    })
}

fn check_metric(data: Option<&Data>, node: &Value, at: impl Fn() -> String) -> Result<(), CollectorError> {
    let exemplars = |key: &str, n: usize, exemplars: &[Exemplar]| {
        let points = &node[key]["dataPoints"];
        check_exemplars(exemplars, &points[n]["exemplars"], || format!("{}.{key}.dataPoints[{n}]", at()))
    };
    match data {
        None => check_oneof::<Data>(node, &DATA_KEYS, &at),
        Some(Data::Gauge(g)) => {
            check_number_points(&g.data_points, &node["gauge"]["dataPoints"], || format!("{}.gauge", at()))
        }
        Some(Data::Sum(s)) => {
            check_number_points(&s.data_points, &node["sum"]["dataPoints"], || format!("{}.sum", at()))
        }
        Some(Data::Histogram(h)) => {
            h.data_points.iter().enumerate().try_for_each(|(n, p)| exemplars("histogram", n, &p.exemplars))
        }
        Some(Data::ExponentialHistogram(e)) => {
            e.data_points.iter().enumerate().try_for_each(|(n, p)| exemplars("exponentialHistogram", n, &p.exemplars))
        }
        Some(Data::Summary(_)) => Ok(()),
    }
}

fn check_number_points(
    points: &[NumberDataPoint],
    nodes: &Value,
    at: impl Fn() -> String,
) -> Result<(), CollectorError> {
    for (n, point) in points.iter().enumerate() {
        let at = || format!("{}.dataPoints[{n}]", at());
        if point.value.is_none() {
            check_oneof::<number_data_point::Value>(&nodes[n], &VALUE_KEYS, &at)?;
        }
        check_exemplars(&point.exemplars, &nodes[n]["exemplars"], at)?;
    }
    Ok(())
}

fn check_exemplars(exemplars: &[Exemplar], nodes: &Value, at: impl Fn() -> String) -> Result<(), CollectorError> {
    for (n, exemplar) in exemplars.iter().enumerate() {
        if exemplar.value.is_none() {
            check_oneof::<exemplar::Value>(&nodes[n], &VALUE_KEYS, || format!("{}.exemplars[{n}]", at()))?;
        }
    }
    Ok(())
}

/// Decodes each oneof field `node` sets on its own, to surface the error
/// that the flattened decoding swallowed. `null` counts as unset.
fn check_oneof<T: DeserializeOwned>(
    node: &Value,
    keys: &[&str],
    at: impl Fn() -> String,
) -> Result<(), CollectorError> {
    for key in keys {
        let Some(value) = node.get(*key).filter(|v| !v.is_null()) else {
            continue;
        };
        let single = Value::Object([((*key).to_owned(), value.clone())].into_iter().collect());
        if let Err(e) = serde_json::from_value::<T>(single) {
            return Err(CollectorError::InvalidRequest(format!("invalid OTLP/JSON body: {}.{key}: {e}", at())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_json;
    use crate::json_tests::{METRICS_RICH_EXAMPLE, METRICS_SPEC_EXAMPLE};
    use crate::signal::Metrics;

    fn decode(body: &str) -> Result<ExportMetricsServiceRequest, CollectorError> {
        decode_json::<Metrics>(body.as_bytes())
    }

    fn wrap(metric: &str) -> String {
        format!(r#"{{"resourceMetrics": [{{"scopeMetrics": [{{"metrics": [{{"name": "m"}}, {metric}]}}]}}]}}"#)
    }

    #[test]
    fn swallowed_errors_become_invalid_requests() {
        for (metric, path, cause) in [
            (
                r#"{"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": "soon"}]}}"#,
                r#"metrics[1] ("g").gauge"#,
                "invalid digit",
            ),
            (
                r#"{"name": "h", "histogram": {"dataPoints": [{"bucketCounts": ["x"]}]}}"#,
                r#"metrics[1] ("h").histogram"#,
                "invalid digit",
            ),
            (
                r#"{"name": "c", "sum": {"dataPoints": [{"timeUnixNano": "1"}, {"timeUnixNano": "1", "asInt": "x"}]}}"#,
                r#"metrics[1] ("c").sum.dataPoints[1].asInt"#,
                "invalid digit",
            ),
            (
                r#"{"name": "d", "gauge": {"dataPoints": [{"timeUnixNano": "1", "asDouble": "fast"}]}}"#,
                r#"metrics[1] ("d").gauge.dataPoints[0].asDouble"#,
                "expected f64",
            ),
            (
                r#"{"name": "e", "histogram": {"dataPoints": [{"timeUnixNano": "1", "exemplars": [{"asInt": 1.5}]}]}}"#,
                r#"metrics[1] ("e").histogram.dataPoints[0].exemplars[0].asInt"#,
                "expected an i64",
            ),
            (
                r#"{"name": "x", "exponentialHistogram": {"dataPoints": [{"zeroCount": -1}]}}"#,
                r#"metrics[1] ("x").exponentialHistogram"#,
                "out of range",
            ),
        ] {
            let err = decode(&wrap(metric)).expect_err("malformed oneof");
            assert!(matches!(err, CollectorError::InvalidRequest(_)), "{err}");
            let text = err.to_string();
            assert!(text.starts_with("invalid OTLP/JSON body: resourceMetrics[0].scopeMetrics[0]."), "{text}");
            assert!(text.contains(path), "{text} should point at {path}");
            assert!(text.contains(cause), "{text} should mention {cause}");
        }
    }

    #[test]
    fn unset_oneofs_are_not_errors() {
        for metric in [
            // No data at all, a type this version does not know, null data.
            r#"{"name": "none"}"#,
            r#"{"name": "future", "futureType": {"dataPoints": [{"timeUnixNano": "1"}]}}"#,
            r#"{"name": "null", "gauge": null}"#,
            // Points and exemplars without a value.
            r#"{"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": "1", "flags": 1, "asInt": null}]}}"#,
            r#"{"name": "h", "histogram": {"dataPoints": [{"timeUnixNano": "1", "exemplars": [{"timeUnixNano": "1"}]}]}}"#,
        ] {
            let request = decode(&wrap(metric)).expect("valid JSON");
            assert_eq!(request.resource_metrics[0].scope_metrics[0].metrics.len(), 2, "{metric}");
        }
        decode(METRICS_SPEC_EXAMPLE).expect("spec example");
        decode(METRICS_RICH_EXAMPLE).expect("rich example");
    }
}
