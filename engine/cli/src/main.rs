//! `prunus`: run, plan and explain KDL pipelines; inspect and maintain the artifact store.
//! Each subcommand is a module of [`commands`]; [`registry`] joins the engine and the science.

mod commands;
mod config;
mod format;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use miette::Result;

use commands::roms::RomsCommand;
use commands::store::StoreCommand;

#[derive(Parser)]
#[command(
    name = "prunus",
    version,
    about = "Reproducible deep-RL pruning studies as incremental KDL pipelines",
    long_about = "prunus turns the study of \"In deep reinforcement learning, a pruned network is a \
good network\" (Obando-Ceron, Courville, Castro, 2024) into one declarative pipeline. Each stage \
instance (a training run, a probe, a statistic, a figure) is keyed by the blake3 hash of its kind, \
version, parameters and inputs; `prunus run` reruns only what an edit invalidated and takes the \
rest from a content-addressed store.",
    after_help = "Examples:\n  prunus run pipelines/quickstart.kdl          run it (minutes on a laptop CPU)\n  \
prunus plan pipelines/quickstart.kdl         what would run, what is cached, and why\n  \
prunus explain pipelines/quickstart.kdl train/breakout/width1/sparsity0.95/seed0\n  \
prunus show train/breakout/width1/sparsity0.95/seed0 --log\n  \
prunus kinds train/dqn                       a stage kind's parameters and defaults\n  \
prunus store verify                          re-hash every blob\n  \
prunus roms install                          Atari ROMs from ale-py's wheel (--features atari)\n  \
prunus device --bench                        is this GPU right and fast? (--features cuda)"
)]
struct Cli {
    /// The artifact store (shared by every pipeline run from here).
    #[arg(long, global = true, env = "PRUNUS_STORE", default_value = ".prunus")]
    store: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline: every instance whose result is not in the store, in dependency order.
    Run(commands::run::Args),
    /// Show what `run` would do: what is cached, what runs, and why.
    Plan(commands::plan::Args),
    /// Say which key component of an instance differs from its last recorded run.
    Explain(commands::explain::Args),
    /// Show a stored result: outputs, run metadata, log; or copy its outputs out.
    Show(commands::show::Args),
    /// List the instances with recorded results (optionally those starting with PREFIX).
    Ls(commands::ls::Args),
    /// List the stage kinds, or show one kind's parameters and defaults.
    Kinds(commands::kinds::Args),
    /// Run one saved job (a stage instance and its inputs by digest) against the store: what a
    /// cluster job runs.
    Exec(commands::exec::Args),
    /// Maintain the artifact store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Install and check the Atari ROMs (builds with `--features atari`).
    #[command(subcommand)]
    Roms(RomsCommand),
    /// Check a GPU (or the CPU) for training: agreement with the CPU, and with --bench its
    /// throughput.
    Device(commands::device::Args),
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let store = &cli.store;
    match cli.command {
        Command::Run(args) => commands::run::run(store, args),
        Command::Plan(args) => commands::plan::run(store, args),
        Command::Explain(args) => commands::explain::run(store, args),
        Command::Show(args) => commands::show::run(store, args),
        Command::Ls(args) => commands::ls::run(store, args),
        Command::Kinds(args) => commands::kinds::run(args),
        Command::Exec(args) => commands::exec::run(store, args),
        Command::Store(cmd) => commands::store::run(store, cmd),
        Command::Roms(cmd) => commands::roms::run(cmd),
        Command::Device(args) => commands::device::run(args),
    }
}

/// Printing into a closed pipe (`prunus plan big.kdl | head -1`) ends prunus quietly, as Unix
/// tools end: of SIGPIPE. Not by restoring SIGPIPE's default for the whole process: then a
/// write to a socket the other end closed (an S3 server that died mid-upload; TLS writes
/// vectors, which cannot opt out of the signal) would kill prunus without a word instead of
/// being an error that names the remote. So SIGPIPE stays ignored, as Rust sets it, and only
/// the panic of `println!` into a closed stdout is turned into the signal.
fn restore_sigpipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            // SAFETY: restoring a signal's default disposition and raising it; prunus ends here.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
        }
        default(info)
    }));
}
