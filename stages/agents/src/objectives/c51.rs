//! Compact Rainbow's distributional objective (C51, Bellemare et al. 2017, arXiv 1707.06887).
//!
//! Dopamine's `JaxRainbowAgent` (`dopamine/jax/agents/rainbow/rainbow_agent.py` and
//! `configs/rainbow.gin` at google/dopamine@1093179): 51 atoms on `linspace(vmin, vmax)`, the target
//! distribution is the target network's distribution at argmax_a of its own Q (no double DQN),
//! shifted to r_n + γ^m·z and projected back onto the support (eq. 7 of the C51 paper); the loss
//! is the softmax cross-entropy against the online logits of the taken action. Prioritized
//! replay's loss weights are in [`super::importance_weights`].

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

/// The categorical support.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Categorical {
    pub atoms: usize,
    pub vmin: f32,
    pub vmax: f32,
}

impl Categorical {
    pub fn support(&self) -> Vec<f32> {
        let dz = self.delta();
        (0..self.atoms).map(|i| self.vmin + i as f32 * dz).collect()
    }

    fn delta(&self) -> f32 {
        (self.vmax - self.vmin) / (self.atoms - 1) as f32
    }

    /// Q-values `[batch, actions]` from logits `[batch, actions·atoms]`.
    pub fn q_values(&self, logits: &[f32]) -> Vec<f32> {
        let z = self.support();
        logits
            .chunks(self.atoms)
            .map(|l| softmax(l).iter().zip(&z).map(|(p, z)| p * z).sum())
            .collect()
    }

    /// Projected target distributions `[batch, atoms]` from the target network's logits for the
    /// next states `[batch, actions·atoms]`.
    pub fn target_distribution(
        &self,
        next_logits: &[f32],
        num_actions: usize,
        returns: &[f32],
        discounts: &[f32],
    ) -> Vec<f32> {
        let z = self.support();
        let mut out = Vec::with_capacity(returns.len() * self.atoms);
        for (b, row) in next_logits.chunks(num_actions * self.atoms).enumerate() {
            let probs: Vec<Vec<f32>> = row.chunks(self.atoms).map(softmax).collect();
            let q = |p: &Vec<f32>| p.iter().zip(&z).map(|(p, z)| p * z).sum::<f32>();
            let best = (0..num_actions).fold(0, |best, a| {
                if q(&probs[a]) > q(&probs[best]) {
                    a
                } else {
                    best
                }
            });
            out.extend(self.project(&probs[best], returns[b], discounts[b]));
        }
        out
    }

    /// Projects the distribution `probs` on the support shifted to `r + d·z` back onto the support.
    pub fn project(&self, probs: &[f32], r: f32, d: f32) -> Vec<f32> {
        let dz = self.delta();
        let mut m = vec![0.0f32; self.atoms];
        for (j, &p) in probs.iter().enumerate() {
            let tz = (r + d * (self.vmin + j as f32 * dz)).clamp(self.vmin, self.vmax);
            let b = ((tz - self.vmin) / dz).clamp(0.0, (self.atoms - 1) as f32);
            let l = b.floor() as usize;
            let frac = b - l as f32;
            m[l] += p * (1.0 - frac);
            if frac > 0.0 {
                m[l + 1] += p * frac;
            }
        }
        m
    }
}

/// Softmax of one row of logits.
pub(crate) fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// Per-sample cross-entropy `[batch]` between `target` `[batch, atoms]` and the online logits
/// `[batch, actions·atoms]` of the taken `actions` `[batch]`.
pub fn cross_entropy(
    logits: Tensor<2>,
    actions: &[usize],
    target: Tensor<2>,
    atoms: usize,
) -> Tensor<1> {
    let [batch, width] = logits.dims();
    let device = logits.device();
    let idx: Vec<i64> = actions
        .iter()
        .flat_map(|&a| (0..atoms).map(move |k| (a * atoms + k) as i64))
        .collect();
    let idx =
        Tensor::<2, Int>::from_data(burn::tensor::TensorData::new(idx, [batch, atoms]), &device);
    debug_assert!(width % atoms == 0);
    let chosen = logits.gather(1, idx);
    let logp = log_softmax(chosen, 1);
    (target * logp).sum_dim(1).reshape([batch]).neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quadratic form used by Dopamine: m_i = Σ_j clip(1 − |T̂z_j − z_i|/Δz, 0, 1)·p_j.
    fn project_reference(c: &Categorical, p: &[f32], r: f32, d: f32) -> Vec<f32> {
        let z = c.support();
        let dz = c.delta();
        z.iter()
            .map(|zi| {
                z.iter()
                    .zip(p)
                    .map(|(zj, pj)| {
                        let tz = (r + d * zj).clamp(c.vmin, c.vmax);
                        (1.0 - (tz - zi).abs() / dz).clamp(0.0, 1.0) * pj
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn projection_matches_dopamine_formula_and_keeps_mass() {
        let c = Categorical {
            atoms: 51,
            vmin: -10.0,
            vmax: 10.0,
        };
        let p = softmax(
            &(0..51)
                .map(|i| ((i * 7) % 13) as f32 / 3.0)
                .collect::<Vec<_>>(),
        );
        for (r, d) in [
            (0.0, 0.99),
            (1.0, 0.970299),
            (-3.3, 0.5),
            (9.0, 0.99),
            (0.4, 0.0),
            (25.0, 1.0),
        ] {
            let m = c.project(&p, r, d);
            let reference = project_reference(&c, &p, r, d);
            for (a, b) in m.iter().zip(&reference) {
                assert!((a - b).abs() < 1e-5, "r={r} d={d}: {a} vs {b}");
            }
            assert!((m.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}
