//! How a global sparsity is spread over layers: Erdős–Rényi-Kernel (ERK) or uniform.
//!
//! Source read: `jaxpruner/sparsity_distributions.py` (`erk`, `uniform`,
//! `get_sparsities_erdos_renyi` with `include_kernel=True`, `erk_power_scale=1`;
//! google-research/jaxpruner at f133ee5); ERK is Evci et al. 2020 ("Rigging the lottery: making all
//! tickets winners").
//!
//! - Which parameters are pruned: every parameter with more than one dimension (all conv and
//!   dense kernels, first and last layer included); biases (1-D) are never pruned. This is
//!   JaxPruner's default `filter_fn`, which the Dopamine baseline does not override.
//! - ERK gives layer `l` density `eps * sum(dims_l) / prod(dims_l)`, with `eps` solved so the kept
//!   count equals the uniform one, `sum_l (N_l - floor(S * N_l))`. Layers whose density would
//!   exceed 1 (all those sharing the largest ratio, repeatedly) are made dense and `eps` is
//!   re-solved; with Atari-sized networks that is the small output layer.
//!
//! ERK only uses the sum and product of a kernel's dimensions, so the result does not depend on
//! the memory layout (burn's `[out, in, kh, kw]` and Flax's `[kh, kw, in, out]` agree).

use serde::{Deserialize, Serialize};

use crate::SparsityError;

/// A rule for spreading a global sparsity over the prunable layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Distribution {
    /// Erdős–Rényi-Kernel, the JaxPruner Dopamine baseline's `dist_type='erk'` (default).
    #[default]
    Erk,
    /// Every prunable layer gets the same sparsity.
    Uniform,
}

impl std::str::FromStr for Distribution {
    type Err = SparsityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "erk" => Ok(Distribution::Erk),
            "uniform" => Ok(Distribution::Uniform),
            other => Err(SparsityError::Distribution(format!(
                "unknown sparsity distribution {other:?}; use \"erk\" or \"uniform\""
            ))),
        }
    }
}

/// Whether a parameter of this shape is pruned (JaxPruner's default filter: `ndim > 1`).
pub fn is_prunable(shape: &[usize]) -> bool {
    shape.len() > 1
}

/// Per-parameter sparsities for a global `sparsity`: `None` for parameters that are not pruned
/// (biases), `Some(s)` otherwise, in the order of `shapes`.
pub fn allocate(
    distribution: Distribution,
    shapes: &[&[usize]],
    sparsity: f64,
) -> Result<Vec<Option<f64>>, SparsityError> {
    if !(0.0..=1.0).contains(&sparsity) {
        return Err(SparsityError::Distribution(format!(
            "sparsity {sparsity} must be between 0 and 1"
        )));
    }
    match distribution {
        Distribution::Uniform => Ok(shapes
            .iter()
            .map(|s| is_prunable(s).then_some(sparsity))
            .collect()),
        Distribution::Erk => erk(shapes, sparsity),
    }
}

