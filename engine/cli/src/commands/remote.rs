//! `prunus store push|pull|key`: share results through a remote (a shared directory or an
//! S3-compatible bucket). Results travel as entries signed by the store that pushed them; a
//! pull believes an entry only if a trusted key signed it (this store's own, the config's
//! `trust` keys and `--trust`).
//!
//! `run` and `plan` use a remote through [`for_run`]; the engine's `remote` module does the
//! rest.

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use miette::{IntoDiagnostic, Result, miette};
use prunus_engine::plan::{self, Status};
use prunus_store::{
    Digest, DirRemote, Remote, S3Config, S3Remote, Signed, SigningKey, Store, SyncProgress,
    SyncReport,
};

use crate::config;
use crate::format::human_bytes;

#[derive(clap::Args)]
pub struct Args {
    /// `[REMOTE] [PIPELINE [INSTANCE...]]`. REMOTE: a remote named in the config file, or a
    /// URL (`s3://bucket/prefix`, `file:///path`; a path starting with `/` or `./` is a
    /// directory remote too); default: the config's default remote. PIPELINE (a `.kdl` file):
    /// only the results of its instances (or of these instances, names or prefixes as for
    /// `run`, and their upstream); default: every result.
    #[arg(value_name = "ARGS")]
    args: Vec<String>,
    #[command(flatten)]
    access: Access,
    /// Objects moved at once.
    #[arg(long, short, default_value_t = 8)]
    jobs: usize,
}

/// How to reach a remote and whom to believe there (shared by `store push|pull`, `run`,
/// `plan`).
#[derive(clap::Args, Clone, Default)]
pub struct Access {
    /// The S3-compatible server (e.g. `http://127.0.0.1:9000` for MinIO); default: the
    /// config's, else `AWS_ENDPOINT_URL`, else AWS.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Also believe results signed by this key (`NAME:BASE64`, as `prunus store key` prints
    /// it); repeatable. Keys in the config's `trust` lines are believed too.
    #[arg(long = "trust", value_name = "KEY")]
    pub trusted: Vec<String>,
}

/// What a push or pull is about: the remote and, if a pipeline is named, its instances.
struct Targets {
    remote: String,
    pipeline: Option<(std::path::PathBuf, Vec<String>)>,
}

impl Targets {
    fn of(args: &[String]) -> Result<Targets> {
        let is_pipeline = |a: &String| a.ends_with(".kdl");
        let (remote, rest) = match args.split_first() {
            Some((first, rest)) if !is_pipeline(first) => (first.clone(), rest),
            _ => (config::load()?.default_remote()?, args),
        };
        let pipeline = match rest.split_first() {
            None => None,
            Some((file, instances)) if is_pipeline(file) => Some((file.into(), instances.to_vec())),
            Some((other, _)) => {
                return Err(miette!(
                    help = "write `prunus store push [REMOTE] [PIPELINE.kdl [INSTANCE...]]`",
                    "`{other}` is not a pipeline file (.kdl)"
                ));
            }
        };
        Ok(Targets { remote, pipeline })
    }

    /// The refs and keys of the pipeline's instances (those of `instances` and their
    /// upstream) that have results here or, given a remote, there; `None` without a pipeline
    /// (everything).
    fn keys(
        &self,
        store: &Store,
        remote: Option<&prunus_engine::RemoteCache>,
    ) -> Result<Option<Vec<(String, Digest)>>> {
        let Some((file, instances)) = &self.pipeline else {
            return Ok(None);
        };
        let graph = prunus::registry::load(file)?;
        let entries = plan::plan_with(&graph, store, remote)?;
        let keys = prunus_engine::run::needed(&graph, instances)?
            .into_iter()
            .filter(|&i| matches!(entries[i].status, Status::Cached | Status::Remote))
            .filter_map(|i| Some((plan::ref_name(&graph, i), entries[i].key?)))
            .collect();
        Ok(Some(keys))
    }
}

