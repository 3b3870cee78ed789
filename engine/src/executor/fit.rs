//! Resources the local executor can never give, found before anything runs: a stage that sets
//! `resources cpus=1000` or `memory="1000G"` on a laptop, or needs a GPU the run was not given,
//! is a pipeline diagnostic at its `resources` line instead of a job that runs clamped or fails
//! hours into the run.
//!
//! Cpus and memory the pipeline sets are compared with this machine (or the run's `--cpus` /
//! `--memory` where those say more); a kind's own estimates are not, since the local executor
//! runs an instance that asks for more than the run has alone. GPUs cannot be shared out that
//! way, so any instance needing more GPUs than the run has is reported.

use prunus_stage::Resources;

use super::local::Slots;
use crate::diagnostic::{Loc, PipelineError, Problem, Problems};
use crate::lower::{Graph, Stage};

impl Slots {
    /// This machine's cores and memory (at least `cpus` and `memory_mb`, what the run was
    /// told it may use), and the run's `gpus`.
    pub fn this_machine(cpus: u32, gpus: u32, memory_mb: u64) -> Slots {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        Slots {
            cpus: cpus.max(cores),
            gpus,
            memory_mb: memory_mb.max(crate::run::total_memory_mb()),
        }
    }
}

/// Every instance among `to_run` (graph indices: those not cached, in the run's targets)
/// whose resources `room` can never hold, as one report.
pub fn check(graph: &Graph, room: &Slots, to_run: &[usize]) -> Result<(), PipelineError> {
    let mut problems = Problems::default();
    for stage in &graph.stages {
        let mut worst = Resources {
            cpus: 0,
            gpus: 0,
            memory_mb: 0,
            time_s: None,
        };
        let mine = to_run.iter().filter(|i| stage.instances.contains(i));
        for inst in mine.map(|&i| &graph.instances[i]) {
            worst.cpus = worst.cpus.max(inst.resources.cpus);
            worst.gpus = worst.gpus.max(inst.resources.gpus);
            worst.memory_mb = worst.memory_mb.max(inst.resources.memory_mb);
        }
        let set = |key: &str| stage.resources_set.iter().find(|(k, _)| k == key);
        if let Some((_, loc)) = set("cpus")
            && worst.cpus > room.cpus
        {
            let what = format!("{} cpus", worst.cpus);
            problems.push(too_much(
                stage,
                *loc,
                &what,
                &format!("{} cores", room.cpus),
            ));
        }
        if let Some((_, loc)) = set("memory")
            && worst.memory_mb > room.memory_mb
        {
            let what = format!("{} MB of memory", worst.memory_mb);
            let has = format!("{} MB", room.memory_mb);
            problems.push(too_much(stage, *loc, &what, &has));
        }
        if worst.gpus > room.gpus {
            problems.push(too_many_gpus(
                stage,
                set("gpus").map(|(_, l)| *l),
                worst.gpus,
                room,
            ));
        }
    }
    problems.into_result(&graph.sources)
}

fn too_much(stage: &Stage, loc: Loc, what: &str, has: &str) -> Problem {
    Problem::new(
        loc,
        format!(
            "stage `{}` asks for {what}, but this machine has {has}",
            stage.name
        ),
        "more than this machine has",
    )
    .help("lower it to what the machine has, or run the pipeline on a larger machine")
}

fn too_many_gpus(stage: &Stage, set: Option<Loc>, gpus: u32, room: &Slots) -> Problem {
    let (loc, asks) = match set {
        Some(loc) => (loc, format!("asks for {gpus} GPU(s)")),
        None => (
            stage.loc,
            format!("needs {gpus} GPU(s) (kind `{}`)", stage.kind.name()),
        ),
    };
    Problem::new(
        loc,
        format!(
            "stage `{}` {asks}, but this run has {}",
            stage.name, room.gpus
        ),
        "needs a GPU",
    )
    .help("pass --gpus N on a machine with GPUs, or use device \"cpu\"")
}
