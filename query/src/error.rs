//! The query crate's error type and its mapping onto [`ErrorClass`], which
//! decides the HTTP status; handlers turn errors into
//! `{"error": {"code", "message"}}` bodies.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use skein_model::security::{AuthError, TenantError};
use skein_model::{ErrorClass, ModelError};

/// How long a client should wait before retrying when the service is
/// stopping or its token is at its concurrency limit.
const SHUTDOWN_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("invalid query configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("http server failed: {0}")]
    Serve(std::io::Error),
    /// A malformed request: bad parameters, body or ID.
    #[error("{0}")]
    InvalidRequest(String),
    /// SQL that is not a read-only query of Skein's tables.
    #[error("{0}")]
    Refused(String),
    /// SQL that does not parse or plan, or fails on the data (bad cast...).
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    NotFound(String),
    #[error("request body is larger than the limit of {limit} bytes (query.max_body_bytes)")]
    BodyTooLarge { limit: usize },
    #[error("query did not finish within {limit:?} (query.timeout); narrow it with filters or a LIMIT")]
    Timeout { limit: Duration },
    #[error("query needs more memory than the limit of {limit} bytes (query.memory_limit_bytes): {detail}")]
    MemoryExhausted { limit: usize, detail: String },
    #[error(
        "query returns more than {limit} rows (query.max_result_rows); add a LIMIT or aggregate, the result is not truncated"
    )]
    TooManyRows { limit: usize },
    /// A trace with more spans than one read of it may hold.
    #[error(
        "the trace has more than {limit} spans (query.{key}); ask for a window of its outline (max_spans, under) or its summary"
    )]
    TraceTooLarge { limit: usize, key: &'static str },
    /// A metric range query over more data than its configured limit.
    #[error(
        "the query needs more than {limit} {what} (query.{key}); narrow the time range, add label matchers or use a larger step"
    )]
    TooMuchData { what: &'static str, limit: usize, key: &'static str },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// The storage of the request's tenant could not be opened.
    #[error("tenant {tenant}: {source}")]
    TenantStorage { tenant: String, class: ErrorClass, source: Box<dyn std::error::Error + Send + Sync> },
    #[error(
        "this token already has {limit} requests running (query.max_concurrent_requests_per_token); retry when one finishes"
    )]
    TokenBusy { limit: usize },
    #[error(
        "tenant {tenant} already has {limit} requests running (query.max_concurrent_requests_per_tenant); retry when one finishes"
    )]
    TenantBusy { tenant: String, limit: usize },
    #[error("the query service is shutting down")]
    ShuttingDown,
    /// A shard's storage node could not be reached: the answer would be incomplete.
    #[error("{0}")]
    ShardUnavailable(String),
    /// A failure of the engine or of the storage it reads.
    #[error("query failed: {0}")]
    Execution(String),
    #[error("stored data could not be decoded: {0}")]
    Model(#[from] ModelError),
    #[error("could not encode the result: {0}")]
    Encode(String),
}

impl QueryError {
    pub fn class(&self) -> ErrorClass {
        match self {
            QueryError::Config(_)
            | QueryError::InvalidRequest(_)
            | QueryError::Refused(_)
            | QueryError::BadQuery(_) => ErrorClass::InvalidArgument,
            QueryError::NotFound(_) => ErrorClass::NotFound,
            QueryError::BodyTooLarge { .. } => ErrorClass::PayloadTooLarge,
            QueryError::Timeout { .. } => ErrorClass::Timeout,
            QueryError::MemoryExhausted { .. }
            | QueryError::TooManyRows { .. }
            | QueryError::TraceTooLarge { .. }
            | QueryError::TooMuchData { .. } => ErrorClass::QueryTooExpensive,
            QueryError::Auth(e) => e.class(),
            QueryError::Tenant(e) => e.class(),
            QueryError::TenantStorage { class, .. } => class.clone(),
            QueryError::TokenBusy { .. } | QueryError::TenantBusy { .. } => {
                ErrorClass::Overloaded { retry_after: SHUTDOWN_RETRY_AFTER }
            }
            QueryError::ShuttingDown | QueryError::ShardUnavailable(_) => {
                ErrorClass::Unavailable { retry_after: SHUTDOWN_RETRY_AFTER }
            }
            QueryError::Bind { .. }
            | QueryError::Serve(_)
            | QueryError::Execution(_)
            | QueryError::Model(_)
            | QueryError::Encode(_) => ErrorClass::Internal,
        }
    }

