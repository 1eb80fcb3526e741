//! The parameters of the metric endpoints, checked once with clear 400s.

use std::time::Duration;

use humantime_serde::re::humantime;

use super::range::{Aggregation, Steps};
use crate::params::{Params, parse_time};
use crate::{QueryConfig, QueryError};

/// How far before the first step `rate` and `quantile` read, so that the
/// first step has an earlier point to count from.
pub const RATE_LEAD_IN: Duration = Duration::from_secs(300);
/// The range of `query_range` when `start` is not given.
const DEFAULT_RANGE: Duration = Duration::from_secs(3600);
/// About this many steps when `step` is not given.
const DEFAULT_STEPS: i64 = 250;
const SECOND: i64 = 1_000_000_000;
const MILLISECOND: i64 = 1_000_000;

/// A label condition: `name=value` or `name!=value`. The label is the
/// point attribute, else the resource attribute, else (`service.name`) the
/// service; a missing label reads as "", so `name=` matches series without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMatcher {
    pub name: String,
    pub value: String,
    /// False for `!=`.
    pub equal: bool,
}

impl LabelMatcher {
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let (name, value, equal) = match text.split_once('=') {
            Some((name, value)) => match name.strip_suffix('!') {
                Some(name) => (name, value, false),
                None => (name, value, true),
            },
            None => ("", "", true),
        };
        if name.is_empty() {
            return Err(invalid(format!("match must be label=value or label!=value, got {text:?}")));
        }
        Ok(Self { name: name.to_owned(), value: value.to_owned(), equal })
    }

    /// All `match` (and Prometheus-style `match[]`) parameters.
    pub(crate) fn all(params: &Params) -> Result<Vec<Self>, QueryError> {
        params.all("match").chain(params.all("match[]")).map(Self::parse).collect()
    }
}

/// The time bounds of a listing (unix nanoseconds, inclusive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeBounds {
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
}

impl TimeBounds {
    fn from_params(params: &Params) -> Result<Self, QueryError> {
        let bounds = Self {
            start_ns: params.single("start")?.map(|v| parse_time("start", v)).transpose()?,
            end_ns: params.single("end")?.map(|v| parse_time("end", v)).transpose()?,
        };
        if let (Some(start), Some(end)) = (bounds.start_ns, bounds.end_ns)
            && start > end
        {
            return Err(invalid("start must not be after end".into()));
        }
        Ok(bounds)
    }
}

/// `GET /api/v1/metrics` and `GET /api/v1/metrics/{name}/series`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub bounds: TimeBounds,
    pub matchers: Vec<LabelMatcher>,
    pub limit: usize,
}

impl ListQuery {
    /// `with_matchers`: whether `match` is accepted (series only).
    pub(crate) fn from_params(params: &Params, config: &QueryConfig, with_matchers: bool) -> Result<Self, QueryError> {
        if with_matchers {
            params.only(&["start", "end", "limit", "match", "match[]"])?;
        } else {
            params.only(&["start", "end", "limit"])?;
        }
        let limit = match params.single("limit")? {
            None => config.metrics_default_limit,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=config.metrics_max_series).contains(&n) => n,
                _ => {
                    return Err(invalid(format!(
                        "limit must be an integer from 1 to {} (query.metrics_max_series), got {text:?}",
                        config.metrics_max_series
                    )));
                }
            },
        };
        Ok(Self { bounds: TimeBounds::from_params(params)?, matchers: LabelMatcher::all(params)?, limit })
    }
}

/// `GET /api/v1/metrics/query_range`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    pub metric: String,
    pub matchers: Vec<LabelMatcher>,
    pub aggregation: Aggregation,
    /// Labels to group series by; empty aggregates everything into one series.
    pub group_by: Vec<String>,
    pub start_ns: i64,
    pub end_ns: i64,
    pub step_ns: i64,
}

