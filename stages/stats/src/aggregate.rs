//! Aggregate performance over runs and tasks, as rliable defines it
//! (`rliable/metrics.py`, google-research/rliable @ 3ccd9f4, and rliable 1.2.0 on PyPI):
//!
//! - **IQM**: `scipy.stats.trim_mean(scores, 0.25, axis=None)`: pool every (run, task) entry,
//!   drop `int(0.25 N)` from each end of the sorted pool, average the rest.
//! - **mean** / **median**: mean / median over tasks of the per-task mean over runs.
//! - **optimality gap** (gamma = 1): `gamma - mean(min(score, gamma))` over the pooled entries.
//!
//! Every metric is evaluated on *weighted* scores: a multiplicity per entry. The point estimate
//! uses multiplicity 1 everywhere; a stratified bootstrap replicate uses how often each run was
//! drawn. This makes a replicate cost O(entries) with no copying or re-sorting: the pool is
//! sorted once and each replicate walks it with its multiplicities.

use crate::error::StatsError;
use crate::scores::Scores;

/// An aggregate metric over a score set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Interquartile mean: the 25%-trimmed mean of all pooled (run, task) scores.
    Iqm,
    /// Mean over tasks of the mean over runs.
    Mean,
    /// Median over tasks of the mean over runs.
    Median,
    /// `gamma - mean(min(score, gamma))` over all pooled scores; lower is better.
    OptimalityGap { gamma: f64 },
}

impl Metric {
    /// Every metric, with rliable's default gamma = 1 for the optimality gap.
    pub const ALL: [Metric; 4] = [
        Metric::Iqm,
        Metric::Mean,
        Metric::Median,
        Metric::OptimalityGap { gamma: 1.0 },
    ];

    /// The name used in parameters and output tables.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Iqm => "iqm",
            Metric::Mean => "mean",
            Metric::Median => "median",
            Metric::OptimalityGap { .. } => "optimality_gap",
        }
    }

    /// Parses `iqm`, `mean`, `median` or `optimality_gap` (gamma = 1).
    pub fn parse(name: &str) -> Result<Metric, StatsError> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                StatsError::Unknown(format!(
                    "unknown metric `{name}`; use one of iqm, mean, median, optimality_gap"
                ))
            })
    }

    /// The point estimate on `scores`.
    pub fn of(&self, scores: &Scores) -> f64 {
        self.weighted(&Pooled::new(scores), &scores.unit_weights())
    }

    /// The metric on `scores` where entry `i` counts `weights[i]` times (the weights of each
    /// task sum to its number of runs in a stratified bootstrap replicate).
    pub fn weighted(&self, pooled: &Pooled<'_>, weights: &[u32]) -> f64 {
        let scores = pooled.scores;
        match *self {
            Metric::Iqm => pooled.trimmed_mean(weights, 0.25),
            Metric::Mean => {
                let n = scores.num_tasks();
                (0..n).map(|t| task_mean(scores, weights, t)).sum::<f64>() / n as f64
            }
            Metric::Median => {
                let mut means: Vec<f64> = (0..scores.num_tasks())
                    .map(|t| task_mean(scores, weights, t))
                    .collect();
                median(&mut means)
            }
            Metric::OptimalityGap { gamma } => {
                let (sum, count) = scores
                    .values()
                    .iter()
                    .zip(weights)
                    .fold((0.0, 0u64), |(s, c), (&x, &w)| {
                        (s + w as f64 * x.min(gamma), c + w as u64)
                    });
                gamma - sum / count as f64
            }
        }
    }
}

/// Mean over the (weighted) runs of task `t`.
pub(crate) fn task_mean(scores: &Scores, weights: &[u32], t: usize) -> f64 {
    let range = scores.task_range(t);
    let (sum, count) = scores.values()[range.clone()]
        .iter()
        .zip(&weights[range])
        .fold((0.0, 0u64), |(s, c), (&x, &w)| {
            (s + w as f64 * x, c + w as u64)
        });
    sum / count as f64
}

