//! `skein bench query`: latency of the Skein query API after a load.
//!
//! It learns trace IDs with SQL (`SELECT DISTINCT trace_id FROM spans LIMIT
//! 1000`, no time range), then times, one request at a time: trace lookups
//! by random known ID, a typical search (service + attribute + minimum
//! duration over a recent window), the same search for a service that does
//! not exist, and two SQL aggregates (p99 duration per operation, error
//! rate per service). Each time covers the whole response body.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::error::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Url;
use serde_json::Value;

use super::ingest::{parse_duration, unix_now_ns};
use super::procfs;
use super::report::QueryReport;
use super::stats::{Failures, Latencies};

/// Most trace IDs learned for lookups.
const KNOWN_IDS: usize = 1000;
/// A service no workload uses, for the search that matches nothing.
const NO_SUCH_SERVICE: &str = "skein-bench-no-such-service";

/// Arguments of `skein bench query`.
#[derive(Debug, Clone, clap::Parser)]
#[command(about = "Time trace lookups, searches and SQL aggregates against the Skein query API")]
pub struct QueryArgs {
    /// The Skein query API.
    #[arg(long, default_value = "http://127.0.0.1:7300")]
    pub endpoint: String,
    /// Trace-by-ID lookups to time, over random known trace IDs.
    #[arg(long, default_value_t = 200)]
    pub lookups: usize,
    /// Runs of each search and of each SQL aggregate.
    #[arg(long, default_value_t = 10)]
    pub repeat: usize,
    /// Service of the typical search.
    #[arg(long, default_value = "frontend")]
    pub search_service: String,
    /// Attribute (span or resource) of the typical search, as key=value.
    #[arg(long, default_value = "http.route=/api/checkout")]
    pub search_attr: String,
    /// Minimum span duration of the typical search.
    #[arg(long, default_value = "50ms")]
    pub search_min_duration: String,
    /// How far back searches and SQL aggregates look.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub window: Duration,
    /// Seed for picking trace IDs to look up.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time limit of one request.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// PID of the server when it runs on this machine: report its CPU and peak RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print one JSON object on stdout instead of the text report.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub security: crate::client::ClientSecurity,
}

impl QueryArgs {
    pub fn validate(&self) -> Result<(), String> {
        if self.lookups == 0 || self.repeat == 0 {
            return Err("--lookups and --repeat must be at least 1".into());
        }
        if !self.search_attr.contains('=') {
            return Err(format!("--search-attr must be key=value, got {:?}", self.search_attr));
        }
        if self.window.is_zero() || self.timeout.is_zero() {
            return Err("--window and --timeout must be more than 0".into());
        }
        Ok(())
    }
}

