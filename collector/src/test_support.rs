//! Test doubles and helpers: a recording `ShardWriter` that can fail or
//! hold writes on demand, request builders, a running server, and a tiny
//! HTTP/1.1 client that sends exactly the bytes a test asks for.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prometheus_client::registry::Registry;
use skein_model::{RecordBatch, ShardWriter, Signal, SpanRecord, WriteError, WriteReceipt, records_from_batch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{CollectorConfig, CollectorError, CollectorServer};

/// The limit servers in tests run with, small enough to exceed cheaply.
pub(crate) const TEST_MAX_REQUEST_BYTES: usize = 64 * 1024;
pub(crate) const TEST_MAX_VALUE_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Overloaded,
    Unavailable,
    Internal,
}

/// Holds writes until released, and tells the test when one is waiting.
struct Gate {
    entered: Semaphore,
    release: Semaphore,
}

/// A `ShardWriter` that keeps every batch in memory, each signal apart.
pub(crate) struct TestWriter {
    shards: usize,
    spans: Mutex<Vec<(usize, RecordBatch)>>,
    metrics: Mutex<Vec<(usize, RecordBatch)>>,
    logs: Mutex<Vec<(usize, RecordBatch)>>,
    failure: Mutex<Option<Failure>>,
    /// Spans of one trace stored at most (storage's trace size limit); the
    /// rest are refused in the receipt.
    max_spans_per_trace: Mutex<Option<usize>>,
    calls: AtomicUsize,
    gate: Option<Gate>,
}

impl TestWriter {
    pub(crate) fn new(shards: usize) -> Arc<Self> {
        Arc::new(Self::build(shards, None))
    }

    /// A writer whose writes wait for [`TestWriter::release`].
    pub(crate) fn gated(shards: usize) -> Arc<Self> {
        Arc::new(Self::build(shards, Some(Gate { entered: Semaphore::new(0), release: Semaphore::new(0) })))
    }

    fn build(shards: usize, gate: Option<Gate>) -> Self {
        Self {
            shards,
            spans: Mutex::default(),
            metrics: Mutex::default(),
            logs: Mutex::default(),
            failure: Mutex::default(),
            max_spans_per_trace: Mutex::default(),
            calls: AtomicUsize::new(0),
            gate,
        }
    }

    pub(crate) fn fail_with(&self, failure: Option<Failure>) {
        *self.failure.lock().expect("test writer lock") = failure;
    }

    /// Refuses spans past `max` per trace (over all writes), as storage's
    /// `max_spans_per_trace` does, and reports them in the receipt.
    pub(crate) fn limit_spans_per_trace(&self, max: usize) {
        *self.max_spans_per_trace.lock().expect("test writer lock") = Some(max);
    }

    /// Waits until a write is held at the gate.
    pub(crate) async fn wait_for_held_write(&self) {
        let gate = self.gate.as_ref().expect("writer is gated");
        gate.entered.acquire().await.expect("gate semaphore open").forget();
    }

    /// Lets `n` held (or future) writes through.
    pub(crate) fn release(&self, n: usize) {
        self.gate.as_ref().expect("writer is gated").release.add_permits(n);
    }

    /// Span batches written, with their shards.
    pub(crate) fn batches(&self) -> Vec<(usize, RecordBatch)> {
        self.spans.lock().expect("test writer lock").clone()
    }

    /// Metric point batches written, with their shards.
    pub(crate) fn metric_batches(&self) -> Vec<(usize, RecordBatch)> {
        self.metrics.lock().expect("test writer lock").clone()
    }

    /// Log record batches written, with their shards.
    pub(crate) fn log_batches(&self) -> Vec<(usize, RecordBatch)> {
        self.logs.lock().expect("test writer lock").clone()
    }

    pub(crate) fn point_count(&self) -> usize {
        self.metric_batches().iter().map(|(_, b)| b.num_rows()).sum()
    }

    pub(crate) fn records(&self) -> Vec<SpanRecord> {
        self.batches()
            .iter()
            .flat_map(|(_, batch)| records_from_batch(batch).expect("stored batch converts back"))
            .collect()
    }

    pub(crate) fn span_count(&self) -> usize {
        self.batches().iter().map(|(_, b)| b.num_rows()).sum()
    }

    pub(crate) fn write_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl ShardWriter for TestWriter {
    fn shard_count(&self) -> usize {
        self.shards
    }

    async fn write(&self, signal: Signal, shard: usize, batch: RecordBatch) -> Result<WriteReceipt, WriteError> {
        self.write_table(signal, shard, batch).await
    }
}

impl TestWriter {
    async fn write_table(&self, signal: Signal, shard: usize, batch: RecordBatch) -> Result<WriteReceipt, WriteError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.entered.add_permits(1);
            gate.release.acquire().await.expect("gate semaphore open").forget();
        }
        if shard >= self.shards {
            return Err(WriteError::NoSuchShard(shard));
        }
        let failure = *self.failure.lock().expect("test writer lock");
        match failure {
            Some(Failure::Overloaded) => Err(WriteError::Overloaded { retry_after: Duration::from_secs(2) }),
            Some(Failure::Unavailable) => Err(WriteError::Unavailable {
                reason: "shard is recovering".into(),
                retry_after: Duration::from_secs(3),
            }),
            Some(Failure::Internal) => Err(WriteError::Internal("disk on fire".into())),
            None => {
                let (batch, receipt) = match *self.max_spans_per_trace.lock().expect("test writer lock") {
                    Some(max) if signal == Signal::Spans => self.cut_traces(batch, max),
                    _ => (batch, WriteReceipt::STORED),
                };
                let batches = match signal {
                    Signal::Spans => &self.spans,
                    Signal::Metrics => &self.metrics,
                    Signal::Logs => &self.logs,
                };
                batches.lock().expect("test writer lock").push((shard, batch));
                Ok(receipt)
            }
        }
    }
}

