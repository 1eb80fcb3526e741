//! `skein`: the Skein tracing backend.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use skein::cluster_up::{UpArgs, write_json_atomically};
use skein::roles::{Role, Started};
use skein::{AllInOne, ConfigFlags, SkeinConfig, init_logging, wait_for_signal};
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

#[derive(Debug, Clone, clap::Args)]
struct ReadyFile {
    /// Once ready, write the bound addresses as JSON to this file
    /// (for scripts and tests that bind port 0).
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
struct StorageArgs {
    #[command(flatten)]
    ready: ReadyFile,
    /// Instead of running a storage node: ask the one running with this
    /// configuration to hand all its shards to the other nodes (it needs
    /// the object store), and wait until it holds none.
    #[arg(long)]
    drain: bool,
    /// The running node's admin URL for --drain [default: from
    /// cluster.admin_listen, on loopback when it listens on all interfaces].
    #[arg(long, requires = "drain")]
    admin: Option<String>,
    /// How long --drain waits for the shards to move.
    #[arg(long, default_value = "5m", value_parser = humantime_serde::re::humantime::parse_duration, requires = "drain")]
    drain_timeout: std::time::Duration,
    /// How --drain reaches the node: its CA with `[tls]`, a token of the
    /// `admin` scope with `[auth]`.
    #[command(flatten)]
    security: skein_bench::client::ClientSecurity,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every role in one process (the default).
    AllInOne(ReadyFile),
    /// Run a collector: OTLP in, routed to the storage nodes by shard.
    Collector(ReadyFile),
    /// Run a storage node: the shards its node ID owns, served over Arrow Flight.
    Storage(StorageArgs),
    /// Run a query node: SQL and the HTTP API over every storage node.
    Query(ReadyFile),
    /// A local multi-process cluster, and a cluster's status.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Print the effective configuration (all sources merged) as JSON and exit.
    Config,
    /// Bearer tokens for `[auth]`.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Encryption keys for `[storage.encryption]`.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Load generator (any OTLP backend) and query benchmark (Skein).
    Bench {
        #[command(subcommand)]
        command: skein_bench::BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a token, print it once, and append its hash to a tokens file.
    Create(skein::token::CreateArgs),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make a random AES-256 key and append it to a keys file (or print it).
    Create(skein::key::CreateArgs),
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Start collectors, storage nodes and query nodes as separate processes on this machine.
    Up(UpArgs),
    /// Members, health, shard ownership and unflushed bytes, as a query node sees them.
    Status {
        /// A query node's base URL, e.g. http://127.0.0.1:7300.
        #[arg(long, default_value = "http://127.0.0.1:7300")]
        query: String,
        /// Print the raw JSON of `/api/v1/cluster`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        security: skein_bench::client::ClientSecurity,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::AllInOne(ReadyFile { ready_file: None })) {
        // The load generator is a client: it neither reads nor depends on the server's configuration.
        Command::Bench { command } => Ok(runtime("skein-bench")?.block_on(skein_bench::run(command))?),
        Command::Token { command: TokenCommand::Create(args) } => skein::token::create(args),
        Command::Key { command: KeyCommand::Create(args) } => skein::key::create(args),
        Command::Config => {
            let config = SkeinConfig::load(&cli.config)?;
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(())
        }
        Command::Cluster { command: ClusterCommand::Status { query, json, security } } => {
            runtime("skein")?.block_on(skein::cluster_up::status(&query, json, &security))
        }
        Command::Cluster { command: ClusterCommand::Up(args) } => {
            init_logging(&skein::config::LogConfig::default());
            runtime("skein")?.block_on(skein::cluster_up::up(args))
        }
        Command::AllInOne(ready) => run_role(&cli.config, Role::AllInOne, ready.ready_file),
        Command::Collector(ready) => run_role(&cli.config, Role::Collector, ready.ready_file),
        Command::Storage(StorageArgs { drain: true, admin, drain_timeout, security, .. }) => {
            let admin = match admin {
                Some(url) => url,
                None => {
                    let config = SkeinConfig::load(&cli.config)?;
                    skein::drain::local_admin_url(config.cluster.admin_listen, config.tls.enabled())
                }
            };
            runtime("skein")?.block_on(skein::drain::drain(&admin, drain_timeout, &security))
        }
        Command::Storage(args) => run_role(&cli.config, Role::Storage, args.ready.ready_file),
        Command::Query(ready) => run_role(&cli.config, Role::Query, ready.ready_file),
    }
}

fn run_role(flags: &ConfigFlags, role: Role, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    let config = SkeinConfig::load(flags)?;
    init_logging(&config.log);
    runtime("skein")?.block_on(serve(config, role, ready_file))
}

fn runtime(thread_name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(thread_name)
        .build()
        .context("starting the tokio runtime")
}

async fn serve(config: SkeinConfig, role: Role, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let (addresses, supervisor) = match role {
        Role::AllInOne => {
            let node = AllInOne::start(config, shutdown.clone()).await?;
            (serde_json::to_value(node.addresses())?, node.into_supervisor())
        }
        Role::Collector | Role::Storage | Role::Query => {
            let Started { addresses, supervisor } = match role {
                Role::Collector => skein::roles::start_collector(&config, &shutdown).await?,
                Role::Storage => skein::roles::start_storage(&config, &shutdown).await?,
                _ => skein::roles::start_query(&config, &shutdown).await?,
            };
            (serde_json::to_value(addresses)?, supervisor)
        }
    };
    if let Some(path) = ready_file {
        write_json_atomically(&path, &addresses)?;
    }
    let signalled = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signalled.cancel();
    });
    supervisor.run(shutdown).await
}
