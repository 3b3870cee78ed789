//! The pruning state carried through training: one mask per parameter, updated on the GMP
//! schedule, applied after every optimizer step, saved with checkpoints.
//!
//! Mirrors JaxPruner's Dopamine baseline (`jaxpruner/base_updater.py`,
//! `jaxpruner/baselines/dopamine/dqn_agent_pruner.py`, google-research/jaxpruner at f133ee5). Per
//! gradient step `t` (counted from 0, like JaxPruner's `SparseState.count`):
//!
//! 1. compute the loss and gradients at the current (already masked) parameters;
//! 2. `pruner.update(t, &params)`: at a scheduled step, recompute every mask as the top-k `|w|`
//!    of the **pre-update** parameters at that layer's scheduled sparsity;
//! 3. the optimizer step (Adam) on all parameters; gradients and Adam moments are **not** masked
//!    unless [`PrunerConfig::mask_optimizer_state`] is set (then also pass the gradients and the
//!    moments to [`Pruner::apply`] before the optimizer uses them);
//! 4. `pruner.apply(&mut params)`: re-zero pruned weights.
//!
//! Each layer follows the schedule scaled to its own final sparsity (ERK or uniform at the
//! schedule's target): `s_l(t) = s_l * (1 - (1 - p(t))^3)`, as JaxPruner's
//! `get_sparsity_at_step` maps the decay over the tree of per-layer targets.

use serde::{Deserialize, Serialize};

use crate::{Distribution, GmpSchedule, Mask, SparsityError, erk, magnitude};

/// How to prune: the schedule, the layer distribution and whether optimizer state is masked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrunerConfig {
    /// Cubic GMP schedule (its `target` is the overall sparsity of the prunable parameters).
    pub schedule: GmpSchedule,
    /// Distribution of the target over layers (ERK by default, as in the Dopamine baseline).
    pub distribution: Distribution,
    /// Also mask gradients and Adam moments (a variant; JaxPruner's baseline does not).
    pub mask_optimizer_state: bool,
}

impl PrunerConfig {
    /// JaxPruner's Dopamine baseline with the given schedule: ERK, optimizer state unmasked.
    pub fn new(schedule: GmpSchedule) -> Self {
        PrunerConfig {
            schedule,
            distribution: Distribution::Erk,
            mask_optimizer_state: false,
        }
    }
}

/// One parameter tensor known to the pruner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrunedParam {
    /// The caller's name for the parameter (for logs and `sparsity.csv`).
    pub name: String,
    /// Its shape; the flat order of its values is row-major over this shape.
    pub shape: Vec<usize>,
    /// Final sparsity of this parameter; `None` if it is never pruned (biases).
    pub target: Option<f64>,
    /// Current mask; `None` if the parameter is never pruned.
    pub mask: Option<Mask>,
}

/// Masks and schedule for a whole network. Serialize it (serde) into checkpoints so masks survive
/// resume; after loading, [`Pruner::check_params`] verifies it still fits the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pruner {
    config: PrunerConfig,
    params: Vec<PrunedParam>,
}

impl Pruner {
    /// A pruner over `params` (name, shape) in the network's parameter order, biases included;
    /// every mask starts dense.
    pub fn new(config: PrunerConfig, params: &[(&str, &[usize])]) -> Result<Self, SparsityError> {
        let shapes: Vec<&[usize]> = params.iter().map(|p| p.1).collect();
        let targets = erk::allocate(config.distribution, &shapes, config.schedule.target)?;
        let params = params
            .iter()
            .zip(targets)
            .map(|(&(name, shape), target)| PrunedParam {
                name: name.to_string(),
                shape: shape.to_vec(),
                target,
                mask: target.map(|_| Mask::dense(shape.iter().product())),
            })
            .collect();
        Ok(Pruner { config, params })
    }

    /// The configuration this pruner runs.
    pub fn config(&self) -> &PrunerConfig {
        &self.config
    }

    /// The parameters, their targets and masks, in network order.
    pub fn params(&self) -> &[PrunedParam] {
        &self.params
    }

