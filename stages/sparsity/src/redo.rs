//! ReDo (Sokar et al. 2023): find τ-dormant neurons and recycle them.
//!
//! Source read: Dopamine `dopamine/labs/redo/weight_recyclers.py` (`BaseRecycler.
//! estimate_neuron_score`, `NeuronRecycler`; google/dopamine at 1093179); ReDo is Sokar et al.
//! 2023.
//!
//! - **Score**: for one hidden layer's post-activation outputs over a batch, neuron `i` scores
//!   `s_i = mean|a_i| / (mean_j mean|a_j| + 1e-9)`, the mean taken over every axis except the
//!   neuron axis (batch and, for convolutions, both spatial axes: a feature map is one neuron).
//!   It is **τ-dormant iff `s_i <= τ`**.
//! - **When** ([`RedoConfig::should_recycle`]): at gradient steps `t > 0` with
//!   `t % period == 0` and `start <= t < end`.
//! - **Which layers**: every hidden layer, never the output layer. For the Impala ResNet,
//!   Dopamine recycles only the first conv of each residual block and the dense layer, whose
//!   outputs feed exactly one next layer (the stack's first conv feeds the skip path too).
//! - **Recycle** a dormant neuron ([`Recycle`]): its incoming weights (the kernel slice producing
//!   it) are re-drawn from the layer's initializer (Dopamine: xavier_uniform), its bias is set to
//!   0, its outgoing weights (the next layer's slice reading it; for conv -> flatten -> dense, all
//!   the spatial positions of that channel) are set to 0, and the Adam moments of all those
//!   entries are zeroed. Adam's step count is left alone.

use serde::{Deserialize, Serialize};

use crate::SparsityError;

/// When and at which threshold ReDo recycles. Steps are gradient steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RedoConfig {
    /// A neuron is dormant when its normalised score is `<= tau`.
    pub tau: f32,
    /// Recycle every `period` gradient steps.
    pub period: u64,
    /// First step at which recycling may happen.
    pub start: u64,
    /// Recycling stops before this step.
    pub end: u64,
}

impl Default for RedoConfig {
    /// τ = 0.025 and a period of 1,000 gradient steps: the ReDo paper's DQN setting (Sokar et al.
    /// 2023, recalled, not checked in code; Dopamine's code defaults are τ = 0 and
    /// period 200,000, which its gins do not override for this agent).
    fn default() -> Self {
        RedoConfig {
            tau: 0.025,
            period: 1000,
            start: 0,
            end: u64::MAX,
        }
    }
}

impl RedoConfig {
    /// Whether to recycle at gradient step `step`.
    pub fn should_recycle(&self, step: u64) -> bool {
        step > 0
            && self.period > 0
            && step.is_multiple_of(self.period)
            && self.start <= step
            && step < self.end
    }
}

/// Normalised ReDo scores of the neurons of one layer.
///
/// `activations` is row-major with `shape`; `neuron_axis` indexes the neurons (1 for burn's
/// `[batch, channels, h, w]` and `[batch, features]`; the last axis for channel-last layouts).
pub fn neuron_scores(activations: &[f32], shape: &[usize], neuron_axis: usize) -> Vec<f32> {
    assert!(
        neuron_axis < shape.len(),
        "neuron axis {neuron_axis} out of {shape:?}"
    );
    assert_eq!(
        activations.len(),
        shape.iter().product::<usize>(),
        "activations do not match shape {shape:?}"
    );
    let neurons = shape[neuron_axis];
    let inner: usize = shape[neuron_axis + 1..].iter().product();
    let mut sums = vec![0f64; neurons];
    for (i, a) in activations.iter().enumerate() {
        sums[(i / inner) % neurons] += a.abs() as f64;
    }
    let per_neuron = (activations.len() / neurons.max(1)) as f64;
    let means: Vec<f64> = sums.iter().map(|s| s / per_neuron).collect();
    let layer_mean = means.iter().sum::<f64>() / neurons as f64;
    means
        .iter()
        .map(|m| (m / (layer_mean + 1e-9)) as f32)
        .collect()
}

/// Indices of the τ-dormant neurons (`score <= tau`), ascending.
pub fn dormant(scores: &[f32], tau: f32) -> Vec<usize> {
    (0..scores.len()).filter(|&i| scores[i] <= tau).collect()
}

/// Flat (row-major) indices of the entries of a tensor of `shape` whose coordinate on `axis` is
/// in `at`, ascending. E.g. the incoming kernel slice of neurons `at` along the output axis.
pub fn slice_indices(shape: &[usize], axis: usize, at: &[usize]) -> Vec<usize> {
    let dim = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut selected = vec![false; dim];
    for &i in at {
        selected[i] = true;
    }
    let total: usize = shape.iter().product();
    (0..total)
        .filter(|&i| selected[(i / inner) % dim])
        .collect()
}

