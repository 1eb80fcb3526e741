//! Tenants kept apart below SQL: every tenant has its own [`Storage`] (its
//! own shard directories, WALs, manifests and object-store prefix), so a
//! query built over one tenant's tables cannot reach another's rows, and
//! each tenant can have its own retention.
//!
//! The tenant `default` keeps the layout of a single-tenant data directory
//! (`<data_dir>/shard-NNNN/…`, the bucket's root); tenant `t` lives in
//! `<data_dir>/tenants/t/` and under `tenants/t/` in the object store. A
//! tenant's storage is opened on its first write or query, and at start-up
//! (and, on a storage node, every ownership tick: [`TenantStorages::discover`])
//! for every tenant directory found locally or in the bucket, so unflushed
//! rows in its WAL are replayed before anything is served. On a storage
//! node each tenant's storage opens the shards the node owns
//! ([`NodeShards`]) and follows ownership like the others.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use prometheus_client::registry::Registry;
use skein_model::security::{DEFAULT_TENANT, validate_tenant};
use skein_model::{ErrorClass, ShardWriter, TenantWriters, WriteError};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::bucket::Bucket;
use crate::encryption::Keyring;
use crate::error::{IoContext, closed_write_error};
use crate::metrics::ProcessShared;
use crate::{Storage, StorageConfig, StorageError, WalPlacement};

/// The directory (and object-store prefix) below the root that holds the
/// tenants other than `default`.
pub const TENANTS_DIR: &str = "tenants";

/// Which shards a newly opened tenant's storage holds, and where its WAL is.
#[derive(Clone)]
pub struct NodeShards {
    pub wal: WalPlacement,
    /// The shards the node owns now: all in all-in-one; in a cluster this
    /// node's share (its live share when shards fail over).
    pub owned: Arc<dyn Fn() -> Vec<usize> + Send + Sync>,
}

impl NodeShards {
    /// Every shard, WAL on local disk: all-in-one.
    pub fn all(shards: usize) -> Self {
        Self { wal: WalPlacement::LocalDisk, owned: Arc::new(move || (0..shards).collect()) }
    }
}

/// The storage of every tenant of a process (all-in-one or storage node).
pub struct TenantStorages {
    /// `[storage]` as configured; each tenant's is derived from it.
    config: StorageConfig,
    node: NodeShards,
    /// The root of the object store, to find tenants there.
    bucket: Option<Bucket>,
    /// Every tenant's keys, with `storage.encryption`.
    keyring: Option<Keyring>,
    draining: AtomicBool,
    process: ProcessShared,
    shutdown: CancellationToken,
    open: parking_lot::RwLock<BTreeMap<Arc<str>, Arc<Storage>>>,
    /// Held while a tenant is opened or everything closed, so each tenant
    /// is opened once and none after the close.
    changes: tokio::sync::Mutex<()>,
    closed: AtomicBool,
}

impl std::fmt::Debug for NodeShards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeShards").field("wal", &self.wal).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TenantStorages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantStorages").field("tenants", &self.open.read().len()).finish_non_exhaustive()
    }
}

