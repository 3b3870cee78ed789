//! How long a training run takes, for planning: `prunus plan` sums it into CPU- and GPU-hours
//! and the Slurm executor sets time limits from it. Rough by design (what a run costs depends
//! on the machine), but measured: MinAtar rates on one CPU core come from
//! `benches/minatar_networks.rs` (DQN, replay ratio 0.25), the others from `benches/steps.rs`
//! and the paper's ~2 days per Atari run on a P100.

use prunus_stage::Params;
#[cfg(test)]
use prunus_stage::Value;

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
    let family = Family::of(params.str("env").unwrap_or(""));
    let per_sec = agent_steps_per_sec(family, params)?;
    // Learning is most of the cost; acting stays.
    let replay_ratio = params.f64("replay-ratio").unwrap_or(0.25);
    let learning = ACTING + LEARNING * replay_ratio / 0.25;
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

/// The shares of acting and learning in an agent step of DQN at replay ratio 0.25 (one
/// gradient step per 4 agent steps).
const ACTING: f64 = 0.2;
const LEARNING: f64 = 0.8;

/// The estimated seconds of an offline run (`train/cql`, `train/cql-c51`): its gradient steps at
/// the cost of DQN's (benches/offline.rs measures CQL's update at 1.01x DQN's on the same
/// network), its evaluation steps at the cost of acting. The environment is the upstream
/// dataset's, so the family is the network's; `auto` gives no estimate.
pub fn estimate_offline_secs(c51: bool, params: &Params) -> Option<f64> {
    let family = match params.str("network").ok()? {
        n if n.starts_with("minatar") => Family::MinAtar,
        "nature" | "impala" => Family::Atari,
        "mlp" => Family::Classic,
        _ => return None,
    };
    let per_sec = agent_steps_per_sec(family, params)?;
    let iterations = params.u64("iterations").ok()? as f64;
    let steps = match params.u64("steps").ok()? {
        0 => iterations * crate::kinds::offline::STEPS_PER_ITERATION as f64,
        s => s as f64,
    };
    let eval = iterations * params.u64("eval-steps").unwrap_or(0) as f64;
    let grad_step = LEARNING * 4.0 / per_sec;
    // C51's 51-atom head: a guess between DQN and MinAtar Rainbow (3x, which adds prioritized
    // replay and n-step returns); not benchmarked.
    let head = if c51 { 1.5 } else { 1.0 };
    Some(steps * grad_step * head + eval * ACTING / per_sec)
}

/// Agent steps per second of DQN at replay ratio 0.25 in `family` on the parameters' network,
/// width and device.
fn agent_steps_per_sec(family: Family, params: &Params) -> Option<f64> {
    let gpu = matches!(params.str("device"), Ok("cuda"));
    let width = params.f64("network.width").unwrap_or(1.0);
    let network = match params.str("network") {
        Ok("auto") | Err(_) => None,
        Ok(n) => Some(n),
    };
    Some(match (family, gpu) {
        (Family::MinAtar, false) => {
            minatar_cpu(network.unwrap_or("minatar"), width)? / RUN_OVERHEAD
        }
        (Family::Atari, true) => 120.0 / (0.6 + 0.4 * width.max(1.0)),
        (Family::Atari, false) => 15.0 / (0.6 + 0.4 * width.max(1.0)),
        (_, true) => 1_500.0,
        (_, false) => 600.0 / (0.6 + 0.4 * width.max(1.0)),
    })
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

    fn params(pairs: &[(&str, Value)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn an_offline_gradient_step_costs_what_dqns_learning_does() {
        let net = ("network", Value::Str("minatar128".into()));
        let width = ("network.width", Value::Float(2.0));
        let online = params(&[
            ("env", Value::Str("minatar/breakout".into())),
            net.clone(),
            width.clone(),
            ("steps", Value::Int(400_000)),
        ]);
        let offline = |eval: i64| {
            params(&[
                net.clone(),
                width.clone(),
                ("steps", Value::Int(100_000)),
                ("iterations", Value::Int(10)),
                ("eval-steps", Value::Int(eval)),
            ])
        };
        // 400k agent steps of DQN are 100k gradient steps and 400k acting steps.
        let dqn = estimate_secs(Algorithm::Dqn, &online).unwrap();
        let cql = estimate_offline_secs(false, &offline(0)).unwrap();
        assert!((cql - LEARNING * dqn).abs() < 1e-6 * dqn, "{cql} vs {dqn}");
        let with_eval = estimate_offline_secs(false, &offline(40_000)).unwrap();
        assert!((with_eval - dqn).abs() < 1e-6 * dqn, "{with_eval} vs {dqn}");
        assert!(estimate_offline_secs(true, &offline(0)).unwrap() > cql);
        let auto = params(&[
            ("network", Value::Str("auto".into())),
            ("iterations", Value::Int(1)),
            ("steps", Value::Int(1)),
        ]);
        assert_eq!(estimate_offline_secs(false, &auto), None);
    }
}
