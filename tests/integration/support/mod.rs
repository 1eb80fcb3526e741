//! Test harness: a builder that starts Skein's real roles on port 0 in this
//! process, a handle to the real `skein` binary for crash tests, the Python
//! SDK environment, and small HTTP helpers.

#![allow(dead_code)]

pub mod cluster;
pub mod js;
pub mod logs;
pub mod process;
pub mod python;
pub mod seaweedfs;
pub mod tls;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use serde_json::Value;
use skein::{Addresses, AllInOne, SkeinConfig};
use skein_storage::Storage;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Builds a Skein deployment for a test. Today every role runs in one
/// process (all-in-one); the builder is where multi-node clusters will grow.
pub struct ClusterBuilder {
    config: SkeinConfig,
    data_dir: Option<PathBuf>,
}

impl ClusterBuilder {
    pub fn new() -> Self {
        let mut config = SkeinConfig::default();
        let any_port = "127.0.0.1:0".parse().expect("valid address");
        config.collector.grpc_listen = any_port;
        config.collector.http_listen = any_port;
        config.query.listen = any_port;
        config.storage.shards = 2;
        // Tests flush explicitly; nothing flushes behind their back.
        config.storage.flush_interval = Duration::from_secs(3600);
        config.log.filter = "warn".into();
        Self { config, data_dir: None }
    }

    pub fn shards(mut self, shards: usize) -> Self {
        self.config.storage.shards = shards;
        self
    }

    /// Reuse a data directory (to test restarts).
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    pub fn configure(mut self, f: impl FnOnce(&mut SkeinConfig)) -> Self {
        f(&mut self.config);
        self
    }

    pub async fn start(mut self) -> TestNode {
        let temp = tempfile::tempdir().expect("temp dir");
        self.config.storage.data_dir = self.data_dir.clone().unwrap_or_else(|| temp.path().to_owned());
        self.config.validate().expect("test config is valid");
        let shutdown = CancellationToken::new();
        let node = AllInOne::start(self.config.clone(), shutdown.clone()).await.expect("node starts");
        let addresses = node.addresses();
        let storage = node.storage().clone();
        let task = tokio::spawn(node.run());
        TestNode {
            addresses,
            storage,
            shutdown,
            task: Some(task),
            _temp: temp,
            http: skein_bench::client::http_client(),
        }
    }
}

/// A running in-process node.
pub struct TestNode {
    pub addresses: Addresses,
    pub storage: Arc<Storage>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _temp: TempDir,
    pub http: reqwest::Client,
}

impl TestNode {
    pub fn otlp_http(&self) -> String {
        format!("http://{}", self.addresses.otlp_http)
    }

    pub fn otlp_grpc(&self) -> String {
        format!("http://{}", self.addresses.otlp_grpc)
    }

    pub fn query(&self) -> String {
        format!("http://{}", self.addresses.query)
    }

    /// Forces every shard's buffer into Parquet.
    pub async fn flush(&self) {
        self.storage.flush_all().await.expect("flush succeeds");
    }

    /// POSTs an OTLP/JSON export request; returns status and body.
    pub async fn post_otlp_json(&self, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/traces", self.otlp_http()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Runs SQL and returns the JSON result; panics unless it succeeds.
    pub async fn sql(&self, sql: &str) -> Value {
        let (status, body) = self.sql_status(sql).await;
        assert_eq!(status, 200, "sql {sql:?} failed: {body}");
        body
    }

    pub async fn sql_status(&self, sql: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1/sql", self.query()))
            .json(&serde_json::json!({ "sql": sql }))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }

    /// Runs SQL and returns the result as Arrow record batches (the exact
    /// stored types, for lossless comparisons).
    pub async fn sql_arrow(&self, sql: &str) -> Vec<RecordBatch> {
        let response = self
            .http
            .post(format!("{}/api/v1/sql?format=arrow", self.query()))
            .json(&serde_json::json!({ "sql": sql }))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("body");
        assert_eq!(status, 200, "sql {sql:?} failed: {}", String::from_utf8_lossy(&body));
        let reader = StreamReader::try_new(std::io::Cursor::new(body), None).expect("arrow ipc stream");
        reader.collect::<Result<Vec<_>, _>>().expect("arrow batches")
    }

    /// A single number from `SELECT count(*) ...`-style SQL.
    pub async fn sql_count(&self, sql: &str) -> i64 {
        let body = self.sql(sql).await;
        body["rows"][0][0].as_i64().unwrap_or_else(|| panic!("no count in {body}"))
    }

    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = self.http.get(format!("{}{path_and_query}", self.query())).send().await.expect("sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn trace(&self, trace_id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/traces/{trace_id}")).await;
        assert_eq!(status, 200, "trace {trace_id}: {body}");
        body
    }

    /// Stops the node the way SIGTERM does and waits for the flush.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("node task").expect("clean shutdown");
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The workspace root (tests/ lives directly under it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("skein/ has a parent").to_owned()
}

/// Reads a golden file, or rewrites it when `UPDATE_GOLDEN=1`.
pub fn assert_golden(name: &str, actual: &Value) {
    let path = workspace_root().join("tests/golden").join(name);
    let pretty = serde_json::to_string_pretty(actual).expect("serializable") + "\n";
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("golden dir");
        std::fs::write(&path, &pretty).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("golden file {} missing ({e}); run with UPDATE_GOLDEN=1", path.display()));
    let expected: Value = serde_json::from_str(&expected).expect("golden is JSON");
    assert_eq!(actual, &expected, "{} differs; actual:\n{pretty}", path.display());
}

/// `count` distinct loopback ports, free right now, for a process that
/// must be told its ports before it starts (SeaweedFS; cluster members that
/// must know each other's addresses). Chosen ports are released before the
/// process binds them, so they come from below the kernel's ephemeral
/// range, where no concurrent test's port-0 bind can be handed one
/// meanwhile, and from a counter, so two callers in this process never
/// share one.
pub fn free_loopback_ports(count: usize) -> Vec<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    // Spread concurrent test runs on one machine apart.
    let base = 20_000 + (std::process::id() % 400) as u16 * 20;
    let mut held = Vec::with_capacity(count);
    while held.len() < count {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(port < ephemeral_low, "no free port left below the ephemeral range ({ephemeral_low})");
        // Held until all are chosen, so they are distinct.
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    held.iter().map(|l| l.local_addr().expect("local addr").port()).collect()
}
