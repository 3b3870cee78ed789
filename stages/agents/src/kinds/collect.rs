//! The `collect` stage kind: records an agent's experience as a dataset ([`crate::dataset`]).
//!
//! Two recipes (`source`):
//! - `train`: the DQN Replay Dataset's (Agarwal et al. 2020): a `train/dqn` run, with every
//!   parameter of that kind, whose whole replay stream (every transition the agent saw, in
//!   order) is written out as it trains;
//! - `checkpoint`: the policy of one upstream training instance's snapshot (`checkpoint`,
//!   `final.ckpt` by default), acting `epsilon`-greedily for `steps` agent steps.
//!
//! Shards are written into the scratch directory as the run goes; after each full shard the
//! run's resume checkpoint is written, so a killed collection resumes from its last finished
//! shard (checked against its digest) and writes the same bytes as an uninterrupted one.

use std::path::{Path, PathBuf};

use prunus_env::Spec;
use prunus_results::{ResultFile, ReturnsRow};
use prunus_stage::{
    Context, ParamSpec, ParamType, Params, Resources, StageError, StageKind, Value,
};
use serde::{Deserialize, Serialize};

use super::train::common::{or_default, spec};
use super::train::run::{build_trainer, end_iteration, results_err};
use super::train::setup::{at_least_one, env_settings, probability};
use super::train::{Algorithm, Setup, TrainKind};
use super::{Unfit, param_err, resume_from, save_scratch};
use crate::agent::Agent;
use crate::checkpoint::{Progress, Resume, Snapshot};
use crate::dataset::{self, Collector, CollectorState, FrameFormat, Manifest, Source};
use crate::envs::{EnvFactory, EnvSettings};
use crate::presets::{Family, Preset};
use crate::replay::{Replay, ReplayConfig};
use crate::train::{LoopConfig, Trainer};

pub const NAME: &str = "collect";

const RESUME: &str = "collect.ckpt";
const RESUME_MAGIC: &[u8] = b"prunus-agents collect resume v1\n";
/// The parameters of `train/dqn` that a collection has no use for (it writes no snapshots).
const UNUSED: [&str; 2] = ["checkpoints", "probe-batch"];

/// `collect`.
pub struct CollectKind {
    pub env_factory: EnvFactory,
}

impl Default for CollectKind {
    fn default() -> Self {
        CollectKind {
            env_factory: crate::envs::make,
        }
    }
}

/// Where the transitions come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recipe {
    Train,
    Checkpoint,
}

/// The collection's own parameters, checked.
struct Settings {
    recipe: Recipe,
    checkpoint: String,
    epsilon: f64,
    shard_size: u64,
    steps: u64,
}

fn own_params() -> Vec<ParamSpec> {
    use ParamType::*;
    vec![
        spec(
            "source",
            Str,
            Some(Value::Str("train".into())),
            "train: record every transition of this DQN training run (the DQN Replay Dataset recipe) | checkpoint: record the policy of the upstream instance's snapshot",
        ),
        spec(
            "checkpoint",
            Str,
            Some(Value::Str("final.ckpt".into())),
            "source checkpoint: the upstream output holding the policy (final.ckpt, ckpt-<k>.ckpt)",
        ),
        spec(
            "epsilon",
            Float,
            Some(Value::Float(0.01)),
            "source checkpoint: the policy's epsilon (0.01: Dopamine DQN's epsilon_train, the dataset's behaviour policy)",
        ),
        spec(
            "shard-size",
            Int,
            Some(Value::Int(1_000_000)),
            "transitions per shard (1M: a DQN Replay Dataset checkpoint; dataset.fraction takes the first episodes of each shard)",
        ),
    ]
}

impl Settings {
    fn from_params(p: &Params) -> Result<Self, StageError> {
        let recipe = match p.str("source")? {
            "train" => Recipe::Train,
            "checkpoint" => Recipe::Checkpoint,
            other => {
                return Err(param_err(
                    "source",
                    format!("unknown source `{other}`; use train or checkpoint"),
                ));
            }
        };
        let checkpoint = p.str("checkpoint")?.to_string();
        if checkpoint.is_empty() || checkpoint.contains('/') {
            return Err(param_err(
                "checkpoint",
                format!("must name one output file of the upstream instance, got `{checkpoint}`"),
            ));
        }
        let env = p.str("env")?;
        let steps = or_default(p, "steps", Preset::of(Family::of(env)).steps)?;
        Ok(Settings {
            recipe,
            checkpoint,
            epsilon: probability(p, "epsilon")?,
            shard_size: at_least_one(p, "shard-size")?,
            steps,
        })
    }
}

