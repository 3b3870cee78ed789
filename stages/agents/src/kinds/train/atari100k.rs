//! `train/drq-eps` and `train/der`: the Atari-100k agents of Dopamine's `labs/atari_100k`
//! (`Atari100kRainbowAgent`, a `JaxFullRainbowAgent`, in
//! `dopamine/labs/atari_100k/atari_100k_rainbow_agent.py` at google/dopamine@1093179), with the
//! settings of `configs/DrQ_eps.gin` and `configs/DER.gin`:
//!
//! | | DrQ(ε) | DER |
//! |---|---|---|
//! | values, loss | Q-values, Huber (`mse_loss=False`) | C51, 51 atoms, vmax 10 |
//! | dueling, double DQN | yes, yes | yes, yes |
//! | noisy | no | yes (ε = 0 in training) |
//! | augmentation (DrQ) | yes | no |
//! | replay | uniform | prioritized |
//! | target period (agent steps) | 1 | 2,000 |
//! | ε decay (agent steps) | 5,000 | 2,000 |
//!
//! and, for both: n = 10, γ 0.99, 1,600 warm-up transitions, one update per agent step, Adam
//! lr 1e-4, eps 1.5e-4, batch 32, replay capacity 1M, ε 0.01 / 0.001, no sticky actions, a lost
//! life ends the agent's episode, 0..29 random NOOP frames at every episode start (the runner's
//! `max_noops = 30`; Dopamine's `MaxEpisodeEvalRunner._initialize_episode` does them for
//! training and evaluation episodes alike), 100 evaluation episodes per iteration, and the
//! benchmark's 100k agent steps in 10 iterations (`steps` is a parameter: the paper's Fig. 8
//! trains 10M agent steps = 40M frames). The network defaults to the Nature CNN torso of
//! Dopamine's `FullRainbowNetwork`; any torso of the other kinds may be named.
//!
//! They take the other kinds' environment, network, training, replay, exploration, pruning and
//! output parameters (with the defaults above) and not the baselines (Reset and ReDo would need
//! the dueling streams' topology; weight decay and L2 are not part of these agents).

use prunus_stage::{ParamSpec, ParamType, Params, StageError, Value};

use super::Algorithm;
use super::common::{self, Defaults, c51_support, spec};
use crate::kinds::param_err;
use crate::objectives::{Categorical, FullRainbow, Objective, TdLoss, Values};
use crate::presets::Preset;

pub const DRQ_EPS: &str = "train/drq-eps";
pub const DER: &str = "train/der";

pub const DRQ_EPS_DOC: &str = "Trains Dopamine's Atari-100k DrQ(eps) (labs/atari_100k DrQ_eps.gin: dueling double DQN, \
                 Huber loss, n = 10, DrQ's random-shift and intensity augmentation, target = online, \
                 no sticky actions, life-loss terminals, no-op starts) on an Atari game, optionally \
                 with gradual magnitude pruning; same outputs as train/dqn.";

pub const DER_DOC: &str = "Trains Dopamine's Atari-100k DER (labs/atari_100k DER.gin: noisy dueling double C51, \
                 n = 10, prioritized replay, no sticky actions, life-loss terminals, no-op starts) on \
                 an Atari game, optionally with gradual magnitude pruning; same outputs as train/dqn.";

/// Raw NOOP frames are drawn from `0..noops` at each episode start: Dopamine's `max_noops`.
const MAX_NOOPS: i64 = 30;

pub fn defaults(algorithm: Algorithm) -> Defaults {
    Defaults {
        n_step: 10,
        prioritized: algorithm == Algorithm::Der,
    }
}

/// The defaults the `0`-means-default parameters fall back to (the same values the specs
/// declare, so writing `0` means the agent's setting).
pub fn preset(algorithm: Algorithm) -> Preset {
    let der = algorithm == Algorithm::Der;
    Preset {
        steps: 100_000,
        iterations: 10,
        learning_rate: 1e-4,
        adam_epsilon: 1.5e-4,
        replay_capacity: 1_000_000,
        min_replay: 1_600,
        target_period: if der { 2_000 } else { 1 },
        epsilon_decay: if der { 2_000 } else { 5_000 },
        vmax: 10.0,
        network: "nature",
    }
}

/// Every parameter of the kind: the shared groups with these agents' defaults, then their own.
pub fn params(algorithm: Algorithm) -> Vec<ParamSpec> {
    let shared = common::leading(defaults(algorithm));
    let shared = with_defaults(shared, &overrides(algorithm));
    [shared, own(algorithm), common::pruning(), common::outputs()].concat()
}

