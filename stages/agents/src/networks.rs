//! Q-networks: MLP (classic control), MinAtar CNN, Nature CNN and Impala ResNet (15 conv layers),
//! each with a width multiplier.
//!
//! Architectures follow Dopamine's JAX networks (FACTS.md §3): SAME padding everywhere (Flax's
//! default, so the Nature CNN flattens to 7,744 and the MinAtar conv to 1,600), xavier-uniform
//! kernels and zero biases, except the residual convolutions of the Impala ResNet, which use
//! Flax's default lecun-normal (`dopamine/labs/offline_rl/jax/networks.py::Stack`). Weights are
//! initialised from our own seeded stream, never from burn's global RNG, so two networks built
//! with the same seed are identical even when tests run in parallel.
//!
//! The width multiplier scales convolution channels (Impala: (16, 32, 32)·w, Nature:
//! (32, 64, 64)·w, MinAtar: 16·w) and the hidden dense layers of the Nature CNN and MLP
//! (ReDo lab's `ScalableNatureDQNNetwork`); the Impala dense layer stays 512 as in Dopamine's
//! `ImpalaDQNNetwork`.
//!
//! Every weight kernel has a stable name (`conv1`, `stack0/block1/conv2`, `dense1`, `head`): the
//! pruner, the probes and `sparsity.csv` refer to layers by these names.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Slice, Tensor, TensorData};
use prunus_sparsity::redo::Fanout;
use rand::Rng;
use serde::{Deserialize, Serialize};

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
}

