//! Weight initialisers, drawn from the caller's seeded stream (never burn's global RNG), and
//! the layer constructors that use them: kernels as Flax initialises them, biases zero
//! (Dopamine's JAX networks, `dopamine/jax/networks.py` at google/dopamine@1093179).

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, TensorData};
use rand::Rng;

/// How a layer's kernel is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Flax's `xavier_uniform`, Dopamine's choice for every layer it declares itself.
    XavierUniform,
    /// Flax's default `lecun_normal`, for layers built without a `kernel_init` (the residual
    /// convolutions of the Impala ResNet).
    LecunNormal,
}

impl Init {
    /// `n` kernel values for a layer with these fans.
    pub fn draw(
        self,
        rng: &mut dyn rand::RngCore,
        n: usize,
        fan_in: usize,
        fan_out: usize,
    ) -> Vec<f32> {
        match self {
            Init::XavierUniform => xavier_uniform(rng, n, fan_in, fan_out),
            Init::LecunNormal => lecun_normal(rng, n, fan_in),
        }
    }
}

/// A SAME-padded `k×k` convolution with stride `s`, its kernel drawn with `init`, bias zero.
pub(super) fn conv(
    rng: &mut dyn rand::RngCore,
    device: &Device,
    [cin, cout]: [usize; 2],
    k: usize,
    s: usize,
    init: Init,
) -> Conv2d {
    let mut layer = Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([s, s])
        .with_padding(PaddingConfig2d::Same)
        .init(device);
    let values = init.draw(rng, cout * cin * k * k, cin * k * k, cout * k * k);
    layer.weight = Param::from_data(TensorData::new(values, [cout, cin, k, k]), device);
    layer.bias = Some(Param::from_data(
        TensorData::new(vec![0f32; cout], [cout]),
        device,
    ));
    layer
}

/// A dense layer `[din, dout]` (burn's layout), xavier-uniform kernel, bias zero.
pub(super) fn linear(
    rng: &mut dyn rand::RngCore,
    device: &Device,
    din: usize,
    dout: usize,
) -> Linear {
    let mut layer = LinearConfig::new(din, dout).init(device);
    let values = xavier_uniform(rng, din * dout, din, dout);
    layer.weight = Param::from_data(TensorData::new(values, [din, dout]), device);
    layer.bias = Some(Param::from_data(
        TensorData::new(vec![0f32; dout], [dout]),
        device,
    ));
    layer
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