/// The SQL aggregates timed, by name: over spans, and the same numbers
/// from the per-minute span metrics.
fn aggregates(window: Duration) -> [(&'static str, String); 4] {
    let seconds = window.as_secs().max(1);
    let since = format!("start_time >= now() - INTERVAL '{seconds} seconds'");
    let minutes = format!("time >= now() - INTERVAL '{seconds} seconds'");
    [
        (
            "p99_by_operation",
            format!(
                "SELECT service_name, name, count(*) AS spans, \
                 approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns) AS p99_ns \
                 FROM spans WHERE {since} GROUP BY service_name, name ORDER BY p99_ns DESC LIMIT 50"
            ),
        ),
        (
            "error_rate_by_service",
            format!(
                "SELECT service_name, count(*) AS spans, \
                 avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate \
                 FROM spans WHERE {since} GROUP BY service_name ORDER BY error_rate DESC"
            ),
        ),
        (
            "p99_by_operation_span_metrics",
            format!(
                "SELECT service_name, name, sum(calls) AS spans, \
                 duration_quantile(duration_histogram, 0.99) AS p99_ns \
                 FROM span_metrics WHERE {minutes} GROUP BY service_name, name ORDER BY p99_ns DESC LIMIT 50"
            ),
        ),
        (
            "error_rate_by_service_span_metrics",
            format!(
                "SELECT service_name, sum(calls) AS spans, sum(errors) * 1.0 / sum(calls) AS error_rate \
                 FROM span_metrics WHERE {minutes} GROUP BY service_name ORDER BY error_rate DESC"
            ),
        ),
    ]
}

/// How many traces search summarizes per page by default.
const SUMMARIZED_TRACES: usize = 20;

/// The summaries of a search page's traces (`ids`), from the `traces` table
/// (what search reads) and from an aggregate over their spans (what it read
/// before trace summaries), so a report shows what the summaries save.
fn summary_statements(ids: &[String]) -> [(&'static str, String); 2] {
    let list: Vec<String> = ids.iter().take(SUMMARIZED_TRACES).map(|id| format!("'{id}'")).collect();
    let list = list.join(", ");
    [
        (
            "summaries_of_20_traces",
            format!(
                "SELECT trace_id, start_time, end_time, root_service_name, root_name, services, span_count, \
                 error_count, has_root, complete FROM traces WHERE trace_id IN ({list})"
            ),
        ),
        (
            "summaries_of_20_traces_from_spans",
            format!(
                "SELECT trace_id, min(start_time), max(end_time), \
                 first_value(service_name ORDER BY parent_span_id IS NOT NULL, start_time, span_id), \
                 first_value(name ORDER BY parent_span_id IS NOT NULL, start_time, span_id), \
                 array_agg(DISTINCT service_name), count(span_id), \
                 sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END), bool_or(parent_span_id IS NULL) \
                 FROM spans WHERE trace_id IN ({list}) GROUP BY trace_id"
            ),
        ),
    ]
}

/// The query API, with failures counted by request name.
struct Api {
    client: reqwest::Client,
    base: Url,
    failures: Failures,
}

impl Api {
    fn url(&self, path: &str) -> crate::Result<Url> {
        self.base.join(path).with_context(|| format!("building a URL for {path}"))
    }

    /// Sends `request`; returns the time to the end of the body and the
    /// JSON body, or counts a failure under `name` and returns None.
    async fn timed(&mut self, name: &str, request: reqwest::RequestBuilder) -> Option<(Duration, Value)> {
        let started = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                self.failures.add(&format!("{name}_{}", if err.is_timeout() { "timeout" } else { "transport" }), 1);
                return None;
            }
        };
        let status = response.status();
        let body = response.bytes().await;
        let took = started.elapsed();
        match body {
            Ok(body) if status.is_success() => match serde_json::from_slice(&body) {
                Ok(json) => Some((took, json)),
                Err(_) => {
                    self.failures.add(&format!("{name}_bad_body"), 1);
                    None
                }
            },
            Ok(_) => {
                self.failures.add(&format!("{name}_http_{}", status.as_u16()), 1);
                None
            }
            Err(_) => {
                self.failures.add(&format!("{name}_transport"), 1);
                None
            }
        }
    }

    fn sql(&self, sql: &str) -> crate::Result<reqwest::RequestBuilder> {
        Ok(self.client.post(self.url("/api/v1/sql")?).json(&serde_json::json!({ "sql": sql })))
    }

    /// Known trace IDs; any failure here ends the bench with its reason.
    async fn trace_ids(&self) -> crate::Result<Vec<String>> {
        let sql = format!("SELECT DISTINCT trace_id FROM spans LIMIT {KNOWN_IDS}");
        let response =
            self.sql(&sql)?.send().await.with_context(|| format!("cannot reach the query API at {}", self.base))?;
        let status = response.status();
        let body = response.text().await.context("reading the trace ID list")?;
        if !status.is_success() {
            bail!("listing trace IDs failed with HTTP {status}: {body}");
        }
        let json: Value = serde_json::from_str(&body).context("the SQL answer is not JSON")?;
        let rows = json["rows"].as_array().context("the SQL answer has no rows")?;
        let ids: Vec<String> = rows.iter().filter_map(|row| row[0].as_str().map(str::to_owned)).collect();
        if ids.is_empty() {
            bail!("no traces are stored at {}; run `skein bench ingest` first", self.base);
        }
        Ok(ids)
    }
}