/// Uploads every result the remote lacks (of the pipeline's instances, if one is named).
pub fn push(store: &Store, args: Args) -> Result<ExitCode> {
    let targets = Targets::of(&args.args)?;
    let (remote, trust) = connect(store, &targets.remote, &args.access)?;
    let only: Option<HashSet<Digest>> = targets
        .keys(store, None)?
        .map(|refs| refs.into_iter().map(|(_, k)| k).collect());
    let bar = bar("pushing");
    let report = store
        .push(remote.as_ref(), &trust, only.as_ref(), args.jobs, &|p| {
            show(&bar, p)
        })
        .map_err(|e| miette!(help = reach_help(&targets.remote), "{e}"))?;
    bar.finish_and_clear();
    summarise("pushed to", remote.name(), &report)
}

/// Downloads every result of the remote this store lacks and trusts (of the pipeline's
/// instances, if one is named, whose refs it then records as a run would).
pub fn pull(store: &Store, args: Args) -> Result<ExitCode> {
    let targets = Targets::of(&args.args)?;
    let (remote, trust) = connect(store, &targets.remote, &args.access)?;
    let trust = Arc::new(trust);
    let refs = match &targets.pipeline {
        None => None,
        Some(_) => {
            let cache = prunus_engine::RemoteCache::connect(remote.clone(), trust.clone(), true)
                .map_err(|e| miette!(help = reach_help(&targets.remote), "{e}"))?;
            targets.keys(store, Some(&cache))?
        }
    };
    let only: Option<HashSet<Digest>> = refs.as_ref().map(|r| r.iter().map(|(_, k)| *k).collect());
    let bar = bar("pulling");
    let report = store
        .pull(
            remote.as_ref(),
            trust.as_ref(),
            only.as_ref(),
            args.jobs,
            &|p| show(&bar, p),
        )
        .map_err(|e| miette!(help = reach_help(&targets.remote), "{e}"))?;
    bar.finish_and_clear();
    for (name, key) in refs.iter().flatten() {
        if store.lookup(key).into_diagnostic()?.is_some() {
            store.set_ref(name, key).into_diagnostic()?;
        }
    }
    summarise("pulled from", remote.name(), &report)
}

