//! ReDo (Sokar et al. 2023, "The dormant neuron phenomenon in deep reinforcement learning",
//! arXiv 2302.12902), as the ReDo lab's `NeuronRecycler` (`dopamine/labs/redo/weight_recyclers.py`
//! at google/dopamine@1093179): every `period` gradient steps, the τ-dormant neurons of every
//! recyclable layer (scored on one forward pass over replay states) get fresh incoming weights
//! (xavier uniform), a zero bias, zero outgoing weights and zero Adam moments for all of those.

use burn::tensor::{Tensor, TensorData};
use prunus_sparsity::RedoConfig;
use prunus_sparsity::redo::{self, Recycle};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use crate::hooks::{Prunable, Surgery, UpdateHook};
use crate::networks::xavier_uniform;
use crate::replay::Replay;
use crate::tensor::to_vec;

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
    pub fn recycle(
        &mut self,
        learner: &mut dyn Prunable,
        replay: &Replay,
    ) -> Option<RecycleOutcome> {
        let batch = replay.sample(self.batch, &mut self.state.rng)?;
        let n = batch.actions.len();
        let states = Tensor::<2>::from_data(
            TensorData::new(batch.states, [n, replay.state_len()]),
            learner.device(),
        );
        Some(self.recycle_on(learner, states))
    }

    /// [`recycle`](Self::recycle) with scores taken on the given states `[batch, state]`.
    pub fn recycle_on(&mut self, learner: &mut dyn Prunable, states: Tensor<2>) -> RecycleOutcome {
        let net = learner.parameters();
        let acts = net.activations(states);
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
            let (p, q) = (net.kernel_param(site.layer), net.kernel_param(site.next));
            zero.entry(p).or_default().extend(&recycle.incoming);
            zero.entry(p + 1).or_default().extend(&recycle.bias);
            zero.entry(q).or_default().extend(&recycle.outgoing);
            changed.extend([(site.layer, true), (site.layer, false), (site.next, true)]);
        }
        let mut surgery = Surgery::default();
        for (layer, kernel) in changed {
            let p = net.kernel_param(layer);
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
        learner.operate(&surgery);
        outcome
    }
}

impl UpdateHook for RedoHook {
    fn after_update(&mut self, step: u64, learner: &mut dyn Prunable, replay: &Replay) {
        if !self.config.should_recycle(step) {
            return;
        }
        if let Some(outcome) = self.recycle(learner, replay) {
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
