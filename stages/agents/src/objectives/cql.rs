//! Conservative Q-learning's regularizer, CQL(H) (Kumar, Zhou, Tucker, Levine 2020, arXiv
//! 2006.04779, eq. 4): α · (logsumexp_a Q(s, a) − Q(s, a_data)), added per sample to the TD
//! loss, so that Q is pushed down on every action and up on the dataset's.
//!
//! Dopamine's offline agents (`dopamine/labs/offline_rl/jax/offline_dr3_agent.py` and
//! `offline_rainbow_agent.py` at google/dopamine@1093179) add its batch mean to the TD loss:
//! the DQN-based agent on its Q-values with a Huber TD loss (`cql_coefficient`), the C51-based
//! one on the expected Q = Σ_i z_i p_i(s, a) of its distributions (`bc_coefficient`) with the
//! C51 cross-entropy as TD loss. The term is ≥ 0, and 0 only in the limit of a Q that puts all
//! its mass on the data action (logsumexp → max).

use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor, TensorData};

use super::{Categorical, TdLoss};

/// Per-sample CQL(H) term `[batch]` of Q-values `q` `[batch, actions]` at the data `actions`.
pub fn penalty(q: Tensor<2>, actions: &[usize]) -> Tensor<1> {
    let [batch, _] = q.dims();
    let device = q.device();
    let idx: Vec<i64> = actions.iter().map(|&a| a as i64).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [batch, 1]), &device);
    let chosen = q.clone().gather(1, idx);
    // log Σ exp(q − m) + m with the row maximum m held fixed: the same value and gradient as
    // the plain form, without overflow.
    let m = q.clone().max_dim(1).detach();
    let lse = (q - m.clone()).exp().sum_dim(1).log() + m;
    (lse - chosen).reshape([batch])
}

/// CQL(H) with a TD loss, as a host-side head: the per-sample losses `[batch]`
/// (`td(y − Q(s, a)) + alpha · (logsumexp_a' Q(s, a') − Q(s, a))`) and their gradients
/// `[batch, actions]` with respect to the Q-values `q` (row-major), in closed form.
///
/// `train/cql` uses this instead of the tensor form (`td::td_loss` + [`penalty`]): on a
/// `[32, actions]` array the twenty-odd autodiff ops of that form, forward and backward, cost
/// more than the whole head does on the host (see the `offline` bench).
pub fn head(
    q: &[f32],
    actions: &[usize],
    targets: &[f32],
    td: TdLoss,
    alpha: f32,
) -> (Vec<f32>, Vec<f32>) {
    let n = q.len() / actions.len();
    let mut grad = vec![0f32; q.len()];
    let loss = q
        .chunks(n)
        .zip(grad.chunks_mut(n))
        .zip(actions.iter().zip(targets))
        .map(|((q, g), (&a, &y))| {
            let m = q.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = q.iter().map(|&v| (v - m).exp()).sum();
            for (g, &v) in g.iter_mut().zip(q) {
                *g = alpha * (v - m).exp() / sum;
            }
            let err = y - q[a];
            // The values as `td::td_loss` computes them (Huber as ½·min(|x|, 1)² + the rest).
            let (td_value, td_grad) = match td {
                TdLoss::Mse => (err * err, -2.0 * err),
                TdLoss::Huber => {
                    let quad = err.abs().min(1.0);
                    (
                        quad * quad * 0.5 + (err.abs() - quad),
                        -err.clamp(-1.0, 1.0),
                    )
                }
            };
            g[a] += td_grad - alpha;
            td_value + alpha * (sum.ln() + m - q[a])
        })
        .collect();
    (loss, grad)
}

/// The expected Q-values `[batch, actions]` of C51 logits `[batch, actions·atoms]`.
pub fn expected_q(logits: Tensor<2>, c: &Categorical) -> Tensor<2> {
    let [batch, width] = logits.dims();
    let actions = width / c.atoms;
    let device = logits.device();
    let probs = softmax(logits.reshape([batch, actions, c.atoms]), 2);
    let z = Tensor::<3>::from_data(TensorData::new(c.support(), [1, 1, c.atoms]), &device);
    (probs * z).sum_dim(2).reshape([batch, actions])
}
