//! OTLP/HTTP requests through the collector's real routes (body limits,
//! gzip, protobuf and JSON decoding, Zipkin, validation, sharding) into a
//! writer that checks every batch it is handed. Malformed input must get a
//! 4xx, never a 5xx or a panic.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flate2::Compression;
use flate2::write::GzEncoder;
use prometheus_client::registry::Registry;
use prost::Message;
use skein_collector::{CollectorConfig, CollectorServer};
use skein_model::{RecordBatch, ShardWriter, Signal, WriteError, WriteReceipt};
use tokio::runtime::Runtime;
use tower::ServiceExt;

use crate::fixtures;

const SHARDS: usize = 8;

/// Accepts every batch after checking it is one the storage would take.
struct CheckingWriter;

#[async_trait]
impl ShardWriter for CheckingWriter {
    fn shard_count(&self) -> usize {
        SHARDS
    }

    async fn write(&self, signal: Signal, shard: usize, batch: RecordBatch) -> Result<WriteReceipt, WriteError> {
        assert!(shard < SHARDS, "a {signal} batch for shard {shard} of {SHARDS}");
        assert_eq!(batch.schema(), signal.schema(), "a {signal} batch not in the {signal} schema");
        assert!(batch.num_rows() > 0, "an empty {signal} batch was written");
        Ok(WriteReceipt::STORED)
    }
}

struct Collector {
    runtime: Runtime,
    router: Router,
}

fn collector() -> &'static Collector {
    static COLLECTOR: OnceLock<Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let runtime = crate::runtime();
        let config = CollectorConfig {
            grpc_listen: "127.0.0.1:0".parse().expect("address"),
            http_listen: "127.0.0.1:0".parse().expect("address"),
            // Small, so the fuzzer reaches the limits (compressed and not).
            max_request_bytes: 64 * 1024,
            max_attribute_value_bytes: 16,
            zipkin_enabled: true,
            ..CollectorConfig::default()
        };
        let router = runtime.block_on(async {
            let server = CollectorServer::bind(config, Arc::new(CheckingWriter), &mut Registry::default())
                .await
                .expect("collector binds on loopback");
            server.http_router().expect("collector routes")
        });
        Collector { runtime, router }
    })
}

/// How the first input byte frames the rest as a request.
#[derive(Debug, Clone, Copy)]
struct Framing(u8);

impl Framing {
    const PATHS: [&'static str; 4] = ["/v1/traces", "/v1/metrics", "/v1/logs", "/api/v2/spans"];

    fn path(self) -> &'static str {
        Self::PATHS[usize::from(self.0 & 0b11)]
    }

    fn json(self) -> bool {
        self.0 & 0b100 != 0 || self.path() == "/api/v2/spans"
    }

    /// Send the body gzipped (the decoder then sees the fuzzed bytes).
    fn gzip(self) -> bool {
        self.0 & 0b1000 != 0
    }

    /// Claim gzip but send the bytes as they are (fuzzes the gunzip).
    fn claims_gzip(self) -> bool {
        self.0 & 0b1_0000 != 0
    }

    fn byte(path: usize, json: bool, gzip: bool) -> u8 {
        path as u8 | if json { 0b100 } else { 0 } | if gzip { 0b1000 } else { 0 }
    }
}

pub fn otlp_http(data: &[u8]) {
    if let Some((framing, status)) = respond(data) {
        assert!(status.is_success() || status.is_client_error(), "{framing:?} {}: answered {status}", framing.path());
    }
}

/// The collector's answer to `data` framed as a request.
fn respond(data: &[u8]) -> Option<(Framing, StatusCode)> {
    let (&first, body) = data.split_first()?;
    let framing = Framing(first);
    let mut request = Request::post(framing.path())
        .header(header::CONTENT_TYPE, if framing.json() { "application/json" } else { "application/x-protobuf" });
    let body = if framing.gzip() {
        request = request.header(header::CONTENT_ENCODING, "gzip");
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(body).expect("gzip into memory");
        encoder.finish().expect("gzip into memory")
    } else {
        if framing.claims_gzip() {
            request = request.header(header::CONTENT_ENCODING, "gzip");
        }
        body.to_vec()
    };
    let request = request.body(Body::from(body)).expect("request");
    let collector = collector();
    let response = collector.runtime.block_on(collector.router.clone().oneshot(request)).expect("infallible");
    Some((framing, response.status()))
}

pub fn otlp_http_seeds() -> Vec<Vec<u8>> {
    let framed = |path, json, gzip, body: Vec<u8>| [vec![Framing::byte(path, json, gzip)], body].concat();
    let json = |value: serde_json::Result<Vec<u8>>| value.expect("fixtures serialize");
    let traces = fixtures::traces_request();
    let metrics = fixtures::metrics_request();
    let logs = fixtures::logs_request();
    vec![
        framed(0, false, false, traces.encode_to_vec()),
        framed(0, false, true, traces.encode_to_vec()),
        framed(0, true, false, json(serde_json::to_vec(&traces))),
        framed(1, false, false, metrics.encode_to_vec()),
        framed(1, true, true, json(serde_json::to_vec(&metrics))),
        framed(2, false, false, logs.encode_to_vec()),
        framed(2, true, false, json(serde_json::to_vec(&logs))),
        framed(3, true, false, fixtures::ZIPKIN_SPANS.as_bytes().to_vec()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Otherwise a wrong path or header would make every input a 4xx and
    /// the target would test nothing.
    #[test]
    fn every_seed_is_accepted() {
        for seed in otlp_http_seeds() {
            let (framing, status) = respond(&seed).expect("a framed seed");
            assert!(status.is_success(), "{framing:?} {}: answered {status}", framing.path());
        }
    }
}
