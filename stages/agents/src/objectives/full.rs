//! The objective of Dopamine's `JaxFullRainbowAgent` as the Atari-100k agents configure it
//! (`dopamine/jax/agents/full_rainbow/full_rainbow_agent.py::train` and `target_output`,
//! `dopamine/labs/atari_100k/atari_100k_rainbow_agent.py` at google/dopamine@1093179): TD
//! regression on Q-values (DrQ(ε): Huber, `mse_loss=False`) or C51 (DER), optionally with
//! double DQN (van Hasselt et al. 2016): the next action is the online network's argmax on the
//! next state, its value (or distribution) the target network's. The flags for the network's
//! head (dueling, noisy) and DrQ's augmentation live here too, since they make the agent.

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::c51::{self, Categorical};
use super::td::{self, TdLoss};
use crate::replay::Batch;

/// What the network predicts: Q-values or C51 distributions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Values {
    Q(TdLoss),
    C51(Categorical),
}

/// `JaxFullRainbowAgent`'s switches plus `Atari100kRainbowAgent.data_augmentation`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FullRainbow {
    pub values: Values,
    pub double_dqn: bool,
    pub dueling: bool,
    pub noisy: bool,
    /// DrQ's random shift and intensity augmentation of replayed states ([`crate::augment`]).
    pub augment: bool,
}

impl FullRainbow {
    pub fn outputs_per_action(&self) -> usize {
        match self.values {
            Values::Q(_) => 1,
            Values::C51(c) => c.atoms,
        }
    }

    /// Q-values `[batch, actions]` from the network's outputs.
    pub fn q_values(&self, outputs: Vec<f32>) -> Vec<f32> {
        match self.values {
            Values::Q(_) => outputs,
            Values::C51(c) => c.q_values(&outputs),
        }
    }

    /// Per-sample loss `[batch]` of the online outputs `out`; `next_target` are the target
    /// network's outputs on the next states and `next_online` the online network's (used, and
    /// needed, with double DQN).
    pub fn per_sample_loss(
        &self,
        out: Tensor<2>,
        next_target: &[f32],
        next_online: Option<&[f32]>,
        batch: &Batch,
        num_actions: usize,
        device: &Device,
    ) -> Tensor<1> {
        let b = batch.actions.len();
        let double = next_online.filter(|_| self.double_dqn);
        match self.values {
            Values::Q(loss) => {
                let y = match double {
                    Some(online) => double_q_targets(next_target, online, num_actions, batch),
                    None => td::targets(next_target, num_actions, &batch.returns, &batch.discounts),
                };
                let y = Tensor::<1>::from_data(TensorData::new(y, [b]), device);
                let actions: Vec<i64> = batch.actions.iter().map(|&a| a as i64).collect();
                let actions = Tensor::<2, Int>::from_data(TensorData::new(actions, [b, 1]), device);
                td::td_loss(out, actions, y, loss)
            }
            Values::C51(c) => {
                let m = match double {
                    Some(online) => double_c51_targets(&c, next_target, online, num_actions, batch),
                    None => c.target_distribution(
                        next_target,
                        num_actions,
                        &batch.returns,
                        &batch.discounts,
                    ),
                };
                let m = Tensor::<2>::from_data(TensorData::new(m, [b, c.atoms]), device);
                c51::cross_entropy(out, &batch.actions, m, c.atoms)
            }
        }
    }
}

/// Index of the largest value (ties to the lowest index, as `jnp.argmax`).
fn argmax(q: &[f32]) -> usize {
    (0..q.len()).fold(0, |best, a| if q[a] > q[best] { a } else { best })
}

/// Double-DQN targets r_n + γ^m · Q_target(s', argmax_a Q_online(s', a)).
pub fn double_q_targets(
    next_target: &[f32],
    next_online: &[f32],
    num_actions: usize,
    batch: &Batch,
) -> Vec<f32> {
    next_target
        .chunks(num_actions)
        .zip(next_online.chunks(num_actions))
        .zip(batch.returns.iter().zip(&batch.discounts))
        .map(|((qt, qo), (&r, &d))| r + d * qt[argmax(qo)])
        .collect()
}

/// Double-DQN C51 targets: the target network's distribution at the online network's argmax
/// action, shifted and projected (`rainbow_agent.project_distribution`).
pub fn double_c51_targets(
    c: &Categorical,
    next_target: &[f32],
    next_online: &[f32],
    num_actions: usize,
    batch: &Batch,
) -> Vec<f32> {
    let row = num_actions * c.atoms;
    let online_q = c.q_values(next_online);
    let mut out = Vec::with_capacity(batch.returns.len() * c.atoms);
    for (i, logits) in next_target.chunks(row).enumerate() {
        let a = argmax(&online_q[i * num_actions..(i + 1) * num_actions]);
        let probs = c51::softmax(&logits[a * c.atoms..(a + 1) * c.atoms]);
        out.extend(c.project(&probs, batch.returns[i], batch.discounts[i]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(returns: Vec<f32>, discounts: Vec<f32>) -> Batch {
        Batch {
            states: Vec::new(),
            actions: vec![0; returns.len()],
            action_values: Vec::new(),
            returns,
            next_states: Vec::new(),
            discounts,
            indices: Vec::new(),
            priorities: Vec::new(),
        }
    }

    #[test]
    fn double_dqn_takes_the_online_argmax_and_the_target_value() {
        let b = batch(vec![0.5, 1.0], vec![0.9, 0.0]);
        // Target prefers action 1, online prefers action 0 in the first row.
        let t = double_q_targets(&[1.0, 3.0, -1.0, -2.0], &[5.0, 0.0, 0.0, 1.0], 2, &b);
        assert_eq!(t, vec![0.5 + 0.9 * 1.0, 1.0]);
    }

    #[test]
    fn double_c51_projects_the_target_distribution_of_the_online_argmax() {
        let c = Categorical {
            atoms: 3,
            vmin: -1.0,
            vmax: 1.0,
        };
        let b = batch(vec![0.0], vec![1.0]);
        // Target logits: action 0 puts all mass on -1, action 1 on +1; online Q prefers 0.
        let target = [10.0, -10.0, -10.0, -10.0, -10.0, 10.0];
        let online = [-10.0, -10.0, 10.0, 10.0, -10.0, -10.0];
        let m = double_c51_targets(&c, &target, &online, 2, &b);
        assert!(m[0] > 0.99 && m[2] < 0.01, "{m:?}");
    }
}
