//! Seeded byte mutations for the bounded run under `cargo test`: the same
//! kinds of edits a coverage-guided fuzzer starts with (bit flips, special
//! bytes, inserts, deletes, duplicated and spliced chunks), from a fixed
//! seed so a failure reproduces. Coverage-guided runs use libFuzzer's own
//! mutator (scripts/fuzz.sh).

/// xorshift64*: tiny, seedable, and good enough to pick edits.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 { 0 } else { (self.next() % bound as u64) as usize }
    }
}

/// Bytes that often sit on boundaries: protobuf tags and lengths, UTF-8
/// lead bytes, JSON and SQL punctuation.
const SPECIAL: &[u8] = b"\x00\x01\x7f\x80\xff\xc3\xe2\x0a\x12\x1a\x22\x2a\x08\x09\x10\"\\{}[]:,'();-*%";

/// Applies one to four random edits to `input`, taking spliced chunks from
/// `other`.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = SPECIAL[rng.below(SPECIAL.len())];
            }
            2 => out.insert(at, SPECIAL[rng.below(SPECIAL.len())]),
            3 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            4 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(32)).min(out.len());
                let chunk = out[start..end].to_vec();
                out.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(64)).min(other.len());
                out.splice(at..at, other[start..end].iter().copied());
            }
            _ => out.truncate(at),
        }
    }
    out
}