impl Architecture {
    /// Parses the `network` parameter: `mlp`, `minatar`, `nature`, `impala`.
    pub fn parse(name: &str, mlp_hidden: &[usize]) -> Option<Self> {
        Some(match name {
            "mlp" => Architecture::Mlp {
                hidden: mlp_hidden.to_vec(),
            },
            "minatar" => Architecture::MinAtarCnn { hidden: Vec::new() },
            "minatar128" => Architecture::MinAtarCnn { hidden: vec![128] },
            "nature" => Architecture::NatureCnn,
            "impala" => Architecture::ImpalaResNet,
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
    /// al. 2022, Dopamine's `normalize_representation`; FACTS.md §5.6).
    pub normalize_features: bool,
}

fn scaled(n: usize, width: f64) -> usize {
    ((n as f64) * width).ceil().max(1.0) as usize
}

/// Shape of one weight kernel, for mask allocation (ERK) and reporting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelInfo {
    pub name: String,
    /// burn layout: `[out, in, kh, kw]` for convolutions, `[in, out]` for dense layers.
    pub shape: Vec<usize>,
}

/// A Q-network. Layers are kept in flat lists (convolutions, hidden dense layers, head) and the
/// architecture decides how they are wired, so that masks, probes and checkpoints can walk every
/// kernel in one fixed order: convolutions, dense layers, head.
#[derive(Module, Debug)]
pub struct QNetwork {
    convs: Vec<Conv2d>,
    dense: Vec<Linear>,
    head: Linear,
    pool: Option<MaxPool2d>,
    /// Impala wiring (stacks of conv, pool, residual blocks) instead of a plain conv chain.
    impala: bool,
    input_scale: f32,
    /// L2-normalise the head's input per sample (see [`NetworkConfig::normalize_features`]).
    normalize: bool,
    /// Compute convolutions as im2col + matmul (much faster than burn's direct CPU kernels on
    /// these small images); burn's own kernels elsewhere (GPU).
    im2col: bool,
    /// Input `[c, h, w]`; `h == w == 0` for vector inputs.
    in_c: usize,
    in_h: usize,
    in_w: usize,
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

impl QNetwork {
    /// Builds the network with weights drawn from `rng`, on `device`.
    pub fn new(config: &NetworkConfig, rng: &mut impl Rng, device: &Device) -> Self {
        let w = config.width;
        let (in_c, in_h, in_w) = match config.input.as_slice() {
            [n] => (*n, 0, 0),
            [c, h, wd] => (*c, *h, *wd),
            other => panic!("network input must be [n] or [c, h, w], got {other:?}"),
        };
        let conv = |rng: &mut dyn rand::RngCore,
                    cin: usize,
                    cout: usize,
                    k: usize,
                    s: usize,
                    lecun: bool| {
            let mut layer = Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Same)
                .init(device);
            let fan_in = cin * k * k;
            let fan_out = cout * k * k;
            let values = if lecun {
                lecun_normal(rng, cout * cin * k * k, fan_in)
            } else {
                xavier_uniform(rng, cout * cin * k * k, fan_in, fan_out)
            };
            layer.weight = Param::from_data(TensorData::new(values, [cout, cin, k, k]), device);
            layer.bias = Some(Param::from_data(
                TensorData::new(vec![0f32; cout], [cout]),
                device,
            ));
            layer
        };
        let mut convs = Vec::new();
        let mut pool = None;
        let mut impala = false;
        let hidden_sizes: Vec<usize>;
        let flat = match &config.architecture {
            Architecture::Mlp { hidden } => {
                hidden_sizes = hidden.iter().map(|&h| scaled(h, w)).collect();
                in_c * in_h.max(1) * in_w.max(1)
            }
            Architecture::MinAtarCnn { hidden } => {
                let c = scaled(16, w);
                convs.push(conv(rng, in_c, c, 3, 1, false));
                hidden_sizes = hidden.iter().map(|&h| scaled(h, w)).collect();
                c * in_h * in_w
            }
            Architecture::NatureCnn => {
                let (c1, c2, c3) = (scaled(32, w), scaled(64, w), scaled(64, w));
                convs.push(conv(rng, in_c, c1, 8, 4, false));
                convs.push(conv(rng, c1, c2, 4, 2, false));
                convs.push(conv(rng, c2, c3, 3, 1, false));
                hidden_sizes = vec![scaled(512, w)];
                let (mut h, mut wd) = (in_h, in_w);
                for s in [4, 2, 1] {
                    h = h.div_ceil(s);
                    wd = wd.div_ceil(s);
                }
                c3 * h * wd
            }
            Architecture::ImpalaResNet => {
                impala = true;
                let mut cin = in_c;
                let (mut h, mut wd) = (in_h, in_w);
                for base in [16, 32, 32] {
                    let c = scaled(base, w);
                    convs.push(conv(rng, cin, c, 3, 1, false));
                    for _ in 0..4 {
                        convs.push(conv(rng, c, c, 3, 1, true));
                    }
                    cin = c;
                    h = h.div_ceil(2);
                    wd = wd.div_ceil(2);
                }
                pool = Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Same)
                        .init(),
                );
                hidden_sizes = vec![512];
                cin * h * wd
            }
        };
        let linear = |rng: &mut dyn rand::RngCore, din: usize, dout: usize| {
            let mut layer = LinearConfig::new(din, dout).init(device);
            let values = xavier_uniform(rng, din * dout, din, dout);
            layer.weight = Param::from_data(TensorData::new(values, [din, dout]), device);
            layer.bias = Some(Param::from_data(
                TensorData::new(vec![0f32; dout], [dout]),
                device,
            ));
            layer
        };
        let mut dense = Vec::new();
        let mut din = flat;
        for &h in &hidden_sizes {
            dense.push(linear(rng, din, h));
            din = h;
        }
        let head = linear(rng, din, config.outputs);
        let net = QNetwork {
            convs,
            dense,
            head,
            pool,
            impala,
            im2col: crate::is_cpu(device),
            input_scale: config.input_scale,
            normalize: config.normalize_features,
            in_c,
            in_h,
            in_w,
        };
        // Parameter ids number the parameters in order, so that saved networks (and thus the
        // outputs of a seeded run) are byte-identical from run to run.
        net.map(&mut SequentialIds(0))
    }

