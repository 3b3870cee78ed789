//! Edits of a network's parameters: pruning masks (GMP) and replaced values (Reset, ReDo).
//! Edited parameters stay trainable leaves on their device.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, TensorData};

use super::QNetwork;
use crate::tensor::leaf;

impl QNetwork {
    /// The network with some parameters replaced: `values` maps a parameter's index in the
    /// visiting order (see [`kernel_param`](Self::kernel_param)) to its new flat values.
    pub fn with_parameters(self, values: &BTreeMap<usize, Vec<f32>>) -> Self {
        self.map(&mut ReplaceParams { values, index: 0 })
    }

    /// Multiplies every kernel element-wise by its mask (`masks[i]` flattened like
    /// [`kernel_values`](Self::kernel_values); `None` leaves the kernel dense). Biases are untouched.
    pub fn apply_masks(mut self, masks: &[Option<Tensor<1>>]) -> Self {
        let all = masks;
        let mut masks = masks.iter();
        let mut apply4 = |mut c: Conv2d| {
            if let Some(Some(m)) = masks.next() {
                c.weight = c.weight.map(|w| mask_param(w, m));
            }
            c
        };
        self.convs = std::mem::take(&mut self.convs)
            .into_iter()
            .map(&mut apply4)
            .collect();
        let mut apply2 = |mut d: Linear| {
            if let Some(Some(m)) = masks.next() {
                d.weight = d.weight.map(|w| mask_param(w, m));
            }
            d
        };
        self.dense = std::mem::take(&mut self.dense)
            .into_iter()
            .map(&mut apply2)
            .collect();
        self.head = apply2(self.head);
        if let Some(mut rainbow) = self.rainbow.take() {
            // Dueling's value stream is the last kernel; each noisy layer's σ takes its μ's
            // mask, so that a pruned connection carries no noise either.
            rainbow.value = rainbow.value.map(apply2);
            let nc = self.convs.len();
            for (k, sigma) in rainbow.sigmas.iter_mut().enumerate() {
                if let Some(Some(m)) = all.get(nc + k) {
                    sigma.weight = sigma.weight.clone().map(|w| mask_param(w, m));
                }
            }
            self.rainbow = Some(rainbow);
        }
        self
    }
}

/// `w ⊙ mask`, keeping the result a trainable leaf (on autodiff devices).
fn mask_param<const D: usize>(w: Tensor<D>, mask: &Tensor<1>) -> Tensor<D> {
    let autodiff = w.is_autodiff();
    let require_grad = w.is_require_grad();
    let w = w.inner();
    let m: Tensor<D> = mask.clone().reshape(w.shape());
    leaf(w * m, autodiff, require_grad)
}

/// Replaces the values of the parameters named by visiting-order index.
struct ReplaceParams<'a> {
    values: &'a BTreeMap<usize, Vec<f32>>,
    index: usize,
}

impl burn::module::ModuleMapper for ReplaceParams<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let index = self.index;
        self.index += 1;
        let Some(values) = self.values.get(&index) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let (autodiff, require_grad) = (tensor.is_autodiff(), tensor.is_require_grad());
        let shape = tensor.shape();
        assert_eq!(
            values.len(),
            shape.num_elements(),
            "new values for parameter {index} do not fit its shape"
        );
        let device = tensor.inner().device();
        let fresh = Tensor::<D>::from_data(TensorData::new(values.clone(), shape), &device);
        Param::from_mapped_value(id, leaf(fresh, autodiff, require_grad), mapper)
    }
}
