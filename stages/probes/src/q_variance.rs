//! Variance of the Q targets over the probe batch (the paper's section 5 probe; its definition
//! was not found in code, so this one is our assumption).
//!
//! The agent computes its TD targets on the fixed probe batch exactly as in training (DQN:
//! `r + γ^n (1 - done) max_a' Q_target(s', a')`; Rainbow: the expected value of the projected
//! target distribution) and passes them here. The variance is the population one (divide by `n`,
//! like `jnp.var`).

/// Population variance of `targets` (0 for an empty batch), accumulated in f64.
pub fn q_target_variance(targets: &[f32]) -> f64 {
    if targets.is_empty() {
        return 0.0;
    }
    let n = targets.len() as f64;
    let mean = targets.iter().map(|&x| x as f64).sum::<f64>() / n;
    targets
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variance_by_hand() {
        assert_eq!(q_target_variance(&[1.0, 3.0]), 1.0);
        assert_eq!(
            q_target_variance(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]),
            4.0
        );
        assert_eq!(q_target_variance(&[5.0]), 0.0);
        assert_eq!(q_target_variance(&[]), 0.0);
    }
}
