//! The collector's error type. Both transports report failures through
//! [`CollectorError::class`], so HTTP statuses and gRPC codes agree.

use std::net::SocketAddr;
use std::time::Duration;

use skein_model::security::{AuthError, TenantError};
use skein_model::{ErrorClass, ModelError, WriteError};

/// How long clients are asked to wait when the collector itself is at its
/// concurrency limit; requests are short, so a second is plenty.
pub(crate) const OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("invalid collector config: {0}")]
    Config(String),
    #[error("failed to bind {what} listener on {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("{what} server failed: {reason}")]
    Serve { what: &'static str, reason: String },
    /// The request could not be decoded (bad protobuf, JSON or gzip).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within `collector.body_read_timeout`.
    #[error("request body not received within {}s (collector.body_read_timeout); send the whole body without pausing", timeout.as_secs_f64())]
    BodyTimeout { timeout: Duration },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotFound(String),
    #[error("collector is at its limit of {limit} concurrent requests, retry later")]
    Overloaded { limit: usize },
    /// The tenant sent more than `collector.tenant_ingest` allows.
    #[error(
        "tenant {tenant} is over its ingest limit of {limit} {what} per second (collector.tenant_ingest); retry after {}s",
        retry_after.as_secs()
    )]
    RateLimited { tenant: String, limit: u32, what: &'static str, retry_after: Duration },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("failed to convert the request: {0}")]
    Convert(#[from] ModelError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CollectorError {
    pub fn class(&self) -> ErrorClass {
        match self {
            CollectorError::InvalidRequest(_) => ErrorClass::InvalidArgument,
            CollectorError::PayloadTooLarge { .. } => ErrorClass::PayloadTooLarge,
            CollectorError::UnsupportedMediaType(_) => ErrorClass::UnsupportedMediaType,
            CollectorError::BodyTimeout { .. } => ErrorClass::Timeout,
            CollectorError::NotFound(_) => ErrorClass::NotFound,
            CollectorError::Overloaded { .. } => ErrorClass::Overloaded { retry_after: OVERLOAD_RETRY_AFTER },
            CollectorError::RateLimited { retry_after, .. } => ErrorClass::Overloaded { retry_after: *retry_after },
            CollectorError::Auth(e) => e.class(),
            CollectorError::Tenant(e) => e.class(),
            CollectorError::Write(e) => e.class(),
            CollectorError::Config(_)
            | CollectorError::Bind { .. }
            | CollectorError::Serve { .. }
            | CollectorError::Convert(_)
            | CollectorError::Internal(_) => ErrorClass::Internal,
        }
    }

    /// The gRPC status for this error, with retry info when retryable.
    pub fn to_grpc_status(&self) -> tonic::Status {
        self.class().to_grpc_status(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_request_error() {
        let cases = [
            (CollectorError::InvalidRequest("bad".into()), 400, tonic::Code::InvalidArgument),
            (CollectorError::PayloadTooLarge { limit: 1 }, 413, tonic::Code::InvalidArgument),
            (CollectorError::UnsupportedMediaType("x".into()), 415, tonic::Code::InvalidArgument),
            (CollectorError::NotFound("x".into()), 404, tonic::Code::NotFound),
            (CollectorError::BodyTimeout { timeout: Duration::from_secs(1) }, 408, tonic::Code::DeadlineExceeded),
            (CollectorError::Overloaded { limit: 1 }, 429, tonic::Code::ResourceExhausted),
            (
                CollectorError::Write(WriteError::Unavailable {
                    reason: "down".into(),
                    retry_after: Duration::from_secs(3),
                }),
                503,
                tonic::Code::Unavailable,
            ),
            (
                CollectorError::Write(WriteError::Overloaded { retry_after: Duration::from_secs(2) }),
                429,
                tonic::Code::ResourceExhausted,
            ),
            (CollectorError::Write(WriteError::Internal("disk".into())), 500, tonic::Code::Internal),
            (CollectorError::Internal("panic".into()), 500, tonic::Code::Internal),
            (CollectorError::Auth(AuthError::Missing), 401, tonic::Code::Unauthenticated),
            (
                CollectorError::Auth(AuthError::Forbidden {
                    tenant: "t".into(),
                    scope: skein_model::security::Scope::Ingest,
                }),
                403,
                tonic::Code::PermissionDenied,
            ),
        ];
        for (error, http, grpc) in cases {
            assert_eq!(error.class().http_status().as_u16(), http, "{error}");
            assert_eq!(error.to_grpc_status().code(), grpc, "{error}");
        }
    }

    #[test]
    fn retryable_errors_carry_their_delay() {
        use tonic_types::StatusExt;
        let unavailable = CollectorError::Write(WriteError::Unavailable {
            reason: "down".into(),
            retry_after: Duration::from_secs(3),
        });
        assert_eq!(unavailable.class().retry_after_header().as_deref(), Some("3"));
        let status = unavailable.to_grpc_status();
        assert_eq!(status.get_details_retry_info().and_then(|r| r.retry_delay), Some(Duration::from_secs(3)));
        assert!(status.message().contains("down"), "{}", status.message());
        let overloaded = CollectorError::Overloaded { limit: 4 };
        assert_eq!(overloaded.class().retry_after(), Some(OVERLOAD_RETRY_AFTER));
        assert_eq!(CollectorError::InvalidRequest("x".into()).class().retry_after(), None);
    }
}