/// `(key, default, doc)` replacing the shared parameters' defaults and docs.
fn overrides(algorithm: Algorithm) -> Vec<(&'static str, Value, &'static str)> {
    use Value::*;
    let der = algorithm == Algorithm::Der;
    vec![
        (
            "env.sticky",
            Float(0.0),
            "sticky-action probability (Atari 100k: none)",
        ),
        (
            "network",
            Str("nature".into()),
            "torso: nature (Dopamine's FullRainbowNetwork) | impala | minatar | minatar128 | minatar-resnet",
        ),
        (
            "steps",
            Int(100_000),
            "agent steps in total (Atari 100k: 100k; the paper's Fig. 8: 10M = 40M frames)",
        ),
        ("iterations", Int(10), "iterations (rows of returns.csv)"),
        (
            "eval-episodes",
            Int(100),
            "evaluation episodes after each iteration (MaxEpisodeEvalRunner.num_eval_episodes); 0: none",
        ),
        (
            "replay-ratio",
            Float(1.0),
            "gradient updates per agent step (update_period 1)",
        ),
        ("learning-rate", Float(1e-4), "Adam step size"),
        ("adam-epsilon", Float(1.5e-4), "Adam epsilon"),
        (
            "n-step",
            Int(10),
            "n of the n-step returns (update_horizon)",
        ),
        ("replay.capacity", Int(1_000_000), "replay frames"),
        (
            "min-replay",
            Int(1_600),
            "frames in replay before learning starts",
        ),
        (
            "target-update",
            Int(if der { 2_000 } else { 1 }),
            if der {
                "agent steps between target syncs"
            } else {
                "agent steps between target syncs (1: the target is the online network)"
            },
        ),
        (
            "epsilon.decay",
            Int(if der { 2_000 } else { 5_000 }),
            if der {
                "agent steps of the linear decay after warm-up (unused while noisy: epsilon is 0)"
            } else {
                "agent steps of the linear decay after warm-up"
            },
        ),
    ]
}

/// `specs` with the defaults and docs of `overrides` (each key must be among them).
fn with_defaults(
    mut specs: Vec<ParamSpec>,
    overrides: &[(&'static str, Value, &'static str)],
) -> Vec<ParamSpec> {
    for (key, default, doc) in overrides {
        let s = specs
            .iter_mut()
            .find(|s| s.key == *key)
            .unwrap_or_else(|| panic!("no shared parameter `{key}`"));
        s.default = Some(default.clone());
        s.doc = doc;
    }
    specs
}

/// The parameters only these kinds take.
fn own(algorithm: Algorithm) -> Vec<ParamSpec> {
    use ParamType::*;
    let der = algorithm == Algorithm::Der;
    let values = if der {
        c51_support(10.0, "C51 support [-vmax, vmax]")
    } else {
        vec![spec(
            "loss",
            Str,
            Some(Value::Str("huber".into())),
            "huber (Atari100kRainbowAgent mse_loss=False) | mse",
        )]
    };
    let flags = vec![
        spec(
            "dueling",
            Bool,
            Some(Value::Bool(true)),
            "dueling head: V + A - mean A",
        ),
        spec(
            "double-dqn",
            Bool,
            Some(Value::Bool(true)),
            "double DQN: the online network picks the next action, the target network values it",
        ),
        spec(
            "noisy",
            Bool,
            Some(Value::Bool(der)),
            "noisy dense layers (factorised Gaussian, sigma0 0.1; off in evaluation; epsilon 0 in training)",
        ),
        spec(
            "augment",
            Bool,
            Some(Value::Bool(!der)),
            "DrQ's augmentation of replayed states: random shift (edge padding 4, offsets 0..7) and intensity 1 + 0.05*clip(N(0,1), -2, 2)",
        ),
        spec(
            "env.life-loss",
            Bool,
            Some(Value::Bool(true)),
            "a lost life ends the agent's episode (terminal_on_life_loss); the game goes on",
        ),
        spec(
            "env.noops",
            Int,
            Some(Value::Int(MAX_NOOPS)),
            "each episode starts with 0..noops-1 random NOOP frames (max_noops); 0: none",
        ),
    ];
    [values, flags].concat()
}

/// The full-Rainbow objective these parameters name.
pub fn objective(algorithm: Algorithm, p: &Params) -> Result<Objective, StageError> {
    let values =
        if algorithm == Algorithm::Der {
            let atoms = p.u64("atoms")? as usize;
            if atoms < 2 {
                return Err(param_err(
                    "atoms",
                    format!("needs at least 2 atoms, got {atoms}"),
                ));
            }
            let vmax = p.f64("vmax")?;
            if !(vmax.is_finite() && vmax > 0.0) {
                return Err(param_err("vmax", format!("must be positive, got {vmax}")));
            }
            Values::C51(Categorical {
                atoms,
                vmin: -vmax as f32,
                vmax: vmax as f32,
            })
        } else {
            let loss = p.str("loss")?;
            Values::Q(TdLoss::parse(loss).ok_or_else(|| {
                param_err("loss", format!("unknown loss `{loss}`; use huber or mse"))
            })?)
        };
    Ok(Objective::FullRainbow(FullRainbow {
        values,
        double_dqn: p.bool("double-dqn")?,
        dueling: p.bool("dueling")?,
        noisy: p.bool("noisy")?,
        augment: p.bool("augment")?,
    }))
}

/// `env.life-loss` and `env.noops`; these are Atari agents, so `env` must be an Atari game.
pub fn episode_options(p: &Params, env: &str) -> Result<(bool, u32), StageError> {
    if !env.starts_with("atari/") {
        return Err(param_err(
            "env",
            format!("`{env}` is not an Atari game; the Atari-100k agents train on atari/<game>"),
        ));
    }
    let noops = p.u64("env.noops")?;
    let noops = u32::try_from(noops)
        .ok()
        .filter(|&n| n <= 10_000)
        .ok_or_else(|| {
            param_err(
                "env.noops",
                format!("must be at most 10000 (frames), got {noops}"),
            )
        })?;
    Ok((p.bool("env.life-loss")?, noops))
}
