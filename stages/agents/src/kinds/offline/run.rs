//! The offline training run behind `train/cql` and `train/cql-c51`: load the upstream
//! dataset's selected episodes into a replay, build the agent (or restore it from the scratch
//! checkpoint), take gradient steps iteration by iteration, evaluate online after each, write
//! the same outputs as the online kinds.
//!
//! Bit-reproducible: the replay is rebuilt from the dataset on every start (it is not in the
//! checkpoint), batches come from one seeded stream kept in the checkpoint, and evaluation
//! draws from streams derived from (seed, iteration).

use std::path::Path;

use prunus_env::{Action, Env};
use prunus_results::{CheckpointEntry, ResultFile};
use prunus_stage::{Context, StageError};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use super::{OfflineKind, OfflineSettings};
use crate::agent::{Agent, AgentConfig, AgentState};
use crate::checkpoint::{ProbeBatch, Progress, Snapshot};
use crate::dataset::{Manifest, Selection, load_replay};
use crate::hooks::UpdateHook;
use crate::kinds::collect::dataset_of;
use crate::kinds::train::run::results_err;
use crate::kinds::{Unfit, param_err, resume_from, save_scratch};
use crate::networks::NetworkConfig;
use crate::prune::GmpHook;
use crate::replay::{ObsKindSer, Replay};
use crate::train::{FrameStack, IterationStats};

const RESUME: &str = "offline.ckpt";
const RESUME_MAGIC: &[u8] = b"prunus-agents offline resume v1\n";

/// Counters and the sampling stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OfflineState {
    iteration: u64,
    grad_steps: u64,
    rng: Pcg64,
}

#[derive(Serialize, Deserialize)]
struct OfflineResume {
    fingerprint: String,
    agent: AgentState,
    hooks: Vec<Vec<u8>>,
    state: OfflineState,
    progress: Progress,
}

/// The agent for the dataset's observations.
fn agent_config(
    kind: &OfflineKind,
    s: &OfflineSettings,
    m: &Manifest,
) -> Result<AgentConfig, StageError> {
    let (architecture, width) = s.architecture(&m.env)?;
    let input = if m.shape.len() == 3 {
        vec![m.shape[0] * m.frame_stack, m.shape[1], m.shape[2]]
    } else {
        vec![m.shape.iter().product::<usize>() * m.frame_stack]
    };
    let byte = m.frame.kind == ObsKindSer::Byte;
    Ok(AgentConfig {
        network: NetworkConfig {
            architecture,
            width,
            input,
            outputs: m.num_actions,
            input_scale: if byte { 1.0 / 255.0 } else { 1.0 },
            normalize_features: false,
        },
        num_actions: m.num_actions,
        objective: s.objective(kind.algorithm, &m.env),
        learning_rate: s.learning_rate,
        adam_epsilon: s.adam_epsilon,
        weight_decay: 0.0,
    })
}

