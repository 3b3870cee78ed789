//! Q-networks: MLP (classic control), MinAtar CNN, Nature CNN and Impala ResNet (15 conv layers,
//! or 10 in its MinAtar version), each with a width multiplier; one module per architecture.
//!
//! Architectures follow Dopamine's JAX networks (`dopamine/jax/networks.py` at
//! google/dopamine@1093179): SAME padding everywhere (Flax's `nn.Conv` default, so the Nature
//! CNN flattens to 7,744 and the MinAtar conv to 1,600), xavier-uniform kernels and zero biases,
//! except the residual convolutions of the Impala ResNet, which use Flax's default lecun-normal
//! ([`impala`]). Weights are initialised from our own seeded stream ([`init`]), never from
//! burn's global RNG, so two networks built with the same seed are identical even when tests
//! run in parallel.
//!
//! The width multiplier scales convolution channels (Impala: (16, 32, 32)·w, Nature:
//! (32, 64, 64)·w, MinAtar: 16·w) and the hidden dense layers of the Nature CNN and MLP
//! (the ReDo lab's `ScalableNatureDQNNetwork`, `dopamine/labs/redo/networks.py`); the Impala
//! dense layer stays 512 as in Dopamine's `ImpalaDQNNetwork`.
//!
//! Every weight kernel has a stable name (`conv1`, `stack0/block1/conv2`, `dense1`, `head`): the
//! pruner, the probes and `sparsity.csv` refer to layers by these names. How the hooks see the
//! layers (parameter order, initialisers, ReDo's recycle sites) is in [`topology`]; parameter
//! edits (masks, replaced values) in [`edit`]; CPU convolutions in [`conv`].

pub mod conv;
mod edit;
pub mod full_rainbow;
pub mod impala;
pub mod init;
mod minatar;
mod mlp;
mod nature;
pub mod noisy;
pub mod topology;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use self::full_rainbow::{FullRainbowHead, HeadConfig, Noise};
pub use self::impala::ImpalaLayout;
use self::impala::ResNetShape;
pub use self::init::{lecun_normal, xavier_uniform};
use crate::parameters::{Activations, KernelInfo, Layer};
use crate::tensor::to_vec;

/// Which torso the Q-network uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Architecture {
    /// Dense layers of the given sizes (before width scaling), for vector observations.
    Mlp { hidden: Vec<usize> },
    /// Conv(16·w, 3×3, s1) then `hidden` dense layers (Dopamine's MinAtar network has none;
    /// the original MinAtar DQN has one of 128).
    MinAtarCnn { hidden: Vec<usize> },
    /// Conv(32·w, 8×8, s4), Conv(64·w, 4×4, s2), Conv(64·w, 3×3, s1), Dense(512·w).
    NatureCnn,
    /// Three stacks of conv, max-pool and two residual blocks, channels (16, 32, 32)·w, Dense(512).
    ImpalaResNet,
    /// The Impala ResNet with two stacks, channels (16, 32)·w, Dense(512), for 10×10 inputs.
    MinAtarResNet,
}

impl Architecture {
    /// Parses the `network` parameter: `mlp`, `minatar`, `minatar128`, `minatar-resnet`,
    /// `nature`, `impala`.
    pub fn parse(name: &str, mlp_hidden: &[usize]) -> Option<Self> {
        Some(match name {
            "mlp" => Architecture::Mlp {
                hidden: mlp_hidden.to_vec(),
            },
            "minatar" => Architecture::MinAtarCnn { hidden: Vec::new() },
            "minatar128" => Architecture::MinAtarCnn { hidden: vec![128] },
            "nature" => Architecture::NatureCnn,
            "impala" => Architecture::ImpalaResNet,
            "minatar-resnet" => Architecture::MinAtarResNet,
            _ => return None,
        })
    }
}

