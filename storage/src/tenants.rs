//! Tenants kept apart below SQL: every tenant has its own [`Storage`] (its
//! own shard directories, WALs, manifests and object-store prefix), so a
//! query built over one tenant's tables cannot reach another's rows, and
//! each tenant can have its own retention.
//!
//! The tenant `default` keeps the layout of a single-tenant data directory
//! (`<data_dir>/shard-NNNN/…`, the bucket's root); tenant `t` lives in
//! `<data_dir>/tenants/t/` and under `tenants/t/` in the object store. A
//! tenant's storage is opened on its first write or query, and at start-up
//! for every tenant directory found, so unflushed rows in its WAL are
//! replayed before anything is served.

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

use crate::error::{IoContext, closed_write_error};
use crate::metrics::Metrics;
use crate::{Storage, StorageConfig, StorageError, WalPlacement};

/// The directory (and object-store prefix) below the root that holds the
/// tenants other than `default`.
pub const TENANTS_DIR: &str = "tenants";

/// The storage of every tenant of an all-in-one Skein.
pub struct TenantStorages {
    /// `[storage]` as configured; each tenant's is derived from it.
    config: StorageConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
    open: parking_lot::RwLock<BTreeMap<Arc<str>, Arc<Storage>>>,
    /// Held while a tenant is opened or everything closed, so each tenant
    /// is opened once and none after the close.
    changes: tokio::sync::Mutex<()>,
    closed: AtomicBool,
}

impl std::fmt::Debug for TenantStorages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantStorages").field("tenants", &self.open.read().len()).finish_non_exhaustive()
    }
}

impl TenantStorages {
    /// Opens the storage of `default` and of every tenant with a directory
    /// under `<data_dir>/tenants/` (replaying their WALs).
    pub async fn open(
        config: StorageConfig,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, StorageError> {
        config.validate().map_err(StorageError::Config)?;
        let tenants = Arc::new(Self {
            metrics: Metrics::register(registry),
            config,
            shutdown,
            open: parking_lot::RwLock::new(BTreeMap::new()),
            changes: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
        });
        tenants.get(DEFAULT_TENANT).await?;
        for tenant in tenant_dirs(&tenants.config.data_dir.join(TENANTS_DIR))? {
            tenants.get(&tenant).await?;
        }
        Ok(tenants)
    }

    /// The storage of `default`: all data of a single-tenant Skein.
    pub fn default_tenant(&self) -> Arc<Storage> {
        let open = self.open.read();
        Arc::clone(open.get(DEFAULT_TENANT).expect("the default tenant is opened first"))
    }

    /// The storage of `tenant`, opened (and created) on first use.
    pub async fn get(&self, tenant: &str) -> Result<Arc<Storage>, StorageError> {
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
        if opened >= self.config.max_tenants {
            return Err(StorageError::TooManyTenants { tenant: tenant.to_owned(), limit: self.config.max_tenants });
        }
        let config = self.tenant_config(tenant);
        let data_dir = config.data_dir.clone();
        let shards: Vec<usize> = (0..config.shards).collect();
        let storage = Storage::open_with_metrics(
            config,
            &shards,
            WalPlacement::LocalDisk,
            self.metrics.clone(),
            self.shutdown.child_token(),
        )
        .await?;
        info!(tenant, data_dir = %data_dir.display(), "tenant storage open");
        self.open.write().insert(Arc::from(tenant), Arc::clone(&storage));
        Ok(storage)
    }

    /// The tenants opened so far, by name.
    pub fn opened(&self) -> Vec<(Arc<str>, Arc<Storage>)> {
        self.open.read().iter().map(|(name, storage)| (Arc::clone(name), Arc::clone(storage))).collect()
    }

    /// `[storage]` for one tenant: its own directory and object-store
    /// prefix, and its retention where `[storage.tenants.<name>]` sets one.
    fn tenant_config(&self, tenant: &str) -> StorageConfig {
        let mut config = self.config.clone();
        config.tenants = BTreeMap::new();
        if let Some(retention) = self.config.tenants.get(tenant).and_then(|t| t.retention) {
            config.retention = Some(retention);
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
        let storage = self.get(tenant).await.map_err(|e| write_error(tenant, e))?;
        Ok(storage)
    }
}

/// How a failure to open a tenant's storage reaches the OTLP client.
fn write_error(tenant: &str, error: StorageError) -> WriteError {
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

/// The tenant directories under `dir` (absent: none). Entries that are not
/// valid tenant names are left alone, with a warning.
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
        if !entry.path().is_dir() || validate_tenant(&name).is_err() || name == DEFAULT_TENANT {
            warn!(path = %entry.path().display(), "not a tenant directory, left alone");
            continue;
        }
        tenants.push(name);
    }
    tenants.sort();
    Ok(tenants)
}
