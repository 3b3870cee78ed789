//! The parameters both training kinds take, in groups, and how to read them;
//! [`super::dqn`] and [`super::rainbow`] add their objective's own. Numeric defaults of `0`
//! mean "the environment family's default" ([`crate::presets`]), as each `doc` says.

use prunus_stage::{ParamSpec, ParamType, Params, StageError, Value};

use crate::kinds::param_err;

/// The shared parameters whose defaults differ by kind: Dopamine's DQN uses 1-step returns
/// and uniform replay, compact Rainbow 3-step returns and prioritized replay.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    pub n_step: i64,
    pub prioritized: bool,
}

pub(crate) fn spec(
    key: &'static str,
    ty: ParamType,
    default: Option<Value>,
    doc: &'static str,
) -> ParamSpec {
    ParamSpec::new(key, ty, default, doc)
}

/// The shared parameters ahead of the objective's (as `prunus kinds` lists them).
pub fn leading(defaults: Defaults) -> Vec<ParamSpec> {
    [
        environment(),
        network(),
        training(defaults),
        replay(defaults),
        exploration(),
    ]
    .concat()
}

/// The shared parameters after the objective's.
pub fn trailing() -> Vec<ParamSpec> {
    [pruning(), baselines(), outputs()].concat()
}

/// The environment and the seed.
fn environment() -> Vec<ParamSpec> {
    use ParamType::*;
    vec![
        spec(
            "env",
            Str,
            None,
            "environment: cartpole, acrobot, minatar/<game>, atari/<game>",
        ),
        spec(
            "env.sticky",
            Float,
            Some(Value::Float(-1.0)),
            "sticky-action probability; negative: the environment's default (Atari 0.25, MinAtar 0.1)",
        ),
        spec(
            "env.actions",
            Str,
            Some(Value::Str("default".into())),
            "default | minimal | full: the action set; default: Atari's minimal set (Dopamine), MinAtar's 6 actions (Dopamine's MinAtar agents)",
        ),
        spec(
            "env.max-steps",
            Int,
            Some(Value::Int(0)),
            "agent steps per episode cap; 0: the environment's default (Atari 27,000)",
        ),
        spec(
            "seed",
            Int,
            Some(Value::Int(0)),
            "seed of weights, exploration, replay sampling and environment",
        ),
    ]
}

/// The Q-network.
pub(crate) fn network() -> Vec<ParamSpec> {
    use ParamType::*;
    vec![
        spec(
            "network",
            Str,
            Some(Value::Str("auto".into())),
            "mlp | minatar | minatar128 | minatar-resnet | nature | impala; auto: impala (Atari), minatar (MinAtar), mlp (classic)",
        ),
        spec(
            "network.width",
            Float,
            Some(Value::Float(1.0)),
            "width multiplier of the convolutional channels (and of the hidden dense layers of nature/mlp)",
        ),
        spec(
            "network.hidden",
            Int,
            Some(Value::Int(256)),
            "mlp: units of each of its two hidden layers",
        ),
    ]
}

/// Length of training and the learning step.
fn training(defaults: Defaults) -> Vec<ParamSpec> {
    use ParamType::*;
    vec![
        spec(
            "steps",
            Int,
            Some(Value::Int(0)),
            "agent steps in total; 0: 10M (Atari, MinAtar), 100k (classic)",
        ),
        spec(
            "iterations",
            Int,
            Some(Value::Int(0)),
            "iterations (rows of returns.csv); 0: 40 (Atari), 10 (MinAtar), 20 (classic)",
        ),
        spec(
            "eval-episodes",
            Int,
            Some(Value::Int(0)),
            "evaluation episodes after each iteration (epsilon-eval); 0: none, Dopamine's continuous_train",
        ),
        spec(
            "replay-ratio",
            Float,
            Some(Value::Float(0.25)),
            "gradient updates per agent step (0.25: one every 4 steps, Dopamine's update_period 4)",
        ),
        spec(
            "batch-size",
            Int,
            Some(Value::Int(32)),
            "transitions per gradient step",
        ),
        spec(
            "learning-rate",
            Float,
            Some(Value::Float(0.0)),
            "Adam step size; 0: 6.25e-5 (Atari), 2.5e-4 (MinAtar), 1e-3 (classic)",
        ),
        spec(
            "adam-epsilon",
            Float,
            Some(Value::Float(0.0)),
            "Adam epsilon; 0: 1.5e-4 (Atari), 3.125e-4 (MinAtar, classic)",
        ),
        spec("gamma", Float, Some(Value::Float(0.99)), "discount"),
        spec(
            "n-step",
            Int,
            Some(Value::Int(defaults.n_step)),
            "n of the n-step returns (update_horizon)",
        ),
    ]
}

