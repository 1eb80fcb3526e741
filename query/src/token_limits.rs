//! Per-token concurrency on the query API: each bearer token may have at
//! most `query.max_concurrent_requests_per_token` requests running; more
//! are answered 429 with `Retry-After` at once rather than queued, so one
//! busy dashboard or script cannot starve the other users of the engine.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::QueryError;

#[derive(Debug)]
pub(crate) struct TokenLimits {
    limit: usize,
    /// One semaphore per token seen; bounded by the tokens file.
    running: Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
}

impl TokenLimits {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, running: Mutex::new(HashMap::new()) }
    }

    /// A slot for one request of `token_id`, held until the permit drops.
    pub(crate) fn try_acquire(&self, token_id: &Arc<str>) -> Result<OwnedSemaphorePermit, QueryError> {
        let semaphore = {
            let mut running = self.running.lock();
            Arc::clone(running.entry(Arc::clone(token_id)).or_insert_with(|| Arc::new(Semaphore::new(self.limit))))
        };
        semaphore.try_acquire_owned().map_err(|_| QueryError::TokenBusy { limit: self.limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skein_model::ErrorClass;

    #[test]
    fn each_token_has_its_own_slots() {
        let limits = TokenLimits::new(2);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let first = limits.try_acquire(&a).expect("slot 1");
        let _second = limits.try_acquire(&a).expect("slot 2");
        let busy = limits.try_acquire(&a).expect_err("a is at its limit");
        assert!(matches!(busy.class(), ErrorClass::Overloaded { .. }), "429 with Retry-After: {busy}");
        assert!(limits.try_acquire(&b).is_ok(), "another token is not affected");
        drop(first);
        assert!(limits.try_acquire(&a).is_ok(), "a finished request frees its slot");
    }
}
