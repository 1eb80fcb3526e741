//! `skein bench ingest`: the OTLP load generator, for traces or metrics.
//!
//! Before the clock starts it connects every worker and pre-encodes a pool
//! of requests of the chosen `--signal`. Then `--connections` workers each keep one export in flight
//! until `--duration` has passed: paced evenly at `--rate` (worker `i` of
//! `n` is offset by `i/n` of a period) or back to back with `max`. Each
//! worker keeps its own histogram and counters; they are merged at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Context;
use tokio::task::JoinSet;

use super::ids::{MAX_LOCAL, mix};
use super::metrics_workload::MetricsPlan;
use super::pool::{Pool, Replay};
use super::procfs;
use super::progress::Progress;
use super::report::IngestReport;
use super::signal::Signal;
use super::stats::{Failures, Latencies};
use super::transport::{Exporter, Outcome, Protocol, target_url};

/// Most spans or data points kept pre-encoded (pool × batch), to bound the
/// generator's memory.
const MAX_POOL_ITEMS: usize = 4_000_000;
/// Pause after a failed export when the server gives no retry hint.
const FAILURE_PAUSE: Duration = Duration::from_millis(100);
const MAX_FAILURE_PAUSE: Duration = Duration::from_secs(1);

/// Arguments of `skein bench ingest`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    about = "Send generated traces or metrics over plain OTLP and report throughput, errors and latency",
    after_help = "The endpoint's URL scheme is always http:// (no TLS); --protocol picks the transport. \
                  With --signal metrics, --rate and --batch count data points. Examples:\n  \
                  skein bench ingest --rate 50000 --duration 60s\n  \
                  skein bench ingest --protocol http --endpoint http://127.0.0.1:4318 --rate max\n  \
                  skein bench ingest --signal metrics --rate 300000 --batch 2000"
)]
pub struct IngestArgs {
    /// What to send: `traces` (the shop's traces; items are spans) or
    /// `metrics` (the shop's metrics; items are data points).
    #[arg(long, value_enum, default_value_t = Signal::Traces)]
    pub signal: Signal,
    /// OTLP transport: `grpc` (OTLP/gRPC) or `http` (OTLP/HTTP, protobuf bodies).
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,
    /// Where to send, as http://host:port [default: http://127.0.0.1:4317 for grpc,
    /// http://127.0.0.1:4318 for http]. For http, /v1/traces or /v1/metrics is appended unless the
    /// URL has a path.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Spans (or data points) per second to offer, or `max` to send as fast as the target acknowledges.
    #[arg(long, default_value = "max", value_parser = parse_rate)]
    pub rate: Rate,
    /// How long to send: 30s, 2m, or a number of seconds.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Concurrent connections; each has one export in flight at a time.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Spans (or data points) per export request.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Seed of the generated content (trace and span IDs are new on every
    /// run, so runs never repeat a trace).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Distinct pre-encoded requests to cycle through. For metrics, one pass
    /// over the pool is one stretch of the fleet's timeline, and every
    /// instance restarts (resets its counters) once per pass.
    #[arg(long, default_value_t = 32)]
    pub pool: usize,
    /// Time limit of one export.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Spread span times over this much of the past (e.g. 24h): the run
    /// sends the window in time order, from `now - spread` at its start to
    /// now at its end, so a day of data loads in minutes (traces only).
    #[arg(long, value_parser = parse_duration)]
    pub spread: Option<Duration>,
    /// PID of the server when it runs on this machine: report its CPU
    /// seconds per million items and peak RSS (from /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server's data directory: report bytes of the signal's Parquet
    /// files written per item (files present at the end; let the server
    /// flush first).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the text report (no progress bar).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub security: crate::client::ClientSecurity,
}

/// The offered load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// As fast as acknowledgements come back.
    Max,
    /// Items per second, over all connections.
    PerSecond(f64),
}

fn parse_rate(text: &str) -> Result<Rate, String> {
    if text.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    match text.replace('_', "").parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(Rate::PerSecond(rate)),
        _ => Err(format!("expected items per second (a positive number) or `max`, got {text:?}")),
    }
}

/// `30s`, `2m`, `1h` (humantime) or a plain number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| format!("invalid duration {text:?}"));
    }
    humantime_serde::re::humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration {text:?} ({e}); use e.g. 30s, 2m or a number of seconds"))
}