/// The parameters as `train/dqn` reads them: the collection's, with the outputs it does not
/// write at values that make none.
fn train_params(p: &Params) -> Params {
    let mut map = p.0.clone();
    map.insert("checkpoints".into(), Value::List(Vec::new()));
    map.insert("probe-batch".into(), Value::Int(1));
    Params(map)
}

/// The scratch checkpoint: the run as `train/dqn` resumes it, and the shards written.
#[derive(Serialize, Deserialize)]
struct CollectResume {
    run: Resume,
    collector: CollectorState,
}

impl StageKind for CollectKind {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn doc(&self) -> &'static str {
        "Records a dataset for offline RL: every transition of a DQN training run (source train, \
         the DQN Replay Dataset recipe; every train/dqn parameter applies) or of an upstream \
         snapshot's policy at an epsilon (source checkpoint), in order, as zstd shards of \
         shard-size transitions (frames stored once, MinAtar as bits) with manifest.json (env, \
         agent, steps, shard digests), and returns.csv of the collecting episodes. Resumes from \
         its last finished shard after a kill."
    }

    fn deterministic(&self, params: &Params) -> bool {
        !matches!(params.str("device"), Ok("cuda"))
    }

    fn params(&self) -> Vec<ParamSpec> {
        let train = TrainKind::new(Algorithm::Dqn).params();
        let mut out: Vec<ParamSpec> = own_params();
        out.extend(train.into_iter().filter(|s| !UNUSED.contains(&s.key)));
        out
    }

    fn outputs(&self, params: &Params) -> Vec<String> {
        let mut out = vec![dataset::MANIFEST.to_string(), ReturnsRow::NAME.to_string()];
        if let Ok(s) = Settings::from_params(params) {
            out.extend((0..dataset::shard_count(s.steps, s.shard_size)).map(dataset::shard_name));
        }
        out
    }

    fn resources(&self, params: &Params) -> Resources {
        TrainKind::new(Algorithm::Dqn).resources(params)
    }

    fn estimate_secs(&self, params: &Params) -> Option<f64> {
        TrainKind::new(Algorithm::Dqn).estimate_secs(params)
    }

    fn validate(&self, params: &Params) -> Result<(), StageError> {
        let s = Settings::from_params(params)?;
        if s.recipe == Recipe::Train {
            super::train::Settings::from_params(Algorithm::Dqn, &train_params(params))?;
        } else {
            env_settings(params)?;
            crate::envs::check(params.str("env")?, &env_settings(params)?)
                .map_err(|e| param_err("env", e))?;
        }
        Ok(())
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let s = Settings::from_params(&ctx.params)?;
        let gpu = ctx.gpus.first().copied().unwrap_or(0);
        let shards = ctx.scratch.join("shards");
        std::fs::create_dir_all(&shards)?;
        let resume_path = ctx.scratch.join(RESUME);
        let fingerprint = serde_json::to_string(&ctx.params.0).unwrap_or_default();
        let resume = read_resume(ctx, &resume_path, &shards, &fingerprint);
        let run = match s.recipe {
            Recipe::Train => {
                let setup = Setup::new(
                    Algorithm::Dqn,
                    self.env_factory,
                    &train_params(&ctx.params),
                    gpu,
                )?;
                ctx.log(format!(
                    "resolved settings: {}",
                    serde_json::to_string(&setup.resolved).unwrap_or_default()
                ));
                let trainer = build_trainer(&setup, resume.as_ref().map(|r| &r.run))
                    .map_err(StageError::Failed)?;
                let source = Source {
                    recipe: "train".into(),
                    agent: serde_json::json!({"kind": "train/dqn", "settings": setup.resolved}),
                    epsilon: None,
                    seed: setup.loop_config.seed,
                };
                Run {
                    trainer,
                    setup: Some(setup),
                    source,
                }
            }
            Recipe::Checkpoint => self.policy_run(ctx, &s, resume.as_ref().map(|r| &r.run))?,
        };
        collect(ctx, &s, run, resume, &shards, &resume_path, fingerprint)
    }
}

/// A trainer to record, with what the manifest says of it.
struct Run {
    trainer: Trainer,
    /// The training run's setup (`source train`).
    setup: Option<Setup>,
    source: Source,
}

