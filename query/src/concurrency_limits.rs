//! Concurrency limits on the query API, per bearer token
//! (`query.max_concurrent_requests_per_token`) and per tenant
//! (`query.max_concurrent_requests_per_tenant`): past its limit a key's
//! requests are answered 429 with `Retry-After` at once rather than
//! queued, so one busy dashboard, script or team cannot starve the other
//! users of the engine.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::QueryError;

/// Keys kept before idle ones are dropped: tenants named by
/// `X-Scope-OrgID` are not bounded by the tokens file.
const MAX_TRACKED_KEYS: usize = 10_000;

/// What a limit is per, and the error past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitPer {
    Token,
    Tenant,
}

#[derive(Debug)]
pub(crate) struct ConcurrencyLimits {
    limit: usize,
    per: LimitPer,
    /// One semaphore per key seen.
    running: Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
}

impl ConcurrencyLimits {
    pub(crate) fn new(limit: usize, per: LimitPer) -> Self {
        Self { limit, per, running: Mutex::new(HashMap::new()) }
    }

    /// A slot for one request of `key`, held until the permit drops.
    pub(crate) fn try_acquire(&self, key: &Arc<str>) -> Result<OwnedSemaphorePermit, QueryError> {
        let semaphore = {
            let mut running = self.running.lock();
            if running.len() >= MAX_TRACKED_KEYS && !running.contains_key(key) {
                running.retain(|_, s| s.available_permits() < self.limit);
            }
            Arc::clone(running.entry(Arc::clone(key)).or_insert_with(|| Arc::new(Semaphore::new(self.limit))))
        };
        semaphore.try_acquire_owned().map_err(|_| match self.per {
            LimitPer::Token => QueryError::TokenBusy { limit: self.limit },
            LimitPer::Tenant => QueryError::TenantBusy { tenant: key.to_string(), limit: self.limit },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skein_model::ErrorClass;

    #[test]
    fn each_key_has_its_own_slots() {
        let limits = ConcurrencyLimits::new(2, LimitPer::Token);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let first = limits.try_acquire(&a).expect("slot 1");
        let _second = limits.try_acquire(&a).expect("slot 2");
        let busy = limits.try_acquire(&a).expect_err("a is at its limit");
        assert!(matches!(busy.class(), ErrorClass::Overloaded { .. }), "429 with Retry-After: {busy}");
        assert!(limits.try_acquire(&b).is_ok(), "another token is not affected");
        drop(first);
        assert!(limits.try_acquire(&a).is_ok(), "a finished request frees its slot");
    }

    #[test]
    fn a_busy_tenant_is_named_and_idle_keys_do_not_pile_up() {
        let limits = ConcurrencyLimits::new(1, LimitPer::Tenant);
        let acme: Arc<str> = Arc::from("acme");
        let _running = limits.try_acquire(&acme).expect("slot");
        let busy = limits.try_acquire(&acme).expect_err("busy");
        assert!(busy.to_string().contains("tenant acme"), "{busy}");
        for n in 0..MAX_TRACKED_KEYS + 10 {
            drop(limits.try_acquire(&Arc::from(format!("t{n}"))).expect("idle tenant"));
        }
        assert!(limits.running.lock().len() <= MAX_TRACKED_KEYS, "idle keys are dropped");
        assert!(limits.try_acquire(&acme).is_err(), "a running key is kept");
    }
}
