//! Adam with optax's semantics, whose moments can be zeroed element by element (ReDo, Reset).
//!
//! burn's `ModuleOptimizer` keeps its state behind `pub(crate)` fields, so the recycling
//! baselines, which zero the Adam moments of the weights they re-initialise (the ReDo lab's
//! `NeuronRecycler` and `LayerReset`, `dopamine/labs/redo/weight_recyclers.py` at
//! google/dopamine@1093179), need their own optimizer. This one follows `optax.adam` (as Dopamine builds it,
//! optionally after `optax.add_decayed_weights`) operation for operation, in `f32`:
//!
//! ```text
//! g  <- g + wd * w                         (add_decayed_weights; every parameter, biases too)
//! t  <- t + 1                              (one step count for the whole network)
//! m  <- (1 - b1) * g + b1 * m
//! v  <- (1 - b2) * g * g + b2 * v
//! u  <- (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//! w  <- w - lr * u
//! ```
//!
//! with b1 = 0.9, b2 = 0.999. Scalars are rounded to `f32` as JAX does with Python floats; the
//! bias corrections `1 - b^t` are computed in `f64` and rounded (optax computes the power in
//! `f32` on the device, which may differ from it by an ulp). burn's own Adam folds the bias
//! corrections into one factor and scales eps, the same update up to rounding.
//!
//! The state is one step count and, per parameter (in the module's visiting order, see
//! [`crate::networks::QNetwork`]: kernel of layer `i` is parameter `2i`, its bias `2i + 1`),
//! the two moments, flattened: plain vectors updated in one fused pass on CPU devices, tensors
//! elsewhere (both paths do the same `f32` operations and agree bit for bit). It serialises exactly (bincode of the `f32` values), so a
//! resumed run continues bit for bit.

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::tensor::{leaf, to_vec};

const BETA_1: f64 = 0.9;
const BETA_2: f64 = 0.999;

/// First and second moments of one parameter, flattened: on the host for CPU devices (one
/// fused pass per step instead of a dozen tensor operations), as tensors elsewhere (GPU). Both
/// paths perform the same `f32` operations in the same order, so they agree bit for bit.
#[derive(Clone, Debug)]
// A handful per network; boxing the tensors would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Moments {
    Host { m: Vec<f32>, v: Vec<f32> },
    Device { m: Tensor<1>, v: Tensor<1> },
}

impl Moments {
    fn zeros(n: usize, device: &Device, tensors: bool) -> Self {
        if crate::is_cpu(device) && !tensors {
            Moments::Host {
                m: vec![0.0; n],
                v: vec![0.0; n],
            }
        } else {
            Moments::Device {
                m: Tensor::zeros([n], device),
                v: Tensor::zeros([n], device),
            }
        }
    }

    fn from_values(m: Vec<f32>, v: Vec<f32>, device: &Device, tensors: bool) -> Self {
        if crate::is_cpu(device) && !tensors {
            Moments::Host { m, v }
        } else {
            let n = m.len();
            Moments::Device {
                m: Tensor::from_data(TensorData::new(m, [n]), device),
                v: Tensor::from_data(TensorData::new(v, [n]), device),
            }
        }
    }

    fn values(&self) -> (Vec<f32>, Vec<f32>) {
        match self {
            Moments::Host { m, v } => (m.clone(), v.clone()),
            Moments::Device { m, v } => (to_vec(m.clone()), to_vec(v.clone())),
        }
    }
}

/// Adam (optax semantics) over a burn module; see the module docs.
#[derive(Clone, Debug)]
pub struct Adam {
    epsilon: f32,
    /// Steps taken (optax's `count`).
    count: u64,
    /// Per parameter in visiting order; `None` before its first step.
    moments: Vec<Option<Moments>>,
    /// Keep moments as tensors even on CPU (tests of the GPU path).
    tensor_moments: bool,
}

/// What [`Adam::to_bytes`] writes.
#[derive(Serialize, Deserialize)]
struct Record {
    epsilon: f32,
    count: u64,
    moments: Vec<Option<(Vec<f32>, Vec<f32>)>>,
}

impl Adam {
    pub fn new(epsilon: f32) -> Self {
        Adam {
            epsilon,
            count: 0,
            moments: Vec::new(),
            tensor_moments: false,
        }
    }

    /// This optimizer with its moments kept as tensors on every device (the path GPUs take).
    pub fn with_tensor_moments(mut self) -> Self {
        self.tensor_moments = true;
        self
    }

    /// Steps taken so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// One step on every parameter of `module` that has a gradient in `grads`, with coupled
    /// weight decay `weight_decay` (0: none) applied to the gradient first.
    pub fn step<M: Module>(
        &mut self,
        learning_rate: f64,
        weight_decay: f64,
        module: M,
        mut grads: GradientsParams,
    ) -> M {
        self.count += 1;
        let t = i32::try_from(self.count).unwrap_or(i32::MAX);
        // Rounded to f32 here so that both scalar divisions below use exactly these values.
        let correction = |b: f64| (1.0 - b.powi(t)) as f32;
        let mut mapper = StepMapper {
            adam: self,
            grads: &mut grads,
            index: 0,
            scalars: Scalars {
                learning_rate: learning_rate as f32,
                weight_decay: weight_decay as f32,
                beta_1: BETA_1 as f32,
                beta_2: BETA_2 as f32,
                one_minus_beta_1: (1.0 - BETA_1) as f32,
                one_minus_beta_2: (1.0 - BETA_2) as f32,
                correction_1: correction(BETA_1),
                correction_2: correction(BETA_2),
            },
        };
        module.map(&mut mapper)
    }

