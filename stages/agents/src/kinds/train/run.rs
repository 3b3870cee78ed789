//! The training run behind both kinds: build the trainer and its hooks (or restore them from
//! the scratch checkpoint), train iteration by iteration, checkpointing each, and write the
//! outputs.

use std::path::Path;

use prunus_results::{CheckpointEntry, ResultFile};
use prunus_stage::{Context, StageError};
use rand::SeedableRng;
use rand_pcg::Pcg64;

use super::setup::Setup;
use crate::agent::Agent;
use crate::baselines::{RedoHook, ResetHook};
use crate::checkpoint::{ProbeBatch, Progress, RESUME_MAGIC, Resume, Snapshot};
use crate::hooks::UpdateHook;
use crate::kinds::{Unfit, resume_from, save_scratch};
use crate::prune::GmpHook;
use crate::replay::Replay;
use crate::train::Trainer;

pub(crate) fn build_trainer(setup: &Setup, resume: Option<&Resume>) -> Result<Trainer, String> {
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
    let resume = Resume::of(&setup.fingerprint, trainer, progress).map_err(StageError::Failed)?;
    save_scratch(path, RESUME_MAGIC, &resume)
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

/// The scratch checkpoint of this run, if the scratch holds a sound one (see [`resume_from`];
/// the fingerprint of older releases still counts as this run's).
fn read_resume(setup: &Setup, ctx: &Context, path: &Path) -> Option<Resume> {
    resume_from(ctx, path, RESUME_MAGIC, |r: &Resume| {
        if [&setup.fingerprint, &setup.previous_fingerprint].contains(&&r.fingerprint) {
            Ok(())
        } else {
            Err(Unfit::OtherRun)
        }
    })
}

/// The training run behind both kinds: resume if the scratch holds this run's checkpoint,
/// train iteration by iteration (checkpointing each), write the outputs.
pub fn run_training(setup: &Setup, ctx: &Context) -> Result<(), StageError> {
    std::fs::create_dir_all(&ctx.scratch)?;
    let resume_path = ctx.scratch.join("resume.ckpt");
    let resume = read_resume(setup, ctx, &resume_path);
    let mut trainer = build_trainer(setup, resume.as_ref()).map_err(StageError::Failed)?;
    let mut progress = match resume {
        Some(r) => {
            ctx.log(format!(
                "resuming at agent step {} (iteration {})",
                r.state.env_steps, r.state.iteration
            ));
            r.progress
        }
        None => Progress::default(),
    };
    let c = &setup.loop_config;
    let total = c.iterations * c.training_steps;
    let chunk = 1_000;
    while !trainer.done() {
        trainer.train_steps(chunk).map_err(StageError::Failed)?;
        ctx.progress(trainer.state.env_steps, total, "steps");
        if trainer.training_phase_done() {
            end_iteration(setup, ctx, &mut trainer, &mut progress)?;
            save_resume(&resume_path, setup, &trainer, &progress)?;
        }
        if ctx.cancelled() {
            save_resume(&resume_path, setup, &trainer, &progress)?;
            return Err(StageError::Cancelled);
        }
    }
    write_outputs(setup, ctx, &trainer, &progress)
}

/// Evaluates and records the iteration that just finished training: its row, its layers'
/// sparsities, the hooks' reports, and the snapshots due at this point.
pub(crate) fn end_iteration(
    setup: &Setup,
    ctx: &Context,
    trainer: &mut Trainer,
    progress: &mut Progress,
) -> Result<(), StageError> {
    let stats = trainer.finish_iteration();
    let (layers, sparsity) = layer_sparsities(trainer);
    progress.push_sparsities(stats.grad_steps, layers);
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
    let iterations = setup.loop_config.iterations;
    for (k, &f) in setup.checkpoints.iter().enumerate() {
        let at = ((f * iterations as f64).ceil() as u64).max(1);
        if at == done_iters && !progress.checkpoints.iter().any(|(e, _)| e.index == k) {
            let snap = snapshot(trainer).map_err(StageError::Failed)?;
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
    Ok(())
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "NaN".to_string(), |v| format!("{v}"))
}

/// The declared outputs: `returns.csv`, `sparsity.csv`, the snapshots and their index, the
/// probe batch.
fn write_outputs(
    setup: &Setup,
    ctx: &Context,
    trainer: &Trainer,
    progress: &Progress,
) -> Result<(), StageError> {
    std::fs::create_dir_all(&ctx.out_dir)?;
    progress.write_tables(&ctx.out_dir).map_err(results_err)?;
    snapshot(trainer)
        .map_err(StageError::Failed)?
        .write(&ctx.output("final.ckpt"))?;
    write_checkpoints(setup, ctx, trainer, progress)?;
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

/// `ckpt-<k>.ckpt` for every declared fraction, and `checkpoints.json` listing them.
fn write_checkpoints(
    setup: &Setup,
    ctx: &Context,
    trainer: &Trainer,
    progress: &Progress,
) -> Result<(), StageError> {
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
    prunus_results::write_json(&ctx.output(CheckpointEntry::NAME), &entries).map_err(results_err)
}

pub(crate) fn results_err(e: prunus_results::Error) -> StageError {
    StageError::Failed(e.to_string())
}
