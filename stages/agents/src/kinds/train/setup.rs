//! A training run's settings resolved from its parameters: [`Settings`] from the parameters
//! alone (what planning checks), then [`Setup`] with the environment's spec; one function per
//! concern, checked in a fixed order, so the first bad parameter is the one reported.

use prunus_env::{ObsKind, Spec};
use prunus_sparsity::{Distribution, RedoConfig, ResetConfig};
use prunus_stage::{Params, StageError};
use serde::{Deserialize, Serialize};

use super::common::{or_default, or_default_f, window};
use super::{Algorithm, atari100k, dqn, rainbow};
use crate::agent::AgentConfig;
use crate::envs::{EnvFactory, EnvSettings};
use crate::kinds::param_err;
use crate::networks::{Architecture, NetworkConfig};
use crate::objectives::Objective;
use crate::presets::{Family, Preset};
use crate::prune::PruneSettings;
use crate::replay::ReplayConfig;
use crate::train::LoopConfig;

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
    /// The fingerprint the same run had while both kinds still declared every objective's
    /// parameters (`train/dqn` took `atoms` and `vmax`, `train/rainbow` took `loss`, and ignored
    /// them): a run interrupted before that change still resumes.
    pub previous_fingerprint: String,
    /// Resolved values, logged.
    pub resolved: serde_json::Value,
}

/// What a run's parameters say, checked, before any environment exists: plan-time validation
/// ([`super::TrainKind`]'s `validate`) builds exactly this, and [`Setup::new`] completes it with
/// the environment's spec, so plan and run check the same things.
pub struct Settings {
    pub env_name: String,
    pub env_options: EnvSettings,
    architecture: Architecture,
    width: f64,
    objective: Objective,
    optimizer: Optimizer,
    replay: ReplaySettings,
    pub loop_config: LoopConfig,
    pub prune: Option<PruneSettings>,
    pub reset: Option<ResetConfig>,
    pub redo: Option<RedoSettings>,
    pub checkpoints: Vec<f64>,
    pub probe_batch: usize,
    device: String,
}

impl Settings {
    pub fn from_params(algorithm: Algorithm, p: &Params) -> Result<Self, StageError> {
        let env_name = p.str("env")?.to_string();
        let mut env_options = env_settings(p)?;
        let mut preset = Preset::of(Family::of(&env_name));
        let mut life_loss = false;
        if !algorithm.has_baselines() {
            let (terminal_on_life_loss, noops) = atari100k::episode_options(p, &env_name)?;
            env_options.terminal_on_life_loss = terminal_on_life_loss;
            env_options.noop_max = noops;
            life_loss = terminal_on_life_loss;
            preset = atari100k::preset(algorithm);
        }
        crate::envs::check(&env_name, &env_options).map_err(|e| param_err("env", e))?;
        let (architecture, width) = network_choice(p, &preset, &env_name)?;
        let objective = match algorithm {
            Algorithm::Dqn => dqn::objective(p)?,
            Algorithm::Rainbow => rainbow::objective(p, &preset)?,
            a @ (Algorithm::DrqEps | Algorithm::Der) => atari100k::objective(a, p)?,
        };
        let baselines = algorithm.has_baselines();
        let checkpoints = checkpoint_fractions(p)?;
        let device = device(p)?;
        let mut loop_config = loop_config(p, &preset)?;
        loop_config.life_loss_terminal = life_loss;
        Ok(Settings {
            env_name,
            env_options,
            architecture,
            width,
            objective,
            optimizer: optimizer(p, &preset, baselines)?,
            replay: replay_settings(p, &preset)?,
            loop_config,
            prune: prune_settings(p)?,
            reset: if baselines { reset_config(p)? } else { None },
            redo: if baselines { redo_settings(p)? } else { None },
            checkpoints,
            probe_batch: at_least_one(p, "probe-batch")? as usize,
            device,
        })
    }
}