/// Everything needed to build a network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub architecture: Architecture,
    /// Width multiplier.
    pub width: f64,
    /// Input shape `[channels, height, width]` for images (stacked frames × frame channels),
    /// `[n]` for vectors.
    pub input: Vec<usize>,
    /// Output units (actions, or actions × atoms for C51).
    pub outputs: usize,
    /// Multiplies the input first (1/255 for Atari bytes, Dopamine scales inside the network).
    pub input_scale: f32,
    /// Divide the features fed to the head by their per-sample L2 norm (the "L2" of Kumar et
    /// al. 2022, arXiv 2211.15144, as Dopamine's `normalize_representation` in
    /// `dopamine/labs/offline_rl/jax/networks.py`).
    pub normalize_features: bool,
}

/// `n` scaled by the width multiplier, rounded up (at least 1), as the ReDo lab's `ceil`.
fn scaled(n: usize, width: f64) -> usize {
    ((n as f64) * width).ceil().max(1.0) as usize
}

/// The network's input: `[c, h, w]`, with `h == w == 0` for vectors of `c` features.
#[derive(Clone, Copy, Debug)]
struct InputShape {
    c: usize,
    h: usize,
    w: usize,
}

impl InputShape {
    fn of(input: &[usize]) -> Self {
        match input {
            [n] => InputShape { c: *n, h: 0, w: 0 },
            [c, h, w] => InputShape {
                c: *c,
                h: *h,
                w: *w,
            },
            other => panic!("network input must be [n] or [c, h, w], got {other:?}"),
        }
    }
}

/// How the convolutions are wired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wiring {
    /// One after another, each followed by a ReLU (MinAtar, Nature; none for the MLP).
    Chain,
    /// Stacks of residual blocks.
    Impala(ImpalaLayout),
}

/// What an architecture builds ahead of the dense layers.
struct Torso {
    convs: Vec<Conv2d>,
    pool: Option<MaxPool2d>,
    wiring: Wiring,
    /// Hidden dense layer sizes (already width-scaled).
    hidden: Vec<usize>,
    /// Features the first dense layer (or the head) reads.
    flat: usize,
}

/// A Q-network. Layers are kept in flat lists (convolutions, hidden dense layers, head) and
/// [`Wiring`] says how they connect, so that masks, probes and checkpoints can walk every kernel
/// in one fixed order: convolutions, dense layers, head.
#[derive(Module, Debug)]
pub struct QNetwork {
    convs: Vec<Conv2d>,
    dense: Vec<Linear>,
    head: Linear,
    pool: Option<MaxPool2d>,
    #[module(skip)]
    wiring: Wiring,
    input_scale: f32,
    /// L2-normalise the head's input per sample (see [`NetworkConfig::normalize_features`]).
    normalize: bool,
    /// Compute convolutions as im2col + matmul ([`conv`]); burn's own kernels elsewhere (GPU).
    im2col: bool,
    /// Input `[c, h, w]`; `h == w == 0` for vector inputs.
    in_c: usize,
    in_h: usize,
    in_w: usize,
    /// The dueling and noisy options of Dopamine's `FullRainbowNetwork` ([`full_rainbow`]);
    /// `None` (every plain network) adds no parameter.
    rainbow: Option<FullRainbowHead>,
}

impl QNetwork {
    /// Builds the network with weights drawn from `rng`, on `device`: the torso's convolutions
    /// first, then the dense layers, then the head.
    pub fn new(config: &NetworkConfig, rng: &mut impl Rng, device: &Device) -> Self {
        Self::with_head(config, &HeadConfig::default(), rng, device)
    }

