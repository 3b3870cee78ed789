//! Gradual magnitude pruning wired into training: an [`UpdateHook`] that follows JaxPruner's
//! Dopamine baseline (`jaxpruner/baselines/dopamine/dqn_agent_pruner.py` and
//! `jaxpruner/base_updater.py` at google-research/jaxpruner@f133ee5). At gradient step t (counted from 0, as JaxPruner's
//! `count`), if the GMP schedule updates masks at t, new masks are the top-|w| of the
//! *pre-update* weights at the scheduled sparsity, spread over layers by ERK (or uniformly);
//! after *every* optimizer step the kernels are multiplied by their masks. Gradients and Adam
//! moments are not masked; biases are never pruned. The schedule and mask math live in
//! `prunus-sparsity`.

use burn::tensor::{Device, Tensor, TensorData};
use prunus_sparsity::{Boundary, Distribution, GmpSchedule, Mask, erk, magnitude};
use serde::{Deserialize, Serialize};

use crate::hooks::{Prunable, UpdateHook};
use crate::parameters::KernelInfo;
use crate::replay::Replay;

/// GMP settings (fractions of the run's gradient steps).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PruneSettings {
    pub sparsity: f64,
    pub start: f64,
    pub end: f64,
    pub frequency: u64,
    pub distribution: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    /// Per kernel, `None` until the first mask update.
    masks: Vec<Option<Mask>>,
}

pub struct GmpHook {
    schedule: GmpSchedule,
    distribution: Distribution,
    kernels: Vec<KernelInfo>,
    state: State,
    /// The masks as tensors, rebuilt when they change.
    cached: Vec<Option<Tensor<1>>>,
}

impl GmpHook {
    /// A hook for a run of `total_grad_steps` gradient steps over these kernels.
    pub fn new(
        settings: &PruneSettings,
        total_grad_steps: u64,
        kernels: &[KernelInfo],
    ) -> Result<Self, String> {
        let schedule = GmpSchedule::new(
            settings.sparsity,
            Boundary::Fraction(settings.start),
            Boundary::Fraction(settings.end),
            settings.frequency,
            total_grad_steps,
        )
        .map_err(|e| e.to_string())?;
        let distribution = settings
            .distribution
            .parse()
            .map_err(|e: prunus_sparsity::SparsityError| e.to_string())?;
        Ok(GmpHook {
            schedule,
            distribution,
            kernels: kernels.to_vec(),
            state: State {
                masks: vec![None; kernels.len()],
            },
            cached: vec![None; kernels.len()],
        })
    }

    pub fn schedule(&self) -> &GmpSchedule {
        &self.schedule
    }

    fn recache(&mut self, device: &Device) {
        self.cached = self
            .state
            .masks
            .iter()
            .map(|m| {
                m.as_ref()
                    .map(|m| Tensor::<1>::from_data(TensorData::new(m.to_f32(), [m.len()]), device))
            })
            .collect();
    }
}

impl UpdateHook for GmpHook {
    fn before_update(&mut self, step: u64, learner: &dyn Prunable) {
        if !self.schedule.should_update(step) {
            return;
        }
        // As JaxPruner: the per-layer targets are allocated once, at the final sparsity, and
        // each layer's own target follows the cubic schedule (re-running ERK at the current
        // overall sparsity would move the dense/sparse split between layers).
        let shapes: Vec<&[usize]> = self.kernels.iter().map(|k| k.shape.as_slice()).collect();
        let per_layer = erk::allocate(self.distribution, &shapes, self.schedule.target)
            .expect("valid sparsity allocation");
        let values = learner.parameters().kernel_values();
        self.state.masks = values
            .iter()
            .zip(per_layer)
            .map(|(w, s)| {
                s.map(|s| magnitude::topk_mask(w, self.schedule.layer_sparsity_at(s, step)))
            })
            .collect();
        self.recache(learner.device());
    }

    fn after_update(&mut self, _step: u64, learner: &mut dyn Prunable, _replay: &Replay) {
        if self.cached.iter().any(Option::is_some) {
            learner.apply_masks(&self.cached);
        }
    }

    fn sparsities(&self) -> Vec<(String, f64)> {
        self.kernels
            .iter()
            .zip(&self.state.masks)
            .map(|(k, m)| (k.name.clone(), m.as_ref().map_or(0.0, Mask::sparsity)))
            .collect()
    }

    fn masks(&self) -> Vec<Option<Vec<f32>>> {
        self.state
            .masks
            .iter()
            .map(|m| m.as_ref().map(Mask::to_f32))
            .collect()
    }

    fn save(&self) -> Vec<u8> {
        bincode::serialize(&self.state).expect("masks serialize")
    }

    fn restore(&mut self, state: &[u8], device: &Device) -> Result<(), String> {
        self.state =
            bincode::deserialize(state).map_err(|e| format!("corrupt pruning state: {e}"))?;
        if self.state.masks.len() != self.kernels.len() {
            return Err("pruning state does not match the network's layers".into());
        }
        self.recache(device);
        Ok(())
    }
}
