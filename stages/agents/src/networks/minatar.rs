//! The MinAtar CNN: one Conv(16·w, 3×3, stride 1), SAME-padded, flattened to 16·10·10 = 1,600
//! features, then `hidden` dense layers (none in Dopamine's MinAtar network,
//! `dopamine/labs/environments/minatar/minatar_env.py::MinatarDQNNetwork` at
//! google/dopamine@1093179; one of 128 in MinAtar's own DQN, `examples/dqn.py` at
//! kenjyoung/MinAtar@4241f24).

use burn::tensor::Device;

use super::init::{self, Init};
use super::{InputShape, Torso, Wiring, scaled};

pub(super) fn torso(
    hidden: &[usize],
    width: f64,
    input: InputShape,
    rng: &mut dyn rand::RngCore,
    device: &Device,
) -> Torso {
    let c = scaled(16, width);
    Torso {
        convs: vec![init::conv(
            rng,
            device,
            [input.c, c],
            3,
            1,
            Init::XavierUniform,
        )],
        pool: None,
        wiring: Wiring::Chain,
        hidden: hidden.iter().map(|&h| scaled(h, width)).collect(),
        flat: c * input.h * input.w,
    }
}
