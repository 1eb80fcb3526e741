//! Query-string parameters of the HTTP API: decoded once, then read by name
//! with clear errors for unknown or repeated parameters.

use axum::extract::Query;
use axum::http::Uri;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, lit};
use humantime_serde::re::humantime;

use crate::QueryError;

/// The decoded `?a=b&c=d` pairs of a request, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn from_uri(uri: &Uri) -> Result<Self, QueryError> {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| Self(pairs))
            .map_err(|e| QueryError::InvalidRequest(format!("bad query string: {}", e.body_text())))
    }

    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    pub(crate) fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// Fails on a parameter not in `known`, naming the accepted ones.
    pub(crate) fn only(&self, known: &[&str]) -> Result<&Self, QueryError> {
        match self.0.iter().find(|(name, _)| !known.contains(&name.as_str())) {
            Some((name, _)) => {
                Err(QueryError::InvalidRequest(format!("unknown parameter {name:?}; accepted: {}", known.join(", "))))
            }
            None => Ok(self),
        }
    }

    /// The value of a parameter given at most once; empty values count as absent.
    pub(crate) fn single<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, QueryError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(QueryError::InvalidRequest(format!("parameter {name:?} is given more than once")));
        }
        Ok(first)
    }

    /// Every non-empty value of a repeatable parameter.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

/// A range's default `step`: the range in about this many whole-second steps.
const DEFAULT_STEPS: i64 = 60;
/// The most steps a range may have: a day at one-minute steps.
const MAX_STEPS: i64 = 1_440;
const SECOND_NS: i64 = 1_000_000_000;

/// The `step` parameter over a range of `range_ns`: as given, or the range
/// in about 60 whole-second steps; at least 1 ms, at most 1,440 steps.
pub(crate) fn step(params: &Params, range_ns: i64) -> Result<i64, QueryError> {
    let step_ns = match params.single("step")? {
        Some(text) => parse_duration("step", text)?,
        None => ((range_ns / DEFAULT_STEPS + SECOND_NS - 1) / SECOND_NS).max(1) * SECOND_NS,
    };
    if step_ns < SECOND_NS / 1000 || range_ns / step_ns > MAX_STEPS {
        return Err(QueryError::InvalidRequest(format!(
            "step must be at least 1ms and give at most {MAX_STEPS} steps over the range"
        )));
    }
    Ok(step_ns)
}

/// The repeatable `attr` (alias `tags`) parameter: `key=value` equalities.
pub(crate) fn attribute_filters(params: &Params) -> Result<Vec<(String, String)>, QueryError> {
    params
        .all("attr")
        .chain(params.all("tags"))
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(QueryError::InvalidRequest(format!("attr must be key=value, got {pair:?}"))),
        })
        .collect()
}

/// The `format` parameter of the endpoints that also answer as OTLP/JSON
/// (the only parameter they take): whether `otlp` was asked for.
pub(crate) fn otlp_format(params: &Params) -> Result<bool, QueryError> {
    match params.only(&["format"])?.single("format")? {
        None | Some("json") => Ok(false),
        Some("otlp") => Ok(true),
        Some(other) => Err(QueryError::InvalidRequest(format!("unknown format {other:?}; use json or otlp"))),
    }
}

/// `100ms`, `1.5s`, `2m` (humantime) or integer nanoseconds.
pub(crate) fn parse_duration(name: &str, text: &str) -> Result<i64, QueryError> {
    let nanos = match text.parse::<u64>() {
        Ok(n) => Some(u128::from(n)),
        Err(_) => humantime::parse_duration(text).ok().map(|d| d.as_nanos()),
    };
    nanos.and_then(|n| i64::try_from(n).ok()).ok_or_else(|| {
        QueryError::InvalidRequest(format!(
            "{name} must be a duration like 100ms or 2s, or integer nanoseconds, got {text:?}"
        ))
    })
}

/// RFC 3339 (`2024-05-01T12:00:00Z`) or integer unix time; integers are
/// seconds, milliseconds, microseconds or nanoseconds by magnitude.
pub(crate) fn parse_time(name: &str, text: &str) -> Result<i64, QueryError> {
    use datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
    let nanos = match text.parse::<i64>() {
        Ok(n) if n < 0 => None,
        Ok(n) if n < 100_000_000_000 => n.checked_mul(1_000_000_000),
        Ok(n) if n < 100_000_000_000_000 => n.checked_mul(1_000_000),
        Ok(n) if n < 100_000_000_000_000_000 => n.checked_mul(1_000),
        Ok(n) => Some(n),
        Err(_) => string_to_timestamp_nanos(text).ok(),
    };
    nanos.ok_or_else(|| {
        QueryError::InvalidRequest(format!(
            "{name} must be an RFC 3339 time (2024-05-01T12:00:00Z) or unix seconds/nanoseconds, got {text:?}"
        ))
    })
}

/// A time from [`parse_time`] as a literal comparable with timestamp columns.
/// The current time in unix nanoseconds (saturating; 0 before 1970).
pub(crate) fn now_ns() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}

pub(crate) fn timestamp(unix_nanos: i64) -> Expr {
    lit(ScalarValue::TimestampNanosecond(Some(unix_nanos), Some("UTC".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-11-14T22:13:20Z in unix nanoseconds.
    const BASE: i64 = 1_700_000_000_000_000_000;

    fn params(query: &str) -> Params {
        Params::from_uri(&format!("/x?{query}").parse().expect("uri")).expect("params")
    }

    #[test]
    fn reads_single_and_repeated_parameters() {
        let p = params("attr=http.route%3D%2Fcart&attr=a=b&service=cart&name=");
        assert_eq!(p.all("attr").collect::<Vec<_>>(), vec!["http.route=/cart", "a=b"]);
        assert_eq!(p.single("service").expect("once"), Some("cart"));
        assert_eq!(p.single("name").expect("empty"), None);
        assert!(p.single("attr").is_err());
        assert!(p.only(&["attr", "service", "name"]).is_ok());
        let err = p.only(&["attr"]).expect_err("service is unknown");
        assert!(err.to_string().contains("\"service\""), "{err}");
    }

    #[test]
    fn parses_times_and_durations() {
        assert_eq!(parse_duration("d", "100ms").expect("humantime"), 100_000_000);
        assert_eq!(parse_duration("d", "1500").expect("nanos"), 1500);
        assert_eq!(parse_time("t", "2023-11-14T22:13:20Z").expect("rfc3339"), BASE);
        assert_eq!(parse_time("t", "2023-11-14T23:13:20.5+01:00").expect("offset"), BASE + 500_000_000);
        assert_eq!(parse_time("t", "1700000000").expect("seconds"), BASE);
        assert_eq!(parse_time("t", "1700000000000").expect("millis"), BASE);
        assert_eq!(parse_time("t", "1700000000000000").expect("micros"), BASE);
        assert_eq!(parse_time("t", &BASE.to_string()).expect("nanos"), BASE);
        let err = parse_time("start", "-1").expect_err("negative");
        assert!(err.to_string().contains("start"), "{err}");
    }
}
