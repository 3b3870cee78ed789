//! `prunus run`: every instance whose result is not in the store, in dependency order.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use miette::{Result, miette};
use prunus_engine::RunOptions;
use prunus_engine::run::human_secs;

use prunus::registry;
use prunus_slurm::SlurmExecutor;

use super::executor::Choice;

#[derive(clap::Args)]
pub struct Args {
    /// The pipeline file (.kdl).
    pipeline: PathBuf,
    /// Only these instances (names or prefixes such as `train/breakout`) and their upstream.
    targets: Vec<String>,
    /// Keep running independent instances after one fails.
    #[arg(long, short = 'k')]
    keep_going: bool,
    /// CPU slots to fill (default: all cores).
    #[arg(long)]
    cpus: Option<u32>,
    /// GPUs to hand out to stages that declare `resources gpus=`.
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    /// Training runs that share each GPU, side by side. One of the paper's runs leaves a large
    /// GPU mostly idle; `scripts/gpu-check` measures the throughput at 1, 2, 4 and 8.
    #[arg(long, default_value_t = 1, value_name = "N")]
    runs_per_gpu: u32,
    /// Memory to pack stages into, e.g. 16G (default: the machine's).
    #[arg(long)]
    memory: Option<String>,
    /// Do not copy the final stages' outputs to the results directory.
    #[arg(long)]
    no_export: bool,
    /// Print every stage's log lines as they come.
    #[arg(long, short)]
    verbose: bool,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    remote: super::remote::RunRemote,
    #[command(flatten)]
    executor: super::executor::ExecutorArgs,
}

pub fn run(store: &std::path::Path, args: Args) -> Result<ExitCode> {
    let graph = registry::load(&args.pipeline)?;
    let store = super::open(store)?;
    let choice = super::executor::choose(&graph, &args.executor)?;
    let nodes_apart = matches!(&choice, Choice::Slurm(s) if s.node_store.is_some());
    if nodes_apart {
        // Made before the remote is connected, so that the run believes what its jobs sign.
        super::remote::jobs_key(&store)?;
    }
    let remote = super::remote::for_run(&store, &graph, &args.remote)?;
    let mut opts = RunOptions {
        remote: remote.clone(),
        keep_going: args.keep_going,
        gpus: args.gpus,
        runs_per_gpu: args.runs_per_gpu,
        targets: args.targets,
        export: !args.no_export,
        verbose: args.verbose,
        quiet: args.quiet,
        ..RunOptions::default()
    };
    if let Some(c) = args.cpus {
        opts.cpus = c;
    }
    if let Some(m) = args.memory {
        opts.memory_mb = prunus_engine::lower::parse_memory(&m)
            .ok_or_else(|| miette!("cannot read --memory {m}; write e.g. 16G or 512M"))?;
    }
    let t0 = std::time::Instant::now();
    let summary = match choice {
        Choice::Local => prunus_engine::run::run(&graph, &store, &opts, cancel_on_ctrl_c())?,
        Choice::Slurm(slurm) => {
            let mut executor = SlurmExecutor::new(store.clone(), slurm)
                .map_err(|e| miette!("cannot run on Slurm: {e}"))?;
            if nodes_apart {
                let through =
                    super::remote::for_nodes(&store, &graph, &args.remote, remote.as_ref())?;
                executor = executor.through(through).map_err(|e| miette!("{e}"))?;
            }
            let cancel = cancel_on_ctrl_c();
            let summary =
                prunus_engine::run::run_with(&graph, &store, &opts, &mut executor, cancel)?;
            eprintln!(
                "slurm: {} instance(s) submitted, {} re-attached to (submitted before)",
                executor.submitted, executor.attached
            );
            summary
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "{}: {} ran, {} cached, {} failed, {} not run, in {}",
        graph.name,
        summary.ran.len(),
        summary.cached,
        summary.failed.len(),
        summary.skipped,
        human_secs(secs)
    );
    if let Some(r) = &remote {
        eprintln!(
            "remote {}: {} fetched, {} pushed{}",
            r.name(),
            summary.fetched,
            summary.pushed,
            if r.read_only() { " (read-only)" } else { "" }
        );
        for p in &summary.remote_problems {
            eprintln!("  ! {p}");
        }
    }
    if let Some(dir) = &summary.exported {
        eprintln!("results: {}", dir.display());
    }
    for f in &summary.failed {
        eprintln!("failed: {}: {}", f.instance, f.error);
    }
    Ok(if summary.cancelled {
        ExitCode::from(130)
    } else if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A flag set by the first Ctrl-C (or SIGTERM): running stages checkpoint and stop. A second
/// one quits at once; the store stays consistent either way.
pub fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted twice: quitting now (the store stays consistent)");
            std::process::exit(130);
        }
    });
    cancel
}
