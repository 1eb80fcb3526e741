//! Encryption at rest (`[storage.encryption]`): Parquet modular encryption
//! of every data file Skein writes (span, metric and log files and their
//! derived sidecars) and AES-256-GCM sealing of every write-ahead log
//! record, with keys per tenant from a keys file (or an environment
//! variable holding one).
//!
//! Keys are named: each Parquet file carries its key's ID as footer key
//! metadata and each WAL record carries it in its header, so a reader
//! finds the key of every file and record in the keyring. The last key a
//! tenant has in the file encrypts new data; the others still decrypt, so a
//! key is rotated by adding a new one after it and removed once no file or
//! record needs it (compaction rewrites files with the active key; see
//! docs/security.md). Files and records written before encryption was
//! turned on stay readable.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::config::EncryptionFactoryOptions;
use datafusion::execution::parquet_encryption::EncryptionFactory;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::encryption::decrypt::{FileDecryptionProperties, KeyRetriever};
use datafusion::parquet::encryption::encrypt::FileEncryptionProperties;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use object_store::path::Path as ObjectPath;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::StorageError;

/// Bytes of a key: AES-256.
const KEY_BYTES: usize = 32;
/// The first bytes of a sealed WAL record. Plain records are Arrow IPC
/// streams, which start with 0xFFFFFFFF, so the two never mix up.
const RECORD_MAGIC: &[u8; 4] = b"SKWE";
const RECORD_VERSION: u8 = 1;
/// The key a tenant without keys of its own uses.
pub const ANY_TENANT: &str = "*";

/// `[storage.encryption]`: where the keys come from (one of the two).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionConfig {
    /// A TOML file of `[[keys]]` (`id`, `tenant`, `secret`: 32 bytes in base64).
    pub keys_file: Option<PathBuf>,
    /// The name of an environment variable holding such a file's text (a
    /// Kubernetes Secret exposed as a variable).
    pub keys_env: Option<String>,
}

impl EncryptionConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        match (&self.keys_file, &self.keys_env) {
            (Some(_), Some(_)) => Err("storage.encryption: set keys_file or keys_env, not both".into()),
            (None, None) => Err("storage.encryption needs keys_file or keys_env".into()),
            _ => Ok(()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    tenant: String,
    secret: String,
}

/// One named key.
struct DataKey {
    id: String,
    tenant: String,
    secret: [u8; KEY_BYTES],
    sealing: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("id", &self.id).field("tenant", &self.tenant).finish_non_exhaustive()
    }
}

/// Every key of the keys file, in its order.
#[derive(Debug, Default)]
pub struct Keyring {
    keys: Vec<Arc<DataKey>>,
}

impl Keyring {
    /// Reads the keys `config` names.
    pub fn load(config: &EncryptionConfig) -> Result<Self, StorageError> {
        let (text, origin) = match (&config.keys_file, &config.keys_env) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|source| StorageError::Io {
                    context: format!("reading the encryption keys file {}", path.display()),
                    source,
                })?;
                (text, path.display().to_string())
            }
            (None, Some(name)) => {
                let text = std::env::var(name).map_err(|_| {
                    StorageError::Config(format!(
                        "storage.encryption.keys_env names {name}, which is not set (or not UTF-8)"
                    ))
                })?;
                (text, format!("${name}"))
            }
            (None, None) => return Err(StorageError::Config("storage.encryption needs keys_file or keys_env".into())),
        };
        Self::parse(&text, &origin)
    }

    /// Parses a keys file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, StorageError> {
        let bad = |reason: String| StorageError::Config(format!("encryption keys in {origin}: {reason}"));
        let file: KeysFile = toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
        let mut keys: Vec<Arc<DataKey>> = Vec::with_capacity(file.keys.len());
        for entry in file.keys {
            if entry.id.is_empty() || entry.id.len() > 255 || !entry.id.is_ascii() {
                return Err(bad(format!("key id {:?} must be 1 to 255 ASCII characters", entry.id)));
            }
            if keys.iter().any(|k| k.id == entry.id) {
                return Err(bad(format!("key id {:?} appears twice", entry.id)));
            }
            if entry.tenant != ANY_TENANT {
                skein_model::security::validate_tenant(&entry.tenant)
                    .map_err(|reason| bad(format!("key {:?}: {reason}", entry.id)))?;
            }
            let secret = base64::engine::general_purpose::STANDARD
                .decode(entry.secret.trim())
                .ok()
                .and_then(|bytes| <[u8; KEY_BYTES]>::try_from(bytes).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "key {:?}: secret must be {KEY_BYTES} bytes in base64 (`skein key create` makes one)",
                        entry.id
                    ))
                })?;
            let unbound = UnboundKey::new(&AES_256_GCM, &secret)
                .map_err(|_| bad(format!("key {:?} is not a valid AES-256 key", entry.id)))?;
            keys.push(Arc::new(DataKey {
                id: entry.id,
                tenant: entry.tenant,
                secret,
                sealing: LessSafeKey::new(unbound),
            }));
        }
        Ok(Self { keys })
    }

    /// The keys of `tenant`: those named for it, or else the `*` keys; the
    /// last one encrypts. An error when it has none: with encryption on,
    /// no tenant's data is written in the clear.
    pub fn for_tenant(&self, tenant: &str) -> Result<Arc<TenantKeys>, StorageError> {
        let own = self.keys.iter().filter(|k| k.tenant == tenant);
        let shared = self.keys.iter().filter(|k| k.tenant == ANY_TENANT);
        let active = own.clone().next_back().or_else(|| shared.clone().next_back()).ok_or_else(|| {
            StorageError::Config(format!(
                "storage.encryption is on but its keys have none for tenant {tenant:?} (add one for it or for \"*\")"
            ))
        })?;
        let readable = own.chain(shared).map(|k| (k.id.clone(), Arc::clone(k))).collect();
        Ok(Arc::new(TenantKeys { tenant: tenant.to_owned(), active: Arc::clone(active), readable }))
    }
}