/// Prints this store's public key.
pub fn key(store: &Store) -> Result<ExitCode> {
    let key = store.signing_key(&signer_name()).into_diagnostic()?;
    println!("{}", key.public());
    eprintln!(
        "results this store pushes are signed with it; a colleague who trusts them adds\n  \
         trust \"{}\"\nto their {}",
        key.public(),
        config::path().map_or("config file".into(), |p| p.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}

/// The remote `spec` names (a configured name or a URL), and the trust of this store's keys
/// (its own and, once made, its jobs key) plus the configured and given ones.
pub fn connect(store: &Store, spec: &str, access: &Access) -> Result<(Arc<dyn Remote>, Signed)> {
    let remote = open(&locate(spec, access)?)?;
    let key = store.signing_key(&signer_name()).into_diagnostic()?;
    let trust = Signed::new(key, &trusted(store, access)?).map_err(|e| miette!("{e}"))?;
    Ok((remote, trust))
}

/// [`connect`] for a batch job on a node: it signs with the key its coordinator handed it in
/// `PRUNUS_SIGNING_KEY` (`NAME:SECRET`, the coordinator's jobs key), else with this store's.
pub fn connect_as_job(
    store: &Store,
    spec: &str,
    access: &Access,
) -> Result<(Arc<dyn Remote>, Signed)> {
    let Ok(handed) = std::env::var("PRUNUS_SIGNING_KEY") else {
        return connect(store, spec, access);
    };
    let (name, secret) = handed
        .split_once(':')
        .ok_or_else(|| miette!("PRUNUS_SIGNING_KEY is not NAME:SECRET"))?;
    let key = SigningKey::from_secret(name, secret).map_err(|e| miette!("{e}"))?;
    let trust = Signed::new(key, &trusted(store, access)?).map_err(|e| miette!("{e}"))?;
    Ok((open(&locate(spec, access)?)?, trust))
}

/// Where a remote is: what a batch job on another machine is told to reach.
pub struct Located {
    pub url: String,
    pub endpoint: Option<String>,
    region: Option<String>,
}

/// The URL (and S3 endpoint and region) of `spec`: a remote of the config, or a URL.
pub fn locate(spec: &str, access: &Access) -> Result<Located> {
    let config = config::load()?;
    let named = config.remotes.get(spec);
    Ok(Located {
        url: named.map_or(spec, |r| r.url.as_str()).to_string(),
        endpoint: access
            .endpoint
            .clone()
            .or_else(|| named.and_then(|r| r.endpoint.clone())),
        region: named.and_then(|r| r.region.clone()),
    })
}

fn open(at: &Located) -> Result<Arc<dyn Remote>> {
    let url = at.url.as_str();
    Ok(if url.starts_with("s3://") {
        let s3 = S3Config {
            url: url.to_string(),
            endpoint: at.endpoint.clone(),
            region: at.region.clone(),
            retries: None,
        };
        Arc::new(S3Remote::open(&s3).into_diagnostic()?)
    } else if let Some(path) = url.strip_prefix("file://").or(is_path(url).then_some(url)) {
        Arc::new(DirRemote::open(Path::new(path)).into_diagnostic()?)
    } else {
        return Err(miette!(
            help = format!(
                "use s3://bucket/prefix, file:///path, or define it in {} with \
                 remote \"{url}\" url=\"...\"",
                config::path().map_or("the config file".into(), |p| p.display().to_string())
            ),
            "`{url}` is neither a configured remote nor a remote URL",
        ));
    })
}

/// The keys believed besides the store's own: the config's `trust` lines, `--trust`, and the
/// store's jobs key once a Slurm run through a remote has made it.
fn trusted(store: &Store, access: &Access) -> Result<Vec<String>> {
    let mut trusted: Vec<String> = config::load()?
        .trusted
        .iter()
        .chain(&access.trusted)
        .cloned()
        .collect();
    if store.has_jobs_key() {
        trusted.push(jobs_key(store)?.public().to_string());
    }
    Ok(trusted)
}

/// The key this store's batch jobs sign with (made on first use), named `user@host-jobs`.
pub fn jobs_key(store: &Store) -> Result<SigningKey> {
    store
        .jobs_key(&format!("{}-jobs", signer_name()))
        .into_diagnostic()
}

/// The remote a `run` or `plan` uses: `--remote`, else the pipeline's `remote` line, unless
/// `--no-remote`; connected (its entries listed), so a dead remote is an error now.
pub fn for_run(
    store: &Store,
    graph: &prunus_engine::Graph,
    flags: &RunRemote,
) -> Result<Option<Arc<prunus_engine::RemoteCache>>> {
    if flags.no_remote {
        return Ok(None);
    }
    let (spec, read_only) = match (&flags.remote, &graph.remote) {
        (Some(r), _) => (r.clone(), flags.remote_read_only),
        (None, Some(decl)) => (
            decl.remote.clone(),
            decl.read_only || flags.remote_read_only,
        ),
        (None, None) if flags.remote_read_only => {
            return Err(miette!(
                "--remote-read-only needs a remote: add --remote NAME"
            ));
        }
        (None, None) => return Ok(None),
    };
    let (remote, trust) = connect(store, &spec, &flags.access)?;
    let cache = prunus_engine::RemoteCache::connect(remote, Arc::new(trust), read_only)
        .map_err(|e| miette!(help = reach_help(&spec), "{e}"))?;
    Ok(Some(Arc::new(cache)))
}

/// What Slurm jobs on nodes that do not see the store (`node-store`) go through: the run's
/// remote, which they must be able to write to, and the store's jobs key to sign with.
pub fn for_nodes(
    store: &Store,
    graph: &prunus_engine::Graph,
    flags: &RunRemote,
    cache: Option<&Arc<prunus_engine::RemoteCache>>,
) -> Result<prunus_slurm::Through> {
    let help = "give the run a remote every node can reach (--remote s3://bucket/prefix, or a \
                `remote` line), or drop `node-store` if the nodes see this store";
    let cache = cache.ok_or_else(|| {
        miette!(
            help = help,
            "`node-store`: jobs on nodes that do not see the store move their inputs and results \
             through a remote, and this run has none"
        )
    })?;
    if cache.read_only() {
        return Err(miette!(
            help = help,
            "`node-store`: the jobs push their results to the remote, which this run may only read"
        ));
    }
    let spec = flags
        .remote
        .clone()
        .or_else(|| graph.remote.as_ref().map(|d| d.remote.clone()))
        .expect("a run with a remote names it");
    let at = locate(&spec, &flags.access)?;
    let key = jobs_key(store)?;
    let (name, _) = key.public().rsplit_once(':').expect("NAME:KEY");
    Ok(prunus_slurm::Through {
        remote: Arc::clone(cache.remote()),
        trust: Arc::clone(cache.trust()),
        node: prunus_slurm::sbatch::NodeRemote {
            url: at.url,
            endpoint: at.endpoint,
        },
        signing_key: format!("{name}:{}", key.secret()),
    })
}

/// What to check when a remote cannot be reached.
fn reach_help(spec: &str) -> String {
    format!(
        "check that `{spec}` is up and reachable and that your credentials are right (S3: \
         AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and --endpoint for a \
         non-AWS server; an error about 169.254.169.254 means no credentials were found, so \
         AWS's instance metadata was asked); --no-remote runs without it"
    )
}

/// The remote flags of `run` and `plan`.
#[derive(clap::Args, Clone, Default)]
pub struct RunRemote {
    /// Share results through this remote (a name from the config file or a URL): results it
    /// has are fetched instead of run, and results made here are pushed to it. Overrides the
    /// pipeline's `remote` line.
    #[arg(long)]
    pub remote: Option<String>,
    /// Only fetch from the remote; never write to it.
    #[arg(long)]
    pub remote_read_only: bool,
    /// Ignore the pipeline's `remote` line.
    #[arg(long, conflicts_with_all = ["remote", "remote_read_only"])]
    pub no_remote: bool,
    #[command(flatten)]
    pub access: Access,
}

/// A directory given as a path (`/mnt/cache`, `./remote`), not a bare word that may be a
/// mistyped remote name.
fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with("./") || s.starts_with("../") || s.starts_with('~')
}

/// `user@host`, the name this store's key signs with.
fn signer_name() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "prunus".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}").replace([':', ' '], "-")
}

fn bar(what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} objects {{msg}} ({{elapsed}}, ETA {{eta}})"
        ))
        .expect("a valid template"),
    );
    bar
}

fn show(bar: &ProgressBar, p: SyncProgress) {
    bar.set_length(p.total_objects);
    bar.set_position(p.objects);
    let secs = bar.elapsed().as_secs_f64().max(1e-3);
    let rate = human_bytes((p.bytes as f64 / secs) as u64);
    bar.set_message(match p.total_bytes {
        0 => format!("{}, {rate}/s", human_bytes(p.bytes)),
        total => format!(
            "{} of {}, {rate}/s",
            human_bytes(p.bytes),
            human_bytes(total)
        ),
    });
}

/// One line of what moved, and each result that did not (exit 1 if any).
fn summarise(verb: &str, remote: &str, r: &SyncReport) -> Result<ExitCode> {
    println!(
        "{verb} {remote}: {} results, {} blobs, {}",
        r.actions,
        r.blobs,
        human_bytes(r.bytes)
    );
    for (key, e) in &r.failed {
        eprintln!("  ✗ {key}: {e}");
    }
    if r.failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} results did not move; the others did (run again to retry)",
            r.failed.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
