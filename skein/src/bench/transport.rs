//! Plain OTLP exporters over one connection each: gRPC (a unary
//! `TraceService/Export` call whose body is the pre-encoded request) or
//! HTTP (`POST /v1/traces`, `application/x-protobuf`). Any OTLP backend
//! can be the target, not only Skein.

use std::error::Error as _;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

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
    /// Acknowledged; `rejected` spans were refused (OTLP partial success).
    Accepted { rejected: u64 },
    /// Not acknowledged. `kind` names the failure (`http_503`,
    /// `grpc_resource_exhausted`, `transport`, `timeout`); `retry_after` is
    /// the server's hint, if it gave one.
    Failed { kind: String, retry_after: Option<Duration> },
}

/// One connection to the target.
pub enum Exporter {
    Grpc(tonic::client::Grpc<Channel>),
    Http { client: reqwest::Client, url: String },
}

const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The URL requests go to: gRPC uses the endpoint as given; HTTP appends the
/// OTLP path `/v1/traces` unless the endpoint already has a path.
pub fn target_url(protocol: Protocol, endpoint: &str) -> anyhow::Result<String> {
    let uri: http::Uri = endpoint.parse().with_context(|| format!("endpoint {endpoint:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => bail!("endpoint {endpoint:?}: TLS is not supported by skein bench; use http://"),
        _ => bail!("endpoint {endpoint:?} must start with http:// (e.g. {})", protocol.default_endpoint()),
    }
    if uri.host().is_none() {
        bail!("endpoint {endpoint:?} has no host");
    }
    let base = endpoint.trim_end_matches('/');
    Ok(match (protocol, uri.path()) {
        (Protocol::Http, "" | "/") => format!("{base}/v1/traces"),
        _ => base.to_owned(),
    })
}

impl Exporter {
    /// Opens the connection (eagerly for gRPC, so a wrong endpoint fails
    /// before the clock starts). `timeout` bounds every export.
    pub async fn connect(protocol: Protocol, url: &str, timeout: Duration) -> anyhow::Result<Self> {
        match protocol {
            Protocol::Grpc => {
                let channel = Endpoint::from_shared(url.to_owned())
                    .with_context(|| format!("endpoint {url:?}"))?
                    .connect_timeout(CONNECT_TIMEOUT)
                    .timeout(timeout)
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .with_context(|| format!("cannot connect to the OTLP/gRPC endpoint {url}"))?;
                Ok(Exporter::Grpc(tonic::client::Grpc::new(channel)))
            }
            Protocol::Http => {
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .timeout(timeout)
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true)
                    .build()
                    .context("building the HTTP client")?;
                Ok(Exporter::Http { client, url: url.to_owned() })
            }
        }
    }

    /// Sends one pre-encoded `ExportTraceServiceRequest`.
    pub async fn export(&mut self, body: Bytes) -> Outcome {
        match self {
            Exporter::Grpc(grpc) => export_grpc(grpc, body).await,
            Exporter::Http { client, url } => export_http(client, url, body).await,
        }
    }
}

async fn export_grpc(grpc: &mut tonic::client::Grpc<Channel>, body: Bytes) -> Outcome {
    if grpc.ready().await.is_err() {
        return Outcome::Failed { kind: "transport".into(), retry_after: None };
    }
    let path = http::uri::PathAndQuery::from_static(GRPC_PATH);
    match grpc.unary(tonic::Request::new(body), path, RawCodec).await {
        Ok(response) => Outcome::Accepted { rejected: rejected_spans(response.get_ref()) },
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

async fn export_http(client: &reqwest::Client, url: &str, body: Bytes) -> Outcome {
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
        Ok(body) => Outcome::Accepted {
            rejected: ExportTraceServiceResponse::decode(body).map(|r| rejected_spans(&r)).unwrap_or(0),
        },
        Err(err) => Outcome::Failed { kind: reqwest_kind(&err), retry_after: None },
    }
}

fn reqwest_kind(err: &reqwest::Error) -> String {
    if err.is_timeout() { "timeout".into() } else { "transport".into() }
}

fn rejected_spans(response: &ExportTraceServiceResponse) -> u64 {
    response.partial_success.as_ref().map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
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

/// Sends already-encoded request bytes; decodes the response with prost.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
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
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("bad ExportTraceServiceResponse: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_and_http_gets_the_otlp_path() {
        assert_eq!(target_url(Protocol::Grpc, "http://127.0.0.1:4317").ok().as_deref(), Some("http://127.0.0.1:4317"));
        assert_eq!(
            target_url(Protocol::Http, "http://127.0.0.1:4318/").ok().as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            target_url(Protocol::Http, "http://collector:4318/custom/traces").ok().as_deref(),
            Some("http://collector:4318/custom/traces")
        );
        let err = target_url(Protocol::Grpc, "https://x:4317").expect_err("tls refused");
        assert!(err.to_string().contains("TLS"), "{err}");
        let err = target_url(Protocol::Grpc, "grpc://x:4317").expect_err("scheme refused");
        assert!(err.to_string().contains("http://"), "{err}");
        assert!(target_url(Protocol::Http, "not a url").is_err());
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
