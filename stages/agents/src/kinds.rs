//! The stage kinds `train/dqn` and `train/rainbow`.
//!
//! Defaults are Dopamine's (REFERENCE.md, FACTS.md §1, §2, §10.7), chosen by the environment's
//! family because the paper's Atari settings and Dopamine's MinAtar settings differ: numeric
//! hyperparameters whose default is `0` mean "the family default" (listed in each `doc`).
//! The cache key covers the values as written; the resolved values are logged.

use std::io::Write;
use std::path::Path;

use prunus_env::{Env, ObsKind};
use prunus_sparsity::{RedoConfig, ResetConfig};
use prunus_stage::{
    Context, ParamSpec, ParamType, Params, Resources, StageError, StageKind, Value,
};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use crate::agent::{Agent, AgentConfig, Objective};
use crate::baselines::{RedoHook, ResetHook};
use crate::checkpoint::{CheckpointEntry, ProbeBatch, Resume, Snapshot};
use crate::dqn::TdLoss;
use crate::networks::{Architecture, NetworkConfig};
use crate::prune::{GmpHook, PruneSettings};
use crate::rainbow::Categorical;
use crate::replay::{Replay, ReplayConfig};
use crate::train::{IterationStats, LoopConfig, Trainer, UpdateHook};

/// Which agent a kind trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Dqn,
    Rainbow,
}

/// How the kinds ask for an environment (`env` name, options); see [`EnvSettings`].
pub type EnvFactory = fn(&str, &EnvSettings) -> Result<Box<dyn Env>, String>;

/// The environment options the kinds set (mapped onto `prunus_env::EnvOptions`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvSettings {
    /// `None`: the environment's paper default.
    pub sticky_action_prob: Option<f32>,
    /// `None`: the environment's default cap.
    pub max_episode_steps: Option<u64>,
    /// `Some(true)`: the platform's full action set; `Some(false)`: the game's minimal set;
    /// `None`: the paper default (Atari minimal, MinAtar all 6).
    pub full_action_set: Option<bool>,
}

/// `train/dqn` or `train/rainbow`.
pub struct TrainKind {
    pub algorithm: Algorithm,
    /// Where environments come from (prunus-env's factory; tests may substitute their own).
    pub env_factory: EnvFactory,
}

impl TrainKind {
    pub fn new(algorithm: Algorithm) -> Self {
        TrainKind {
            algorithm,
            env_factory: crate::envs::make,
        }
    }
}

/// Environment families with their own defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Atari,
    MinAtar,
    Classic,
}

impl Family {
    fn of(env: &str) -> Self {
        if env.starts_with("atari/") {
            Family::Atari
        } else if env.starts_with("minatar/") {
            Family::MinAtar
        } else {
            Family::Classic
        }
    }
}

/// Family defaults, used where a numeric parameter is left at 0.
struct Preset {
    steps: u64,
    iterations: u64,
    learning_rate: f64,
    adam_epsilon: f64,
    replay_capacity: u64,
    min_replay: u64,
    target_period: u64,
    epsilon_decay: u64,
    vmax: f64,
    network: &'static str,
}

fn preset(family: Family) -> Preset {
    match family {
        // Dopamine JAX DQN/Rainbow gins, JaxPruner's 40 iterations (FACTS.md §1.1, §2.1, §4.1).
        Family::Atari => Preset {
            steps: 10_000_000,
            iterations: 40,
            learning_rate: 6.25e-5,
            adam_epsilon: 1.5e-4,
            replay_capacity: 1_000_000,
            min_replay: 20_000,
            target_period: 8_000,
            epsilon_decay: 250_000,
            vmax: 10.0,
            network: "impala",
        },
        // Dopamine's MinAtar gins (FACTS.md §10.7).
        Family::MinAtar => Preset {
            steps: 10_000_000,
            iterations: 10,
            learning_rate: 2.5e-4,
            adam_epsilon: 3.125e-4,
            replay_capacity: 100_000,
            min_replay: 1_000,
            target_period: 1_000,
            epsilon_decay: 250_000,
            vmax: 100.0,
            network: "minatar",
        },
        // Dopamine's classic-control gins (`dqn_cartpole.gin`): Adam 1e-3, small replay.
        Family::Classic => Preset {
            steps: 100_000,
            iterations: 20,
            learning_rate: 1e-3,
            adam_epsilon: 3.125e-4,
            replay_capacity: 50_000,
            min_replay: 500,
            target_period: 100,
            epsilon_decay: 5_000,
            vmax: 100.0,
            network: "mlp",
        },
    }
}