    /// [`new`](Self::new) with the head options `head` (dueling, noisy). With the plain head
    /// the draws and the network are exactly [`new`](Self::new)'s; otherwise the value stream
    /// follows, and with noise the hidden dense layers and the head are redrawn with the noisy
    /// layers' `μ` initialiser.
    pub fn with_head(
        config: &NetworkConfig,
        head_config: &HeadConfig,
        rng: &mut impl Rng,
        device: &Device,
    ) -> Self {
        let input = InputShape::of(&config.input);
        let w = config.width;
        let torso = match &config.architecture {
            Architecture::Mlp { hidden } => mlp::torso(hidden, w, input),
            Architecture::MinAtarCnn { hidden } => minatar::torso(hidden, w, input, rng, device),
            Architecture::NatureCnn => nature::torso(w, input, rng, device),
            Architecture::ImpalaResNet => {
                impala::torso(&ResNetShape::DOPAMINE, w, input, rng, device)
            }
            Architecture::MinAtarResNet => {
                impala::torso(&ResNetShape::MINATAR, w, input, rng, device)
            }
        };
        let mut dense = Vec::new();
        let mut din = torso.flat;
        for &h in &torso.hidden {
            dense.push(init::linear(rng, device, din, h));
            din = h;
        }
        let mut head = init::linear(rng, device, din, config.outputs);
        let rainbow = (!head_config.is_plain()).then(|| {
            let mut fans: Vec<(usize, usize)> = dense
                .iter()
                .map(|d: &Linear| {
                    let [i, o] = d.weight.val().dims();
                    (i, o)
                })
                .collect();
            fans.push((din, config.outputs));
            if head_config.noisy {
                for (d, &(i, o)) in dense.iter_mut().zip(&fans) {
                    *d = full_rainbow::noisy_mu(rng, device, i, o);
                }
                head = full_rainbow::noisy_mu(rng, device, din, config.outputs);
            }
            let mut r = FullRainbowHead::new(head_config, din, &fans, rng, device);
            if let (true, Some(v)) = (head_config.noisy, r.value.as_mut()) {
                *v = full_rainbow::noisy_mu(rng, device, din, head_config.atoms);
            }
            r
        });
        let net = QNetwork {
            convs: torso.convs,
            dense,
            head,
            pool: torso.pool,
            wiring: torso.wiring,
            im2col: crate::is_cpu(device),
            input_scale: config.input_scale,
            normalize: config.normalize_features,
            in_c: input.c,
            in_h: input.h,
            in_w: input.w,
            rainbow,
        };
        // Parameter ids number the parameters in order, so that saved networks (and thus the
        // outputs of a seeded run) are byte-identical from run to run.
        net.map(&mut SequentialIds(0))
    }

