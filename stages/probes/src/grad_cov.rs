//! Gradient covariance of per-sample gradients (Lyle et al. 2023, "Understanding plasticity in
//! neural networks", ICML 2023; the paper's Figure 13). The definition is Lyle et al.'s; their
//! unnormalized `J Jᵀ` is the empirical NTK that Dopamine's MoE lab logs.
//!
//! For `k` per-sample loss gradients `g_i` (all parameters flattened into one vector each), the
//! plotted `k x k` matrix is their cosine similarity `C_ij = <g_i, g_j> / (‖g_i‖ ‖g_j‖)`.
//! A sample whose gradient is exactly zero has no direction: its row and column are 0 (its
//! diagonal entry too), rather than NaN.

use crate::{ShapeError, check_matrix};

/// The row-major `k x k` cosine-similarity matrix of the `k` per-sample gradients in the
/// row-major `[k, dim]` matrix `grads`. Accumulated in f64.
pub fn grad_cov(grads: &[f32], k: usize, dim: usize) -> Result<Vec<f64>, ShapeError> {
    let mut gram = Gram::new(k);
    gram.add(grads, dim)?;
    Ok(gram.cosine())
}

/// The Gram matrix `G Gᵀ` of per-sample gradients, accumulated block by block, so the agent can
/// add one parameter tensor's per-sample gradients at a time instead of holding whole flattened
/// gradients (`k x` millions of parameters for the Impala ResNet).
#[derive(Clone, Debug, PartialEq)]
pub struct Gram {
    k: usize,
    sums: Vec<f64>,
}

impl Gram {
    /// An empty Gram matrix for `k` samples.
    pub fn new(k: usize) -> Self {
        Gram {
            k,
            sums: vec![0.0; k * k],
        }
    }

    /// Adds a block of the gradients: the row-major `[k, dim]` per-sample gradients of some of
    /// the parameters (each parameter must be added exactly once).
    pub fn add(&mut self, block: &[f32], dim: usize) -> Result<(), ShapeError> {
        check_matrix(block, self.k, dim)?;
        let k = self.k;
        let row = |i: usize| &block[i * dim..(i + 1) * dim];
        for i in 0..k {
            for j in i..k {
                let d: f64 = row(i)
                    .iter()
                    .zip(row(j))
                    .map(|(&x, &y)| x as f64 * y as f64)
                    .sum();
                self.sums[i * k + j] += d;
                if i != j {
                    self.sums[j * k + i] += d;
                }
            }
        }
        Ok(())
    }

    /// The unnormalised Gram matrix `<g_i, g_j>` (the empirical NTK of Dopamine's MoE lab).
    pub fn inner_products(&self) -> &[f64] {
        &self.sums
    }

    /// The cosine-similarity matrix (see the module docs for zero gradients).
    pub fn cosine(&self) -> Vec<f64> {
        let k = self.k;
        let norms: Vec<f64> = (0..k).map(|i| self.sums[i * k + i].sqrt()).collect();
        let mut c = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                let denom = norms[i] * norms[j];
                if denom > 0.0 {
                    c[i * k + j] = (self.sums[i * k + j] / denom).clamp(-1.0, 1.0);
                }
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_gradients_give_identity() {
        // Three orthogonal gradients of different lengths.
        let g = [
            2.0f32, 0.0, 0.0, 0.0, 0.0, -5.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0,
        ];
        let c = grad_cov(&g, 3, 4).unwrap();
        assert_eq!(c, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn cosines_by_hand() {
        // g0 = (1, 0), g1 = (1, 1), g2 = (-2, 0), g3 = 0.
        let g = [1.0f32, 0.0, 1.0, 1.0, -2.0, 0.0, 0.0, 0.0];
        let c = grad_cov(&g, 4, 2).unwrap();
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let want = [
            1.0, s, -1.0, 0.0, //
            s, 1.0, -s, 0.0, //
            -1.0, -s, 1.0, 0.0, //
            0.0, 0.0, 0.0, 0.0,
        ];
        for (a, b) in c.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{c:?}");
        }
        assert!(grad_cov(&g, 3, 2).is_err());
    }

    #[test]
    fn blockwise_equals_whole() {
        // Two samples, parameters split into blocks of 2 and 1 columns.
        let whole = [1.0f32, 2.0, 3.0, -1.0, 0.5, 2.0];
        let (a, b) = ([1.0f32, 2.0, -1.0, 0.5], [3.0f32, 2.0]);
        let mut gram = Gram::new(2);
        gram.add(&a, 2).unwrap();
        gram.add(&b, 1).unwrap();
        assert_eq!(gram.inner_products(), &[14.0, 6.0, 6.0, 5.25]);
        assert_eq!(gram.cosine(), grad_cov(&whole, 2, 3).unwrap());
        assert!(gram.add(&b, 2).is_err());
    }

    proptest::proptest! {
        /// Symmetric, unit diagonal for non-zero gradients, entries in [-1, 1], scale-invariant.
        #[test]
        fn is_a_cosine_matrix(
            g in proptest::collection::vec(-3.0f32..3.0, 1..80),
            k in 1usize..6,
            scale in 0.1f32..10.0,
        ) {
            let dim = g.len().div_ceil(k);
            let mut g = g;
            g.resize(k * dim, 1.0);
            let c = grad_cov(&g, k, dim).unwrap();
            let scaled: Vec<f32> = g.iter().map(|x| x * scale).collect();
            let c2 = grad_cov(&scaled, k, dim).unwrap();
            for i in 0..k {
                let nonzero = g[i * dim..(i + 1) * dim].iter().any(|&x| x != 0.0);
                proptest::prop_assert!(!nonzero || (c[i * k + i] - 1.0).abs() < 1e-9);
                for j in 0..k {
                    proptest::prop_assert_eq!(c[i * k + j], c[j * k + i]);
                    proptest::prop_assert!(c[i * k + j].abs() <= 1.0);
                    proptest::prop_assert!((c[i * k + j] - c2[i * k + j]).abs() < 1e-5);
                }
            }
        }
    }
}
