//! Encryption at rest: WAL records and every Parquet file (spans, their
//! derived sidecars, compacted files) are encrypted with the tenant's
//! active key, read back after a crash, and stay readable across a key
//! rotation until compaction has rewritten them with the new key.

use std::path::Path;
use std::sync::Arc;

use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::prelude::SessionContext;

use super::*;
use crate::encryption::EncryptionConfig;
use crate::{Keyring, TenantKeys, new_secret};

/// A service name that shows up in the clear in an unencrypted WAL record.
const SECRET_SERVICE: &str = "zebra-payroll-service";

fn key_entry(id: &str) -> String {
    format!("[[keys]]\nid = \"{id}\"\ntenant = \"*\"\nsecret = \"{}\"\n", new_secret().expect("secret"))
}

/// A config whose keys file holds `entries` (in order: the last encrypts).
fn encrypted(dir: &Path, entries: &[&str]) -> StorageConfig {
    let keys_file = dir.join("keys.toml");
    std::fs::write(&keys_file, entries.concat()).expect("writes keys");
    StorageConfig {
        encryption: Some(EncryptionConfig { keys_file: Some(keys_file), keys_env: None }),
        ..quiet_config(&dir.join("data"))
    }
}

fn secret_batch(trace: u32, start_ns: u64) -> RecordBatch {
    let converted =
        spans_to_arrow(&request(SECRET_SERVICE, trace_spans(trace, 3, start_ns)), &ConvertLimits::default(), 1)
            .expect("converts");
    converted.batch
}

fn keys_of(config: &StorageConfig) -> Arc<TenantKeys> {
    let encryption = config.encryption.as_ref().expect("encryption on");
    Keyring::load(encryption).expect("keys load").for_tenant("default").expect("tenant keys")
}

fn contains(path: &Path, needle: &str) -> bool {
    std::fs::read(path).expect("reads").windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Whether the Parquet file at `path` opens without keys.
fn opens_without_keys(path: &Path) -> bool {
    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).expect("opens")).is_ok()
}

#[tokio::test]
async fn wal_records_and_parquet_files_are_encrypted_and_read_back_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = encrypted(dir.path(), &[&key_entry("k1")]);
    let data_dir = config.data_dir.clone();
    let storage = open(config.clone()).await;
    write(&storage, secret_batch(1, BASE_NS)).await;

    let segments = files_with_suffix(&spans_dir(&data_dir).join("wal"), ".wal");
    assert!(!segments.is_empty(), "a WAL segment was written");
    assert!(segments.iter().all(|s| !contains(s, SECRET_SERVICE)), "the WAL holds no plaintext");
    crash(storage).await;

    let storage = open(config.clone()).await;
    let back = all_records(&storage).await;
    assert_eq!(back.len(), 3, "the sealed WAL records are replayed");
    assert!(back.iter().all(|r| r.service_name == SECRET_SERVICE));
    storage.flush_all().await.expect("flushes");

    let files = files_with_suffix(&spans_dir(&data_dir), ".parquet");
    assert_eq!(files.len(), 1);
    assert!(!opens_without_keys(&files[0]), "span files need the key");
    let sidecars: Vec<_> = crate::derived::sidecar_paths(&files[0]).filter(|p| p.exists()).collect();
    assert_eq!(sidecars.len(), 3, "span metrics, trace parts and span links were derived");
    assert!(sidecars.iter().all(|s| !opens_without_keys(s)), "derived sidecars need the key too");
    let keys = keys_of(&config);
    let rows: usize =
        crate::parquet_files::read_encrypted_file(&files[0], Some(&keys)).iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3);

    // SQL over the files and the derived tables decrypts them.
    assert_eq!(all_records(&storage).await.len(), 3);
    let ctx = SessionContext::new();
    ctx.register_table("span_metrics", Arc::clone(&storage.span_metrics_tables()[0])).expect("registers");
    ctx.register_table("trace_parts", Arc::clone(&storage.trace_parts_tables()[0])).expect("registers");
    ctx.register_table("span_links", Arc::clone(&storage.span_links_tables()[0])).expect("registers");
    for (sql, wanted) in [
        ("SELECT sum(calls) FROM span_metrics", "3"),
        ("SELECT sum(span_count) FROM trace_parts", "3"),
        ("SELECT count(*) FROM span_links", "0"),
    ] {
        let batches = ctx.sql(sql).await.expect("plans").collect().await.expect("runs");
        let value = datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0).expect("value");
        assert_eq!(value, wanted, "{sql}");
    }
}

