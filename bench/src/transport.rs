//! Plain OTLP exporters over one connection each: gRPC (a unary
//! `TraceService/Export` or `MetricsService/Export` call whose body is the
//! pre-encoded request) or HTTP (`POST /v1/traces` or `/v1/metrics`,
//! `application/x-protobuf`). Any OTLP backend can be the target, not only
//! Skein. Only the paths and the partial-success field depend on the
//! [`Signal`].

use std::error::Error as _;
use std::time::Duration;

use crate::error::{Context, bail};
use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

use super::signal::Signal;
use crate::client::ClientSecurity;

/// Which OTLP transport to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OTLP/gRPC (default port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    Http,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        }
    }

    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://127.0.0.1:4317",
            Protocol::Http => "http://127.0.0.1:4318",
        }
    }
}

/// How one export ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged; `rejected` items were refused (OTLP partial success).
    Accepted { rejected: u64 },
    /// Not acknowledged. `kind` names the failure (`http_503`,
    /// `grpc_resource_exhausted`, `transport`, `timeout`); `retry_after` is
    /// the server's hint, if it gave one.
    Failed { kind: String, retry_after: Option<Duration> },
}

/// One connection to the target, exporting one signal.
pub struct Exporter {
    signal: Signal,
    transport: Transport,
}

enum Transport {
    /// The channel and the `authorization` metadata to send, if any.
    Grpc(tonic::client::Grpc<Channel>, Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>),
    Http {
        client: reqwest::Client,
        url: String,
    },
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The URL requests go to: gRPC uses the endpoint as given; HTTP appends the
/// signal's OTLP path (`/v1/traces`, `/v1/metrics`) unless the endpoint
/// already has a path.
pub fn target_url(protocol: Protocol, signal: Signal, endpoint: &str) -> crate::Result<String> {
    let uri: http::Uri = endpoint.parse().with_context(|| format!("endpoint {endpoint:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => bail!("endpoint {endpoint:?} must start with http:// or https:// (e.g. {})", protocol.default_endpoint()),
    }
    if uri.host().is_none() {
        bail!("endpoint {endpoint:?} has no host");
    }
    let base = endpoint.trim_end_matches('/');
    Ok(match (protocol, uri.path()) {
        (Protocol::Http, "" | "/") => format!("{base}{}", signal.http_path()),
        _ => base.to_owned(),
    })
}

impl Exporter {
    /// Opens the connection (eagerly for gRPC, so a wrong endpoint fails
    /// before the clock starts). `timeout` bounds every export.
    pub async fn connect(
        protocol: Protocol,
        signal: Signal,
        url: &str,
        timeout: Duration,
        security: &ClientSecurity,
    ) -> crate::Result<Self> {
        let transport = match protocol {
            Protocol::Grpc => {
                let channel = security
                    .grpc_channel(url, |endpoint: Endpoint| {
                        endpoint.connect_timeout(CONNECT_TIMEOUT).timeout(timeout).tcp_nodelay(true)
                    })
                    .await
                    .with_context(|| format!("cannot connect to the OTLP/gRPC endpoint {url}"))?;
                let authorization = security
                    .authorization()
                    .map(|value| tonic::metadata::MetadataValue::try_from(value.as_str()))
                    .transpose()
                    .context("--token is not a valid gRPC metadata value")?;
                Transport::Grpc(tonic::client::Grpc::new(channel), authorization)
            }
            Protocol::Http => {
                let builder = crate::client::http_client_builder()
                    .no_proxy()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .timeout(timeout)
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true);
                Transport::Http { client: security.http_client(builder)?, url: url.to_owned() }
            }
        };
        Ok(Self { signal, transport })
    }

    /// Sends one pre-encoded export request of the exporter's signal.
    pub async fn export(&mut self, body: Bytes) -> Outcome {
        match &mut self.transport {
            Transport::Grpc(grpc, authorization) => export_grpc(grpc, authorization.as_ref(), self.signal, body).await,
            Transport::Http { client, url } => export_http(client, self.signal, url, body).await,
        }
    }
}

async fn export_grpc(
    grpc: &mut tonic::client::Grpc<Channel>,
    authorization: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    signal: Signal,
    body: Bytes,
) -> Outcome {
    if grpc.ready().await.is_err() {
        return Outcome::Failed { kind: "transport".into(), retry_after: None };
    }
    let path = http::uri::PathAndQuery::from_static(signal.grpc_path());
    let mut request = tonic::Request::new(body);
    if let Some(value) = authorization {
        request.metadata_mut().insert("authorization", value.clone());
    }
    match grpc.unary(request, path, RawCodec).await {
        Ok(response) => Outcome::Accepted { rejected: signal.rejected_items(response.get_ref()) },
        Err(status) => Outcome::Failed {
            kind: grpc_failure_kind(&status),
            retry_after: status.get_details_retry_info().and_then(|info| info.retry_delay),
        },
    }
}

/// A status the server sent has no source error; one made by the client
/// from a connection or protocol error does.
fn grpc_failure_kind(status: &tonic::Status) -> String {
    if status.source().is_some() {
        return if status.code() == tonic::Code::Cancelled { "timeout".into() } else { "transport".into() };
    }
    format!("grpc_{}", snake_case(&format!("{:?}", status.code())))
}

async fn export_http(client: &reqwest::Client, signal: Signal, url: &str, body: Bytes) -> Outcome {
    let sent = client.post(url).header(http::header::CONTENT_TYPE, "application/x-protobuf").body(body).send().await;
    let response = match sent {
        Ok(response) => response,
        Err(err) => return Outcome::Failed { kind: reqwest_kind(&err), retry_after: None },
    };
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Outcome::Failed { kind: format!("http_{}", status.as_u16()), retry_after };
    }
    match response.bytes().await {
        // An empty or non-protobuf body still acknowledges the whole request.
        Ok(body) => Outcome::Accepted { rejected: signal.rejected_items(&body) },
        Err(err) => Outcome::Failed { kind: reqwest_kind(&err), retry_after: None },
    }
}

