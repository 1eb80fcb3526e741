//! Skein's integration tests: real roles on port 0, real OpenTelemetry SDKs
//! (Python, Rust, and JavaScript in Node.js and in a browser), raw OTLP/JSON
//! and Zipkin JSON as clients, and the real binary for crash tests. One test
//! binary; `support` holds the harness.

mod bad_input;
mod bench;
mod browser_sdk;
mod cluster;
mod cluster_tls;
mod compaction;
mod crash;
mod deploy;
mod encryption;
mod failover;
mod js_sdk;
mod otlp_json;
mod prometheus_api;
mod python_logs;
mod python_metrics;
mod python_sdk;
mod query_api;
mod rust_sdk;
mod security;
mod support;
mod tenancy;
mod tenant_limits;
mod ui;
mod zipkin;