pub fn run_offline(
    kind: &OfflineKind,
    s: &OfflineSettings,
    ctx: &Context,
) -> Result<(), StageError> {
    let [input] = ctx.inputs.as_slice() else {
        return Err(StageError::Failed(format!(
            "{} needs exactly one upstream collect instance (its dataset), got {}; match them \
             on the dataset's axes (e.g. `needs \"collect\"` over a sweep sharing `game`)",
            kind.algorithm.name(),
            ctx.inputs.len()
        )));
    };
    let (manifest, shards) = dataset_of(input)?;
    if manifest.num_actions == 0 {
        return Err(StageError::Failed(format!(
            "{}: the dataset's actions are not discrete",
            input.instance
        )));
    }
    let (replay, loaded) = load_replay(
        &manifest,
        &shards,
        Selection {
            fraction: s.fraction,
        },
        s.n_step,
        s.gamma,
        s.clip_rewards,
    )
    .map_err(StageError::Failed)?;
    if loaded.transitions <= s.n_step as u64 {
        return Err(param_err(
            "dataset.fraction",
            format!(
                "selects {} transitions of {}'s {} ({} episodes): too few to sample from",
                loaded.transitions, input.instance, manifest.transitions, loaded.episodes
            ),
        ));
    }
    ctx.log(format!(
        "dataset {}: {} of {} transitions ({} episodes) selected",
        input.instance, loaded.transitions, manifest.transitions, loaded.episodes
    ));
    let config = agent_config(kind, s, &manifest)?;
    ctx.log(format!(
        "resolved settings: {}",
        serde_json::json!({"agent": config, "offline": s})
    ));
    let gpu = ctx.gpus.first().copied().unwrap_or(0);
    let device = crate::device_at(&s.device, gpu).map_err(|e| param_err("device", e))?;
    let env = (kind.env_factory)(&manifest.env, &manifest.env_options)
        .map_err(|e| StageError::Failed(format!("the dataset's environment: {e}")))?;

    std::fs::create_dir_all(&ctx.scratch)?;
    let resume_path = ctx.scratch.join(RESUME);
    let fingerprint = serde_json::to_string(&ctx.params.0).unwrap_or_default();
    let resume = read_resume(ctx, &resume_path, &fingerprint);
    let (mut agent, mut state, mut progress, saved_hooks) = match resume {
        Some(r) => {
            ctx.log(format!("resuming at gradient step {}", r.state.grad_steps));
            let agent =
                Agent::load(config.clone(), &r.agent, &device).map_err(StageError::Failed)?;
            (agent, r.state, r.progress, Some(r.hooks))
        }
        None => {
            let mut rng = Pcg64::seed_from_u64(s.seed);
            let agent = Agent::new(config.clone(), &mut rng, &device);
            let state = OfflineState {
                iteration: 0,
                grad_steps: 0,
                rng: Pcg64::seed_from_u64(s.seed ^ 0x6f66_666c_696e_6500),
            };
            (agent, state, Progress::default(), None)
        }
    };
    let mut hooks: Vec<Box<dyn UpdateHook>> = Vec::new();
    if let Some(prune) = &s.prune {
        hooks.push(Box::new(
            GmpHook::new(prune, s.total_grad_steps(), &agent.network().kernels())
                .map_err(StageError::Failed)?,
        ));
    }
    if let Some(saved) = saved_hooks {
        if saved.len() != hooks.len() {
            return Err(StageError::Failed(
                "the scratch checkpoint's hooks do not match this run's".into(),
            ));
        }
        for (hook, bytes) in hooks.iter_mut().zip(&saved) {
            hook.restore(bytes, &device).map_err(StageError::Failed)?;
        }
    }

    let total = s.total_grad_steps();
    let save = |agent: &Agent,
                hooks: &[Box<dyn UpdateHook>],
                state: &OfflineState,
                progress: &Progress|
     -> Result<(), StageError> {
        let r = OfflineResume {
            fingerprint: fingerprint.clone(),
            agent: agent.save().map_err(StageError::Failed)?,
            hooks: hooks.iter().map(|h| h.save()).collect(),
            state: state.clone(),
            progress: progress.clone(),
        };
        save_scratch(&resume_path, RESUME_MAGIC, &r)
    };
    while state.iteration < s.iterations {
        let end = (state.iteration + 1) * s.training_steps;
        while state.grad_steps < end {
            let chunk_end = (state.grad_steps + 1_000).min(end);
            while state.grad_steps < chunk_end {
                gradient_step(s, &mut agent, &mut hooks, &replay, &mut state)?;
            }
            ctx.progress(state.grad_steps, total, "gradient steps");
            if ctx.cancelled() {
                save(&agent, &hooks, &state, &progress)?;
                return Err(StageError::Cancelled);
            }
        }
        end_iteration(
            s,
            ctx,
            env.as_ref(),
            &agent,
            &hooks,
            &mut state,
            &mut progress,
        )?;
        save(&agent, &hooks, &state, &progress)?;
        if ctx.cancelled() {
            return Err(StageError::Cancelled);
        }
    }
    write_outputs(s, ctx, &agent, &hooks, &state, &progress, &replay)
}

fn gradient_step(
    s: &OfflineSettings,
    agent: &mut Agent,
    hooks: &mut [Box<dyn UpdateHook>],
    replay: &Replay,
    state: &mut OfflineState,
) -> Result<(), StageError> {
    let batch = replay
        .sample(s.batch_size, &mut state.rng)
        .ok_or_else(|| StageError::Failed("the dataset holds no complete transition".into()))?;
    let step = state.grad_steps;
    for hook in hooks.iter_mut() {
        hook.before_update(step, &*agent);
    }
    agent.learn(&batch, false);
    for hook in hooks.iter_mut() {
        hook.after_update(step, &mut *agent, replay);
    }
    state.grad_steps += 1;
    if state.grad_steps.is_multiple_of(s.target_update_period) {
        agent.sync_target();
    }
    Ok(())
}

/// Mean return and count of the evaluation episodes after `iteration`: whole episodes at
/// epsilon_eval until at least `eval_steps` agent steps ran (Dopamine's `_run_one_phase`).
pub fn evaluate(
    env: &dyn Env,
    agent: &Agent,
    eval_steps: u64,
    epsilon: f64,
    seed: u64,
    iteration: u64,
) -> (Option<f64>, u64) {
    if eval_steps == 0 {
        return (None, 0);
    }
    let mut env = env.boxed_clone();
    let mut stack = FrameStack::new(env.spec());
    let base = seed ^ 0x6f66_6576_616c_0000 ^ iteration.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = Pcg64::seed_from_u64(base);
    let (mut steps, mut episodes, mut total) = (0u64, 0u64, 0.0f64);
    while steps < eval_steps {
        env.reset(Some(rng.random()));
        stack.reset(env.observation());
        loop {
            let a = agent.act(&stack.data, epsilon, &mut rng);
            let step = env
                .step(Action::Discrete(a))
                .expect("agent actions are in range");
            steps += 1;
            total += step.reward as f64;
            if step.terminal || step.truncated {
                break;
            }
            stack.push(env.observation());
        }
        episodes += 1;
    }
    (Some(total / episodes as f64), episodes)
}

