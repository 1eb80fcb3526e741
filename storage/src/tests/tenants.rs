//! Tenants kept apart below SQL: each tenant's rows live in its own
//! directory with its own WAL and manifests, survive a crash there, and
//! no other tenant's tables can reach them.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use skein_model::security::DEFAULT_TENANT;
use skein_model::{ErrorClass, TenantWriters};
use tokio_util::sync::CancellationToken;

use super::{BASE_NS, all_records, batch_of, crash, quiet_config, trace_spans};
use crate::{StorageConfig, TENANTS_DIR, TenantConfig, TenantStorages};

async fn open_tenants(config: StorageConfig) -> Arc<TenantStorages> {
    open_tenants_in(config, &mut Registry::default()).await
}

async fn open_tenants_in(config: StorageConfig, registry: &mut Registry) -> Arc<TenantStorages> {
    TenantStorages::open(config, registry, CancellationToken::new()).await.expect("tenants open")
}

async fn write(tenants: &TenantStorages, tenant: &str, trace: u32, spans: u32) {
    let writer = tenants.writer(tenant).await.expect("tenant writer");
    writer.write_spans(0, batch_of(trace_spans(trace, spans, BASE_NS))).await.expect("write accepted");
}

#[tokio::test]
async fn each_tenant_reads_only_its_own_rows_and_gets_them_back_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenants = open_tenants(quiet_config(dir.path())).await;
    write(&tenants, DEFAULT_TENANT, 1, 2).await;
    write(&tenants, "acme", 2, 3).await;
    write(&tenants, "globex", 3, 4).await;
    tenants.get("globex").await.expect("globex").flush_all().await.expect("flushes");

    let traces_of = |records: Vec<skein_model::SpanRecord>| {
        let mut ids: Vec<Vec<u8>> = records.into_iter().map(|r| r.span.trace_id).collect();
        ids.dedup();
        ids
    };
    for (tenant, trace, spans) in [(DEFAULT_TENANT, 1, 2), ("acme", 2, 3), ("globex", 3, 4)] {
        let records = all_records(&tenants.get(tenant).await.expect("open")).await;
        assert_eq!(records.len(), spans, "{tenant}");
        assert_eq!(traces_of(records), vec![super::trace_id(trace)], "{tenant}");
    }
    // The default tenant keeps a single-tenant directory's layout.
    assert!(dir.path().join("shard-0000/spans").is_dir());
    assert!(dir.path().join(TENANTS_DIR).join("acme/shard-0000/spans/wal").is_dir());
    assert!(super::files_with_suffix(&dir.path().join(TENANTS_DIR).join("globex"), ".parquet").len() == 1);
    assert!(super::files_with_suffix(&dir.path().join("shard-0000"), ".parquet").is_empty());

    // acme's rows were only in its WAL: after a crash they are replayed
    // when the process opens again, before anything asks for acme.
    for (_, storage) in tenants.opened() {
        crash(storage).await;
    }
    drop(tenants);
    let mut registry = Registry::default();
    let tenants = open_tenants_in(quiet_config(dir.path()), &mut registry).await;
    let opened: Vec<String> = tenants.opened().into_iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(opened, ["acme", "default", "globex"]);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    assert!(text.contains("skein_storage_tenants 3\n"), "{text}");
    for (tenant, spans) in [(DEFAULT_TENANT, 2), ("acme", 3), ("globex", 4)] {
        assert_eq!(all_records(&tenants.get(tenant).await.expect("open")).await.len(), spans, "{tenant}");
    }
    tenants.close().await.expect("closes");
    let writer = tenants.writer("acme").await.expect("acme is known");
    let refused = writer.write_spans(0, batch_of(trace_spans(9, 1, BASE_NS))).await.expect_err("closed");
    assert!(matches!(refused.class(), ErrorClass::Unavailable { .. }), "{refused}");
    let refused = tenants.writer("initech").await.err().expect("no tenant opens after the close");
    assert!(matches!(refused.class(), ErrorClass::Unavailable { .. }), "{refused}");
}

#[tokio::test]
async fn tenants_past_the_limit_are_refused_and_retention_is_per_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let week = Duration::from_secs(7 * 86_400);
    let config = StorageConfig {
        max_tenants: 2,
        retention: Some(Duration::from_secs(30 * 86_400)),
        tenants: [("short".to_owned(), TenantConfig { retention: Some(week), ..TenantConfig::default() })].into(),
        ..quiet_config(dir.path())
    };
    let tenants = open_tenants(config).await;
    assert_eq!(tenants.get("short").await.expect("short").retention, Some(week));
    assert_eq!(tenants.default_tenant().retention, Some(Duration::from_secs(30 * 86_400)));

    let refused = tenants.writer("third").await.err().expect("over the limit");
    assert_eq!(refused.class(), ErrorClass::PermissionDenied);
    assert!(refused.to_string().contains("storage.max_tenants"), "{refused}");
    assert!(!dir.path().join(TENANTS_DIR).join("third").exists(), "nothing is created for a refused tenant");
    let bad = tenants.get("../escape").await.expect_err("not a tenant name");
    assert!(bad.to_string().contains("must be 1 to 64 characters"), "{bad}");
    write(&tenants, "short", 1, 2).await;
    tenants.close().await.expect("closes");

    // A lower limit later still opens every tenant that has data (their
    // WALs hold acknowledged rows); only new tenants are refused.
    let config = StorageConfig { max_tenants: 1, ..quiet_config(dir.path()) };
    let tenants = open_tenants(config).await;
    let opened: Vec<String> = tenants.opened().into_iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(opened, ["default", "short"]);
    assert_eq!(all_records(&tenants.get("short").await.expect("short")).await.len(), 2);
    assert!(tenants.writer("fourth").await.is_err(), "a new tenant is past the limit");
    tenants.close().await.expect("closes");
}