/// The keys one tenant's storage encrypts with and may decrypt with.
#[derive(Debug)]
pub struct TenantKeys {
    tenant: String,
    active: Arc<DataKey>,
    readable: HashMap<String, Arc<DataKey>>,
    // Nonces come from the system's generator: records are sealed from
    // many threads, and a counter would need persisted state to stay unique.
}

impl TenantKeys {
    /// The ID of the key new data is encrypted with.
    pub fn active_key_id(&self) -> &str {
        &self.active.id
    }

    /// Adds encryption of the whole file (columns, footer, page indexes)
    /// with the active key to a Parquet writer's properties.
    pub(crate) fn encrypt_parquet(
        &self,
        builder: WriterPropertiesBuilder,
    ) -> Result<WriterPropertiesBuilder, StorageError> {
        let properties = FileEncryptionProperties::builder(self.active.secret.to_vec())
            .with_footer_key_metadata(self.active.id.as_bytes().to_vec())
            .build()?;
        Ok(builder.with_file_encryption_properties(properties))
    }

    /// How Parquet files of this tenant are decrypted: by the key their
    /// footer names.
    pub(crate) fn parquet_decryption(self: &Arc<Self>) -> Result<Arc<FileDecryptionProperties>, StorageError> {
        Ok(FileDecryptionProperties::with_key_retriever(Arc::new(Retriever(Arc::clone(self)))).build()?)
    }

    /// The same for DataFusion scans.
    pub(crate) fn scan_decryption(self: &Arc<Self>) -> Arc<dyn EncryptionFactory> {
        Arc::new(ScanKeys(Arc::clone(self)))
    }

    /// Seals one WAL record: magic, version, key ID, nonce, then the
    /// ciphertext and tag; the header is authenticated too.
    pub fn seal_record(&self, mut plaintext: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StorageError::Task("the system random generator failed".into()))?;
        let header = record_header(&self.active.id);
        self.active
            .sealing
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&header), &mut plaintext)
            .map_err(|_| StorageError::Task("sealing a write-ahead log record failed".into()))?;
        let mut record = Vec::with_capacity(header.len() + NONCE_LEN + plaintext.len());
        record.extend_from_slice(&header);
        record.extend_from_slice(&nonce);
        record.extend_from_slice(&plaintext);
        Ok(record)
    }

    fn key(&self, id: &str) -> Result<&DataKey, RecordError> {
        self.readable
            .get(id)
            .map(|k| k.as_ref())
            .ok_or_else(|| RecordError::UnknownKey { id: id.to_owned(), tenant: self.tenant.clone() })
    }
}

/// Why a sealed WAL record (or an encrypted file) cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the record is encrypted but storage.encryption is not set")]
    KeysNeeded,
    #[error("encrypted with key {id:?}, which tenant {tenant:?} has not (still) got in storage.encryption's keys")]
    UnknownKey { id: String, tenant: String },
    #[error("{0}")]
    Damaged(String),
}

