//! The DQN objective: regress Q(s, a) onto r_n + γ^m · max_a' Q_target(s', a').
//!
//! Dopamine's JAX DQN (`dopamine/jax/agents/dqn/dqn_agent.py` and `configs/dqn.gin` at
//! google/dopamine@1093179): no double-DQN, a hard-copied target network, and the MSE
//! loss (target − q)² averaged over the batch with no ½ factor (`loss_type='mse'`, the default
//! since 2022); Huber (δ = 1) is the alternative used by the ReDo lab and Atari-100k agents.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

/// Per-sample TD loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TdLoss {
    Mse,
    Huber,
}

impl TdLoss {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "mse" => Some(TdLoss::Mse),
            "huber" => Some(TdLoss::Huber),
            _ => None,
        }
    }
}

/// Bellman targets from the target network's next-state Q-values (`[batch, actions]`, row-major).
pub fn targets(next_q: &[f32], num_actions: usize, returns: &[f32], discounts: &[f32]) -> Vec<f32> {
    next_q
        .chunks(num_actions)
        .zip(returns.iter().zip(discounts))
        .map(|(q, (&r, &d))| r + d * q.iter().copied().fold(f32::NEG_INFINITY, f32::max))
        .collect()
}

/// Per-sample loss `[batch]` between Q(s, a) (gathered from `q` `[batch, actions]` with
/// `actions` `[batch, 1]`) and fixed `targets` `[batch]`.
pub fn td_loss(
    q: Tensor<2>,
    actions: Tensor<2, Int>,
    targets: Tensor<1>,
    loss: TdLoss,
) -> Tensor<1> {
    let [batch, _] = q.dims();
    let chosen: Tensor<1> = q.gather(1, actions).reshape([batch]);
    let err = targets - chosen;
    match loss {
        TdLoss::Mse => err.powi_scalar(2),
        TdLoss::Huber => {
            // ½x² inside |x| ≤ 1, |x| − ½ outside, written with a clamp so it stays differentiable.
            let abs = err.abs();
            let quad = abs.clone().clamp_max(1.0);
            let lin = abs - quad.clone();
            quad.powi_scalar(2).mul_scalar(0.5) + lin
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_bootstrap_from_the_max_and_respect_terminals() {
        let t = targets(&[1.0, 3.0, -1.0, -2.0], 2, &[0.5, 1.0], &[0.9, 0.0]);
        assert_eq!(t, vec![0.5 + 0.9 * 3.0, 1.0]);
    }
}