/// Runs the query bench and returns its report. Fails if the API cannot be
/// reached or holds no traces; later failures are counted in the report.
pub async fn query(args: QueryArgs) -> crate::Result<QueryReport> {
    args.validate().map_err(crate::BenchError::Invalid)?;
    let base = Url::parse(&args.endpoint).with_context(|| format!("--endpoint {:?} is not a URL", args.endpoint))?;
    if !matches!(base.scheme(), "http" | "https") {
        bail!("--endpoint must be an http:// or https:// URL, got {:?}", args.endpoint);
    }
    let client = args.security.http_client(crate::client::http_client_builder().no_proxy().timeout(args.timeout))?;
    let mut api = Api { client, base, failures: Failures::default() };
    let ids = api.trace_ids().await?;
    let server_before = args.server_pid.map(procfs::sample).transpose()?;

    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut lookups = Latencies::new();
    for _ in 0..args.lookups {
        let id = &ids[rng.random_range(0..ids.len())];
        let request = api.client.get(api.url(&format!("/api/v1/traces/{id}"))?);
        if let Some((took, _)) = api.timed("trace_by_id", request).await {
            lookups.record(took);
        }
    }

    let window_start = unix_now_ns().saturating_sub(u64::try_from(args.window.as_nanos()).unwrap_or(u64::MAX));
    let search_url = |service: &str| -> crate::Result<Url> {
        let mut url = api.url("/api/v1/search")?;
        url.query_pairs_mut()
            .append_pair("service", service)
            .append_pair("attr", &args.search_attr)
            .append_pair("min_duration", &args.search_min_duration)
            .append_pair("start", &(window_start / 1_000_000_000).to_string());
        Ok(url)
    };
    let (typical, empty) = (search_url(&args.search_service)?, search_url(NO_SUCH_SERVICE)?);
    let (mut searches, mut empty_searches, mut matches) = (Latencies::new(), Latencies::new(), 0);
    for _ in 0..args.repeat {
        if let Some((took, body)) = api.timed("search", api.client.get(typical.clone())).await {
            searches.record(took);
            matches = body["traces"].as_array().map_or(0, Vec::len);
        }
        if let Some((took, _)) = api.timed("search_empty", api.client.get(empty.clone())).await {
            empty_searches.record(took);
        }
    }

    // What the UI asks for: the latest traces, RED per operation of one
    // service at 1-minute steps, the service graph.
    let start_seconds = (window_start / 1_000_000_000).to_string();
    let mut latest = api.url("/api/v1/search")?;
    latest.query_pairs_mut().append_pair("limit", "20").append_pair("start", &start_seconds);
    let mut red = api.url("/api/v1/service_stats")?;
    red.query_pairs_mut()
        .append_pair("service", &args.search_service)
        .append_pair("step", "60s")
        .append_pair("start", &start_seconds);
    let mut graph = api.url("/api/v1/service_graph")?;
    graph.query_pairs_mut().append_pair("start", &start_seconds);
    let mut api_ms = BTreeMap::new();
    for (name, url) in [("latest_20_traces", latest), ("red_per_operation", red), ("service_graph", graph)] {
        let mut times = Latencies::new();
        for _ in 0..args.repeat {
            if let Some((took, _)) = api.timed(name, api.client.get(url.clone())).await {
                times.record(took);
            }
        }
        api_ms.insert(name.to_owned(), times.quantile_ms(0.5));
    }

    let mut sql_ms = BTreeMap::new();
    for (name, sql) in aggregates(args.window).into_iter().chain(summary_statements(&ids)) {
        let mut times = Latencies::new();
        for _ in 0..args.repeat {
            if let Some((took, _)) = api.timed(name, api.sql(&sql)?).await {
                times.record(took);
            }
        }
        sql_ms.insert(name.to_owned(), times.quantile_ms(0.5));
    }
    let server_after = args.server_pid.map(procfs::sample).transpose()?;

    Ok(QueryReport {
        endpoint: args.endpoint.clone(),
        known_trace_ids: ids.len(),
        trace_by_id_lookups: args.lookups,
        trace_by_id_p50_ms: lookups.quantile_ms(0.5),
        trace_by_id_p99_ms: lookups.quantile_ms(0.99),
        search: typical.query_pairs().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"),
        search_p50_ms: searches.quantile_ms(0.5),
        search_p99_ms: searches.quantile_ms(0.99),
        search_matches: matches,
        search_empty_ms: empty_searches.quantile_ms(0.5),
        sql_ms,
        api_ms,
        errors: api.failures.total(),
        errors_by_kind: api.failures.into_map(),
        server_cpu_seconds: server_before.zip(server_after).map(|(b, a)| (a.cpu_seconds - b.cpu_seconds).max(0.0)),
        server_peak_rss_bytes: server_after.map(|s| s.peak_rss_bytes),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_flags_are_named() {
        let args = QueryArgs::try_parse_from(["query"]).expect("parses");
        assert!(args.validate().is_ok());
        assert_eq!(args.window, Duration::from_secs(3600));
        let args = QueryArgs::try_parse_from(["query", "--search-attr", "nokey"]).expect("parses");
        assert!(args.validate().expect_err("invalid").contains("--search-attr"));
        let args = QueryArgs::try_parse_from(["query", "--repeat", "0"]).expect("parses");
        assert!(args.validate().expect_err("invalid").contains("--repeat"));
    }

    #[test]
    fn aggregates_cover_the_window() {
        let all = aggregates(Duration::from_secs(600));
        let names: Vec<&str> = all.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "p99_by_operation",
                "error_rate_by_service",
                "p99_by_operation_span_metrics",
                "error_rate_by_service_span_metrics"
            ]
        );
        assert!(all.iter().all(|(_, sql)| sql.contains("INTERVAL '600 seconds'")));
    }

    #[test]
    fn summaries_are_asked_for_the_same_first_20_traces_both_ways() {
        let ids: Vec<String> = (0..30).map(|i| format!("{i:032x}")).collect();
        for (_, sql) in summary_statements(&ids) {
            assert!(sql.contains(&format!("'{:032x}'", 19)) && !sql.contains(&format!("'{:032x}'", 20)), "{sql}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_api_is_a_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let args =
            QueryArgs::try_parse_from(["query", "--endpoint", &format!("http://127.0.0.1:{port}")]).expect("parses");
        let err = query(args).await.expect_err("unreachable");
        assert!(format!("{err:#}").contains("cannot reach the query API"), "{err:#}");
    }
}
