//! The Prometheus API's parameters: from the query string and, for POST,
//! the `application/x-www-form-urlencoded` body; times as RFC 3339 or unix
//! seconds (with a fraction), durations as `15s`/`1m` or float seconds.
//! Unknown parameters are ignored, as Prometheus does.

use std::time::Duration;

use axum::http::Uri;

use crate::QueryError;
use crate::params::Params;

pub(crate) const SECOND: i64 = 1_000_000_000;
/// Prometheus' default lookback delta.
pub(crate) const LOOKBACK: i64 = 300 * SECOND;

/// The pairs of the query string followed by those of a form body.
pub(crate) fn request_params(uri: &Uri, body: &[u8]) -> Result<Params, QueryError> {
    let mut pairs = Params::from_uri(uri)?.into_pairs();
    pairs.extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
    Ok(Params::from_pairs(pairs))
}

/// A Prometheus time: RFC 3339 or unix seconds (`1700000000.5`, to the
/// millisecond), in unix nanoseconds.
pub(crate) fn parse_time(name: &str, text: &str) -> Result<i64, QueryError> {
    use datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
    let nanos = match text.parse::<f64>() {
        // Millisecond precision, as Prometheus (the fraction alone, so large times keep it).
        Ok(seconds) if seconds.is_finite() && seconds.abs() < 9.2e9 => {
            let whole = seconds.trunc();
            let millis = ((seconds - whole) * 1e3).round() as i64;
            Some(whole as i64 * SECOND + millis * 1_000_000)
        }
        Ok(_) => None,
        Err(_) => string_to_timestamp_nanos(text).ok(),
    };
    nanos.ok_or_else(|| bad(format!("invalid parameter {name:?}: cannot parse {text:?} to a valid timestamp")))
}

/// A Prometheus duration (`15s`, `1m30s`, `1d`) or float seconds, in nanoseconds (> 0).
pub(crate) fn parse_step(name: &str, text: &str) -> Result<i64, QueryError> {
    let nanos = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds < 9.2e9 => Some((seconds * 1e9).round() as i64),
        Ok(_) => None,
        Err(_) => promql_parser::util::parse_duration(text)
            .ok()
            .and_then(|d: Duration| i64::try_from(d.as_nanos()).ok())
            .filter(|n| *n > 0),
    };
    nanos.ok_or_else(|| {
        bad(format!("invalid parameter {name:?}: cannot parse {text:?} to a valid duration (like 15s, or seconds)"))
    })
}

/// `start`, `end` and `step` of `query_range`, checked as Prometheus does:
/// `(end - start) / step` at most `max_points`.
pub(crate) fn range_params(params: &Params, max_points: usize) -> Result<(i64, i64, i64), QueryError> {
    let required =
        |name: &'static str| params.single(name)?.ok_or_else(|| bad(format!("invalid parameter {name:?}: missing")));
    let start = parse_time("start", required("start")?)?;
    let end = parse_time("end", required("end")?)?;
    if end < start {
        return Err(bad("invalid parameter \"end\": end timestamp must not be before start time".into()));
    }
    let step = parse_step("step", required("step")?)?;
    if (end - start) / step > max_points as i64 {
        return Err(bad(format!(
            "exceeded maximum resolution of {max_points} points per timeseries. Try decreasing the query resolution (?step=XX)"
        )));
    }
    Ok((start, end, step))
}

/// An optional time parameter.
pub(crate) fn optional_time(params: &Params, name: &str) -> Result<Option<i64>, QueryError> {
    params.single(name)?.map(|text| parse_time(name, text)).transpose()
}

pub(crate) fn bad(message: String) -> QueryError {
    QueryError::InvalidRequest(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: i64 = 1_700_000_000 * SECOND;

    #[test]
    fn times_are_rfc3339_or_float_seconds() {
        assert_eq!(parse_time("time", "1700000000").expect("seconds"), BASE);
        assert_eq!(parse_time("time", "1700000000.25").expect("fraction"), BASE + SECOND / 4);
        assert_eq!(parse_time("time", "2023-11-14T22:13:20Z").expect("rfc3339"), BASE);
        assert_eq!(parse_time("time", "2023-11-14T22:13:20.5Z").expect("rfc3339 fraction"), BASE + SECOND / 2);
        let err = parse_time("time", "yesterday").expect_err("not a time");
        assert!(err.to_string().contains("\"time\""), "{err}");
    }

    #[test]
    fn steps_are_durations_or_seconds() {
        assert_eq!(parse_step("step", "15s").expect("duration"), 15 * SECOND);
        assert_eq!(parse_step("step", "1m30s").expect("compound"), 90 * SECOND);
        assert_eq!(parse_step("step", "0.5").expect("float"), SECOND / 2);
        assert_eq!(parse_step("step", "60").expect("int"), 60 * SECOND);
        for bad in ["0", "-1", "soon", "NaN"] {
            assert!(parse_step("step", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn form_bodies_join_the_query_string() {
        let uri: Uri = "/api/v1/query_range?query=up".parse().expect("uri");
        let params = request_params(&uri, b"start=1700000000&end=1700000060&step=15s&match%5B%5D=a%7Bb%3D%22c%22%7D")
            .expect("params");
        assert_eq!(params.single("query").expect("once"), Some("up"));
        assert_eq!(params.all("match[]").collect::<Vec<_>>(), ["a{b=\"c\"}"]);
        assert_eq!(range_params(&params, 11_000).expect("valid"), (BASE, BASE + 60 * SECOND, 15 * SECOND));
    }

    #[test]
    fn too_many_points_and_bad_ranges_are_refused() {
        let params = |q: &str| request_params(&format!("/x?{q}").parse().expect("uri"), b"").expect("params");
        let err = range_params(&params("start=0&end=11001&step=1"), 11_000).expect_err("too many");
        assert!(err.to_string().contains("exceeded maximum resolution of 11000 points"), "{err}");
        assert!(range_params(&params("start=0&end=11000&step=1"), 11_000).is_ok());
        assert!(range_params(&params("start=10&end=0&step=1"), 11_000).is_err());
        assert!(range_params(&params("start=0&end=10"), 11_000).expect_err("no step").to_string().contains("step"));
    }
}
