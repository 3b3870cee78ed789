//! One stage instance as a self-contained, serialisable [`Job`]: its kind, resolved
//! parameters, inputs by digest and the store it belongs to. Everything an executor needs to
//! run it is here, so a job can run in this process (the local executor), or be written to the
//! store and run by `prunus exec` on another machine (a Slurm job) against the same store.
//!
//! [`execute`] runs a job and publishes its result: inputs are materialised from the store,
//! the kind runs in a fresh work directory, and the result is published only after every
//! declared output is stored, so a failed or interrupted job publishes nothing.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prunus_stage::{Context, Input, Params, Reporter, Resources, StageError, StageKind, Value};
use prunus_store::{ActionResult, BlobRef, Digest, RunMeta, StageLock, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::key::KeyInfo;
use crate::lower::Graph;
use crate::plan;
use crate::progress::StageReporter;

/// The job description's format; bumped when its fields change meaning.
pub const JOB_FORMAT: u32 = 1;

/// Everything needed to run one stage instance, from the store alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub format: u32,
    /// The instance name, e.g. `train/breakout/width1/sparsity0.95/seed0`.
    pub instance: String,
    /// Its stage's name in the pipeline.
    pub stage: String,
    /// The stage kind and the version the key was computed with.
    pub kind: String,
    pub version: u32,
    pub key: Digest,
    /// What went into the key; `key_info.key() == key` is checked before running.
    pub key_info: KeyInfo,
    pub axes: BTreeMap<String, Value>,
    /// Fully resolved parameters (defaults filled in).
    pub params: Params,
    pub inputs: Vec<JobInput>,
    pub resources: Resources,
    /// The ref recorded after publishing (`pipeline:instance`).
    pub ref_name: String,
    /// The pipeline's directory: `command` stages resolve their paths against it.
    pub base_dir: PathBuf,
    /// The store the inputs come from and the result goes to.
    pub store: PathBuf,
}

/// One upstream instance's outputs, by digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInput {
    pub stage: String,
    pub instance: String,
    pub axes: BTreeMap<String, Value>,
    pub outputs: BTreeMap<String, BlobRef>,
}

impl Job {
    /// The job of instance `i`, whose key is `key` (from `info`) and whose inputs have these
    /// results (in the order of the instance's inputs).
    pub fn new(
        graph: &Graph,
        store: &Store,
        i: usize,
        info: KeyInfo,
        inputs: &[(usize, ActionResult)],
    ) -> Job {
        let inst = &graph.instances[i];
        let kind = &graph.stage_of(i).kind;
        Job {
            format: JOB_FORMAT,
            instance: inst.name.clone(),
            stage: graph.stage_of(i).name.clone(),
            kind: kind.name().to_string(),
            version: kind.version(),
            key: info.key(),
            key_info: info,
            axes: inst.axes.clone(),
            params: inst.params.clone(),
            inputs: inputs
                .iter()
                .map(|(j, result)| JobInput {
                    stage: graph.stage_of(*j).name.clone(),
                    instance: graph.instances[*j].name.clone(),
                    axes: graph.instances[*j].axes.clone(),
                    outputs: result.outputs.clone(),
                })
                .collect(),
            resources: inst.resources,
            ref_name: plan::ref_name(graph, i),
            base_dir: graph.base_dir.clone(),
            store: std::path::absolute(store.root()).unwrap_or_else(|_| store.root().into()),
        }
    }

    /// The job of the instance named `name` in `graph`, planned against `store`: its inputs
    /// must have results there (a cluster coordinator submits a job once its inputs are done).
    pub fn plan(graph: &Graph, store: &Store, name: &str) -> Result<Job, Error> {
        let i = graph
            .find(name)
            .ok_or_else(|| Error::NoSuchInstance(name.to_string()))?;
        let entries = plan::plan(graph, store)?;
        let not_ready = |why: String| Error::NotReady(name.to_string(), why);
        let info = match (&entries[i].info, &entries[i].status) {
            (Some(info), _) => info.clone(),
            (None, status) => return Err(not_ready(status.reason())),
        };
        let mut inputs = Vec::new();
        for &j in &graph.instances[i].inputs {
            let result = entries[j].result.clone().ok_or_else(|| {
                not_ready(format!(
                    "its input {} has no result yet",
                    graph.instances[j].name
                ))
            })?;
            inputs.push((j, result));
        }
        Ok(Job::new(graph, store, i, info, &inputs))
    }