impl IngestArgs {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1024).contains(&self.connections) {
            return Err(format!("--connections must be from 1 to 1024, got {}", self.connections));
        }
        if self.batch == 0 || self.batch > MAX_LOCAL as usize {
            return Err(format!("--batch must be from 1 to {MAX_LOCAL} items, got {}", self.batch));
        }
        if self.pool == 0 {
            return Err("--pool must be at least 1".into());
        }
        if self.pool.saturating_mul(self.batch) > MAX_POOL_ITEMS {
            return Err(format!(
                "--pool × --batch is {} items; at most {MAX_POOL_ITEMS} are kept pre-encoded, lower --pool",
                self.pool.saturating_mul(self.batch)
            ));
        }
        if self.duration.is_zero() || self.duration > Duration::from_secs(7 * 24 * 3600) {
            return Err(format!("--duration must be more than 0 and at most 7 days, got {:?}", self.duration));
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be more than 0".into());
        }
        if let Some(spread) = self.spread {
            if self.signal != Signal::Traces {
                return Err("--spread is for --signal traces (metric series need their own timeline)".into());
            }
            if spread.is_zero() || spread > Duration::from_secs(30 * 24 * 3600) {
                return Err(format!("--spread must be more than 0 and at most 30 days, got {spread:?}"));
            }
        }
        Ok(())
    }

    fn endpoint(&self) -> &str {
        self.endpoint.as_deref().unwrap_or(self.protocol.default_endpoint())
    }

    /// Time between two sends of one worker, or None for `max`.
    fn period(&self) -> Option<Duration> {
        match self.rate {
            Rate::Max => None,
            Rate::PerSecond(rate) => {
                let seconds = (self.batch * self.connections) as f64 / rate;
                Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX).max(Duration::from_nanos(1)))
            }
        }
    }
}

/// Live totals, read by the progress bar.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// The next send number (pool epoch); starts at 1.
    next_epoch: AtomicU64,
    pub(crate) acknowledged_items: AtomicU64,
    pub(crate) errors: AtomicU64,
}

/// One worker's results.
#[derive(Debug, Default)]
struct WorkerStats {
    requests: u64,
    items_sent: u64,
    items_acknowledged: u64,
    items_rejected: u64,
    latencies: Latencies,
    failures: Failures,
}

impl WorkerStats {
    fn merge(&mut self, other: &WorkerStats) {
        self.requests += other.requests;
        self.items_sent += other.items_sent;
        self.items_acknowledged += other.items_acknowledged;
        self.items_rejected += other.items_rejected;
        self.latencies.merge(&other.latencies);
        self.failures.merge(&other.failures);
    }
}

/// Runs the load and returns its report. Fails before sending if the
/// arguments are invalid or a gRPC connection cannot be opened.
pub async fn ingest(args: IngestArgs) -> crate::Result<IngestReport> {
    args.validate().map_err(crate::BenchError::Invalid)?;
    let signal = args.signal;
    let url = target_url(args.protocol, signal, args.endpoint())?;
    let mut exporters = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        exporters.push(Exporter::connect(args.protocol, signal, &url, args.timeout, &args.security).await?);
    }

    let generated_at = unix_now_ns();
    let nonce = mix(generated_at ^ (u64::from(std::process::id()) << 40));
    let (seed, pool_size, batch) = (args.seed, args.pool, args.batch);
    let rate = match args.rate {
        Rate::Max => None,
        Rate::PerSecond(rate) => Some(rate),
    };
    let replay = args.spread.map(|spread| Replay {
        spread_ns: u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX),
        run_ns: u64::try_from(args.duration.as_nanos()).unwrap_or(u64::MAX),
    });
    let pool = tokio::task::spawn_blocking(move || match signal {
        Signal::Traces => Pool::traces(seed, pool_size, batch, nonce, generated_at, replay),
        Signal::Metrics => {
            let plan = MetricsPlan { seed, requests: pool_size, points: batch, now_ns: generated_at, rate };
            Pool::metrics(&plan, nonce)
        }
    })
    .await
    .context("generating the request pool")??;
    let pool = Arc::new(pool);
    tracing::debug!(requests = pool_size, bytes = pool.encoded_bytes(), "pre-encoded the request pool");

    let parquet_before = match &args.data_dir {
        Some(dir) => Some(parquet_bytes(dir.clone(), signal).await?),
        None => None,
    };
    let server_before = args.server_pid.map(procfs::sample).transpose()?;
    let own_before = procfs::own_cpu_seconds().ok();

    let counters = Arc::new(Counters { next_epoch: AtomicU64::new(1), ..Counters::default() });
    let start = Instant::now();
    let deadline = start + args.duration;
    let progress = Progress::start(!args.json, args.duration, signal, counters.clone());
    let period = args.period();
    let mut workers = JoinSet::new();
    for (i, exporter) in exporters.into_iter().enumerate() {
        let pace = period.map(|p| (start + p.mul_f64(i as f64 / args.connections as f64), p));
        workers.spawn(worker(exporter, pool.clone(), counters.clone(), pace, deadline));
    }
    let mut totals = WorkerStats::default();
    while let Some(joined) = workers.join_next().await {
        totals.merge(&joined.context("a load worker panicked")??);
    }
    let elapsed = start.elapsed();
    progress.finish().await;

    let server_after = args.server_pid.map(procfs::sample).transpose()?;
    let own_after = procfs::own_cpu_seconds().ok();
    let parquet_after = match &args.data_dir {
        Some(dir) => Some(parquet_bytes(dir.clone(), signal).await?),
        None => None,
    };
    let acknowledged = totals.items_acknowledged;
    let server_cpu = server_before.zip(server_after).map(|(b, a)| (a.cpu_seconds - b.cpu_seconds).max(0.0));
    let parquet = parquet_before.zip(parquet_after).map(|(b, a)| a.saturating_sub(b));
    let items_per_second = acknowledged as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    Ok(IngestReport {
        signal,
        protocol: args.protocol,
        endpoint: url,
        target_items_per_second: rate,
        connections: args.connections,
        batch: args.batch,
        seed: args.seed,
        duration_seconds: elapsed.as_secs_f64(),
        requests: totals.requests,
        items_sent: totals.items_sent,
        items_acknowledged: acknowledged,
        items_rejected: totals.items_rejected,
        items_per_second,
        spans_per_second: (signal == Signal::Traces).then_some(items_per_second),
        data_points_per_second: (signal == Signal::Metrics).then_some(items_per_second),
        errors: totals.failures.total(),
        latency_p50_ms: totals.latencies.quantile_ms(0.5),
        latency_p90_ms: totals.latencies.quantile_ms(0.9),
        latency_p99_ms: totals.latencies.quantile_ms(0.99),
        latency_max_ms: totals.latencies.max_ms(),
        errors_by_kind: totals.failures.into_map(),
        generator_cpu_seconds: own_before.zip(own_after).map(|(b, a)| a - b),
        server_cpu_seconds: server_cpu,
        server_cpu_seconds_per_million_items: server_cpu
            .filter(|_| acknowledged > 0)
            .map(|cpu| cpu * 1_000_000.0 / acknowledged as f64),
        server_peak_rss_bytes: server_after.map(|s| s.peak_rss_bytes),
        parquet_bytes: parquet,
        parquet_bytes_per_item: parquet.filter(|_| acknowledged > 0).map(|b| b as f64 / acknowledged as f64),
    })
}

