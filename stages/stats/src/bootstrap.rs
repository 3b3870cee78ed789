//! Stratified bootstrap confidence intervals, as rliable computes them
//! (`rliable/library.py`: `StratifiedBootstrap`, `StratifiedIndependentBootstrap`,
//! `get_interval_estimates`; google-research/rliable @ 3ccd9f4, rliable 1.2.0 on PyPI):
//!
//! - a replicate resamples, independently for every task, as many runs as the task has, with
//!   replacement; tasks stay fixed (no task bootstrap);
//! - statistics of several score sets (probability of improvement, several curve points)
//!   resample each set independently, like `StratifiedIndependentBootstrap` (and like a 3-D
//!   `(runs, tasks, points)` array, whose points rliable resamples independently);
//! - the interval is the percentile interval of `arch`'s `IIDBootstrap.conf_int(method=
//!   "percentile")`: `numpy.percentile` (linear interpolation) at 2.5 and 97.5 for 95%.
//!
//! A replicate is a vector of run multiplicities (see [`crate::aggregate`]), so no score is
//! copied. Replicates run in parallel (rayon); replicate `r` draws from its own ChaCha8 stream
//! `r` of the seed, so results depend on the seed only, never on the number of threads.

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::aggregate::{Metric, Pooled};
use crate::scores::Scores;

/// A point estimate with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// How to bootstrap: rliable's defaults are 50,000 repetitions (2,000 for performance
/// profiles) and a 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    pub reps: usize,
    /// Coverage of the interval, e.g. 0.95.
    pub confidence: f64,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            reps: 50_000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

impl Bootstrap {
    /// `metric` on `scores` with its stratified bootstrap interval.
    pub fn interval(&self, scores: &Scores, metric: Metric) -> Interval {
        let pooled = Pooled::new(scores);
        let replicates = if metric == Metric::Iqm {
            // The hot path of the paper's statistics: replicates write their multiplicities
            // straight in sorted order, so the trimmed mean reads them contiguously.
            let sampler = Sampler::new(scores, Some(pooled.ranks()));
            self.run(&[sampler], 1, |w, out| {
                out[0] = pooled.trimmed_mean_sorted(w[0], 0.25)
            })
        } else {
            self.replicates(&[scores], 1, |w, out| {
                out[0] = metric.weighted(&pooled, w[0])
            })
        };
        let (low, high) = self.percentiles(&replicates, 1)[0];
        Interval {
            estimate: metric.of(scores),
            low,
            high,
        }
    }

