//! Per-tenant ingest rate limits (`[collector.tenant_ingest]`): request
//! bytes and items (spans, data points, log records) per second, each a
//! token bucket per tenant (governor's GCRA) holding one second's worth.
//! A request over its tenant's rate is refused before anything is written,
//! with 429 / RESOURCE_EXHAUSTED and the time after which it would fit,
//! which OTLP exporters honour. Without `[auth]` every request is the one
//! tenant `default`, so the limits are the collector's own. Tenants come
//! from the tokens file or `X-Scope-OrgID`; idle buckets are dropped once
//! there are many.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use skein_model::security::{DEFAULT_TENANT, RequestTenant, validate_tenant};

use crate::CollectorError;

/// The tenant a request acts for (set by the listener's checks), else `default`.
pub(crate) fn tenant_of(tenant: Option<&RequestTenant>) -> &str {
    tenant.map_or(DEFAULT_TENANT, |t| &t.0)
}

/// Buckets kept before idle ones are dropped: with `X-Scope-OrgID`
/// clients name tenants, so the set is not bounded by the tokens file.
const MAX_TRACKED_TENANTS: usize = 10_000;

/// `[collector.tenant_ingest]`: 0 turns a limit off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantIngestLimits {
    /// Request bytes per second and tenant (as received, before decompression).
    pub bytes_per_second: u32,
    /// Spans, data points and log records per second and tenant.
    pub items_per_second: u32,
    /// Single tenants' own rates, by name: `[collector.tenant_ingest.tenants.payments]`.
    pub tenants: BTreeMap<String, TenantRates>,
}

/// One tenant's rates; an unset one is the `[collector.tenant_ingest]` default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantRates {
    pub bytes_per_second: Option<u32>,
    pub items_per_second: Option<u32>,
}

impl TenantIngestLimits {
    pub(crate) fn validate(&self) -> Result<(), String> {
        for name in self.tenants.keys() {
            validate_tenant(name).map_err(|reason| format!("collector.tenant_ingest.tenants: {reason}"))?;
        }
        Ok(())
    }
}

/// One dimension's buckets, one per tenant.
struct Bucket {
    limiter: DefaultKeyedRateLimiter<String>,
    burst: NonZeroU32,
    per_second: u32,
    what: &'static str,
}

impl Bucket {
    fn new(per_second: u32, what: &'static str) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        Some(Self { limiter: RateLimiter::keyed(Quota::per_second(rate)), burst: rate, per_second, what })
    }

    /// Takes `amount` from `tenant`'s bucket, or says when it would fit. A
    /// request larger than a whole second's budget takes the whole bucket:
    /// it passes when the bucket is full, so no size is refused forever.
    fn take(&self, tenant: &str, amount: u64) -> Result<(), CollectorError> {
        let cells = NonZeroU32::new(u32::try_from(amount).unwrap_or(u32::MAX).min(self.burst.get()));
        let Some(cells) = cells else { return Ok(()) };
        if self.limiter.len() > MAX_TRACKED_TENANTS {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key_n(&tenant.to_owned(), cells) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(CollectorError::RateLimited {
                tenant: tenant.to_owned(),
                limit: self.per_second,
                what: self.what,
                retry_after: whole_seconds(not_until.wait_time_from(DefaultClock::default().now())),
            }),
            // Cannot happen: `cells` is at most the burst.
            Err(_) => Ok(()),
        }
    }
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bucket({} {}/s)", self.per_second, self.what)
    }
}

/// Retry-After is in whole seconds; waiting less than asked would fail again.
fn whole_seconds(wait: Duration) -> Duration {
    Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(Duration::from_secs(1))
}

/// The buckets of one rate of every tenant: shared by the tenants on the
/// default rate, one of their own for tenants with an override.
#[derive(Debug)]
struct Rate {
    default: Option<Bucket>,
    own: HashMap<String, Option<Bucket>>,
}

impl Rate {
    fn new(default: u32, what: &'static str, own: impl Iterator<Item = (String, Option<u32>)>) -> Self {
        let own = own.filter_map(|(tenant, rate)| rate.map(|rate| (tenant, Bucket::new(rate, what)))).collect();
        Self { default: Bucket::new(default, what), own }
    }

