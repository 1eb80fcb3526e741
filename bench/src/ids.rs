//! Trace and span IDs for generated load: unique within a run, random-looking
//! (so Parquet compresses them as it would real IDs), and cheap to compute
//! while patching pre-encoded requests.
//!
//! Every ID is a bijective mix of `(epoch << 24) | local`, where `epoch`
//! numbers the sends of a run (0 is the template) and `local` numbers the
//! trace or span inside one request (from 1). A bijection of distinct inputs
//! gives distinct IDs, and the mix maps only 0 to 0, so no ID is all zero.
//! The run's nonce changes the high bits, so two runs do not repeat traces.

/// Bits of an ID input that number traces or spans inside one request.
pub const LOCAL_BITS: u32 = 24;
/// Most traces or spans one request may hold.
pub const MAX_LOCAL: u32 = (1 << LOCAL_BITS) - 1;
/// Most sends one run may make before IDs would repeat.
pub const MAX_EPOCH: u64 = (1 << (64 - LOCAL_BITS)) - 1;

/// The splitmix64 finalizer: a bijection on u64 that maps only 0 to 0.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How one run derives IDs.
#[derive(Debug, Clone, Copy)]
pub struct IdScheme {
    /// High bits only (the low `LOCAL_BITS` are zero), so XOR with an input
    /// whose `local` is non-zero never yields 0.
    trace_salt: u64,
    span_salt: u64,
    nonce: u64,
}

impl IdScheme {
    pub fn new(nonce: u64) -> Self {
        let high = !u64::from(MAX_LOCAL);
        Self { trace_salt: mix(nonce ^ 0x5452_4143_4500_0000) & high, span_salt: mix(!nonce) & high, nonce }
    }

    fn input(epoch: u64, local: u32) -> u64 {
        debug_assert!((1..=MAX_LOCAL).contains(&local) && epoch <= MAX_EPOCH);
        (epoch << LOCAL_BITS) | u64::from(local)
    }

    /// The high half alone is unique within the run; the low half carries
    /// the nonce so that runs differ.
    pub fn trace_id(&self, epoch: u64, local: u32) -> [u8; 16] {
        let input = Self::input(epoch, local);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&mix(input ^ self.trace_salt).to_be_bytes());
        id[8..].copy_from_slice(&mix(input.rotate_left(17) ^ self.nonce).to_be_bytes());
        id
    }

    pub fn span_id(&self, epoch: u64, local: u32) -> [u8; 8] {
        mix(Self::input(epoch, local) ^ self.span_salt).to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_unique_and_never_zero_across_epochs() {
        let ids = IdScheme::new(42);
        let mut traces = HashSet::new();
        let mut spans = HashSet::new();
        for epoch in [0, 1, 2, 255, 256, MAX_EPOCH] {
            for local in [1, 2, 3, 1000, MAX_LOCAL] {
                let trace = ids.trace_id(epoch, local);
                let span = ids.span_id(epoch, local);
                assert!(trace.iter().any(|b| *b != 0) && span.iter().any(|b| *b != 0));
                assert!(traces.insert(trace), "trace id repeated at epoch {epoch} local {local}");
                assert!(spans.insert(span), "span id repeated at epoch {epoch} local {local}");
            }
        }
    }

    #[test]
    fn runs_with_different_nonces_differ() {
        let (a, b) = (IdScheme::new(1), IdScheme::new(2));
        assert_ne!(a.trace_id(1, 1), b.trace_id(1, 1));
        assert_ne!(a.span_id(1, 1), b.span_id(1, 1));
        assert_eq!(a.trace_id(7, 9), IdScheme::new(1).trace_id(7, 9), "deterministic for one nonce");
    }

    #[test]
    fn mix_is_a_bijection_on_samples() {
        let outputs: HashSet<u64> = (0..100_000u64).map(mix).collect();
        assert_eq!(outputs.len(), 100_000);
        assert_eq!(mix(0), 0);
    }
}