    /// Zeroes both moments of parameter `param` at the flat `entries` (all of them when `None`).
    /// The step count is kept. Nothing to do before the parameter's first step.
    pub fn zero_moments(&mut self, param: usize, entries: Option<&[usize]>) {
        let Some(Some(slot)) = self.moments.get_mut(param) else {
            return;
        };
        let device = match slot {
            Moments::Host { .. } => None,
            Moments::Device { m, .. } => Some(m.device()),
        };
        let (mut m, mut v) = slot.values();
        match entries {
            None => {
                m.fill(0.0);
                v.fill(0.0);
            }
            Some(entries) => {
                for &i in entries {
                    m[i] = 0.0;
                    v[i] = 0.0;
                }
            }
        }
        *slot = match device {
            None => Moments::Host { m, v },
            Some(device) => Moments::from_values(m, v, &device, true),
        };
    }

    /// The moments `(m, v)` of parameter `param`, flattened (`None` before its first step).
    pub fn moments(&self, param: usize) -> Option<(Vec<f32>, Vec<f32>)> {
        Some(self.moments.get(param)?.as_ref()?.values())
    }

    /// Exact serialisation of the whole state.
    pub fn to_bytes(&self) -> Vec<u8> {
        let record = Record {
            epsilon: self.epsilon,
            count: self.count,
            moments: self
                .moments
                .iter()
                .map(|s| s.as_ref().map(Moments::values))
                .collect(),
        };
        bincode::serialize(&record).expect("Adam state serializes")
    }

    /// The state written by [`to_bytes`](Self::to_bytes), its moments for `device` (plain).
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self, String> {
        let record: Record =
            bincode::deserialize(bytes).map_err(|e| format!("corrupt optimizer state: {e}"))?;
        Ok(Adam {
            epsilon: record.epsilon,
            count: record.count,
            moments: record
                .moments
                .into_iter()
                .map(|s| s.map(|(m, v)| Moments::from_values(m, v, device, false)))
                .collect(),
            tensor_moments: false,
        })
    }
}

/// The step's scalars, rounded to `f32` as JAX rounds Python floats.
#[derive(Clone, Copy)]
struct Scalars {
    learning_rate: f32,
    weight_decay: f32,
    beta_1: f32,
    beta_2: f32,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    correction_1: f32,
    correction_2: f32,
}

struct StepMapper<'a> {
    adam: &'a mut Adam,
    grads: &'a mut GradientsParams,
    index: usize,
    scalars: Scalars,
}

