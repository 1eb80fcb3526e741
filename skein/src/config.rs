//! Skein's configuration: one typed struct per role, layered from
//! defaults < TOML file < `SKEIN_*` environment < command-line flags.
//!
//! Environment variables name a section and a key separated by a double
//! underscore, e.g. `SKEIN_STORAGE__DATA_DIR=/var/lib/skein` or
//! `SKEIN_QUERY__TIMEOUT=10s`. Unknown keys are errors, wherever they come from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use skein_collector::CollectorConfig;
use skein_model::cluster::parse_storage_node;
use skein_model::security::{AuthConfig, ClusterTls, ClusterTlsConfig, ListenerSecurity, TlsConfig};
use skein_query::QueryConfig;
use skein_storage::StorageConfig;

/// Log output settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `skein_storage=debug,info`.
    pub filter: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { filter: "info".into(), format: LogFormat::Text }
    }
}

/// How the roles of a multi-process cluster find each other. Unused by
/// all-in-one. `storage.shards` is the cluster's virtual shard count and
/// must be equal on every member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This storage node's ID (storage role): one of `storage_nodes`. Shard
    /// ownership follows the IDs, so an ID must stay with its data directory.
    pub node_id: String,
    /// Every storage node as `id=host:port` (its internal port). Collectors
    /// and query nodes need the addresses; storage nodes only the IDs.
    pub storage_nodes: Vec<String>,
    /// Instead of `storage_nodes`: an SRV name whose records list the
    /// storage nodes' internal ports (a Kubernetes headless Service, e.g.
    /// `_internal._tcp.skein-storage.skein.svc.cluster.local`), looked up
    /// again every `dns_refresh`. A node's ID is the first label of its SRV
    /// target (the pod name in a StatefulSet). Needs storage.object_store on
    /// storage nodes: membership changes move shards, which only the WAL in
    /// the object store allows.
    pub storage_dns: String,
    /// How often `storage_dns` is looked up again.
    #[serde(with = "humantime_serde")]
    pub dns_refresh: Duration,
    /// DNS servers (`ip:port`) asked for `storage_dns`; empty: the system's
    /// (`/etc/resolv.conf`).
    pub dns_servers: Vec<SocketAddr>,
    /// Storage role: Arrow Flight (writes, scans, node info) and gRPC health.
    pub internal_listen: SocketAddr,
    /// Storage role: HTTP `/healthz`, `/readyz` and `/metrics`.
    pub admin_listen: SocketAddr,
    /// How often collectors and query nodes check every storage node.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// Time to connect to a storage node.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time for one write or health check; a hung node is unavailable after it.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long a storage node must fail every health check before its
    /// shards move to the live storage nodes. Shards fail over only when
    /// storage nodes have an object store and every `storage_nodes` entry
    /// has an address (their WAL is then in the object store).
    #[serde(with = "humantime_serde")]
    pub failover_after: Duration,
    /// `[cluster.tls]`: mTLS on the storage nodes' internal port, against
    /// the cluster's own CA (docs/security.md).
    pub tls: ClusterTlsConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            storage_nodes: Vec::new(),
            storage_dns: String::new(),
            dns_refresh: Duration::from_secs(10),
            dns_servers: Vec::new(),
            internal_listen: SocketAddr::from(([0, 0, 0, 0], 7400)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 7401)),
            health_interval: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            failover_after: Duration::from_secs(10),
            tls: ClusterTlsConfig::default(),
        }
    }
}

impl ClusterConfig {
    /// The `storage_nodes` entries as (ID, address); every one needs an
    /// address (collectors and query nodes).
    pub fn storage_addresses(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut nodes = Vec::with_capacity(self.storage_nodes.len());
        for entry in &self.storage_nodes {
            let (id, address) = parse_storage_node(entry).map_err(|e| anyhow::anyhow!("cluster.storage_nodes: {e}"))?;
            let address = address.with_context(|| {
                format!("cluster.storage_nodes: {entry:?} has no address; write it as id=host:port")
            })?;
            nodes.push((id, address));
        }
        if nodes.is_empty() {
            bail!("cluster.storage_nodes is empty: list every storage node as id=host:port");
        }
        Ok(nodes)
    }

