//! The OTLP/gRPC receivers (`TraceService/Export`, `MetricsService/Export`).
//!
//! [`GrpcEndpoint`] is one signal's gRPC service, written on tonic's server
//! machinery with a codec that hands the request over as bytes: decoding
//! happens with the conversion, off the async workers (traces straight from
//! the bytes, without copying strings). It admits the request (the
//! concurrency limit shared with HTTP) *before* tonic reads the message, and
//! it corrects the status of requests tonic could not read. Tonic reports
//! bad gzip as INTERNAL and an oversized message as OUT_OF_RANGE or
//! RESOURCE_EXHAUSTED; OTLP clients would retry the latter forever, so they
//! become INVALID_ARGUMENT (bad data).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use skein_model::security::RequestTenant;
use tokio::sync::OwnedSemaphorePermit;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Status};

use crate::CollectorError;
use crate::ingest::Ingest;
use crate::metrics::Transport;
use crate::signal::{Payload, Signal, SignalKind};
use crate::tenant_limits::tenant_of;

/// Travels with an admitted request (in its extensions): holds the
/// concurrency permit until the request is done and records whether the
/// handler ran, i.e. whether tonic could read the message.
#[derive(Clone)]
struct Admission(Arc<AdmissionInner>);

struct AdmissionInner {
    _permit: OwnedSemaphorePermit,
    handled: AtomicBool,
}

/// The `Export` method of signal `S`: the request arrives as bytes.
struct ExportMethod<S> {
    ingest: Arc<Ingest>,
    signal: PhantomData<fn() -> S>,
}

impl<S: Signal> UnaryService<Bytes> for ExportMethod<S> {
    type Response = S::Response;
    type Future = BoxFuture<tonic::Response<S::Response>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingest = Arc::clone(&self.ingest);
        Box::pin(async move {
            let (_metadata, extensions, body) = request.into_parts();
            if let Some(admission) = extensions.get::<Admission>() {
                admission.0.handled.store(true, Ordering::Relaxed);
            }
            ingest.metrics().observe_body(S::KIND, Transport::Grpc, body.len());
            let tenant = tenant_of(extensions.get::<RequestTenant>());
            let result = match ingest.admit_bytes(tenant, body.len()) {
                Ok(()) => ingest.export::<S>(Transport::Grpc, tenant, Payload::Protobuf(body)).await,
                Err(refused) => Err(refused),
            };
            // The permit (in the extensions) is held until the write is done.
            drop(extensions);
            match result {
                Ok(response) => Ok(tonic::Response::new(response)),
                Err(error) => {
                    ingest.failed(S::KIND, Transport::Grpc, &error);
                    Err(error.to_grpc_status())
                }
            }
        })
    }
}

/// Tonic codec: the request message as bytes, the response as protobuf.
struct ExportCodec<R>(PhantomData<fn() -> R>);

impl<R: prost::Message + Send + 'static> Codec for ExportCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = ResponseEncoder<R>;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesDecoder
    }
}

struct ResponseEncoder<R>(PhantomData<fn() -> R>);

impl<R: prost::Message> Encoder for ResponseEncoder<R> {
    type Item = R;
    type Error = Status;

    fn encode(&mut self, item: R, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        // Tonic hands over one whole message; taking it is zero-copy.
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One signal's OTLP/gRPC service, with admission control and
/// read-error mapping.
pub(crate) struct GrpcEndpoint<S> {
    ingest: Arc<Ingest>,
    max_request_bytes: usize,
    signal: PhantomData<fn() -> S>,
}

impl<S> Clone for GrpcEndpoint<S> {
    fn clone(&self) -> Self {
        Self { ingest: Arc::clone(&self.ingest), max_request_bytes: self.max_request_bytes, signal: PhantomData }
    }
}

impl<S: Signal> GrpcEndpoint<S> {
    pub(crate) fn new(ingest: Arc<Ingest>, max_request_bytes: usize) -> Self {
        Self { ingest, max_request_bytes, signal: PhantomData }
    }

    fn is_export(path: &str) -> bool {
        path.strip_prefix('/').and_then(|p| p.strip_prefix(S::GRPC_SERVICE)).is_some_and(|method| method == "/Export")
    }
}

impl<S: Signal> NamedService for GrpcEndpoint<S> {
    const NAME: &'static str = S::GRPC_SERVICE;
}

impl<S: Signal> Service<http::Request<tonic::body::Body>> for GrpcEndpoint<S> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        if !Self::is_export(request.uri().path()) {
            let status = Status::unimplemented(format!("{} has only the Export method", S::GRPC_SERVICE));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        let permit = match self.ingest.try_acquire() {
            Ok(permit) => permit,
            Err(error) => {
                self.ingest.failed(S::KIND, Transport::Grpc, &error);
                return Box::pin(std::future::ready(Ok(error.to_grpc_status().into_http())));
            }
        };
        let admission = Admission(Arc::new(AdmissionInner { _permit: permit, handled: AtomicBool::new(false) }));
        request.extensions_mut().insert(admission.clone());
        let ingest = Arc::clone(&self.ingest);
        let limit = self.max_request_bytes;
        Box::pin(async move {
            let mut gzip = EnabledCompressionEncodings::default();
            gzip.enable(CompressionEncoding::Gzip);
            let mut grpc = Grpc::new(ExportCodec::<S::Response>(PhantomData))
                .apply_compression_config(gzip, gzip)
                .apply_max_message_size_config(Some(limit), None);
            let method = ExportMethod::<S> { ingest: Arc::clone(&ingest), signal: PhantomData };
            let response = grpc.unary(method, request).await;
            if admission.0.handled.load(Ordering::Relaxed) {
                return Ok(response);
            }
            Ok(correct_decode_failure(response, S::KIND, &ingest, limit))
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