    /// `metric` at every point of a curve (one score set per point, e.g. per iteration), each
    /// point resampled independently as rliable does for a `(runs, tasks, points)` array.
    /// Point `p` bootstraps with its own seed derived from `(seed, p)`; points run one after
    /// the other so that each one's data stays in cache while its replicates run in parallel.
    pub fn curve(&self, points: &[Scores], metric: Metric) -> Vec<Interval> {
        points
            .iter()
            .enumerate()
            .map(|(p, scores)| {
                let seed = self
                    .seed
                    .wrapping_add((p as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                Bootstrap { seed, ..*self }.interval(scores, metric)
            })
            .collect()
    }

    /// `reps x dim` replicates (replicate-major) of a statistic of one or more score sets.
    /// `stat(weights, out)` receives one multiplicity vector per set (each task's runs drawn
    /// with replacement, independently per set) and writes `dim` values.
    pub fn replicates<F>(&self, sets: &[&Scores], dim: usize, stat: F) -> Vec<f64>
    where
        F: Fn(&[&[u32]], &mut [f64]) + Sync,
    {
        if dim == 0 {
            return Vec::new();
        }
        let samplers: Vec<Sampler> = sets.iter().map(|s| Sampler::new(s, None)).collect();
        self.run(&samplers, dim, stat)
    }

    fn run<F>(&self, samplers: &[Sampler], dim: usize, stat: F) -> Vec<f64>
    where
        F: Fn(&[&[u32]], &mut [f64]) + Sync,
    {
        let mut out = vec![0.0; self.reps * dim];
        let key = ChaCha8Rng::seed_from_u64(self.seed).get_seed();
        out.par_chunks_mut(dim).enumerate().for_each_init(
            || {
                samplers
                    .iter()
                    .map(|s| vec![0u32; s.len])
                    .collect::<Vec<_>>()
            },
            |weights, (rep, out)| {
                let mut rng = ChaCha8Rng::from_seed(key);
                rng.set_stream(rep as u64);
                for (sampler, w) in samplers.iter().zip(weights.iter_mut()) {
                    sampler.resample(&mut rng, w);
                }
                let views: Vec<&[u32]> = weights.iter().map(Vec::as_slice).collect();
                stat(&views, out);
            },
        );
        out
    }

    /// The percentile interval of each of the `dim` columns of `replicates` (replicate-major).
    pub fn percentiles(&self, replicates: &[f64], dim: usize) -> Vec<(f64, f64)> {
        let alpha = (1.0 - self.confidence) / 2.0;
        // Gather 8 columns per pass over the replicates: one cache line per replicate.
        const BLOCK: usize = 8;
        let blocks: Vec<usize> = (0..dim).step_by(BLOCK).collect();
        blocks
            .into_par_iter()
            .flat_map_iter(|first| {
                let cols = BLOCK.min(dim - first);
                let mut columns = vec![Vec::with_capacity(replicates.len() / dim); cols];
                for rep in replicates.chunks_exact(dim) {
                    for (c, column) in columns.iter_mut().enumerate() {
                        column.push(rep[first + c]);
                    }
                }
                columns.into_iter().map(move |mut column| {
                    (
                        quantile(&mut column, alpha),
                        quantile(&mut column, 1.0 - alpha),
                    )
                })
            })
            .collect()
    }
}

/// `numpy.percentile(values, 100 q)` (linear interpolation between the two closest ranks),
/// by selection rather than sorting; reorders `values`.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    assert!(!values.is_empty(), "quantile of an empty sample");
    let h = (values.len() - 1) as f64 * q;
    let i = h.floor() as usize;
    let (_, &mut at, above) = values.select_nth_unstable_by(i, f64::total_cmp);
    match above.iter().copied().min_by(f64::total_cmp) {
        Some(next) => at + (h - i as f64) * (next - at),
        None => at,
    }
}

/// Draws stratified replicates of one score set.
struct Sampler {
    /// Each task's entries and the index of its stratum sampler.
    tasks: Vec<(std::ops::Range<usize>, usize)>,
    strata: Vec<Stratum>,
    /// Where entry `i`'s multiplicity goes (default: position `i`).
    layout: Option<Vec<u32>>,
    /// Number of entries.
    len: usize,
}

/// How the runs of a task with `n` runs are drawn.
enum Stratum {
    /// `n <= 5`: one uniform draw among the `n^n` ordered draws, looked up as `n` counts of
    /// 3 bits packed in a `u16` (a 6 KB table for 5 runs; no dependent increments). One
    /// random word serves `per_word` tasks (`5^25 < 2^64`: 5 tasks of 5 runs), drawn as the
    /// mixed-radix digits of a uniform number below `product = bound^per_word`.
    Table {
        bound: u64,
        per_word: usize,
        product: u64,
        /// `2^64 mod product`: words below it are rejected (Lemire).
        threshold: u64,
        counts: Vec<u16>,
    },
    /// Any `n`: `n` indices, several per random word.
    Batched(Batch),
}

impl Sampler {
    fn new(scores: &Scores, layout: Option<Vec<u32>>) -> Sampler {
        let mut strata: Vec<(usize, Stratum)> = Vec::new();
        let mut tasks = Vec::with_capacity(scores.num_tasks());
        for t in 0..scores.num_tasks() {
            let range = scores.task_range(t);
            let n = range.len();
            let s = match strata.iter().position(|(m, _)| *m == n) {
                Some(s) => s,
                None => {
                    strata.push((n, Stratum::new(n)));
                    strata.len() - 1
                }
            };
            tasks.push((range, s));
        }
        Sampler {
            tasks,
            strata: strata.into_iter().map(|(_, s)| s).collect(),
            layout,
            len: scores.len(),
        }
    }

