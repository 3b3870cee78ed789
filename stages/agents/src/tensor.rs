//! Small tensor helpers shared by the networks, the optimizer and the hooks (kept apart so that
//! none of them imports another for them).

use burn::tensor::Tensor;

/// A tensor's values as `f32`s (row-major).
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 tensor")
}

/// `t` (a plain tensor) as a parameter leaf: back on the autodiff device if the parameter was,
/// tracking gradients if it did.
pub(crate) fn leaf<const D: usize>(t: Tensor<D>, autodiff: bool, require_grad: bool) -> Tensor<D> {
    let mut t = t;
    if autodiff {
        t = t.autodiff();
    }
    if require_grad {
        t = t.require_grad();
    }
    t
}