    /// Classifies an engine error by its innermost DataFusion cause: the
    /// user's fault (syntax, planning, bad values) or ours (I/O, bugs).
    pub(crate) fn from_datafusion(err: DataFusionError, memory_limit: usize) -> Self {
        let root = err.find_root();
        let message = root.strip_backtrace();
        match root {
            DataFusionError::ResourcesExhausted(_) => {
                QueryError::MemoryExhausted { limit: memory_limit, detail: message }
            }
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_) => QueryError::BadQuery(message),
            DataFusionError::ArrowError(arrow, _) if is_bad_value(arrow) => QueryError::BadQuery(message),
            DataFusionError::External(inner) if inner.is::<crate::remote::ShardUnavailable>() => {
                QueryError::ShardUnavailable(inner.to_string())
            }
            _ => QueryError::Execution(err.strip_backtrace()),
        }
    }
}

/// Arrow errors caused by the values a query computes, not by the system.
fn is_bad_value(err: &ArrowError) -> bool {
    matches!(
        err,
        ArrowError::CastError(_)
            | ArrowError::ParseError(_)
            | ArrowError::ComputeError(_)
            | ArrowError::DivideByZero
            | ArrowError::ArithmeticOverflow(_)
            | ArrowError::InvalidArgumentError(_)
    )
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let class = self.class();
        let body = serde_json::json!({ "error": { "code": class.name(), "message": self.to_string() } });
        let mut response = (class.http_status(), axum::Json(body)).into_response();
        if let Some(value) = class.retry_after_header().and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if class == ErrorClass::Unauthenticated {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl QueryError {
    /// The Prometheus HTTP API's error envelope,
    /// `{"status": "error", "errorType", "error"}`, with Prometheus' statuses:
    /// bad data 400, too expensive 422 (`execution`), timeout and unavailable 503.
    pub(crate) fn into_prometheus_response(self) -> Response {
        use axum::http::StatusCode;
        let class = self.class();
        let (status, error_type) = match class {
            ErrorClass::InvalidArgument | ErrorClass::UnsupportedMediaType => (StatusCode::BAD_REQUEST, "bad_data"),
            ErrorClass::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "bad_data"),
            ErrorClass::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorClass::QueryTooExpensive => (StatusCode::UNPROCESSABLE_ENTITY, "execution"),
            ErrorClass::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ErrorClass::Overloaded { .. } | ErrorClass::Unavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ErrorClass::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ErrorClass::PermissionDenied => (StatusCode::FORBIDDEN, "forbidden"),
            ErrorClass::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let body = serde_json::json!({ "status": "error", "errorType": error_type, "error": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(value) = class.retry_after_header().and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn datafusion_errors_are_classified_by_root_cause() {
        let plan = DataFusionError::Plan("no such column".into()).context("while planning");
        assert!(
            matches!(QueryError::from_datafusion(plan, 1), QueryError::BadQuery(m) if m.contains("no such column"))
        );
        let memory = DataFusionError::External(Box::new(DataFusionError::ResourcesExhausted("sort".into())));
        let err = QueryError::from_datafusion(memory, 1024);
        assert_eq!(err.class(), ErrorClass::QueryTooExpensive);
        assert!(err.to_string().contains("1024"), "{err}");
        let cast = DataFusionError::ArrowError(Box::new(ArrowError::CastError("'x' is not an int".into())), None);
        assert_eq!(QueryError::from_datafusion(cast, 1).class(), ErrorClass::InvalidArgument);
        let io = DataFusionError::IoError(std::io::Error::other("disk gone"));
        assert_eq!(QueryError::from_datafusion(io, 1).class(), ErrorClass::Internal);
    }

    #[tokio::test]
    async fn errors_render_as_json_with_status() {
        let response = QueryError::Timeout { limit: Duration::from_secs(1) }.into_response();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["error"]["code"], "timeout");
        assert!(json["error"]["message"].as_str().expect("message").contains("query.timeout"));

        let response = QueryError::ShuttingDown.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"1"[..]));
    }

    #[tokio::test]
    async fn prometheus_errors_use_its_envelope_and_statuses() {
        let cases = [
            (QueryError::InvalidRequest("bad".into()), StatusCode::BAD_REQUEST, "bad_data"),
            (
                QueryError::TooMuchData { what: "series", limit: 1, key: "metrics_max_series" },
                StatusCode::UNPROCESSABLE_ENTITY,
                "execution",
            ),
            (QueryError::Timeout { limit: Duration::from_secs(1) }, StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            (QueryError::Execution("disk".into()), StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        ];
        for (err, status, error_type) in cases {
            let message = err.to_string();
            let response = err.into_prometheus_response();
            assert_eq!(response.status(), status);
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
            let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(json, serde_json::json!({"status": "error", "errorType": error_type, "error": message}));
        }
    }
}