impl RangeQuery {
    /// Parses and checks the parameters; `now_ns` is the default `end`.
    pub(crate) fn from_params(params: &Params, config: &QueryConfig, now_ns: i64) -> Result<Self, QueryError> {
        params.only(&["metric", "match", "match[]", "aggregation", "quantile", "group_by", "start", "end", "step"])?;
        let metric = params.single("metric")?.ok_or_else(|| invalid("metric is required".into()))?.to_owned();
        let quantile = match params.single("quantile")? {
            None => None,
            Some(text) => match text.parse::<f64>() {
                Ok(q) if (0.0..=1.0).contains(&q) => Some(q),
                _ => return Err(invalid(format!("quantile must be a number from 0 to 1, got {text:?}"))),
            },
        };
        let aggregation = match params.single("aggregation")? {
            None => return Err(invalid(format!("aggregation is required: {}", Aggregation::NAMES))),
            Some("quantile") if quantile.is_none() => {
                return Err(invalid("aggregation=quantile needs quantile=<0..1>, e.g. quantile=0.95".into()));
            }
            Some(name) => Aggregation::parse(name, quantile)
                .ok_or_else(|| invalid(format!("unknown aggregation {name:?}; use {}", Aggregation::NAMES)))?,
        };
        if quantile.is_some() && !matches!(aggregation, Aggregation::Quantile(_)) {
            return Err(invalid("quantile is only used with aggregation=quantile".into()));
        }
        let mut group_by: Vec<String> = Vec::new();
        for label in params.all("group_by").flat_map(|v| v.split(',')).map(str::trim).filter(|l| !l.is_empty()) {
            if !group_by.iter().any(|l| l == label) {
                group_by.push(label.to_owned());
            }
        }
        let end_ns = params.single("end")?.map(|v| parse_time("end", v)).transpose()?.unwrap_or(now_ns);
        let start_ns = match params.single("start")? {
            Some(v) => parse_time("start", v)?,
            None => end_ns.saturating_sub(DEFAULT_RANGE.as_nanos() as i64),
        };
        if start_ns > end_ns {
            return Err(invalid("start must not be after end".into()));
        }
        let step_ns = match params.single("step")? {
            Some(text) => parse_step(text)?,
            None => default_step(end_ns - start_ns),
        };
        let steps = (end_ns - start_ns) / step_ns + 1;
        if steps > config.metrics_max_steps as i64 {
            return Err(invalid(format!(
                "start to end in steps of {} ms is {steps} steps, more than {} (query.metrics_max_steps); use a larger step or a shorter range",
                step_ns / MILLISECOND,
                config.metrics_max_steps
            )));
        }
        Ok(Self { metric, matchers: LabelMatcher::all(params)?, aggregation, group_by, start_ns, end_ns, step_ns })
    }

    pub(crate) fn steps(&self) -> Steps {
        Steps::new(self.start_ns, self.end_ns, self.step_ns)
    }

    /// Where the points the query needs begin (exclusive): one step before
    /// `start` (the first window), and a lead-in more for `rate` and `quantile`.
    pub(crate) fn read_from(&self) -> i64 {
        let first_window = self.start_ns.saturating_sub(self.step_ns);
        match self.aggregation {
            Aggregation::Rate | Aggregation::Quantile(_) => first_window.saturating_sub(RATE_LEAD_IN.as_nanos() as i64),
            _ => first_window,
        }
    }
}

/// `30s`, `1m30s`, `500ms` (humantime) or seconds (`15`, `0.5`); a whole
/// number of milliseconds, at least 1 ms.
fn parse_step(text: &str) -> Result<i64, QueryError> {
    let nanos = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 => Some((seconds * 1e9).round() as i64),
        Ok(_) => None,
        Err(_) => humantime::parse_duration(text).ok().and_then(|d| i64::try_from(d.as_nanos()).ok()),
    };
    match nanos {
        Some(n) if n >= MILLISECOND && n % MILLISECOND == 0 => Ok(n),
        _ => Err(invalid(format!(
            "step must be a duration like 15s or 1m, or seconds, of at least 1ms in whole milliseconds, got {text:?}"
        ))),
    }
}

/// About [`DEFAULT_STEPS`] steps, in whole seconds.
fn default_step(range_ns: i64) -> i64 {
    let step = range_ns / DEFAULT_STEPS;
    (step.div_euclid(SECOND) + i64::from(step % SECOND != 0)).max(1) * SECOND
}

