//! Exploration schedules.

/// Dopamine's `linearly_decaying_epsilon` (`dopamine/jax/agents/dqn/dqn_agent.py`): ε = 1 during
/// the `warmup` steps (the `min_replay_history`), then falls linearly to `final_epsilon` over
/// `decay_period` steps: ε(t) = ε_f + clip((1 − ε_f)·(D + W − t)/D, 0, 1 − ε_f).
pub fn linearly_decaying_epsilon(
    decay_period: u64,
    step: u64,
    warmup: u64,
    final_epsilon: f64,
) -> f64 {
    if decay_period == 0 {
        return if step < warmup { 1.0 } else { final_epsilon };
    }
    let steps_left = (decay_period + warmup) as f64 - step as f64;
    let bonus =
        ((1.0 - final_epsilon) * steps_left / decay_period as f64).clamp(0.0, 1.0 - final_epsilon);
    final_epsilon + bonus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_dopamine_shape() {
        let eps = |t| linearly_decaying_epsilon(250_000, t, 20_000, 0.01);
        assert_eq!(eps(0), 1.0);
        assert_eq!(eps(20_000), 1.0);
        assert!((eps(145_000) - 0.505).abs() < 1e-12);
        assert!((eps(270_000) - 0.01).abs() < 1e-12);
        assert!((eps(10_000_000) - 0.01).abs() < 1e-12);
    }
}
