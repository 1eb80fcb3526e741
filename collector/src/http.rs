//! The OTLP/HTTP receiver (`POST /v1/traces` and `POST /v1/metrics`,
//! protobuf or JSON, optionally gzip; one handler, generic over the
//! signal), and on the same port Zipkin v2 JSON (`POST /api/v2/spans`,
//! zipkin.rs) and CORS for browsers (cors.rs). Cheap checks (content type,
//! encoding, declared length, admission) come before the body is read; the
//! body is then read under the size limit and the read timeout,
//! decompressed under the size limit and handed to the shared ingest path.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures::StreamExt;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use skein_model::ErrorClass;
use skein_model::security::{Authenticator, ListenerSecurity, ORG_ID_HEADER, Principal, RequestTenant, Scope};
use tokio::sync::OwnedSemaphorePermit;

use crate::codec::{self, Compression, Encoding};
use crate::ingest::Ingest;
use crate::metrics::Transport;
use crate::signal::{Logs, Metrics, Payload, Signal, SignalKind, Traces};
use crate::tenant_limits::tenant_of;
use crate::{CollectorConfig, CollectorError};

/// Where each signal is accepted, for messages pointing clients there.
const ACCEPTED_AT: &str = "traces at POST /v1/traces, metrics at POST /v1/metrics and logs at POST /v1/logs";
const ACCEPTED_AT_WITH_ZIPKIN: &str = "traces at POST /v1/traces, metrics at POST /v1/metrics, logs at POST \
     /v1/logs and Zipkin v2 JSON spans at POST /api/v2/spans";

#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) ingest: Arc<Ingest>,
    pub(crate) max_request_bytes: usize,
    body_read_timeout: Duration,
    accepted_at: &'static str,
}

pub(crate) fn router(
    ingest: Arc<Ingest>,
    config: &CollectorConfig,
    security: &ListenerSecurity,
) -> Result<Router, CollectorError> {
    let accepted_at = if config.zipkin_enabled { ACCEPTED_AT_WITH_ZIPKIN } else { ACCEPTED_AT };
    let state = HttpState {
        ingest,
        max_request_bytes: config.max_request_bytes,
        body_read_timeout: config.body_read_timeout,
        accepted_at,
    };
    let mut router = Router::new()
        .route("/v1/traces", post(export_handler::<Traces>))
        .route("/v1/metrics", post(export_handler::<Metrics>))
        .route("/v1/logs", post(export_handler::<Logs>));
    if config.zipkin_enabled {
        router = router.route("/api/v2/spans", post(crate::zipkin::handler));
    }
    // On the routes that take data only: health checks stay open. The
    // token check wraps the tenant's, so it runs first.
    router = router.route_layer(middleware::from_fn_with_state(security.clone(), settle_tenant));
    if let Some(auth) = security.auth.clone() {
        router = router.route_layer(middleware::from_fn_with_state(auth, require_ingest));
    }
    let router = router.route("/", get(health)).route("/healthz", get(health)).fallback(not_found).with_state(state);
    // Outermost, so preflights are answered before routing and every
    // answer, errors included, carries the CORS headers.
    Ok(match crate::cors::layer(config).map_err(CollectorError::Config)? {
        Some(cors) => router.layer(cors),
        None => router,
    })
}

/// Refuses a request without a token that may ingest, before its body is read.
async fn require_ingest(State(auth): State<Arc<Authenticator>>, mut request: Request, next: Next) -> Response {
    let authorization = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    match auth.authorize(authorization, Scope::Ingest) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => refuse_unread(&request, CollectorError::Auth(error)),
    }
}

