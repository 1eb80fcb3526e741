//! The `skein` binary crate: configuration, process wiring and commands.
//!
//! `skein all-in-one` (the default command) loads [`SkeinConfig`], opens
//! storage (replaying its write-ahead logs), binds the collector's OTLP
//! listeners with storage as its `ShardWriter`, binds the query service over
//! storage's per-shard tables, and serves until SIGINT/SIGTERM. The cluster
//! roles run one part each (roles.rs): `skein storage` opens the shards the
//! [`skein_model::ShardMap`] gives its node ID and serves them over Arrow
//! Flight; `skein collector` writes each shard's rows to its owner
//! (`RemoteShardWriter`); `skein query` reads every shard remotely
//! (`RemoteShardTable`). `skein cluster up` starts a local multi-process
//! cluster (cluster_up.rs) and `skein cluster status` prints a query node's
//! view of it. Every process runs its roles under the [`Supervisor`]: on
//! SIGTERM, or when any role stops, the frontends stop accepting first and
//! drain, then storage flushes its buffers to Parquet, so nothing
//! acknowledged is lost.

mod admin;
pub mod cluster_up;
pub mod config;
pub mod drain;
pub mod key;
mod logging;
mod membership;
mod node;
pub mod roles;
mod seaweedfs;
mod supervisor;
pub mod token;

pub use config::{ClusterConfig, ConfigFlags, LogFormat, SkeinConfig};
pub use logging::init_logging;
pub use node::{Addresses, AllInOne};
pub use supervisor::Supervisor;

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
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
