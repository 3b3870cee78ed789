//! The Q-network as the pruning and recycling hooks see it ([`ParameterSet`]): named kernels
//! in a fixed order, where each sits among the optimizer's parameters, how each was
//! initialised, and which layers ReDo may recycle, with how the next layer reads them.

use burn::tensor::Tensor;
use prunus_sparsity::redo::Fanout;

use super::init::Init;
use super::{QNetwork, Wiring};
use crate::parameters::{Activations, KernelInfo, ParameterSet, RecycleSite};

impl QNetwork {
    /// Index of layer `layer`'s kernel among the parameters in the module's visiting order
    /// (the optimizer's order); its bias is the next one.
    pub fn kernel_param(layer: usize) -> usize {
        2 * layer
    }

    /// `(fan_in, fan_out)` of layer `layer`'s kernel, as its initializer sees them.
    pub fn fans(&self, layer: usize) -> (usize, usize) {
        let shape = &self.kernels()[layer].shape;
        match shape.as_slice() {
            [out, cin, kh, kw] => (cin * kh * kw, out * kh * kw),
            [din, dout] => (*din, *dout),
            other => unreachable!("kernel of shape {other:?}"),
        }
    }

    /// The initializer layer `layer` was built with.
    pub fn init_of(&self, layer: usize) -> Init {
        match &self.wiring {
            Wiring::Impala(layout) if layer < self.convs.len() => layout.init(layer),
            _ => Init::XavierUniform,
        }
    }

    /// A kernel for layer `layer` drawn from `rng` with the layer's initializer as at
    /// construction (xavier uniform; lecun normal for the Impala residual convolutions).
    pub fn init_kernel(&self, layer: usize, rng: &mut dyn rand::RngCore) -> Vec<f32> {
        let (fan_in, fan_out) = self.fans(layer);
        let n = self.kernels()[layer].shape.iter().product();
        self.init_of(layer).draw(rng, n, fan_in, fan_out)
    }

    /// The layers ReDo may recycle, each with the layer reading its neurons: every hidden
    /// layer, never the head; for the Impala ResNet only the first convolution of each
    /// residual block and the dense layer (Dopamine's `Conv_1`, `Conv_3`, `Dense` filter in
    /// `dopamine/labs/redo/weight_recyclers.py`: their outputs feed exactly one next layer).
    /// Activations of each are recorded under its name by
    /// [`forward_with_activations`](Self::forward_with_activations).
    pub fn recycle_sites(&self) -> Vec<RecycleSite> {
        let kernels = self.kernels();
        let nc = self.convs.len();
        let conv_layers: Vec<usize> = match &self.wiring {
            Wiring::Impala(layout) => layout.block_inputs(),
            Wiring::Chain => (0..nc).collect(),
        };
        let mut sites = Vec::new();
        for layer in conv_layers {
            let next = layer + 1;
            let fanout = if next < nc {
                Fanout::Direct
            } else {
                // conv -> flatten (NCHW) -> dense or head (burn `Linear` [in, out]).
                let channels = kernels[layer].shape[0];
                Fanout::Flatten {
                    spatial: kernels[next].shape[0] / channels,
                    channels_first: true,
                }
            };
            sites.push(RecycleSite {
                layer,
                name: kernels[layer].name.clone(),
                out_axis: 0,
                next,
                in_axis: if next < nc { 1 } else { 0 },
                fanout,
            });
        }
        for d in 0..self.dense.len() {
            let layer = nc + d;
            sites.push(RecycleSite {
                layer,
                name: kernels[layer].name.clone(),
                out_axis: 1,
                next: layer + 1,
                in_axis: 0,
                fanout: Fanout::Direct,
            });
        }
        sites
    }
}

impl ParameterSet for QNetwork {
    fn kernels(&self) -> Vec<KernelInfo> {
        QNetwork::kernels(self)
    }

    fn kernel_values(&self) -> Vec<Vec<f32>> {
        QNetwork::kernel_values(self)
    }

    fn bias_values(&self) -> Vec<Vec<f32>> {
        QNetwork::bias_values(self)
    }

    fn kernel_param(&self, layer: usize) -> usize {
        QNetwork::kernel_param(layer)
    }

    fn fans(&self, layer: usize) -> (usize, usize) {
        QNetwork::fans(self, layer)
    }

    fn init_kernel(&self, layer: usize, rng: &mut dyn rand::RngCore) -> Vec<f32> {
        QNetwork::init_kernel(self, layer, rng)
    }

    fn recycle_sites(&self) -> Vec<RecycleSite> {
        QNetwork::recycle_sites(self)
    }

    fn activations(&self, states: Tensor<2>) -> Activations {
        self.forward_with_activations(states).1
    }
}
