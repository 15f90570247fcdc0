//! A small seeded generator (SplitMix64), so a workload is a pure function of its seed.
//!
//! No wall clock, no OS entropy and no floating point: the same seed gives the same draws on
//! every machine, which is what makes a workload (and a failing benchmark) replayable.

/// SplitMix64 (Steele, Lea and Flood 2014): 64 bits of state, full period, good enough
/// statistics for picking amounts, recipients and order kinds.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub const fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0), by Lemire's multiply-shift.
    pub const fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A number in `lo..=hi` (`lo` when `hi < lo`).
    pub const fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// True `per_mille` times in a thousand.
    pub const fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// An index in `0..n` skewed towards the low end (the square of a uniform draw), so a few
    /// accounts are much busier than most, as on mainnet.
    pub const fn skewed(&mut self, n: u64) -> u64 {
        let u = self.below(1 << 16) as u128;
        ((u * u * n as u128) >> 32) as u64
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_same_seed_same_draws_other_seed_other_draws() {
        let draws = |seed| {
            let mut rng = Rng::new(seed);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
    }

    #[test]
    fn test_bounds_hold() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            assert!(rng.below(10) < 10);
            let r = rng.range(5, 9);
            assert!((5..=9).contains(&r));
            assert!(rng.skewed(100) < 100);
        }
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.range(3, 3), 3);
    }
}
