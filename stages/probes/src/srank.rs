//! Effective rank (srank) of a feature matrix, Kumar et al. 2021 ("Implicit
//! under-parameterization inhibits data-efficient deep reinforcement learning", ICLR 2021,
//! arXiv 2010.14498).
//!
//! With the singular values `σ_1 >= ... >= σ_n` of the `[batch, features]` matrix of
//! penultimate-layer activations (the post-ReLU features feeding the Q head),
//! `srank_δ = min { k : Σ_{i<=k} σ_i / Σ_i σ_i >= 1 - δ }`, δ = 0.01. Singular values, not their
//! squares. A zero matrix has srank 0.

use nalgebra::DMatrix;

use crate::{ShapeError, check_matrix};

/// Kumar et al.'s δ.
pub const DELTA: f64 = 0.01;

/// Singular values of the row-major `[rows, cols]` matrix, descending (SVD by nalgebra, in f64).
pub fn singular_values(features: &[f32], rows: usize, cols: usize) -> Result<Vec<f64>, ShapeError> {
    check_matrix(features, rows, cols)?;
    if rows == 0 || cols == 0 {
        return Ok(vec![]);
    }
    let m = DMatrix::from_row_iterator(rows, cols, features.iter().map(|&x| x as f64));
    let mut sv: Vec<f64> = m.singular_values().iter().copied().collect();
    sv.sort_by(|a, b| b.total_cmp(a));
    Ok(sv)
}

/// srank with δ = [`DELTA`] of the row-major `[rows, cols]` feature matrix.
pub fn srank(features: &[f32], rows: usize, cols: usize) -> Result<usize, ShapeError> {
    Ok(srank_from_singular_values(
        &singular_values(features, rows, cols)?,
        DELTA,
    ))
}

/// srank_δ from descending singular values.
pub fn srank_from_singular_values(sv: &[f64], delta: f64) -> usize {
    let total: f64 = sv.iter().sum();
    if total <= 0.0 {
        return 0;
    }
    let mut cumulative = 0.0;
    for (k, s) in sv.iter().enumerate() {
        cumulative += s;
        // A relative tolerance so that an exactly reached threshold is not missed to rounding.
        if cumulative >= (1.0 - delta) * total * (1.0 - 1e-12) {
            return k + 1;
        }
    }
    sv.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ranks() {
        // Identity-like 6x4: four equal singular values, srank 4.
        let mut m = vec![0.0f32; 24];
        for i in 0..4 {
            m[i * 4 + i] = 1.0;
        }
        assert_eq!(srank(&m, 6, 4).unwrap(), 4);
        // Rank 2: rows built from two orthogonal directions.
        let u = [1.0f32, 2.0, 0.0, -1.0, 0.5];
        let v = [2.0f32, -1.0, 3.0, 0.0, 0.0];
        let rank2: Vec<f32> = (0..30)
            .flat_map(|r| {
                let (a, b) = ((r as f32 * 0.37).sin(), (r as f32 * 1.3).cos());
                (0..5).map(move |c| a * u[c] + b * v[c])
            })
            .collect();
        let sv = singular_values(&rank2, 30, 5).unwrap();
        assert!(sv[2] < 1e-5 * sv[0], "{sv:?}");
        assert_eq!(srank(&rank2, 30, 5).unwrap(), 2);
        assert_eq!(srank(&[0.0; 12], 3, 4).unwrap(), 0);
        assert!(srank(&[0.0; 11], 3, 4).is_err());
    }

    #[test]
    fn threshold_is_on_singular_values_not_squares() {
        // σ = 100, 1: 100/101 = 0.990099 >= 0.99 -> srank 1 (on squares it would also be 1).
        assert_eq!(srank_from_singular_values(&[100.0, 1.0], 0.01), 1);
        // σ = 98, 1, 1: 98/100 < 0.99, 99/100 reaches it exactly -> 2.
        assert_eq!(srank_from_singular_values(&[98.0, 1.0, 1.0], 0.01), 2);
        // σ = 10, 1: on squares 100/101 >= 0.99 would give 1; on values 10/11 gives 2.
        assert_eq!(srank_from_singular_values(&[10.0, 1.0], 0.01), 2);
        // A diagonal matrix's singular values are its |diagonal|.
        let d = [3.0f32, 0.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.01];
        let sv = singular_values(&d, 3, 3).unwrap();
        for (g, w) in sv.iter().zip([3.0, 2.0, 0.01]) {
            assert!((g - w).abs() < 1e-6);
        }
        // 5.0 / 5.01 = 0.998 >= 0.99 -> 2.
        assert_eq!(srank(&d, 3, 3).unwrap(), 2);
    }

    proptest::proptest! {
        /// srank lies in [1, min(rows, cols)] for a non-zero matrix and ignores scale.
        #[test]
        fn srank_bounds_and_scale(
            m in proptest::collection::vec(-2.0f32..2.0, 12),
            scale in 0.01f32..100.0,
        ) {
            proptest::prop_assume!(m.iter().any(|&x| x.abs() > 1e-3));
            let r = srank(&m, 4, 3).unwrap();
            proptest::prop_assert!((1..=3).contains(&r));
            let scaled: Vec<f32> = m.iter().map(|x| x * scale).collect();
            let sv = singular_values(&m, 4, 3).unwrap();
            let sv2 = singular_values(&scaled, 4, 3).unwrap();
            let margin = |sv: &[f64]| {
                let t: f64 = sv.iter().sum();
                let mut c = 0.0;
                sv.iter().map(|s| { c += s; (c / t - 0.99).abs() }).fold(f64::INFINITY, f64::min)
            };
            // Away from the threshold, scaling never changes the rank.
            proptest::prop_assume!(margin(&sv) > 1e-4 && margin(&sv2) > 1e-4);
            proptest::prop_assert_eq!(srank(&scaled, 4, 3).unwrap(), r);
        }
    }
}
