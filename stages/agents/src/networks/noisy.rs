//! Noisy linear layers with factorised Gaussian noise (Fortunato et al. 2018, arXiv 1706.10295,
//! eqs. 10-11), as Dopamine's `NoisyNetwork` (`dopamine/jax/networks.py` at
//! google/dopamine@1093179), used by DER:
//!
//! - the effective layer is `w = μ_w + σ_w ⊙ (f(p) f(q)ᵀ)`, `b = μ_b + σ_b ⊙ f(q)`, with
//!   `p ~ N(0, 1)^in`, `q ~ N(0, 1)^out` and `f(x) = sign(x)·sqrt(|x|)`;
//! - `μ` (kernel and bias) is drawn from U(±1/sqrt(fan_in)); `σ` starts at the constant
//!   `0.1/sqrt(fan_in)` (Dopamine's 0.1, not Fortunato's 0.5);
//! - noise is off in evaluation (`eval_mode`: `w = μ_w`), which is the plain layer `μ`.
//!
//! The `μ` part is the layer's ordinary [`Linear`] (so pruning, probes and checkpoints see it
//! as any dense layer) and [`NoisySigma`] holds `σ`. One noise draw serves the whole batch, as
//! in Dopamine, where a forward pass takes one key. Deviation: Dopamine draws `p` and `q` of
//! every layer from the same key; here each layer and each factor draws its own.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;

/// The `σ` of one noisy layer: kernel `[in, out]` (burn's `Linear` layout) and bias `[out]`.
#[derive(Module, Debug)]
pub struct NoisySigma {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl NoisySigma {
    /// Dopamine's `sigma_init`: every entry `0.1/sqrt(fan_in)`.
    pub fn new(device: &Device, fan_in: usize, fan_out: usize) -> Self {
        let s = 0.1 / (fan_in as f32).sqrt();
        NoisySigma {
            weight: Param::from_data(
                TensorData::new(vec![s; fan_in * fan_out], [fan_in, fan_out]),
                device,
            ),
            bias: Param::from_data(TensorData::new(vec![s; fan_out], [fan_out]), device),
        }
    }
}

/// Dopamine's `mu_init`: `n` values from U(±1/sqrt(fan_in)), for kernels and biases alike.
pub fn mu_init(rng: &mut dyn rand::RngCore, n: usize, fan_in: usize) -> Vec<f32> {
    let limit = 1.0 / (fan_in as f64).sqrt();
    (0..n)
        .map(|_| rng.random_range(-limit..limit) as f32)
        .collect()
}

/// One layer's factorised noise, already through `f`: `input` `[in]`, `output` `[out]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNoise {
    pub input: Vec<f32>,
    pub output: Vec<f32>,
}

impl LayerNoise {
    /// Fresh noise for a layer `[fan_in, fan_out]`.
    pub fn sample(rng: &mut impl Rng, fan_in: usize, fan_out: usize) -> Self {
        let mut f = |n: usize| (0..n).map(|_| scaled(standard_normal(rng))).collect();
        LayerNoise {
            input: f(fan_in),
            output: f(fan_out),
        }
    }
}

/// `f(x) = sign(x)·sqrt(|x|)`.
fn scaled(x: f64) -> f32 {
    (x.signum() * x.abs().sqrt()) as f32
}

/// A standard normal draw (Box-Muller).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The noisy layer `(mu, sigma)` on `x` `[batch, in]`: with `noise`, the perturbed layer; with
/// `None` (evaluation), exactly `mu`.
pub fn forward(
    mu: &Linear,
    sigma: &NoisySigma,
    x: Tensor<2>,
    noise: Option<&LayerNoise>,
) -> Tensor<2> {
    let Some(noise) = noise else {
        return mu.forward(x);
    };
    let device = x.device();
    let (din, dout) = (noise.input.len(), noise.output.len());
    let p = Tensor::<2>::from_data(TensorData::new(noise.input.clone(), [din, 1]), &device);
    let q = Tensor::<2>::from_data(TensorData::new(noise.output.clone(), [1, dout]), &device);
    let w = mu.weight.val() + sigma.weight.val() * p.matmul(q.clone());
    let b = sigma.bias.val() * q.reshape([dout]);
    let b = match &mu.bias {
        Some(mu_b) => mu_b.val() + b,
        None => b,
    };
    x.matmul(w) + b.unsqueeze::<2>()
}