/// Replay and the target network.
fn replay(defaults: Defaults) -> Vec<ParamSpec> {
    use ParamType::*;
    vec![
        spec(
            "replay.capacity",
            Int,
            Some(Value::Int(0)),
            "replay frames; 0: 1M (Atari), 100k (MinAtar), 50k (classic)",
        ),
        spec(
            "replay.prioritized",
            Bool,
            Some(Value::Bool(defaults.prioritized)),
            "prioritized replay (Dopamine's scheme: sqrt-loss priorities, beta 0.5)",
        ),
        spec(
            "min-replay",
            Int,
            Some(Value::Int(0)),
            "frames in replay before learning starts; 0: 20k (Atari), 1k (MinAtar), 500 (classic)",
        ),
        spec(
            "target-update",
            Int,
            Some(Value::Int(0)),
            "agent steps between target syncs; 0: 8k (Atari), 1k (MinAtar), 100 (classic)",
        ),
    ]
}

/// Exploration and rewards.
fn exploration() -> Vec<ParamSpec> {
    use ParamType::*;
    vec![
        spec(
            "epsilon.train",
            Float,
            Some(Value::Float(0.01)),
            "final training epsilon",
        ),
        spec(
            "epsilon.eval",
            Float,
            Some(Value::Float(0.001)),
            "evaluation epsilon",
        ),
        spec(
            "epsilon.decay",
            Int,
            Some(Value::Int(0)),
            "agent steps of the linear decay after warm-up; 0: 250k (Atari, MinAtar), 5k (classic)",
        ),
        spec(
            "clip-rewards",
            Bool,
            Some(Value::Bool(true)),
            "clip rewards to [-1, 1] for learning (returns are reported unclipped)",
        ),
    ]
}

/// Gradual magnitude pruning.
pub(crate) fn pruning() -> Vec<ParamSpec> {
    use ParamType::*;
    vec![
        spec(
            "prune",
            Str,
            Some(Value::Str("none".into())),
            "none | gmp (gradual magnitude pruning, JaxPruner's Dopamine baseline)",
        ),
        spec(
            "prune.sparsity",
            Float,
            Some(Value::Float(0.95)),
            "final sparsity of the pruned kernels",
        ),
        spec(
            "prune.start",
            Float,
            Some(Value::Float(0.2)),
            "fraction of gradient steps where pruning starts",
        ),
        spec(
            "prune.end",
            Float,
            Some(Value::Float(0.8)),
            "fraction of gradient steps where the final sparsity is reached",
        ),
        spec(
            "prune.frequency",
            Int,
            Some(Value::Int(1000)),
            "gradient steps between mask updates",
        ),
        spec(
            "prune.distribution",
            Str,
            Some(Value::Str("erk".into())),
            "erk | uniform: how sparsity is spread over layers",
        ),
    ]
}

