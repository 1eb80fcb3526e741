//! Results of the bench commands: serializable structs (`--json` prints one
//! object on stdout) and a short human-readable rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::signal::Signal;
use super::transport::Protocol;

/// The result of `skein bench ingest`. An item is a span (`signal` traces)
/// or a data point (`signal` metrics); the rate is also reported under the
/// signal's own key, `spans_per_second` or `data_points_per_second` (the
/// other is absent). Optional fields are null when not measured (no
/// sample, no `--server-pid`, no `--data-dir`).
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub signal: Signal,
    pub protocol: Protocol,
    /// The URL requests went to.
    pub endpoint: String,
    /// The offered rate; null for `max`.
    pub target_items_per_second: Option<f64>,
    pub connections: usize,
    /// Items per request.
    pub batch: usize,
    pub seed: u64,
    /// From the first send until the last response.
    pub duration_seconds: f64,
    /// Export requests completed (acknowledged or failed).
    pub requests: u64,
    pub items_sent: u64,
    pub items_acknowledged: u64,
    /// Items the target refused inside acknowledged requests (partial success).
    pub items_rejected: u64,
    /// Acknowledged items per second.
    pub items_per_second: f64,
    /// `items_per_second` of a traces run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spans_per_second: Option<f64>,
    /// `items_per_second` of a metrics run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_points_per_second: Option<f64>,
    /// Failed or partially failed requests.
    pub errors: u64,
    /// `errors` by kind: `http_<status>`, `grpc_<code>`, `transport`, `timeout`, `partial_success`.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Export latency of acknowledged requests.
    pub latency_p50_ms: Option<f64>,
    pub latency_p90_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// CPU the load generator itself used.
    pub generator_cpu_seconds: Option<f64>,
    pub server_cpu_seconds: Option<f64>,
    pub server_cpu_seconds_per_million_items: Option<f64>,
    /// The server's peak resident memory since it started (VmHWM).
    pub server_peak_rss_bytes: Option<u64>,
    /// Growth of the signal's `*.parquet` files under `--data-dir`.
    pub parquet_bytes: Option<u64>,
    pub parquet_bytes_per_item: Option<f64>,
}

/// The result of `skein bench query`. Times are milliseconds; p50 of
/// `--repeat` runs unless named otherwise.
#[derive(Debug, Clone, Serialize)]
pub struct QueryReport {
    pub endpoint: String,
    /// Trace IDs found with `SELECT DISTINCT trace_id FROM spans LIMIT 1000`.
    pub known_trace_ids: usize,
    pub trace_by_id_lookups: usize,
    pub trace_by_id_p50_ms: Option<f64>,
    pub trace_by_id_p99_ms: Option<f64>,
    /// The typical search's query string.
    pub search: String,
    pub search_p50_ms: Option<f64>,
    pub search_p99_ms: Option<f64>,
    /// Traces the typical search returned (last run).
    pub search_matches: usize,
    /// The same search for a service that does not exist.
    pub search_empty_ms: Option<f64>,
    /// SQL aggregates by name.
    pub sql_ms: BTreeMap<String, Option<f64>>,
    /// Other API requests the UI makes by name (latest traces, RED per
    /// operation, service graph), p50.
    pub api_ms: BTreeMap<String, Option<f64>>,
    pub errors: u64,
    /// `errors` by kind: `<query>_http_<status>`, `<query>_transport`, `<query>_bad_body`.
    pub errors_by_kind: BTreeMap<String, u64>,
    pub server_cpu_seconds: Option<f64>,
    pub server_peak_rss_bytes: Option<u64>,
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.2} ms"))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn errors_line(out: &mut String, total: u64, by_kind: &BTreeMap<String, u64>) {
    let kinds: Vec<String> = by_kind.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
    let detail = if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) };
    let _ = writeln!(out, "  errors        {total}{detail}");
}

impl IngestReport {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (item, items) = (self.signal.item(), self.signal.items_short());
        let rate = self.target_items_per_second.map_or_else(|| "max".into(), |r| format!("{r:.0} {items}/s"));
        let _ = writeln!(
            out,
            "skein bench ingest: {} over {} {} · {} connections · batch {} · rate {rate} · {:.1} s",
            self.signal.name(),
            self.protocol.name(),
            self.endpoint,
            self.connections,
            self.batch,
            self.duration_seconds
        );
        let _ = writeln!(
            out,
            "  acknowledged  {} {items} in {} requests: {:.0} {items}/s",
            self.items_acknowledged, self.requests, self.items_per_second
        );
        if self.items_rejected > 0 {
            let _ = writeln!(out, "  rejected      {} {items}", self.items_rejected);
        }
        errors_line(&mut out, self.errors, &self.errors_by_kind);
        let _ = writeln!(
            out,
            "  latency       p50 {}  p90 {}  p99 {}  max {}",
            ms(self.latency_p50_ms),
            ms(self.latency_p90_ms),
            ms(self.latency_p99_ms),
            ms(self.latency_max_ms)
        );
        if let Some(cpu) = self.server_cpu_seconds {
            let per_million =
                self.server_cpu_seconds_per_million_items.map_or_else(|| "-".into(), |v| format!("{v:.2}"));
            let rss = self.server_peak_rss_bytes.map_or_else(|| "-".into(), mib);
            let _ = writeln!(out, "  server        {cpu:.2} cpu s ({per_million} per million {items}), peak rss {rss}");
        }
        if let Some(bytes) = self.parquet_bytes {
            let per_item = self.parquet_bytes_per_item.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
            let _ = writeln!(out, "  disk          {} of parquet, {per_item} bytes per {item}", mib(bytes));
        }
        if let Some(cpu) = self.generator_cpu_seconds {
            let _ = writeln!(out, "  generator     {cpu:.2} cpu s");
        }
        out
    }
}

impl QueryReport {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "skein bench query: {} · {} known traces", self.endpoint, self.known_trace_ids);
        let _ = writeln!(
            out,
            "  trace by id   p50 {}  p99 {}  ({} lookups)",
            ms(self.trace_by_id_p50_ms),
            ms(self.trace_by_id_p99_ms),
            self.trace_by_id_lookups
        );
        let _ = writeln!(
            out,
            "  search        p50 {}  p99 {}  ({} traces for {})",
            ms(self.search_p50_ms),
            ms(self.search_p99_ms),
            self.search_matches,
            self.search
        );
        let _ = writeln!(out, "  empty search  p50 {}", ms(self.search_empty_ms));
        for (name, time) in &self.api_ms {
            let _ = writeln!(out, "  api           p50 {}  {name}", ms(*time));
        }
        for (name, time) in &self.sql_ms {
            let _ = writeln!(out, "  sql           p50 {}  {name}", ms(*time));
        }
        errors_line(&mut out, self.errors, &self.errors_by_kind);
        if let Some(cpu) = self.server_cpu_seconds {
            let rss = self.server_peak_rss_bytes.map_or_else(|| "-".into(), mib);
            let _ = writeln!(out, "  server        {cpu:.2} cpu s, peak rss {rss}");
        }
        out
    }
}