#[tokio::test]
async fn a_rotated_key_encrypts_new_data_and_compaction_retires_the_old_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new) = (key_entry("old"), key_entry("new"));
    // Replaced files go at once, so only the merged one is left on disk.
    let immediate = |config: StorageConfig| StorageConfig {
        compaction: crate::CompactionConfig { retired_file_grace: Duration::ZERO, ..config.compaction.clone() },
        ..config
    };
    let storage = open(immediate(encrypted(dir.path(), &[&old]))).await;
    write(&storage, secret_batch(1, BASE_NS)).await;
    storage.flush_all().await.expect("flushes");
    storage.close().await.expect("closes");
    drop(storage);

    // Rotation: the new key goes last; the old one still decrypts.
    let rotated = immediate(encrypted(dir.path(), &[&old, &new]));
    let storage = open(rotated.clone()).await;
    write(&storage, secret_batch(2, BASE_NS + 1_000)).await;
    storage.flush_all().await.expect("flushes");
    assert_eq!(all_records(&storage).await.len(), 6, "files of both keys are read");

    let new_keys = Keyring::parse(&new, "new only").expect("parses").for_tenant("default").expect("keys");
    let readable_with_new = |path: &Path| {
        let options = crate::encryption::reader_options(Some(&new_keys)).expect("options");
        ParquetRecordBatchReaderBuilder::try_new_with_options(std::fs::File::open(path).expect("opens"), options)
            .is_ok()
    };
    let files = files_with_suffix(&spans_dir(&rotated.data_dir), ".parquet");
    assert_eq!(files.iter().filter(|f| readable_with_new(f)).count(), 1, "only the second flush used the new key");

    storage.compact_now().await.expect("compacts");
    let compacted = files_with_suffix(&spans_dir(&rotated.data_dir), ".parquet");
    assert_eq!(compacted.len(), 1, "{compacted:?}");
    assert!(readable_with_new(&compacted[0]), "the merged file is under the new key");
    storage.close().await.expect("closes");
    drop(storage);

    // With every file rewritten, the old key can go.
    let storage = open(encrypted(dir.path(), &[&new])).await;
    assert_eq!(all_records(&storage).await.len(), 6);
}

#[tokio::test]
async fn a_missing_key_stops_the_open_with_its_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = encrypted(dir.path(), &[&key_entry("k1")]);
    let storage = open(config.clone()).await;
    write(&storage, secret_batch(1, BASE_NS)).await;
    crash(storage).await;

    let other = StorageConfig { data_dir: config.data_dir.clone(), ..encrypted(dir.path(), &[&key_entry("k2")]) };
    let err = Storage::open(other, &mut Registry::default(), CancellationToken::new()).await.expect_err("no k1");
    // A configuration error, not "corrupt": the data is intact and waits for its key.
    assert!(matches!(err, crate::StorageError::Config(_)) && err.to_string().contains("\"k1\""), "{err}");

    let plain = StorageConfig { encryption: None, ..config };
    let err = Storage::open(plain, &mut Registry::default(), CancellationToken::new()).await.expect_err("no keys");
    assert!(matches!(err, crate::StorageError::Config(_)), "{err}");
    assert!(err.to_string().contains("storage.encryption is not set"), "{err}");
}