impl CollectKind {
    /// A trainer that never learns, acting with the upstream snapshot's network at `epsilon`.
    fn policy_run(
        &self,
        ctx: &Context,
        s: &Settings,
        resume: Option<&Resume>,
    ) -> Result<Run, StageError> {
        let [input] = ctx.inputs.as_slice() else {
            return Err(StageError::Failed(format!(
                "collect with source checkpoint needs exactly one upstream training instance, got {}",
                ctx.inputs.len()
            )));
        };
        let p = &ctx.params;
        let snap = Snapshot::read(input.output(&s.checkpoint)?).map_err(StageError::Failed)?;
        let env_name = p.str("env")?.to_string();
        let env_options = env_settings(p)?;
        let env = (self.env_factory)(&env_name, &env_options).map_err(|e| param_err("env", e))?;
        let spec = env.spec().clone();
        check_policy_fits(&snap, &spec, &env_name)?;
        let iterations = or_default(
            p,
            "iterations",
            Preset::of(Family::of(&env_name)).iterations,
        )?;
        if !s.steps.is_multiple_of(iterations) {
            return Err(param_err(
                "steps",
                format!(
                    "{} steps do not split into {iterations} iterations",
                    s.steps
                ),
            ));
        }
        let seed = p.u64("seed")?;
        let config = LoopConfig {
            iterations,
            training_steps: s.steps / iterations,
            eval_episodes: 0,
            // Never learns: no updates, and epsilon is `epsilon` from the first step.
            replay_ratio: 0.0,
            min_replay_history: 0,
            target_update_period: u64::MAX,
            epsilon_train: s.epsilon,
            epsilon_eval: s.epsilon,
            epsilon_decay_period: 0,
            batch_size: 1,
            clip_rewards: false,
            seed,
            // The dataset records the game's own episodes.
            life_loss_terminal: false,
        };
        let device = crate::device_at(p.str("device")?, 0).map_err(|e| param_err("device", e))?;
        // The trainer's replay is not what is recorded: the smallest one it accepts.
        let replay = ReplayConfig {
            capacity: spec.frame_stack + 3,
            frame_len: spec.shape.iter().product(),
            kind: spec.kind.into(),
            stack: spec.frame_stack,
            n_step: 1,
            gamma: 0.99,
            prioritized: false,
        };
        let trainer = match resume {
            None => {
                let agent = Agent::from_network(snap.agent.clone(), &snap.online, &device)
                    .map_err(StageError::Failed)?;
                Trainer::new(config, agent, Replay::new(replay), env)
            }
            Some(r) => {
                let agent = Agent::load(snap.agent.clone(), &r.agent, &device)
                    .map_err(StageError::Failed)?;
                Trainer::restore(config, agent, r.replay.clone(), env, r.state.clone())
                    .map_err(StageError::Failed)?
            }
        };
        let source = Source {
            recipe: "checkpoint".into(),
            agent: serde_json::json!({
                "instance": input.instance, "file": s.checkpoint,
                "env_steps": snap.env_steps, "grad_steps": snap.grad_steps,
                "config": snap.agent,
            }),
            epsilon: Some(s.epsilon),
            seed,
        };
        Ok(Run {
            trainer,
            setup: None,
            source,
        })
    }
}

/// The snapshot's network must read this environment's states and act in its action space.
fn check_policy_fits(snap: &Snapshot, spec: &Spec, env: &str) -> Result<(), StageError> {
    let actions = spec.action_space.discrete();
    let state_len: usize = spec.shape.iter().product::<usize>() * spec.frame_stack;
    let input_len: usize = snap.agent.network.input.iter().product();
    if actions != Some(snap.agent.num_actions) || input_len != state_len {
        return Err(param_err(
            "env",
            format!(
                "the checkpoint's network ({} inputs, {} actions) does not fit {env} ({state_len} inputs, {actions:?} actions)",
                input_len, snap.agent.num_actions
            ),
        ));
    }
    Ok(())
}

/// The scratch checkpoint if it is this run's and its shards are intact (see [`resume_from`]);
/// otherwise the collection starts afresh.
fn read_resume(
    ctx: &Context,
    path: &Path,
    shards: &Path,
    fingerprint: &str,
) -> Option<CollectResume> {
    resume_from(ctx, path, RESUME_MAGIC, |r: &CollectResume| {
        if r.run.fingerprint != fingerprint {
            return Err(Unfit::OtherRun);
        }
        Collector::verify(shards, &r.collector).map_err(Unfit::Damaged)
    })
}

