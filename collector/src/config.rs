//! The collector's configuration: where to listen and the limits applied to
//! every request.

use std::net::SocketAddr;

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
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 4317)),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 4318)),
            max_request_bytes: 16 * 1024 * 1024,
            max_attribute_value_bytes: 64 * 1024,
            max_concurrent_requests: 256,
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
        Ok(())
    }
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
