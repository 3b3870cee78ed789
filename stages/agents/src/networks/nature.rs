//! The Nature CNN (Mnih et al. 2015) as Dopamine's `NatureDQNNetwork`
//! (`dopamine/jax/networks.py` at google/dopamine@1093179): Conv(32·w, 8×8, s4),
//! Conv(64·w, 4×4, s2), Conv(64·w, 3×3, s1), all SAME-padded (Flax's default, so 84×84 inputs
//! flatten to 11·11·64 = 7,744), then Dense(512·w). The width multiplier also scales the dense
//! layer, as the ReDo lab's `ScalableNatureDQNNetwork` (`dopamine/labs/redo/networks.py`).

use burn::tensor::Device;

use super::init::{self, Init};
use super::{InputShape, Torso, Wiring, scaled};

pub(super) fn torso(
    width: f64,
    input: InputShape,
    rng: &mut dyn rand::RngCore,
    device: &Device,
) -> Torso {
    let (c1, c2, c3) = (scaled(32, width), scaled(64, width), scaled(64, width));
    let convs = vec![
        init::conv(rng, device, [input.c, c1], 8, 4, Init::XavierUniform),
        init::conv(rng, device, [c1, c2], 4, 2, Init::XavierUniform),
        init::conv(rng, device, [c2, c3], 3, 1, Init::XavierUniform),
    ];
    let (mut h, mut w) = (input.h, input.w);
    for s in [4, 2, 1] {
        h = h.div_ceil(s);
        w = w.div_ceil(s);
    }
    Torso {
        convs,
        pool: None,
        wiring: Wiring::Chain,
        hidden: vec![scaled(512, width)],
        flat: c3 * h * w,
    }
}
