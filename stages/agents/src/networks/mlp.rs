//! The MLP for vector observations (classic control): `hidden` dense layers scaled by the width
//! multiplier (Dopamine's `ClassicControlDQNNetwork`, `dopamine/jax/networks.py` at
//! google/dopamine@1093179: two layers of 512 in `dqn_cartpole.gin`).

use super::{InputShape, Torso, Wiring, scaled};

/// No convolutions: the flattened input feeds the dense layers.
pub(super) fn torso(hidden: &[usize], width: f64, input: InputShape) -> Torso {
    Torso {
        convs: Vec::new(),
        pool: None,
        wiring: Wiring::Chain,
        hidden: hidden.iter().map(|&h| scaled(h, width)).collect(),
        flat: input.c * input.h.max(1) * input.w.max(1),
    }
}
