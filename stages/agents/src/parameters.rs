//! What pruning and the recycling baselines need to know about a network, whatever the agent:
//! its named weight kernels in a fixed order (the "layers"), their values, where each sits in
//! the optimizer's parameter order, how each was initialised, its activations, and which
//! layers ReDo may recycle (the layer topology). A value network implements [`ParameterSet`];
//! a future actor-critic would implement it for the network it prunes.

use burn::tensor::Tensor;
use prunus_sparsity::redo::Fanout;
use serde::{Deserialize, Serialize};

/// Shape of one weight kernel, for mask allocation (ERK) and reporting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelInfo {
    pub name: String,
    /// burn layout: `[out, in, kh, kw]` for convolutions, `[in, out]` for dense layers.
    pub shape: Vec<usize>,
}

/// Post-ReLU activations of every hidden layer for a batch, in layer order; the last one is the
/// representation fed to the head (the penultimate layer, used by srank).
pub struct Activations {
    pub layers: Vec<Layer>,
}

/// One hidden layer's activations.
pub struct Layer {
    /// The kernel that produced them.
    pub name: String,
    /// Flattened per sample, `[batch, rest]` (row-major over `shape`).
    pub values: Tensor<2>,
    /// `[batch, channels, h, w]` or `[batch, units]`: neurons are on axis 1.
    pub shape: Vec<usize>,
}

/// A layer ReDo may recycle and how the next layer reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecycleSite {
    /// Its index in [`ParameterSet::kernels`] order.
    pub layer: usize,
    pub name: String,
    /// The neuron axis of its kernel (conv `[out, in, kh, kw]`: 0; `Linear` `[in, out]`: 1).
    pub out_axis: usize,
    /// The layer reading its output.
    pub next: usize,
    /// The input axis of the next kernel (conv: 1; `Linear`: 0).
    pub in_axis: usize,
    pub fanout: Fanout,
}

/// A network's weights as named tensors, for the hooks that prune or re-initialise them.
pub trait ParameterSet {
    /// Names and shapes of every weight kernel, in a fixed order (biases are never pruned).
    fn kernels(&self) -> Vec<KernelInfo>;
    /// Every kernel's values, flattened in its layout, in [`kernels`](Self::kernels) order.
    fn kernel_values(&self) -> Vec<Vec<f32>>;
    /// Every layer's bias values (empty where a layer has none), in the same order.
    fn bias_values(&self) -> Vec<Vec<f32>>;
    /// Weight layers.
    fn num_layers(&self) -> usize {
        self.kernels().len()
    }
    /// Index of layer `layer`'s kernel among the optimizer's parameters; its bias is the next.
    fn kernel_param(&self, layer: usize) -> usize;
    /// `(fan_in, fan_out)` of layer `layer`'s kernel, as its initializer sees them.
    fn fans(&self, layer: usize) -> (usize, usize);
    /// A fresh kernel for layer `layer`, drawn as at construction.
    fn init_kernel(&self, layer: usize, rng: &mut dyn rand::RngCore) -> Vec<f32>;
    /// The layers ReDo may recycle.
    fn recycle_sites(&self) -> Vec<RecycleSite>;
    /// Every hidden layer's activations on `states` `[batch, state]`, by kernel name.
    fn activations(&self, states: Tensor<2>) -> Activations;
}
