//! The object-store copy of flushed data (`[storage.object_store]`): the
//! system of record for Parquet files and manifests, with the node's data
//! directory as its cache.
//!
//! Each signal of a shard has a prefix `<root>/shard-NNNN/<signal>/` holding
//! the same relative paths as the local signal directory
//! (`date=…/hour=…/<name>.parquet` and `.tidx`) and the manifest as numbered,
//! immutable versions `manifest/<generation:020>.json`. A flush uploads its
//! files, then creates the next version with a conditional create
//! (`If-None-Match: *` on S3): exactly one writer can commit each
//! generation, so two nodes that both believe they own a shard cannot both
//! advance it, and the loser learns it ([`StorageError::ManifestConflict`]).
//! Only after the remote commit is the local `manifest.json` replaced, so the
//! local copy is never ahead of the bucket.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{IoContext, StorageError};
use crate::fsutil::{create_dir_durable, fsync_dir, tmp_path};
use crate::layout::shard_dir_name;
use crate::manifest::Manifest;
use crate::signal::SignalSpec;

mod encryption;
mod wal;

pub use encryption::ServerSideEncryption;

pub(crate) use wal::WalCommit;

const MANIFEST_DIR: &str = "manifest";
/// Manifest versions kept behind the latest (older ones are deleted).
const MANIFEST_VERSIONS_KEPT: u64 = 8;
const SHARD_COUNT_KEY: &str = "shard_count";

/// Where flushed data is kept: an S3-compatible bucket or a directory.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectStoreConfig {
    /// `s3://bucket[/prefix]` or `file:///absolute/path`.
    pub url: String,
    /// S3 endpoint for stores other than AWS (SeaweedFS, MinIO, R2, …),
    /// e.g. `http://127.0.0.1:8333`. Default: AWS for the region.
    pub endpoint: Option<String>,
    pub region: String,
    /// Credentials; when unset, the standard `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` environment variables are used.
    pub access_key_id: Option<String>,
    /// Never printed (`skein config`, logs).
    #[serde(skip_serializing)]
    pub secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint (local SeaweedFS or MinIO).
    pub allow_http: bool,
    /// Time limit of one request, retries included.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Server-side encryption of every object written: `sse-s3`, `sse-kms`
    /// or `dsse-kms` (s3:// only). Default: the bucket's own setting.
    pub server_side_encryption: Option<ServerSideEncryption>,
    /// The KMS key (ID, ARN or alias) for `sse-kms` / `dsse-kms`; default:
    /// the account's `aws/s3` key.
    pub sse_kms_key_id: Option<String>,
    /// Use an S3 Bucket Key (fewer KMS calls); default: the bucket's setting.
    pub sse_bucket_key: Option<bool>,
}

impl Default for ObjectStoreConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            request_timeout: Duration::from_secs(30),
            server_side_encryption: None,
            sse_kms_key_id: None,
            sse_bucket_key: None,
        }
    }
}

impl std::fmt::Debug for ObjectStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreConfig")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("allow_http", &self.allow_http)
            .field("request_timeout", &self.request_timeout)
            .field("server_side_encryption", &self.server_side_encryption)
            .field("sse_kms_key_id", &self.sse_kms_key_id)
            .field("sse_bucket_key", &self.sse_bucket_key)
            .finish()
    }
}

impl ObjectStoreConfig {
    pub fn validate(&self) -> Result<(), String> {
        let scheme = self.url.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some("s3") | Some("file") => {}
            _ => {
                return Err(format!(
                    "storage.object_store.url must be s3://bucket[/prefix] or file:///path (got {:?})",
                    self.url
                ));
            }
        }
        if self.request_timeout.is_zero() {
            return Err("storage.object_store.request_timeout must be greater than 0".into());
        }
        encryption::validate(self)?;
        if let Some(endpoint) = &self.endpoint
            && endpoint.starts_with("http://")
            && !self.allow_http
        {
            return Err(format!(
                "storage.object_store.endpoint {endpoint} is plain HTTP: set storage.object_store.allow_http = true to use it"
            ));
        }
        Ok(())
    }

    /// What error messages name: the endpoint and the URL.
    fn describe(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{} at {endpoint}", self.url),
            None => self.url.clone(),
        }
    }
}

