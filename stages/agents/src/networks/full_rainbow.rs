//! The head options of Dopamine's `FullRainbowNetwork` (`dopamine/jax/networks.py` at
//! google/dopamine@1093179), which the Atari-100k agents DrQ(ε) and DER use on any torso:
//!
//! - dueling (Wang et al. 2016, arXiv 1511.06581): a value stream `V` `[atoms]` beside the
//!   advantage stream `A` `[actions, atoms]` (the network's `head`), combined as
//!   `logits = V + A − mean_a A`;
//! - noisy (see [`super::noisy`]): the hidden dense layers and both streams are noisy layers.
//!
//! A network without these options has no [`FullRainbowHead`] at all, so its parameters, saved
//! records and outputs are exactly those it had before the options existed.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::init;
use super::noisy::{self, LayerNoise, NoisySigma};

/// Which head options a network has (all off: the plain head).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadConfig {
    /// A dueling value stream.
    pub dueling: bool,
    /// Noisy hidden dense layers and streams.
    pub noisy: bool,
    /// Outputs per action (1 for Q-values, the atoms for C51): the value stream's width.
    pub atoms: usize,
}

impl HeadConfig {
    /// Whether this is the plain head (no extra parameters).
    pub fn is_plain(&self) -> bool {
        !self.dueling && !self.noisy
    }
}

/// The extra parameters: the value stream and the `σ` of every noisy layer.
#[derive(Module, Debug)]
pub struct FullRainbowHead {
    /// Dueling's value stream `[features, atoms]`.
    pub value: Option<Linear>,
    /// `σ` of the noisy layers in order: the hidden dense layers, the head, the value stream.
    pub sigmas: Vec<NoisySigma>,
    pub atoms: usize,
}

/// Noise for every noisy layer of a network, in [`FullRainbowHead::sigmas`] order.
#[derive(Clone, Debug, PartialEq)]
pub struct Noise {
    pub layers: Vec<LayerNoise>,
}

impl FullRainbowHead {
    /// The value stream (xavier uniform, as Dopamine's `nn.Dense`; `μ`-init when noisy) and
    /// the `σ`s of the noisy layers, whose `(fan_in, fan_out)` are `noisy_layers` without the
    /// value stream (added here).
    pub fn new(
        config: &HeadConfig,
        features: usize,
        noisy_layers: &[(usize, usize)],
        rng: &mut dyn rand::RngCore,
        device: &Device,
    ) -> Self {
        let value = config
            .dueling
            .then(|| init::linear(rng, device, features, config.atoms));
        let mut fans = noisy_layers.to_vec();
        if config.dueling {
            fans.push((features, config.atoms));
        }
        let sigmas = if config.noisy {
            fans.iter()
                .map(|&(i, o)| NoisySigma::new(device, i, o))
                .collect()
        } else {
            Vec::new()
        };
        FullRainbowHead {
            value,
            sigmas,
            atoms: config.atoms,
        }
    }

    pub fn noisy(&self) -> bool {
        !self.sigmas.is_empty()
    }

    /// The `σ` of noisy layer `i` (`None` when the network is not noisy).
    pub fn sigma(&self, i: usize) -> Option<&NoisySigma> {
        self.sigmas.get(i)
    }

    /// The head's output `[batch, actions·atoms]` from the features, with the advantage
    /// stream `advantage` (the network's head), noisy layers `first_noisy..` of `noise`.
    pub fn forward(
        &self,
        advantage: &Linear,
        x: Tensor<2>,
        first_noisy: usize,
        noise: Option<&Noise>,
    ) -> Tensor<2> {
        let layer = |k: usize| noise.map(|n| &n.layers[k]);
        let stream = |lin: &Linear, k: usize, x: Tensor<2>| match self.sigma(k) {
            Some(sigma) => noisy::forward(lin, sigma, x, layer(k)),
            None => lin.forward(x),
        };
        let adv = stream(advantage, first_noisy, x.clone());
        let Some(value) = &self.value else {
            return adv;
        };
        let v = stream(value, first_noisy + 1, x);
        let [batch, width] = adv.dims();
        let atoms = self.atoms;
        let adv = adv.reshape([batch, width / atoms, atoms]);
        let mean = adv.clone().mean_dim(1);
        let v = v.reshape([batch, 1, atoms]);
        (v + adv - mean).reshape([batch, width])
    }

    /// Fresh noise for every noisy layer (`None` when the network is not noisy).
    pub fn sample_noise(&self, rng: &mut impl rand::Rng) -> Option<Noise> {
        if !self.noisy() {
            return None;
        }
        let layers = self
            .sigmas
            .iter()
            .map(|s| {
                let [i, o] = s.weight.val().dims();
                LayerNoise::sample(rng, i, o)
            })
            .collect();
        Some(Noise { layers })
    }
}

/// A noisy layer's `μ` drawn as Dopamine's `mu_init` (kernel and bias U(±1/sqrt(fan_in))).
pub fn noisy_mu(rng: &mut dyn rand::RngCore, device: &Device, din: usize, dout: usize) -> Linear {
    use burn::module::Param;
    use burn::tensor::TensorData;
    let mut layer = init::linear(rng, device, din, dout);
    layer.weight = Param::from_data(
        TensorData::new(noisy::mu_init(rng, din * dout, din), [din, dout]),
        device,
    );
    layer.bias = Some(Param::from_data(
        TensorData::new(noisy::mu_init(rng, dout, din), [dout]),
        device,
    ));
    layer
}