/// How the next layer reads a neuron of this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fanout {
    /// Neuron `i` is input `i` of the next layer (dense -> dense, conv -> conv).
    Direct,
    /// The layer's `[channels, spatial]` maps are flattened into the next dense layer:
    /// channel-first (burn's NCHW flatten: input `c * spatial + p`) or channel-last
    /// (Flax's NHWC flatten: input `p * channels + c`).
    Flatten {
        /// Number of spatial positions `h * w`.
        spatial: usize,
        /// Whether the flatten is channel-first (NCHW).
        channels_first: bool,
    },
}

/// The weights of one layer's dormant neurons to recycle, as flat indices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recycle {
    /// The recycled neurons.
    pub neurons: Vec<usize>,
    /// Entries of this layer's kernel to re-draw from its initializer.
    pub incoming: Vec<usize>,
    /// Entries of this layer's bias to set to 0 (the neuron indices themselves).
    pub bias: Vec<usize>,
    /// Entries of the next layer's kernel to set to 0.
    pub outgoing: Vec<usize>,
}

impl Recycle {
    /// The index sets for recycling `neurons` of a layer whose kernel has `incoming_shape` with
    /// the neuron (output) axis `out_axis`, feeding a next kernel of `outgoing_shape` whose input
    /// axis is `in_axis`, connected by `fanout`.
    ///
    /// burn layouts: `Linear` weight `[in, out]` (out axis 1, in axis 0), `Conv2d` weight
    /// `[out, in, kh, kw]` (out axis 0, in axis 1).
    pub fn new(
        neurons: &[usize],
        incoming_shape: &[usize],
        out_axis: usize,
        outgoing_shape: &[usize],
        in_axis: usize,
        fanout: Fanout,
    ) -> Result<Self, SparsityError> {
        let channels = incoming_shape[out_axis];
        let inputs = outgoing_shape[in_axis];
        let expected = match fanout {
            Fanout::Direct => channels,
            Fanout::Flatten { spatial, .. } => channels * spatial,
        };
        if inputs != expected {
            return Err(SparsityError::Recycle(format!(
                "the next layer reads {inputs} inputs but this layer gives {expected} \
                 ({channels} neurons, {fanout:?}); check the axes and the flatten size"
            )));
        }
        if let Some(&bad) = neurons.iter().find(|&&n| n >= channels) {
            return Err(SparsityError::Recycle(format!(
                "neuron {bad} does not exist in a layer of {channels}"
            )));
        }
        let mut neurons = neurons.to_vec();
        neurons.sort_unstable();
        neurons.dedup();
        let inputs: Vec<usize> = match fanout {
            Fanout::Direct => neurons.clone(),
            Fanout::Flatten {
                spatial,
                channels_first,
            } => neurons
                .iter()
                .flat_map(|&c| {
                    (0..spatial).map(move |p| {
                        if channels_first {
                            c * spatial + p
                        } else {
                            p * channels + c
                        }
                    })
                })
                .collect(),
        };
        Ok(Recycle {
            incoming: slice_indices(incoming_shape, out_axis, &neurons),
            bias: neurons.clone(),
            outgoing: slice_indices(outgoing_shape, in_axis, &inputs),
            neurons,
        })
    }

    /// Applies the recipe to plain buffers: `fresh` is a freshly initialised kernel of the
    /// incoming shape; `bias` and the outgoing kernel are zeroed at the recycled entries.
    /// The agent does the same on its tensors and zeroes the Adam moments with [`zero_at`].
    pub fn apply(
        &self,
        incoming: &mut [f32],
        fresh: &[f32],
        bias: Option<&mut [f32]>,
        outgoing: &mut [f32],
    ) {
        for &i in &self.incoming {
            incoming[i] = fresh[i];
        }
        if let Some(b) = bias {
            zero_at(&self.bias, b);
        }
        zero_at(&self.outgoing, outgoing);
    }
}

