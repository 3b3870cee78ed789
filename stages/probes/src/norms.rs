//! Parameter norm and Q-estimate norm (the paper's section 5 probes).
//!
//! The paper's definitions were not found in code; these are our assumption: `param_norm` =
//! ‖θ‖₂ over every parameter of the online network (not squared; Dopamine's MoE lab,
//! `dopamine/labs/moes/agents/full_rainbow_moe_agent.py` at google/dopamine 5873f54, logs the
//! squared norm Σθ²), and `q_norm` = the mean over the batch of ‖Q(s, ·)‖₂.

use crate::{ShapeError, check_matrix};

/// ‖θ‖₂ over all parameter tensors together (accumulated in f64).
pub fn param_norm(params: &[&[f32]]) -> f64 {
    params
        .iter()
        .flat_map(|p| p.iter())
        .map(|&w| (w as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Mean over the batch of ‖Q(s, ·)‖₂ for the row-major `[batch, actions]` Q-values.
pub fn q_norm(q: &[f32], batch: usize, actions: usize) -> Result<f64, ShapeError> {
    check_matrix(q, batch, actions)?;
    if batch == 0 || actions == 0 {
        return Ok(0.0);
    }
    let sum: f64 = q
        .chunks(actions)
        .map(|row| row.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt())
        .sum();
    Ok(sum / batch as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_by_hand() {
        assert_eq!(param_norm(&[&[3.0], &[], &[4.0, 0.0]]), 5.0);
        assert_eq!(q_norm(&[3.0, 4.0, 0.0, 1.0], 2, 2).unwrap(), 3.0);
        assert!(q_norm(&[1.0; 3], 2, 2).is_err());
    }
}
