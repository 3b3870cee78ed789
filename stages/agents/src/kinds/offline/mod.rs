//! The offline training kinds `train/cql` and `train/cql-c51`: conservative Q-learning from a
//! dataset an upstream `collect` stage recorded (`needs "collect"`), so a new offline agent
//! never recollects. Each iteration takes `steps / iterations` gradient steps on uniformly
//! sampled transitions, then evaluates the greedy policy online; GMP prunes on a schedule in
//! gradient steps. Settings are resolved here ([`OfflineSettings`]), the loop is [`run`].
//!
//! Defaults are Dopamine's offline lab (`dopamine/labs/offline_rl` at google/dopamine@1093179):
//! - `train/cql`: `OfflineJaxDR3Agent` as configured by `jax/configs/jax_dr3.gin` (Huber TD
//!   loss, n = 1, one update per training step, target synced every 2,000, Adam 5e-5 with eps
//!   3.125e-4), with its CQL term on (`cql_coefficient`, which that gin leaves at 0 and the
//!   offline experiments set) and its DR3 term off (`dr3_coefficient`: not implemented);
//! - `train/cql-c51`: `OfflineJaxRainbowAgent` as `jax/configs/jax_classy_cql.gin` configures
//!   it (C51 with 51 atoms, no dueling, n = 1, target period 2,000, Adam 6.25e-5 with eps
//!   3.125e-4, `bc_coefficient` 0.1, 100 iterations);
//! - the runner (`jax/run_experiment.py`): iterations of 62,500 gradient steps (200 of them for
//!   CQL), then an evaluation phase of at least 125,000 agent steps at epsilon 0.001; the
//!   dataset is the 5% subset (`tfds_replay.py` takes `replay_capacity / 10,000` percent of
//!   each checkpoint's episodes; the configs' 50,000 is 5%).
//!
//! Deviations, on purpose: the CQL coefficient α defaults to 0.1 for both kinds (the C51 gin's
//! value; the DQN gin sets none); C51's target takes the target network's own argmax (no double
//! DQN), as `train/rainbow` does. Offline runs take no training steps in the environment, so
//! their `returns.csv` rows hold gradient steps in `env_steps` too (curves plot over training).

pub mod run;

use prunus_stage::{
    Context, ParamSpec, ParamType, Params, Resources, StageError, StageKind, Value,
};
use serde::Serialize;

use super::param_err;
use super::train::common::{c51_support, network, outputs, pruning, spec, training_outputs};
use super::train::setup::{
    at_least_one, checkpoint_fractions, device, network_choice, probability, prune_settings,
};
use crate::envs::EnvFactory;
use crate::networks::Architecture;
use crate::objectives::{Categorical, Objective, TdLoss};
use crate::presets::{Family, Preset};
use crate::prune::PruneSettings;

/// Which offline agent a kind trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfflineAlgorithm {
    /// DQN-based CQL(H): Huber TD + α·CQL.
    Cql,
    /// C51-based CQL: cross-entropy + α·CQL on the expected Q.
    CqlC51,
}

impl OfflineAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            OfflineAlgorithm::Cql => "train/cql",
            OfflineAlgorithm::CqlC51 => "train/cql-c51",
        }
    }
}

/// Gradient steps per iteration in Dopamine's offline runner (`training_steps`).
pub const STEPS_PER_ITERATION: u64 = 62_500;

/// `train/cql` or `train/cql-c51`.
pub struct OfflineKind {
    pub algorithm: OfflineAlgorithm,
    pub env_factory: EnvFactory,
}

impl OfflineKind {
    pub fn new(algorithm: OfflineAlgorithm) -> Self {
        OfflineKind {
            algorithm,
            env_factory: crate::envs::make,
        }
    }

    fn defaults(&self) -> (f64, i64) {
        // (learning rate, iterations) of jax_dr3.gin and jax_classy_cql.gin.
        match self.algorithm {
            OfflineAlgorithm::Cql => (5e-5, 200),
            OfflineAlgorithm::CqlC51 => (6.25e-5, 100),
        }
    }
}

/// The offline run's settings, from the parameters alone; the network and the C51 support
/// are completed from the dataset's environment by [`run`].
#[derive(Clone, Debug, Serialize)]
pub struct OfflineSettings {
    /// `auto` is resolved from the dataset's environment family at run time.
    pub network: String,
    pub hidden: usize,
    pub width: f64,
    pub iterations: u64,
    /// Gradient steps per iteration.
    pub training_steps: u64,
    pub eval_steps: u64,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub adam_epsilon: f32,
    pub gamma: f64,
    pub n_step: usize,
    /// In gradient steps.
    pub target_update_period: u64,
    pub epsilon_eval: f64,
    pub clip_rewards: bool,
    pub alpha: f32,
    pub fraction: f64,
    pub atoms: usize,
    /// 0: the family's (10 Atari, 100 MinAtar and classic).
    pub vmax: f64,
    pub seed: u64,
    pub prune: Option<PruneSettings>,
    pub checkpoints: Vec<f64>,
    pub probe_batch: usize,
    pub device: String,
}