/// `numpy.median`: the middle value, or the mean of the two middle values.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

/// A score set with its pooled entries sorted once, so that trimmed means of any weighting
/// are a single walk.
#[derive(Debug, Clone)]
pub struct Pooled<'a> {
    scores: &'a Scores,
    /// Entry indices in ascending order of score.
    order: Vec<u32>,
    /// The scores in that order.
    sorted: Vec<f64>,
}

impl<'a> Pooled<'a> {
    pub fn new(scores: &'a Scores) -> Self {
        let values = scores.values();
        let mut order: Vec<u32> = (0..values.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
        let sorted = order.iter().map(|&i| values[i as usize]).collect();
        Pooled {
            scores,
            order,
            sorted,
        }
    }

    pub fn scores(&self) -> &'a Scores {
        self.scores
    }

    /// `scipy.stats.trim_mean(pool, cut)` of the pool where entry `i` appears `weights[i]`
    /// times: drops `int(cut * N)` entries from each end.
    ///
    /// An integer walk finds the sorted entries `a` and `b` that straddle the two cuts; the
    /// entries strictly between them count fully and are summed with four accumulators (a
    /// single running sum would be bound by the latency of floating-point addition).
    pub fn trimmed_mean(&self, weights: &[u32], cut: f64) -> f64 {
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        let low = (cut * total as f64) as u64;
        let high = total - low;
        let (order, xs) = (&self.order, &self.sorted);
        let w = |j: usize| weights[order[j] as usize] as u64;
        let (mut j, mut position) = (0, 0);
        while position + w(j) <= low {
            position += w(j);
            j += 1;
        }
        let (a, end_a) = (j, position + w(j));
        while position + w(j) < high {
            position += w(j);
            j += 1;
        }
        let b = j;
        if a == b {
            return xs[a];
        }
        let mut sum = (end_a - low) as f64 * xs[a] + (high - position) as f64 * xs[b];
        let (o, x) = (&order[a + 1..b], &xs[a + 1..b]);
        let mut acc = [0.0f64; 4];
        let (mut oc, mut xc) = (o.chunks_exact(4), x.chunks_exact(4));
        for (oo, xx) in (&mut oc).zip(&mut xc) {
            for k in 0..4 {
                acc[k] += weights[oo[k] as usize] as f64 * xx[k];
            }
        }
        for (oo, xx) in oc.remainder().iter().zip(xc.remainder()) {
            acc[0] += weights[*oo as usize] as f64 * xx;
        }
        sum += (acc[0] + acc[1]) + (acc[2] + acc[3]);
        sum / (high - low) as f64
    }
}

