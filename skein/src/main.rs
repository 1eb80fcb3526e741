//! `skein`: the Skein tracing backend.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use skein::{AllInOne, ConfigFlags, SkeinConfig, init_logging};
use tokio_util::sync::CancellationToken;

/// mimalloc returns freed Arrow buffers to the OS promptly and allocates
/// faster than glibc under many threads (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "skein", version, about = "Skein: a distributed tracing and metrics backend")]
struct Cli {
    #[command(flatten)]
    config: ConfigFlags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every role in one process (the default).
    AllInOne {
        /// Once ready, write the bound addresses as JSON to this file
        /// (for scripts and tests that bind port 0).
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Print the effective configuration (all sources merged) as JSON and exit.
    Config,
    /// Load generator (any OTLP backend) and query benchmark (Skein).
    Bench {
        #[command(subcommand)]
        command: skein::bench::BenchCommand,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::AllInOne { ready_file: None }) {
        // The load generator is a client: it neither reads nor depends on the server's configuration.
        Command::Bench { command } => runtime("skein-bench")?.block_on(skein::bench::run(command)),
        Command::Config => {
            let config = SkeinConfig::load(&cli.config)?;
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(())
        }
        Command::AllInOne { ready_file } => {
            let config = SkeinConfig::load(&cli.config)?;
            init_logging(&config.log);
            runtime("skein")?.block_on(run_all_in_one(config, ready_file))
        }
    }
}

fn runtime(thread_name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(thread_name)
        .build()
        .context("starting the tokio runtime")
}

async fn run_all_in_one(config: SkeinConfig, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let node = AllInOne::start(config, shutdown.clone()).await?;
    if let Some(path) = ready_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&node.addresses())?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    }
    tokio::spawn(async move {
        wait_for_signal().await;
        shutdown.cancel();
    });
    node.run().await
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only ctrl-c stops skein");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("signal received");
}