impl OfflineSettings {
    pub fn from_params(algorithm: OfflineAlgorithm, p: &Params) -> Result<Self, StageError> {
        let network = p.str("network")?.to_string();
        let hidden = at_least_one(p, "network.hidden")? as usize;
        if network != "auto" && Architecture::parse(&network, &[hidden, hidden]).is_none() {
            return Err(param_err(
                "network",
                format!(
                    "unknown network `{network}`; use auto, mlp, minatar, minatar128, minatar-resnet, nature or impala"
                ),
            ));
        }
        let width = p.f64("network.width")?;
        if !(width.is_finite() && width > 0.0) {
            return Err(param_err(
                "network.width",
                format!("must be positive, got {width}"),
            ));
        }
        let iterations = at_least_one(p, "iterations")?;
        let steps = match p.u64("steps")? {
            0 => iterations * STEPS_PER_ITERATION,
            s => s,
        };
        if steps % iterations != 0 {
            return Err(param_err(
                "steps",
                format!(
                    "{steps} gradient steps do not split into {iterations} equal iterations; make `steps` a multiple of `iterations`"
                ),
            ));
        }
        let positive = |key: &str| -> Result<f64, StageError> {
            let v = p.f64(key)?;
            if !(v.is_finite() && v > 0.0) {
                return Err(param_err(key, format!("must be positive, got {v}")));
            }
            Ok(v)
        };
        let gamma = p.f64("gamma")?;
        if !(0.0..=1.0).contains(&gamma) {
            return Err(param_err(
                "gamma",
                format!("must be in [0, 1], got {gamma}"),
            ));
        }
        let alpha = p.f64("alpha")?;
        if !(alpha.is_finite() && alpha >= 0.0) {
            return Err(param_err(
                "alpha",
                format!("the CQL coefficient must be a finite number >= 0, got {alpha}"),
            ));
        }
        let fraction = p.f64("dataset.fraction")?;
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(param_err(
                "dataset.fraction",
                format!(
                    "is the fraction of each shard's episodes to train on, must be in (0, 1], got {fraction}"
                ),
            ));
        }
        let (atoms, vmax) = match algorithm {
            OfflineAlgorithm::Cql => (1, 0.0),
            OfflineAlgorithm::CqlC51 => {
                let atoms = p.u64("atoms")? as usize;
                if atoms < 2 {
                    return Err(param_err("atoms", "needs at least 2 atoms"));
                }
                let vmax = p.f64("vmax")?;
                if !(vmax.is_finite() && vmax >= 0.0) {
                    return Err(param_err(
                        "vmax",
                        format!("must be >= 0 (0: the family's), got {vmax}"),
                    ));
                }
                (atoms, vmax)
            }
        };
        let checkpoints = checkpoint_fractions(p)?;
        let device = device(p)?;
        Ok(OfflineSettings {
            network,
            hidden,
            width,
            iterations,
            training_steps: steps / iterations,
            eval_steps: p.u64("eval-steps")?,
            batch_size: at_least_one(p, "batch-size")? as usize,
            learning_rate: positive("learning-rate")?,
            adam_epsilon: positive("adam-epsilon")? as f32,
            gamma,
            n_step: at_least_one(p, "n-step")? as usize,
            target_update_period: at_least_one(p, "target-update")?,
            epsilon_eval: probability(p, "epsilon.eval")?,
            clip_rewards: p.bool("clip-rewards")?,
            alpha: alpha as f32,
            fraction,
            atoms,
            vmax,
            seed: p.u64("seed")?,
            prune: prune_settings(p)?,
            checkpoints,
            probe_batch: at_least_one(p, "probe-batch")? as usize,
            device,
        })
    }

    /// The network for an environment named `env` (`auto`: its family's).
    pub fn architecture(&self, env: &str) -> Result<(Architecture, f64), StageError> {
        let preset = Preset::of(Family::of(env));
        let mut p = Params::default();
        p.0.insert("network".into(), Value::Str(self.network.clone()));
        p.0.insert("network.hidden".into(), Value::Int(self.hidden as i64));
        p.0.insert("network.width".into(), Value::Float(self.width));
        network_choice(&p, &preset, env)
    }

    /// The objective, with the C51 support of the dataset's environment family.
    pub fn objective(&self, algorithm: OfflineAlgorithm, env: &str) -> Objective {
        match algorithm {
            OfflineAlgorithm::Cql => Objective::Cql {
                td: TdLoss::Huber,
                alpha: self.alpha,
            },
            OfflineAlgorithm::CqlC51 => {
                let vmax = if self.vmax == 0.0 {
                    Preset::of(Family::of(env)).vmax
                } else {
                    self.vmax
                } as f32;
                Objective::CqlC51 {
                    c51: Categorical {
                        atoms: self.atoms,
                        vmin: -vmax,
                        vmax,
                    },
                    alpha: self.alpha,
                }
            }
        }
    }

    /// Gradient steps of the whole run (GMP's schedule).
    pub fn total_grad_steps(&self) -> u64 {
        self.iterations * self.training_steps
    }
}

