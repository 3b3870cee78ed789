//! `prunus`: run, plan and explain KDL pipelines; inspect and maintain the artifact store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use miette::{IntoDiagnostic, Result, WrapErr, miette};
use prunus_engine::plan::{self, Status};
use prunus_engine::run::human_secs;
use prunus_engine::{Registry, RunOptions};
use prunus_store::{Digest, GcOptions, Store};

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
prunus roms install                          Atari ROMs from ale-py's wheel (--features atari)"
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
    Run {
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
    },
    /// Show what `run` would do: what is cached, what runs, and why.
    Plan {
        pipeline: PathBuf,
        /// List cached instances too.
        #[arg(long)]
        all: bool,
        /// Print the plan as JSON (instance, stage, status, key, reason).
        #[arg(long)]
        json: bool,
    },
    /// Say which key component of an instance differs from its last recorded run.
    Explain { pipeline: PathBuf, instance: String },
    /// Show a stored result: outputs, run metadata, log; or copy its outputs out.
    Show {
        /// An instance name (as in `prunus ls`) or a stage key (hex prefix).
        what: String,
        /// Print the whole log.
        #[arg(long)]
        log: bool,
        /// Copy the outputs into this directory.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// List the instances with recorded results (optionally those starting with PREFIX).
    Ls { prefix: Option<String> },
    /// List the stage kinds, or show one kind's parameters and defaults.
    Kinds { name: Option<String> },
    /// Maintain the artifact store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Install and check the Atari ROMs (builds with `--features atari`).
    #[command(subcommand)]
    Roms(RomsCommand),
}