    /// Q-values (or C51 logits) for a batch of flattened observations `[batch, c·h·w]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.run(x, None, None)
    }

    /// [`forward`](Self::forward) with the noisy layers perturbed by `noise` (training); `None`
    /// is the noise-free network (evaluation), which is what `forward` computes.
    pub fn forward_noisy(&self, x: Tensor<2>, noise: Option<&Noise>) -> Tensor<2> {
        self.run(x, None, noise)
    }

    /// Fresh noise for the noisy layers; `None` when the network has none.
    pub fn sample_noise(&self, rng: &mut impl Rng) -> Option<Noise> {
        self.rainbow.as_ref().and_then(|r| r.sample_noise(rng))
    }

    /// Whether the network has noisy layers.
    pub fn is_noisy(&self) -> bool {
        self.rainbow.as_ref().is_some_and(|r| r.noisy())
    }

    /// Like [`forward`](Self::forward), also returning every hidden layer's activations
    /// (convolution outputs flattened per sample as `[batch, channels·h·w]`).
    pub fn forward_with_activations(&self, x: Tensor<2>) -> (Tensor<2>, Activations) {
        let mut acts = Vec::new();
        let out = self.run(x, Some(&mut acts), None);
        (out, Activations { layers: acts })
    }

    /// The features fed to the head `[batch, features]`: the last hidden layer's post-ReLU
    /// output (flattened for a conv torso), L2-normalised per sample when the network
    /// normalises features.
    pub fn features(&self, x: Tensor<2>) -> Tensor<2> {
        self.torso(x, None, None)
    }

    fn run(&self, x: Tensor<2>, acts: Option<&mut Vec<Layer>>, noise: Option<&Noise>) -> Tensor<2> {
        let features = self.torso(x, acts, noise);
        match &self.rainbow {
            None => self.head.forward(features),
            Some(r) => r.forward(&self.head, features, self.dense.len(), noise),
        }
    }

    /// Hidden dense layer `i` (noisy where the network is).
    fn dense_layer(&self, i: usize, x: Tensor<2>, noise: Option<&Noise>) -> Tensor<2> {
        match self.rainbow.as_ref().and_then(|r| r.sigma(i)) {
            Some(sigma) => noisy::forward(&self.dense[i], sigma, x, noise.map(|n| &n.layers[i])),
            None => self.dense[i].forward(x),
        }
    }

    fn torso(
        &self,
        x: Tensor<2>,
        mut acts: Option<&mut Vec<Layer>>,
        noise: Option<&Noise>,
    ) -> Tensor<2> {
        let [batch, _] = x.dims();
        let mut x = if self.input_scale != 1.0 {
            x.mul_scalar(self.input_scale)
        } else {
            x
        };
        let names = self.kernel_names();
        let mut record = |name: &str, t: &Tensor<2>, shape: Vec<usize>| {
            if let Some(a) = acts.as_deref_mut() {
                a.push(Layer {
                    name: name.to_string(),
                    values: t.clone(),
                    shape,
                });
            }
        };
        if !self.convs.is_empty() {
            let mut record4 = |name: &str, t: &Tensor<4>| {
                let [b, c, h, w] = t.dims();
                record(name, &t.clone().reshape([b, c * h * w]), vec![b, c, h, w]);
            };
            let mut y = x.reshape([batch, self.in_c, self.in_h, self.in_w]);
            y = match &self.wiring {
                Wiring::Impala(layout) => layout.forward(self, y, &names, &mut record4),
                Wiring::Chain => {
                    for (i, name) in names.iter().enumerate().take(self.convs.len()) {
                        y = relu(self.conv(i, y));
                        record4(name, &y);
                    }
                    y
                }
            };
            let [b, c, h, w] = y.dims();
            x = y.reshape([b, c * h * w]);
        }
        for i in 0..self.dense.len() {
            x = relu(self.dense_layer(i, x, noise));
            let shape = x.dims().to_vec();
            record(&names[self.convs.len() + i], &x, shape);
        }
        if self.normalize {
            x = l2_normalize_rows(x);
        }
        x
    }

    /// Kernel names in the fixed order convolutions, dense layers, head.
    pub fn kernel_names(&self) -> Vec<String> {
        let mut names = match &self.wiring {
            Wiring::Impala(layout) => layout.names(),
            Wiring::Chain => (1..=self.convs.len()).map(|i| format!("conv{i}")).collect(),
        };
        names.extend((1..=self.dense.len()).map(|i| format!("dense{i}")));
        names.push("head".to_string());
        if self.value_stream().is_some() {
            names.push("value".to_string());
        }
        names
    }

    /// Dueling's value stream, the last layer when there is one.
    fn value_stream(&self) -> Option<&Linear> {
        self.rainbow.as_ref().and_then(|r| r.value.as_ref())
    }

    /// Names and shapes of every weight kernel (biases are never pruned).
    pub fn kernels(&self) -> Vec<KernelInfo> {
        let shapes = self
            .convs
            .iter()
            .map(|c| c.weight.val().dims().to_vec())
            .chain(self.dense.iter().map(|d| d.weight.val().dims().to_vec()))
            .chain(std::iter::once(self.head.weight.val().dims().to_vec()))
            .chain(self.value_stream().map(|v| v.weight.val().dims().to_vec()));
        self.kernel_names()
            .into_iter()
            .zip(shapes)
            .map(|(name, shape)| KernelInfo { name, shape })
            .collect()
    }

    /// The values of every kernel, flattened in burn's layout, in [`kernels`](Self::kernels) order.
    pub fn kernel_values(&self) -> Vec<Vec<f32>> {
        self.convs
            .iter()
            .map(|c| to_vec(c.weight.val()))
            .chain(self.dense.iter().map(|d| to_vec(d.weight.val())))
            .chain(std::iter::once(to_vec(self.head.weight.val())))
            .chain(self.value_stream().map(|v| to_vec(v.weight.val())))
            .collect()
    }

    /// The values of every bias, in [`kernels`](Self::kernels) order.
    pub fn bias_values(&self) -> Vec<Vec<f32>> {
        let bias =
            |b: &Option<Param<Tensor<1>>>| b.as_ref().map_or_else(Vec::new, |b| to_vec(b.val()));
        self.convs
            .iter()
            .map(|c| bias(&c.bias))
            .chain(self.dense.iter().map(|d| bias(&d.bias)))
            .chain(std::iter::once(bias(&self.head.bias)))
            .chain(self.value_stream().map(|v| bias(&v.bias)))
            .collect()
    }

    /// Every parameter (kernels and biases), flattened, for the parameter norm.
    pub fn parameter_values(&self) -> Vec<Vec<f32>> {
        let mut out = self.kernel_values();
        let biases = self
            .convs
            .iter()
            .filter_map(|c| c.bias.as_ref())
            .chain(self.dense.iter().filter_map(|d| d.bias.as_ref()))
            .chain(self.head.bias.as_ref())
            .chain(self.value_stream().and_then(|v| v.bias.as_ref()));
        out.extend(biases.map(|b| to_vec(b.val())));
        if let Some(r) = &self.rainbow {
            for s in &r.sigmas {
                out.push(to_vec(s.weight.val()));
                out.push(to_vec(s.bias.val()));
            }
        }
        out
    }

    /// Weight layers (kernels), head included: convolutions, dense layers, head.
    pub fn num_layers(&self) -> usize {
        self.convs.len() + self.dense.len() + 1 + self.value_stream().is_some() as usize
    }

    /// How the convolutions are wired.
    pub fn wiring(&self) -> &Wiring {
        &self.wiring
    }

    /// Convolution `i`: the first one, whose input is data (never differentiated), gathers its
    /// im2col patches in one pass over the input's values on CPU instead of k·k tensor slices
    /// and a concatenation, which dominated the MinAtar learning step (benches/steps.rs).
    fn conv(&self, i: usize, x: Tensor<4>) -> Tensor<4> {
        if !self.im2col {
            self.convs[i].forward(x)
        } else if i == 0 && !x.is_require_grad() {
            conv::conv_gathered(&self.convs[0], x)
        } else {
            conv::conv_im2col(&self.convs[i], x)
        }
    }
}

