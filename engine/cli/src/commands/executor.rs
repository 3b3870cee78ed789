//! Which executor a `run` or `plan` uses, and its settings: `--executor`, else the pipeline's
//! `executor` block, else the config's `executor ... default=#true`, else this machine. A
//! Slurm run's settings come from the config's `executor "slurm"` block, then the pipeline's,
//! then the command line (`--partition`, `--account`, ...), each overriding the one before.

use miette::{Result, miette};
use prunus_engine::Graph;
use prunus_engine::diagnostic::{Problem, Problems};
use prunus_slurm::SlurmOptions;

use crate::config;

#[derive(clap::Args, Clone, Default)]
pub struct ExecutorArgs {
    /// Where instances run: `local` (this machine) or `slurm` (one Slurm job per instance,
    /// against this store, which every node must see, or through a remote: --node-store). Default: the pipeline's `executor`
    /// block, else the config's default, else local.
    #[arg(long, value_parser = ["local", "slurm"])]
    pub executor: Option<String>,
    /// Slurm partition (`sinfo -s` lists them).
    #[arg(long, help_heading = "Slurm")]
    pub partition: Option<String>,
    /// Slurm account to charge.
    #[arg(long, help_heading = "Slurm")]
    pub account: Option<String>,
    /// Slurm QoS.
    #[arg(long, help_heading = "Slurm")]
    pub qos: Option<String>,
    /// Time limit of a Slurm job whose stage sets no `resources time=` (e.g. 24h, 1-00:00:00).
    #[arg(long, help_heading = "Slurm")]
    pub time: Option<String>,
    /// An extra sbatch flag, passed as it is (repeat it): --sbatch-arg=--constraint=a100.
    #[arg(
        long = "sbatch-arg",
        value_name = "FLAG",
        allow_hyphen_values = true,
        help_heading = "Slurm"
    )]
    pub sbatch: Vec<String>,
    /// For nodes that do not see this store: each job keeps a store of its own at this path
    /// on its node (e.g. '$TMPDIR/prunus', expanded there) and moves its inputs and result
    /// through the run's --remote.
    #[arg(long, value_name = "PATH", help_heading = "Slurm")]
    pub node_store: Option<String>,
}

/// The executor a run uses.
pub enum Choice {
    Local,
    Slurm(SlurmOptions),
}

pub fn choose(graph: &Graph, args: &ExecutorArgs) -> Result<Choice> {
    let config = config::load()?;
    let from_config = config
        .executors
        .iter()
        .find(|(_, e)| e.default)
        .map(|(n, _)| n.clone());
    let name = args
        .executor
        .clone()
        .or_else(|| graph.executor.as_ref().map(|e| e.name.clone()))
        .or(from_config)
        .unwrap_or_else(|| "local".into());
    match name.as_str() {
        "local" => Ok(Choice::Local),
        "slurm" => Ok(Choice::Slurm(slurm_options(graph, &config, args)?)),
        other => Err(miette!(
            help = "executor \"local\" or executor \"slurm\"",
            "unknown executor `{other}`"
        )),
    }
}

fn slurm_options(
    graph: &Graph,
    config: &config::Config,
    args: &ExecutorArgs,
) -> Result<SlurmOptions> {
    let mut opts = SlurmOptions::default();
    if let Some(c) = config.executors.get("slurm") {
        for (key, values, line) in &c.settings {
            opts.set(key, values).map_err(|e| {
                let file = config::path().map_or("the config".into(), |p| p.display().to_string());
                miette!("{file}, line {line}: {e}")
            })?;
        }
    }
    if let Some(decl) = graph.executor.as_ref().filter(|d| d.name == "slurm") {
        let mut problems = Problems::default();
        for s in &decl.settings {
            if let Err(e) = opts.set(&s.key, &s.values) {
                problems.push(Problem::new(s.loc, e, "not a Slurm setting it can use").help(
                    "executor \"slurm\" { partition \"gpu\"; account \"lab\"; time \"24h\"; sbatch \"--exclusive\" }",
                ));
            }
        }
        problems.into_result(&graph.sources)?;
    }
    let cli = [
        ("partition", &args.partition),
        ("account", &args.account),
        ("qos", &args.qos),
        ("time", &args.time),
        ("node-store", &args.node_store),
    ];
    for (key, v) in cli {
        if let Some(v) = v {
            opts.set(key, std::slice::from_ref(v))
                .map_err(|e| miette!("--{key}: {e}"))?;
        }
    }
    opts.sbatch_args.extend(args.sbatch.iter().cloned());
    Ok(opts)
}
