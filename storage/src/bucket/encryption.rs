//! Server-side encryption of what Skein writes to S3
//! (`storage.object_store.server_side_encryption`): the store encrypts each
//! object at rest, with its own keys (SSE-S3) or a KMS key (SSE-KMS,
//! DSSE-KMS). Skein only passes the setting through on every write; the
//! store decrypts on read for callers allowed to use the key.

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use serde::{Deserialize, Serialize};

use super::ObjectStoreConfig;

/// Which server-side encryption the store applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerSideEncryption {
    /// Keys managed by the store (`AES256`).
    SseS3,
    /// A KMS key: `sse_kms_key_id`, or the account's default `aws/s3` key.
    SseKms,
    /// Dual-layer encryption with a KMS key.
    DsseKms,
}

impl ServerSideEncryption {
    /// The value of the `x-amz-server-side-encryption` header.
    fn header_value(self) -> &'static str {
        match self {
            ServerSideEncryption::SseS3 => "AES256",
            ServerSideEncryption::SseKms => "aws:kms",
            ServerSideEncryption::DsseKms => "aws:kms:dsse",
        }
    }

    fn uses_kms(self) -> bool {
        matches!(self, ServerSideEncryption::SseKms | ServerSideEncryption::DsseKms)
    }
}

pub(super) fn validate(config: &ObjectStoreConfig) -> Result<(), String> {
    let s3 = config.url.starts_with("s3://");
    match config.server_side_encryption {
        Some(_) if !s3 => {
            Err("storage.object_store.server_side_encryption applies to s3:// stores only; encrypt the disk of a file:// store".into())
        }
        Some(sse) if !sse.uses_kms() && config.sse_kms_key_id.is_some() => Err(
            "storage.object_store.sse_kms_key_id needs server_side_encryption = \"sse-kms\" or \"dsse-kms\"".into(),
        ),
        None if config.sse_kms_key_id.is_some() || config.sse_bucket_key.is_some() => Err(
            "storage.object_store.sse_kms_key_id and sse_bucket_key need server_side_encryption (sse-s3, sse-kms or dsse-kms)".into(),
        ),
        _ => Ok(()),
    }
}

/// The builder with the encryption headers every write will carry.
pub(super) fn apply(mut builder: AmazonS3Builder, config: &ObjectStoreConfig) -> AmazonS3Builder {
    let Some(sse) = config.server_side_encryption else {
        return builder;
    };
    let set = |builder: AmazonS3Builder, key: &str, value: &str| match key.parse::<AmazonS3ConfigKey>() {
        Ok(key) => builder.with_config(key, value),
        // The keys are object_store's documented names; a rename there is caught by the tests.
        Err(_) => builder,
    };
    builder = set(builder, "aws_server_side_encryption", sse.header_value());
    if let Some(key_id) = &config.sse_kms_key_id {
        builder = set(builder, "aws_sse_kms_key_id", key_id);
    }
    if let Some(enabled) = config.sse_bucket_key {
        builder = builder.with_bucket_key(enabled);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(sse: Option<ServerSideEncryption>, key: Option<&str>) -> ObjectStoreConfig {
        ObjectStoreConfig {
            url: "s3://bucket/skein".into(),
            server_side_encryption: sse,
            sse_kms_key_id: key.map(str::to_owned),
            ..ObjectStoreConfig::default()
        }
    }

    #[test]
    fn settings_are_checked_together() {
        assert!(validate(&s3(None, None)).is_ok());
        assert!(validate(&s3(Some(ServerSideEncryption::SseS3), None)).is_ok());
        assert!(validate(&s3(Some(ServerSideEncryption::SseKms), Some("arn:aws:kms:eu-west-1:1:key/k"))).is_ok());
        let err = validate(&s3(Some(ServerSideEncryption::SseS3), Some("k"))).expect_err("key without kms");
        assert!(err.contains("sse-kms"), "{err}");
        let err = validate(&s3(None, Some("k"))).expect_err("key without encryption");
        assert!(err.contains("need server_side_encryption"), "{err}");
        let file = ObjectStoreConfig {
            url: "file:///tmp/x".into(),
            server_side_encryption: Some(ServerSideEncryption::SseS3),
            ..ObjectStoreConfig::default()
        };
        assert!(validate(&file).expect_err("file store").contains("s3:// stores only"));
    }

    #[test]
    fn the_builder_carries_the_headers() {
        for (sse, header) in [
            (ServerSideEncryption::SseS3, "AES256"),
            (ServerSideEncryption::SseKms, "aws:kms"),
            (ServerSideEncryption::DsseKms, "aws:kms:dsse"),
        ] {
            let key = sse.uses_kms().then_some("alias/skein");
            let builder = apply(AmazonS3Builder::new(), &s3(Some(sse), key));
            let get = |name: &str| builder.get_config_value(&name.parse().expect("a known key"));
            assert_eq!(get("aws_server_side_encryption").as_deref(), Some(header));
            assert_eq!(get("aws_sse_kms_key_id").as_deref(), key);
        }
        let plain = apply(AmazonS3Builder::new(), &s3(None, None));
        assert_eq!(plain.get_config_value(&"aws_server_side_encryption".parse().expect("key")), None);
    }

    #[test]
    fn names_in_config_files() {
        let parsed: ServerSideEncryption = serde_json::from_str("\"sse-kms\"").expect("kebab-case");
        assert_eq!(parsed, ServerSideEncryption::SseKms);
    }
}