impl RecordError {
    /// A configuration problem (a key is missing), not damaged data.
    pub fn is_missing_key(&self) -> bool {
        matches!(self, RecordError::KeysNeeded | RecordError::UnknownKey { .. })
    }
}

/// `properties` with encryption by `keys`, when there are keys.
pub(crate) fn with_keys(
    properties: WriterProperties,
    keys: Option<&Arc<TenantKeys>>,
) -> Result<WriterProperties, StorageError> {
    match keys {
        Some(keys) => Ok(keys.encrypt_parquet(properties.into_builder())?.build()),
        None => Ok(properties),
    }
}

/// How the parquet crate reads a file of a tenant with `keys` (decrypting
/// by the key its footer names); plain files read either way.
pub(crate) fn reader_options(keys: Option<&Arc<TenantKeys>>) -> Result<ArrowReaderOptions, StorageError> {
    let options = ArrowReaderOptions::new();
    Ok(match keys {
        Some(keys) => options.with_file_decryption_properties(keys.parquet_decryption()?),
        None => options,
    })
}

/// A WAL record as written: sealed records are opened with `keys`, plain
/// ones (written before encryption was on) pass as they are.
pub fn open_record<'a>(record: &'a [u8], keys: Option<&TenantKeys>) -> Result<std::borrow::Cow<'a, [u8]>, RecordError> {
    if !record.starts_with(RECORD_MAGIC) {
        return Ok(std::borrow::Cow::Borrowed(record));
    }
    let damaged = |reason: &str| RecordError::Damaged(reason.to_owned());
    let keys = keys.ok_or(RecordError::KeysNeeded)?;
    let rest = &record[RECORD_MAGIC.len()..];
    let (&version, rest) = rest.split_first().ok_or_else(|| damaged("the encrypted record is cut short"))?;
    if version != RECORD_VERSION {
        return Err(RecordError::Damaged(format!("encrypted record version {version} is not known to this Skein")));
    }
    let (&id_len, rest) = rest.split_first().ok_or_else(|| damaged("the encrypted record is cut short"))?;
    let id_len = usize::from(id_len);
    if rest.len() < id_len + NONCE_LEN {
        return Err(damaged("the encrypted record is cut short"));
    }
    let (id, rest) = rest.split_at(id_len);
    let id = std::str::from_utf8(id).map_err(|_| damaged("the encrypted record's key id is not UTF-8"))?;
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let key = keys.key(id)?;
    let header = record_header(id);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| damaged("bad nonce"))?;
    let mut buffer = sealed.to_vec();
    let plain_len = key
        .sealing
        .open_in_place(nonce, Aad::from(&header), &mut buffer)
        .map_err(|_| {
            RecordError::Damaged(format!(
                "the record does not decrypt with key {id:?} (damaged, or a different key under that id)"
            ))
        })?
        .len();
    buffer.truncate(plain_len);
    Ok(std::borrow::Cow::Owned(buffer))
}

fn record_header(key_id: &str) -> Vec<u8> {
    let mut header = Vec::with_capacity(RECORD_MAGIC.len() + 2 + key_id.len());
    header.extend_from_slice(RECORD_MAGIC);
    header.push(RECORD_VERSION);
    // Key IDs are at most 255 bytes (checked when the keys are read).
    header.push(u8::try_from(key_id.len()).unwrap_or(u8::MAX));
    header.extend_from_slice(key_id.as_bytes());
    header
}

/// Finds the key a Parquet footer names.
struct Retriever(Arc<TenantKeys>);

impl KeyRetriever for Retriever {
    fn retrieve_key(&self, key_metadata: &[u8]) -> datafusion::parquet::errors::Result<Vec<u8>> {
        let id = std::str::from_utf8(key_metadata)
            .map_err(|_| ParquetError::General("the file's key id is not UTF-8".into()))?;
        let key = self.0.key(id).map_err(|e| ParquetError::General(format!("Parquet file {e}")))?;
        Ok(key.secret.to_vec())
    }
}

/// Decryption of the tenant's files for DataFusion's Parquet scans. Skein
/// writes its files itself, so scans never ask for encryption.
#[derive(Debug)]
struct ScanKeys(Arc<TenantKeys>);