    /// Errors unless `params` (name, shape) are exactly the ones this pruner was built for.
    pub fn check_params(&self, params: &[(&str, &[usize])]) -> Result<(), SparsityError> {
        let mismatch = |m: String| Err(SparsityError::Masks(m));
        if params.len() != self.params.len() {
            return mismatch(format!(
                "the masks cover {} parameters but the network has {}; the checkpoint belongs \
                 to a different architecture",
                self.params.len(),
                params.len()
            ));
        }
        for (p, &(name, shape)) in self.params.iter().zip(params) {
            if p.name != name || p.shape != shape {
                return mismatch(format!(
                    "mask for {} {:?} does not fit parameter {name} {shape:?}; the checkpoint \
                     belongs to a different architecture or width",
                    p.name, p.shape
                ));
            }
        }
        Ok(())
    }

    /// Whether [`Pruner::update`] recomputes masks at gradient step `step`.
    pub fn should_update(&self, step: u64) -> bool {
        self.config.schedule.should_update(step)
    }

    /// At a scheduled step, recomputes every mask from the current (pre-optimizer-step) values;
    /// returns whether masks changed. `values` are the parameters in network order.
    pub fn update(&mut self, step: u64, values: &[&[f32]]) -> Result<bool, SparsityError> {
        if !self.should_update(step) {
            return Ok(false);
        }
        self.check_lengths(values.iter().map(|v| v.len()))?;
        for (p, v) in self.params.iter_mut().zip(values) {
            if let Some(target) = p.target {
                let sparsity = self.config.schedule.layer_sparsity_at(target, step);
                p.mask = Some(magnitude::topk_mask(v, sparsity));
            }
        }
        Ok(true)
    }

    /// Zeroes the pruned entries of every parameter (or of its gradient / Adam moment) in
    /// network order.
    pub fn apply(&self, values: &mut [&mut [f32]]) -> Result<(), SparsityError> {
        self.check_lengths(values.iter().map(|v| v.len()))?;
        for (p, v) in self.params.iter().zip(values.iter_mut()) {
            if let Some(mask) = &p.mask {
                mask.apply(v);
            }
        }
        Ok(())
    }

    /// Per prunable parameter: its name and the sparsity of its current mask.
    pub fn layer_sparsity(&self) -> Vec<(&str, f64)> {
        self.params
            .iter()
            .filter_map(|p| p.mask.as_ref().map(|m| (p.name.as_str(), m.sparsity())))
            .collect()
    }

    /// Fraction of pruned weights over all prunable parameters (the `sparsity` column of
    /// `returns.csv`; biases excluded, ERK's dense layers included, as JaxPruner counts).
    pub fn overall_sparsity(&self) -> f64 {
        let (zeros, total) = self
            .params
            .iter()
            .filter_map(|p| p.mask.as_ref())
            .fold((0, 0), |(z, n), m| (z + m.zeros(), n + m.len()));
        if total == 0 {
            0.0
        } else {
            zeros as f64 / total as f64
        }
    }

