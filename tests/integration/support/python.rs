//! The Python OpenTelemetry SDK, used as a real client.
//!
//! `SKEIN_TEST_PYTHON` names a Python with the packages of
//! tests/python/requirements.txt (CI sets it). Without it, the harness makes
//! `.venv` at the workspace root once and installs them there, so a plain
//! `cargo test` works on a fresh machine with Python 3 and network access
//! to PyPI.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

use super::workspace_root;

pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("SKEIN_TEST_PYTHON") {
                return PathBuf::from(path);
            }
            let root = workspace_root();
            let venv = root.join(".venv");
            let python = venv.join("bin/python");
            let requirements = root.join("tests/python/requirements.txt");
            let wanted = std::fs::read_to_string(&requirements).expect("requirements.txt");
            let stamp = venv.join(".skein-requirements");
            if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
                return python;
            }
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
            run(Command::new(&python).args(["-m", "pip", "install", "-q", "-r"]).arg(&requirements));
            std::fs::write(&stamp, wanted).expect("write venv stamp");
            python
        })
        .clone()
}

fn run(command: &mut Command) {
    let status = command.status().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(status.success(), "{command:?} failed with {status}");
}

/// Runs tests/python/send_traces.py and returns the spans the SDK recorded.
pub fn send_traces(endpoint: &str, protocol: &str, service: &str, traces: usize) -> Vec<serde_json::Value> {
    send_traces_with_env(endpoint, protocol, service, traces, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// As [`send_traces`], with extra environment for the SDK (its
/// `OTEL_EXPORTER_OTLP_*` settings); an export failure is an `Err` with
/// the script's stderr.
pub fn send_traces_with_env(
    endpoint: &str,
    protocol: &str,
    service: &str,
    traces: usize,
    env: &[(&str, &str)],
) -> Result<Vec<serde_json::Value>, String> {
    let script = workspace_root().join("tests/python/send_traces.py");
    let mut command = Command::new(python());
    command
        .arg(script)
        .args(["--endpoint", endpoint, "--protocol", protocol, "--service", service])
        .args(["--traces", &traces.to_string()])
        .envs(env.iter().copied());
    if env.iter().any(|(key, _)| *key == "OTEL_EXPORTER_OTLP_CERTIFICATE") {
        // `requests` lets these override the CA the SDK sets on its session.
        command.env_remove("REQUESTS_CA_BUNDLE").env_remove("CURL_CA_BUNDLE");
    }
    let output = command.output().expect("python runs");
    if !output.status.success() {
        return Err(format!("send_traces.py failed: {}\n{}", output.status, String::from_utf8_lossy(&output.stderr)));
    }
    Ok(serde_json::from_slice(&output.stdout).expect("script prints JSON spans"))
}

/// Runs tests/python/send_metrics.py and returns every export request the
/// SDK sent, decoded from the SDK's own OTLP encoding.
pub fn send_metrics(
    endpoint: &str,
    protocol: &str,
    temporality: &str,
    service: &str,
) -> Vec<ExportMetricsServiceRequest> {
    let script = workspace_root().join("tests/python/send_metrics.py");
    let output = Command::new(python())
        .arg(script)
        .args(["--endpoint", endpoint, "--protocol", protocol, "--temporality", temporality, "--service", service])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "send_metrics.py failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let bodies: Vec<String> = serde_json::from_slice(&output.stdout).expect("script prints a JSON list");
    bodies
        .iter()
        .map(|hex| {
            let bytes = const_hex::decode(hex).expect("hex protobuf");
            ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("SDK request decodes")
        })
        .collect()
}

/// Runs tests/python/query_prometheus.py (the `prometheus-api-client`
/// package against Skein's Prometheus API) and returns what it printed.
pub fn query_prometheus(url: &str, job: &str) -> serde_json::Value {
    let script = workspace_root().join("tests/python/query_prometheus.py");
    let output = Command::new(python()).arg(script).args(["--url", url, "--job", job]).output().expect("python runs");
    assert!(
        output.status.success(),
        "query_prometheus.py failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("script prints JSON")
}

/// What tests/python/send_logs.py sent and logged.
pub struct SentLogs {
    /// Every logs export the SDK made, decoded from its own OTLP encoding.
    pub requests: Vec<ExportLogsServiceRequest>,
    /// The trace (and span) the in-span records carry.
    pub trace_id: String,
    pub span_id: String,
    /// The body of the ERROR record (inside the span).
    pub error_body: String,
    pub service: String,
    pub count: usize,
}

/// Runs tests/python/send_logs.py: logs through Python's `logging` and the
/// Logs API, plus the trace the records belong to.
pub fn send_logs(endpoint: &str, protocol: &str, service: &str) -> SentLogs {
    let script = workspace_root().join("tests/python/send_logs.py");
    let output = Command::new(python())
        .arg(script)
        .args(["--endpoint", endpoint, "--protocol", protocol, "--service", service])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "send_logs.py failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("script prints JSON");
    let text = |key: &str| printed[key].as_str().expect("a string field").to_owned();
    let requests = super::logs::decode_hex_requests(&printed["requests"]);
    SentLogs {
        requests,
        trace_id: text("traceId"),
        span_id: text("spanId"),
        error_body: text("errorBody"),
        service: text("service"),
        count: printed["count"].as_u64().expect("count") as usize,
    }
}
