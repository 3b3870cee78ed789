//! The value-based objectives: DQN's TD regression ([`td`]), compact Rainbow's C51
//! distributional loss ([`c51`]), each optionally with conservative Q-learning's regularizer
//! ([`cql`], for offline training) or full Rainbow's switches ([`full`], the Atari-100k
//! agents), and the importance weights of prioritized replay.

pub mod c51;
pub mod cql;
pub mod full;
pub mod td;

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use self::c51::Categorical;
pub use self::full::{FullRainbow, Values};
pub use self::td::TdLoss;
use crate::replay::Batch;
use crate::tensor::to_vec;

/// What the network predicts and how it is trained.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Objective {
    /// Q-values, TD regression.
    Dqn(TdLoss),
    /// C51 distributions.
    C51(Categorical),
    /// Q-values, TD regression plus `alpha` times the CQL(H) term (offline `train/cql`).
    Cql { td: TdLoss, alpha: f32 },
    /// C51 distributions, cross-entropy plus `alpha` times the CQL(H) term on the expected Q
    /// (offline `train/cql-c51`).
    CqlC51 { c51: Categorical, alpha: f32 },
    /// Dopamine's full Rainbow switches, as the Atari-100k agents (DrQ(ε), DER) set them.
    FullRainbow(FullRainbow),
}

impl Objective {
    /// Network outputs per action (1 for Q-values, the atoms for C51).
    pub fn outputs_per_action(&self) -> usize {
        match self.base() {
            Objective::C51(c) => c.atoms,
            _ => 1,
        }
    }

    /// The plain objective underneath: the TD or C51 loss without CQL's term and without
    /// full Rainbow's double DQN. It says what the network's outputs mean and how targets are
    /// built (what the probes compute their targets and gradients with).
    pub fn base(&self) -> Objective {
        match *self {
            Objective::Cql { td, .. } => Objective::Dqn(td),
            Objective::CqlC51 { c51, .. } => Objective::C51(c51),
            Objective::FullRainbow(f) => match f.values {
                Values::Q(loss) => Objective::Dqn(loss),
                Values::C51(c) => Objective::C51(c),
            },
            other => other,
        }
    }

    /// Q-values `[batch, actions]` from the network's outputs.
    pub fn q_values(&self, outputs: Vec<f32>) -> Vec<f32> {
        match self.base() {
            Objective::C51(c) => c.q_values(&outputs),
            _ => outputs,
        }
    }

    /// Per-sample loss `[batch]` of the online outputs `out` on `batch`, with targets
    /// bootstrapped from the target network's outputs `next_out` on the next states.
    pub fn per_sample_loss(
        &self,
        out: Tensor<2>,
        next_out: &[f32],
        batch: &Batch,
        num_actions: usize,
        device: &Device,
    ) -> Tensor<1> {
        let b = batch.actions.len();
        match *self {
            Objective::Dqn(loss) => {
                let y = td::targets(next_out, num_actions, &batch.returns, &batch.discounts);
                let y = Tensor::<1>::from_data(TensorData::new(y, [b]), device);
                let actions: Vec<i64> = batch.actions.iter().map(|&a| a as i64).collect();
                let actions = Tensor::<2, Int>::from_data(TensorData::new(actions, [b, 1]), device);
                td::td_loss(out, actions, y, loss)
            }
            Objective::C51(c) => {
                let m =
                    c.target_distribution(next_out, num_actions, &batch.returns, &batch.discounts);
                let m = Tensor::<2>::from_data(TensorData::new(m, [b, c.atoms]), device);
                c51::cross_entropy(out, &batch.actions, m, c.atoms)
            }
            Objective::Cql { td, alpha } => {
                let y = td::targets(next_out, num_actions, &batch.returns, &batch.discounts);
                let q = to_vec(out.clone().inner());
                let (loss, grad) = cql::head(&q, &batch.actions, &y, td, alpha);
                with_gradient(out, loss, grad)
            }
            Objective::CqlC51 { c51, alpha } => {
                let penalty = cql::penalty(cql::expected_q(out.clone(), &c51), &batch.actions);
                Objective::C51(c51).per_sample_loss(out, next_out, batch, num_actions, device)
                    + penalty.mul_scalar(alpha)
            }
            // Without the online network's next-state outputs: no double DQN.
            Objective::FullRainbow(f) => {
                f.per_sample_loss(out, next_out, None, batch, num_actions, device)
            }
        }
    }
}

/// A `[batch]` tensor whose values are `loss` and whose gradient with respect to `out`
/// `[batch, n]` is `grad` (row-major): `loss + Σ_j (out − stop_gradient(out)) · grad`, for
/// a loss computed on the host with its closed-form gradient.
fn with_gradient(out: Tensor<2>, loss: Vec<f32>, grad: Vec<f32>) -> Tensor<1> {
    let [b, n] = out.dims();
    let device = out.device();
    let grad = Tensor::<2>::from_data(TensorData::new(grad, [b, n]), &device);
    let loss = Tensor::<1>::from_data(TensorData::new(loss, [b]), &device);
    let zero = out.clone() - out.detach();
    loss + (zero * grad).sum_dim(1).reshape([b])
}

/// Prioritized replay's loss weights as Dopamine's Rainbow computes them
/// (`rainbow_agent.py::_train_step`): 1/sqrt(p + 1e-10), normalized by the batch maximum; the
/// new priorities are sqrt(loss + 1e-10).
pub fn importance_weights(priorities: &[f64]) -> Vec<f32> {
    let w: Vec<f64> = priorities
        .iter()
        .map(|p| 1.0 / (p + 1e-10).sqrt())
        .collect();
    let max = w.iter().copied().fold(0.0, f64::max);
    w.iter().map(|x| (x / max) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importance_weights_are_max_normalized() {
        let w = importance_weights(&[4.0, 1.0, 0.25]);
        assert!(
            (w[0] - 0.25).abs() < 1e-6 && (w[1] - 0.5).abs() < 1e-6 && (w[2] - 1.0).abs() < 1e-6
        );
    }
}
