//! Performance profiles (`rliable/library.py::create_performance_profile`): for each
//! threshold tau, the fraction of scores strictly above tau, with stratified bootstrap
//! intervals (rliable's default 2,000 repetitions; one replicate serves every tau).

use crate::aggregate::task_mean;
use crate::bootstrap::{Bootstrap, Interval};
use crate::scores::Scores;

/// Which scores a profile counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Every (run, task) score: rliable's default `use_score_distribution=True`.
    RunScores,
    /// The per-task mean over runs (`use_score_distribution=False`).
    TaskMeans,
}

impl Profile {
    /// The fraction of scores above each tau, where entry `i` counts `weights[i]` times.
    pub fn weighted(&self, scores: &Scores, weights: &[u32], taus: &[f64], out: &mut [f64]) {
        match self {
            Profile::RunScores => {
                let total: u64 = weights.iter().map(|&w| w as u64).sum();
                for (o, &tau) in out.iter_mut().zip(taus) {
                    let above: u64 = scores
                        .values()
                        .iter()
                        .zip(weights)
                        .filter(|(x, _)| **x > tau)
                        .map(|(_, &w)| w as u64)
                        .sum();
                    *o = above as f64 / total as f64;
                }
            }
            Profile::TaskMeans => {
                let n = scores.num_tasks();
                let means: Vec<f64> = (0..n).map(|t| task_mean(scores, weights, t)).collect();
                for (o, &tau) in out.iter_mut().zip(taus) {
                    *o = means.iter().filter(|&&m| m > tau).count() as f64 / n as f64;
                }
            }
        }
    }

    /// The profile at each tau with its bootstrap interval.
    pub fn intervals(&self, scores: &Scores, taus: &[f64], bootstrap: &Bootstrap) -> Vec<Interval> {
        let mut point = vec![0.0; taus.len()];
        self.weighted(scores, &scores.unit_weights(), taus, &mut point);
        let replicates = bootstrap.replicates(&[scores], taus.len(), |w, out| {
            self.weighted(scores, w[0], taus, out)
        });
        bootstrap
            .percentiles(&replicates, taus.len())
            .into_iter()
            .zip(point)
            .map(|((low, high), estimate)| Interval {
                estimate,
                low,
                high,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_strictly_above() {
        let s = Scores::from_tasks(vec![vec![0.0, 1.0], vec![2.0, 3.0]]).unwrap();
        let mut out = [0.0; 3];
        Profile::RunScores.weighted(&s, &s.unit_weights(), &[0.0, 1.0, 3.0], &mut out);
        assert_eq!(out, [0.75, 0.5, 0.0]);
        Profile::TaskMeans.weighted(&s, &s.unit_weights(), &[0.0, 1.0, 3.0], &mut out);
        assert_eq!(out, [1.0, 0.5, 0.0]);
    }
}