impl Setup {
    /// `gpu`: the ordinal of the GPU the executor gave the run (used with `device "cuda"`).
    pub fn new(
        algorithm: Algorithm,
        env_factory: EnvFactory,
        p: &Params,
        gpu: usize,
    ) -> Result<Self, StageError> {
        let s = Settings::from_params(algorithm, p)?;
        let probe = env_factory(&s.env_name, &s.env_options).map_err(|e| param_err("env", e))?;
        let spec = probe.spec().clone();
        let num_actions = spec.action_space.discrete().ok_or_else(|| {
            param_err(
                "env",
                format!(
                    "{} has a continuous action space; value-based agents need discrete actions",
                    s.env_name
                ),
            )
        })?;
        let agent = AgentConfig {
            network: network_config(&s, &spec, num_actions),
            num_actions,
            objective: s.objective,
            learning_rate: s.optimizer.learning_rate,
            adam_epsilon: s.optimizer.adam_epsilon,
            weight_decay: s.optimizer.weight_decay,
        };
        let replay = replay_config(&s.replay, &spec)?;
        let device = crate::device_at(&s.device, gpu).map_err(|e| param_err("device", e))?;
        let fingerprint = serde_json::to_string(&p.0).unwrap_or_default();
        let mut previous = p.0.clone();
        let dropped = match algorithm {
            Algorithm::Dqn => dqn::dropped(),
            Algorithm::Rainbow => rainbow::dropped(),
            Algorithm::DrqEps | Algorithm::Der => Vec::new(),
        };
        for (key, default) in dropped {
            previous.entry(key.to_string()).or_insert(default);
        }
        let previous_fingerprint = serde_json::to_string(&previous).unwrap_or_default();
        let resolved = serde_json::json!({
            "agent": agent, "replay": replay, "loop": s.loop_config, "prune": s.prune,
            "reset": s.reset, "redo": s.redo,
        });
        Ok(Setup {
            env_name: s.env_name,
            env_options: s.env_options,
            env_factory,
            agent,
            replay,
            loop_config: s.loop_config,
            prune: s.prune,
            reset: s.reset,
            redo: s.redo,
            checkpoints: s.checkpoints,
            probe_batch: s.probe_batch,
            device,
            fingerprint,
            previous_fingerprint,
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

/// `checkpoints`: the fractions of training at which to snapshot the network.
pub(crate) fn checkpoint_fractions(p: &Params) -> Result<Vec<f64>, StageError> {
    let checkpoints = p.f64s("checkpoints")?;
    if let Some(bad) = checkpoints.iter().find(|f| !(0.0..=1.0).contains(*f)) {
        return Err(param_err(
            "checkpoints",
            format!("fractions must be in [0, 1], got {bad}"),
        ));
    }
    Ok(checkpoints)
}

/// `device`, checked against what this build has.
pub(crate) fn device(p: &Params) -> Result<String, StageError> {
    let device = p.str("device")?.to_string();
    crate::check_device(&device).map_err(|e| param_err("device", e))?;
    Ok(device)
}

/// The integer parameter `key`, which must be at least 1 (a count that 0 would break).
pub(crate) fn at_least_one(p: &Params, key: &str) -> Result<u64, StageError> {
    match p.u64(key)? {
        0 => Err(param_err(key, "must be at least 1, got 0")),
        n => Ok(n),
    }
}

/// A probability parameter: in [0, 1].
pub(crate) fn probability(p: &Params, key: &str) -> Result<f64, StageError> {
    let x = p.f64(key)?;
    if !(0.0..=1.0).contains(&x) {
        return Err(param_err(
            key,
            format!("is a probability, must be in [0, 1], got {x}"),
        ));
    }
    Ok(x)
}

/// `env.sticky`, `env.max-steps`, `env.actions`.
pub(crate) fn env_settings(p: &Params) -> Result<EnvSettings, StageError> {
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
    if sticky > 1.0 {
        return Err(param_err(
            "env.sticky",
            format!("is a probability, got {sticky}"),
        ));
    }
    Ok(EnvSettings {
        sticky_action_prob: (sticky >= 0.0).then_some(sticky as f32),
        max_episode_steps: (max_steps > 0).then_some(max_steps),
        full_action_set,
        ..EnvSettings::default()
    })
}

/// The torso (`network`, `network.width`, `network.hidden`): what the parameters name, and
/// that it fits the environment's observations (classic control has vectors: only mlp).
pub(crate) fn network_choice(
    p: &Params,
    preset: &Preset,
    env_name: &str,
) -> Result<(Architecture, f64), StageError> {
    let network = match p.str("network")? {
        "auto" => preset.network,
        other => other,
    };
    let hidden = at_least_one(p, "network.hidden")? as usize;
    let architecture = Architecture::parse(network, &[hidden, hidden]).ok_or_else(|| {
        param_err(
            "network",
            format!("unknown network `{network}`; use mlp, minatar, minatar128, minatar-resnet, nature or impala"),
        )
    })?;
    let width = p.f64("network.width")?;
    if !(width.is_finite() && width > 0.0) {
        return Err(param_err(
            "network.width",
            format!("must be positive, got {width}"),
        ));
    }
    let vectors = Family::of(env_name) == Family::Classic;
    if vectors && !matches!(architecture, Architecture::Mlp { .. }) {
        return Err(param_err(
            "network",
            format!("`{network}` is convolutional but {env_name} has vector observations; use mlp"),
        ));
    }
    Ok((architecture, width))
}

/// The network for the environment's observations; `outputs` is set from the objective later.
fn network_config(s: &Settings, spec: &Spec, num_actions: usize) -> NetworkConfig {
    let input = if spec.shape.len() == 3 {
        vec![
            spec.shape[0] * spec.frame_stack,
            spec.shape[1],
            spec.shape[2],
        ]
    } else {
        vec![spec.shape.iter().product::<usize>() * spec.frame_stack]
    };
    let input_scale = if spec.kind == ObsKind::Byte {
        1.0 / 255.0
    } else {
        1.0
    };
    NetworkConfig {
        architecture: s.architecture.clone(),
        width: s.width,
        input,
        outputs: num_actions,
        input_scale,
        normalize_features: s.optimizer.normalize_features,
    }
}

/// Adam and what it regularises with (`l2`, `learning-rate`, `adam-epsilon`, `weight-decay`).
struct Optimizer {
    normalize_features: bool,
    learning_rate: f64,
    adam_epsilon: f32,
    weight_decay: f64,
}

/// `baselines`: whether the kind takes `weight-decay` and `l2` (off otherwise).
fn optimizer(p: &Params, preset: &Preset, baselines: bool) -> Result<Optimizer, StageError> {
    let wd = if baselines {
        p.f64("weight-decay")?
    } else {
        0.0
    };
    if !(wd >= 0.0 && wd.is_finite()) {
        return Err(param_err(
            "weight-decay",
            format!("must be a finite number >= 0, got {wd}"),
        ));
    }
    Ok(Optimizer {
        normalize_features: baselines && p.bool("l2")?,
        learning_rate: or_default_f(p, "learning-rate", preset.learning_rate)?,
        adam_epsilon: or_default_f(p, "adam-epsilon", preset.adam_epsilon)? as f32,
        weight_decay: wd,
    })
}

/// Replay as the parameters set it (`gamma`, `n-step`, `replay.capacity`,
/// `replay.prioritized`); the frame layout comes from the environment.
struct ReplaySettings {
    capacity: usize,
    n_step: usize,
    gamma: f64,
    prioritized: bool,
}

fn replay_settings(p: &Params, preset: &Preset) -> Result<ReplaySettings, StageError> {
    let gamma = p.f64("gamma")?;
    if !(0.0..=1.0).contains(&gamma) {
        return Err(param_err(
            "gamma",
            format!("must be in [0, 1], got {gamma}"),
        ));
    }
    Ok(ReplaySettings {
        capacity: or_default(p, "replay.capacity", preset.replay_capacity)? as usize,
        n_step: at_least_one(p, "n-step")? as usize,
        gamma,
        prioritized: p.bool("replay.prioritized")?,
    })
}

/// Replay for the environment's frames: the capacity must hold an n-step window of stacks.
fn replay_config(r: &ReplaySettings, spec: &Spec) -> Result<ReplayConfig, StageError> {
    if r.capacity <= r.n_step + spec.frame_stack + 1 {
        return Err(param_err(
            "replay.capacity",
            format!(
                "{} frames are too few for {}-step returns over stacks of {}",
                r.capacity, r.n_step, spec.frame_stack
            ),
        ));
    }
    Ok(ReplayConfig {
        capacity: r.capacity,
        frame_len: spec.shape.iter().product(),
        kind: spec.kind.into(),
        stack: spec.frame_stack,
        n_step: r.n_step,
        gamma: r.gamma,
        prioritized: r.prioritized,
    })
}

/// The iteration loop: length, replay ratio, warm-up, target syncs, exploration.
fn loop_config(p: &Params, preset: &Preset) -> Result<LoopConfig, StageError> {
    let steps = or_default(p, "steps", preset.steps)?;
    let iterations = or_default(p, "iterations", preset.iterations)?;
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
    Ok(LoopConfig {
        iterations,
        training_steps: steps / iterations,
        eval_episodes: p.u64("eval-episodes")?,
        replay_ratio,
        min_replay_history: or_default(p, "min-replay", preset.min_replay)?,
        target_update_period: or_default(p, "target-update", preset.target_period)?,
        epsilon_train: probability(p, "epsilon.train")?,
        epsilon_eval: probability(p, "epsilon.eval")?,
        epsilon_decay_period: or_default(p, "epsilon.decay", preset.epsilon_decay)?,
        batch_size: at_least_one(p, "batch-size")? as usize,
        clip_rewards: p.bool("clip-rewards")?,
        seed: p.u64("seed")?,
        life_loss_terminal: false,
    })
}

/// GMP (`prune`, `prune.*`); `None` when off.
pub(crate) fn prune_settings(p: &Params) -> Result<Option<PruneSettings>, StageError> {
    match p.str("prune")? {
        "none" => Ok(None),
        "gmp" => {
            let s = PruneSettings {
                sparsity: p.f64("prune.sparsity")?,
                start: p.f64("prune.start")?,
                end: p.f64("prune.end")?,
                frequency: at_least_one(p, "prune.frequency")?,
                distribution: p.str("prune.distribution")?.to_string(),
            };
            if let Err(e) = s.distribution.parse::<Distribution>() {
                return Err(param_err("prune.distribution", e.to_string()));
            }
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
            Ok(Some(s))
        }
        other => Err(param_err(
            "prune",
            format!("unknown pruning method `{other}`; use none or gmp"),
        )),
    }
}

/// Reset (`reset.*`); `None` when `reset.period` is 0.
fn reset_config(p: &Params) -> Result<Option<ResetConfig>, StageError> {
    let period = p.u64("reset.period")?;
    if period == 0 {
        return Ok(None);
    }
    let layers = p.u64("reset.layers")? as usize;
    if layers == 0 {
        return Err(param_err("reset.layers", "must be at least 1 (the head)"));
    }
    let (start, end) = window(p, "reset")?;
    Ok(Some(ResetConfig {
        last_layers: layers,
        period,
        start,
        end,
    }))
}

/// ReDo (`redo.*`); `None` when `redo.period` is 0.
fn redo_settings(p: &Params) -> Result<Option<RedoSettings>, StageError> {
    let period = p.u64("redo.period")?;
    if period == 0 {
        return Ok(None);
    }
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
    Ok(Some(RedoSettings {
        config: RedoConfig {
            tau: tau as f32,
            period,
            start,
            end,
        },
        batch,
    }))
}
