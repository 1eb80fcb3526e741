//! Encryption at rest: the keys file (text) either parses or is refused,
//! and a parsed file's keys seal and open records; a WAL record (bytes read
//! back from disk or the bucket) opens, or is refused with a reason, under a
//! fixed key, never panics, and only what that key sealed opens.

use std::sync::{Arc, OnceLock};

use skein_storage::{Keyring, TenantKeys, open_record};

/// A fixed secret, so sealed seeds stay valid between runs.
const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn keys_text(id: &str, tenant: &str) -> String {
    format!("[[keys]]\nid = \"{id}\"\ntenant = \"{tenant}\"\nsecret = \"{SECRET}\"\n")
}

fn fixed_keys() -> &'static Arc<TenantKeys> {
    static KEYS: OnceLock<Arc<TenantKeys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ring = Keyring::parse(&keys_text("fuzz", "*"), "fuzz keys").expect("the fixed keys parse");
        ring.for_tenant("default").expect("the fixed keys serve default")
    })
}

pub fn keys_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(ring) = Keyring::parse(text, "fuzz input") else { return };
    for tenant in ["default", "acme"] {
        let Ok(keys) = ring.for_tenant(tenant) else { continue };
        let sealed = keys.seal_record(data.to_vec()).expect("sealing never fails with a parsed key");
        let opened = open_record(&sealed, Some(&keys)).expect("a record opens with the key that sealed it");
        assert_eq!(opened.as_ref(), data, "a record came back changed");
    }
}

pub fn keys_file_seeds() -> Vec<Vec<u8>> {
    vec![
        keys_text("2026-12", "*").into_bytes(),
        format!("{}{}", keys_text("old", "*"), keys_text("acme-1", "acme")).into_bytes(),
        b"keys = []\n".to_vec(),
    ]
}

pub fn wal_record(data: &[u8]) {
    let keys = fixed_keys();
    match open_record(data, Some(keys)) {
        Ok(plain) if data.starts_with(b"SKWE") => {
            // Only a record sealed under the key opens: sealing the
            // plaintext again must give a record of the same length.
            let resealed = keys.seal_record(plain.into_owned()).expect("seals");
            assert_eq!(resealed.len(), data.len(), "an opened record does not match its length");
        }
        Ok(plain) => assert_eq!(plain.as_ref(), data, "a plain record must pass unchanged"),
        Err(reason) => assert!(!reason.to_string().is_empty(), "a refusal without a reason"),
    }
    // Without keys, a sealed record is refused, never misread.
    if data.starts_with(b"SKWE") {
        assert!(open_record(data, None).is_err(), "a sealed record opened without keys");
    }
}

pub fn wal_record_seeds() -> Vec<Vec<u8>> {
    let keys = fixed_keys();
    vec![
        keys.seal_record(b"\xff\xff\xff\xffan arrow ipc stream".to_vec()).expect("seals"),
        keys.seal_record(Vec::new()).expect("seals"),
        b"\xff\xff\xff\xff\x10\x00\x00\x00plain".to_vec(),
        b"SKWE\x01\x04fuzz".to_vec(),
    ]
}
