//! The recycling baselines the paper compares pruning with, as [`UpdateHook`]s: Reset
//! (Nikishin et al. 2022) and ReDo (Sokar et al. 2023), following Dopamine's ReDo lab
//! (FACTS.md §5.2, §5.3). The schedules and index sets come from `prunus-sparsity`
//! ([`ResetConfig`], [`RedoConfig`], [`redo::Recycle`]); this module applies them to the
//! agent's network and Adam state through [`Agent::operate`].
//!
//! Both act after gradient step `t` (counted from 0) when their schedule fires at `t`
//! (`t > 0`, `t % period == 0`), before pruning masks are re-applied (the trainer runs them
//! ahead of the GMP hook), so re-drawn weights at pruned positions are zeroed again at once.
//! Their random draws come from their own seeded streams, saved with their state, so a resumed
//! run continues bit for bit.

use burn::tensor::{Tensor, TensorData};
use prunus_sparsity::redo::{self, Recycle};
use prunus_sparsity::{RedoConfig, ResetConfig};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use crate::agent::{Agent, Surgery};
use crate::networks::{QNetwork, to_vec, xavier_uniform};
use crate::replay::Replay;
use crate::train::UpdateHook;

/// Periodic re-initialisation of the last layers.
pub struct ResetHook {
    config: ResetConfig,
    state: ResetState,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ResetState {
    rng: Pcg64,
    /// Resets since the last report, and the step of the latest.
    unreported: u64,
    last_step: u64,
    total: u64,
}

impl ResetHook {
    /// A hook for a network of `num_layers` weight layers; `seed` seeds its draws.
    pub fn new(config: ResetConfig, seed: u64, num_layers: usize) -> Result<Self, String> {
        if config.last_layers == 0 || config.last_layers > num_layers {
            return Err(format!(
                "reset.layers must be between 1 and the network's {num_layers} layers, got {}",
                config.last_layers
            ));
        }
        Ok(ResetHook {
            config,
            state: ResetState {
                rng: Pcg64::seed_from_u64(seed ^ 0x7265_7365_7400_0000),
                unreported: 0,
                last_step: 0,
                total: 0,
            },
        })
    }

    /// Re-initialises the last layers now: kernels from their initializer, biases 0, their
    /// Adam moments 0 (the step count stays). Returns the layers' names.
    pub fn reset(&mut self, agent: &mut Agent) -> Vec<String> {
        let net = agent.network();
        let kernels = net.kernels();
        let biases = net.bias_values();
        let mut surgery = Surgery::default();
        let mut names = Vec::new();
        for layer in self.config.layers(net.num_layers()) {
            let p = QNetwork::kernel_param(layer);
            surgery
                .values
                .insert(p, net.init_kernel(layer, &mut self.state.rng));
            surgery.values.insert(p + 1, vec![0.0; biases[layer].len()]);
            surgery.zero_moments.insert(p, None);
            surgery.zero_moments.insert(p + 1, None);
            names.push(kernels[layer].name.clone());
        }
        agent.operate(&surgery);
        names
    }
}

impl UpdateHook for ResetHook {
    fn after_update(&mut self, step: u64, agent: &mut Agent, _replay: &Replay) {
        if self.config.should_reset(step) {
            self.reset(agent);
            self.state.unreported += 1;
            self.state.total += 1;
            self.state.last_step = step;
        }
    }

    fn report(&mut self) -> Option<String> {
        let n = std::mem::take(&mut self.state.unreported);
        (n > 0).then(|| {
            format!(
                "reset: re-initialised the last {} layers {n} times (latest after grad step {}; {} resets so far)",
                self.config.last_layers, self.state.last_step, self.state.total
            )
        })
    }

    fn save(&self) -> Vec<u8> {
        bincode::serialize(&self.state).expect("reset state serializes")
    }

    fn restore(&mut self, state: &[u8], _device: &burn::tensor::Device) -> Result<(), String> {
        self.state =
            bincode::deserialize(state).map_err(|e| format!("corrupt reset state: {e}"))?;
        Ok(())
    }
}

/// What one ReDo recycle did to one layer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerRecycle {
    pub name: String,
    /// The τ-dormant neurons, recycled.
    pub dormant: Vec<usize>,
    /// Neurons in the layer.
    pub neurons: usize,
}

/// What one ReDo recycle did, per recyclable layer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecycleOutcome {
    pub layers: Vec<LayerRecycle>,
}

impl RecycleOutcome {
    /// Neurons recycled.
    pub fn recycled(&self) -> usize {
        self.layers.iter().map(|l| l.dormant.len()).sum()
    }

    /// Neurons scored.
    pub fn neurons(&self) -> usize {
        self.layers.iter().map(|l| l.neurons).sum()
    }

    /// The layer named `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerRecycle> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// ReDo: periodically recycle τ-dormant neurons.
pub struct RedoHook {
    config: RedoConfig,
    /// Replay states sampled for the neuron scores.
    batch: usize,
    state: RedoState,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RedoState {
    rng: Pcg64,
    /// Recycles and neurons recycled since the last report; the latest recycle.
    unreported: u64,
    unreported_neurons: u64,
    last: Option<(u64, RecycleOutcome)>,
    total_neurons: u64,
}

impl RedoHook {
    pub fn new(config: RedoConfig, batch: usize, seed: u64) -> Self {
        RedoHook {
            config,
            batch: batch.max(1),
            state: RedoState {
                rng: Pcg64::seed_from_u64(seed ^ 0x7265_646f_0000_0000),
                unreported: 0,
                unreported_neurons: 0,
                last: None,
                total_neurons: 0,
            },
        }
    }

