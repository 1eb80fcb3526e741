//! Configuration of the query service: where it listens and the limits that
//! keep one query from taking the whole process down.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::JaegerConfig;

/// The smallest memory pool a query may be given; below this even simple
/// aggregates fail.
const MIN_MEMORY_LIMIT_BYTES: usize = 1024 * 1024;

/// `[query]` section of the Skein configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Address of the HTTP API (SQL, traces, search, services, health, metrics).
    pub listen: SocketAddr,
    /// Time limit of one request's queries, planning included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Memory one query may use for sorts, aggregates and joins. Queries do
    /// not spill to disk: past this they fail.
    pub memory_limit_bytes: usize,
    /// Most rows `/api/v1/sql` returns (and most spans one trace lookup
    /// reads); larger results are refused with an error, not truncated.
    pub max_result_rows: usize,
    /// Most spans of one trace its outline windows and summary read: the
    /// server holds their skeleton (about 300 bytes a span) so the browser
    /// need not. A whole trace, or its whole outline, stays within
    /// `max_result_rows`.
    pub max_trace_spans: usize,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Traces returned by `/api/v1/search` when no `limit` is given.
    pub search_default_limit: usize,
    /// Largest `limit` accepted by `/api/v1/search`.
    pub search_max_limit: usize,
    /// Entries listed by `/api/v1/metrics` and `/api/v1/metrics/{name}/series`
    /// when no `limit` is given (a longer list is cut and flagged `truncated`).
    pub metrics_default_limit: usize,
    /// Largest `limit` of the metric listings, and the most series one
    /// `query_range` may read; past it, `query_range` fails with 422.
    pub metrics_max_series: usize,
    /// Most steps (`(end - start) / step + 1`) of one `query_range`; past it, 400.
    pub metrics_max_steps: usize,
    /// Most data points one `query_range` may read from storage, and most
    /// points it may return; past either, 422.
    pub metrics_max_points: usize,
    /// With `[auth]`: most API requests one token may have running at once;
    /// past it, 429 with `Retry-After`, so one dashboard or script cannot
    /// take every query slot from the others.
    pub max_concurrent_requests_per_token: usize,
    /// API requests one tenant may have running at once, whichever tokens
    /// they carry; past it, 429 with `Retry-After`. 0: no limit.
    pub max_concurrent_requests_per_tenant: usize,
    /// The Jaeger query API (`[query.jaeger]`).
    pub jaeger: JaegerConfig,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 7300)),
            timeout: Duration::from_secs(30),
            memory_limit_bytes: 1024 * 1024 * 1024,
            max_result_rows: 100_000,
            max_trace_spans: 500_000,
            max_body_bytes: 1024 * 1024,
            search_default_limit: 20,
            search_max_limit: 1000,
            metrics_default_limit: 1000,
            metrics_max_series: 10_000,
            // Prometheus' limit: more points than pixels of any chart.
            metrics_max_steps: 11_000,
            metrics_max_points: 1_000_000,
            // The UI fires a handful of requests per screen; a script rarely more.
            max_concurrent_requests_per_token: 16,
            max_concurrent_requests_per_tenant: 0,
            jaeger: JaegerConfig::default(),
        }
    }
}

impl QueryConfig {
    /// Checks the limits; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.timeout.is_zero() {
            return Err("timeout must be greater than zero (e.g. \"30s\")".into());
        }
        if self.memory_limit_bytes < MIN_MEMORY_LIMIT_BYTES {
            return Err(format!(
                "memory_limit_bytes must be at least {MIN_MEMORY_LIMIT_BYTES} (1 MiB), got {}",
                self.memory_limit_bytes
            ));
        }
        if self.max_result_rows == 0 {
            return Err("max_result_rows must be at least 1".into());
        }
        if self.max_trace_spans == 0 {
            return Err("max_trace_spans must be at least 1".into());
        }
        if self.max_concurrent_requests_per_token == 0 {
            return Err("max_concurrent_requests_per_token must be at least 1".into());
        }
        if self.max_body_bytes < 1024 {
            return Err(format!("max_body_bytes must be at least 1024, got {}", self.max_body_bytes));
        }
        if self.search_max_limit == 0 {
            return Err("search_max_limit must be at least 1".into());
        }
        if self.search_default_limit == 0 || self.search_default_limit > self.search_max_limit {
            return Err(format!(
                "search_default_limit must be between 1 and search_max_limit ({}), got {}",
                self.search_max_limit, self.search_default_limit
            ));
        }
        if self.metrics_max_series == 0 {
            return Err("metrics_max_series must be at least 1".into());
        }
        if self.metrics_default_limit == 0 || self.metrics_default_limit > self.metrics_max_series {
            return Err(format!(
                "metrics_default_limit must be between 1 and metrics_max_series ({}), got {}",
                self.metrics_max_series, self.metrics_default_limit
            ));
        }
        if self.metrics_max_steps == 0 {
            return Err("metrics_max_steps must be at least 1".into());
        }
        if self.metrics_max_points == 0 {
            return Err("metrics_max_points must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = QueryConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.listen.port(), 7300);
        assert_eq!(config.timeout, Duration::from_secs(30));
    }

    #[test]
    fn parses_humantime_and_rejects_unknown_keys() {
        let config: QueryConfig =
            serde_json::from_str(r#"{"timeout": "5s", "max_result_rows": 10}"#).expect("valid config");
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.max_result_rows, 10);
        assert_eq!(config.search_max_limit, 1000, "unset keys keep their defaults");
        let err = serde_json::from_str::<QueryConfig>(r#"{"timeot": "5s"}"#).expect_err("typo is refused");
        assert!(err.to_string().contains("timeot"), "{err}");
    }

    #[test]
    fn validate_names_the_bad_key() {
        let cases: Vec<(QueryConfig, &str)> = vec![
            (QueryConfig { timeout: Duration::ZERO, ..Default::default() }, "timeout"),
            (QueryConfig { memory_limit_bytes: 10, ..Default::default() }, "memory_limit_bytes"),
            (QueryConfig { max_result_rows: 0, ..Default::default() }, "max_result_rows"),
            (QueryConfig { max_trace_spans: 0, ..Default::default() }, "max_trace_spans"),
            (QueryConfig { max_body_bytes: 1, ..Default::default() }, "max_body_bytes"),
            (QueryConfig { search_max_limit: 0, ..Default::default() }, "search_max_limit"),
            (QueryConfig { search_default_limit: 5000, ..Default::default() }, "search_default_limit"),
            (QueryConfig { metrics_max_series: 0, ..Default::default() }, "metrics_max_series"),
            (QueryConfig { metrics_default_limit: 20_000, ..Default::default() }, "metrics_default_limit"),
            (QueryConfig { metrics_max_steps: 0, ..Default::default() }, "metrics_max_steps"),
            (QueryConfig { metrics_max_points: 0, ..Default::default() }, "metrics_max_points"),
        ];
        for (config, key) in cases {
            let err = config.validate().expect_err(key);
            assert!(err.contains(key), "{err} should mention {key}");
        }
    }
}