    /// The storage node IDs (addresses optional: storage nodes).
    pub fn storage_ids(&self) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(self.storage_nodes.len());
        for entry in &self.storage_nodes {
            ids.push(parse_storage_node(entry).map_err(|e| anyhow::anyhow!("cluster.storage_nodes: {e}"))?.0);
        }
        Ok(ids)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.storage_ids()?;
        if !self.storage_dns.is_empty() && !self.storage_nodes.is_empty() {
            bail!("cluster.storage_nodes and cluster.storage_dns are both set: give the storage nodes one way");
        }
        for (name, value) in [
            ("dns_refresh", self.dns_refresh),
            ("health_interval", self.health_interval),
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                bail!("cluster.{name} must be greater than 0");
            }
        }
        if self.failover_after < self.health_interval {
            bail!(
                "cluster.failover_after ({:?}) must be at least cluster.health_interval ({:?}): a node must miss a \
                 health check before its shards move",
                self.failover_after,
                self.health_interval
            );
        }
        self.tls.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}

/// The whole configuration of a Skein process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SkeinConfig {
    pub collector: CollectorConfig,
    pub storage: StorageConfig,
    pub query: QueryConfig,
    pub cluster: ClusterConfig,
    /// TLS on the external listeners (OTLP gRPC and HTTP, query API).
    pub tls: TlsConfig,
    /// Bearer tokens on the external listeners.
    pub auth: AuthConfig,
    pub log: LogConfig,
}

/// Settings given as flags; each one, when present, overrides every other source.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ConfigFlags {
    /// TOML configuration file (also `SKEIN_CONFIG`).
    #[arg(long, short = 'c', env = "SKEIN_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Where WAL and Parquet files live.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address.
    #[arg(long, global = true)]
    pub otlp_grpc_listen: Option<String>,
    /// OTLP/HTTP listen address.
    #[arg(long, global = true)]
    pub otlp_http_listen: Option<String>,
    /// Query API listen address.
    #[arg(long, global = true)]
    pub query_listen: Option<String>,
    /// Keep flushed Parquet files and manifests in this object store:
    /// `s3://bucket[/prefix]` or `file:///path` (storage.object_store.url).
    #[arg(long, global = true)]
    pub object_store: Option<String>,
    /// S3 endpoint of the object store, e.g. `http://127.0.0.1:8333` for a
    /// local SeaweedFS (a plain-HTTP endpoint given here is allowed).
    #[arg(long, global = true, requires = "object_store")]
    pub object_store_endpoint: Option<String>,
    /// Number of shards (of the whole cluster, equal on every member).
    #[arg(long, global = true)]
    pub shards: Option<usize>,
    /// Storage role: this node's ID.
    #[arg(long, global = true)]
    pub node_id: Option<String>,
    /// Every storage node, comma-separated `id=host:port` entries.
    #[arg(long, global = true, value_delimiter = ',')]
    pub storage_nodes: Option<Vec<String>>,
    /// Find the storage nodes in DNS: an SRV name (cluster.storage_dns).
    #[arg(long, global = true, conflicts_with = "storage_nodes")]
    pub storage_dns: Option<String>,
    /// DNS servers for --storage-dns, comma-separated `ip:port` (default: the system's).
    #[arg(long, global = true, value_delimiter = ',', requires = "storage_dns")]
    pub dns_servers: Option<Vec<String>>,
    /// Storage role: internal (Arrow Flight) listen address.
    #[arg(long, global = true)]
    pub internal_listen: Option<String>,
    /// Storage role: HTTP health and metrics listen address.
    #[arg(long, global = true)]
    pub admin_listen: Option<String>,
    /// Log filter, e.g. `debug` or `skein_storage=debug,info`.
    #[arg(long, global = true)]
    pub log_filter: Option<String>,
    /// Log format.
    #[arg(long, global = true)]
    pub log_format: Option<LogFormat>,
}

