//! The collector's configuration: where to listen, the limits applied to
//! every request, and the OTLP/HTTP port's extras (CORS for browsers,
//! Zipkin ingest).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// The smallest request size limit accepted; below this even a single span
/// with a few attributes would not fit.
const MIN_REQUEST_BYTES: usize = 1024;
/// The largest request size limit accepted; every in-flight request may hold
/// this much (twice, while decompressing), so it bounds memory.
const MAX_REQUEST_BYTES: usize = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// OTLP/gRPC listen address.
    pub grpc_listen: SocketAddr,
    /// OTLP/HTTP listen address.
    pub http_listen: SocketAddr,
    /// Largest accepted request: the HTTP body (compressed and decompressed)
    /// or the decoded gRPC message, in bytes.
    pub max_request_bytes: usize,
    /// Longest string or bytes attribute value kept; longer ones are truncated.
    pub max_attribute_value_bytes: usize,
    /// Requests processed at once, gRPC and HTTP together; beyond this the
    /// collector answers "overloaded" at once instead of queuing.
    pub max_concurrent_requests: usize,
    /// Time the whole OTLP/HTTP request body may take to arrive; a client
    /// that stalls mid-body gets 408 instead of holding its connection and
    /// its concurrency slot.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Time a client may take to send a request's headers on the OTLP/HTTP
    /// port (HTTP/1); it also closes keep-alive connections idle this long.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Origins (`https://app.example.com`) whose browser pages may POST to
    /// the OTLP/HTTP port, or `["*"]` for any; empty: no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// How long browsers may cache a CORS preflight answer.
    #[serde(with = "humantime_serde")]
    pub cors_max_age: Duration,
    /// Accept Zipkin v2 JSON spans at `POST /api/v2/spans` on the OTLP/HTTP port.
    pub zipkin_enabled: bool,
    /// Ingest rate limits per tenant (0: off).
    pub tenant_ingest: crate::TenantIngestLimits,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 4317)),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 4318)),
            max_request_bytes: 16 * 1024 * 1024,
            max_attribute_value_bytes: 64 * 1024,
            max_concurrent_requests: 256,
            body_read_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            cors_allowed_origins: Vec::new(),
            cors_max_age: Duration::from_secs(2 * 3600),
            zipkin_enabled: true,
            tenant_ingest: crate::TenantIngestLimits::default(),
        }
    }
}

impl CollectorConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.grpc_listen == self.http_listen && self.grpc_listen.port() != 0 {
            return Err(format!("grpc_listen and http_listen must differ (both are {})", self.grpc_listen));
        }
        if !(MIN_REQUEST_BYTES..=MAX_REQUEST_BYTES).contains(&self.max_request_bytes) {
            return Err(format!(
                "max_request_bytes must be between {MIN_REQUEST_BYTES} and {MAX_REQUEST_BYTES} (got {})",
                self.max_request_bytes
            ));
        }
        if self.max_attribute_value_bytes == 0 {
            return Err("max_attribute_value_bytes must be at least 1".into());
        }
        self.tenant_ingest.validate()?;
        if self.max_attribute_value_bytes > self.max_request_bytes {
            return Err(format!(
                "max_attribute_value_bytes ({}) cannot exceed max_request_bytes ({})",
                self.max_attribute_value_bytes, self.max_request_bytes
            ));
        }
        if self.max_concurrent_requests == 0 || self.max_concurrent_requests > Semaphore::MAX_PERMITS {
            return Err(format!(
                "max_concurrent_requests must be between 1 and {} (got {})",
                Semaphore::MAX_PERMITS,
                self.max_concurrent_requests
            ));
        }
        for (name, value) in
            [("body_read_timeout", self.body_read_timeout), ("header_read_timeout", self.header_read_timeout)]
        {
            if value.is_zero() {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        self.cors_origins()?;
        Ok(())
    }

    /// The allowed CORS origins, checked: `None` for no CORS at all.
    pub(crate) fn cors_origins(&self) -> Result<Option<CorsOrigins>, String> {
        let origins = &self.cors_allowed_origins;
        if origins.is_empty() {
            return Ok(None);
        }
        if origins.iter().any(|o| o == "*") {
            if origins.len() > 1 {
                return Err("cors_allowed_origins: \"*\" allows every origin; list it alone".into());
            }
            return Ok(Some(CorsOrigins::Any));
        }
        let mut values = Vec::with_capacity(origins.len());
        for origin in origins {
            values.push(parse_origin(origin)?);
        }
        Ok(Some(CorsOrigins::List(values)))
    }
}