#[derive(Subcommand)]
enum RomsCommand {
    /// Copy the ROMs out of an ale-py wheel (downloaded from PyPI unless --wheel or --from is
    /// given) into the ROM directory, verifying each file's MD5.
    #[command(
        after_help = "Examples:\n  prunus roms install                      download ale-py's wheel from PyPI\n  \
prunus roms install --wheel ale_py-0.12.1-cp311-cp311-manylinux_2_28_x86_64.whl\n  \
prunus roms install --from .venv/lib/python3.11/site-packages/ale_py/roms"
    )]
    Install {
        /// An ale-py wheel on disk (no network needed).
        #[arg(long, conflicts_with = "from")]
        wheel: Option<PathBuf>,
        /// A directory of <game>.bin files, e.g. an installed ale_py/roms.
        #[arg(long)]
        from: Option<PathBuf>,
        /// The ale-py release to download.
        #[arg(long, default_value = DEFAULT_ALE_PY)]
        ale_py: String,
        /// The package index to download from.
        #[arg(long, default_value = "https://pypi.org")]
        index: String,
        /// Where to install (default: $PRUNUS_ROMS, else ~/.local/share/prunus/roms).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// List the supported games and whether each ROM is installed and verified.
    List {
        /// The ROM directory (default: $PRUNUS_ROMS, else ~/.local/share/prunus/roms).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[cfg(feature = "atari")]
const DEFAULT_ALE_PY: &str = prunus_env::atari::roms::ALE_PY_VERSION;
#[cfg(not(feature = "atari"))]
const DEFAULT_ALE_PY: &str = "0.12.1";

#[derive(Subcommand)]
enum StoreCommand {
    /// Re-hash every blob; quarantine corrupt ones; report dangling results.
    Verify,
    /// Delete what no recorded instance references; keep the newest N checkpoint scratches.
    Gc {
        #[arg(long, default_value_t = 1)]
        keep_checkpoints: usize,
    },
    /// Sizes, counts and compression ratio.
    Du,
    /// Every stored result (stage key, kind, when, outputs).
    Ls,
    /// One stored result by key (hex prefix).
    Show { key: String },
}

fn main() -> ExitCode {
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
    match cli.command {
        Command::Run {
            pipeline,
            targets,
            keep_going,
            cpus,
            gpus,
            memory,
            no_export,
            verbose,
            quiet,
        } => {
            let graph = prunus_engine::load(&pipeline)?;
            let store = open(&cli.store)?;
            let mut opts = RunOptions {
                keep_going,
                gpus,
                targets,
                export: !no_export,
                verbose,
                quiet,
                ..RunOptions::default()
            };
            if let Some(c) = cpus {
                opts.cpus = c;
            }
            if let Some(m) = memory {
                opts.memory_mb = prunus_engine::lower::parse_memory(&m)
                    .ok_or_else(|| miette!("cannot read --memory {m}; write e.g. 16G or 512M"))?;
            }
            let cancel = Arc::new(AtomicBool::new(false));
            let flag = cancel.clone();
            let _ = ctrlc::set_handler(move || {
                if flag.swap(true, Ordering::SeqCst) {
                    eprintln!("\ninterrupted twice: quitting now (the store stays consistent)");
                    std::process::exit(130);
                }
            });
            let t0 = std::time::Instant::now();
            let summary = prunus_engine::run::run(&graph, &store, &opts, cancel)?;
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
        Command::Plan {
            pipeline,
            all,
            json,
        } => {
            let graph = prunus_engine::load(&pipeline)?;
            let store = open(&cli.store)?;
            let entries = plan::plan(&graph, &store)?;
            if json {
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
                return Ok(ExitCode::SUCCESS);
            }
            let mut runs = 0;
            for stage in &graph.stages {
                let range = stage.instances.clone();
                let cached = range
                    .clone()
                    .filter(|&i| matches!(entries[i].status, Status::Cached))
                    .count();
                let run = range.len() - cached;
                runs += run;
                println!(
                    "{:<24} {:>6} instances  {:>6} cached  {:>6} to run   ({})",
                    stage.name,
                    range.len(),
                    cached,
                    run,
                    stage.kind.name()
                );
                let mut shown = 0;
                for i in range.clone() {
                    let e = &entries[i];
                    if matches!(e.status, Status::Cached) && !all {
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
            println!("{} of {} instances to run", runs, graph.instances.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { pipeline, instance } => {
            let graph = prunus_engine::load(&pipeline)?;
            let store = open(&cli.store)?;
            let Some(i) = graph.find(&instance) else {
                let names: Vec<&str> = graph.instances.iter().map(|i| i.name.as_str()).collect();
                let hint =
                    prunus_engine::diagnostic::did_you_mean(&instance, names.iter().copied())
                        .unwrap_or_else(|| "`prunus plan --all` lists every instance".into());
                return Err(miette!(
                    help = hint,
                    "no instance `{instance}` in {}",
                    pipeline.display()
                ));
            };
            let entries = plan::plan(&graph, &store)?;
            let e = &entries[i];
            println!("{instance}");
            println!(
                "  kind     {} v{}",
                graph.stage_of(i).kind.name(),
                graph.stage_of(i).kind.version()
            );
            match e.key {
                Some(k) => println!("  key      {k}"),
                None => println!("  key      not known yet: {}", e.status.reason()),
            }
            match &e.status {
                Status::Cached => println!("  status   cached: nothing changed since it ran"),
                Status::Run(reasons) => {
                    println!("  status   runs, because:");
                    for r in reasons {
                        println!("    - {r}");
                    }
                }
                Status::Waits(up) => {
                    println!("  status   runs after {up}, whose outputs are part of this key")
                }
            }
            if let Some(prev) = store
                .get_ref(&plan::ref_name(&graph, i))
                .into_diagnostic()?
            {
                println!("  last run {prev}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { what, log, export } => {
            let store = open(&cli.store)?;
            let (label, key) = find_result(&store, &what)?;
            let result = store.lookup(&key).into_diagnostic()?.ok_or_else(|| {
                miette!("{label}: its result {key} is no longer in the store (removed by gc?)")
            })?;
            println!("{label}");
            println!("  key       {key}");
            if let Some(kind) = result.key_info.get("kind") {
                println!(
                    "  kind      {} v{}",
                    kind.as_str().unwrap_or("?"),
                    result.key_info["version"]
                );
            }
            let m = &result.meta;
            println!(
                "  ran       {} on {} (prunus {}), {}",
                format_unix_ms(m.started_unix_ms),
                m.host,
                m.prunus_version,
                human_secs(m.duration_s)
            );
            if let Some(params) = result.key_info.get("params").and_then(|p| p.as_object()) {
                println!("  params");
                for (k, v) in params {
                    println!("    {k} = {v}");
                }
            }
            println!("  outputs");
            for (name, blob) in &result.outputs {
                println!(
                    "    {name:<24} {:>12}  {}",
                    human_bytes(blob.size),
                    blob.digest
                );
            }
            if let Some(log_blob) = m.log {
                let text =
                    String::from_utf8_lossy(&store.get_bytes(&log_blob.digest).into_diagnostic()?)
                        .into_owned();
                let lines: Vec<&str> = text.lines().collect();
                let from = if log {
                    0
                } else {
                    lines.len().saturating_sub(10)
                };
                println!(
                    "  log ({} lines{})",
                    lines.len(),
                    if log { "" } else { "; --log prints all" }
                );
                for l in &lines[from..] {
                    println!("    | {l}");
                }
            }
            if let Some(dir) = export {
                std::fs::create_dir_all(&dir).into_diagnostic()?;
                for (name, blob) in &result.outputs {
                    store
                        .get_to_file(&blob.digest, &dir.join(name))
                        .into_diagnostic()?;
                }
                println!("outputs copied to {}", dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ls { prefix } => {
            let store = open(&cli.store)?;
            for (name, key) in store.refs().into_diagnostic()? {
                let instance = name.split_once(':').map_or(name.as_str(), |(_, i)| i);
                if prefix
                    .as_deref()
                    .is_some_and(|p| !instance.starts_with(p) && !name.starts_with(p))
                {
                    continue;
                }
                let detail = match store.lookup(&key).into_diagnostic()? {
                    Some(r) => format!(
                        "{}  {:>9}  {:>10}",
                        format_unix_ms(r.meta.started_unix_ms),
                        human_secs(r.meta.duration_s),
                        human_bytes(r.outputs.values().map(|b| b.size).sum())
                    ),
                    None => "(result removed)".into(),
                };
                println!("{name:<60} {}  {detail}", &key.to_string()[..12]);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Kinds { name } => {
            let registry = Registry::standard(Path::new("."));
            match name {
                None => {
                    for k in registry.all() {
                        let first = k.doc().split(". ").next().unwrap_or("");
                        println!(
                            "{:<22} v{:<3} {}",
                            k.name(),
                            k.version(),
                            first.trim_end_matches('.')
                        );
                    }
                    println!("\n`prunus kinds NAME` shows a kind's parameters");
                }
                Some(name) => {
                    let k = registry.get(&name).ok_or_else(|| {
                        miette!(
                            help = prunus_engine::diagnostic::did_you_mean(&name, registry.names())
                                .unwrap_or_default(),
                            "unknown stage kind `{name}`"
                        )
                    })?;
                    println!(
                        "{} (version {}, {})\n",
                        k.name(),
                        k.version(),
                        if k.deterministic() {
                            "deterministic"
                        } else {
                            "nondeterministic"
                        }
                    );
                    println!("{}\n", k.doc());
                    let mut specs = k.params();
                    specs.sort_by_key(|s| s.key);
                    for s in specs {
                        let default = s
                            .default
                            .map_or("(required)".to_string(), |d| d.to_string());
                        println!("  {:<28} {:<14} {}", s.key, default, s.doc);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Store(cmd) => store_command(&cli.store, cmd),
        Command::Roms(cmd) => roms_command(cmd),
    }
}

fn store_command(root: &Path, cmd: StoreCommand) -> Result<ExitCode> {
    let store = open(root)?;
    match cmd {
        StoreCommand::Verify => {
            let r = store.verify().into_diagnostic()?;
            println!("{r}");
            Ok(if r.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        StoreCommand::Gc { keep_checkpoints } => {
            let roots: Vec<Digest> = store
                .refs()
                .into_diagnostic()?
                .into_iter()
                .map(|(_, k)| k)
                .collect();
            let r = store
                .gc_with(&GcOptions {
                    roots,
                    keep_checkpoints,
                    grace: std::time::Duration::from_secs(3600),
                })
                .into_diagnostic()?;
            println!("{r}");
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Du => {
            println!("{}", store.du().into_diagnostic()?);
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Ls => {
            let mut actions = store.actions().into_diagnostic()?;
            actions.sort_by_key(|(_, r)| r.meta.started_unix_ms);
            for (key, r) in actions {
                let kind = r
                    .key_info
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .unwrap_or("?")
                    .to_string();
                println!(
                    "{}  {:<18} {}  {:>9}  {}",
                    &key.to_string()[..16],
                    kind,
                    format_unix_ms(r.meta.started_unix_ms),
                    human_secs(r.meta.duration_s),
                    r.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Show { key } => {
            let (_, key) = find_result(&store, &key)?;
            let r = store
                .lookup(&key)
                .into_diagnostic()?
                .ok_or_else(|| miette!("no result {key}"))?;
            println!("{}", serde_json::to_string_pretty(&r).into_diagnostic()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open(root: &Path) -> Result<Store> {
    Store::open(root).into_diagnostic().wrap_err_with(|| {
        format!(
            "cannot open the store at {} (set --store or PRUNUS_STORE to another directory)",
            root.display()
        )
    })
}

/// An instance name (matched against recorded refs) or a key hex prefix.
fn find_result(store: &Store, what: &str) -> Result<(String, Digest)> {
    let refs = store.refs().into_diagnostic()?;
    let by_name: Vec<&(String, Digest)> = refs
        .iter()
        .filter(|(name, _)| name == what || name.split_once(':').is_some_and(|(_, i)| i == what))
        .collect();
    match by_name.as_slice() {
        [(name, key)] => return Ok((name.clone(), *key)),
        [] => {}
        many => {
            return Err(miette!(
                help = "give the pipeline too, as PIPELINE:INSTANCE",
                "`{what}` is recorded by several pipelines: {}",
                many.iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if what.len() >= 6 && what.chars().all(|c| c.is_ascii_hexdigit()) {
        let hits: Vec<Digest> = store
            .actions()
            .into_diagnostic()?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.to_string().starts_with(&what.to_ascii_lowercase()))
            .collect();
        match hits.as_slice() {
            [k] => return Ok((k.to_string(), *k)),
            [] => {}
            _ => {
                return Err(miette!(
                    "key prefix `{what}` is ambiguous; give more digits"
                ));
            }
        }
    }
    Err(miette!(
        help = "`prunus ls` lists recorded instances, `prunus store ls` every stored result",
        "nothing recorded as `{what}` in this store"
    ))
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1024.0 && u < UNITS.len() - 1 {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", UNITS[u])
    }
}

/// UTC timestamp `YYYY-MM-DD HH:MM` without a date-time dependency.
fn format_unix_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}")
}

#[cfg(not(feature = "atari"))]
fn roms_command(_cmd: RomsCommand) -> Result<ExitCode> {
    Err(miette!(
        help = "rebuild with `cargo install --path engine --features atari` (ALE is C++: it \
                needs cmake and a C++ compiler)",
        "this prunus was built without Atari support"
    ))
}

#[cfg(feature = "atari")]
fn roms_command(cmd: RomsCommand) -> Result<ExitCode> {
    use prunus_env::atari::roms::{self, Source};
    match cmd {
        RomsCommand::Install {
            wheel,
            from,
            ale_py,
            index,
            dir,
        } => {
            let dir = roms::dir(dir.as_deref());
            let source = match (wheel, from) {
                (Some(w), _) => Source::Wheel(w),
                (None, Some(d)) => Source::Dir(d),
                (None, None) => {
                    eprintln!("downloading the ale-py {ale_py} wheel from {index} ...");
                    Source::PyPi {
                        index,
                        version: ale_py,
                    }
                }
            };
            let report = roms::install(&source, &dir).map_err(|e| miette!("{e}"))?;
            eprintln!(
                "installed {} verified ROMs into {}",
                report.games.len(),
                dir.display()
            );
            if !report.missing.is_empty() {
                eprintln!("not in the source: {}", report.missing.join(", "));
            }
            if dir != roms::dir(None) {
                eprintln!("point prunus at them with PRUNUS_ROMS={}", dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        RomsCommand::List { dir } => {
            let dir = roms::dir(dir.as_deref());
            println!("ROM directory: {}", dir.display());
            let mut ok = 0;
            for game in roms::games() {
                let status = match roms::locate(game, &dir) {
                    Ok(_) => {
                        ok += 1;
                        "ok".to_string()
                    }
                    Err(prunus_env::EnvError::MissingRom { .. }) => "missing".to_string(),
                    Err(e) => format!("BAD: {e}"),
                };
                println!("{game:<20} {status}");
            }
            println!("{ok} of {} games ready", roms::games().count());
            Ok(ExitCode::SUCCESS)
        }
    }
}