fn snapshot(
    agent: &Agent,
    hooks: &[Box<dyn UpdateHook>],
    state: &OfflineState,
) -> Result<Snapshot, StageError> {
    let saved = agent.save().map_err(StageError::Failed)?;
    Ok(Snapshot {
        agent: agent.config().clone(),
        online: saved.online,
        masks: hooks
            .iter()
            .map(|h| h.masks())
            .find(|m| !m.is_empty())
            .unwrap_or_default(),
        env_steps: 0,
        grad_steps: state.grad_steps,
        iteration: state.iteration,
    })
}

/// Per-layer sparsity (exact zeros) and the overall sparsity of the kernels.
fn sparsities(agent: &Agent) -> (Vec<(String, f64)>, f64) {
    let net = agent.network();
    let (mut zeros, mut all) = (0usize, 0usize);
    let layers = net
        .kernels()
        .into_iter()
        .zip(net.kernel_values())
        .map(|(k, v)| {
            let z = v.iter().filter(|&&x| x == 0.0).count();
            zeros += z;
            all += v.len();
            (k.name, z as f64 / v.len() as f64)
        })
        .collect();
    (layers, zeros as f64 / all.max(1) as f64)
}

fn end_iteration(
    s: &OfflineSettings,
    ctx: &Context,
    env: &dyn Env,
    agent: &Agent,
    hooks: &[Box<dyn UpdateHook>],
    state: &mut OfflineState,
    progress: &mut Progress,
) -> Result<(), StageError> {
    let (eval_return, eval_episodes) = evaluate(
        env,
        agent,
        s.eval_steps,
        s.epsilon_eval,
        s.seed,
        state.iteration,
    );
    let (layers, sparsity) = sparsities(agent);
    progress.push_sparsities(state.grad_steps, layers);
    ctx.log(format!(
        "iteration {}: gradient steps {}, eval return {} over {eval_episodes} episodes, sparsity {sparsity:.4}",
        state.iteration,
        state.grad_steps,
        eval_return.map_or_else(|| "NaN".into(), |v| v.to_string()),
    ));
    progress.rows.push((
        IterationStats {
            iteration: state.iteration,
            env_steps: state.grad_steps,
            grad_steps: state.grad_steps,
            train_return: None,
            train_episodes: 0,
            eval_return,
            eval_episodes,
        },
        sparsity,
    ));
    state.iteration += 1;
    for (k, &f) in s.checkpoints.iter().enumerate() {
        let at = ((f * s.iterations as f64).ceil() as u64).max(1);
        if at == state.iteration && !progress.checkpoints.iter().any(|(e, _)| e.index == k) {
            let snap = snapshot(agent, hooks, state)?;
            let entry = CheckpointEntry {
                index: k,
                fraction: f,
                file: format!("ckpt-{k}.ckpt"),
                iteration: state.iteration,
                env_steps: 0,
                grad_steps: state.grad_steps,
            };
            progress.checkpoints.push((entry, snap));
        }
    }
    Ok(())
}

fn write_outputs(
    s: &OfflineSettings,
    ctx: &Context,
    agent: &Agent,
    hooks: &[Box<dyn UpdateHook>],
    state: &OfflineState,
    progress: &Progress,
    replay: &Replay,
) -> Result<(), StageError> {
    std::fs::create_dir_all(&ctx.out_dir)?;
    progress.write_tables(&ctx.out_dir).map_err(results_err)?;
    let last = snapshot(agent, hooks, state)?;
    last.write(&ctx.output("final.ckpt"))?;
    let mut entries = Vec::new();
    for (k, &f) in s.checkpoints.iter().enumerate() {
        let file = format!("ckpt-{k}.ckpt");
        match progress.checkpoints.iter().find(|(e, _)| e.index == k) {
            Some((entry, snap)) => {
                snap.write(&ctx.output(&file))?;
                entries.push(entry.clone());
            }
            None => {
                last.write(&ctx.output(&file))?;
                entries.push(CheckpointEntry {
                    index: k,
                    fraction: f,
                    file,
                    iteration: last.iteration,
                    env_steps: 0,
                    grad_steps: last.grad_steps,
                });
            }
        }
    }
    prunus_results::write_json(&ctx.output(CheckpointEntry::NAME), &entries)
        .map_err(results_err)?;
    let mut rng = Pcg64::seed_from_u64(s.seed ^ 0x7072_6f62_6500_0000);
    let batch = replay
        .sample(s.probe_batch, &mut rng)
        .ok_or_else(|| StageError::Failed("the dataset holds no complete transition".into()))?;
    ProbeBatch::from_batch(&batch, replay.state_len()).write(&ctx.output("probe_batch.bin"))?;
    Ok(())
}

/// The scratch checkpoint if it is this run's (see [`resume_from`]).
fn read_resume(ctx: &Context, path: &Path, fingerprint: &str) -> Option<OfflineResume> {
    resume_from(ctx, path, RESUME_MAGIC, |r: &OfflineResume| {
        if r.fingerprint == fingerprint {
            Ok(())
        } else {
            Err(Unfit::OtherRun)
        }
    })
}