impl TenantStorages {
    /// Opens every shard of `default` and of every tenant found (all-in-one).
    pub async fn open(
        config: StorageConfig,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, StorageError> {
        let node = NodeShards::all(config.shards);
        Self::open_node(config, node, registry, shutdown).await
    }

    /// Opens the storage of `default` and of every tenant with a directory
    /// under `<data_dir>/tenants/` or `tenants/` in the object store
    /// (replaying their WALs), each holding the shards `node` says.
    pub async fn open_node(
        config: StorageConfig,
        node: NodeShards,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, StorageError> {
        config.validate().map_err(StorageError::Config)?;
        let keyring = config.encryption.as_ref().map(Keyring::load).transpose()?;
        let bucket = match &config.object_store {
            Some(object_store) => Some(Bucket::connect(object_store).await?),
            None => None,
        };
        let tenants = Arc::new(Self {
            process: ProcessShared::register(registry),
            config,
            node,
            bucket,
            keyring,
            draining: AtomicBool::new(false),
            shutdown,
            open: parking_lot::RwLock::new(BTreeMap::new()),
            changes: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
        });
        tenants.get(DEFAULT_TENANT).await?;
        tenants.discover().await?;
        Ok(tenants)
    }

    /// Opens every tenant found in the data directory or the object store
    /// that is not open yet: another node may have created one whose
    /// shards this node now owns.
    pub async fn discover(&self) -> Result<(), StorageError> {
        let mut found = tenant_dirs(&self.config.data_dir.join(TENANTS_DIR))?;
        if let Some(bucket) = &self.bucket {
            found.extend(bucket.list_dirs(TENANTS_DIR).await?);
        }
        found.sort();
        found.dedup();
        for tenant in found {
            if validate_tenant(&tenant).is_err() || tenant == DEFAULT_TENANT {
                warn!(tenant, "not a tenant's directory, left alone");
                continue;
            }
            // Tenants with data are opened past max_tenants: their WALs
            // hold acknowledged rows, and the limit is on new tenants.
            self.open_tenant(&tenant, false).await?;
        }
        Ok(())
    }

    /// Hands every tenant's shards off ([`Storage::start_draining`]),
    /// those of tenants opened later too.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        for (_, storage) in self.opened() {
            storage.start_draining();
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Buffered bytes of `shard` over every tenant (`None`: not held here).
    pub fn unflushed_bytes(&self, shard: usize) -> Option<u64> {
        self.open.read().values().filter_map(|storage| storage.unflushed_bytes(shard)).reduce(|a, b| a + b)
    }

    /// The storage of `default`: all data of a single-tenant Skein.
    pub fn default_tenant(&self) -> Arc<Storage> {
        let open = self.open.read();
        Arc::clone(open.get(DEFAULT_TENANT).expect("the default tenant is opened first"))
    }

    /// The storage of `tenant`, opened (and created) on first use; a new
    /// tenant past `storage.max_tenants` is refused.
    pub async fn get(&self, tenant: &str) -> Result<Arc<Storage>, StorageError> {
        self.open_tenant(tenant, true).await
    }

    async fn open_tenant(&self, tenant: &str, within_limit: bool) -> Result<Arc<Storage>, StorageError> {
        if let Some(storage) = self.open.read().get(tenant) {
            return Ok(Arc::clone(storage));
        }
        validate_tenant(tenant).map_err(StorageError::Config)?;
        let _changing = self.changes.lock().await;
        if self.closed.load(Ordering::SeqCst) {
            return Err(StorageError::Closed);
        }
        if let Some(storage) = self.open.read().get(tenant) {
            return Ok(Arc::clone(storage));
        }
        let opened = self.open.read().len();
        if within_limit && opened >= self.config.max_tenants {
            return Err(StorageError::TooManyTenants { tenant: tenant.to_owned(), limit: self.config.max_tenants });
        }
        let config = self.tenant_config(tenant);
        let data_dir = config.data_dir.clone();
        let shards = (self.node.owned)();
        let keys = self.keyring.as_ref().map(|keyring| keyring.for_tenant(tenant)).transpose()?;
        let encryption_key = keys.as_ref().map(|k| k.active_key_id().to_owned());
        let storage = Storage::open_shared(
            config,
            &shards,
            self.node.wal,
            self.process.clone(),
            keys,
            self.shutdown.child_token(),
        )
        .await?;
        if self.is_draining() {
            storage.start_draining();
        }
        info!(tenant, data_dir = %data_dir.display(), shards = shards.len(), encryption_key = ?encryption_key, "tenant storage open");
        let tenants = {
            let mut open = self.open.write();
            open.insert(Arc::from(tenant), Arc::clone(&storage));
            open.len()
        };
        self.process.tenants.set(i64::try_from(tenants).unwrap_or(i64::MAX));
        Ok(storage)
    }

    /// The tenants opened so far, by name.
    pub fn opened(&self) -> Vec<(Arc<str>, Arc<Storage>)> {
        self.open.read().iter().map(|(name, storage)| (Arc::clone(name), Arc::clone(storage))).collect()
    }

    /// `[storage]` for one tenant: its own directory and object-store
    /// prefix, and its retention and trace size limit where
    /// `[storage.tenants.<name>]` sets them.
    fn tenant_config(&self, tenant: &str) -> StorageConfig {
        let mut config = self.config.clone();
        config.tenants = BTreeMap::new();
        if let Some(own) = self.config.tenants.get(tenant) {
            config.retention = own.retention.or(config.retention);
            config.max_spans_per_trace = own.max_spans_per_trace.unwrap_or(config.max_spans_per_trace);
        }
        if tenant == DEFAULT_TENANT {
            return config;
        }
        config.data_dir = self.config.data_dir.join(TENANTS_DIR).join(tenant);
        if let Some(object_store) = &mut config.object_store {
            object_store.url = format!("{}/{TENANTS_DIR}/{tenant}", object_store.url.trim_end_matches('/'));
        }
        config
    }

    /// Whether the object store answers, through the default tenant's.
    pub async fn check_object_store(&self, within: std::time::Duration) -> Result<(), StorageError> {
        self.default_tenant().check_object_store(within).await
    }

    /// Flushes and closes every tenant's storage; no tenant opens after it.
    /// Every tenant is closed even when one fails; the first error is returned.
    pub async fn close(&self) -> Result<(), StorageError> {
        self.closed.store(true, Ordering::SeqCst);
        let _changing = self.changes.lock().await;
        let mut first_error = None;
        for (tenant, storage) in self.opened() {
            if let Err(e) = storage.close().await {
                error!(tenant = &*tenant, error = %e, "closing a tenant's storage failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[async_trait]
impl TenantWriters for TenantStorages {
    async fn writer(&self, tenant: &str) -> Result<Arc<dyn ShardWriter>, WriteError> {
        let storage = self.get(tenant).await.map_err(|e| tenant_write_error(tenant, e))?;
        Ok(storage)
    }
}

/// How a failure to open a tenant's storage reaches the OTLP client.
pub(crate) fn tenant_write_error(tenant: &str, error: StorageError) -> WriteError {
    match error {
        StorageError::TooManyTenants { tenant, limit } => WriteError::TooManyTenants { tenant, limit },
        StorageError::Closed => closed_write_error(),
        other => match other.class() {
            ErrorClass::Unavailable { retry_after } => {
                WriteError::Unavailable { reason: format!("tenant {tenant}: {other}"), retry_after }
            }
            _ => WriteError::Internal(format!("opening the storage of tenant {tenant}: {other}")),
        },
    }
}

/// The directories under `dir` (absent: none).
fn tenant_dirs(dir: &Path) -> Result<Vec<String>, StorageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx(|| format!("listing {}", dir.display())),
    };
    let mut tenants = Vec::new();
    for entry in entries {
        let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            tenants.push(name);
        }
    }
    tenants.sort();
    Ok(tenants)
}