fn reqwest_kind(err: &reqwest::Error) -> String {
    if err.is_timeout() { "timeout".into() } else { "transport".into() }
}

/// `ResourceExhausted` → `resource_exhausted`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Sends already-encoded request bytes and hands back the response's bytes
/// (decoded by [`Signal::rejected_items`]), so one codec serves every signal.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.reserve(item.len());
        dst.put_slice(&item);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct ResponseDecoder;

impl Decoder for ResponseDecoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    use prost::Message;

    use super::*;
    use crate::metrics_workload::MetricsPlan;
    use crate::pool::Pool;

    /// The generated OTLP metrics service, recording what it decodes and
    /// refusing one point per request.
    #[derive(Default)]
    struct Recorder(Arc<Mutex<Vec<ExportMetricsServiceRequest>>>);

    #[tonic::async_trait]
    impl MetricsService for Recorder {
        async fn export(
            &self,
            request: tonic::Request<ExportMetricsServiceRequest>,
        ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
            self.0.lock().map_err(|_| tonic::Status::internal("poisoned"))?.push(request.into_inner());
            let partial_success =
                Some(ExportMetricsPartialSuccess { rejected_data_points: 1, error_message: "one refused".into() });
            Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success }))
        }
    }

    #[tokio::test]
    async fn pre_encoded_metrics_reach_the_generated_grpc_service() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let recorder = Recorder::default();
        let seen = recorder.0.clone();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(MetricsServiceServer::new(recorder))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let url = target_url(Protocol::Grpc, Signal::Metrics, &format!("http://{address}")).expect("url");
        let mut exporter = Exporter::connect(
            Protocol::Grpc,
            Signal::Metrics,
            &url,
            Duration::from_secs(10),
            &ClientSecurity::default(),
        )
        .await
        .expect("connects");
        let plan = MetricsPlan { seed: 1, requests: 2, points: 50, now_ns: 1_750_000_000_000_000_000, rate: None };
        let pool = Pool::metrics(&plan, 3).expect("pool");
        let (body, points) = pool.request(1, 0).expect("request");
        assert_eq!(points, 50);
        assert_eq!(exporter.export(body.clone()).await, Outcome::Accepted { rejected: 1 });
        let seen = seen.lock().expect("not poisoned").clone();
        assert_eq!(seen, vec![ExportMetricsServiceRequest::decode(body).expect("valid protobuf")]);
        server.abort();
    }

    #[test]
    fn endpoints_are_checked_and_http_gets_the_otlp_path() {
        let (traces, metrics) = (Signal::Traces, Signal::Metrics);
        assert_eq!(
            target_url(Protocol::Grpc, traces, "http://127.0.0.1:4317").ok().as_deref(),
            Some("http://127.0.0.1:4317")
        );
        assert_eq!(
            target_url(Protocol::Http, traces, "http://127.0.0.1:4318/").ok().as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            target_url(Protocol::Http, metrics, "http://127.0.0.1:4318").ok().as_deref(),
            Some("http://127.0.0.1:4318/v1/metrics")
        );
        assert_eq!(
            target_url(Protocol::Http, traces, "http://collector:4318/custom/traces").ok().as_deref(),
            Some("http://collector:4318/custom/traces")
        );
        assert_eq!(target_url(Protocol::Grpc, traces, "https://x:4317").ok().as_deref(), Some("https://x:4317"));
        let err = target_url(Protocol::Grpc, metrics, "grpc://x:4317").expect_err("scheme refused");
        assert!(err.to_string().contains("http://"), "{err}");
        assert!(target_url(Protocol::Http, traces, "not a url").is_err());
    }

    #[test]
    fn grpc_codes_become_snake_case_kinds() {
        assert_eq!(grpc_failure_kind(&tonic::Status::resource_exhausted("busy")), "grpc_resource_exhausted");
        assert_eq!(grpc_failure_kind(&tonic::Status::unavailable("down")), "grpc_unavailable");
        assert_eq!(grpc_failure_kind(&tonic::Status::invalid_argument("bad")), "grpc_invalid_argument");
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(grpc_failure_kind(&tonic::Status::from_error(Box::new(io))), "transport");
    }
}
