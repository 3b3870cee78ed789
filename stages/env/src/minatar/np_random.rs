//! The random stream of numpy's legacy `RandomState`, which the MinAtar reference draws from.
//!
//! Reproducing it (MT19937 seeded by `init_genrand`, `rand()` as 53-bit doubles, `randint` by
//! masked rejection; numpy `random/_mt19937.pyx`, `random/src/legacy` and
//! `random/src/distributions/distributions.c`) makes prunus's games step for step identical to
//! the Python package for the same seed, which is what the equivalence tests check.

use rand_mt::Mt;

/// numpy's `RandomState(seed)`.
#[derive(Clone)]
pub struct NpRandom(Mt);

impl NpRandom {
    /// `RandomState(seed)` for seeds below 2^32; larger seeds fold their high half in (numpy
    /// rejects them), so distinct `u64` seeds still give distinct streams in practice.
    pub fn new(seed: u64) -> Self {
        NpRandom(Mt::new((seed as u32) ^ ((seed >> 32) as u32)))
    }

    /// `rand()`: uniform in [0, 1) with 53 random bits from two 32-bit outputs.
    pub fn rand(&mut self) -> f64 {
        let a = self.0.next_u32() >> 5;
        let b = self.0.next_u32() >> 6;
        (a as f64 * 67_108_864.0 + b as f64) / 9_007_199_254_740_992.0
    }

    /// `randint(n)`: uniform in 0..n, drawing 32-bit words masked to the next power of two
    /// and rejecting values above `n - 1` (numpy's legacy bounded integers). `n` must be >= 1.
    pub fn randint(&mut self, n: u32) -> u32 {
        let max = n - 1;
        if max == 0 {
            return 0;
        }
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let v = self.0.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `randint(low, high)`.
    pub fn randint_range(&mut self, low: i32, high: i32) -> i32 {
        low + self.randint((high - low) as u32) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_random_state() {
        // numpy 2.x: RandomState(0).rand() -> 0.5488135039273248, then .rand() -> 0.7151893663724195.
        let mut r = NpRandom::new(0);
        assert_eq!(r.rand(), 0.548_813_503_927_324_8);
        assert_eq!(r.rand(), 0.715_189_366_372_419_5);
        // RandomState(42).randint(10, size=5) -> [6, 3, 7, 4, 6].
        let mut r = NpRandom::new(42);
        let v: Vec<u32> = (0..5).map(|_| r.randint(10)).collect();
        assert_eq!(v, [6, 3, 7, 4, 6]);
    }
}
