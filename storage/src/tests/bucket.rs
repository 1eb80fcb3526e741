//! Flushed data in an object store (a `file://` store here; the integration
//! tests use SeaweedFS over S3): the bucket is the system of record, the
//! data directory its cache.

use super::*;
use crate::ObjectStoreConfig;
use crate::StorageError;
use crate::shard::FailPoint;

pub(super) fn bucket_config(data: &Path, bucket: &Path) -> StorageConfig {
    StorageConfig {
        object_store: Some(ObjectStoreConfig {
            url: format!("file://{}", bucket.display()),
            ..ObjectStoreConfig::default()
        }),
        ..quiet_config(data)
    }
}

pub(super) fn bucket_spans(bucket: &Path) -> PathBuf {
    bucket.join("shard-0000").join("spans")
}

#[tokio::test]
async fn flushed_data_survives_the_loss_of_the_data_directory() {
    let (data, bucket) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let batches = [batch_of(trace_spans(1, 3, BASE_NS)), batch_of(trace_spans(2, 2, BASE_NS + HOUR_NS))];
    let storage = open(bucket_config(data.path(), bucket.path())).await;
    for b in &batches {
        write(&storage, b.clone()).await;
    }
    storage.close().await.expect("closes");
    let remote = bucket_spans(bucket.path());
    assert_eq!(files_with_suffix(&remote, ".parquet").len(), 2, "both hour files uploaded");
    assert_eq!(files_with_suffix(&remote, ".tidx").len(), 2, "with their trace indexes");
    assert!(!files_with_suffix(&remote.join("manifest"), ".json").is_empty(), "manifest versions in the bucket");

    // A new disk: everything comes back from the bucket.
    std::fs::remove_dir_all(data.path()).expect("wipes the data directory");
    let storage = open(bucket_config(data.path(), bucket.path())).await;
    assert_eq!(all_records(&storage).await, records(&batches));
    assert_eq!(files_with_suffix(&spans_dir(data.path()), ".parquet").len(), 2, "cache filled");
    let trace = trace_hex(2);
    let found = query(&storage, &format!("SELECT * FROM spans WHERE trace_id = '{trace}'")).await;
    assert_eq!(records(&found).len(), 2, "trace lookup through the downloaded index");
}

#[tokio::test]
async fn a_crash_between_upload_and_commit_keeps_rows_once_and_removes_the_uploads() {
    let (data, bucket) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let batches = [batch_of(trace_spans(1, 3, BASE_NS))];
    let storage = open(bucket_config(data.path(), bucket.path())).await;
    write(&storage, batches[0].clone()).await;
    *span_shard(&storage).fail_point.lock() = Some(FailPoint::Uploaded);
    storage.flush_all().await.expect_err("simulated crash");
    let remote = bucket_spans(bucket.path());
    assert_eq!(files_with_suffix(&remote, ".parquet").len(), 1, "uploaded, not committed");
    assert_eq!(files_with_suffix(&spans_dir(data.path()), ".parquet").len(), 0, "local copy discarded");
    crash(storage).await;

    let storage = open(bucket_config(data.path(), bucket.path())).await;
    assert_eq!(files_with_suffix(&remote, ".parquet").len(), 0, "unlisted upload deleted");
    assert_eq!(all_records(&storage).await, records(&batches), "rows come back from the WAL, once");
    storage.close().await.expect("closes");
    assert_eq!(files_with_suffix(&remote, ".parquet").len(), 1);
    let storage = open(bucket_config(data.path(), bucket.path())).await;
    assert_eq!(all_records(&storage).await, records(&batches));
}

#[tokio::test]
async fn an_existing_data_directory_is_uploaded_when_a_store_is_configured() {
    let (data, bucket) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let batches = [batch_of(trace_spans(1, 3, BASE_NS))];
    let storage = open(quiet_config(data.path())).await;
    write(&storage, batches[0].clone()).await;
    storage.close().await.expect("closes");

    let storage = open(bucket_config(data.path(), bucket.path())).await;
    assert_eq!(files_with_suffix(&bucket_spans(bucket.path()), ".parquet").len(), 1, "local files uploaded");
    storage.close().await.expect("closes");
    std::fs::remove_dir_all(data.path()).expect("wipes the data directory");
    let storage = open(bucket_config(data.path(), bucket.path())).await;
    assert_eq!(all_records(&storage).await, records(&batches));
}

#[tokio::test]
async fn a_data_directory_ahead_of_its_bucket_is_refused() {
    let (data, bucket) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let storage = open(bucket_config(data.path(), bucket.path())).await;
    write(&storage, batch_of(trace_spans(1, 3, BASE_NS))).await;
    storage.close().await.expect("closes");
    // A flush made without the store: the bucket no longer has everything.
    let storage = open(quiet_config(data.path())).await;
    write(&storage, batch_of(trace_spans(2, 3, BASE_NS))).await;
    storage.close().await.expect("closes");

    let err =
        Storage::open(bucket_config(data.path(), bucket.path()), &mut Registry::default(), CancellationToken::new())
            .await
            .expect_err("refused");
    let message = err.to_string();
    assert!(message.contains("ahead of the object store") && message.contains("storage.object_store.url"), "{message}");
}

#[tokio::test]
async fn a_second_writer_of_a_shard_is_fenced_by_the_manifest() {
    let (data_a, data_b, bucket) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let a = open(bucket_config(data_a.path(), bucket.path())).await;
    let b = open(bucket_config(data_b.path(), bucket.path())).await;
    write(&a, batch_of(trace_spans(1, 1, BASE_NS))).await;
    a.flush_all().await.expect("the first writer commits");
    write(&b, batch_of(trace_spans(2, 1, BASE_NS))).await;
    let err = b.flush_all().await.expect_err("the second writer's commit loses");
    assert!(matches!(err, StorageError::ManifestConflict { shard: 0, .. }), "{err}");
    assert_eq!(files_with_suffix(&bucket_spans(bucket.path()), ".parquet").len(), 1, "the loser's uploads are removed");
    // Its rows are still buffered and in its WAL: nothing it acknowledged is dropped.
    assert_eq!(all_records(&b).await.len(), 1);
}

#[tokio::test]
async fn the_bucket_pins_the_shard_count() {
    let (data, bucket) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    open(bucket_config(data.path(), bucket.path())).await.close().await.expect("closes");
    let other = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig { shards: 2, ..bucket_config(other.path(), bucket.path()) };
    let err = Storage::open(config, &mut Registry::default(), CancellationToken::new()).await.expect_err("refused");
    assert!(err.to_string().contains("holds data of 1 shards"), "{err}");
}

#[tokio::test]
async fn an_unreachable_store_is_named_in_the_error() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig {
        object_store: Some(ObjectStoreConfig {
            url: "s3://skein-test".into(),
            // Nothing listens on port 9 (discard) of loopback.
            endpoint: Some("http://127.0.0.1:9".into()),
            allow_http: true,
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            request_timeout: Duration::from_secs(2),
            ..ObjectStoreConfig::default()
        }),
        ..quiet_config(data.path())
    };
    let err = Storage::open(config, &mut Registry::default(), CancellationToken::new()).await.expect_err("refused");
    let message = err.to_string();
    assert!(message.contains("s3://skein-test at http://127.0.0.1:9"), "{message}");
    assert!(matches!(err, StorageError::ObjectStore { .. }), "{err:?}");
}

#[test]
fn the_secret_key_is_never_printed() {
    let config = ObjectStoreConfig { secret_access_key: Some("hunter2".into()), ..ObjectStoreConfig::default() };
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!serde_json::to_string(&config).expect("serializes").contains("hunter2"));
}