    fn take(&self, tenant: &str, amount: u64) -> Result<(), CollectorError> {
        let bucket = self.own.get(tenant).unwrap_or(&self.default);
        bucket.as_ref().map_or(Ok(()), |b| b.take(tenant, amount))
    }
}

/// The ingest rate limits of every tenant.
#[derive(Debug)]
pub(crate) struct TenantLimiter {
    bytes: Rate,
    items: Rate,
}

impl TenantLimiter {
    pub(crate) fn new(limits: TenantIngestLimits) -> Self {
        let own = |rate: fn(&TenantRates) -> Option<u32>| {
            limits.tenants.iter().map(move |(tenant, rates)| (tenant.clone(), rate(rates))).collect::<Vec<_>>()
        };
        Self {
            bytes: Rate::new(limits.bytes_per_second, "bytes", own(|r| r.bytes_per_second).into_iter()),
            items: Rate::new(limits.items_per_second, "items", own(|r| r.items_per_second).into_iter()),
        }
    }

    /// Charges a request's size to its tenant; called before decoding.
    pub(crate) fn admit_bytes(&self, tenant: &str, bytes: usize) -> Result<(), CollectorError> {
        self.bytes.take(tenant, bytes as u64)
    }

    /// Charges a request's items to its tenant; called before writing.
    pub(crate) fn admit_items(&self, tenant: &str, items: u64) -> Result<(), CollectorError> {
        self.items.take(tenant, items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_has_its_own_budget_and_learns_when_to_retry() {
        let limits = TenantIngestLimits { bytes_per_second: 1000, items_per_second: 10, ..Default::default() };
        let limiter = TenantLimiter::new(limits);
        limiter.admit_bytes("a", 600).expect("within a's budget");
        let error = limiter.admit_bytes("a", 600).expect_err("over a's budget");
        match &error {
            CollectorError::RateLimited { tenant, limit, what, retry_after } => {
                assert_eq!((tenant.as_str(), *limit, *what), ("a", 1000, "bytes"));
                assert_eq!(*retry_after, Duration::from_secs(1), "whole seconds, at least one");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(error.class().http_status(), 429);
        assert!(error.to_string().contains("tenant a"), "{error}");
        limiter.admit_bytes("b", 600).expect("b has its own budget");
        limiter.admit_items("a", 10).expect("items are a separate budget");
        limiter.admit_items("a", 1).expect_err("over a's items");
        // Larger than a second's budget: passes on a full bucket, not twice.
        limiter.admit_items("c", 1_000).expect("a full bucket admits one oversized request");
        limiter.admit_items("c", 1_000).expect_err("then it must refill");
    }

    #[test]
    fn a_tenant_of_its_own_has_its_own_rates_and_zero_turns_them_off() {
        let big = TenantRates { bytes_per_second: Some(10_000), items_per_second: None };
        let free = TenantRates { bytes_per_second: Some(0), items_per_second: Some(0) };
        let limits = TenantIngestLimits {
            bytes_per_second: 1000,
            items_per_second: 10,
            tenants: [("big".to_owned(), big), ("free".to_owned(), free)].into(),
        };
        limits.validate().expect("valid");
        let limiter = TenantLimiter::new(limits);
        limiter.admit_bytes("big", 6000).expect("big's own byte rate");
        limiter.admit_bytes("big", 3000).expect("still within it");
        limiter.admit_bytes("big", 3000).expect_err("past it");
        limiter.admit_items("big", 10).expect("the default item rate");
        limiter.admit_items("big", 1).expect_err("past the default item rate");
        for _ in 0..10 {
            limiter.admit_bytes("free", 1 << 30).expect("no byte limit");
            limiter.admit_items("free", 1 << 30).expect("no item limit");
        }
        limiter.admit_bytes("other", 1000).expect("the default rate");
        limiter.admit_bytes("other", 1).expect_err("past the default rate");

        let bad = TenantIngestLimits { tenants: [("a/b".to_owned(), big)].into(), ..Default::default() };
        assert!(bad.validate().expect_err("bad name").contains("collector.tenant_ingest.tenants"));
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limiter = TenantLimiter::new(TenantIngestLimits::default());
        for _ in 0..100 {
            limiter.admit_bytes(DEFAULT_TENANT, usize::MAX).expect("no byte limit");
            limiter.admit_items(DEFAULT_TENANT, u64::MAX).expect("no item limit");
        }
    }
}