    fn check_lengths(
        &self,
        lens: impl ExactSizeIterator<Item = usize>,
    ) -> Result<(), SparsityError> {
        if lens.len() != self.params.len() {
            return Err(SparsityError::Masks(format!(
                "got {} tensors for {} parameters; pass every parameter in network order",
                lens.len(),
                self.params.len()
            )));
        }
        for (p, len) in self.params.iter().zip(lens) {
            let want: usize = p.shape.iter().product();
            if len != want {
                return Err(SparsityError::Masks(format!(
                    "parameter {} has {len} values but its shape {:?} holds {want}",
                    p.name, p.shape
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Boundary;

    /// splitmix64: a tiny deterministic generator for test data.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        }
    }

    /// Plain Adam over flat vectors (Dopamine's lr 6.25e-5 is too slow to move weights in a test,
    /// so a larger lr is used; eps 1.5e-4 as in Dopamine).
    struct Adam {
        m: Vec<Vec<f32>>,
        v: Vec<Vec<f32>>,
        t: i32,
    }
    impl Adam {
        fn new(sizes: &[usize]) -> Self {
            let zeros = || sizes.iter().map(|&n| vec![0.0; n]).collect();
            Adam {
                m: zeros(),
                v: zeros(),
                t: 0,
            }
        }
        fn step(&mut self, params: &mut [Vec<f32>], grads: &[Vec<f32>]) {
            let (lr, b1, b2, eps) = (1e-2f32, 0.9f32, 0.999f32, 1.5e-4f32);
            self.t += 1;
            let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
            for (l, p) in params.iter_mut().enumerate() {
                for i in 0..p.len() {
                    let g = grads[l][i];
                    self.m[l][i] = b1 * self.m[l][i] + (1.0 - b1) * g;
                    self.v[l][i] = b2 * self.v[l][i] + (1.0 - b2) * g * g;
                    p[i] -= lr * (self.m[l][i] / c1) / ((self.v[l][i] / c2).sqrt() + eps);
                }
            }
        }
    }

    const SHAPES: [&[usize]; 6] = [&[16, 4, 3, 3], &[16], &[1600, 32], &[32], &[32, 6], &[6]];
    const NAMES: [&str; 6] = ["conv.w", "conv.b", "fc.w", "fc.b", "out.w", "out.b"];

    fn spec() -> Vec<(&'static str, &'static [usize])> {
        NAMES.iter().copied().zip(SHAPES.iter().copied()).collect()
    }

    /// Trains with random gradients and Adam for `steps`, checking after every optimizer step
    /// that pruned weights are exactly zero and sparsity follows the schedule within one weight.
    fn train(
        pruner: &mut Pruner,
        steps: u64,
        seed: u64,
        from: u64,
        params: &mut [Vec<f32>],
        adam: &mut Adam,
    ) {
        let mut rng = Rng(seed);
        let mask_opt = pruner.config().mask_optimizer_state;
        for t in from..from + steps {
            // Gradients with a drift, so weights keep moving and could grow back if not masked.
            let mut grads: Vec<Vec<f32>> = params
                .iter()
                .map(|p| p.iter().map(|_| rng.next() + 0.3).collect())
                .collect();
            let views: Vec<&[f32]> = params.iter().map(|p| p.as_slice()).collect();
            let before: Vec<Option<Mask>> =
                pruner.params().iter().map(|p| p.mask.clone()).collect();
            let updated = pruner.update(t, &views).unwrap();
            assert_eq!(updated, pruner.config().schedule.should_update(t));
            // No regrowth: a pruned weight is 0, so it stays pruned while sparsity rises.
            for (old, p) in before.iter().zip(pruner.params()) {
                if let (Some(old), Some(new)) = (old, &p.mask) {
                    assert!(
                        old.keep().iter().zip(new.keep()).all(|(&o, &n)| o || !n),
                        "{} regrew at {t}",
                        p.name
                    );
                }
            }
            if mask_opt {
                let mut g: Vec<&mut [f32]> = grads.iter_mut().map(|g| g.as_mut_slice()).collect();
                pruner.apply(&mut g).unwrap();
            }
            adam.step(params, &grads);
            if mask_opt {
                for moments in [&mut adam.m, &mut adam.v] {
                    let mut m: Vec<&mut [f32]> =
                        moments.iter_mut().map(|m| m.as_mut_slice()).collect();
                    pruner.apply(&mut m).unwrap();
                }
            }
            let mut views: Vec<&mut [f32]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
            pruner.apply(&mut views).unwrap();
            for (p, w) in pruner.params().iter().zip(params.iter()) {
                let Some(mask) = &p.mask else { continue };
                for (i, (&k, &x)) in mask.keep().iter().zip(w).enumerate() {
                    assert!(k || x.to_bits() == 0, "{} [{i}] = {x} at step {t}", p.name);
                }
                let want = GmpSchedule {
                    target: p.target.unwrap(),
                    ..pruner.config().schedule
                }
                .sparsity_in_effect(t);
                let zeros = mask.zeros() as f64;
                assert!(
                    (zeros - want * mask.len() as f64).abs() <= 1.0,
                    "{} at {t}",
                    p.name
                );
            }
            if mask_opt {
                for (p, m) in pruner.params().iter().zip(&adam.m) {
                    if let Some(mask) = &p.mask {
                        assert!(mask.keep().iter().zip(m).all(|(&k, &x)| k || x == 0.0));
                    }
                }
            }
        }
    }

    fn setup(mask_optimizer_state: bool) -> (Pruner, Vec<Vec<f32>>, Adam) {
        let schedule = GmpSchedule::new(
            0.9,
            Boundary::Fraction(0.2),
            Boundary::Fraction(0.8),
            10,
            1000,
        )
        .unwrap();
        let config = PrunerConfig {
            mask_optimizer_state,
            ..PrunerConfig::new(schedule)
        };
        let pruner = Pruner::new(config, &spec()).unwrap();
        let mut rng = Rng(7);
        let params: Vec<Vec<f32>> = SHAPES
            .iter()
            .map(|s| (0..s.iter().product()).map(|_| rng.next()).collect())
            .collect();
        let adam = Adam::new(&params.iter().map(|p| p.len()).collect::<Vec<_>>());
        (pruner, params, adam)
    }

    #[test]
    fn pruned_weights_stay_zero_over_adam_steps() {
        for mask_opt in [false, true] {
            let (mut pruner, mut params, mut adam) = setup(mask_opt);
            assert_eq!(pruner.overall_sparsity(), 0.0);
            train(&mut pruner, 1000, 1, 0, &mut params, &mut adam);
            // ERK: biases unpruned, overall sparsity at the target.
            assert!(pruner.params()[1].mask.is_none() && pruner.params()[5].mask.is_none());
            assert!(
                (pruner.overall_sparsity() - 0.9).abs() < 1e-3,
                "{}",
                pruner.overall_sparsity()
            );
            let by_layer = pruner.layer_sparsity();
            assert_eq!(
                by_layer.iter().map(|l| l.0).collect::<Vec<_>>(),
                ["conv.w", "fc.w", "out.w"]
            );
            // Without masking the moments, pruned weights still get non-zero Adam moments.
            let fc_mask = pruner.params()[2].mask.as_ref().unwrap();
            let pruned_moment = adam.m[2]
                .iter()
                .zip(fc_mask.keep())
                .any(|(&m, &k)| !k && m != 0.0);
            assert_eq!(pruned_moment, !mask_opt);
        }
    }

    #[test]
    fn masks_survive_checkpoint_resume() {
        let (mut pruner, mut params, mut adam) = setup(false);
        train(&mut pruner, 500, 3, 0, &mut params, &mut adam);
        let saved = serde_json::to_string(&pruner).unwrap();
        let mut resumed: Pruner = serde_json::from_str(&saved).unwrap();
        assert_eq!(resumed, pruner);
        resumed.check_params(&spec()).unwrap();
        let (mut p2, mut a2) = (
            params.clone(),
            Adam {
                m: adam.m.clone(),
                v: adam.v.clone(),
                t: adam.t,
            },
        );
        train(&mut pruner, 500, 4, 500, &mut params, &mut adam);
        train(&mut resumed, 500, 4, 500, &mut p2, &mut a2);
        assert_eq!(resumed, pruner);
        assert_eq!(p2, params);
    }

    #[test]
    fn wrong_shapes_are_reported() {
        let (pruner, params, _) = setup(false);
        let mut other = spec();
        other[2].1 = &[1600, 64];
        let e = pruner.check_params(&other).unwrap_err().to_string();
        assert!(
            e.contains("fc.w") && e.contains("different architecture"),
            "{e}"
        );
        assert!(pruner.check_params(&other[..3]).is_err());
        let mut short: Vec<Vec<f32>> = params.clone();
        short[0].pop();
        let mut views: Vec<&mut [f32]> = short.iter_mut().map(|p| p.as_mut_slice()).collect();
        let e = pruner.apply(&mut views).unwrap_err().to_string();
        assert!(e.contains("conv.w has 575 values"), "{e}");
    }
}
