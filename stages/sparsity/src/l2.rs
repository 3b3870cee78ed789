//! Weight decay and the "L2" of Kumar et al. 2022: the two regularisers the paper compares GMP with
//! (Dopamine's ReDo lab, `dopamine/labs/redo`, google/dopamine at 1093179; Kumar et al. 2022,
//! "Offline Q-learning on diverse multi-task data both scales and generalizes", arXiv 2211.15144).
//!
//! - **Weight decay** as Dopamine's ReDo lab applies it: `optax.add_decayed_weights(wd)` chained
//!   *before* Adam, i.e. `g <- g + wd * w` on every parameter, biases included (coupled L2, not
//!   AdamW). Equivalent to adding `wd/2 * sum(w^2)` to the loss. [`add_weight_decay`].
//! - **L2 of Kumar et al. 2022** (Scaled QL): the penultimate features (the post-ReLU dense
//!   representation feeding the Q head) are divided by their per-sample L2 norm before the head
//!   ("feature normalization", Dopamine's `normalize_representation=True`).
//!   [`normalize_features`] is the reference definition; the agent applies it inside its network
//!   so that gradients flow through the normalisation. We could not confirm whether the
//!   2024 paper's "L2" meant this or an L2 weight penalty; with the latter, use weight decay.

/// `grad += wd * param`, element-wise (coupled weight decay before the optimizer).
pub fn add_weight_decay(grad: &mut [f32], param: &[f32], wd: f32) {
    assert_eq!(
        grad.len(),
        param.len(),
        "gradient and parameter lengths differ"
    );
    for (g, w) in grad.iter_mut().zip(param) {
        *g += wd * w;
    }
}

/// The penalty whose gradient [`add_weight_decay`] adds: `wd/2 * sum(w^2)` (for logging).
pub fn weight_decay_penalty(param: &[f32], wd: f32) -> f64 {
    0.5 * wd as f64 * param.iter().map(|&w| (w as f64).powi(2)).sum::<f64>()
}

/// Divides each row of the row-major `[rows, dim]` feature matrix by its L2 norm. A zero row
/// (every unit dead) is left at zero instead of dividing by zero; the agent's version must agree.
pub fn normalize_features(features: &mut [f32], dim: usize) {
    assert!(
        dim > 0 && features.len().is_multiple_of(dim),
        "features are not [rows, {dim}]"
    );
    for row in features.chunks_mut(dim) {
        let norm = row.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        if norm > 0.0 {
            for x in row {
                *x = (*x as f64 / norm) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_decay_is_the_penalty_gradient() {
        let w = [1.0f32, -2.0, 0.5];
        let mut g = [0.1f32, 0.0, -0.1];
        add_weight_decay(&mut g, &w, 0.01);
        assert_eq!(g, [0.11, -0.02, -0.095]);
        // d/dw of wd/2 * w^2 is wd * w: check by finite differences.
        let h = 1e-3f32;
        let fd = (weight_decay_penalty(&[1.0 + h], 0.01) - weight_decay_penalty(&[1.0 - h], 0.01))
            / (2.0 * h as f64);
        assert!((fd - 0.01).abs() < 1e-6);
    }

    #[test]
    fn features_get_unit_norm() {
        let mut f = [3.0f32, 4.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        normalize_features(&mut f, 3);
        assert_eq!(&f[..3], &[0.6, 0.8, 0.0]);
        assert_eq!(&f[3..6], &[0.0; 3]);
        let n: f32 = f[6..].iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-6);
    }
}