#[async_trait]
impl EncryptionFactory for ScanKeys {
    async fn get_file_encryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        _schema: &SchemaRef,
        _file_path: &ObjectPath,
    ) -> datafusion::error::Result<Option<Arc<FileEncryptionProperties>>> {
        Ok(None)
    }

    async fn get_file_decryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        _file_path: &ObjectPath,
    ) -> datafusion::error::Result<Option<Arc<FileDecryptionProperties>>> {
        Ok(Some(self.0.parquet_decryption().map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?))
    }
}

/// A new random key's secret, in the keys file's form.
pub fn new_secret() -> Result<String, StorageError> {
    let mut secret = [0u8; KEY_BYTES];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| StorageError::Task("the system random generator failed".into()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(entries: &[(&str, &str)]) -> Keyring {
        let mut text = String::new();
        for (id, tenant) in entries {
            let secret = new_secret().expect("secret");
            text.push_str(&format!("[[keys]]\nid = \"{id}\"\ntenant = \"{tenant}\"\nsecret = \"{secret}\"\n"));
        }
        Keyring::parse(&text, "test").expect("parses")
    }

    #[test]
    fn a_record_seals_and_opens_and_tampering_is_caught() {
        let keys = keyring(&[("k1", "*")]).for_tenant("default").expect("keys");
        let plain = b"\xff\xff\xff\xffarrow ipc bytes".to_vec();
        let sealed = keys.seal_record(plain.clone()).expect("seals");
        assert!(!sealed.windows(9).any(|w| w == b"arrow ipc"), "the record is not in the clear");
        assert_eq!(open_record(&sealed, Some(&keys)).expect("opens").as_ref(), plain.as_slice());

        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let tampered = open_record(&flipped, Some(&keys)).expect_err("tampered");
        assert!(!tampered.is_missing_key() && tampered.to_string().contains("does not decrypt"), "{tampered}");
        let no_keys = open_record(&sealed, None).expect_err("no keys");
        assert!(no_keys.is_missing_key() && no_keys.to_string().contains("storage.encryption is not set"));
        assert_eq!(open_record(&plain, None).expect("plain passes").as_ref(), plain.as_slice());
    }

    #[test]
    fn the_last_key_encrypts_and_older_ones_still_decrypt() {
        let ring = keyring(&[("old", "*"), ("acme-1", "acme"), ("new", "*")]);
        let old = ring.for_tenant("default").expect("keys");
        assert_eq!(old.active_key_id(), "new");
        assert_eq!(ring.for_tenant("acme").expect("keys").active_key_id(), "acme-1", "its own key first");
        let sealed = TenantKeys { active: Arc::clone(&ring.keys[0]), ..(*old).clone_keys() }.seal_record(b"x".to_vec());
        let sealed = sealed.expect("seals");
        assert_eq!(open_record(&sealed, Some(&old)).expect("old key still reads").as_ref(), b"x");

        // Another tenant's own key is not readable by this one.
        let acme = ring.for_tenant("acme").expect("keys").seal_record(b"y".to_vec()).expect("seals");
        let not_its_key = open_record(&acme, Some(&old)).expect_err("not its key");
        assert!(not_its_key.is_missing_key() && not_its_key.to_string().contains("\"acme-1\""), "{not_its_key}");
    }

    #[test]
    fn bad_keys_files_are_refused_with_the_reason() {
        let bad = |text: &str| Keyring::parse(text, "keys.toml").expect_err("refused").to_string();
        assert!(bad("[[keys]]\nid = \"a\"\ntenant = \"*\"\nsecret = \"c2hvcnQ=\"\n").contains("32 bytes in base64"));
        let secret = new_secret().expect("secret");
        let twice = format!("[[keys]]\nid = \"a\"\ntenant = \"*\"\nsecret = \"{secret}\"\n").repeat(2);
        assert!(bad(&twice).contains("appears twice"));
        assert!(bad("[[keys]]\nid = \"a\"\ntenant = \"*\"\n").contains("secret"));
        let no_tenant_key = keyring(&[("a", "acme")]).for_tenant("globex").expect_err("none").to_string();
        assert!(no_tenant_key.contains("none for tenant \"globex\""), "{no_tenant_key}");
    }

    impl TenantKeys {
        fn clone_keys(&self) -> TenantKeys {
            TenantKeys {
                tenant: self.tenant.clone(),
                active: Arc::clone(&self.active),
                readable: self.readable.clone(),
            }
        }
    }
}