fn erk(shapes: &[&[usize]], sparsity: f64) -> Result<Vec<Option<f64>>, SparsityError> {
    let prunable: Vec<usize> = (0..shapes.len())
        .filter(|&i| is_prunable(shapes[i]))
        .collect();
    if prunable.is_empty() {
        return Err(SparsityError::Distribution(
            "ERK needs at least one kernel (a parameter with 2 or more dimensions)".into(),
        ));
    }
    let size = |i: usize| shapes[i].iter().product::<usize>() as f64;
    let raw = |i: usize| shapes[i].iter().sum::<usize>() as f64 / size(i);
    let zeros = |i: usize| (sparsity * size(i)).floor();
    let mut dense = vec![false; shapes.len()];
    let eps = loop {
        let (mut rhs, mut divisor) = (0.0, 0.0);
        for &i in &prunable {
            if dense[i] {
                rhs -= zeros(i);
            } else {
                rhs += size(i) - zeros(i);
                divisor += raw(i) * size(i);
            }
        }
        let max_raw = prunable
            .iter()
            .filter(|&&i| !dense[i])
            .map(|&i| raw(i))
            .fold(f64::NEG_INFINITY, f64::max);
        if divisor == 0.0 {
            // Every layer went dense: only possible at sparsity ~0.
            break 0.0;
        }
        let eps = rhs / divisor;
        if max_raw * eps > 1.0 {
            for &i in &prunable {
                if !dense[i] && raw(i) == max_raw {
                    dense[i] = true;
                }
            }
        } else {
            break eps;
        }
    };
    Ok((0..shapes.len())
        .map(|i| is_prunable(shapes[i]).then(|| if dense[i] { 0.0 } else { 1.0 - eps * raw(i) }))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(shapes: &[&[usize]], expect: &[f64]) {
        let got = allocate(Distribution::Erk, shapes, 0.95).unwrap();
        for ((shape, g), e) in shapes.iter().zip(&got).zip(expect) {
            let g = g.unwrap();
            assert!(
                (g - e).abs() < 5e-5,
                "{shape:?}: got {g:.5}, the worked table says {e}"
            );
        }
        // The kept count equals the uniform one (up to the per-layer floor).
        let total: f64 = shapes
            .iter()
            .map(|s| s.iter().product::<usize>() as f64)
            .sum();
        let kept: f64 = shapes
            .iter()
            .zip(&got)
            .map(|(s, g)| s.iter().product::<usize>() as f64 * (1.0 - g.unwrap()))
            .sum();
        assert!((kept / total - 0.05).abs() < 1e-4, "kept {}", kept / total);
    }

    /// A worked table computed by hand from JaxPruner's ERK formula, Nature CNN (SAME padding,
    /// flatten 7,744), A = 6 and 18.
    #[test]
    fn erk_nature_cnn_matches_worked_table() {
        let conv: [&[usize]; 4] = [
            &[8, 8, 4, 32],
            &[4, 4, 32, 64],
            &[3, 3, 64, 64],
            &[7744, 512],
        ];
        let mut a6 = conv.to_vec();
        a6.push(&[512, 6]);
        check(&a6, &[0.8520, 0.9260, 0.9153, 0.9515, 0.0]);
        let total: usize = a6.iter().map(|s| s.iter().product::<usize>()).sum();
        assert_eq!(total, 4_045_824);
        let mut a18 = conv.to_vec();
        a18.push(&[512, 18]);
        check(&a18, &[0.8564, 0.9282, 0.9177, 0.9529, 0.0]);
    }

    /// Impala ResNet kernels in network order: per stack a first conv and four residual convs.
    fn impala(width: usize, actions: usize) -> Vec<Vec<usize>> {
        let mut shapes = vec![];
        let mut cin = 4;
        for ch in [16 * width, 32 * width, 32 * width] {
            shapes.push(vec![3, 3, cin, ch]);
            for _ in 0..4 {
                shapes.push(vec![3, 3, ch, ch]);
            }
            cin = ch;
        }
        shapes.push(vec![11 * 11 * 32 * width, 512]);
        shapes.push(vec![512, actions]);
        shapes
    }

    /// A worked table computed by hand from JaxPruner's ERK formula, Impala ResNet x1 and x3
    /// (dense 512 unscaled), A = 6.
    #[test]
    fn erk_impala_matches_worked_table() {
        let x1 = impala(1, 6);
        let refs: Vec<&[usize]> = x1.iter().map(|s| s.as_slice()).collect();
        let mut expect = vec![0.1303];
        expect.extend([0.6822; 4]);
        expect.push(0.7742);
        expect.extend([0.8537; 9]);
        expect.extend([0.9574, 0.0]);
        check(&refs, &expect);

        let x3 = impala(3, 6);
        let refs: Vec<&[usize]> = x3.iter().map(|s| s.as_slice()).collect();
        let mut expect = vec![0.2188];
        expect.extend([0.8855; 4]);
        expect.push(0.9158);
        expect.extend([0.9444; 9]);
        expect.extend([0.9525, 0.0]);
        check(&refs, &expect);
    }

    #[test]
    fn biases_are_not_pruned_and_uniform_is_uniform() {
        let shapes: [&[usize]; 4] = [&[3, 3, 4, 16], &[16], &[1600, 6], &[6]];
        let erk = allocate(Distribution::Erk, &shapes, 0.9).unwrap();
        assert!(erk[1].is_none() && erk[3].is_none());
        assert!(erk[0].is_some() && erk[2].is_some());
        let uni = allocate(Distribution::Uniform, &shapes, 0.9).unwrap();
        assert_eq!(uni, vec![Some(0.9), None, Some(0.9), None]);
        assert!(allocate(Distribution::Erk, &[&[5]], 0.9).is_err());
        assert!(allocate(Distribution::Erk, &shapes, 1.5).is_err());
        assert_eq!("erk".parse::<Distribution>().unwrap(), Distribution::Erk);
        assert!("ERK!".parse::<Distribution>().is_err());
        // Zero sparsity keeps everything.
        let zero = allocate(Distribution::Erk, &shapes, 0.0).unwrap();
        assert!(zero.iter().flatten().all(|s| s.abs() < 1e-12));
    }
}