impl ConfigFlags {
    /// The flags as a partial config tree, only the keys that were given.
    fn overrides(&self) -> serde_json::Value {
        let mut root = serde_json::Map::new();
        let mut set = |section: &str, key: &str, value: serde_json::Value| {
            let entry = root.entry(section.to_owned()).or_insert_with(|| serde_json::json!({}));
            if let Some(obj) = entry.as_object_mut() {
                obj.insert(key.to_owned(), value);
            }
        };
        if let Some(v) = &self.data_dir {
            set("storage", "data_dir", serde_json::json!(v));
        }
        if let Some(v) = self.shards {
            set("storage", "shards", serde_json::json!(v));
        }
        if let Some(url) = &self.object_store {
            let mut store = serde_json::json!({ "url": url });
            if let Some(endpoint) = &self.object_store_endpoint {
                store["endpoint"] = serde_json::json!(endpoint);
                store["allow_http"] = serde_json::json!(endpoint.starts_with("http://"));
            }
            set("storage", "object_store", store);
        }
        if let Some(v) = &self.otlp_grpc_listen {
            set("collector", "grpc_listen", serde_json::json!(v));
        }
        if let Some(v) = &self.otlp_http_listen {
            set("collector", "http_listen", serde_json::json!(v));
        }
        if let Some(v) = &self.query_listen {
            set("query", "listen", serde_json::json!(v));
        }
        if let Some(v) = &self.node_id {
            set("cluster", "node_id", serde_json::json!(v));
        }
        if let Some(v) = &self.storage_nodes {
            set("cluster", "storage_nodes", serde_json::json!(v));
        }
        if let Some(v) = &self.storage_dns {
            set("cluster", "storage_dns", serde_json::json!(v));
        }
        if let Some(v) = &self.dns_servers {
            set("cluster", "dns_servers", serde_json::json!(v));
        }
        if let Some(v) = &self.internal_listen {
            set("cluster", "internal_listen", serde_json::json!(v));
        }
        if let Some(v) = &self.admin_listen {
            set("cluster", "admin_listen", serde_json::json!(v));
        }
        if let Some(v) = &self.log_filter {
            set("log", "filter", serde_json::json!(v));
        }
        if let Some(v) = self.log_format {
            set("log", "format", serde_json::json!(v));
        }
        serde_json::Value::Object(root)
    }
}

impl SkeinConfig {
    /// Loads the configuration with the documented precedence and validates it.
    pub fn load(flags: &ConfigFlags) -> anyhow::Result<Self> {
        Self::load_from(flags, Env::prefixed("SKEIN_"))
    }

