//! DrQ's image augmentation (Kostrikov et al. 2020, arXiv 2004.13649), as Dopamine's Atari-100k
//! agents apply it to replayed states (`drq_image_augmentation` in
//! `dopamine/labs/atari_100k/atari_100k_rainbow_agent.py` at google/dopamine@1093179):
//!
//! 1. random shift: pad each state (its whole frame stack) by 4 pixels on every side,
//!    replicating the edge pixels (`jnp.pad(..., 'edge')`, standing in for the reference
//!    PyTorch `ReplicationPad2d`), then crop the original size at a random offset drawn with
//!    `randint(0, padded - size)`, i.e. 0..=7 for a pad of 4 (the upper bound is exclusive);
//! 2. intensity (following SPR, Schwarzer et al. 2020): multiply the state by
//!    `1 + 0.05 * clip(N(0, 1), -2, 2)`, one draw per state.
//!
//! Dopamine augments after dividing by 255; prunus's networks divide inside, and both steps
//! are linear in the pixel values, so augmenting the raw values is the same map.

use rand::Rng;

/// Pixels of edge padding (Dopamine's `img_pad`).
pub const PAD: usize = 4;
/// Scale of the intensity noise (Dopamine's `_intensity_aug(scale=0.05)`).
pub const INTENSITY_SCALE: f32 = 0.05;

/// What one state's augmentation draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Draw {
    /// Crop offset along the rows, in `0..2 * PAD`.
    pub row: usize,
    /// Crop offset along the columns, in `0..2 * PAD`.
    pub col: usize,
    /// Intensity factor, in `[1 - 2 * 0.05, 1 + 2 * 0.05]`.
    pub intensity: f32,
}

impl Draw {
    /// One state's offsets and intensity from `rng`.
    pub fn sample(rng: &mut impl Rng) -> Self {
        let row = rng.random_range(0..2 * PAD);
        let col = rng.random_range(0..2 * PAD);
        let z = standard_normal(rng).clamp(-2.0, 2.0);
        Draw {
            row,
            col,
            intensity: 1.0 + INTENSITY_SCALE * z as f32,
        }
    }
}

/// Augments `states` (`[batch, channels, height, width]`, flattened) in place, each state with
/// its own [`Draw`] from `rng`; returns the draws.
pub fn augment(states: &mut [f32], shape: [usize; 3], rng: &mut impl Rng) -> Vec<Draw> {
    let len: usize = shape.iter().product();
    let draws: Vec<Draw> = (0..states.len() / len).map(|_| Draw::sample(rng)).collect();
    apply(states, shape, &draws);
    draws
}

/// Shifts and scales each state of `states` by its draw: output pixel `(y, x)` of a channel is
/// the padded image's pixel `(y + row, x + col)`, i.e. the input's pixel at
/// `(clamp(y + row - PAD), clamp(x + col - PAD))`, times the intensity.
pub fn apply(states: &mut [f32], [channels, height, width]: [usize; 3], draws: &[Draw]) {
    let plane = height * width;
    let mut src = vec![0f32; plane];
    for (state, d) in states.chunks_mut(channels * plane).zip(draws) {
        for image in state.chunks_mut(plane) {
            src.copy_from_slice(image);
            for y in 0..height {
                let sy = (y + d.row).saturating_sub(PAD).min(height - 1);
                for x in 0..width {
                    let sx = (x + d.col).saturating_sub(PAD).min(width - 1);
                    image[y * width + x] = src[sy * width + sx] * d.intensity;
                }
            }
        }
    }
}

/// A standard normal draw (Box-Muller; `rand` 0.9 has no normal distribution of its own).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
