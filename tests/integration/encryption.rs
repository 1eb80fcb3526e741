//! Encryption at rest end to end: a key made by `skein key create`, an
//! all-in-one Skein with `[storage.encryption]`, OTLP in; the WAL holds no
//! plaintext, every Parquet file has an encrypted footer, queries and a
//! restart read everything back.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use skein_storage::EncryptionConfig;

use crate::support::ClusterBuilder;

/// A span attribute value that would be in the clear in an unencrypted WAL.
const SECRET: &str = "card-4111-1111-1111-1111";

fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path, extension));
        } else if path.extension().is_some_and(|e| e == extension) {
            found.push(path);
        }
    }
    found
}

fn contains(path: &Path, needle: &[u8]) -> bool {
    std::fs::read(path).expect("reads").windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_is_encrypted_at_rest_with_a_key_from_skein_key_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_file = dir.path().join("keys.toml");
    let created = Command::new(env!("CARGO_BIN_EXE_skein"))
        .args(["key", "create", "--id", "itest-1", "--keys-file"])
        .arg(&keys_file)
        .output()
        .expect("skein key create runs");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys_file).expect("keys file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the keys file is its owner's only");
    }

    let data = dir.path().join("data");
    let encryption = EncryptionConfig { keys_file: Some(keys_file), keys_env: None };
    let start = || {
        let encryption = encryption.clone();
        ClusterBuilder::new().data_dir(&data).configure(move |c| c.storage.encryption = Some(encryption)).start()
    };
    let node = start().await;
    let trace_id = "e0c0e0c0e0c0e0c0e0c0e0c0e0c0e0c0";
    let span = json!({
        "traceId": trace_id, "spanId": "e0c0e0c0e0c0e0c0", "name": "charge", "kind": 2,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000",
        "attributes": [{"key": "payment.card", "value": {"stringValue": SECRET}}]
    });
    let body = json!({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]});
    assert_eq!(node.post_otlp_json(&body).await.0, 200);

    let wal = files_under(&data, "wal");
    assert!(!wal.is_empty(), "the acknowledged span is in a WAL segment");
    assert!(wal.iter().all(|segment| !contains(segment, SECRET.as_bytes())), "no WAL segment holds it in the clear");

    node.flush().await;
    let parquet = files_under(&data, "parquet");
    assert!(!parquet.is_empty());
    for file in &parquet {
        let bytes = std::fs::read(file).expect("reads");
        assert!(bytes.ends_with(b"PARE"), "{} has no encrypted footer", file.display());
    }
    let rows = node.sql("SELECT span_attributes['payment.card'] AS card FROM spans").await;
    assert_eq!(rows["rows"], json!([[SECRET]]), "{rows}");
    node.stop().await;

    let node = start().await;
    assert_eq!(node.trace(trace_id).await["spans"].as_array().map(Vec::len), Some(1), "read back after a restart");
    node.stop().await;
}