impl Pooled<'_> {
    /// The sorted position of every entry (the inverse of the sort order).
    pub fn ranks(&self) -> Vec<u32> {
        let mut ranks = vec![0; self.order.len()];
        for (rank, &i) in self.order.iter().enumerate() {
            ranks[i as usize] = rank as u32;
        }
        ranks
    }

    /// [`Pooled::trimmed_mean`] with the multiplicities given in sorted order
    /// (`sorted_weights[r]` for the entry of rank `r`): every read is contiguous, and the
    /// walk to the cuts jumps 16 entries at a time.
    pub fn trimmed_mean_sorted(&self, sorted_weights: &[u32], cut: f64) -> f64 {
        const JUMP: usize = 16;
        let ws = sorted_weights;
        let n = ws.len();
        let sum = |r: &[u32]| r.iter().map(|&w| w as u64).sum::<u64>();
        let total = sum(ws);
        let low = (cut * total as f64) as u64;
        let high = total - low;
        let (mut j, mut position) = (0, 0);
        while j + JUMP <= n && position + sum(&ws[j..j + JUMP]) <= low {
            position += sum(&ws[j..j + JUMP]);
            j += JUMP;
        }
        while position + ws[j] as u64 <= low {
            position += ws[j] as u64;
            j += 1;
        }
        let (a, end_a) = (j, position + ws[j] as u64);
        while j + JUMP <= n && position + sum(&ws[j..j + JUMP]) < high {
            position += sum(&ws[j..j + JUMP]);
            j += JUMP;
        }
        while position + (ws[j] as u64) < high {
            position += ws[j] as u64;
            j += 1;
        }
        let b = j;
        let xs = &self.sorted;
        if a == b {
            return xs[a];
        }
        let mut total_sum = (end_a - low) as f64 * xs[a] + (high - position) as f64 * xs[b];
        let (w, x) = (&ws[a + 1..b], &xs[a + 1..b]);
        let mut acc = [0.0f64; 4];
        let (mut wc, mut xc) = (w.chunks_exact(4), x.chunks_exact(4));
        for (ww, xx) in (&mut wc).zip(&mut xc) {
            for k in 0..4 {
                acc[k] += ww[k] as f64 * xx[k];
            }
        }
        for (ww, xx) in wc.remainder().iter().zip(xc.remainder()) {
            acc[0] += *ww as f64 * xx;
        }
        total_sum += (acc[0] + acc[1]) + (acc[2] + acc[3]);
        total_sum / (high - low) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores() -> Scores {
        // 3 runs x 2 tasks, rliable layout.
        Scores::from_runs_by_tasks(&[vec![0.0, 10.0], vec![1.0, 20.0], vec![5.0, 30.0]]).unwrap()
    }

    #[test]
    fn point_estimates_by_hand() {
        let s = scores();
        // Pool sorted: 0 1 5 10 20 30; int(0.25 * 6) = 1 dropped per side -> mean(1 5 10 20).
        assert_eq!(Metric::Iqm.of(&s), 9.0);
        // Task means 2 and 20.
        assert_eq!(Metric::Mean.of(&s), 11.0);
        assert_eq!(Metric::Median.of(&s), 11.0);
        // min(x, 1): 0 1 1 1 1 1 -> 1 - 5/6.
        assert!((Metric::OptimalityGap { gamma: 1.0 }.of(&s) - 1.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn weights_act_as_repetitions() {
        let s = scores();
        let pooled = Pooled::new(&s);
        // Task 0 resampled as runs (2, 2, 0) -> 5 5 0; task 1 as (0, 0, 0) -> 10 10 10.
        let weights = [1, 0, 2, 3, 0, 0];
        let repeated = Scores::from_tasks(vec![vec![5.0, 5.0, 0.0], vec![10.0; 3]]).unwrap();
        for metric in Metric::ALL {
            assert_eq!(
                metric.weighted(&pooled, &weights),
                metric.of(&repeated),
                "{metric:?}"
            );
        }
    }

    #[test]
    fn sorted_weights_give_the_same_trimmed_mean() {
        // 40 tasks x 3 runs, with ties, under many multiplicity patterns.
        let tasks: Vec<Vec<f64>> = (0..40)
            .map(|t| {
                (0..3)
                    .map(|r| ((t * 7 + r * 3) % 11) as f64 / 3.0)
                    .collect()
            })
            .collect();
        let s = Scores::from_tasks(tasks).unwrap();
        let pooled = Pooled::new(&s);
        let ranks = pooled.ranks();
        for k in 0..50u32 {
            let weights: Vec<u32> = (0..s.len() as u32).map(|i| (i * 31 + k * 17) % 4).collect();
            let mut sorted = vec![0; s.len()];
            for (i, &w) in weights.iter().enumerate() {
                sorted[ranks[i] as usize] = w;
            }
            let (a, b) = (
                pooled.trimmed_mean(&weights, 0.25),
                pooled.trimmed_mean_sorted(&sorted, 0.25),
            );
            assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn parse_names() {
        for metric in Metric::ALL {
            assert_eq!(Metric::parse(metric.name()).unwrap(), metric);
        }
        assert!(
            Metric::parse("iq-mean")
                .unwrap_err()
                .to_string()
                .contains("optimality_gap")
        );
    }
}
