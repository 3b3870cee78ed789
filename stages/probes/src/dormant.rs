//! Fraction of τ-dormant neurons over the hidden layers (Sokar et al. 2023, "The dormant neuron
//! phenomenon in deep reinforcement learning"; Dopamine's ReDo lab,
//! `dopamine/labs/redo/weight_recyclers.py::BaseRecycler.estimate_neuron_score`, google/dopamine
//! at 1093179).
//!
//! The score is ReDo's ([`prunus_sparsity::redo::neuron_scores`]): a neuron (a conv feature
//! map, or a dense unit) is τ-dormant when its mean |activation| over the batch (and spatial
//! positions), divided by its layer's average, is `<= τ`. The fraction counts all hidden layers
//! together (dormant neurons / neurons), the output layer excluded, on a batch of 256 states
//! in Dopamine. Returned as a fraction in [0, 1] (Dopamine logs percent).

use prunus_sparsity::redo::{dormant, neuron_scores};

use crate::ShapeError;

/// The τ values reported: 0 ("dead", Dopamine's `dead_neurons_threshold` default), and the
/// 0.025 and 0.1 of Sokar et al. 2023's experiments.
pub const TAUS: [f64; 3] = [0.0, 0.025, 0.1];

/// One hidden layer's post-activation outputs: row-major `values` of `shape`, with the neurons on
/// `neuron_axis` (1 for burn's `[batch, channels, h, w]` and `[batch, features]`).
#[derive(Clone, Copy, Debug)]
pub struct Activations<'a> {
    /// The activations.
    pub values: &'a [f32],
    /// Their shape.
    pub shape: &'a [usize],
    /// The axis that indexes neurons.
    pub neuron_axis: usize,
}

/// For each τ in `taus`, the fraction of τ-dormant neurons over all `layers`.
pub fn dormant_fractions(layers: &[Activations<'_>], taus: &[f32]) -> Result<Vec<f64>, ShapeError> {
    let mut dormant_counts = vec![0usize; taus.len()];
    let mut neurons = 0;
    for layer in layers {
        let expected: usize = layer.shape.iter().product();
        if layer.values.len() != expected || layer.neuron_axis >= layer.shape.len() {
            return Err(ShapeError {
                len: layer.values.len(),
                what: format!(
                    "activations of shape {:?} with neuron axis {} need {expected}",
                    layer.shape, layer.neuron_axis
                ),
            });
        }
        let scores = neuron_scores(layer.values, layer.shape, layer.neuron_axis);
        neurons += scores.len();
        for (count, &tau) in dormant_counts.iter_mut().zip(taus) {
            *count += dormant(&scores, tau).len();
        }
    }
    Ok(dormant_counts
        .iter()
        .map(|&d| {
            if neurons == 0 {
                0.0
            } else {
                d as f64 / neurons as f64
            }
        })
        .collect())
}

/// The `probes.csv` name of the dormant fraction at `tau`: `dormant_tau0`, `dormant_tau0.025`,
/// `dormant_tau0.1`.
pub fn probe_name(tau: f32) -> String {
    format!("dormant_tau{tau}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_over_all_layers() {
        // Dense [batch 2, 4]: unit 3 dead, unit 2 weak (score 0.1 / mean).
        let dense = [1.0f32, 1.0, 0.1, 0.0, 1.0, 1.0, 0.1, 0.0];
        // Conv NCHW [1, 2, 2, 2]: channel 1 dead.
        let conv = [1.0f32, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0];
        let layers = [
            Activations {
                values: &dense,
                shape: &[2, 4],
                neuron_axis: 1,
            },
            Activations {
                values: &conv,
                shape: &[1, 2, 2, 2],
                neuron_axis: 1,
            },
        ];
        // Dense scores: 1/0.525, 1/0.525, 0.1/0.525 = 0.19, 0. Conv: 2, 0.
        let f = dormant_fractions(&layers, &[0.0, 0.1, 0.2]).unwrap();
        assert_eq!(f, [2.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0]);
        assert_eq!(probe_name(0.1), "dormant_tau0.1");
        assert_eq!(probe_name(0.0), "dormant_tau0");
        assert_eq!(probe_name(0.025), "dormant_tau0.025");
        let bad = [Activations {
            values: &dense,
            shape: &[3, 4],
            neuron_axis: 1,
        }];
        assert!(dormant_fractions(&bad, &TAUS.map(|t| t as f32)).is_err());
    }
}
