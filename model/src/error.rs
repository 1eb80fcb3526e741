//! The model crate's error type, and the one place where every Skein error
//! is classified into an HTTP status and a gRPC code.

use std::time::Duration;

use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("column {0} is missing or has an unexpected type")]
    Column(&'static str),
    #[error("invalid protobuf: {0}")]
    InvalidProtobuf(#[from] prost::DecodeError),
    #[error("invalid shard map: {0}")]
    InvalidShardMap(String),
    #[error("storage node discovery: {0}")]
    Discovery(String),
    #[error("cluster.storage_dns {name:?}: {what}")]
    DnsSetup { name: String, what: &'static str, source: Option<Box<dyn std::error::Error + Send + Sync>> },
    #[error("tls{}: {source}", path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Tls { path: Option<std::path::PathBuf>, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("cannot read the tokens file {}: {source}", path.display())]
    TokensFileRead { path: std::path::PathBuf, source: std::io::Error },
    #[error("invalid tokens file: {0}")]
    TokensFile(Box<dyn std::error::Error + Send + Sync>),
}

/// How a failure is reported to clients. Every crate's error maps into this,
/// and only this type knows HTTP statuses and gRPC codes, so the retry
/// semantics OTLP defines live in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad data or a bad request: 400 / INVALID_ARGUMENT, never retried.
    InvalidArgument,
    /// 404 / NOT_FOUND.
    NotFound,
    /// 413 / INVALID_ARGUMENT (a body over the size limit is bad data).
    PayloadTooLarge,
    /// 415 / INVALID_ARGUMENT.
    UnsupportedMediaType,
    /// Too much load right now: 429 / RESOURCE_EXHAUSTED with retry info.
    Overloaded { retry_after: Duration },
    /// Temporarily unable to serve (shutting down, storage behind):
    /// 503 / UNAVAILABLE with retry info.
    Unavailable { retry_after: Duration },
    /// A query ran past its time limit: 408 / DEADLINE_EXCEEDED.
    Timeout,
    /// A query needed more memory than allowed: 422 / RESOURCE_EXHAUSTED (no retry info).
    QueryTooExpensive,
    /// No valid credentials: 401 / UNAUTHENTICATED, never retried.
    Unauthenticated,
    /// Valid credentials without the right: 403 / PERMISSION_DENIED, never retried.
    PermissionDenied,
    /// A bug or an I/O failure: 500 / INTERNAL.
    Internal,
}

impl ErrorClass {
    pub fn http_status(&self) -> StatusCode {
        match self {
            ErrorClass::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorClass::NotFound => StatusCode::NOT_FOUND,
            ErrorClass::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorClass::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorClass::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ErrorClass::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ErrorClass::Timeout => StatusCode::REQUEST_TIMEOUT,
            ErrorClass::QueryTooExpensive => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorClass::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorClass::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            ErrorClass::InvalidArgument | ErrorClass::PayloadTooLarge | ErrorClass::UnsupportedMediaType => {
                tonic::Code::InvalidArgument
            }
            ErrorClass::NotFound => tonic::Code::NotFound,
            ErrorClass::Overloaded { .. } | ErrorClass::QueryTooExpensive => tonic::Code::ResourceExhausted,
            ErrorClass::Unavailable { .. } => tonic::Code::Unavailable,
            ErrorClass::Timeout => tonic::Code::DeadlineExceeded,
            ErrorClass::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorClass::PermissionDenied => tonic::Code::PermissionDenied,
            ErrorClass::Internal => tonic::Code::Internal,
        }
    }

    /// How long a client should wait before retrying, when it should.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ErrorClass::Overloaded { retry_after } | ErrorClass::Unavailable { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// A short machine-readable name, used in JSON error bodies and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorClass::InvalidArgument => "invalid_argument",
            ErrorClass::NotFound => "not_found",
            ErrorClass::PayloadTooLarge => "payload_too_large",
            ErrorClass::UnsupportedMediaType => "unsupported_media_type",
            ErrorClass::Overloaded { .. } => "overloaded",
            ErrorClass::Unavailable { .. } => "unavailable",
            ErrorClass::Timeout => "timeout",
            ErrorClass::QueryTooExpensive => "query_too_expensive",
            ErrorClass::Unauthenticated => "unauthenticated",
            ErrorClass::PermissionDenied => "permission_denied",
            ErrorClass::Internal => "internal",
        }
    }

    /// A gRPC status for this class, carrying `google.rpc.RetryInfo` when
    /// the client should retry (as OTLP asks).
    pub fn to_grpc_status(&self, message: impl Into<String>) -> tonic::Status {
        use tonic_types::{ErrorDetails, StatusExt};
        match self.retry_after() {
            Some(delay) => {
                tonic::Status::with_error_details(self.grpc_code(), message, ErrorDetails::with_retry_info(Some(delay)))
            }
            None => tonic::Status::new(self.grpc_code(), message),
        }
    }

    /// The `Retry-After` header value in whole seconds (at least 1).
    pub fn retry_after_header(&self) -> Option<String> {
        self.retry_after().map(|d| d.as_secs().max(1).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classes_carry_retry_info() {
        let overloaded = ErrorClass::Overloaded { retry_after: Duration::from_secs(2) };
        assert_eq!(overloaded.http_status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(overloaded.retry_after_header().as_deref(), Some("2"));
        let status = overloaded.to_grpc_status("busy");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        use tonic_types::StatusExt;
        assert_eq!(status.get_details_retry_info().and_then(|r| r.retry_delay), Some(Duration::from_secs(2)));
        let bad = ErrorClass::InvalidArgument;
        assert_eq!(bad.retry_after(), None);
        assert_eq!(bad.to_grpc_status("no").code(), tonic::Code::InvalidArgument);
    }
}