/// Sends until `deadline`, one export in flight. `pace` is the first send
/// time and the period between sends; None sends back to back.
async fn worker(
    mut exporter: Exporter,
    pool: Arc<Pool>,
    counters: Arc<Counters>,
    pace: Option<(Instant, Duration)>,
    deadline: Instant,
) -> crate::Result<WorkerStats> {
    let mut stats = WorkerStats::default();
    let mut next = pace.map(|(first, _)| first);
    loop {
        if let (Some(at), Some((_, period))) = (next.as_mut(), pace) {
            if *at >= deadline {
                break;
            }
            tokio::time::sleep_until((*at).into()).await;
            // Sends missed while the target was slow are dropped, not
            // bunched up: the offered rate never exceeds --rate.
            let now = Instant::now();
            *at = (*at + period).max(now.checked_sub(period.max(Duration::from_millis(5))).unwrap_or(now));
        }
        if Instant::now() >= deadline {
            break;
        }
        let epoch = counters.next_epoch.fetch_add(1, Ordering::Relaxed);
        let (body, items) = pool.request(epoch, unix_now_ns())?;
        let items = items as u64;
        let sent_at = Instant::now();
        let outcome = exporter.export(body).await;
        let latency = sent_at.elapsed();
        stats.requests += 1;
        stats.items_sent += items;
        match outcome {
            Outcome::Accepted { rejected } => {
                let rejected = rejected.min(items);
                stats.latencies.record(latency);
                stats.items_acknowledged += items - rejected;
                counters.acknowledged_items.fetch_add(items - rejected, Ordering::Relaxed);
                if rejected > 0 {
                    stats.items_rejected += rejected;
                    stats.failures.add("partial_success", 1);
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Outcome::Failed { kind, retry_after } => {
                stats.failures.add(&kind, 1);
                counters.errors.fetch_add(1, Ordering::Relaxed);
                // Do not hammer a failing target; honour its hint, bounded.
                let pause = retry_after.unwrap_or(FAILURE_PAUSE).min(MAX_FAILURE_PAUSE);
                tokio::time::sleep_until((Instant::now() + pause).min(deadline).into()).await;
            }
        }
    }
    Ok(stats)
}

pub(crate) fn unix_now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Total size of `signal`'s `*.parquet` files under the data directory
/// `dir`: the files below a folder named after the signal (`spans/` or
/// `metrics/` in each shard), and for traces also the files below neither
/// (the layout from before the metrics signal).
pub async fn parquet_bytes(dir: PathBuf, signal: Signal) -> crate::Result<u64> {
    tokio::task::spawn_blocking(move || sum_parquet(&dir, signal, None)).await.context("measuring parquet files")?
}

/// `owner` is the signal whose folder `dir` is in, if any.
fn sum_parquet(dir: &Path, signal: Signal, owner: Option<Signal>) -> crate::Result<u64> {
    let mut total = 0;
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading data directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading data directory {}", dir.display()))?;
        let kind = entry.file_type().with_context(|| format!("reading data directory {}", dir.display()))?;
        let path = entry.path();
        if kind.is_dir() {
            let name = entry.file_name();
            let folder = [Signal::Traces, Signal::Metrics].into_iter().find(|s| name == s.shard_dir());
            total += sum_parquet(&path, signal, owner.or(folder))?;
        } else if kind.is_file()
            && path.extension().is_some_and(|e| e == "parquet")
            && owner.unwrap_or(Signal::Traces) == signal
        {
            // A file compacted away meanwhile is simply not counted.
            total += entry.metadata().map_or(0, |m| m.len());
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn args(extra: &[&str]) -> IngestArgs {
        IngestArgs::try_parse_from(std::iter::once("ingest").chain(extra.iter().copied())).expect("parses")
    }

    #[test]
    fn defaults_and_parsing() {
        let a = args(&[]);
        assert_eq!((a.protocol, a.rate, a.connections, a.batch), (Protocol::Grpc, Rate::Max, 4, 512));
        assert_eq!(a.signal, Signal::Traces);
        assert_eq!(args(&["--signal", "metrics"]).signal, Signal::Metrics);
        assert_eq!(a.endpoint(), "http://127.0.0.1:4317");
        assert!(a.validate().is_ok());
        let a = args(&[
            "--protocol",
            "http",
            "--rate",
            "10_000",
            "--duration",
            "2m",
            "--connections",
            "2",
            "--batch",
            "100",
        ]);
        assert_eq!(a.endpoint(), "http://127.0.0.1:4318");
        assert_eq!(a.rate, Rate::PerSecond(10_000.0));
        assert_eq!(a.duration, Duration::from_secs(120));
        assert_eq!(a.period(), Some(Duration::from_millis(20)), "100 items × 2 connections at 10k items/s");
        assert_eq!(args(&["--duration", "1.5"]).duration, Duration::from_millis(1500));
        for bad in
            [["--rate", "0"], ["--rate", "fast"], ["--duration", "soon"], ["--protocol", "udp"], ["--signal", "logs"]]
        {
            assert!(IngestArgs::try_parse_from(std::iter::once("ingest").chain(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validation_names_the_flag() {
        for (flags, needle) in [
            (vec!["--connections", "0"], "--connections"),
            (vec!["--batch", "0"], "--batch"),
            (vec!["--pool", "0"], "--pool"),
            (vec!["--batch", "100000", "--pool", "100"], "--pool"),
            (vec!["--duration", "0s"], "--duration"),
            (vec!["--timeout", "0s"], "--timeout"),
        ] {
            let err = args(&flags).validate().expect_err("invalid");
            assert!(err.contains(needle), "{flags:?}: {err}");
        }
    }

    #[test]
    fn sums_the_signals_parquet_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |path: &str, bytes: usize| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
            std::fs::write(path, vec![0u8; bytes]).expect("write");
        };
        write("shard-0000/spans/date=2025-06-01/hour=10/a.parquet", 100);
        write("shard-0001/spans/b.parquet", 20);
        write("shard-0000/metrics/date=2025-06-01/hour=10/c.parquet", 3000);
        write("shard-0001/metrics/d.parquet", 400);
        write("shard-0000/metrics/wal/00001.wal", 50_000);
        write("shard-0002/date=2025-06-01/hour=10/legacy.parquet", 5);
        assert_eq!(sum_parquet(dir.path(), Signal::Traces, None).expect("sums"), 125);
        assert_eq!(sum_parquet(dir.path(), Signal::Metrics, None).expect("sums"), 3400);
        assert!(sum_parquet(&dir.path().join("missing"), Signal::Traces, None).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_grpc_endpoint_fails_before_the_clock_starts() {
        // Bind and drop a listener to get a loopback port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let err = ingest(args(&["--endpoint", &endpoint, "--duration", "1s"])).await.expect_err("refused");
        assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
    }

    #[tokio::test]
    async fn http_failures_are_counted_by_kind() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let report = ingest(args(&[
            "--protocol",
            "http",
            "--endpoint",
            &endpoint,
            "--duration",
            "0.3s",
            "--connections",
            "1",
            "--batch",
            "5",
            "--pool",
            "1",
        ]))
        .await
        .expect("runs");
        assert_eq!(report.items_acknowledged, 0);
        assert!(report.errors >= 1);
        assert_eq!(report.errors_by_kind.keys().collect::<Vec<_>>(), vec!["transport"]);
        assert_eq!(report.latency_p50_ms, None);
    }
}