    /// One stratified replicate: for every task, draw its runs with replacement and store how
    /// often each was drawn in `weights`.
    fn resample(&self, rng: &mut ChaCha8Rng, weights: &mut [u32]) {
        // The random word being decoded: (stratum, remaining value, digits left). Switching
        // stratum drops the unused digits, which keeps every draw uniform and independent.
        let mut word = (usize::MAX, 0u64, 0usize);
        for (range, s) in &self.tasks {
            match &self.strata[*s] {
                Stratum::Table {
                    bound,
                    per_word,
                    product,
                    threshold,
                    counts: table,
                } => {
                    if word.0 != *s || word.2 == 0 {
                        let mut x = rng.next_u64();
                        while x.wrapping_mul(*product) < *threshold {
                            x = rng.next_u64();
                        }
                        word = (*s, x, *per_word);
                    }
                    let m = word.1 as u128 * *bound as u128;
                    word.1 = m as u64;
                    word.2 -= 1;
                    let packed = table[(m >> 64) as usize];
                    if let Some(layout) = &self.layout {
                        let to = &layout[range.clone()];
                        match to.len() {
                            5 => scatter::<5>(packed, to, weights),
                            4 => scatter::<4>(packed, to, weights),
                            3 => scatter::<3>(packed, to, weights),
                            2 => scatter::<2>(packed, to, weights),
                            _ => scatter::<1>(packed, to, weights),
                        }
                        continue;
                    }
                    let counts = &mut weights[range.clone()];
                    match counts.len() {
                        5 => unpack::<5>(packed, counts),
                        4 => unpack::<4>(packed, counts),
                        3 => unpack::<3>(packed, counts),
                        2 => unpack::<2>(packed, counts),
                        _ => unpack::<1>(packed, counts),
                    }
                }
                Stratum::Batched(batch) => match &self.layout {
                    Some(layout) => {
                        let layout = &layout[range.clone()];
                        layout.iter().for_each(|&to| weights[to as usize] = 0);
                        batch.draw(rng, layout.len(), |i| weights[layout[i] as usize] += 1);
                    }
                    None => {
                        let counts = &mut weights[range.clone()];
                        counts.fill(0);
                        batch.draw(rng, counts.len(), |i| counts[i] += 1);
                    }
                },
            }
        }
    }
}

/// Writes the `N` 3-bit counts packed in `packed` (a fixed `N` unrolls the loop).
#[inline(always)]
fn unpack<const N: usize>(packed: u16, counts: &mut [u32]) {
    let counts: &mut [u32; N] = counts.try_into().expect("a task with N runs");
    for (r, c) in counts.iter_mut().enumerate() {
        *c = ((packed >> (3 * r)) & 0b111) as u32;
    }
}

/// Writes the `N` 3-bit counts packed in `packed` to `weights` at the positions `to`.
#[inline(always)]
fn scatter<const N: usize>(packed: u16, to: &[u32], weights: &mut [u32]) {
    let to: &[u32; N] = to.try_into().expect("a task with N runs");
    for (r, &i) in to.iter().enumerate() {
        weights[i as usize] = ((packed >> (3 * r)) & 0b111) as u32;
    }
}

impl Stratum {
    fn new(n: usize) -> Stratum {
        if (1..=5).contains(&n) {
            let bound = (n as u64).pow(n as u32);
            let counts = (0..bound)
                .map(|mut u| {
                    let mut packed = 0u16;
                    for _ in 0..n {
                        packed += 1 << (3 * (u % n as u64));
                        u /= n as u64;
                    }
                    packed
                })
                .collect();
            let (mut per_word, mut product) = (0, 1u64);
            while let Some(p) = product.checked_mul(bound).filter(|_| per_word < 16) {
                product = p;
                per_word += 1;
            }
            Stratum::Table {
                bound,
                per_word,
                product,
                threshold: product.wrapping_neg() % product,
                counts,
            }
        } else {
            Stratum::Batched(Batch::new(n as u64, n))
        }
    }
}

/// Draws uniform indices in `[0, n)`, unbiased, several per 64-bit word: Lemire's
/// multiply-shift method applied to the product bound `n^k` and decoded as `k` mixed-radix
/// digits (Brackett-Rozinsky & Lemire 2024, "Batched ranged random integer generation").
/// With 5 runs, one ChaCha word yields up to 27 indices.
struct Batch {
    n: u64,
    /// Indices per word: the largest `k <= max_k` with `n^k <= 2^64`, and `n^k`.
    k: usize,
    product: u64,
    /// `2^64 mod product`: words whose low part falls below it are rejected.
    threshold: u64,
}

impl Batch {
    fn new(n: u64, max_k: usize) -> Batch {
        assert!(n >= 1);
        let (mut k, mut product) = (0, 1u64);
        while let Some(p) = product.checked_mul(n).filter(|_| n > 1 && k < max_k) {
            product = p;
            k += 1;
        }
        Batch {
            n,
            k,
            product,
            threshold: product.wrapping_neg() % product,
        }
    }

