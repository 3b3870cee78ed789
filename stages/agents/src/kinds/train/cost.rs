//! How long a training run takes, for planning: `prunus plan` sums it into CPU- and GPU-hours
//! and the Slurm executor sets time limits from it. Rough by design (what a run costs depends
//! on the machine), but measured: MinAtar rates on one CPU core come from
//! `benches/minatar_networks.rs` (DQN, replay ratio 0.25), the others from `benches/steps.rs`
//! and the paper's ~2 days per Atari run on a P100.

use prunus_stage::Params;

use super::Algorithm;
use crate::presets::Family;

/// Agent steps per second of DQN on one CPU core at widths 1, 2, 4 and 8 (MinAtar networks).
const MINATAR_CPU: &[(&str, [f64; 4])] = &[
    ("minatar", [3_450.0, 2_330.0, 1_410.0, 736.0]),
    ("minatar128", [1_640.0, 507.0, 90.0, 17.7]),
    ("minatar-resnet", [144.0, 58.3, 18.0, 5.3]),
];

/// Real runs are slower than the benchmark's agent alone (the environment, logging and
/// checkpoints): an allowance on the MinAtar rates, still to be measured on an idle machine.
const RUN_OVERHEAD: f64 = 1.3;

/// The estimated seconds of one run with these parameters.
pub fn estimate_secs(algorithm: Algorithm, params: &Params) -> Option<f64> {
    let steps = params.u64("steps").ok()? as f64;
    let gpu = matches!(params.str("device"), Ok("cuda"));
    let family = Family::of(params.str("env").unwrap_or(""));
    let width = params.f64("network.width").unwrap_or(1.0);
    let network = match params.str("network") {
        Ok("auto") | Err(_) => None,
        Ok(n) => Some(n),
    };
    let replay_ratio = params.f64("replay-ratio").unwrap_or(0.25);
    let per_sec = match (family, gpu) {
        (Family::MinAtar, false) => {
            minatar_cpu(network.unwrap_or("minatar"), width)? / RUN_OVERHEAD
        }
        (Family::Atari, true) => 120.0 / (0.6 + 0.4 * width.max(1.0)),
        (Family::Atari, false) => 15.0 / (0.6 + 0.4 * width.max(1.0)),
        (_, true) => 1_500.0,
        (_, false) => 600.0 / (0.6 + 0.4 * width.max(1.0)),
    };
    // Learning is most of the cost; acting stays.
    let learning = 0.2 + 0.8 * replay_ratio / 0.25;
    let agent = match (algorithm, family) {
        (Algorithm::Rainbow, Family::MinAtar) => 3.0,
        (Algorithm::Rainbow, _) => 1.5,
        (Algorithm::Dqn, _) => 1.0,
        // Double DQN's extra forward pass (and DER's distributions and noise).
        (Algorithm::DrqEps, _) => 1.3,
        (Algorithm::Der, _) => 1.8,
    };
    Some(steps / per_sec * learning * agent)
}

/// Steps/s of `network` at `width`, interpolated log-log between the measured widths (and
/// extrapolated along the nearest segment).
fn minatar_cpu(network: &str, width: f64) -> Option<f64> {
    let (_, rates) = MINATAR_CPU.iter().find(|(n, _)| *n == network)?;
    let x = width.max(1e-3).log2().clamp(-2.0, 5.0);
    let i = (x.floor() as isize).clamp(0, 2) as usize;
    let (lo, hi) = (rates[i].ln(), rates[i + 1].ln());
    Some((lo + (hi - lo) * (x - i as f64)).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_widths_give_the_measured_rates_and_others_lie_between() {
        assert!((minatar_cpu("minatar128", 2.0).unwrap() - 507.0).abs() < 1e-6);
        assert!((minatar_cpu("minatar-resnet", 8.0).unwrap() - 5.3).abs() < 1e-6);
        let r3 = minatar_cpu("minatar-resnet", 3.0).unwrap();
        assert!(18.0 < r3 && r3 < 58.3);
        assert!(minatar_cpu("minatar128", 0.5).unwrap() > 1_640.0);
        assert!(minatar_cpu("nature", 1.0).is_none());
    }
}