/// Which origins may use the OTLP/HTTP port from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CorsOrigins {
    Any,
    /// Exact `Origin` header values, lowercase scheme and host.
    List(Vec<http::HeaderValue>),
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn parse_origin(origin: &str) -> Result<http::HeaderValue, String> {
    let bad = |why: &str| {
        format!("cors_allowed_origins: {origin:?} is not an origin ({why}); write it as https://host[:port]")
    };
    let (scheme, rest) = origin.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if !matches!(scheme, "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad("only scheme, host and port; no path, not even a trailing /"));
    }
    if origin.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad("browsers send origins in lowercase"));
    }
    http::HeaderValue::from_str(origin).map_err(|_| bad("not a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let config = CollectorConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.grpc_listen.port(), 4317);
        assert_eq!(config.http_listen.port(), 4318);
        assert_eq!(config.max_request_bytes, 16 * 1024 * 1024);
        assert_eq!(config.max_attribute_value_bytes, 64 * 1024);
        assert_eq!(config.max_concurrent_requests, 256);
        assert_eq!(config.body_read_timeout, Duration::from_secs(30));
        assert!(config.cors_allowed_origins.is_empty(), "no CORS unless configured");
        assert_eq!(config.cors_origins(), Ok(None));
        assert!(config.zipkin_enabled);
    }

    #[test]
    fn rejects_bad_values_with_clear_messages() {
        let bad = |edit: fn(&mut CollectorConfig)| {
            let mut config = CollectorConfig::default();
            edit(&mut config);
            config.validate().expect_err("config should be invalid")
        };
        assert!(bad(|c| c.http_listen = c.grpc_listen).contains("must differ"));
        assert!(bad(|c| c.max_request_bytes = 10).contains("max_request_bytes"));
        assert!(bad(|c| c.max_request_bytes = usize::MAX).contains("max_request_bytes"));
        assert!(bad(|c| c.max_attribute_value_bytes = 0).contains("max_attribute_value_bytes"));
        assert!(bad(|c| c.max_attribute_value_bytes = c.max_request_bytes + 1).contains("cannot exceed"));
        assert!(bad(|c| c.max_concurrent_requests = 0).contains("max_concurrent_requests"));
        assert!(bad(|c| c.body_read_timeout = Duration::ZERO).contains("body_read_timeout"));
        assert!(bad(|c| c.header_read_timeout = Duration::ZERO).contains("header_read_timeout"));
    }

    #[test]
    fn cors_origins_are_exact_origins_or_a_lone_star() {
        let origins = |list: &[&str]| {
            let config = CollectorConfig {
                cors_allowed_origins: list.iter().map(|s| s.to_string()).collect(),
                ..CollectorConfig::default()
            };
            config.validate().and_then(|()| config.cors_origins())
        };
        assert_eq!(origins(&["*"]), Ok(Some(CorsOrigins::Any)));
        assert_eq!(
            origins(&["https://app.example.com", "http://localhost:8080"]),
            Ok(Some(CorsOrigins::List(vec![
                http::HeaderValue::from_static("https://app.example.com"),
                http::HeaderValue::from_static("http://localhost:8080"),
            ])))
        );
        for (list, message) in [
            (&["*", "https://a.example"][..], "list it alone"),
            (&["app.example.com"], "no scheme"),
            (&["ftp://app.example.com"], "http or https"),
            (&["https://app.example.com/"], "no path"),
            (&["https://App.example.com"], "lowercase"),
            (&["https://"], "no path"),
        ] {
            let err = origins(list).expect_err("refused");
            assert!(err.contains(message) && err.contains("cors_allowed_origins"), "{list:?}: {err}");
        }
    }

    #[test]
    fn both_listeners_on_port_zero_is_allowed() {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = CollectorConfig { grpc_listen: any, http_listen: any, ..CollectorConfig::default() };
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn deserializes_partial_config_and_rejects_unknown_fields() {
        let config: CollectorConfig =
            serde_json::from_str(r#"{"http_listen": "127.0.0.1:9999", "max_concurrent_requests": 8}"#)
                .expect("partial config parses");
        assert_eq!(config.http_listen, SocketAddr::from(([127, 0, 0, 1], 9999)));
        assert_eq!(config.max_concurrent_requests, 8);
        assert_eq!(config.grpc_listen, CollectorConfig::default().grpc_listen);
        let err = serde_json::from_str::<CollectorConfig>(r#"{"max_body": 1}"#).expect_err("unknown field");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