    /// Scores the hidden neurons on `batch` replay states and recycles the τ-dormant ones now:
    /// incoming weights re-drawn (xavier uniform, as Dopamine), bias 0, outgoing weights 0,
    /// Adam moments of all those entries 0. `None` when replay has nothing to sample.
    pub fn recycle(&mut self, agent: &mut Agent, replay: &Replay) -> Option<RecycleOutcome> {
        let batch = replay.sample(self.batch, &mut self.state.rng)?;
        let n = batch.actions.len();
        let states = Tensor::<2>::from_data(
            TensorData::new(batch.states, [n, replay.state_len()]),
            agent.device(),
        );
        Some(self.recycle_on(agent, states))
    }

    /// [`recycle`](Self::recycle) with scores taken on the given states `[batch, state]`.
    pub fn recycle_on(&mut self, agent: &mut Agent, states: Tensor<2>) -> RecycleOutcome {
        let net = agent.network();
        let (_, acts) = net.forward_with_activations(states);
        let kernels = net.kernels();
        let mut kernel_values = net.kernel_values();
        let mut bias_values = net.bias_values();
        let mut zero: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        let mut changed = std::collections::BTreeSet::new();
        let mut outcome = RecycleOutcome::default();
        // Scores first, from the network as it is (Dopamine computes every layer's mask from
        // the same forward pass), then the recycles in layer order.
        for site in net.recycle_sites() {
            let layer = acts
                .layers
                .iter()
                .find(|l| l.name == site.name)
                .expect("every recyclable layer records its activations");
            let scores = redo::neuron_scores(&to_vec(layer.values.clone()), &layer.shape, 1);
            let dead = redo::dormant(&scores, self.config.tau);
            outcome.layers.push(LayerRecycle {
                name: site.name.clone(),
                dormant: dead.clone(),
                neurons: scores.len(),
            });
            if dead.is_empty() {
                continue;
            }
            let recycle = Recycle::new(
                &dead,
                &kernels[site.layer].shape,
                site.out_axis,
                &kernels[site.next].shape,
                site.in_axis,
                site.fanout,
            )
            .expect("recycle sites match the network's shapes");
            let (fan_in, fan_out) = net.fans(site.layer);
            let fresh =
                xavier_uniform(&mut self.state.rng, recycle.incoming.len(), fan_in, fan_out);
            let incoming = &mut kernel_values[site.layer];
            for (&i, &w) in recycle.incoming.iter().zip(&fresh) {
                incoming[i] = w;
            }
            redo::zero_at(&recycle.bias, &mut bias_values[site.layer]);
            redo::zero_at(&recycle.outgoing, &mut kernel_values[site.next]);
            let (p, q) = (
                QNetwork::kernel_param(site.layer),
                QNetwork::kernel_param(site.next),
            );
            zero.entry(p).or_default().extend(&recycle.incoming);
            zero.entry(p + 1).or_default().extend(&recycle.bias);
            zero.entry(q).or_default().extend(&recycle.outgoing);
            changed.extend([(site.layer, true), (site.layer, false), (site.next, true)]);
        }
        let mut surgery = Surgery::default();
        for (layer, kernel) in changed {
            let p = QNetwork::kernel_param(layer);
            if kernel {
                surgery
                    .values
                    .insert(p, std::mem::take(&mut kernel_values[layer]));
            } else {
                surgery
                    .values
                    .insert(p + 1, std::mem::take(&mut bias_values[layer]));
            }
        }
        surgery.zero_moments = zero.into_iter().map(|(p, e)| (p, Some(e))).collect();
        agent.operate(&surgery);
        outcome
    }
}

impl UpdateHook for RedoHook {
    fn after_update(&mut self, step: u64, agent: &mut Agent, replay: &Replay) {
        if !self.config.should_recycle(step) {
            return;
        }
        if let Some(outcome) = self.recycle(agent, replay) {
            let k = outcome.recycled() as u64;
            self.state.unreported += 1;
            self.state.unreported_neurons += k;
            self.state.total_neurons += k;
            self.state.last = Some((step, outcome));
        }
    }

    fn report(&mut self) -> Option<String> {
        let n = std::mem::take(&mut self.state.unreported);
        let k = std::mem::take(&mut self.state.unreported_neurons);
        let (step, last) = self.state.last.as_ref()?;
        (n > 0).then(|| {
            let layers: Vec<String> = last
                .layers
                .iter()
                .map(|l| format!("{} {}/{}", l.name, l.dormant.len(), l.neurons))
                .collect();
            format!(
                "redo: recycled {k} dormant neurons in {n} recycles (tau {}; {} so far); latest after grad step {step}: {}",
                self.config.tau,
                self.state.total_neurons,
                layers.join(", ")
            )
        })
    }

    fn save(&self) -> Vec<u8> {
        bincode::serialize(&self.state).expect("redo state serializes")
    }

    fn restore(&mut self, state: &[u8], _device: &burn::tensor::Device) -> Result<(), String> {
        self.state = bincode::deserialize(state).map_err(|e| format!("corrupt ReDo state: {e}"))?;
        Ok(())
    }
}