/// A connected object store and the root prefix Skein owns in it.
#[derive(Clone)]
pub(crate) struct Bucket {
    store: Arc<dyn ObjectStore>,
    root: ObjectPath,
    /// The URL and endpoint, for messages.
    pub name: Arc<str>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Bucket {
    /// Builds the client and checks that the store answers.
    pub async fn connect(config: &ObjectStoreConfig) -> Result<Self, StorageError> {
        config.validate().map_err(StorageError::Config)?;
        let name: Arc<str> = config.describe().into();
        let (store, root): (Arc<dyn ObjectStore>, ObjectPath) = match config.url.split_once("://") {
            Some(("file", path)) => {
                std::fs::create_dir_all(path).ctx(|| format!("creating the object store directory {path}"))?;
                let store = LocalFileSystem::new_with_prefix(path)
                    .map_err(|source| StorageError::object_store(&name, "opening the directory", source))?;
                (Arc::new(store), ObjectPath::default())
            }
            Some(("s3", rest)) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let retry = RetryConfig { max_retries: 3, retry_timeout: config.request_timeout, ..Default::default() };
                let options = ClientOptions::new()
                    .with_timeout(config.request_timeout)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_allow_http(config.allow_http);
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(&config.region)
                    .with_retry(retry)
                    .with_client_options(options);
                if let Some(endpoint) = &config.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(key) = &config.access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = &config.secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                let store = encryption::apply(builder, config)
                    .build()
                    .map_err(|source| StorageError::object_store(&name, "configuring the client", source))?;
                (Arc::new(store), ObjectPath::from(prefix))
            }
            _ => return Err(StorageError::Config(format!("unsupported object store URL {:?}", config.url))),
        };
        let bucket = Self { store, root, name };
        bucket.probe().await?;
        Ok(bucket)
    }

    /// One cheap request that fails when the store is unreachable, the
    /// bucket is missing or the credentials are refused.
    pub async fn probe(&self) -> Result<(), StorageError> {
        self.store
            .list_with_delimiter(Some(&self.root))
            .await
            .map(|_| ())
            .map_err(|source| StorageError::object_store(&self.name, "listing the root prefix", source))
    }

    /// The names of the "directories" directly below `dir` (relative to the
    /// root): the tenants under `tenants/`.
    pub async fn list_dirs(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let prefix = self.root.clone().join(dir);
        let listed = self
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|source| StorageError::object_store(&self.name, &format!("listing {prefix}"), source))?;
        Ok(listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_owned)).collect())
    }

    /// Pins the cluster's shard count in the bucket on first use, and
    /// refuses a different one later (as the data directory does).
    pub async fn pin_shard_count(&self, shards: usize) -> Result<(), StorageError> {
        let key = self.root.clone().join(SHARD_COUNT_KEY);
        let text = format!("{shards}\n");
        let create = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&key, PutPayload::from(text.clone()), create).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(source) => return Err(StorageError::object_store(&self.name, "pinning the shard count", source)),
        }
        let pinned = self.get(&key, "reading the pinned shard count").await?;
        let pinned = String::from_utf8_lossy(&pinned);
        if pinned.trim() != text.trim() {
            return Err(StorageError::Config(format!(
                "the object store {} holds data of {} shards, but storage.shards is {shards}; \
                 the shard count of a cluster cannot change",
                self.name,
                pinned.trim()
            )));
        }
        Ok(())
    }

    /// The prefix of one signal of one shard.
    pub fn signal(&self, shard: usize, spec: &SignalSpec) -> SignalBucket {
        let prefix = self.root.clone().join(shard_dir_name(shard)).join(spec.dir);
        SignalBucket { bucket: self.clone(), prefix, shard }
    }

    async fn get(&self, key: &ObjectPath, doing: &str) -> Result<Bytes, StorageError> {
        let result =
            self.store.get(key).await.map_err(|source| StorageError::object_store(&self.name, doing, source))?;
        result.bytes().await.map_err(|source| StorageError::object_store(&self.name, doing, source))
    }
}

/// One signal of one shard in the bucket.
#[derive(Debug, Clone)]
pub(crate) struct SignalBucket {
    bucket: Bucket,
    prefix: ObjectPath,
    shard: usize,
}