fn spec(key: &'static str, ty: ParamType, default: Option<Value>, doc: &'static str) -> ParamSpec {
    ParamSpec::new(key, ty, default, doc)
}

impl StageKind for TrainKind {
    fn name(&self) -> &'static str {
        match self.algorithm {
            Algorithm::Dqn => "train/dqn",
            Algorithm::Rainbow => "train/rainbow",
        }
    }

    fn version(&self) -> u32 {
        // 2: optax-exact Adam (rounding differs from burn's), snapshot/resume format v2.
        2
    }

    fn doc(&self) -> &'static str {
        match self.algorithm {
            Algorithm::Dqn => {
                "Trains Dopamine's JAX DQN (MSE loss, Adam, hard target updates) on an environment, \
                 optionally with gradual magnitude pruning and/or the paper's baselines (weight decay, \
                 L2 feature normalisation, Reset, ReDo); writes per-iteration returns, layer \
                 sparsities, checkpoints for the probes and a fixed probe batch. Resumes after a kill."
            }
            Algorithm::Rainbow => {
                "Trains Dopamine's compact Rainbow (C51, 3-step returns, prioritized replay) on an \
                 environment, optionally with gradual magnitude pruning and/or the baselines (weight \
                 decay, L2, Reset, ReDo); same outputs as train/dqn."
            }
        }
    }

    fn deterministic(&self) -> bool {
        // Bit-reproducible on the CPU backend given the seed; GPU runs are not, and declare so
        // through `device = "cuda"`, which the engine sees in the key.
        true
    }

    fn params(&self) -> Vec<ParamSpec> {
        use ParamType::*;
        let rainbow = self.algorithm == Algorithm::Rainbow;
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
            spec(
                "network",
                Str,
                Some(Value::Str("auto".into())),
                "mlp | minatar | nature | impala; auto: impala (Atari), minatar (MinAtar), mlp (classic)",
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
                Some(Value::Int(if rainbow { 3 } else { 1 })),
                "n of the n-step returns (update_horizon)",
            ),
            spec(
                "replay.capacity",
                Int,
                Some(Value::Int(0)),
                "replay frames; 0: 1M (Atari), 100k (MinAtar), 50k (classic)",
            ),
            spec(
                "replay.prioritized",
                Bool,
                Some(Value::Bool(rainbow)),
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
            spec(
                "loss",
                Str,
                Some(Value::Str("mse".into())),
                "train/dqn: mse (Dopamine JAX default) | huber",
            ),
            spec(
                "atoms",
                Int,
                Some(Value::Int(51)),
                "train/rainbow: atoms of the C51 support",
            ),
            spec(
                "vmax",
                Float,
                Some(Value::Float(0.0)),
                "train/rainbow: support [-vmax, vmax]; 0: 10 (Atari), 100 (MinAtar, classic)",
            ),
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

    fn outputs(&self, params: &Params) -> Vec<String> {
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

    fn resources(&self, params: &Params) -> Resources {
        let gpu = matches!(params.str("device"), Ok("cuda"));
        let env = params.str("env").unwrap_or("");
        let memory_mb = match Family::of(env) {
            // 1M frames of 84×84 bytes plus networks.
            Family::Atari => 12_000,
            _ => 2_000,
        };
        Resources {
            cpus: 1,
            gpus: gpu as u32,
            memory_mb,
        }
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let setup = Setup::new(self.algorithm, self.env_factory, &ctx.params)?;
        ctx.log(format!(
            "resolved settings: {}",
            serde_json::to_string(&setup.resolved).unwrap_or_default()
        ));
        run_training(&setup, ctx)
    }
}

fn param_err(key: &str, message: impl Into<String>) -> StageError {
    StageError::Param {
        key: key.to_string(),
        message: message.into(),
    }
}

/// The `[start, end)` window of gradient steps of a periodic baseline (`reset` or `redo`);
/// an end of 0 means none.
fn window(params: &Params, name: &str) -> Result<(u64, u64), StageError> {
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

fn or_default(params: &Params, key: &str, default: u64) -> Result<u64, StageError> {
    let v = params.u64(key)?;
    Ok(if v == 0 { default } else { v })
}

fn or_default_f(params: &Params, key: &str, default: f64) -> Result<f64, StageError> {
    let v = params.f64(key)?;
    if v < 0.0 {
        return Err(param_err(key, format!("must not be negative, got {v}")));
    }
    Ok(if v == 0.0 { default } else { v })
}

/// ReDo's schedule and threshold, and how many replay states score the neurons.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RedoSettings {
    pub config: RedoConfig,
    pub batch: usize,
}

/// Everything a run needs, resolved from the parameters.
pub struct Setup {
    pub env_name: String,
    pub env_options: EnvSettings,
    pub env_factory: EnvFactory,
    pub agent: AgentConfig,
    pub replay: ReplayConfig,
    pub loop_config: LoopConfig,
    pub prune: Option<PruneSettings>,
    /// Reset baseline (Nikishin et al. 2022), off when `None`.
    pub reset: Option<ResetConfig>,
    /// ReDo baseline (Sokar et al. 2023), off when `None`.
    pub redo: Option<RedoSettings>,
    pub checkpoints: Vec<f64>,
    pub probe_batch: usize,
    pub device: burn::tensor::Device,
    /// The parameters as given (the scratch checkpoint must belong to the same run).
    pub fingerprint: String,
    /// Resolved values, logged.
    pub resolved: serde_json::Value,
}

impl Setup {
    pub fn new(
        algorithm: Algorithm,
        env_factory: EnvFactory,
        p: &Params,
    ) -> Result<Self, StageError> {
        let env_name = p.str("env")?.to_string();
        let family = Family::of(&env_name);
        let d = preset(family);
        let sticky = p.f64("env.sticky")?;
        let max_steps = p.u64("env.max-steps")?;
        let full_action_set = match p.str("env.actions")? {
            "default" => None,
            "minimal" => Some(false),
            "full" => Some(true),
            other => {
                return Err(param_err(
                    "env.actions",
                    format!("unknown action set `{other}`; use default, minimal or full"),
                ));
            }
        };
        let env_options = EnvSettings {
            sticky_action_prob: (sticky >= 0.0).then_some(sticky as f32),
            max_episode_steps: (max_steps > 0).then_some(max_steps),
            full_action_set,
        };
        if sticky > 1.0 {
            return Err(param_err(
                "env.sticky",
                format!("is a probability, got {sticky}"),
            ));
        }
        let probe = env_factory(&env_name, &env_options).map_err(|e| param_err("env", e))?;
        let spec = probe.spec().clone();
        let network = match p.str("network")? {
            "auto" => d.network,
            other => other,
        };
        let hidden = p.u64("network.hidden")? as usize;
        let architecture = Architecture::parse(network, &[hidden, hidden]).ok_or_else(|| {
            param_err(
                "network",
                format!(
                    "unknown network `{network}`; use mlp, minatar, minatar128, nature or impala"
                ),
            )
        })?;
        let width = p.f64("network.width")?;
        if width.is_nan() || width <= 0.0 {
            return Err(param_err(
                "network.width",
                format!("must be positive, got {width}"),
            ));
        }
        let is_image = spec.shape.len() == 3;
        let input = if is_image {
            vec![
                spec.shape[0] * spec.frame_stack,
                spec.shape[1],
                spec.shape[2],
            ]
        } else {
            vec![spec.shape.iter().product::<usize>() * spec.frame_stack]
        };
        if !is_image && !matches!(architecture, Architecture::Mlp { .. }) {
            return Err(param_err(
                "network",
                format!(
                    "`{network}` is convolutional but {env_name} has vector observations; use mlp"
                ),
            ));
        }
        let input_scale = if spec.kind == ObsKind::Byte {
            1.0 / 255.0
        } else {
            1.0
        };
        let objective = match algorithm {
            Algorithm::Dqn => {
                let loss = p.str("loss")?;
                Objective::Dqn(TdLoss::parse(loss).ok_or_else(|| {
                    param_err("loss", format!("unknown loss `{loss}`; use mse or huber"))
                })?)
            }
            Algorithm::Rainbow => {
                let atoms = p.u64("atoms")? as usize;
                if atoms < 2 {
                    return Err(param_err("atoms", "needs at least 2 atoms"));
                }
                let vmax = or_default_f(p, "vmax", d.vmax)? as f32;
                Objective::C51(Categorical {
                    atoms,
                    vmin: -vmax,
                    vmax,
                })
            }
        };
        let agent = AgentConfig {
            network: NetworkConfig {
                architecture,
                width,
                input,
                outputs: spec.num_actions,
                input_scale,
                normalize_features: p.bool("l2")?,
            },
            num_actions: spec.num_actions,
            objective,
            learning_rate: or_default_f(p, "learning-rate", d.learning_rate)?,
            adam_epsilon: or_default_f(p, "adam-epsilon", d.adam_epsilon)? as f32,
            weight_decay: {
                let wd = p.f64("weight-decay")?;
                if !(wd >= 0.0 && wd.is_finite()) {
                    return Err(param_err(
                        "weight-decay",
                        format!("must be a finite number >= 0, got {wd}"),
                    ));
                }
                wd
            },
        };
        let gamma = p.f64("gamma")?;
        if !(0.0..=1.0).contains(&gamma) {
            return Err(param_err(
                "gamma",
                format!("must be in [0, 1], got {gamma}"),
            ));
        }
        let n_step = p.u64("n-step")?.max(1) as usize;
        let replay = ReplayConfig {
            capacity: or_default(p, "replay.capacity", d.replay_capacity)? as usize,
            frame_len: spec.shape.iter().product(),
            kind: spec.kind.into(),
            stack: spec.frame_stack,
            n_step,
            gamma,
            prioritized: p.bool("replay.prioritized")?,
        };
        if replay.capacity <= n_step + spec.frame_stack + 1 {
            return Err(param_err(
                "replay.capacity",
                "too small for the n-step window",
            ));
        }
        let steps = or_default(p, "steps", d.steps)?;
        let iterations = or_default(p, "iterations", d.iterations)?;
        if steps % iterations != 0 {
            return Err(param_err(
                "steps",
                format!(
                    "{steps} steps do not split into {iterations} equal iterations; make `steps` a multiple of `iterations`"
                ),
            ));
        }
        let replay_ratio = p.f64("replay-ratio")?;
        if replay_ratio.is_nan() || replay_ratio <= 0.0 {
            return Err(param_err(
                "replay-ratio",
                format!("must be positive, got {replay_ratio}"),
            ));
        }
        let loop_config = LoopConfig {
            iterations,
            training_steps: steps / iterations,
            eval_episodes: p.u64("eval-episodes")?,
            replay_ratio,
            min_replay_history: or_default(p, "min-replay", d.min_replay)?,
            target_update_period: or_default(p, "target-update", d.target_period)?,
            epsilon_train: p.f64("epsilon.train")?,
            epsilon_eval: p.f64("epsilon.eval")?,
            epsilon_decay_period: or_default(p, "epsilon.decay", d.epsilon_decay)?,
            batch_size: p.u64("batch-size")?.max(1) as usize,
            clip_rewards: p.bool("clip-rewards")?,
            seed: p.u64("seed")?,
        };
        let prune = match p.str("prune")? {
            "none" => None,
            "gmp" => {
                let s = PruneSettings {
                    sparsity: p.f64("prune.sparsity")?,
                    start: p.f64("prune.start")?,
                    end: p.f64("prune.end")?,
                    frequency: p.u64("prune.frequency")?.max(1),
                    distribution: p.str("prune.distribution")?.to_string(),
                };
                if !(0.0..1.0).contains(&s.sparsity) {
                    return Err(param_err(
                        "prune.sparsity",
                        format!("must be in [0, 1), got {}", s.sparsity),
                    ));
                }
                if !(0.0 <= s.start && s.start <= s.end && s.end <= 1.0) {
                    return Err(param_err(
                        "prune.start",
                        format!(
                            "need 0 <= start <= end <= 1, got start {} end {}",
                            s.start, s.end
                        ),
                    ));
                }
                Some(s)
            }
            other => {
                return Err(param_err(
                    "prune",
                    format!("unknown pruning method `{other}`; use none or gmp"),
                ));
            }
        };
        let reset = match p.u64("reset.period")? {
            0 => None,
            period => {
                let layers = p.u64("reset.layers")? as usize;
                if layers == 0 {
                    return Err(param_err("reset.layers", "must be at least 1 (the head)"));
                }
                let (start, end) = window(p, "reset")?;
                Some(ResetConfig {
                    last_layers: layers,
                    period,
                    start,
                    end,
                })
            }
        };
        let redo = match p.u64("redo.period")? {
            0 => None,
            period => {
                let tau = p.f64("redo.tau")?;
                if !(tau >= 0.0 && tau.is_finite()) {
                    return Err(param_err(
                        "redo.tau",
                        format!("must be a finite number >= 0, got {tau}"),
                    ));
                }
                let batch = p.u64("redo.batch")? as usize;
                if batch == 0 {
                    return Err(param_err("redo.batch", "must be at least 1"));
                }
                let (start, end) = window(p, "redo")?;
                Some(RedoSettings {
                    config: RedoConfig {
                        tau: tau as f32,
                        period,
                        start,
                        end,
                    },
                    batch,
                })
            }
        };
        let checkpoints = p.f64s("checkpoints")?;
        if let Some(bad) = checkpoints.iter().find(|f| !(0.0..=1.0).contains(*f)) {
            return Err(param_err(
                "checkpoints",
                format!("fractions must be in [0, 1], got {bad}"),
            ));
        }
        let device = crate::device(p.str("device")?).map_err(|e| param_err("device", e))?;
        let fingerprint = serde_json::to_string(&p.0).unwrap_or_default();
        let resolved = serde_json::json!({
            "agent": agent, "replay": replay, "loop": loop_config, "prune": prune,
            "reset": reset, "redo": redo,
        });
        Ok(Setup {
            env_name,
            env_options,
            env_factory,
            agent,
            replay,
            loop_config,
            prune,
            reset,
            redo,
            checkpoints,
            probe_batch: p.u64("probe-batch")?.max(1) as usize,
            device,
            fingerprint,
            resolved,
        })
    }

    /// Gradient steps this run will take (for the pruning schedule).
    pub fn total_grad_steps(&self) -> u64 {
        let c = &self.loop_config;
        let learning_steps = (c.iterations * c.training_steps).saturating_sub(c.min_replay_history);
        (learning_steps as f64 * c.replay_ratio).floor() as u64
    }
}

/// Outputs accumulated during the run (kept in the resume checkpoint).
struct Progress {
    rows: Vec<(IterationStats, f64)>,
    sparsity_rows: Vec<(u64, String, f64)>,
    checkpoints: Vec<(CheckpointEntry, Snapshot)>,
}

fn build_trainer(setup: &Setup, resume: Option<&Resume>) -> Result<Trainer, String> {
    let env = (setup.env_factory)(&setup.env_name, &setup.env_options)?;
    let mut hooks: Vec<Box<dyn UpdateHook>> = Vec::new();
    let mut trainer = match resume {
        None => {
            let mut rng = Pcg64::seed_from_u64(setup.loop_config.seed);
            let agent = Agent::new(setup.agent.clone(), &mut rng, &setup.device);
            Trainer::new(
                setup.loop_config.clone(),
                agent,
                Replay::new(setup.replay.clone()),
                env,
            )
        }
        Some(r) => {
            let agent = Agent::load(setup.agent.clone(), &r.agent, &setup.device)?;
            Trainer::restore(
                setup.loop_config.clone(),
                agent,
                r.replay.clone(),
                env,
                r.state.clone(),
            )?
        }
    };
    // Order matters: Reset and ReDo edit weights after the optimizer step, then GMP re-applies
    // its masks, so re-initialised weights at pruned positions are zeroed at once.
    let seed = setup.loop_config.seed;
    if let Some(reset) = setup.reset {
        let layers = trainer.agent.network().num_layers();
        hooks.push(Box::new(ResetHook::new(reset, seed, layers)?));
    }
    if let Some(redo) = &setup.redo {
        hooks.push(Box::new(RedoHook::new(redo.config, redo.batch, seed)));
    }
    if let Some(prune) = &setup.prune {
        hooks.push(Box::new(GmpHook::new(
            prune,
            setup.total_grad_steps(),
            &trainer.agent.network().kernels(),
        )?));
    }
    if let Some(r) = resume {
        if r.hooks.len() != hooks.len() {
            return Err("the scratch checkpoint's hooks do not match this run's".into());
        }
        for (hook, state) in hooks.iter_mut().zip(&r.hooks) {
            hook.restore(state, &setup.device)?;
        }
    }
    trainer.hooks = hooks;
    Ok(trainer)
}

fn snapshot(trainer: &Trainer) -> Result<Snapshot, String> {
    let state = trainer.agent.save()?;
    Ok(Snapshot {
        agent: trainer.agent.config().clone(),
        online: state.online,
        masks: trainer
            .hooks
            .iter()
            .map(|h| h.masks())
            .find(|m| !m.is_empty())
            .unwrap_or_default(),
        env_steps: trainer.state.env_steps,
        grad_steps: trainer.state.grad_steps,
        iteration: trainer.state.iteration,
    })
}

fn save_resume(
    path: &Path,
    setup: &Setup,
    trainer: &Trainer,
    progress: &Progress,
) -> Result<(), StageError> {
    let resume = Resume {
        fingerprint: setup.fingerprint.clone(),
        agent: trainer.agent.save().map_err(StageError::Failed)?,
        replay: trainer.replay.clone(),
        state: trainer.state.clone(),
        hooks: trainer.hooks.iter().map(|h| h.save()).collect(),
        rows: progress.rows.clone(),
        sparsity_rows: progress.sparsity_rows.clone(),
        checkpoints: progress.checkpoints.clone(),
    };
    resume.write(path).map_err(StageError::Io)
}

/// Per-layer sparsity of the online network (exact zeros), with the overall sparsity of the
/// pruned layers (all kernels when pruning, 0 otherwise).
fn layer_sparsities(trainer: &Trainer) -> (Vec<(String, f64)>, f64) {
    // The pruning hook's layers (the only hook that reports sparsities).
    if let Some(layers) = trainer
        .hooks
        .iter()
        .map(|h| h.sparsities())
        .find(|l| !l.is_empty())
    {
        let kernels = trainer.agent.network().kernels();
        let sizes: Vec<f64> = kernels
            .iter()
            .map(|k| k.shape.iter().product::<usize>() as f64)
            .collect();
        let zeros: f64 = layers.iter().zip(&sizes).map(|((_, s), n)| s * n).sum();
        return (layers, zeros / sizes.iter().sum::<f64>());
    }
    let net = trainer.agent.network();
    let layers = net
        .kernels()
        .into_iter()
        .zip(net.kernel_values())
        .map(|(k, v)| {
            (
                k.name,
                v.iter().filter(|&&x| x == 0.0).count() as f64 / v.len() as f64,
            )
        })
        .collect();
    (layers, 0.0)
}

/// The training run behind both kinds: resume if the scratch holds this run's checkpoint,
/// train iteration by iteration (checkpointing each), write the outputs.
pub fn run_training(setup: &Setup, ctx: &Context) -> Result<(), StageError> {
    std::fs::create_dir_all(&ctx.scratch)?;
    let resume_path = ctx.scratch.join("resume.ckpt");
    let resume = match Resume::read(&resume_path) {
        Ok(r) if r.fingerprint == setup.fingerprint => Some(r),
        Ok(_) => {
            ctx.log("scratch checkpoint belongs to other parameters; starting afresh");
            None
        }
        Err(_) if !resume_path.exists() => None,
        Err(e) => {
            ctx.log(format!("ignoring unreadable scratch checkpoint: {e}"));
            None
        }
    };
    let mut trainer = build_trainer(setup, resume.as_ref()).map_err(StageError::Failed)?;
    let mut progress = match resume {
        Some(r) => {
            ctx.log(format!(
                "resuming at agent step {} (iteration {})",
                r.state.env_steps, r.state.iteration
            ));
            Progress {
                rows: r.rows,
                sparsity_rows: r.sparsity_rows,
                checkpoints: r.checkpoints,
            }
        }
        None => Progress {
            rows: Vec::new(),
            sparsity_rows: Vec::new(),
            checkpoints: Vec::new(),
        },
    };
    let c = &setup.loop_config;
    let total = c.iterations * c.training_steps;
    let chunk = 1_000;
    while !trainer.done() {
        trainer.train_steps(chunk).map_err(StageError::Failed)?;
        ctx.progress(trainer.state.env_steps, total, "steps");
        if trainer.training_phase_done() {
            let stats = trainer.finish_iteration();
            let (layers, sparsity) = layer_sparsities(&trainer);
            for (name, s) in layers {
                progress.sparsity_rows.push((stats.grad_steps, name, s));
            }
            ctx.log(format!(
                "iteration {}: env steps {}, train return {}, eval return {}, sparsity {sparsity:.4}",
                stats.iteration,
                stats.env_steps,
                fmt_opt(stats.train_return),
                fmt_opt(stats.eval_return)
            ));
            for hook in &mut trainer.hooks {
                if let Some(report) = hook.report() {
                    ctx.log(format!("iteration {}: {report}", stats.iteration));
                }
            }
            progress.rows.push((stats, sparsity));
            let done_iters = trainer.state.iteration;
            for (k, &f) in setup.checkpoints.iter().enumerate() {
                let at = ((f * c.iterations as f64).ceil() as u64).max(1);
                if at == done_iters && !progress.checkpoints.iter().any(|(e, _)| e.index == k) {
                    let snap = snapshot(&trainer).map_err(StageError::Failed)?;
                    let entry = CheckpointEntry {
                        index: k,
                        fraction: f,
                        file: format!("ckpt-{k}.ckpt"),
                        iteration: done_iters,
                        env_steps: snap.env_steps,
                        grad_steps: snap.grad_steps,
                    };
                    progress.checkpoints.push((entry, snap));
                }
            }
            save_resume(&resume_path, setup, &trainer, &progress)?;
        }
        if ctx.cancelled() {
            save_resume(&resume_path, setup, &trainer, &progress)?;
            return Err(StageError::Cancelled);
        }
    }
    write_outputs(setup, ctx, &trainer, &progress)
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "NaN".to_string(), |v| format!("{v}"))
}

fn write_outputs(
    setup: &Setup,
    ctx: &Context,
    trainer: &Trainer,
    progress: &Progress,
) -> Result<(), StageError> {
    std::fs::create_dir_all(&ctx.out_dir)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(ctx.output("returns.csv"))?);
    writeln!(
        f,
        "iteration,env_steps,grad_steps,train_return,train_episodes,eval_return,eval_episodes,sparsity"
    )?;
    for (s, sparsity) in &progress.rows {
        writeln!(
            f,
            "{},{},{},{},{},{},{},{}",
            s.iteration,
            s.env_steps,
            s.grad_steps,
            fmt_opt(s.train_return),
            s.train_episodes,
            fmt_opt(s.eval_return),
            s.eval_episodes,
            sparsity
        )?;
    }
    f.flush()?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(ctx.output("sparsity.csv"))?);
    writeln!(f, "grad_steps,layer,sparsity")?;
    for (g, layer, s) in &progress.sparsity_rows {
        writeln!(f, "{g},{layer},{s}")?;
    }
    f.flush()?;
    snapshot(trainer)
        .map_err(StageError::Failed)?
        .write(&ctx.output("final.ckpt"))?;
    let mut entries = Vec::new();
    for (entry, snap) in &progress.checkpoints {
        snap.write(&ctx.output(&entry.file))?;
        entries.push(entry.clone());
    }
    // Fractions never reached (e.g. 0 iterations) still get their declared file: the final network.
    for (k, &f) in setup.checkpoints.iter().enumerate() {
        if !entries.iter().any(|e| e.index == k) {
            let snap = snapshot(trainer).map_err(StageError::Failed)?;
            let file = format!("ckpt-{k}.ckpt");
            snap.write(&ctx.output(&file))?;
            entries.push(CheckpointEntry {
                index: k,
                fraction: f,
                file,
                iteration: snap.iteration,
                env_steps: snap.env_steps,
                grad_steps: snap.grad_steps,
            });
        }
    }
    entries.sort_by_key(|e| e.index);
    std::fs::write(
        ctx.output("checkpoints.json"),
        serde_json::to_vec_pretty(&entries).map_err(StageError::failed)?,
    )?;
    let mut rng = Pcg64::seed_from_u64(setup.loop_config.seed ^ 0x7072_6f62_6500_0000);
    let batch = trainer
        .replay
        .sample(setup.probe_batch, &mut rng)
        .ok_or_else(|| {
            StageError::Failed(
                "replay holds no complete transition to build the probe batch".into(),
            )
        })?;
    ProbeBatch::from_batch(&batch, trainer.replay.state_len())
        .write(&ctx.output("probe_batch.bin"))?;
    Ok(())
}