    fn load_from(flags: &ConfigFlags, env: Env) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(SkeinConfig::default()));
        if let Some(path) = &flags.config {
            if !Path::new(path).is_file() {
                bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only SECTION__KEY variables are config; others (SKEIN_CONFIG, test
        // settings) are not, so they cannot trip deny_unknown_fields.
        let env = env.filter(|key| key.as_str().contains("__")).split("__");
        figment = figment.merge(env).merge(Serialized::defaults(flags.overrides()));
        let config: SkeinConfig = figment.extract().context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.collector.validate().map_err(|e| anyhow::anyhow!("collector: {e}"))?;
        self.storage.validate().map_err(|e| anyhow::anyhow!("storage: {e}"))?;
        self.query.validate().map_err(|e| anyhow::anyhow!("query: {e}"))?;
        self.cluster.validate()?;
        self.tls.validate().map_err(|e| anyhow::anyhow!("tls: {e}"))?;
        if self.log.filter.parse::<tracing_subscriber::EnvFilter>().is_err() {
            bail!("log: filter {:?} is not a valid tracing filter", self.log.filter);
        }
        Ok(())
    }
}

impl SkeinConfig {
    /// Loads `[cluster.tls]` for the ports between roles (`None` when unset)
    /// and logs whether it is on; reloads follow file changes until `shutdown`.
    pub fn cluster_tls(
        &self,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Option<std::sync::Arc<ClusterTls>>> {
        if !self.cluster.tls.enabled() {
            tracing::info!("cluster tls off: the internal port speaks clear text to any member");
            return Ok(None);
        }
        let tls = ClusterTls::load(self.cluster.tls.clone()).context("loading [cluster.tls]")?;
        tracing::info!(ca_file = ?self.cluster.tls.ca_file, "cluster tls on: members need a certificate of the cluster ca");
        let watched = std::sync::Arc::clone(&tls);
        tokio::spawn(skein_model::security::watch_files(tls.files(), shutdown.clone(), move || watched.reload()));
        Ok(Some(tls))
    }

    /// Loads `[tls]` and `[auth]` for the external listeners and logs what
    /// protects them; reloads follow file changes until `shutdown`.
    pub fn listener_security(
        &self,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<ListenerSecurity> {
        let security = ListenerSecurity::load(&self.tls, &self.auth).context("loading [tls] and [auth]")?;
        match &security.auth {
            Some(auth) => tracing::info!(
                tokens_file = %auth.path().display(),
                tokens = auth.token_count(),
                "auth on: every OTLP and query API request needs a bearer token, whose tenant it acts for"
            ),
            None if security.multi_tenant => tracing::info!(
                "auth off, multi-tenant: the X-Scope-OrgID header chooses the tenant; anyone who reaches the ports \
                 can write and read any tenant (see docs/security.md)"
            ),
            None => tracing::info!(
                "auth off: single tenant, no tokens; anyone who reaches the ports can write and read (see docs/security.md)"
            ),
        }
        if security.tls.is_none() {
            tracing::info!("tls off: the external ports speak clear text");
        }
        security.spawn_reloads(shutdown);
        Ok(security)
    }
}

// figment::Jail fixes the closure's error type (figment::Error, which is large).
#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    /// An environment source no variable matches, for tests that must not
    /// see the developer's own SKEIN_* settings.
    fn no_env() -> Env {
        Env::prefixed("SKEIN_UNIT_TEST_UNSET_")
    }

    #[test]
    fn defaults_are_valid_and_documented_ports() {
        let config = SkeinConfig::load_from(&ConfigFlags::default(), no_env()).expect("defaults load");
        assert_eq!(config.collector.grpc_listen.port(), 4317);
        assert_eq!(config.collector.http_listen.port(), 4318);
        assert_eq!(config.query.listen.port(), 7300);
        assert_eq!(config.storage.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "skein.toml",
                "[storage]\ndata_dir = \"/from/file\"\nshards = 3\n[query]\ntimeout = \"5s\"\n",
            )?;
            jail.set_env("SKEIN_STORAGE__SHARDS", "4");
            jail.set_env("SKEIN_QUERY__TIMEOUT", "7s");
            let flags = ConfigFlags { config: Some("skein.toml".into()), shards: Some(5), ..ConfigFlags::default() };
            let config = SkeinConfig::load_from(&flags, Env::prefixed("SKEIN_")).expect("loads");
            assert_eq!(config.storage.data_dir, PathBuf::from("/from/file"));
            assert_eq!(config.storage.shards, 5);
            assert_eq!(config.query.timeout, std::time::Duration::from_secs(7));
            Ok(())
        });
    }

    #[test]
    fn object_store_from_file_env_and_flags_merges_key_by_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("skein.toml", "[storage.object_store]\nurl = \"s3://file/x\"\nregion = \"eu-west-1\"\n")?;
            jail.set_env("SKEIN_STORAGE__OBJECT_STORE__ACCESS_KEY_ID", "from-env");
            let flags = ConfigFlags {
                config: Some("skein.toml".into()),
                object_store: Some("s3://flag/y".into()),
                object_store_endpoint: Some("http://127.0.0.1:8333".into()),
                ..ConfigFlags::default()
            };
            let config = SkeinConfig::load_from(&flags, Env::prefixed("SKEIN_")).expect("loads");
            let store = config.storage.object_store.expect("object store configured");
            assert_eq!(store.url, "s3://flag/y");
            assert_eq!(store.region, "eu-west-1");
            assert_eq!(store.access_key_id.as_deref(), Some("from-env"));
            assert_eq!(store.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
            assert!(store.allow_http, "a plain-HTTP endpoint given as a flag is allowed");

            jail.create_file("bad.toml", "[storage.object_store]\nurl = \"gs://nope\"\n")?;
            let flags = ConfigFlags { config: Some("bad.toml".into()), ..ConfigFlags::default() };
            let err = SkeinConfig::load_from(&flags, Env::prefixed("SKEIN_UNSET_")).expect_err("refused");
            assert!(format!("{err:#}").contains("s3://bucket[/prefix] or file:///path"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("skein.toml", "[storage]\ndata_dri = \"/typo\"\n")?;
            let flags = ConfigFlags { config: Some("skein.toml".into()), ..ConfigFlags::default() };
            let err = SkeinConfig::load_from(&flags, Env::prefixed("SKEIN_")).expect_err("typo refused");
            assert!(format!("{err:#}").contains("data_dri"), "{err:#}");
            jail.set_env("SKEIN_QUERY__NOPE", "1");
            let err = SkeinConfig::load_from(&ConfigFlags::default(), Env::prefixed("SKEIN_")).expect_err("refused");
            assert!(format!("{err:#}").contains("nope"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn storage_nodes_come_from_a_list_or_dns_not_both() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "skein.toml",
                "[cluster]\nstorage_dns = \"_internal._tcp.skein-storage\"\ndns_servers = [\"10.0.0.10:53\"]\n",
            )?;
            let flags = ConfigFlags { config: Some("skein.toml".into()), ..ConfigFlags::default() };
            let config = SkeinConfig::load_from(&flags, no_env()).expect("dns discovery loads");
            assert_eq!(config.cluster.dns_servers, ["10.0.0.10:53".parse::<SocketAddr>().expect("an address")]);
            assert_eq!(config.cluster.dns_refresh, Duration::from_secs(10));
            let both = ConfigFlags { storage_nodes: Some(vec!["s-0=127.0.0.1:7400".into()]), ..flags };
            let err = SkeinConfig::load_from(&both, no_env()).expect_err("both refused");
            assert!(format!("{err:#}").contains("storage_nodes and cluster.storage_dns are both set"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn collector_http_extras_from_env() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "SKEIN_COLLECTOR__CORS_ALLOWED_ORIGINS",
                r#"["https://shop.example.com", "http://localhost:5173"]"#,
            );
            jail.set_env("SKEIN_COLLECTOR__BODY_READ_TIMEOUT", "5s");
            jail.set_env("SKEIN_COLLECTOR__ZIPKIN_ENABLED", "false");
            let config = SkeinConfig::load_from(&ConfigFlags::default(), Env::prefixed("SKEIN_")).expect("loads");
            assert_eq!(config.collector.cors_allowed_origins, ["https://shop.example.com", "http://localhost:5173"]);
            assert_eq!(config.collector.body_read_timeout, Duration::from_secs(5));
            assert!(!config.collector.zipkin_enabled);
            jail.set_env("SKEIN_COLLECTOR__CORS_ALLOWED_ORIGINS", r#"["shop.example.com"]"#);
            let err = SkeinConfig::load_from(&ConfigFlags::default(), Env::prefixed("SKEIN_")).expect_err("refused");
            assert!(format!("{err:#}").contains("cors_allowed_origins"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn example_config_in_deploy_is_valid_and_matches_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/skein.toml");
        let flags = ConfigFlags { config: Some(path), ..ConfigFlags::default() };
        let config = SkeinConfig::load_from(&flags, no_env()).expect("deploy/skein.toml loads");
        let defaults = SkeinConfig::default();
        assert_eq!(serde_json::to_value(&config).ok(), serde_json::to_value(&defaults).ok());
    }

    #[test]
    fn missing_config_file_is_a_clear_error() {
        let flags = ConfigFlags { config: Some("/nonexistent/skein.toml".into()), ..ConfigFlags::default() };
        let err = SkeinConfig::load_from(&flags, no_env()).expect_err("missing file");
        assert!(err.to_string().contains("does not exist"));
    }
}
