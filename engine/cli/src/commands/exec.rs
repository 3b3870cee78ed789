//! `prunus exec`: runs one saved job (a stage instance with its inputs by digest) against its
//! store and publishes the result, with nothing but the store: what a Slurm job or a remote
//! worker runs. The job was written by the coordinator (`prunus run --executor ...`) or by
//! `prunus exec --save`. With `--remote`, on a machine that does not see that store, the job
//! and its inputs come from the remote and the result goes back to it; so does the checkpoint
//! of a run that is interrupted, so that the job resumes on whichever node runs it next.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use miette::{IntoDiagnostic, Result, miette};
use prunus_engine::job::{self, Job, Outcome};
use prunus_engine::progress::Ui;
use prunus_engine::run::human_secs;
use prunus_store::{Digest, Remote, Signed, Store};

use prunus::registry;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
prunus exec 3f2a...                       a job saved in the store (its digest)\n  \
prunus exec --file job.json               a job file\n  \
prunus exec --show 3f2a...                print it instead\n  \
prunus exec --remote s3://lab/cache 3f2a...   on a node without the store: via the remote\n  \
prunus exec --save pipelines/quickstart.kdl train/breakout/width1/sparsity0.0/seed0")]
pub struct Args {
    /// The job: its digest in the store (as `--save` prints it).
    #[arg(required_unless_present_any = ["file", "save"])]
    job: Option<String>,
    /// Read the job from this JSON file instead.
    #[arg(long, conflicts_with = "job")]
    file: Option<PathBuf>,
    /// Do not run: plan PIPELINE, save the job of INSTANCE (whose inputs must be done) into
    /// the store, and print its digest.
    #[arg(long, num_args = 2, value_names = ["PIPELINE", "INSTANCE"], conflicts_with_all = ["job", "file"])]
    save: Option<Vec<String>>,
    /// Print the job (JSON) instead of running it.
    #[arg(long)]
    show: bool,
    /// Write how it ended to this file (`CODE` and a message, one line each): what a Slurm
    /// coordinator reads when the cluster keeps no accounting.
    #[arg(long, value_name = "FILE")]
    exit_file: Option<PathBuf>,
    /// On a machine that does not see the store that saved the job: fetch the job and its
    /// inputs from this remote (each blob verified), run it in this store, and push the result
    /// back, signed with the key in `PRUNUS_SIGNING_KEY` (what a Slurm coordinator hands its
    /// jobs) or else with this store's.
    #[arg(long, value_name = "REMOTE", conflicts_with = "save")]
    remote: Option<String>,
    #[command(flatten)]
    access: super::remote::Access,
}