impl StageKind for OfflineKind {
    fn name(&self) -> &'static str {
        self.algorithm.name()
    }

    fn version(&self) -> u32 {
        match self.algorithm {
            // 2: the loss head on the host with its closed-form gradient (`cql::head`): the
            // same loss, different f32 rounding than version 1's tensor ops.
            OfflineAlgorithm::Cql => 2,
            OfflineAlgorithm::CqlC51 => 1,
        }
    }

    fn doc(&self) -> &'static str {
        match self.algorithm {
            OfflineAlgorithm::Cql => {
                "Offline DQN-based CQL(H) (Huber TD + alpha*(logsumexp_a Q - Q(s, a_data))) on the \
                 dataset of one upstream collect instance (its first dataset.fraction of each \
                 shard's episodes), Dopamine's labs/offline_rl settings; iterations of gradient \
                 steps, each followed by online evaluation; optional GMP over the gradient steps. \
                 Same outputs as train/dqn. Resumes after a kill."
            }
            OfflineAlgorithm::CqlC51 => {
                "Offline CQL with C51 (cross-entropy TD + alpha*CQL(H) on the expected Q) on the \
                 dataset of one upstream collect instance, Dopamine's labs/offline_rl classy-CQL \
                 settings; otherwise as train/cql."
            }
        }
    }

    fn deterministic(&self, params: &Params) -> bool {
        !matches!(params.str("device"), Ok("cuda"))
    }

    fn params(&self) -> Vec<ParamSpec> {
        use ParamType::*;
        let (lr, iterations) = self.defaults();
        let mut out = network();
        out.extend([
            spec("steps", Int, Some(Value::Int(0)), "gradient steps in total; 0: iterations x 62,500 (Dopamine's offline runner)"),
            spec("iterations", Int, Some(Value::Int(iterations)), "iterations (rows of returns.csv), each ending with an evaluation; train/cql 200 (jax_dr3.gin), train/cql-c51 100 (jax_classy_cql.gin)"),
            spec("eval-steps", Int, Some(Value::Int(125_000)), "evaluation after each iteration: whole episodes until at least this many agent steps (Dopamine's evaluation_steps); 0: none"),
            spec("batch-size", Int, Some(Value::Int(32)), "transitions per gradient step"),
            spec("learning-rate", Float, Some(Value::Float(lr)), "Adam step size (train/cql 5e-5, train/cql-c51 6.25e-5)"),
            spec("adam-epsilon", Float, Some(Value::Float(3.125e-4)), "Adam epsilon"),
            spec("gamma", Float, Some(Value::Float(0.99)), "discount"),
            spec("n-step", Int, Some(Value::Int(1)), "n of the n-step returns (update_horizon)"),
            spec("target-update", Int, Some(Value::Int(2_000)), "gradient steps between target syncs"),
            spec("epsilon.eval", Float, Some(Value::Float(0.001)), "evaluation epsilon"),
            spec("clip-rewards", Bool, Some(Value::Bool(true)), "clip the dataset's rewards to [-1, 1] for learning (evaluation returns are unclipped)"),
            spec("alpha", Float, Some(Value::Float(0.1)), "CQL coefficient (cql_coefficient / bc_coefficient); 0: plain offline DQN / C51"),
            spec("dataset.fraction", Float, Some(Value::Float(0.05)), "fraction of each shard's episodes trained on, from its first (0.05: the 5% subset of Dopamine's offline experiments)"),
            spec("seed", Int, Some(Value::Int(0)), "seed of weights, sampling and evaluation"),
        ]);
        if self.algorithm == OfflineAlgorithm::CqlC51 {
            out.extend(c51_support(
                0.0,
                "support [-vmax, vmax]; 0: 10 (Atari), 100 (MinAtar, classic)",
            ));
        }
        out.extend(pruning());
        out.extend(outputs());
        out
    }

    fn outputs(&self, params: &Params) -> Vec<String> {
        training_outputs(params)
    }

    fn resources(&self, params: &Params) -> Resources {
        Resources {
            cpus: 1,
            gpus: matches!(params.str("device"), Ok("cuda")) as u32,
            memory_mb: 2_000,
            time_s: None,
        }
    }

    fn estimate_secs(&self, params: &Params) -> Option<f64> {
        let c51 = self.algorithm == OfflineAlgorithm::CqlC51;
        super::train::cost::estimate_offline_secs(c51, params)
    }

    fn validate(&self, params: &Params) -> Result<(), StageError> {
        OfflineSettings::from_params(self.algorithm, params).map(drop)
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let settings = OfflineSettings::from_params(self.algorithm, &ctx.params)?;
        run::run_offline(self, &settings, ctx)
    }
}
