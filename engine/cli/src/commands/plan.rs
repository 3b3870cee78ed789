//! `prunus plan`: what `run` would do, what is cached, and why the rest must run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};
use prunus_engine::Graph;
use prunus_engine::executor::fit;
use prunus_engine::executor::local::Slots;
use prunus_engine::plan::{self, Entry, Status};

use prunus::registry;
use prunus_slurm::estimate;

use super::executor::Choice;

#[derive(clap::Args)]
pub struct Args {
    pipeline: PathBuf,
    /// List cached instances too.
    #[arg(long)]
    all: bool,
    /// Print the plan as JSON (instance, stage, status, key, reason).
    #[arg(long)]
    json: bool,
    /// GPUs the run will have (`prunus run --gpus`): instances to run that need more are
    /// reported (without it, GPUs are not checked).
    #[arg(long)]
    gpus: Option<u32>,
    #[command(flatten)]
    remote: super::remote::RunRemote,
    #[command(flatten)]
    executor: super::executor::ExecutorArgs,
}

pub fn run(store: &Path, args: Args) -> Result<ExitCode> {
    let graph = registry::load(&args.pipeline)?;
    let store = super::open(store)?;
    prunus_engine::identity::claim(&graph, &store, false)?;
    let remote = super::remote::for_run(&store, &graph, &args.remote)?;
    let entries = plan::plan_with(&graph, &store, remote.as_deref())?;
    // Plans for the local executor: what this machine can never give is an error now.
    let to_run: Vec<usize> = (0..entries.len())
        .filter(|&i| !matches!(entries[i].status, Status::Cached | Status::Remote))
        .collect();
    let slurm = match super::executor::choose(&graph, &args.executor)? {
        Choice::Slurm(opts) => Some(opts),
        Choice::Local => {
            let room = Slots::this_machine(1, args.gpus.unwrap_or(u32::MAX), 0);
            fit::check(&graph, &room, &to_run)?;
            None
        }
    };
    if args.json {
        print_json(&graph, &entries)?;
    } else {
        print_table(&graph, &entries, args.all, remote.is_some());
    }
    if let Some(opts) = slurm {
        let text = estimate::render(&estimate::arrays(&graph, &to_run), &opts);
        // `--json` keeps stdout one JSON document (for jq, pandas); the estimate goes aside.
        if args.json {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json(graph: &Graph, entries: &[Entry]) -> Result<()> {
    let rows: Vec<serde_json::Value> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            serde_json::json!({
                "instance": graph.instances[i].name,
                "stage": graph.stage_of(i).name,
                "status": e.status.label(),
                "key": e.key.map(|k| k.to_string()),
                "reason": e.status.reason(),
            })
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&rows).into_diagnostic()?);
    Ok(())
}

/// What the instances to run cost by their kinds' estimates, each key once (sweeps that share
/// runs name them twice): CPU-hours for one core per CPU asked, GPU-hours per GPU.
fn cost_line(graph: &Graph, entries: &[Entry]) -> Option<String> {
    let (mut cpu, mut gpu, mut seen) = (0.0, 0.0, std::collections::HashSet::new());
    for (i, e) in entries.iter().enumerate() {
        if matches!(e.status, Status::Cached | Status::Remote) {
            continue;
        }
        if e.key.is_some_and(|k| !seen.insert(k)) {
            continue;
        }
        let inst = &graph.instances[i];
        let Some(secs) = graph.stage_of(i).kind.estimate_secs(&inst.params) else {
            continue;
        };
        let r = inst.resources;
        if r.gpus > 0 {
            gpu += secs * r.gpus as f64 / 3600.0;
        } else {
            cpu += secs * r.cpus.max(1) as f64 / 3600.0;
        }
    }
    let hours = |h: f64| {
        if h < 10.0 {
            format!("{h:.2}")
        } else {
            format!("{h:.0}")
        }
    };
    (cpu + gpu > 0.0).then(|| {
        format!(
            "estimated work: {} CPU-hours, {} GPU-hours (rough: the kinds' measured rates; \
             `--executor slurm` breaks it down per stage)",
            hours(cpu),
            hours(gpu)
        )
    })
}

/// One line per stage, then its instances to run (the first 50 unless `all`).
fn print_table(graph: &Graph, entries: &[Entry], all: bool, remote: bool) {
    let (mut runs, mut on_remote) = (0, 0);
    for stage in &graph.stages {
        let range = stage.instances.clone();
        let count =
            |f: fn(&Status) -> bool| range.clone().filter(|&i| f(&entries[i].status)).count();
        let cached = count(|s| matches!(s, Status::Cached));
        let fetched = count(|s| matches!(s, Status::Remote));
        let run = range.len() - cached - fetched;
        runs += run;
        on_remote += fetched;
        println!(
            "{:<24} {:>6} instances  {:>6} cached  {}{:>6} to run   ({})",
            stage.name,
            range.len(),
            cached,
            if remote {
                format!("{fetched:>6} on remote  ")
            } else {
                String::new()
            },
            run,
            stage.kind.name()
        );
        let mut shown = 0;
        for i in range.clone() {
            let e = &entries[i];
            if matches!(e.status, Status::Cached | Status::Remote) && !all {
                continue;
            }
            if shown == 50 && !all {
                println!(
                    "    ... and {} more (--all lists every instance)",
                    run - shown
                );
                break;
            }
            shown += 1;
            println!(
                "  {:<7} {}  {}",
                e.status.label(),
                graph.instances[i].name,
                e.status.reason()
            );
        }
    }
    if remote {
        println!(
            "{on_remote} of {} instances are on the remote (fetched, not run)",
            graph.instances.len()
        );
    }
    println!("{} of {} instances to run", runs, graph.instances.len());
    if let Some(line) = cost_line(graph, entries) {
        println!("{line}");
    }
    if graph.stages.is_empty() {
        println!("(it has no stages: only templates and sweeps, for other pipelines to `include`)");
    }
}
