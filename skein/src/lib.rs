//! The `skein` binary crate: configuration, process wiring and commands.
//!
//! `skein all-in-one` (the default command) loads [`SkeinConfig`], opens
//! storage (replaying its write-ahead logs), binds the collector's OTLP
//! listeners with storage as its `ShardWriter`, binds the query service over
//! storage's per-shard tables, and serves until SIGINT/SIGTERM. On shutdown
//! the collector stops accepting first, then storage flushes its buffers to
//! Parquet and closes its WALs, so nothing acknowledged is lost.

pub mod bench;
pub mod config;
mod logging;
mod node;

pub use config::{ConfigFlags, LogFormat, SkeinConfig};
pub use logging::init_logging;
pub use node::{Addresses, AllInOne};
