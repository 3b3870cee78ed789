//! Reset (Nikishin et al. 2022, "The primacy bias in deep reinforcement learning", arXiv
//! 2205.07802), as the ReDo lab's `LayerReset` (`dopamine/labs/redo/weight_recyclers.py` at
//! google/dopamine@1093179): every `period` gradient steps the last layers get fresh kernels
//! from their initializer, zero biases and zero Adam moments (the step count stays).

use prunus_sparsity::ResetConfig;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use crate::hooks::{Prunable, Surgery, UpdateHook};
use crate::replay::Replay;

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
    pub fn reset(&mut self, learner: &mut dyn Prunable) -> Vec<String> {
        let net = learner.parameters();
        let kernels = net.kernels();
        let biases = net.bias_values();
        let mut surgery = Surgery::default();
        let mut names = Vec::new();
        for layer in self.config.layers(net.num_layers()) {
            let p = net.kernel_param(layer);
            surgery
                .values
                .insert(p, net.init_kernel(layer, &mut self.state.rng));
            surgery.values.insert(p + 1, vec![0.0; biases[layer].len()]);
            surgery.zero_moments.insert(p, None);
            surgery.zero_moments.insert(p + 1, None);
            names.push(kernels[layer].name.clone());
        }
        learner.operate(&surgery);
        names
    }
}

impl UpdateHook for ResetHook {
    fn after_update(&mut self, step: u64, learner: &mut dyn Prunable, _replay: &Replay) {
        if self.config.should_reset(step) {
            self.reset(learner);
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
