//! The OTLP/HTTP receiver (`POST /v1/traces` and `POST /v1/metrics`,
//! protobuf or JSON, optionally gzip; one handler, generic over the
//! signal). Cheap checks (content type, encoding, declared length, admission)
//! come before the body is read; the body is then read and decompressed
//! under the size limit and handed to the shared ingest path.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use futures::StreamExt;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};

use crate::CollectorError;
use crate::codec::{self, Compression, Encoding};
use crate::ingest::Ingest;
use crate::metrics::Transport;
use crate::signal::{Metrics, Payload, Signal, Traces};

/// Where each signal is accepted, for messages pointing clients there.
const ACCEPTED_AT: &str = "traces at POST /v1/traces and metrics at POST /v1/metrics";

#[derive(Clone)]
struct HttpState {
    ingest: Arc<Ingest>,
    max_request_bytes: usize,
}

pub(crate) fn router(ingest: Arc<Ingest>, max_request_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(export_handler::<Traces>))
        .route("/v1/metrics", post(export_handler::<Metrics>))
        .route("/v1/logs", any(unsupported_signal))
        .route("/", get(health))
        .route("/healthz", get(health))
        .fallback(not_found)
        .with_state(HttpState { ingest, max_request_bytes })
}

async fn health() -> &'static str {
    "ok\n"
}

async fn unsupported_signal(uri: Uri, headers: HeaderMap) -> Response {
    let error = CollectorError::NotFound(format!("{} is not supported yet: Skein accepts {ACCEPTED_AT}", uri.path()));
    error_response(&error, Encoding::for_errors(&headers))
}

async fn not_found(uri: Uri, headers: HeaderMap) -> Response {
    let error = CollectorError::NotFound(format!("no such endpoint {}: OTLP {ACCEPTED_AT}", uri.path()));
    error_response(&error, Encoding::for_errors(&headers))
}

async fn export_handler<S: Signal>(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let mut body_read = false;
    match export::<S>(&state, &headers, body, &mut body_read).await {
        Ok((encoding, response)) => {
            let body = codec::encode_response::<S>(&response, encoding);
            (StatusCode::OK, [(CONTENT_TYPE, encoding.content_type())], body).into_response()
        }
        Err(error) => {
            state.ingest.failed(S::KIND, Transport::Http, &error);
            let mut response = error_response(&error, Encoding::for_errors(&headers));
            if !body_read {
                // The rest of the body is still on the wire, so this connection
                // cannot carry another request; say so, or a client reusing it
                // from its pool races the close and loses its next request.
                response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}

async fn export<S: Signal>(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
    body_read: &mut bool,
) -> Result<(Encoding, S::Response), CollectorError> {
    let encoding = Encoding::of_request(headers)?;
    let compression = Compression::of_request(headers)?;
    let limit = state.max_request_bytes;
    let declared = declared_length(headers);
    if declared.is_some_and(|len| len > limit) {
        return Err(CollectorError::PayloadTooLarge { limit });
    }
    let _permit = state.ingest.try_acquire()?;
    let body = read_body(body, limit, declared).await?;
    *body_read = true;
    let metrics = state.ingest.metrics().clone();
    let request = tokio::task::spawn_blocking(move || {
        let raw = match compression {
            Compression::Identity => body,
            Compression::Gzip => codec::gunzip(&body, limit)?,
        };
        metrics.observe_body(S::KIND, Transport::Http, raw.len());
        match encoding {
            // Decoded with the conversion, in one pass.
            Encoding::Protobuf => Ok(Payload::Protobuf(raw.into())),
            Encoding::Json => codec::decode_json::<S>(&raw).map(Payload::Decoded),
        }
    })
    .await
    .map_err(|e| CollectorError::Internal(format!("request decoding task failed: {e}")))??;
    let response = state.ingest.export::<S>(Transport::Http, request).await?;
    Ok((encoding, response))
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// Reads the whole body, failing as soon as it grows past `limit` (the
/// declared length is a hint only; chunked bodies have none).
async fn read_body(body: Body, limit: usize, declared: Option<usize>) -> Result<Vec<u8>, CollectorError> {
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| CollectorError::InvalidRequest(format!("failed to read request body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(CollectorError::PayloadTooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An error as the OTLP/HTTP specification describes it: the class's status,
/// a `google.rpc.Status` body in the request's encoding, and `Retry-After`
/// when the client should retry.
fn error_response(error: &CollectorError, encoding: Encoding) -> Response {
    let class = error.class();
    let body = codec::encode_status(class.grpc_code(), &error.to_string(), encoding);
    let mut response = (class.http_status(), [(CONTENT_TYPE, encoding.content_type())], body).into_response();
    if let Some(value) = class.retry_after_header().and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}
