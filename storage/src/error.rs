//! The storage crate's error type and its mapping to [`ErrorClass`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::parquet::errors::ParquetError;
use skein_model::{ErrorClass, WriteError};

/// How long clients should wait before retrying a write refused because
/// flushing is behind or storage is shutting down.
pub(crate) const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long clients should wait before retrying a write refused because the
/// WAL queue is full.
pub(crate) const OVERLOADED_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage config: {0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("datafusion: {0}")]
    DataFusion(#[from] DataFusionError),
    #[error("deriving span metrics: {0}")]
    Model(#[from] skein_model::ModelError),
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot open {path}: {reason}")]
    UnsupportedLayout { path: PathBuf, reason: String },
    #[error("object store {store}: {context}: {source}")]
    ObjectStore {
        store: String,
        context: String,
        #[source]
        source: object_store::Error,
    },
    #[error("object store {store} did not answer within {after:?}")]
    ObjectStoreTimeout { store: String, after: Duration },
    #[error(
        "shard {shard}: {key} in the object store {store} was committed by another writer (another node \
         writes this shard, or an earlier commit of this node is unresolved); restart the node to reload the shard"
    )]
    ManifestConflict { shard: usize, key: String, store: String },
    #[error(
        "{path} is in use by another Skein process{}: stop it first, or give this one its own data directory",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    DataDirInUse { path: PathBuf, holder: Option<u32> },
    #[error("storage is closed")]
    Closed,
    #[error(
        "tenant {tenant:?} cannot be added: this Skein already holds its limit of {limit} tenants (storage.max_tenants)"
    )]
    TooManyTenants { tenant: String, limit: usize },
    #[error("no such shard {0}")]
    NoSuchShard(usize),
    #[error("background task failed: {0}")]
    Task(String),
}

impl StorageError {
    pub fn class(&self) -> ErrorClass {
        match self {
            StorageError::Config(_) | StorageError::UnsupportedLayout { .. } | StorageError::DataDirInUse { .. } => {
                ErrorClass::InvalidArgument
            }
            StorageError::Closed | StorageError::ObjectStore { .. } | StorageError::ObjectStoreTimeout { .. } => {
                ErrorClass::Unavailable { retry_after: UNAVAILABLE_RETRY_AFTER }
            }
            StorageError::NoSuchShard(_) => ErrorClass::NotFound,
            StorageError::TooManyTenants { .. } => ErrorClass::PermissionDenied,
            StorageError::Io { .. }
            | StorageError::Arrow(_)
            | StorageError::Parquet(_)
            | StorageError::DataFusion(_)
            | StorageError::Model(_)
            | StorageError::Corrupt { .. }
            | StorageError::ManifestConflict { .. }
            | StorageError::Task(_) => ErrorClass::Internal,
        }
    }

    pub(crate) fn object_store(store: &str, context: &str, source: object_store::Error) -> Self {
        StorageError::ObjectStore { store: store.to_owned(), context: context.to_owned(), source }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        StorageError::Corrupt { path: path.to_owned(), reason: reason.into() }
    }
}

/// Adds what was being done to an I/O error.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::Io { context: context(), source })
    }
}

/// The error a write gets once storage no longer accepts data.
pub(crate) fn closed_write_error() -> WriteError {
    WriteError::Unavailable { reason: "storage is shutting down".into(), retry_after: UNAVAILABLE_RETRY_AFTER }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(StorageError::Config("x".into()).class(), ErrorClass::InvalidArgument);
        assert!(matches!(StorageError::Closed.class(), ErrorClass::Unavailable { .. }));
        assert_eq!(StorageError::Task("x".into()).class(), ErrorClass::Internal);
        let io: Result<(), _> = Err(std::io::Error::other("disk on fire"));
        let err = io.ctx(|| "writing x".into()).expect_err("error");
        assert_eq!(err.to_string(), "writing x: disk on fire");
        assert_eq!(err.class(), ErrorClass::Internal);
    }
}