impl ModuleMapper for StepMapper<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let index = self.index;
        self.index += 1;
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let (autodiff, require_grad) = (tensor.is_autodiff(), tensor.is_require_grad());
        let shape = tensor.shape();
        let n = shape.num_elements();
        let w = tensor.inner();
        let device = w.device();
        if self.adam.moments.len() <= index {
            self.adam.moments.resize(index + 1, None);
        }
        let moments = self.adam.moments[index]
            .take()
            .unwrap_or_else(|| Moments::zeros(n, &device, self.adam.tensor_moments));
        let s = self.scalars;
        let (w, moments) = match moments {
            Moments::Host { mut m, mut v } => {
                let mut g = to_vec(grad.inner());
                if s.weight_decay != 0.0 {
                    for (g, &w) in g.iter_mut().zip(&to_vec(w.clone())) {
                        *g += w * s.weight_decay;
                    }
                }
                // Iterators without bounds checks, so that the loop vectorises (IEEE operations
                // only: the same bits as one element at a time). `g` becomes the step `lr * u`.
                let eps = self.adam.epsilon;
                for ((g, m), v) in g.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m = *g * s.one_minus_beta_1 + *m * s.beta_1;
                    *v = (*g * *g) * s.one_minus_beta_2 + *v * s.beta_2;
                    let update = (*m / s.correction_1) / ((*v / s.correction_2).sqrt() + eps);
                    *g = update * s.learning_rate;
                }
                // The subtraction as a tensor operation: the new weights live in the backend's
                // own (aligned) buffer, as with the tensor path.
                let w = w - Tensor::<D>::from_data(TensorData::new(g, shape), &device);
                (w, Moments::Host { m, v })
            }
            Moments::Device { m, v } => {
                let w = w.reshape([n]);
                let mut g = grad.inner().reshape([n]);
                if s.weight_decay != 0.0 {
                    g = g + w.clone().mul_scalar(s.weight_decay);
                }
                let m = g.clone().mul_scalar(s.one_minus_beta_1) + m.mul_scalar(s.beta_1);
                let v = (g.clone() * g).mul_scalar(s.one_minus_beta_2) + v.mul_scalar(s.beta_2);
                let denominator = v
                    .clone()
                    .div_scalar(s.correction_2)
                    .sqrt()
                    .add_scalar(self.adam.epsilon);
                let update = m.clone().div_scalar(s.correction_1) / denominator;
                let w = w - update.mul_scalar(s.learning_rate);
                (w.reshape(shape), Moments::Device { m, v })
            }
        };
        self.adam.moments[index] = Some(moments);
        Param::from_mapped_value(id, leaf(w, autodiff, require_grad), mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    /// optax.adam in plain f32, operation for operation (the reference of the module docs).
    struct Reference {
        count: i32,
        m: Vec<f32>,
        v: Vec<f32>,
    }

    impl Reference {
        fn step(&mut self, w: &mut [f32], g: &[f32], lr: f64, eps: f32, wd: f64) {
            self.count += 1;
            let c1 = (1.0 - 0.9f64.powi(self.count)) as f32;
            let c2 = (1.0 - 0.999f64.powi(self.count)) as f32;
            let (b1, b2) = (0.9f32, 0.999f32);
            let (nb1, nb2) = ((1.0 - 0.9f64) as f32, (1.0 - 0.999f64) as f32);
            for i in 0..w.len() {
                let g = g[i] + (wd as f32) * w[i];
                self.m[i] = nb1 * g + b1 * self.m[i];
                self.v[i] = nb2 * (g * g) + b2 * self.v[i];
                let u = (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + eps);
                w[i] -= (lr as f32) * u;
            }
        }
    }

    fn values(layer: &Linear) -> Vec<f32> {
        let mut v = to_vec(layer.weight.val());
        v.extend(to_vec(layer.bias.as_ref().unwrap().val()));
        v
    }

    /// 100 steps on a small linear regression: bit for bit the plain-f32 optax reference, with
    /// and without weight decay, and a state that round-trips through bytes.
    #[test]
    fn matches_optax_reference_for_100_steps() {
        let device = crate::device("cpu").unwrap().autodiff();
        for (wd, tensors) in [(0.0, false), (0.01, false), (0.0, true), (0.01, true)] {
            let mut layer = LinearConfig::new(3, 2).init(&device);
            let mut adam = Adam::new(1.5e-4);
            if tensors {
                adam = adam.with_tensor_moments();
            }
            let mut reference = Reference {
                count: 0,
                m: vec![0.0; 8],
                v: vec![0.0; 8],
            };
            let mut w = values(&layer);
            let lr = 1e-2;
            for step in 0..100 {
                let x: Vec<f32> = (0..12)
                    .map(|i| ((i * 7 + step) % 11) as f32 / 5.0 - 1.0)
                    .collect();
                let x = Tensor::<2>::from_data(TensorData::new(x, [4, 3]), &device);
                let loss = (layer.forward(x) - 0.5).powi_scalar(2).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &layer);
                let mut g = to_vec(grads.get::<2>(layer.weight.id).unwrap());
                g.extend(to_vec(
                    grads.get::<1>(layer.bias.as_ref().unwrap().id).unwrap(),
                ));
                layer = adam.step(lr, wd, layer, grads);
                reference.step(&mut w, &g, lr, 1.5e-4, wd);
                assert_eq!(values(&layer), w, "step {step}, wd {wd}, tensors {tensors}");
                if step == 50 && !tensors {
                    adam = Adam::from_bytes(&adam.to_bytes(), &device.clone().inner()).unwrap();
                }
            }
            assert_eq!(adam.count(), 100);
            let (m, v) = adam.moments(0).unwrap();
            assert_eq!(m, reference.m[..6]);
            assert_eq!(v, reference.v[..6]);
            assert!(layer.weight.val().is_require_grad());
        }
    }

    #[test]
    fn zeroes_moments_at_entries_and_keeps_the_count() {
        for tensors in [false, true] {
            let device = crate::device("cpu").unwrap().autodiff();
            let layer = LinearConfig::new(3, 2).init(&device);
            let mut adam = Adam::new(1e-8);
            if tensors {
                adam = adam.with_tensor_moments();
            }
            let x = Tensor::<2>::ones([2, 3], &device);
            let grads = GradientsParams::from_grads(layer.forward(x).sum().backward(), &layer);
            let _ = adam.step(1e-3, 0.0, layer, grads);
            let (m0, _) = adam.moments(0).unwrap();
            assert!(m0.iter().all(|&x| x != 0.0));
            adam.zero_moments(0, Some(&[1, 4]));
            adam.zero_moments(1, None);
            let (m, v) = adam.moments(0).unwrap();
            for i in 0..6 {
                assert_eq!(m[i] == 0.0, i == 1 || i == 4);
                assert_eq!(v[i] == 0.0, i == 1 || i == 4);
            }
            assert_eq!(adam.moments(1).unwrap().0, vec![0.0; 2]);
            assert_eq!(adam.count(), 1);
        }
    }
}