    /// Calls `emit` with `count` independent uniform indices.
    fn draw(&self, rng: &mut ChaCha8Rng, count: usize, mut emit: impl FnMut(usize)) {
        if self.n == 1 {
            (0..count).for_each(|_| emit(0));
            return;
        }
        let mut left = count;
        while left > 0 {
            let k = left.min(self.k);
            let product = if k == self.k {
                self.product
            } else {
                self.n.pow(k as u32)
            };
            let threshold = if k == self.k {
                self.threshold
            } else {
                product.wrapping_neg() % product
            };
            let mut x = rng.next_u64();
            // The low word of x * product decides rejection (Lemire); it is rarely needed.
            while x.wrapping_mul(product) < threshold {
                x = rng.next_u64();
            }
            for _ in 0..k {
                let m = x as u128 * self.n as u128;
                emit((m >> 64) as usize);
                x = m as u64;
            }
            left -= k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy() {
        let mut v = [4.0, 2.0, 1.0, 3.0];
        // numpy.percentile([1, 2, 3, 4], [2.5, 97.5]) = [1.075, 3.925]
        assert!((quantile(&mut v, 0.025) - 1.075).abs() < 1e-12);
        assert!((quantile(&mut v, 0.975) - 3.925).abs() < 1e-12);
        assert_eq!(quantile(&mut [7.0], 0.5), 7.0);
        // Columns of a replicate-major table.
        let b = Bootstrap::default();
        let table: Vec<f64> = (0..101).flat_map(|r| [r as f64, -(r as f64)]).collect();
        let got = b.percentiles(&table, 2);
        let want = [(2.5, 97.5), (-97.5, -2.5)];
        for ((l, h), (wl, wh)) in got.into_iter().zip(want) {
            assert!((l - wl).abs() < 1e-9 && (h - wh).abs() < 1e-9, "{l} {h}");
        }
    }

    #[test]
    fn indices_are_uniform() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in [2u64, 3, 5, 7, 10] {
            let mut counts = vec![0u64; n as usize];
            let draws = 200_000;
            Batch::new(n, 64).draw(&mut rng, draws, |i| counts[i] += 1);
            let expected = draws as f64 / n as f64;
            // Chi-square with n-1 degrees of freedom; 40 is far beyond its 99.99% quantile
            // for n <= 10.
            let chi2: f64 = counts
                .iter()
                .map(|&c| (c as f64 - expected).powi(2) / expected)
                .sum();
            assert!(chi2 < 40.0, "n = {n}: counts {counts:?}");
        }
    }

    #[test]
    fn replicates_keep_runs_per_task_and_are_reproducible() {
        let s = Scores::from_tasks(vec![vec![1.0, 2.0, 3.0], vec![4.0; 5], vec![0.0]]).unwrap();
        let b = Bootstrap {
            reps: 100,
            confidence: 0.95,
            seed: 7,
        };
        let stat = |w: &[&[u32]], out: &mut [f64]| {
            for t in 0..3 {
                out[t] = w[0][s.task_range(t)].iter().sum::<u32>() as f64;
            }
            out[3] = w[0][0] as f64;
        };
        let r = b.replicates(&[&s], 4, stat);
        for rep in r.chunks(4) {
            assert_eq!(&rep[..3], &[3.0, 5.0, 1.0]);
        }
        // Reproducible and not constant.
        assert_eq!(r, b.replicates(&[&s], 4, stat));
        let first: Vec<f64> = r.chunks(4).map(|c| c[3]).collect();
        assert!(first.iter().any(|&x| x != first[0]));
    }

    #[test]
    fn interval_brackets_the_estimate() {
        let tasks = (0..10)
            .map(|t| (0..5).map(|r| (t * 5 + r) as f64 / 7.0).collect())
            .collect();
        let s = Scores::from_tasks(tasks).unwrap();
        let b = Bootstrap {
            reps: 2_000,
            ..Bootstrap::default()
        };
        for metric in Metric::ALL {
            let i = b.interval(&s, metric);
            assert!(
                i.low <= i.estimate && i.estimate <= i.high,
                "{metric:?}: {i:?}"
            );
            assert!(i.low < i.high, "{metric:?}: {i:?}");
        }
    }
}