impl TestWriter {
    /// `batch` without the spans of traces that already hold `max` spans.
    fn cut_traces(&self, batch: RecordBatch, max: usize) -> (RecordBatch, WriteReceipt) {
        let stored: Vec<Vec<u8>> = self.records().into_iter().map(|r| r.span.trace_id).collect();
        let mut counts = std::collections::HashMap::<Vec<u8>, usize>::new();
        for id in stored {
            *counts.entry(id).or_default() += 1;
        }
        let records = records_from_batch(&batch).expect("batch converts back");
        let keep: Vec<bool> = records
            .iter()
            .map(|r| {
                let count = counts.entry(r.span.trace_id.clone()).or_default();
                *count += 1;
                *count <= max
            })
            .collect();
        let refused = keep.iter().filter(|k| !**k).count() as u64;
        let kept = datafusion::arrow::compute::filter_record_batch(
            &batch,
            &datafusion::arrow::array::BooleanArray::from(keep),
        )
        .expect("filters");
        let refusal = (refused > 0).then(|| format!("trace over the limit of {max} spans"));
        (kept, WriteReceipt { refused_rows: refused, refusal })
    }
}

pub(crate) fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        key_strindex: 0,
    }
}

/// A valid span of trace `trace` (any number, never the all-zero ID).
pub(crate) fn span(trace: u64, span: u64) -> Span {
    let trace_id = (u128::from(trace) << 64 | 0x5eed).to_be_bytes().to_vec();
    Span {
        trace_id,
        span_id: (span + 1).to_be_bytes().to_vec(),
        name: format!("op-{span}"),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000 + span,
        end_time_unix_nano: 1_700_000_000_500_000_000 + span,
        attributes: vec![string_attr("http.method", "GET")],
        ..Default::default()
    }
}

pub(crate) fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", "checkout")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "test".into(), version: "1.0".into(), ..Default::default() }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// `n` valid spans, each in its own trace.
pub(crate) fn spans_request(n: u64) -> ExportTraceServiceRequest {
    request((0..n).map(|i| span(i, i)).collect())
}

/// A request whose span has one highly compressible attribute value of
/// `len` bytes: tiny when gzipped, large when decoded.
pub(crate) fn bomb_request(len: usize) -> ExportTraceServiceRequest {
    let mut bomb = span(1, 1);
    bomb.attributes.push(string_attr("payload", &"0".repeat(len)));
    request(vec![bomb])
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// A collector serving on loopback ports.
pub(crate) struct Running {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub registry: Registry,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), CollectorError>>,
}

impl Running {
    pub(crate) async fn start(writer: Arc<dyn ShardWriter>) -> Self {
        Self::start_with(writer, |_| {}).await
    }

    pub(crate) async fn start_with(writer: Arc<dyn ShardWriter>, edit: impl FnOnce(&mut CollectorConfig)) -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = CollectorConfig {
            grpc_listen: loopback,
            http_listen: loopback,
            max_request_bytes: TEST_MAX_REQUEST_BYTES,
            max_attribute_value_bytes: TEST_MAX_VALUE_BYTES,
            ..CollectorConfig::default()
        };
        edit(&mut config);
        let mut registry = Registry::default();
        let server = CollectorServer::bind(config, writer, &mut registry).await.expect("collector binds");
        let (grpc, http) = (server.grpc_addr(), server.http_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        Self { grpc, http, registry, shutdown, task }
    }

    pub(crate) fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub(crate) fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("encode metrics");
        text
    }

    /// Begins shutdown without waiting for it.
    pub(crate) fn begin_stop(&self) {
        self.shutdown.cancel();
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("collector task").expect("collector stops cleanly");
    }
}

#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `google.rpc.Status` of a JSON error body.
    pub(crate) fn json_status(&self) -> (i64, String) {
        let value: serde_json::Value = serde_json::from_slice(&self.body).expect("json error body");
        let code = value["code"].as_i64().expect("status code");
        let message = value["message"].as_str().expect("status message").to_owned();
        (code, message)
    }
}

/// Sends `raw` (a complete HTTP/1.1 request, or a deliberately partial one)
/// and reads the response until the server closes the connection.
pub(crate) async fn http_raw(addr: SocketAddr, raw: &[u8]) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect to http port");
    stream.write_all(raw).await.expect("send request");
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.expect("read response");
    parse_response(&received)
}

/// POSTs `body` with the given extra headers (`Content-Length` is added).
pub(crate) async fn http_post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let mut raw =
        format!("POST {path} HTTP/1.1\r\nHost: collector\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    http_raw(addr, &raw).await
}

pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_raw(addr, format!("GET {path} HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n").as_bytes()).await
}

pub(crate) fn parse_response(bytes: &[u8]) -> HttpResponse {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("response has a header section");
    let head = std::str::from_utf8(&bytes[..split]).expect("ascii response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let response = HttpResponse { status, headers, body: bytes[split + 4..].to_vec() };
    assert_ne!(response.header("transfer-encoding"), Some("chunked"), "test client reads only sized bodies");
    if let Some(len) = response.header("content-length") {
        assert_eq!(len.parse::<usize>().expect("numeric content-length"), response.body.len(), "whole body read");
    }
    response
}