pub fn run(store_root: &Path, args: Args) -> Result<ExitCode> {
    let store = super::open(store_root)?;
    if let Some(save) = args.save {
        let digest = save_job(&store, Path::new(&save[0]), &save[1])?;
        println!("{digest}");
        return Ok(ExitCode::SUCCESS);
    }
    let through = match &args.remote {
        Some(spec) => Some(super::remote::connect_as_job(&store, spec, &args.access)?),
        None => None,
    };
    let job = match (&args.file, &args.job) {
        (Some(file), _) => Job::from_json(&std::fs::read(file).into_diagnostic()?),
        (None, Some(digest)) => {
            let digest: Digest = digest
                .parse()
                .map_err(|e| miette!(help = "give the job's 64-digit digest, or --file", "{e}"))?;
            if let Some((remote, _)) = &through {
                store
                    .fetch_digest(remote.as_ref(), &digest)
                    .map_err(|e| miette!("fetching job {digest} from {}: {e}", remote.name()))?;
            }
            Job::load(&store, &digest)
        }
        (None, None) => unreachable!("clap requires one"),
    }
    .map_err(|e| miette!("{e}"))?;
    if args.show {
        println!("{}", serde_json::to_string_pretty(&job).into_diagnostic()?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some((remote, trust)) = &through {
        fetch_inputs(&store, remote.as_ref(), &job)?;
        resume_from(&store, remote.as_ref(), trust, &job);
    }
    let (mut code, mut message) = execute(&store, &job)?;
    if let Some((remote, trust)) = &through {
        if code == 130 {
            save_checkpoint(&store, remote.as_ref(), trust, &job);
        } else if code == 0
            && let Err(e) = push_result(&store, remote.as_ref(), trust, &job)
        {
            (code, message) = (1, format!("✗ {e}"));
            eprintln!("{message}");
        }
    }
    if let Some(file) = &args.exit_file {
        write_exit(file, code, &message)?;
    }
    Ok(ExitCode::from(code))
}

/// Fetches the blobs of the job's inputs that this store lacks, each verified.
fn fetch_inputs(store: &Store, remote: &dyn Remote, job: &Job) -> Result<()> {
    for input in &job.inputs {
        for (name, blob) in &input.outputs {
            store.fetch_blob(remote, blob).map_err(|e| {
                miette!(
                    "{}: fetching input {}/{name} from {}: {e}",
                    job.instance,
                    input.instance,
                    remote.name()
                )
            })?;
        }
    }
    Ok(())
}

/// Takes the checkpoint an interrupted run of this job left on the remote, on whatever node
/// it ran, unless this store has one: a job requeued onto another node resumes instead of
/// starting over. A checkpoint that cannot be had or is not trusted is skipped: the stage
/// then starts from the beginning, which is slower but gives the same result.
fn resume_from(store: &Store, remote: &dyn Remote, trust: &Signed, job: &Job) {
    match store.fetch_checkpoint(remote, &job.key, trust) {
        Ok(0) => {}
        Ok(n) => eprintln!(
            "{}: took its checkpoint from {} ({n} files)",
            job.instance,
            remote.name()
        ),
        Err(e) => eprintln!(
            "warning: {}: {e}; it starts from the beginning",
            job.instance
        ),
    }
}

/// Puts the checkpoint an interrupted stage just wrote on the remote, signed, for the node
/// the job is requeued on (Slurm's grace after SIGTERM has to cover this).
fn save_checkpoint(store: &Store, remote: &dyn Remote, trust: &Signed, job: &Job) {
    match store.push_checkpoint(remote, &job.key, trust) {
        Ok(0) => {}
        Ok(n) => eprintln!(
            "{}: its checkpoint is on {} ({n} files): it resumes there on any node",
            job.instance,
            remote.name()
        ),
        Err(e) => eprintln!(
            "warning: {}: its checkpoint did not reach {} ({e}); it resumes only on this node",
            job.instance,
            remote.name()
        ),
    }
}

/// Pushes the job's published result (blobs, then the signed entry) to the remote.
fn push_result(
    store: &Store,
    remote: &dyn Remote,
    trust: &Signed,
    job: &Job,
) -> Result<(), String> {
    store
        .push_action(remote, &job.key, trust)
        .map(drop)
        .map_err(|e| {
            format!(
                "{} ran, but its result did not reach {}: {e}",
                job.instance,
                remote.name()
            )
        })
}

/// Writes the exit file atomically (a coordinator may read it at any moment).
fn write_exit(file: &Path, code: u8, message: &str) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).into_diagnostic()?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).into_diagnostic()?;
    let one_line = message.replace('\n', " ");
    std::io::Write::write_all(&mut tmp, format!("{code}\n{one_line}\n").as_bytes())
        .into_diagnostic()?;
    tmp.persist(file).into_diagnostic()?;
    Ok(())
}

/// Runs `job` here, printing its log lines; exit 0 when published (or already published),
/// 1 on failure, 130 when interrupted (it resumes from its checkpoint when rerun); with a
/// one-line account of how it ended.
fn execute(store: &Store, job: &Job) -> Result<(u8, String)> {
    let registry = registry::standard(&job.base_dir);
    let kind = registry.get(&job.kind).ok_or_else(|| {
        miette!(
            "{}: this prunus has no stage kind `{}` (built without its feature?)",
            job.instance,
            job.kind
        )
    })?;
    job.check(kind.as_ref()).map_err(|e| miette!("{e}"))?;
    let ui = Ui::new(1, true, false);
    let reporter = Arc::new(ui.stage(&job.instance));
    let t0 = std::time::Instant::now();
    let outcome = job::execute(
        job,
        kind.as_ref(),
        store,
        &reporter,
        // A batch system hands the job its GPUs as 0..n (CUDA_VISIBLE_DEVICES).
        &(0..job.resources.gpus as usize).collect::<Vec<_>>(),
        super::run::cancel_on_ctrl_c(),
    );
    reporter.done();
    ui.finish();
    let secs = human_secs(t0.elapsed().as_secs_f64());
    let (code, message) = match outcome {
        Outcome::Published(_) => (0, format!("✓ {} ({secs}): {}", job.instance, job.key)),
        Outcome::Cached(_) => (
            0,
            format!("✓ {} (published by another prunus run)", job.instance),
        ),
        Outcome::Failed(error, _) => (
            1,
            format!("✗ {} failed after {secs}: {error}", job.instance),
        ),
        Outcome::Cancelled => (
            130,
            format!(
                "… {} interrupted; it resumes from its checkpoint on the next run",
                job.instance
            ),
        ),
    };
    eprintln!("{message}");
    Ok((code, message))
}

/// Plans `pipeline` and saves the job of `instance` into the store.
fn save_job(store: &Store, pipeline: &Path, instance: &str) -> Result<Digest> {
    let graph = registry::load(pipeline)?;
    if let Some(note) = prunus_engine::identity::claim(&graph, store, true)? {
        eprintln!("{note}");
    }
    let job = Job::plan(&graph, store, instance)?;
    job.save(store).map_err(|e| miette!("{e}"))
}
