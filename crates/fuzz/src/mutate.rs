//! A small deterministic mutator, so `cargo test` explores beyond the corpus without a
//! nightly toolchain: each step flips, overwrites, deletes, repeats, inserts or splices bytes,
//! and a seed replays a run exactly.

/// Bytes a parser treats specially: JSON punctuation, digits, signs, RLP and SSZ boundaries.
const INTERESTING: &[u8] =
    b"\x00\x01\x7f\x80\x81\xb7\xb8\xbf\xc0\xf7\xf8\xff\"{}[],:0123456789-+.eExnul \\";

/// The longest input the mutator makes.
pub const MAX_LEN: usize = 1 << 16;

/// A seeded mutator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Mutator {
    state: u64,
}

impl Mutator {
    /// A mutator whose choices follow from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// `input` changed by one to four steps; `others` feed splices.
    pub fn mutate(&mut self, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let len = out.len();
            match self.below(7) {
                0 if len > 0 => {
                    let at = self.below(len);
                    out[at] ^= 1 << self.below(8);
                }
                1 if len > 0 => {
                    let at = self.below(len);
                    out[at] = INTERESTING[self.below(INTERESTING.len())];
                }
                2 if len > 0 => {
                    let at = self.below(len);
                    let n = 1 + self.below((len - at).min(32));
                    out.drain(at..at + n);
                }
                3 if len > 0 => {
                    let at = self.below(len);
                    let n = 1 + self.below((len - at).min(64));
                    let copy: Vec<u8> = out[at..at + n].to_vec();
                    let to = self.below(len + 1);
                    out.splice(to..to, copy);
                }
                4 => {
                    let to = self.below(len + 1);
                    let bytes: Vec<u8> = (0..1 + self.below(8))
                        .map(|_| INTERESTING[self.below(INTERESTING.len())])
                        .collect();
                    out.splice(to..to, bytes);
                }
                5 if !others.is_empty() => {
                    let other = &others[self.below(others.len())];
                    let from = self.below(other.len() + 1);
                    let at = self.below(len + 1);
                    out.truncate(at);
                    out.extend_from_slice(&other[from..]);
                }
                _ => {
                    let keep = self.below(len + 1);
                    out.truncate(keep);
                }
            }
        }
        out.truncate(MAX_LEN);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_seed_replays_exactly_and_inputs_change() {
        let input = br#"{"txs":["0x00"],"blockNumber":"0x1"}"#;
        let (mut a, mut b) = (Mutator::new(7), Mutator::new(7));
        let mut changed = 0;
        for _ in 0..100 {
            let (x, y) = (a.mutate(input, &[]), b.mutate(input, &[]));
            assert_eq!(x, y);
            changed += usize::from(x != input);
        }
        assert!(changed > 80, "{changed} of 100 changed");
    }
}