    /// Writes the job into its store (as a blob: content-addressed, so the same job is stored
    /// once) and returns its digest, which `prunus exec` takes.
    pub fn save(&self, store: &Store) -> Result<Digest, String> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        Ok(store.put_bytes(&bytes).map_err(|e| e.to_string())?.digest)
    }

    /// Reads a job saved with [`Job::save`].
    pub fn load(store: &Store, digest: &Digest) -> Result<Job, String> {
        let bytes = store.get_bytes(digest).map_err(|e| e.to_string())?;
        Job::from_json(&bytes)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Job, String> {
        let job: Job =
            serde_json::from_slice(bytes).map_err(|e| format!("not a prunus job: {e}"))?;
        if job.format != JOB_FORMAT {
            return Err(format!(
                "job format {} (this prunus reads format {JOB_FORMAT}); run it with the prunus that planned it",
                job.format
            ));
        }
        Ok(job)
    }

    /// Checks that `kind` is the kind and version this job was planned with, and that the key
    /// is the one its components give (a job edited by hand would publish under a wrong key).
    pub fn check(&self, kind: &dyn StageKind) -> Result<(), String> {
        if kind.name() != self.kind || kind.version() != self.version {
            return Err(format!(
                "{} was planned with {} v{}, but this prunus has {} v{}; plan and run with the same prunus",
                self.instance,
                self.kind,
                self.version,
                kind.name(),
                kind.version()
            ));
        }
        if self.key_info.key() != self.key {
            return Err(format!(
                "{}: the job's key {} does not match its key components ({}); the job file was altered",
                self.instance,
                self.key,
                self.key_info.key()
            ));
        }
        Ok(())
    }
}

/// How running a job ended.
pub enum Outcome {
    Published(ActionResult),
    /// Another process published it while we waited for its lock.
    Cached(ActionResult),
    Failed(String, Vec<String>),
    Cancelled,
}

/// Runs `job` with `kind` (already [`Job::check`]ed) and publishes its result. One process
/// runs a key at a time: a second one waits for the first, then finds its result. `gpus` are
/// the ordinals of the GPUs the executor gave it (empty when it needs none).
pub fn execute(
    job: &Job,
    kind: &dyn StageKind,
    store: &Store,
    reporter: &Arc<StageReporter>,
    gpus: &[usize],
    cancel: Arc<AtomicBool>,
) -> Outcome {
    let fail = |e: String| Outcome::Failed(e, reporter.tail(20));
    let lock = match lock_stage(store, job, reporter, &cancel) {
        Ok(Some(lock)) => lock,
        Ok(None) => return Outcome::Cancelled,
        Err(e) => return fail(e.to_string()),
    };
    // Another process may have published it since we planned, with or without a wait.
    if let Ok(Some(result)) = store.lookup(&job.key) {
        return Outcome::Cached(result);
    }
    match run_and_publish(job, kind, store, &lock, reporter, gpus, cancel) {
        Ok(Some(result)) => Outcome::Published(result),
        Ok(None) => Outcome::Cancelled,
        Err(e) => fail(e),
    }
}

