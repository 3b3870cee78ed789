//! How pruning and the baselines plug into training: an [`UpdateHook`] runs around each
//! gradient step and acts on the learner through [`Prunable`] (the network's
//! [`ParameterSet`], its masks and its optimizer state), never on a concrete agent.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor};

use crate::parameters::ParameterSet;
use crate::replay::Replay;

/// Edits of a network's parameters, by index in the optimizer's order (layer `i`'s kernel is
/// [`ParameterSet::kernel_param`]`(i)`, its bias the next one): new values, and the entries
/// whose Adam moments are zeroed (`None`: all of them). Reset and ReDo are surgeries.
#[derive(Clone, Debug, Default)]
pub struct Surgery {
    pub values: BTreeMap<usize, Vec<f32>>,
    pub zero_moments: BTreeMap<usize, Option<Vec<usize>>>,
}

/// A learner whose network the hooks may prune and operate on.
pub trait Prunable {
    /// The network the hooks read (on the plain device).
    fn parameters(&self) -> &dyn ParameterSet;
    /// The plain (non-autodiff) device the network lives on.
    fn device(&self) -> &Device;
    /// Multiplies the kernels by their masks (`None`: dense), in [`ParameterSet::kernels`] order.
    fn apply_masks(&mut self, masks: &[Option<Tensor<1>>]);
    /// Replaces parameters and zeroes optimizer moments.
    fn operate(&mut self, surgery: &Surgery);
}

/// Called around gradient steps; pruning (GMP masks), ReDo and resets plug in here.
pub trait UpdateHook: Send {
    /// Before gradient step `step` (counted from 0) is computed.
    fn before_update(&mut self, _step: u64, _learner: &dyn Prunable) {}
    /// After gradient step `step` (counted from 0) was applied to the learner; `replay` is there
    /// to sample states from (ReDo's neuron scores).
    fn after_update(&mut self, step: u64, learner: &mut dyn Prunable, replay: &Replay);
    /// What the hook did since the last call, for the run's log (e.g. neurons recycled).
    fn report(&mut self) -> Option<String> {
        None
    }
    /// `(layer, sparsity)` of every layer the hook controls; empty when it prunes nothing.
    fn sparsities(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
    /// Masks to keep with saved networks (`None` where a layer is dense).
    fn masks(&self) -> Vec<Option<Vec<f32>>> {
        Vec::new()
    }
    /// Serialized state, for checkpoints.
    fn save(&self) -> Vec<u8>;
    fn restore(&mut self, state: &[u8], device: &Device) -> Result<(), String>;
}
