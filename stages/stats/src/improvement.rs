//! Probability of improvement (`rliable/metrics.py::probability_of_improvement`): for each
//! task, P(X > Y) + P(X = Y) / 2 between a run of X and a run of Y (the Mann-Whitney U
//! statistic over `n_x n_y`), averaged over tasks. rliable special-cases identical score
//! arrays as 0.5, which the formula already gives. Intervals resample the runs of X and Y
//! independently (`StratifiedIndependentBootstrap`).

use crate::bootstrap::{Bootstrap, Interval};
use crate::error::StatsError;
use crate::scores::Scores;

/// P(X > Y) of `x` over `y` where entries count with the given multiplicities.
pub fn weighted(x: &Scores, wx: &[u32], y: &Scores, wy: &[u32]) -> f64 {
    let tasks = x.num_tasks();
    let mut total = 0.0;
    for t in 0..tasks {
        let (rx, ry) = (x.task_range(t), y.task_range(t));
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (&a, &na) in x.values()[rx.clone()].iter().zip(&wx[rx]) {
            for (&b, &nb) in y.values()[ry.clone()].iter().zip(&wy[ry.clone()]) {
                let n = (na * nb) as f64;
                pairs += n;
                if a > b {
                    wins += n;
                } else if a == b {
                    wins += 0.5 * n;
                }
            }
        }
        total += wins / pairs;
    }
    total / tasks as f64
}

/// The probability that X improves on Y, with its bootstrap interval. Both score sets must
/// cover the same tasks in the same order (their runs may differ in number).
pub fn probability_of_improvement(
    x: &Scores,
    y: &Scores,
    bootstrap: &Bootstrap,
) -> Result<Interval, StatsError> {
    if x.num_tasks() != y.num_tasks() {
        return Err(StatsError::Mismatch(format!(
            "probability of improvement needs the same tasks: X has {}, Y has {}",
            x.num_tasks(),
            y.num_tasks()
        )));
    }
    let estimate = weighted(x, &x.unit_weights(), y, &y.unit_weights());
    let replicates = bootstrap.replicates(&[x, y], 1, |w, out| out[0] = weighted(x, w[0], y, w[1]));
    let (low, high) = bootstrap.percentiles(&replicates, 1)[0];
    Ok(Interval {
        estimate,
        low,
        high,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mann_whitney_by_hand() {
        let x = Scores::from_tasks(vec![vec![1.0, 3.0], vec![5.0]]).unwrap();
        let y = Scores::from_tasks(vec![vec![2.0, 3.0], vec![5.0]]).unwrap();
        // Task 0: pairs (1,2) lose, (1,3) lose, (3,2) win, (3,3) tie -> 1.5 / 4; task 1: tie.
        let p = weighted(&x, &x.unit_weights(), &y, &y.unit_weights());
        assert!((p - (0.375 + 0.5) / 2.0).abs() < 1e-15);
        assert_eq!(weighted(&x, &x.unit_weights(), &x, &x.unit_weights()), 0.5);
    }
}