impl SignalBucket {
    /// The shard this prefix belongs to.
    pub fn shard(&self) -> usize {
        self.shard
    }

    fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.bucket.store
    }

    fn err(&self, doing: String) -> impl FnOnce(object_store::Error) -> StorageError + '_ {
        move |source| StorageError::object_store(&self.bucket.name, &doing, source)
    }

    fn manifest_key(&self, generation: u64) -> ObjectPath {
        self.prefix.clone().join(MANIFEST_DIR).join(format!("{generation:020}.json"))
    }

    fn data_key(&self, relative: &str) -> ObjectPath {
        let mut key = self.prefix.clone();
        for part in relative.split('/') {
            key = key.join(part);
        }
        key
    }

    /// The newest manifest version, if any was committed.
    pub async fn latest_manifest(&self) -> Result<Option<Manifest>, StorageError> {
        let generations = self.manifest_generations().await?;
        let Some(&latest) = generations.last() else {
            return Ok(None);
        };
        let key = self.manifest_key(latest);
        let bytes = self.bucket.get(&key, &format!("reading {key}")).await?;
        let manifest = Manifest::parse(&bytes, Path::new(key.as_ref()))?;
        if manifest.generation != latest {
            return Err(StorageError::corrupt(
                Path::new(key.as_ref()),
                format!("holds generation {} under the name of {latest}", manifest.generation),
            ));
        }
        Ok(Some(manifest))
    }

    /// The newest committed manifest generation (0 when there is none).
    pub async fn latest_generation(&self) -> Result<u64, StorageError> {
        Ok(self.manifest_generations().await?.last().copied().unwrap_or(0))
    }

    /// Committed manifest generations, ascending.
    async fn manifest_generations(&self) -> Result<Vec<u64>, StorageError> {
        let dir = self.prefix.clone().join(MANIFEST_DIR);
        let listed: Vec<_> =
            self.store().list(Some(&dir)).try_collect().await.map_err(self.err(format!("listing {dir}")))?;
        let mut generations: Vec<u64> =
            listed.iter().filter_map(|meta| meta.location.filename()?.strip_suffix(".json")?.parse().ok()).collect();
        generations.sort_unstable();
        Ok(generations)
    }

    /// Creates manifest version `manifest.generation`; fails with
    /// [`StorageError::ManifestConflict`] when another writer committed it.
    pub async fn commit_manifest(&self, manifest: &Manifest) -> Result<(), StorageError> {
        let key = self.manifest_key(manifest.generation);
        let bytes = Bytes::from(manifest.to_json()?);
        let create = PutOptions { mode: PutMode::Create, ..Default::default() };
        let outcome = self.store().put_opts(&key, PutPayload::from_bytes(bytes.clone()), create).await;
        match outcome {
            Ok(_) => {}
            // A create is not retried by the client, so an earlier attempt of
            // this very commit may have landed: then the version is ours.
            Err(object_store::Error::AlreadyExists { .. }) => {
                let existing = self.bucket.get(&key, &format!("reading {key}")).await?;
                if existing != bytes {
                    return Err(StorageError::ManifestConflict {
                        shard: self.shard,
                        key: key.to_string(),
                        store: self.bucket.name.to_string(),
                    });
                }
            }
            Err(source) => {
                // The request may have landed before the error: look.
                let landed = match self.store().get(&key).await {
                    Ok(found) => found.bytes().await.ok() == Some(bytes.clone()),
                    Err(_) => false,
                };
                if !landed {
                    return Err(self.err(format!("creating {key}"))(source));
                }
            }
        }
        self.prune_manifests(manifest.generation).await;
        Ok(())
    }

    /// Deletes manifest versions far behind `latest` (best effort).
    async fn prune_manifests(&self, latest: u64) {
        if latest <= MANIFEST_VERSIONS_KEPT || !latest.is_multiple_of(MANIFEST_VERSIONS_KEPT) {
            return;
        }
        let generations = match self.manifest_generations().await {
            Ok(generations) => generations,
            Err(e) => return warn!(shard = self.shard, error = %e, "could not list old manifest versions"),
        };
        for generation in generations.into_iter().filter(|g| *g + MANIFEST_VERSIONS_KEPT < latest) {
            if let Err(e) = self.store().delete(&self.manifest_key(generation)).await {
                warn!(shard = self.shard, generation, error = %e, "could not delete an old manifest version");
            }
        }
    }

    /// Uploads a local file of the signal directory under its relative path.
    pub async fn upload(&self, signal_dir: &Path, relative: &str) -> Result<(), StorageError> {
        let path = signal_dir.join(relative);
        let bytes = tokio::fs::read(&path).await.ctx(|| format!("reading {}", path.display()))?;
        let key = self.data_key(relative);
        self.store().put(&key, PutPayload::from(bytes)).await.map_err(self.err(format!("uploading {key}")))?;
        Ok(())
    }

    /// Downloads `relative` into the signal directory (durable on return).
    /// Returns false when the object does not exist.
    pub async fn download(&self, signal_dir: &Path, relative: &str) -> Result<bool, StorageError> {
        let key = self.data_key(relative);
        let bytes = match self.store().get(&key).await {
            Ok(found) => found.bytes().await.map_err(self.err(format!("downloading {key}")))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(source) => return Err(self.err(format!("downloading {key}"))(source)),
        };
        let path = signal_dir.join(relative);
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(|e| StorageError::Task(e.to_string()))??;
        Ok(true)
    }

    /// Deletes data objects by relative path (best effort: an object left
    /// behind is unlisted and removed by the next [`Self::remove_unlisted`]).
    pub async fn delete(&self, relatives: &[String]) {
        for relative in relatives {
            let key = self.data_key(relative);
            match self.store().delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => warn!(shard = self.shard, key = %key, error = %e, "could not delete an object"),
            }
        }
    }

    /// Deletes data objects for which `keep` (given the relative path) is
    /// false: uploads of flushes whose commit never happened, and deletions
    /// that failed.
    pub async fn remove_unlisted(&self, keep: impl Fn(&str) -> bool) -> Result<(), StorageError> {
        let listed: Vec<_> = self
            .store()
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(self.err(format!("listing {}", self.prefix)))?;
        let manifest_dir = self.prefix.clone().join(MANIFEST_DIR);
        let wal_dir = self.prefix.clone().join(wal::WAL_PREFIX);
        let mut unlisted = Vec::new();
        for meta in listed {
            if meta.location.prefix_matches(&manifest_dir) || meta.location.prefix_matches(&wal_dir) {
                continue;
            }
            let Some(relative) = meta.location.prefix_match(&self.prefix) else { continue };
            let relative: Vec<String> = relative.map(|part| part.as_ref().to_owned()).collect();
            let relative = relative.join("/");
            if !keep(&relative) {
                unlisted.push(relative);
            }
        }
        if !unlisted.is_empty() {
            info!(shard = self.shard, objects = unlisted.len(), "deleting objects of unfinished flushes");
            self.delete(&unlisted).await;
        }
        Ok(())
    }
}