/// Sets `values[i] = 0` for every `i` in `indices` (recycled weights' Adam moments, biases).
pub fn zero_at(indices: &[usize], values: &mut [f32]) {
    for &i in indices {
        values[i] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_follows_dopamine() {
        let c = RedoConfig {
            period: 100,
            start: 200,
            end: 500,
            ..RedoConfig::default()
        };
        let steps: Vec<u64> = (0..700).filter(|&t| c.should_recycle(t)).collect();
        assert_eq!(steps, [200, 300, 400]);
        assert!(!RedoConfig::default().should_recycle(0));
        assert!(RedoConfig::default().should_recycle(3000));
    }

    #[test]
    fn scores_normalise_to_layer_mean() {
        // Dense [batch 2, neurons 3].
        let s = neuron_scores(&[1.0, -2.0, 0.0, 3.0, 2.0, 0.0], &[2, 3], 1);
        // mean |a|: 2, 2, 0; layer mean 4/3.
        let want = [1.5, 1.5, 0.0];
        for (g, w) in s.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{s:?}");
        }
        assert_eq!(dormant(&s, 0.0), [2]);
        assert_eq!(dormant(&s, 1.5), [0, 1, 2]);
        // Same numbers in NCHW and NHWC give the same scores.
        let nchw: Vec<f32> = (0..2 * 3 * 4).map(|i| (i % 7) as f32 - 3.0).collect();
        let mut nhwc = vec![0.0; nchw.len()];
        for b in 0..2 {
            for c in 0..3 {
                for p in 0..4 {
                    nhwc[(b * 4 + p) * 3 + c] = nchw[(b * 3 + c) * 4 + p];
                }
            }
        }
        let a = neuron_scores(&nchw, &[2, 3, 2, 2], 1);
        let b = neuron_scores(&nhwc, &[2, 2, 2, 3], 3);
        assert_eq!(a, b);
        assert!((a.iter().sum::<f32>() - 3.0).abs() < 1e-5);
    }

    /// A planted dormant neuron in a conv -> flatten -> dense -> head network is found and
    /// recycled: incoming re-drawn, bias and outgoing zeroed, nothing else touched.
    #[test]
    fn planted_dormant_neuron_is_found_and_recycled() {
        let (batch, ch, hw, hidden) = (8, 4, 9, 5);
        // conv activations NCHW [8, 4, 3, 3]: channel 2 is dead (ReLU output always 0).
        let acts: Vec<f32> = (0..batch * ch * hw)
            .map(|i| {
                if (i / hw) % ch == 2 {
                    0.0
                } else {
                    0.1 + (i % 5) as f32
                }
            })
            .collect();
        let scores = neuron_scores(&acts, &[batch, ch, 3, 3], 1);
        let dead = dormant(&scores, 0.025);
        assert_eq!(dead, [2]);
        // Conv kernel [out 4, in 1, 3, 3]; dense kernel (burn Linear) [in 36, out 5].
        let conv_shape = [ch, 1, 3, 3];
        let fc_shape = [ch * hw, hidden];
        let r = Recycle::new(
            &dead,
            &conv_shape,
            0,
            &fc_shape,
            0,
            Fanout::Flatten {
                spatial: hw,
                channels_first: true,
            },
        )
        .unwrap();
        assert_eq!(r.incoming, (18..27).collect::<Vec<_>>());
        assert_eq!(r.bias, [2]);
        let rows: Vec<usize> = (18..27)
            .flat_map(|row| row * hidden..row * hidden + hidden)
            .collect();
        assert_eq!(r.outgoing, rows);
        let mut conv = vec![1.0f32; 36];
        let fresh = vec![-7.0f32; 36];
        let mut bias = vec![0.5f32; 4];
        let mut fc = vec![1.0f32; 36 * hidden];
        r.apply(&mut conv, &fresh, Some(&mut bias), &mut fc);
        for (i, &w) in conv.iter().enumerate() {
            assert_eq!(w, if (18..27).contains(&i) { -7.0 } else { 1.0 });
        }
        assert_eq!(bias, [0.5, 0.5, 0.0, 0.5]);
        for (i, &w) in fc.iter().enumerate() {
            assert_eq!(w, if rows.contains(&i) { 0.0 } else { 1.0 });
        }
        // Channel-last flatten reads channel 2 at every 4th input.
        let r = Recycle::new(
            &dead,
            &conv_shape,
            0,
            &fc_shape,
            0,
            Fanout::Flatten {
                spatial: hw,
                channels_first: false,
            },
        )
        .unwrap();
        assert_eq!(
            r.outgoing[..hidden],
            (2 * hidden..3 * hidden).collect::<Vec<_>>()[..]
        );
        assert_eq!(r.outgoing[hidden], 6 * hidden);
        // Dense -> head, burn Linear [in, out]: the head's row for neuron 3.
        let r = Recycle::new(&[3], &[36, 5], 1, &[5, 6], 0, Fanout::Direct).unwrap();
        assert_eq!(r.incoming, (0..36).map(|i| i * 5 + 3).collect::<Vec<_>>());
        assert_eq!(r.outgoing, (18..24).collect::<Vec<_>>());
        // Mismatched wiring is an error that says what to check.
        let e = Recycle::new(
            &[0],
            &conv_shape,
            0,
            &[35, 5],
            0,
            Fanout::Flatten {
                spatial: 9,
                channels_first: true,
            },
        );
        assert!(e.unwrap_err().to_string().contains("flatten size"));
        assert!(Recycle::new(&[9], &[36, 5], 1, &[5, 6], 0, Fanout::Direct).is_err());
    }
}
