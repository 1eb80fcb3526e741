//! The OTLP/gRPC receivers (`TraceService/Export`, `MetricsService/Export`).
//!
//! [`GrpcEndpoint`] wraps one of tonic's generated services (one per
//! signal, all on the same server): it admits the request
//! (the concurrency limit shared with HTTP) *before* tonic reads and decodes
//! the message, and it corrects the status of requests tonic could not
//! decode. Tonic reports a malformed message or bad gzip as INTERNAL and an
//! oversized one as OUT_OF_RANGE or RESOURCE_EXHAUSTED; OTLP clients would
//! retry the latter forever, so they become INVALID_ARGUMENT (bad data).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use tokio::sync::OwnedSemaphorePermit;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

use crate::CollectorError;
use crate::ingest::Ingest;
use crate::metrics::Transport;
use crate::signal::{Metrics, Signal, SignalKind, Traces};

/// Travels with an admitted request (in its extensions): holds the
/// concurrency permit until the request is done and records whether the
/// handler ran, i.e. whether tonic decoded the message.
#[derive(Clone)]
struct Admission(Arc<AdmissionInner>);

struct AdmissionInner {
    _permit: OwnedSemaphorePermit,
    handled: AtomicBool,
}

/// The service implementation behind tonic's generated server for signal `S`.
pub(crate) struct Receiver<S> {
    ingest: Arc<Ingest>,
    signal: PhantomData<fn() -> S>,
}

impl<S: Signal> Receiver<S> {
    fn new(ingest: Arc<Ingest>) -> Self {
        Self { ingest, signal: PhantomData }
    }

    async fn export(&self, request: tonic::Request<S::Request>) -> Result<tonic::Response<S::Response>, Status> {
        let (_metadata, extensions, message) = request.into_parts();
        if let Some(admission) = extensions.get::<Admission>() {
            admission.0.handled.store(true, Ordering::Relaxed);
        }
        self.ingest.metrics().observe_body(S::KIND, Transport::Grpc, message.encoded_len());
        let result = self.ingest.export::<S>(Transport::Grpc, message).await;
        // The permit (in the extensions) is held until the write is done.
        drop(extensions);
        match result {
            Ok(response) => Ok(tonic::Response::new(response)),
            Err(error) => {
                self.ingest.failed(S::KIND, Transport::Grpc, &error);
                Err(error.to_grpc_status())
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for Receiver<Traces> {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        Receiver::export(self, request).await
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver<Metrics> {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        Receiver::export(self, request).await
    }
}

/// One of tonic's generated services with admission control and
/// decode-error mapping.
#[derive(Clone)]
pub(crate) struct GrpcEndpoint<T> {
    inner: T,
    signal: SignalKind,
    ingest: Arc<Ingest>,
    max_request_bytes: usize,
}

/// Tonic's settings for every OTLP service: gzip both ways, and the
/// message size limit.
macro_rules! otlp_service {
    ($server:ident, $ingest:expr, $max_request_bytes:expr) => {
        $server::new(Receiver::new(Arc::clone($ingest)))
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size($max_request_bytes)
    };
}

impl GrpcEndpoint<TraceServiceServer<Receiver<Traces>>> {
    pub(crate) fn traces(ingest: Arc<Ingest>, max_request_bytes: usize) -> Self {
        let inner = otlp_service!(TraceServiceServer, &ingest, max_request_bytes);
        Self { inner, signal: SignalKind::Traces, ingest, max_request_bytes }
    }
}

impl GrpcEndpoint<MetricsServiceServer<Receiver<Metrics>>> {
    pub(crate) fn metrics(ingest: Arc<Ingest>, max_request_bytes: usize) -> Self {
        let inner = otlp_service!(MetricsServiceServer, &ingest, max_request_bytes);
        Self { inner, signal: SignalKind::Metrics, ingest, max_request_bytes }
    }
}

impl<T: NamedService> NamedService for GrpcEndpoint<T> {
    const NAME: &'static str = T::NAME;
}

impl<T> Service<http::Request<tonic::body::Body>> for GrpcEndpoint<T>
where
    T: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    T::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let signal = self.signal;
        let permit = match self.ingest.try_acquire() {
            Ok(permit) => permit,
            Err(error) => {
                self.ingest.failed(signal, Transport::Grpc, &error);
                return Box::pin(std::future::ready(Ok(error.to_grpc_status().into_http())));
            }
        };
        let admission = Admission(Arc::new(AdmissionInner { _permit: permit, handled: AtomicBool::new(false) }));
        request.extensions_mut().insert(admission.clone());
        let mut inner = self.inner.clone();
        let ingest = Arc::clone(&self.ingest);
        let limit = self.max_request_bytes;
        Box::pin(async move {
            let response = inner.call(request).await?;
            if admission.0.handled.load(Ordering::Relaxed) {
                return Ok(response);
            }
            Ok(correct_decode_failure(response, signal, &ingest, limit))
        })
    }
}

/// Rewrites the status of a request that failed before the handler ran.
fn correct_decode_failure(
    response: http::Response<tonic::body::Body>,
    signal: SignalKind,
    ingest: &Ingest,
    limit: usize,
) -> http::Response<tonic::body::Body> {
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    let error = match status.code() {
        Code::OutOfRange | Code::ResourceExhausted => CollectorError::PayloadTooLarge { limit },
        Code::Internal => CollectorError::InvalidRequest(format!("invalid export request: {}", status.message())),
        _ => return response,
    };
    ingest.failed(signal, Transport::Grpc, &error);
    error.to_grpc_status().into_http()
}