fn invalid(message: String) -> QueryError {
    QueryError::InvalidRequest(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000 * SECOND;

    fn params(query: &str) -> Params {
        Params::from_uri(&format!("/x?{query}").parse().expect("uri")).expect("params")
    }

    fn range(query: &str) -> Result<RangeQuery, QueryError> {
        RangeQuery::from_params(&params(query), &QueryConfig::default(), NOW)
    }

    #[test]
    fn parses_matchers() {
        let m = |text| LabelMatcher::parse(text).expect(text);
        assert_eq!(m("host=a"), LabelMatcher { name: "host".into(), value: "a".into(), equal: true });
        assert_eq!(m("host!=a=b"), LabelMatcher { name: "host".into(), value: "a=b".into(), equal: false });
        assert_eq!(m("host="), LabelMatcher { name: "host".into(), value: String::new(), equal: true });
        for bad in ["host", "=a", "!=a"] {
            assert!(LabelMatcher::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_a_full_range_query() {
        let q = range(
            "metric=http.server.duration&match=http.route%3D%2Fcart&match[]=env!=dev&aggregation=quantile&quantile=0.95\
             &group_by=host,%20region&group_by=host&start=1700000000&end=1700000060&step=15s",
        )
        .expect("valid");
        assert_eq!(q.metric, "http.server.duration");
        assert_eq!(q.matchers.len(), 2);
        assert!(!q.matchers[1].equal);
        assert_eq!(q.aggregation, Aggregation::Quantile(0.95));
        assert_eq!(q.group_by, vec!["host", "region"]);
        assert_eq!((q.start_ns, q.end_ns, q.step_ns), (NOW, NOW + 60 * SECOND, 15 * SECOND));
        assert_eq!(q.steps().count, 5);
        assert_eq!(q.read_from(), NOW - 15 * SECOND - RATE_LEAD_IN.as_nanos() as i64);
    }

    #[test]
    fn defaults_to_the_last_hour_in_about_250_steps() {
        let q = range("metric=m&aggregation=sum").expect("valid");
        assert_eq!((q.start_ns, q.end_ns), (NOW - 3600 * SECOND, NOW));
        assert_eq!(q.step_ns, 15 * SECOND, "3600 s / 250 = 14.4 s, rounded up");
        assert_eq!(q.read_from(), NOW - 3615 * SECOND);
        assert_eq!(default_step(10 * SECOND), SECOND);
        assert_eq!(range("metric=m&aggregation=sum&step=0.5").expect("seconds").step_ns, 500 * MILLISECOND);
        assert_eq!(range("metric=m&aggregation=sum&step=1m30s").expect("humantime").step_ns, 90 * SECOND);
    }

    #[test]
    fn bad_parameters_name_the_problem() {
        let cases = [
            ("aggregation=sum", "metric is required"),
            ("metric=m", "aggregation is required"),
            ("metric=m&aggregation=median", "unknown aggregation"),
            ("metric=m&aggregation=quantile", "needs quantile"),
            ("metric=m&aggregation=quantile&quantile=1.5", "quantile must be"),
            ("metric=m&aggregation=sum&quantile=0.5", "only used with aggregation=quantile"),
            ("metric=m&aggregation=sum&step=0", "step must be"),
            ("metric=m&aggregation=sum&step=1.5ms", "step must be"),
            ("metric=m&aggregation=sum&step=soon", "step must be"),
            ("metric=m&aggregation=sum&start=1700000060&end=1700000000", "start must not be after end"),
            ("metric=m&aggregation=sum&start=1600000000&end=1700000000&step=1s", "metrics_max_steps"),
            ("metric=m&aggregation=sum&match=novalue", "match must be"),
            ("metric=m&aggregation=sum&start=yesterday", "start must be"),
            ("metric=m&aggregation=sum&colour=red", "unknown parameter"),
            ("metric=m&metric=n&aggregation=sum", "more than once"),
        ];
        for (query, message) in cases {
            let err = range(query).expect_err(query);
            assert!(matches!(err, QueryError::InvalidRequest(_)), "{query}: {err:?}");
            assert!(err.to_string().contains(message), "{query}: {err}");
        }
    }

    #[test]
    fn listing_limits() {
        let config = QueryConfig::default();
        let list = |query: &str, matchers| ListQuery::from_params(&params(query), &config, matchers);
        assert_eq!(list("", false).expect("defaults").limit, config.metrics_default_limit);
        let q = list("limit=5&match=host=a&start=1700000000", true).expect("valid");
        assert_eq!((q.limit, q.matchers.len(), q.bounds.start_ns), (5, 1, Some(NOW)));
        assert!(list("match=host=a", false).is_err(), "the metric list takes no matchers");
        assert!(list("limit=0", false).is_err());
        assert!(list("limit=20000", true).expect_err("too big").to_string().contains("metrics_max_series"));
        assert!(list("start=1700000060&end=1700000000", true).is_err());
    }
}