/// Answers a request refused before its body was read.
fn refuse_unread(request: &Request, error: CollectorError) -> Response {
    tracing::debug!(path = request.uri().path(), %error, "otlp/http request refused");
    let mut response = error_response(&error, Encoding::for_errors(request.headers()));
    // The body was not read, so the connection cannot be reused.
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Settles the tenant the request acts for (its token's, or `X-Scope-OrgID`
/// when multi-tenant), before its body is read.
async fn settle_tenant(State(security): State<ListenerSecurity>, mut request: Request, next: Next) -> Response {
    let org_id = request.headers().get(ORG_ID_HEADER).map(|v| v.as_bytes());
    match security.tenant(request.extensions().get::<Principal>(), org_id) {
        Ok(tenant) => {
            request.extensions_mut().insert(RequestTenant(tenant));
            next.run(request).await
        }
        Err(error) => refuse_unread(&request, CollectorError::Tenant(error)),
    }
}

async fn health() -> &'static str {
    "ok\n"
}

async fn not_found(State(state): State<HttpState>, uri: Uri, headers: HeaderMap) -> Response {
    let error =
        CollectorError::NotFound(format!("no such endpoint {}: Skein accepts {}", uri.path(), state.accepted_at));
    error_response(&error, Encoding::for_errors(&headers))
}

async fn export_handler<S: Signal>(
    State(state): State<HttpState>,
    tenant: Option<Extension<RequestTenant>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut body_read = false;
    let tenant = tenant_of(tenant.as_ref().map(|t| &t.0));
    match export::<S>(&state, tenant, &headers, body, &mut body_read).await {
        Ok((encoding, response)) => {
            let body = codec::encode_response::<S>(&response, encoding);
            (StatusCode::OK, [(CONTENT_TYPE, encoding.content_type())], body).into_response()
        }
        Err(error) => {
            failure_response(&state, S::KIND, Transport::Http, &error, Encoding::for_errors(&headers), body_read)
        }
    }
}

/// Counts and logs a failed request and answers it.
pub(crate) fn failure_response(
    state: &HttpState,
    signal: SignalKind,
    transport: Transport,
    error: &CollectorError,
    encoding: Encoding,
    body_read: bool,
) -> Response {
    state.ingest.failed(signal, transport, error);
    let mut response = error_response(error, encoding);
    if !body_read {
        // The rest of the body is still on the wire, so this connection
        // cannot carry another request; say so, or a client reusing it
        // from its pool races the close and loses its next request.
        response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn export<S: Signal>(
    state: &HttpState,
    tenant: &str,
    headers: &HeaderMap,
    body: Body,
    body_read: &mut bool,
) -> Result<(Encoding, S::Response), CollectorError> {
    let encoding = Encoding::of_request(headers)?;
    let compression = Compression::of_request(headers)?;
    let (_permit, body) = admit_and_read(state, tenant, headers, body, body_read).await?;
    let limit = state.max_request_bytes;
    let metrics = state.ingest.metrics().clone();
    let request = tokio::task::spawn_blocking(move || {
        let raw = codec::decompress(body, compression, limit)?;
        metrics.observe_body(S::KIND, Transport::Http, raw.len());
        match encoding {
            // Decoded with the conversion, in one pass.
            Encoding::Protobuf => Ok(Payload::Protobuf(raw.into())),
            Encoding::Json => codec::decode_json::<S>(&raw).map(Payload::Decoded),
        }
    })
    .await
    .map_err(|e| CollectorError::Internal(format!("request decoding task failed: {e}")))??;
    let response = state.ingest.export::<S>(Transport::Http, tenant, request).await?;
    Ok((encoding, response))
}

/// Refuses a body declared too large, takes a concurrency slot, then reads
/// the (still compressed) body under the size limit and the read timeout.
/// `body_read` tells the caller whether the connection is clean to reuse.
pub(crate) async fn admit_and_read(
    state: &HttpState,
    tenant: &str,
    headers: &HeaderMap,
    body: Body,
    body_read: &mut bool,
) -> Result<(OwnedSemaphorePermit, Vec<u8>), CollectorError> {
    let limit = state.max_request_bytes;
    let declared = declared_length(headers);
    if declared.is_some_and(|len| len > limit) {
        return Err(CollectorError::PayloadTooLarge { limit });
    }
    let permit = state.ingest.try_acquire()?;
    // The slot is held while the body arrives, so a stalled client must
    // lose it after a while or a few of them starve every other client.
    let timeout = state.body_read_timeout;
    let body = tokio::time::timeout(timeout, read_body(body, limit, declared))
        .await
        .map_err(|_| CollectorError::BodyTimeout { timeout })??;
    *body_read = true;
    state.ingest.admit_bytes(tenant, body.len())?;
    Ok((permit, body))
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
pub(crate) fn error_response(error: &CollectorError, encoding: Encoding) -> Response {
    let class = error.class();
    let body = codec::encode_status(class.grpc_code(), &error.to_string(), encoding);
    let mut response = (class.http_status(), [(CONTENT_TYPE, encoding.content_type())], body).into_response();
    if let Some(value) = class.retry_after_header().and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    if class == ErrorClass::Unauthenticated {
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