fn save_resume(
    path: &Path,
    fingerprint: &str,
    trainer: &Trainer,
    progress: &Progress,
    collector: &CollectorState,
) -> Result<(), StageError> {
    let resume = CollectResume {
        run: Resume::of(fingerprint, trainer, progress).map_err(StageError::Failed)?,
        collector: collector.clone(),
    };
    save_scratch(path, RESUME_MAGIC, &resume)
}

/// Runs the trainer to the end, writing its stream into shards; checkpoints at each full
/// shard; then writes the manifest and moves the shards into the outputs.
fn collect(
    ctx: &Context,
    s: &Settings,
    run: Run,
    resume: Option<CollectResume>,
    shards: &Path,
    resume_path: &Path,
    fingerprint: String,
) -> Result<(), StageError> {
    let Run {
        mut trainer,
        setup,
        source,
    } = run;
    let spec = trainer.env_spec().clone();
    let format = FrameFormat::new(spec.kind, spec.shape.iter().product());
    let (mut collector, mut progress) = match resume {
        Some(r) => {
            ctx.log(format!(
                "resuming at agent step {} ({} shards written)",
                r.run.state.env_steps,
                r.collector.shards.len()
            ));
            (
                Collector::resume(shards, format, s.shard_size, r.collector),
                r.run.progress,
            )
        }
        None => (
            Collector::new(shards, format, s.shard_size),
            Progress::default(),
        ),
    };
    trainer.record = Some(Vec::new());
    let total = trainer.config.iterations * trainer.config.training_steps;
    let io = |e: std::io::Error| StageError::Failed(format!("writing the dataset: {e}"));
    while !trainer.done() {
        let to_boundary = s.shard_size - collector.transitions() % s.shard_size;
        trainer
            .train_steps(to_boundary.min(1_000))
            .map_err(StageError::Failed)?;
        for item in trainer.record.as_mut().expect("recording").drain(..) {
            collector.push(&item).map_err(io)?;
        }
        let boundary = collector.close_if_full().map_err(io)?;
        ctx.progress(trainer.state.env_steps, total, "steps");
        if trainer.training_phase_done() {
            match &setup {
                Some(setup) => end_iteration(setup, ctx, &mut trainer, &mut progress)?,
                None => {
                    let stats = trainer.finish_iteration();
                    progress.rows.push((stats, 0.0));
                }
            }
        }
        if boundary {
            save_resume(
                resume_path,
                &fingerprint,
                &trainer,
                &progress,
                collector.state(),
            )?;
        }
        if ctx.cancelled() {
            return Err(StageError::Cancelled);
        }
    }
    let state = collector.finish().map_err(io)?;
    let env_name = setup
        .as_ref()
        .map(|s| s.env_name.clone())
        .unwrap_or_else(|| ctx.params.str("env").unwrap_or_default().to_string());
    let env_options: EnvSettings = match &setup {
        Some(s) => s.env_options.clone(),
        None => env_settings(&ctx.params)?,
    };
    let manifest = Manifest {
        format: dataset::FORMAT,
        env: env_name,
        env_options,
        shape: spec.shape.clone(),
        frame_stack: spec.frame_stack,
        frame: format,
        num_actions: spec.action_space.discrete().unwrap_or(0),
        source,
        transitions: state.transitions,
        shard_size: s.shard_size,
        shards: state.shards,
    };
    std::fs::create_dir_all(&ctx.out_dir)?;
    for shard in &manifest.shards {
        place(&shards.join(&shard.file), &ctx.output(&shard.file))?;
    }
    manifest.write(&ctx.output(dataset::MANIFEST))?;
    prunus_results::write_csv(&ctx.output(ReturnsRow::NAME), &progress.returns_rows())
        .map_err(results_err)?;
    ctx.log(format!(
        "{} transitions in {} shards: {} bytes ({} uncompressed)",
        manifest.transitions,
        manifest.shards.len(),
        manifest.bytes(),
        manifest.raw_bytes()
    ));
    Ok(())
}

/// Puts the shard at `from` (scratch) at `to` (outputs): a hard link, which leaves the
/// scratch whole until the result is published, else a copy.
fn place(from: &Path, to: &Path) -> Result<(), StageError> {
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)?;
    }
    Ok(())
}

/// The shard files of an upstream `collect` instance, in order, with its manifest.
pub fn dataset_of(input: &prunus_stage::Input) -> Result<(Manifest, Vec<PathBuf>), StageError> {
    let manifest = Manifest::read(input.output(dataset::MANIFEST)?).map_err(StageError::Failed)?;
    let files = manifest
        .shards
        .iter()
        .map(|s| input.output(&s.file).map(Path::to_path_buf))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((manifest, files))
}
