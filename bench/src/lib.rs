//! `skein bench`: a load generator and a query benchmark, and ([`client`])
//! how Skein's own clients (`skein bench`, `skein cluster status`, `skein
//! storage --drain`) reach a Skein with TLS and tokens. The `skein` binary
//! only parses the command line and calls [`run`].
//!
//! `ingest` speaks plain OTLP (gRPC or HTTP), so it can load any OTLP
//! backend: it pre-encodes a pool of realistic shop traces ([`workload`])
//! or metrics ([`metrics_workload`]), then connection workers send copies
//! whose IDs and times are patched ([`pool`]) so that no span repeats and
//! every metric series moves forward, at a paced or maximal rate. It
//! reports acknowledged spans or data points per second, errors by kind
//! and export latency, plus the server's CPU, memory ([`procfs`]) and
//! Parquet bytes per item when it runs on the same machine. `query` then times Skein's trace lookup,
//! search and SQL API. Both are library calls returning report structs, so
//! tests drive them in-process.

pub mod client;
mod error;
mod ids;
mod ingest;
mod metrics_catalog;
mod metrics_workload;
mod pool;
mod procfs;
mod progress;
mod query;
mod report;
mod semconv;
mod signal;
mod stats;
mod transport;
mod wire;
mod workload;

#[cfg(test)]
mod metrics_tests;

use crate::error::{Context, bail};

pub use error::{BenchError, Result};
pub use ingest::{IngestArgs, Rate, ingest, parquet_bytes};
pub use query::{QueryArgs, query};
pub use report::{IngestReport, QueryReport};
pub use signal::Signal;
pub use transport::Protocol;

/// The `skein bench` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Send generated traces or metrics over plain OTLP and report throughput, errors and latency.
    Ingest(IngestArgs),
    /// Time trace lookups, searches and SQL aggregates against the Skein query API.
    Query(QueryArgs),
}

/// Runs a bench command and prints its report: text on stdout, or one JSON
/// object with `--json`. Fails when nothing was acknowledged or a query failed.
pub async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Ingest(args) => {
            let json = args.json;
            let report = ingest(args).await?;
            print(json, &report, IngestReport::render)?;
            if report.items_acknowledged == 0 {
                bail!("no {} was acknowledged ({} errors)", report.signal.item(), report.errors);
            }
        }
        BenchCommand::Query(args) => {
            let json = args.json;
            let report = query(args).await?;
            print(json, &report, QueryReport::render)?;
            if report.errors > 0 {
                bail!("{} query API requests failed", report.errors);
            }
        }
    }
    Ok(())
}

fn print<R: serde::Serialize>(json: bool, report: &R, render: impl Fn(&R) -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report).context("encoding the report as JSON")?);
    } else {
        print!("{}", render(report));
    }
    Ok(())
}
