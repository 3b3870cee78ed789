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

#[cfg(test)]
mod tests {
    use super::super::Architecture;
    use super::super::tests::build;
    use super::*;

    /// ReDo's sites match each architecture's wiring (every recycle index set fits the two
    /// kernels it joins), and parameter `kernel_param(l)` / `+ 1` are layer `l`'s kernel / bias.
    #[test]
    fn recycle_sites_and_parameter_order_follow_the_wiring() {
        use prunus_sparsity::redo::Recycle;
        let cases = [
            (Architecture::ImpalaResNet, vec![4, 84, 84]),
            (Architecture::NatureCnn, vec![4, 84, 84]),
            (Architecture::MinAtarCnn { hidden: vec![] }, vec![4, 10, 10]),
            (Architecture::Mlp { hidden: vec![8, 8] }, vec![4]),
            (Architecture::MinAtarResNet, vec![4, 10, 10]),
        ];
        let mut all = Vec::new();
        for (architecture, input) in cases {
            let net = build(architecture, 1.0, input);
            let kernels = net.kernels();
            let sites = net.recycle_sites();
            for site in &sites {
                Recycle::new(
                    &[0],
                    &kernels[site.layer].shape,
                    site.out_axis,
                    &kernels[site.next].shape,
                    site.in_axis,
                    site.fanout,
                )
                .unwrap_or_else(|e| panic!("{}: {e}", site.name));
                assert_ne!(site.name, "head");
            }
            all.push(
                sites
                    .iter()
                    .map(|s| (s.name.clone(), s.fanout))
                    .collect::<Vec<_>>(),
            );
            // Parameter order: replace layer 0's kernel and the head's bias by index.
            let last = net.num_layers() - 1;
            let k0: Vec<f32> = (0..kernels[0].shape.iter().product::<usize>())
                .map(|i| i as f32)
                .collect();
            let mut values = std::collections::BTreeMap::new();
            values.insert(QNetwork::kernel_param(0), k0.clone());
            values.insert(QNetwork::kernel_param(last) + 1, vec![7.0; 6]);
            let net = net.with_parameters(&values);
            assert_eq!(net.kernel_values()[0], k0);
            assert_eq!(net.bias_values()[last], vec![7.0; 6]);
        }
        let names = |i: usize| all[i].iter().map(|s| s.0.as_str()).collect::<Vec<_>>();
        assert_eq!(
            names(0),
            [
                "stack0/block0/conv1",
                "stack0/block1/conv1",
                "stack1/block0/conv1",
                "stack1/block1/conv1",
                "stack2/block0/conv1",
                "stack2/block1/conv1",
                "dense1"
            ]
        );
        assert!(all[0].iter().all(|s| s.1 == Fanout::Direct));
        assert_eq!(names(1), ["conv1", "conv2", "conv3", "dense1"]);
        assert_eq!(
            all[1][2].1,
            Fanout::Flatten {
                spatial: 121,
                channels_first: true
            }
        );
        assert_eq!(
            all[2],
            [(
                "conv1".to_string(),
                Fanout::Flatten {
                    spatial: 100,
                    channels_first: true
                }
            )]
        );
        assert_eq!(names(3), ["dense1", "dense2"]);
        assert_eq!(
            names(4),
            [
                "stack0/block0/conv1",
                "stack0/block1/conv1",
                "stack1/block0/conv1",
                "stack1/block1/conv1",
                "dense1"
            ]
        );
    }
}
