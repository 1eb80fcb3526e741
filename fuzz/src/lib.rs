//! Fuzz targets for everything Skein parses from the network or from
//! files: OTLP/protobuf traces, metrics and logs (the zero-copy wire readers
//! checked against prost), OTLP/HTTP requests of every encoding through the
//! collector's routes, SQL through the query service's planner, safety
//! checks and execution, the parameters of the search, metrics, logs, Tempo,
//! Jaeger and Prometheus endpoints, the tokens file, and encryption at rest
//! (the keys file, and WAL records as read back from disk or the bucket).
//!
//! Each target is a plain `fn(&[u8])` that panics on a finding: a crash, a
//! 5xx answer to malformed input, or a broken invariant. Data flows from
//! the input bytes into the real code path in-process (no sockets: the
//! routes are driven as tower services over real storage in a temporary
//! directory). Two drivers run them:
//! - `cargo test` replays each target's seeds and the committed regression
//!   inputs (`fuzz/regressions/<target>/`), then a bounded, seeded run of
//!   mutations of the seeds (`SKEIN_FUZZ_MUTATIONS`, default 2000);
//! - `scripts/fuzz.sh <target>` runs one under libFuzzer with coverage
//!   instrumentation on stable Rust (the `fuzz/libfuzzer` crate), for
//!   millions of executions.

mod fixtures;
mod http_ingest;
mod keys;
pub mod mutate;
mod protobuf;
mod query_api;
mod tokens;

/// One fuzz target: its name (the regression directory's and
/// scripts/fuzz.sh's), the check, and the valid inputs mutations start from.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target { name: "otlp_traces_protobuf", run: protobuf::traces, seeds: protobuf::traces_seeds },
    Target { name: "otlp_metrics_protobuf", run: protobuf::metrics, seeds: protobuf::metrics_seeds },
    Target { name: "otlp_logs_protobuf", run: protobuf::logs, seeds: protobuf::logs_seeds },
    Target { name: "otlp_http", run: http_ingest::otlp_http, seeds: http_ingest::otlp_http_seeds },
    Target { name: "sql", run: query_api::sql, seeds: query_api::sql_seeds },
    Target { name: "query_params", run: query_api::query_params, seeds: query_api::query_params_seeds },
    Target { name: "tokens_file", run: tokens::tokens_file, seeds: tokens::tokens_file_seeds },
    Target { name: "keys_file", run: keys::keys_file, seeds: keys::keys_file_seeds },
    Target { name: "wal_record", run: keys::wal_record, seeds: keys::wal_record_seeds },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

/// The runtime the route-driving targets block on, from synchronous fuzz
/// loops (never from async code).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

#[cfg(test)]
mod tests;