impl SignalBucket {
    /// Brings the local signal directory in line with the bucket before
    /// recovery reads it: the bucket's newest manifest wins (files it lists
    /// and the directory lacks are downloaded: a new or wiped disk); a
    /// bucket without the shard gets the local files (object storage turned
    /// on for an existing data directory, or an emptied bucket); a local
    /// manifest ahead of the bucket's is refused (flushes made without the
    /// store, or another bucket). Objects no manifest lists are deleted.
    ///
    /// With `take_over`, the node then commits a manifest generation of its
    /// own (the same state, generation + 1) before deleting anything: from
    /// then on a previous owner can no longer commit, so its uploads in
    /// flight are safely unlisted. Returns the manifest now in force.
    pub async fn reconcile(
        &self,
        signal_dir: &Path,
        spec: &SignalSpec,
        take_over: bool,
    ) -> Result<Manifest, StorageError> {
        let manifest = loop {
            let manifest = self.sync_local(signal_dir, spec).await?;
            if !take_over {
                break manifest;
            }
            let ours = Manifest { generation: manifest.generation + 1, ..manifest };
            match self.commit_manifest(&ours).await {
                Ok(()) => {
                    store_locally(signal_dir, &ours).await?;
                    break ours;
                }
                // The previous owner committed a flush meanwhile: load it and try again.
                Err(StorageError::ManifestConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        };
        let listed: HashSet<String> =
            manifest.files.iter().flat_map(|f| [f.path.clone(), sidecar_of(&f.path)]).collect();
        self.remove_unlisted(|relative| listed.contains(relative)).await?;
        Ok(manifest)
    }

    /// The bucket's newest manifest (or the local one, uploaded, for a
    /// bucket without the shard) with the files it lists in `signal_dir`,
    /// stored as the local manifest.
    async fn sync_local(&self, signal_dir: &Path, spec: &SignalSpec) -> Result<Manifest, StorageError> {
        let dir = signal_dir.to_owned();
        let local = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
            Manifest::load(&dir)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))??;
        let remote = self.latest_manifest().await?;
        let behind = |remote: u64| {
            StorageError::Config(format!(
                "shard {} {}: the local manifest (generation {}) is ahead of the object store {} (generation \
                 {remote}): data was flushed without this store or into another one. Point \
                 storage.object_store.url back, or move the data directory away to start from the bucket",
                self.shard, spec.signal, local.generation, self.bucket.name
            ))
        };
        let manifest = match remote {
            // A bucket without this shard: its first use, or it was emptied.
            // The data directory holds every listed file, so uploading them
            // loses nothing.
            None => {
                for file in &local.files {
                    self.upload(signal_dir, &file.path).await?;
                    if spec.trace_index_column.is_some() && signal_dir.join(sidecar_of(&file.path)).is_file() {
                        self.upload(signal_dir, &sidecar_of(&file.path)).await?;
                    }
                }
                let first = Manifest { generation: local.generation + 1, ..local };
                self.commit_manifest(&first).await?;
                store_locally(signal_dir, &first).await?;
                if !first.files.is_empty() {
                    info!(shard = self.shard, signal = %spec.signal, files = first.files.len(), "uploaded local files to the object store");
                }
                first
            }
            Some(remote) if remote.generation < local.generation => return Err(behind(remote.generation)),
            Some(remote) if remote.generation == local.generation => {
                if remote != local {
                    return Err(StorageError::ManifestConflict {
                        shard: self.shard,
                        key: self.manifest_key(remote.generation).to_string(),
                        store: self.bucket.name.to_string(),
                    });
                }
                remote
            }
            Some(remote) => {
                let mut downloaded = 0;
                for file in &remote.files {
                    if signal_dir.join(&file.path).is_file() {
                        continue;
                    }
                    if !self.download(signal_dir, &file.path).await? {
                        return Err(StorageError::corrupt(
                            Path::new(self.data_key(&file.path).as_ref()),
                            format!("listed in manifest generation {} but missing", remote.generation),
                        ));
                    }
                    // A missing sidecar is rebuilt from the Parquet file by recovery.
                    if spec.trace_index_column.is_some() {
                        self.download(signal_dir, &sidecar_of(&file.path)).await?;
                    }
                    downloaded += 1;
                }
                store_locally(signal_dir, &remote).await?;
                info!(shard = self.shard, signal = %spec.signal, generation = remote.generation, downloaded, "loaded the shard's manifest from the object store");
                remote
            }
        };
        Ok(manifest)
    }
}

async fn store_locally(signal_dir: &Path, manifest: &Manifest) -> Result<(), StorageError> {
    let (dir, manifest) = (signal_dir.to_owned(), manifest.clone());
    tokio::task::spawn_blocking(move || manifest.store(&dir)).await.map_err(|e| StorageError::Task(e.to_string()))?
}

/// The relative path of a Parquet file's trace-index sidecar.
pub(crate) fn sidecar_of(relative: &str) -> String {
    match relative.strip_suffix(".parquet") {
        Some(stem) => format!("{stem}.tidx"),
        None => format!("{relative}.tidx"),
    }
}

/// Writes `bytes` to `path` under a temporary name, syncs, renames, syncs the directory.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().ok_or_else(|| StorageError::Task(format!("{} has no parent", path.display())))?;
    create_dir_durable(dir).ctx(|| format!("creating {}", dir.display()))?;
    let tmp = tmp_path(path);
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        file.write_all(bytes).ctx(|| format!("writing {}", tmp.display()))?;
        file.sync_all().ctx(|| format!("syncing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).ctx(|| format!("renaming {} into place", tmp.display()))?;
    fsync_dir(dir).ctx(|| format!("syncing {}", dir.display()))
}
