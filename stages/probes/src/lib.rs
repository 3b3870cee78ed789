//! Analysis probes of a value network (paper section 5): Q-target variance, parameter and Q
//! norms, srank, dormant-neuron fraction, gradient covariance.
//!
//! Pure math over row-major `f32` matrices; the `probe` stage kind (in prunus-agents) runs the
//! network on its fixed probe batch and passes the activations, outputs and gradients here.
//! Each function's docs state the exact definition and its source: the paper that defines it
//! or the code it follows.
//!
//! | probe name (`probes.csv`) | function |
//! |---|---|
//! | `q_target_variance` | [`q_variance::q_target_variance`] |
//! | `param_norm` | [`norms::param_norm`] |
//! | `q_norm` | [`norms::q_norm`] |
//! | `srank` | [`srank::srank`] |
//! | `dormant_tau<τ>` | [`dormant::dormant_fractions`] with [`dormant::probe_name`] |
//! | `grad_cov.json` | [`grad_cov::grad_cov`], or [`grad_cov::Gram`] block by block |

pub mod dormant;
pub mod grad_cov;
pub mod norms;
pub mod q_variance;
pub mod srank;

/// Input whose size does not match the shape it was given with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("probe input has {len} values, but {what}")]
pub struct ShapeError {
    len: usize,
    what: String,
}

/// Checks that `data` holds a `[rows, cols]` matrix.
fn check_matrix(data: &[f32], rows: usize, cols: usize) -> Result<(), ShapeError> {
    if data.len() != rows * cols {
        return Err(ShapeError {
            len: data.len(),
            what: format!("a [{rows}, {cols}] matrix needs {}", rows * cols),
        });
    }
    Ok(())
}