/// Each row divided by its L2 norm, differentiably; an all-zero row stays zero (its norm is
/// clamped to the smallest normal `f32`, so neither the value nor the gradient is NaN).
fn l2_normalize_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = (x.clone() * x.clone())
        .sum_dim(1)
        .clamp_min(f32::MIN_POSITIVE)
        .sqrt();
    x / norm
}

/// Renumbers parameter ids 0, 1, 2, ... in visiting order (burn draws them at random).
struct SequentialIds(u64);

impl burn::module::ModuleMapper for SequentialIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, value, mapper) = param.consume();
        self.0 += 1;
        Param::from_mapped_value(burn::module::ParamId::from(self.0), value, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    pub(super) fn build(architecture: Architecture, width: f64, input: Vec<usize>) -> QNetwork {
        let config = NetworkConfig {
            architecture,
            width,
            input,
            outputs: 6,
            input_scale: 1.0 / 255.0,
            normalize_features: false,
        };
        QNetwork::new(
            &config,
            &mut Pcg64::seed_from_u64(0),
            &crate::device("cpu").unwrap(),
        )
    }

    fn kernel_params(net: &QNetwork) -> Vec<usize> {
        net.kernels()
            .iter()
            .map(|k| k.shape.iter().product())
            .collect()
    }

    #[test]
    fn nature_cnn_matches_dopamine_shapes() {
        let net = build(Architecture::NatureCnn, 1.0, vec![4, 84, 84]);
        // Flax's SAME padding flattens to 11·11·64 = 7,744; kernels total 4,045,824 for 6 actions.
        assert_eq!(net.kernels()[3].shape, vec![7744, 512]);
        assert_eq!(kernel_params(&net).iter().sum::<usize>(), 4_045_824);
        let names: Vec<String> = net.kernels().into_iter().map(|k| k.name).collect();
        assert_eq!(names, ["conv1", "conv2", "conv3", "dense1", "head"]);
        let out = net.forward(Tensor::zeros(
            [2, 4 * 84 * 84],
            &crate::device("cpu").unwrap(),
        ));
        assert_eq!(out.dims(), [2, 6]);
    }

    #[test]
    fn impala_resnet_has_15_convs_and_scales_channels() {
        let net = build(Architecture::ImpalaResNet, 1.0, vec![4, 84, 84]);
        let k = net.kernels();
        assert_eq!(k.len(), 17);
        // Conv kernels: (4·16 + 4·16·16 + 16·32 + 4·32·32 + 32·32 + 4·32·32)·9 = 97,344 (the
        // 86,016 sometimes quoted fits no channel count of this architecture); fc1 (3872, 512).
        assert_eq!(kernel_params(&net)[..15].iter().sum::<usize>(), 97_344);
        assert_eq!(k[15].shape, vec![3872, 512]);
        assert_eq!(k[1].name, "stack0/block0/conv1");
        let x3 = build(Architecture::ImpalaResNet, 3.0, vec![4, 84, 84]);
        assert_eq!(x3.kernels()[15].shape, vec![11616, 512]);
        let (out, acts) = x3.forward_with_activations(Tensor::zeros(
            [1, 4 * 84 * 84],
            &crate::device("cpu").unwrap(),
        ));
        assert_eq!(out.dims(), [1, 6]);
        assert_eq!(
            acts.layers
                .last()
                .map(|l| (l.name.as_str(), l.values.dims())),
            Some(("dense1", [1, 512]))
        );
    }

    #[test]
    fn minatar_resnet_pools_10_to_3_and_scales_convs() {
        let net = build(Architecture::MinAtarResNet, 1.0, vec![4, 10, 10]);
        let k = net.kernels();
        assert_eq!(k.len(), 12); // 2 stacks of 5 convolutions, dense, head
        assert_eq!(k[9].name, "stack1/block1/conv2");
        // (4·16 + 4·16·16 + 16·32 + 4·32·32)·9 = 51,264 conv weights; 3·3·32 = 288 features.
        assert_eq!(kernel_params(&net)[..10].iter().sum::<usize>(), 51_264);
        assert_eq!(k[10].shape, vec![288, 512]);
        let x4 = build(Architecture::MinAtarResNet, 4.0, vec![4, 10, 10]);
        assert_eq!(x4.kernels()[10].shape, vec![1152, 512]);
        let out = x4.forward(Tensor::zeros([3, 400], &crate::device("cpu").unwrap()));
        assert_eq!(out.dims(), [3, 6]);
    }

    #[test]
    fn minatar_cnn_flattens_to_1600_and_masks_zero_weights() {
        let net = build(
            Architecture::MinAtarCnn { hidden: vec![] },
            1.0,
            vec![4, 10, 10],
        );
        assert_eq!(net.kernels()[1].shape, vec![1600, 6]);
        let n = kernel_params(&net);
        let m: Vec<f32> = (0..n[0]).map(|i| (i % 2) as f32).collect();
        let masks = vec![
            Some(Tensor::<1>::from_data(
                TensorData::new(m, [n[0]]),
                &crate::device("cpu").unwrap(),
            )),
            None,
        ];
        let before = net.kernel_values();
        let masked = net.apply_masks(&masks).kernel_values();
        assert!(masked[0].iter().step_by(2).all(|&w| w == 0.0));
        assert_eq!(masked[0][1], before[0][1]);
        assert_eq!(masked[1], before[1]);
    }

    #[test]
    fn same_seed_same_weights() {
        let a = build(
            Architecture::Mlp {
                hidden: vec![64, 64],
            },
            2.0,
            vec![4],
        );
        let b = build(
            Architecture::Mlp {
                hidden: vec![64, 64],
            },
            2.0,
            vec![4],
        );
        assert_eq!(a.kernel_values(), b.kernel_values());
        assert_eq!(a.kernels()[0].shape, vec![4, 128]);
    }
}