    /// Q-values (or C51 logits) for a batch of flattened observations `[batch, c·h·w]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.run(x, None)
    }

    /// Like [`forward`](Self::forward), also returning every hidden layer's activations
    /// (convolution outputs flattened per sample as `[batch, channels·h·w]`).
    pub fn forward_with_activations(&self, x: Tensor<2>) -> (Tensor<2>, Activations) {
        let mut acts = Vec::new();
        let out = self.run(x, Some(&mut acts));
        (out, Activations { layers: acts })
    }

    /// The features fed to the head `[batch, features]`: the last hidden layer's post-ReLU
    /// output (flattened for a conv torso), L2-normalised per sample when the network
    /// normalises features.
    pub fn features(&self, x: Tensor<2>) -> Tensor<2> {
        self.torso(x, None)
    }

    fn run(&self, x: Tensor<2>, acts: Option<&mut Vec<Layer>>) -> Tensor<2> {
        self.head.forward(self.torso(x, acts))
    }

    fn torso(&self, x: Tensor<2>, mut acts: Option<&mut Vec<Layer>>) -> Tensor<2> {
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
        let record4 =
            |name: &str, t: &Tensor<4>, record: &mut dyn FnMut(&str, &Tensor<2>, Vec<usize>)| {
                let [b, c, h, w] = t.dims();
                record(name, &t.clone().reshape([b, c * h * w]), vec![b, c, h, w]);
            };
        if !self.convs.is_empty() {
            let mut y = x.reshape([batch, self.in_c, self.in_h, self.in_w]);
            if self.impala {
                let pool = self.pool.as_ref().expect("impala network has a pool");
                for s in 0..3 {
                    y = pool.forward(if s == 0 {
                        self.input_conv(y)
                    } else {
                        self.conv(5 * s, y)
                    });
                    for b in 0..2 {
                        let skip = y.clone();
                        let i = 5 * s + 1 + 2 * b;
                        let h = relu(self.conv(i, relu(y)));
                        record4(&names[i], &h, &mut record);
                        y = self.conv(i + 1, h) + skip;
                    }
                }
                y = relu(y);
                // The post-ReLU stack output is the only activation of the last conv to record.
                record4(&names[self.convs.len() - 1], &y, &mut record);
            } else {
                for (i, name) in names.iter().enumerate().take(self.convs.len()) {
                    y = relu(if i == 0 {
                        self.input_conv(y)
                    } else {
                        self.conv(i, y)
                    });
                    record4(name, &y, &mut record);
                }
            }
            let [b, c, h, w] = y.dims();
            x = y.reshape([b, c * h * w]);
        }
        for (i, layer) in self.dense.iter().enumerate() {
            x = relu(layer.forward(x));
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
        let mut names = Vec::new();
        if self.impala {
            for s in 0..3 {
                names.push(format!("stack{s}/conv"));
                for b in 0..2 {
                    names.push(format!("stack{s}/block{b}/conv1"));
                    names.push(format!("stack{s}/block{b}/conv2"));
                }
            }
        } else {
            names.extend((1..=self.convs.len()).map(|i| format!("conv{i}")));
        }
        names.extend((1..=self.dense.len()).map(|i| format!("dense{i}")));
        names.push("head".to_string());
        names
    }

    /// Names and shapes of every weight kernel (biases are never pruned).
    pub fn kernels(&self) -> Vec<KernelInfo> {
        let shapes = self
            .convs
            .iter()
            .map(|c| c.weight.val().dims().to_vec())
            .chain(self.dense.iter().map(|d| d.weight.val().dims().to_vec()))
            .chain(std::iter::once(self.head.weight.val().dims().to_vec()));
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
            .chain(self.head.bias.as_ref());
        out.extend(biases.map(|b| to_vec(b.val())));
        out
    }

    /// Weight layers (kernels), head included: convolutions, dense layers, head.
    pub fn num_layers(&self) -> usize {
        self.convs.len() + self.dense.len() + 1
    }

    /// Index of layer `layer`'s kernel among the parameters in the module's visiting order
    /// (the optimizer's order); its bias is the next one.
    pub fn kernel_param(layer: usize) -> usize {
        2 * layer
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
            .collect()
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

    /// A kernel for layer `layer` drawn from `rng` with the layer's initializer as at
    /// construction (xavier uniform; lecun normal for the Impala residual convolutions).
    pub fn init_kernel(&self, layer: usize, rng: &mut dyn rand::RngCore) -> Vec<f32> {
        let (fan_in, fan_out) = self.fans(layer);
        let n = self.kernels()[layer].shape.iter().product();
        let lecun = self.impala && layer < self.convs.len() && !layer.is_multiple_of(5);
        if lecun {
            lecun_normal(rng, n, fan_in)
        } else {
            xavier_uniform(rng, n, fan_in, fan_out)
        }
    }

    /// The layers ReDo may recycle, each with the layer reading its neurons: every hidden
    /// layer, never the head; for the Impala ResNet only the first convolution of each
    /// residual block and the dense layer (Dopamine's `Conv_1`, `Conv_3`, `Dense` filter:
    /// their outputs feed exactly one next layer). Activations of each are recorded under its
    /// name by [`forward_with_activations`](Self::forward_with_activations).
    pub fn recycle_sites(&self) -> Vec<RecycleSite> {
        let kernels = self.kernels();
        let nc = self.convs.len();
        let mut sites = Vec::new();
        let conv_layers: Vec<usize> = if self.impala {
            (0..3)
                .flat_map(|s| (0..2).map(move |b| 5 * s + 1 + 2 * b))
                .collect()
        } else {
            (0..nc).collect()
        };
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

    /// The network with some parameters replaced: `values` maps a parameter's index in the
    /// visiting order (see [`kernel_param`](Self::kernel_param)) to its new flat values.
    /// Parameters stay trainable leaves on their device.
    pub fn with_parameters(self, values: &std::collections::BTreeMap<usize, Vec<f32>>) -> Self {
        self.map(&mut ReplaceParams { values, index: 0 })
    }

    /// Multiplies every kernel element-wise by its mask (`masks[i]` flattened like
    /// [`kernel_values`](Self::kernel_values); `None` leaves the kernel dense). Biases are untouched.
    pub fn apply_masks(self, masks: &[Option<Tensor<1>>]) -> Self {
        let QNetwork {
            convs,
            dense,
            head,
            pool,
            impala,
            im2col,
            input_scale,
            normalize,
            in_c,
            in_h,
            in_w,
        } = self;
        let mut masks = masks.iter();
        let mut apply4 = |mut c: Conv2d| {
            if let Some(Some(m)) = masks.next() {
                c.weight = c.weight.map(|w| mask_param(w, m));
            }
            c
        };
        let convs: Vec<Conv2d> = convs.into_iter().map(&mut apply4).collect();
        let mut apply2 = |mut d: Linear| {
            if let Some(Some(m)) = masks.next() {
                d.weight = d.weight.map(|w| mask_param(w, m));
            }
            d
        };
        let dense: Vec<Linear> = dense.into_iter().map(&mut apply2).collect();
        let head = apply2(head);
        QNetwork {
            convs,
            dense,
            head,
            pool,
            impala,
            im2col,
            input_scale,
            normalize,
            in_c,
            in_h,
            in_w,
        }
    }

    /// The first convolution, whose input is data (never differentiated): on CPU its im2col
    /// patches are gathered in one pass over the input's values instead of k·k tensor slices and
    /// a concatenation, which dominated the MinAtar learning step (benches/steps.rs).
    fn input_conv(&self, x: Tensor<4>) -> Tensor<4> {
        if !self.im2col || x.is_require_grad() {
            return self.conv(0, x);
        }
        conv_gathered(&self.convs[0], x)
    }

    fn conv(&self, i: usize, x: Tensor<4>) -> Tensor<4> {
        if self.im2col {
            conv_im2col(&self.convs[i], x)
        } else {
            self.convs[i].forward(x)
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

/// A layer ReDo may recycle and how the next layer reads it (see [`QNetwork::recycle_sites`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RecycleSite {
    /// Its index in [`QNetwork::kernels`] order.
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

/// Replaces the values of the parameters named by visiting-order index.
struct ReplaceParams<'a> {
    values: &'a std::collections::BTreeMap<usize, Vec<f32>>,
    index: usize,
}

impl burn::module::ModuleMapper for ReplaceParams<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let index = self.index;
        self.index += 1;
        let Some(values) = self.values.get(&index) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let (autodiff, require_grad) = (tensor.is_autodiff(), tensor.is_require_grad());
        let shape = tensor.shape();
        assert_eq!(
            values.len(),
            shape.num_elements(),
            "new values for parameter {index} do not fit its shape"
        );
        let device = tensor.inner().device();
        let fresh = Tensor::<D>::from_data(TensorData::new(values.clone(), shape), &device);
        Param::from_mapped_value(id, crate::adam::leaf(fresh, autodiff, require_grad), mapper)
    }
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

/// A SAME-padded convolution as im2col + one batched matmul: the k·k shifted (strided) views
/// of the padded input are stacked into patches `[batch, c·k·k, out_h·out_w]` (ordered like the
/// kernel's `[out, in, kh, kw]` layout) and multiplied by the kernel viewed as `[out, c·k·k]`.
/// Same values as `Conv2d::forward` with `PaddingConfig2d::Same`, differentiable through
/// burn's slice, cat and matmul.
fn conv_im2col(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [out, _, kh, kw] = conv.weight.dims();
    let [sh, sw] = conv.stride;
    let (ho, wo) = (h.div_ceil(sh), w.div_ceil(sw));
    let pad_h = ((ho - 1) * sh + kh).saturating_sub(h);
    let pad_w = ((wo - 1) * sw + kw).saturating_sub(w);
    let x = x.pad(
        [
            (pad_h / 2, pad_h - pad_h / 2),
            (pad_w / 2, pad_w - pad_w / 2),
        ],
        PadMode::Constant(0.0),
    );
    let mut cols = Vec::with_capacity(kh * kw);
    for i in 0..kh {
        for j in 0..kw {
            let view = x.clone().slice([
                Slice::from(0..b),
                Slice::from(0..c),
                Slice::with_step(
                    i as isize,
                    Some((i + (ho - 1) * sh + 1) as isize),
                    sh as isize,
                ),
                Slice::with_step(
                    j as isize,
                    Some((j + (wo - 1) * sw + 1) as isize),
                    sw as isize,
                ),
            ]);
            cols.push(view.reshape([b, c, 1, ho * wo]));
        }
    }
    let k = c * kh * kw;
    let patches = Tensor::cat(cols, 2).reshape([b, k, ho * wo]);
    conv_matmul(conv, patches, [b, out, ho, wo])
}

/// A convolution of data (no gradient flows into `x`) as one GEMM over every output position
/// of the batch, `[b·ho·wo, k] × [k, out]`, its im2col patches gathered in one pass over `x`.
fn conv_gathered(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [out, _, kh, kw] = conv.weight.dims();
    let geometry = Im2col::same(c, h, w, kh, kw, conv.stride);
    let device = x.device();
    let (k, hw) = (geometry.rows(), geometry.cols());
    let patches = Tensor::<2>::from_data(
        TensorData::new(geometry.patches_by_position(&to_vec(x), b), [b * hw, k]),
        &device,
    );
    let kernel = conv.weight.val().reshape([out, k]).transpose();
    let mut y = patches.matmul(kernel);
    if let Some(bias) = &conv.bias {
        y = y + bias.val().reshape([1, out]);
    }
    y.reshape([b, hw, out])
        .swap_dims(1, 2)
        .reshape([b, out, geometry.ho, geometry.wo])
}

/// The kernel viewed as `[out, c·k·k]` times im2col `patches` `[b, c·k·k, out_h·out_w]`, plus
/// the bias, shaped `[b, out, out_h, out_w]`.
fn conv_matmul(conv: &Conv2d, patches: Tensor<3>, shape: [usize; 4]) -> Tensor<4> {
    let [b, out, ho, wo] = shape;
    let [_, k, _] = patches.dims();
    let kernel: Tensor<3> = conv.weight.val().reshape([1, out, k]).expand([b, out, k]);
    let mut y = kernel.matmul(patches);
    if let Some(bias) = &conv.bias {
        y = y + bias.val().reshape([1, out, 1]);
    }
    y.reshape([b, out, ho, wo])
}

/// Geometry of a SAME-padded strided convolution's im2col, for gathering patches from plain
/// values (row `ci·kh·kw + i·kw + j` of a sample's patch matrix, like the kernel's
/// `[out, in, kh, kw]` layout; column `oy·wo + ox`).
struct Im2col {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    pad_top: usize,
    pad_left: usize,
    ho: usize,
    wo: usize,
}

impl Im2col {
    fn same(c: usize, h: usize, w: usize, kh: usize, kw: usize, stride: [usize; 2]) -> Self {
        let (ho, wo) = (h.div_ceil(stride[0]), w.div_ceil(stride[1]));
        let pad_h = ((ho - 1) * stride[0] + kh).saturating_sub(h);
        let pad_w = ((wo - 1) * stride[1] + kw).saturating_sub(w);
        Im2col {
            c,
            h,
            w,
            kh,
            kw,
            stride,
            pad_top: pad_h / 2,
            pad_left: pad_w / 2,
            ho,
            wo,
        }
    }

    fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn cols(&self) -> usize {
        self.ho * self.wo
    }

    /// Patches `[batch·cols, rows]` (one row per output position) of `batch` samples.
    fn patches_by_position(&self, x: &[f32], batch: usize) -> Vec<f32> {
        let (rows, cols) = (self.rows(), self.cols());
        let mut out = vec![0f32; batch * rows * cols];
        let sample_len = self.c * self.h * self.w;
        for (sample, dst) in x
            .chunks_exact(sample_len)
            .zip(out.chunks_exact_mut(rows * cols))
        {
            for oy in 0..self.ho {
                for ox in 0..self.wo {
                    let patch = &mut dst[(oy * self.wo + ox) * rows..][..rows];
                    for ci in 0..self.c {
                        let plane = &sample[ci * self.h * self.w..(ci + 1) * self.h * self.w];
                        for i in 0..self.kh {
                            let y = (oy * self.stride[0] + i).wrapping_sub(self.pad_top);
                            if y >= self.h {
                                continue;
                            }
                            let src = &plane[y * self.w..(y + 1) * self.w];
                            let base = (ci * self.kh + i) * self.kw;
                            for j in 0..self.kw {
                                let xx = (ox * self.stride[1] + j).wrapping_sub(self.pad_left);
                                if xx < self.w {
                                    patch[base + j] = src[xx];
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// A tensor's values as `f32`s (row-major).
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 tensor")
}

/// `w ⊙ mask`, keeping the result a trainable leaf (on autodiff devices).
fn mask_param<const D: usize>(w: Tensor<D>, mask: &Tensor<1>) -> Tensor<D> {
    let autodiff = w.is_autodiff();
    let require_grad = w.is_require_grad();
    let w = w.inner();
    let m: Tensor<D> = mask.clone().reshape(w.shape());
    let mut out = w * m;
    if autodiff {
        out = out.autodiff();
    }
    if require_grad {
        out = out.require_grad();
    }
    out
}

/// Flax/Glorot `xavier_uniform`: U(±sqrt(6 / (fan_in + fan_out))).
pub fn xavier_uniform(
    rng: &mut dyn rand::RngCore,
    n: usize,
    fan_in: usize,
    fan_out: usize,
) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..n)
        .map(|_| rng.random_range(-limit..limit) as f32)
        .collect()
}

/// Flax `lecun_normal`: a normal truncated at ±2σ with variance 1/fan_in after truncation
/// (σ = sqrt(1/fan_in) / 0.87962566, as in `jax.nn.initializers.variance_scaling`).
pub fn lecun_normal(rng: &mut dyn rand::RngCore, n: usize, fan_in: usize) -> Vec<f32> {
    let std = (1.0 / fan_in as f64).sqrt() / 0.879_625_66;
    (0..n)
        .map(|_| {
            loop {
                // Box-Muller; rejection keeps the truncated part.
                let u1: f64 = rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = rng.random();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                if z.abs() <= 2.0 {
                    break (z * std) as f32;
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    fn build(architecture: Architecture, width: f64, input: Vec<usize>) -> QNetwork {
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
        // FACTS.md §3.1: SAME padding flattens to 7,744; kernels total 4,045,824 for 6 actions.
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
        // Conv kernels: (4·16 + 4·16·16 + 16·32 + 4·32·32 + 32·32 + 4·32·32)·9 = 97,344 (FACTS.md
        // §3.2 says 86,016, which no channel count of this architecture gives); fc1 (3872, 512).
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
    fn im2col_convolution_matches_burns_kernel() {
        let device = crate::device("cpu").unwrap();
        let mut rng = Pcg64::seed_from_u64(3);
        for (cin, cout, k, stride, hw) in [
            (4, 16, 3, 1, 10),
            (4, 8, 8, 4, 84),
            (8, 6, 4, 2, 21),
            (3, 5, 3, 1, 11),
        ] {
            let mut conv = Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Same)
                .init(&device);
            conv.bias = Some(Param::from_data(
                TensorData::new(xavier_uniform(&mut rng, cout, 1, 1), [cout]),
                &device,
            ));
            let n = 2 * cin * hw * hw;
            let x = Tensor::<4>::from_data(
                TensorData::new(xavier_uniform(&mut rng, n, 1, 1), [2, cin, hw, hw]),
                &device,
            );
            let gathered = to_vec(conv_gathered(&conv, x.clone()));
            let (a, b) = (
                to_vec(conv.forward(x.clone())),
                to_vec(conv_im2col(&conv, x)),
            );
            assert_eq!(b, gathered, "gathered patches differ from sliced ones");
            assert_eq!(a.len(), b.len());
            let err = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 1e-5, "k={k} s={stride}: max error {err}");
        }
    }

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