/// Takes the stage's lock, waiting while another process holds it; `None` if cancelled
/// meanwhile (so Ctrl-C stops a run that waits for another one).
fn lock_stage(
    store: &Store,
    job: &Job,
    reporter: &StageReporter,
    cancel: &AtomicBool,
) -> Result<Option<StageLock>, StoreError> {
    let mut said = false;
    loop {
        if let Some(lock) = store.try_lock_stage(&job.key)? {
            return Ok(Some(lock));
        }
        if !said {
            reporter.log("another prunus process is running this stage; waiting for it");
            said = true;
        }
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_and_publish(
    job: &Job,
    kind: &dyn StageKind,
    store: &Store,
    lock: &StageLock,
    reporter: &Arc<StageReporter>,
    gpus: &[usize],
    cancel: Arc<AtomicBool>,
) -> Result<Option<ActionResult>, String> {
    // Made under the stage's lock, so `prunus store gc` removes it if this process dies.
    let work = store.work_dir(lock).map_err(|e| e.to_string())?;
    let out_dir = work.path().join("out");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let ctx = Context {
        instance: job.instance.clone(),
        axes: job.axes.clone(),
        params: job.params.clone(),
        inputs: materialise_inputs(job, store, &work.path().join("in"))?,
        out_dir: out_dir.clone(),
        scratch: store.scratch(&job.key).map_err(|e| e.to_string())?,
        reporter: reporter.clone(),
        gpus: gpus.to_vec(),
        cancel,
    };
    let started = SystemTime::now();
    let t0 = Instant::now();
    let result = in_stage(|| kind.run(&ctx));
    let duration = t0.elapsed().as_secs_f64();
    match result {
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let at = PANIC_AT.take().unwrap_or_default();
            return Err(format!(
                "panicked at {at}: {msg} (a bug in kind `{}`; please report it)",
                kind.name()
            ));
        }
        Ok(Err(StageError::Cancelled)) => return Ok(None),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(())) => {}
    }
    let outputs = store_outputs(kind.outputs(&job.params), &out_dir, store)?;
    let log = store
        .put_bytes(reporter.log_text().as_bytes())
        .map_err(|e| format!("storing the log: {e}"))?;
    let result = ActionResult {
        outputs,
        meta: RunMeta {
            started_unix_ms: unix_ms(started),
            ended_unix_ms: unix_ms(SystemTime::now()),
            duration_s: duration,
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            prunus_version: env!("CARGO_PKG_VERSION").to_string(),
            exit_status: "ok".into(),
            log: Some(log),
        },
        key_info: serde_json::to_value(&job.key_info).map_err(|e| e.to_string())?,
    };
    store
        .publish(&job.key, &result)
        .map_err(|e| format!("publishing: {e}"))?;
    store
        .set_ref(&job.ref_name, &job.key)
        .map_err(|e| format!("recording the result: {e}"))?;
    Ok(Some(result))
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Copies each input's outputs out of the store into `dir/<n>/` (read by the stage).
fn materialise_inputs(job: &Job, store: &Store, dir: &Path) -> Result<Vec<Input>, String> {
    let mut inputs = Vec::with_capacity(job.inputs.len());
    for (n, up) in job.inputs.iter().enumerate() {
        let dir = dir.join(n.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut outputs = BTreeMap::new();
        for (name, blob) in &up.outputs {
            let path = store
                .export_output(&blob.digest, &dir, name)
                .map_err(|e| format!("reading input {name} of {}: {e}", up.instance))?;
            outputs.insert(name.clone(), path);
        }
        inputs.push(Input {
            stage: up.stage.clone(),
            instance: up.instance.clone(),
            axes: up.axes.clone(),
            outputs,
        });
    }
    Ok(inputs)
}

/// Stores every declared output; a missing one fails the job (naming what it did write).
fn store_outputs(
    declared: Vec<String>,
    out_dir: &Path,
    store: &Store,
) -> Result<BTreeMap<String, BlobRef>, String> {
    let missing: Vec<&String> = declared
        .iter()
        .filter(|o| !out_dir.join(o).is_file())
        .collect();
    if !missing.is_empty() {
        let wrote: Vec<String> = std::fs::read_dir(out_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        return Err(format!(
            "finished without its declared outputs {} (it wrote: {}); nothing was published",
            missing
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if wrote.is_empty() {
                "nothing".into()
            } else {
                wrote.join(", ")
            }
        ));
    }
    let mut outputs = BTreeMap::new();
    for name in declared {
        let path = inside(out_dir, &name)?;
        let blob = store
            .put_file(&path)
            .map_err(|e| format!("storing output {name}: {e}"))?;
        outputs.insert(name, blob);
    }
    Ok(outputs)
}

/// The file output `name` resolves to, if it is a plain name whose file (symlinks followed)
/// lies inside `out_dir`: a stage must not publish `/etc/hostname` or what a link points at.
fn inside(out_dir: &Path, name: &str) -> Result<PathBuf, String> {
    prunus_store::check_output_name(name)?;
    let canonical = |p: &Path| {
        p.canonicalize()
            .map_err(|e| format!("output {name:?}: {e}"))
    };
    let (root, file) = (canonical(out_dir)?, canonical(&out_dir.join(name))?);
    if file.starts_with(&root) {
        Ok(file)
    } else {
        Err(format!(
            "output {name:?} is a link to {}, outside the stage's output folder; \
             nothing was published (write the file itself, not a link)",
            file.display()
        ))
    }
}

thread_local! {
    /// Set while this thread runs a stage: its panics become stage failures, not stderr noise.
    static IN_STAGE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the last stage panic on this thread happened, for the failure message.
    static PANIC_AT: std::cell::Cell<Option<String>> = const { std::cell::Cell::new(None) };
}

/// Runs a stage's code, catching its panics; a panic's location is kept in [`PANIC_AT`] and
/// nothing is printed (the failure is reported with the stage's log tail instead).
fn in_stage<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_STAGE.get() {
                PANIC_AT.set(info.location().map(|l| l.to_string()));
            } else {
                default(info);
            }
        }));
    });
    IN_STAGE.set(true);
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    IN_STAGE.set(false);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn a_job_round_trips_through_json_and_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::builtin(dir.path());
        let text = "pipeline \"p\"\nsweep \"s\" {\n    x 1 2.5\n}\nstage \"e\" {\n    kind \"test/echo\"\n    over \"s\"\n    value \"x={x}\"\n}\n";
        let graph = crate::load_str("p.kdl", text, &registry).unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let job = Job::plan(&graph, &store, "e/x2.5").unwrap();
        assert_eq!(job.kind, "test/echo");
        assert_eq!(job.params.str("value").unwrap(), "x=2.5");
        assert_eq!(job.key, job.key_info.key());
        let digest = job.save(&store).unwrap();
        assert_eq!(Job::load(&store, &digest).unwrap(), job);
        let mut other = job.clone();
        other.format = JOB_FORMAT + 1;
        let bytes = serde_json::to_vec(&other).unwrap();
        assert!(Job::from_json(&bytes).unwrap_err().contains("job format"));
        let mut altered = job.clone();
        altered.key_info.version += 1;
        let echo = registry.get("test/echo").unwrap();
        assert!(job.check(echo.as_ref()).is_ok());
        assert!(
            altered
                .check(echo.as_ref())
                .unwrap_err()
                .contains("does not match")
        );
    }
}