/// The paper's baselines: weight decay, L2, Reset, ReDo.
fn baselines() -> Vec<ParamSpec> {
    use ParamType::*;
    vec![
        spec(
            "weight-decay",
            Float,
            Some(Value::Float(0.0)),
            "coupled weight decay g + wd*w on every parameter (biases too) before Adam (Dopamine ReDo lab's add_decayed_weights); 0: off",
        ),
        spec(
            "l2",
            Bool,
            Some(Value::Bool(false)),
            "the L2 of Kumar et al. 2022: divide the features fed to the Q head by their per-sample L2 norm (Dopamine's normalize_representation)",
        ),
        spec(
            "reset.period",
            Int,
            Some(Value::Int(0)),
            "Reset (Nikishin et al. 2022): gradient steps between re-initialisations of the last layers; 0: off",
        ),
        spec(
            "reset.start",
            Int,
            Some(Value::Int(0)),
            "Reset: the first gradient step at which a reset may happen",
        ),
        spec(
            "reset.end",
            Int,
            Some(Value::Int(0)),
            "Reset: resets stop before this gradient step (Dopamine's reset_end_step); 0: never",
        ),
        spec(
            "reset.layers",
            Int,
            Some(Value::Int(2)),
            "Reset: layers counted from the output that are re-initialised (kernels as at construction, biases 0, their Adam moments 0)",
        ),
        spec(
            "redo.period",
            Int,
            Some(Value::Int(0)),
            "ReDo (Sokar et al. 2023): gradient steps between recycles of dormant neurons; 0: off",
        ),
        spec(
            "redo.start",
            Int,
            Some(Value::Int(0)),
            "ReDo: the first gradient step at which recycling may happen",
        ),
        spec(
            "redo.end",
            Int,
            Some(Value::Int(0)),
            "ReDo: recycling stops before this gradient step (Dopamine's reset_end_step); 0: never",
        ),
        spec(
            "redo.tau",
            Float,
            Some(Value::Float(0.025)),
            "ReDo: a neuron is dormant when its normalised mean |activation| is <= tau",
        ),
        spec(
            "redo.batch",
            Int,
            Some(Value::Int(256)),
            "ReDo: replay states sampled to score the neurons",
        ),
    ]
}

/// Checkpoints, the probe batch and the device.
pub(crate) fn outputs() -> Vec<ParamSpec> {
    use ParamType::*;
    vec![
        spec(
            "checkpoints",
            FloatList,
            Some(Value::List(vec![
                Value::Float(0.25),
                Value::Float(0.5),
                Value::Float(0.75),
                Value::Float(1.0),
            ])),
            "fractions of training at which ckpt-<k>.ckpt snapshots are written (for the probes)",
        ),
        spec(
            "probe-batch",
            Int,
            Some(Value::Int(256)),
            "transitions in probe_batch.bin (sampled from replay at the end, fixed seed)",
        ),
        spec(
            "device",
            Str,
            Some(Value::Str("cpu".into())),
            "cpu | cuda (needs a build with --features cuda)",
        ),
    ]
}

/// The `[start, end)` window of gradient steps of a periodic baseline (`reset` or `redo`);
/// an end of 0 means none.
pub(super) fn window(params: &Params, name: &str) -> Result<(u64, u64), StageError> {
    let start = params.u64(&format!("{name}.start"))?;
    let end = match params.u64(&format!("{name}.end"))? {
        0 => u64::MAX,
        end if end <= start => {
            return Err(param_err(
                &format!("{name}.end"),
                format!("must be after {name}.start ({start}), got {end}; 0 means never"),
            ));
        }
        end => end,
    };
    Ok((start, end))
}

/// The integer parameter `key`, or `default` when it is 0.
pub(crate) fn or_default(params: &Params, key: &str, default: u64) -> Result<u64, StageError> {
    let v = params.u64(key)?;
    Ok(if v == 0 { default } else { v })
}

/// The non-negative float parameter `key`, or `default` when it is 0.
pub(crate) fn or_default_f(params: &Params, key: &str, default: f64) -> Result<f64, StageError> {
    let v = params.f64(key)?;
    if v < 0.0 {
        return Err(param_err(key, format!("must not be negative, got {v}")));
    }
    Ok(if v == 0.0 { default } else { v })
}

/// The files a training run writes: returns, sparsities, the final network, the
/// `checkpoints` fractions' snapshots with their index, and the probes' batch.
pub(crate) fn training_outputs(params: &Params) -> Vec<String> {
    let mut out: Vec<String> = [
        "returns.csv",
        "sparsity.csv",
        "final.ckpt",
        "checkpoints.json",
        "probe_batch.bin",
    ]
    .map(String::from)
    .into();
    let n = params.f64s("checkpoints").map(|v| v.len()).unwrap_or(0);
    out.extend((0..n).map(|k| format!("ckpt-{k}.ckpt")));
    out
}

/// C51's support: `atoms` (51, as Dopamine's gins) and `vmax` with its default and meaning.
pub(crate) fn c51_support(vmax: f64, vmax_doc: &'static str) -> Vec<ParamSpec> {
    vec![
        spec(
            "atoms",
            ParamType::Int,
            Some(Value::Int(51)),
            "atoms of the C51 support",
        ),
        spec("vmax", ParamType::Float, Some(Value::Float(vmax)), vmax_doc),
    ]
}
