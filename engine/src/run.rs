//! The local executor: runs the instances a plan says must run, concurrently within the
//! machine's cpu/gpu/memory slots, in dependency order; publishes each result only after all
//! its outputs are stored; keeps siblings' results when one fails; and on Ctrl-C lets
//! running stages checkpoint and publishes nothing half-done, so the next run resumes.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prunus_stage::{Context, Input, Resources, StageError};
use prunus_store::{ActionResult, Digest, RunMeta, Store};

use crate::Error;
use crate::key::KeyInfo;
use crate::lower::Graph;
use crate::plan::{self, Entry, FileHashes};
use crate::progress::{StageReporter, Ui};

/// What the executor may use, and how it behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub cpus: u32,
    pub gpus: u32,
    pub memory_mb: u64,
    /// Go on with independent instances after a failure.
    pub keep_going: bool,
    /// Only these instances (name or name prefix, e.g. `train/breakout`) and their upstream.
    pub targets: Vec<String>,
    /// Export the final stages' outputs to the pipeline's results directory.
    pub export: bool,
    pub verbose: bool,
    pub quiet: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            gpus: 0,
            memory_mb: total_memory_mb(),
            keep_going: false,
            targets: Vec::new(),
            export: true,
            verbose: false,
            quiet: false,
        }
    }
}

/// How a run went.
#[derive(Debug, Default)]
pub struct Summary {
    pub ran: Vec<String>,
    pub cached: usize,
    pub failed: Vec<Failure>,
    /// Instances not run because an upstream instance failed or the run stopped early.
    pub skipped: usize,
    pub cancelled: bool,
    pub exported: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Failure {
    pub instance: String,
    pub error: String,
    pub log_tail: Vec<String>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && !self.cancelled
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Unneeded,
    Pending,
    Ready,
    Running,
    Done,
    Failed,
    Skipped,
}

enum Outcome {
    Published(ActionResult),
    /// Another process published it while we waited for its lock.
    Cached(ActionResult),
    Failed(String, Vec<String>),
    Cancelled,
}

/// The run's bookkeeping: each instance's plan entry and state, how many of its inputs are
/// unfinished, and which instances are ready to launch.
struct Schedule<'a> {
    graph: &'a Graph,
    store: &'a Store,
    files: FileHashes,
    entries: Vec<Entry>,
    state: Vec<State>,
    dependents: Vec<Vec<usize>>,
    waiting: Vec<usize>,
    ready: Vec<usize>,
    summary: Summary,
    finished: u64,
}

impl<'a> Schedule<'a> {
    fn new(graph: &'a Graph, store: &'a Store, targets: &[String]) -> Result<Self, Error> {
        let n = graph.instances.len();
        let mut state = vec![State::Unneeded; n];
        for i in needed(graph, targets)? {
            state[i] = State::Pending;
        }
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, inst) in graph.instances.iter().enumerate() {
            for &j in &inst.inputs {
                dependents[j].push(i);
            }
        }
        let mut schedule = Schedule {
            graph,
            store,
            files: FileHashes::default(),
            entries: plan::plan(graph, store)?,
            state,
            dependents,
            waiting: graph.instances.iter().map(|i| i.inputs.len()).collect(),
            ready: Vec::new(),
            summary: Summary::default(),
            finished: 0,
        };
        schedule.release(
            (0..n)
                .filter(|&i| graph.instances[i].inputs.is_empty())
                .collect(),
        )?;
        Ok(schedule)
    }

    /// How many instances this run covers.
    fn total(&self) -> u64 {
        self.state.iter().filter(|s| **s != State::Unneeded).count() as u64
    }

    /// Settles instances whose inputs are all done: each is found cached (and releases its
    /// own dependents in turn) or becomes ready.
    fn release(&mut self, mut queue: Vec<usize>) -> Result<(), Error> {
        while let Some(i) = queue.pop() {
            if self.state[i] != State::Pending {
                continue;
            }
            if self.entries[i].key.is_none() {
                let (graph, entries) = (self.graph, &self.entries);
                let info = plan::key_info(graph, i, &mut self.files, |j| {
                    plan::identity(graph, j, &entries[j])
                })?
                .unwrap_or_else(|j| panic!("input {j} of {i} settled before it finished"));
                let key = info.key();
                self.entries[i].result = self.store.lookup(&key)?;
                self.entries[i].key = Some(key);
                self.entries[i].info = Some(info);
            }
            if self.entries[i].result.is_some() {
                self.state[i] = State::Done;
                self.summary.cached += 1;
                self.finished += 1;
                queue.extend(self.inputs_done(i));
            } else {
                self.state[i] = State::Ready;
                self.ready.push(i);
            }
        }
        Ok(())
    }

    /// Counts `i` as done for its dependents; returns those with no input left to wait on.
    fn inputs_done(&mut self, i: usize) -> Vec<usize> {
        let mut free = Vec::new();
        for &d in &self.dependents[i] {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                free.push(d);
            }
        }
        free
    }

    /// `i` ran (or another process published it): record it and release its dependents.
    fn done(&mut self, i: usize, result: ActionResult) -> Result<(), Error> {
        self.entries[i].result = Some(result);
        self.state[i] = State::Done;
        let free = self.inputs_done(i);
        self.release(free)
    }

    /// `i` failed: record why and skip everything downstream of it.
    fn failed(&mut self, i: usize, error: String, log_tail: Vec<String>) {
        self.state[i] = State::Failed;
        self.summary.failed.push(Failure {
            instance: self.graph.instances[i].name.clone(),
            error,
            log_tail,
        });
        let mut stack = self.dependents[i].clone();
        while let Some(d) = stack.pop() {
            if self.state[d] == State::Pending {
                self.state[d] = State::Skipped;
                stack.extend(&self.dependents[d]);
            }
        }
    }
}

/// Plans and runs `graph` against `store`.
pub fn run(
    graph: &Graph,
    store: &Store,
    opts: &RunOptions,
    cancel: Arc<AtomicBool>,
) -> Result<Summary, Error> {
    let mut sched = Schedule::new(graph, store, &opts.targets)?;
    let ui = Ui::new(sched.total(), opts.verbose, opts.quiet);
    let capacity = Slots {
        cpus: opts.cpus.max(1),
        gpus: opts.gpus,
        memory_mb: opts.memory_mb.max(1),
    };
    let mut free = capacity;
    let mut stopping = false;
    let mut running = 0usize;

    let (tx, rx) = mpsc::channel::<(usize, Outcome, f64)>();
    std::thread::scope(|scope| -> Result<(), Error> {
        loop {
            if cancel.load(Ordering::Relaxed) && !stopping {
                stopping = true;
                sched.summary.cancelled = true;
                ui.println("interrupted: letting running stages checkpoint; nothing half-done is published (Ctrl-C again to quit now)");
            }
            // Launch ready instances, in pipeline order, while they fit.
            sched.ready.sort_unstable_by(|a, b| b.cmp(a));
            let mut k = sched.ready.len();
            while !stopping && k > 0 {
                k -= 1;
                let i = sched.ready[k];
                let need = match fit(graph.instances[i].resources, capacity) {
                    Ok(need) => need,
                    Err(msg) => {
                        sched.ready.remove(k);
                        ui.println(format!("✗ {}: {msg}", graph.instances[i].name));
                        sched.failed(i, msg, vec![]);
                        stopping |= !opts.keep_going;
                        continue;
                    }
                };
                if !free.take(need) {
                    continue;
                }
                sched.ready.remove(k);
                sched.state[i] = State::Running;
                running += 1;
                let entry = &sched.entries[i];
                let key = entry.key.expect("ready instances have keys");
                let info = entry.info.clone().expect("ready instances have keys");
                let inputs: Vec<(usize, ActionResult)> = graph.instances[i]
                    .inputs
                    .iter()
                    .map(|&j| {
                        let result = sched.entries[j].result.clone();
                        (j, result.expect("inputs are done"))
                    })
                    .collect();
                let reporter = Arc::new(ui.stage(&graph.instances[i].name));
                let tx = tx.clone();
                let cancel = cancel.clone();
                scope.spawn(move || {
                    let t0 = Instant::now();
                    let outcome = execute(
                        graph,
                        store,
                        i,
                        key,
                        info,
                        &inputs,
                        reporter.clone(),
                        cancel,
                    );
                    reporter.done();
                    let _ = tx.send((i, outcome, t0.elapsed().as_secs_f64()));
                });
            }
            let failed = sched.summary.failed.len();
            ui.set_summary(
                sched.finished,
                format!(
                    "{running} running, {} ready, {} cached, {} ran{}",
                    sched.ready.len(),
                    sched.summary.cached,
                    sched.summary.ran.len(),
                    if failed > 0 {
                        format!(", {failed} failed")
                    } else {
                        String::new()
                    }
                ),
            );
            if running == 0 && (stopping || sched.ready.is_empty()) {
                break;
            }
            let Ok((i, outcome, secs)) = rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            running -= 1;
            free.give(fit(graph.instances[i].resources, capacity).expect("it ran"));
            sched.finished += 1;
            let name = &graph.instances[i].name;
            match outcome {
                Outcome::Published(result) => {
                    ui.note(format!("✓ {name} ({})", human_secs(secs)));
                    sched.summary.ran.push(name.clone());
                    sched.done(i, result)?;
                }
                Outcome::Cached(result) => {
                    ui.note(format!("✓ {name} (published by another prunus run)"));
                    sched.summary.cached += 1;
                    sched.done(i, result)?;
                }
                Outcome::Failed(error, log_tail) => {
                    ui.println(format!(
                        "✗ {name} failed after {}: {error}",
                        human_secs(secs)
                    ));
                    for line in &log_tail {
                        ui.println(format!("    | {line}"));
                    }
                    sched.failed(i, error, log_tail);
                    if !opts.keep_going && !stopping {
                        stopping = true;
                        ui.println("stopping after the first failure (running stages finish and are kept; --keep-going runs everything that does not depend on it)");
                    }
                }
                Outcome::Cancelled => {
                    ui.println(format!(
                        "… {name} interrupted; it resumes from its checkpoint on the next run"
                    ));
                    sched.state[i] = State::Pending;
                }
            }
        }
        Ok(())
    })?;
    ui.finish();
    let mut summary = sched.summary;
    summary.skipped = sched
        .state
        .iter()
        .filter(|s| matches!(s, State::Pending | State::Ready | State::Skipped))
        .count();
    if opts.export && !summary.cancelled {
        summary.exported = export(graph, store, &sched.entries, &sched.state)?;
    }
    Ok(summary)
}

/// The targets and everything upstream of them (all instances when there are no targets).
fn needed(graph: &Graph, targets: &[String]) -> Result<Vec<usize>, Error> {
    if targets.is_empty() {
        return Ok((0..graph.instances.len()).collect());
    }
    let mut keep = vec![false; graph.instances.len()];
    for t in targets {
        let t = t.trim_end_matches('/');
        let hits: Vec<usize> = (0..graph.instances.len())
            .filter(|&i| {
                let name = &graph.instances[i].name;
                name == t || name.starts_with(&format!("{t}/"))
            })
            .collect();
        if hits.is_empty() {
            return Err(Error::NoSuchInstance(t.to_string()));
        }
        for i in hits {
            keep[i] = true;
        }
    }
    for i in (0..graph.instances.len()).rev() {
        if keep[i] {
            for &j in &graph.instances[i].inputs {
                keep[j] = true;
            }
        }
    }
    Ok((0..keep.len()).filter(|&i| keep[i]).collect())
}

#[derive(Debug, Clone, Copy)]
struct Slots {
    cpus: u32,
    gpus: u32,
    memory_mb: u64,
}

impl Slots {
    fn take(&mut self, r: Slots) -> bool {
        if r.cpus <= self.cpus && r.gpus <= self.gpus && r.memory_mb <= self.memory_mb {
            self.cpus -= r.cpus;
            self.gpus -= r.gpus;
            self.memory_mb -= r.memory_mb;
            true
        } else {
            false
        }
    }

    fn give(&mut self, r: Slots) {
        self.cpus += r.cpus;
        self.gpus += r.gpus;
        self.memory_mb += r.memory_mb;
    }
}

/// What an instance occupies on this machine: more cpus or memory than the machine has is
/// clamped (it runs alone); a GPU the machine lacks is an error.
fn fit(r: Resources, capacity: Slots) -> Result<Slots, String> {
    if r.gpus > capacity.gpus {
        return Err(format!(
            "needs {} GPU(s) but this run has {} (pass --gpus N on a GPU machine, or lower `resources gpus=`)",
            r.gpus, capacity.gpus
        ));
    }
    Ok(Slots {
        cpus: r.cpus.clamp(1, capacity.cpus),
        gpus: r.gpus,
        memory_mb: r.memory_mb.min(capacity.memory_mb),
    })
}

/// Runs one instance and publishes its result.
#[allow(clippy::too_many_arguments)]
fn execute(
    graph: &Graph,
    store: &Store,
    i: usize,
    key: Digest,
    info: KeyInfo,
    inputs: &[(usize, ActionResult)],
    reporter: Arc<StageReporter>,
    cancel: Arc<AtomicBool>,
) -> Outcome {
    let fail = |e: String, r: &StageReporter| Outcome::Failed(e, r.tail(20));
    // One process runs a key at a time; a second waits, then finds the result published.
    let _lock = match store.try_lock_stage(&key) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            use prunus_stage::Reporter as _;
            reporter.log("another prunus process is running this stage; waiting for it");
            match store.lock_stage(&key) {
                Ok(lock) => lock,
                Err(e) => return fail(e.to_string(), &reporter),
            }
        }
        Err(e) => return fail(e.to_string(), &reporter),
    };
    // Another process may have published it since we planned, with or without a wait.
    if let Ok(Some(result)) = store.lookup(&key) {
        return Outcome::Cached(result);
    }
    match try_execute(graph, store, i, key, info, inputs, &reporter, cancel) {
        Ok(Some(result)) => Outcome::Published(result),
        Ok(None) => Outcome::Cancelled,
        Err(e) => fail(e, &reporter),
    }
}

#[allow(clippy::too_many_arguments)]
fn try_execute(
    graph: &Graph,
    store: &Store,
    i: usize,
    key: Digest,
    info: KeyInfo,
    inputs: &[(usize, ActionResult)],
    reporter: &Arc<StageReporter>,
    cancel: Arc<AtomicBool>,
) -> Result<Option<ActionResult>, String> {
    let inst = &graph.instances[i];
    let kind = graph.stage_of(i).kind.clone();
    let work_root = store.root().join("work");
    std::fs::create_dir_all(&work_root)
        .map_err(|e| format!("create {}: {e}", work_root.display()))?;
    let work = tempfile::Builder::new()
        .prefix(&format!("{}-", &key.to_string()[..16]))
        .tempdir_in(&work_root)
        .map_err(|e| format!("create a work directory in {}: {e}", work_root.display()))?;
    let out_dir = work.path().join("out");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let mut ctx_inputs = Vec::with_capacity(inputs.len());
    for (n, (j, result)) in inputs.iter().enumerate() {
        let up = &graph.instances[*j];
        let dir = work.path().join("in").join(n.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut outputs = BTreeMap::new();
        for (name, blob) in &result.outputs {
            let path = dir.join(name);
            store
                .get_to_file(&blob.digest, &path)
                .map_err(|e| format!("reading input {name} of {}: {e}", up.name))?;
            outputs.insert(name.clone(), path);
        }
        ctx_inputs.push(Input {
            stage: graph.stage_of(*j).name.clone(),
            instance: up.name.clone(),
            axes: up.axes.clone(),
            outputs,
        });
    }
    let scratch = store.scratch(&key).map_err(|e| e.to_string())?;
    let ctx = Context {
        instance: inst.name.clone(),
        axes: inst.axes.clone(),
        params: inst.params.clone(),
        inputs: ctx_inputs,
        out_dir: out_dir.clone(),
        scratch,
        reporter: reporter.clone(),
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
    let declared = kind.outputs(&inst.params);
    let missing: Vec<&String> = declared
        .iter()
        .filter(|o| !out_dir.join(o).is_file())
        .collect();
    if !missing.is_empty() {
        let wrote: Vec<String> = std::fs::read_dir(&out_dir)
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
        let blob = store
            .put_file(&out_dir.join(&name))
            .map_err(|e| format!("storing output {name}: {e}"))?;
        outputs.insert(name, blob);
    }
    let log = store
        .put_bytes(reporter.log_text().as_bytes())
        .map_err(|e| format!("storing the log: {e}"))?;
    let unix_ms = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    };
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
        key_info: serde_json::to_value(&info).map_err(|e| e.to_string())?,
    };
    store
        .publish(&key, &result)
        .map_err(|e| format!("publishing: {e}"))?;
    store
        .set_ref(&plan::ref_name(graph, i), &key)
        .map_err(|e| format!("recording the result: {e}"))?;
    Ok(Some(result))
}

/// Copies the outputs of the final stages (those nothing needs) to the results directory:
/// `results/<pipeline>/<instance>/<output>`. Unchanged instances are not copied again.
fn export(
    graph: &Graph,
    store: &Store,
    entries: &[Entry],
    state: &[State],
) -> Result<Option<PathBuf>, Error> {
    let root = &graph.results;
    let mut any = false;
    for stage in graph.stages.iter().filter(|s| s.export) {
        for i in stage.instances.clone() {
            let (Some(result), Some(key), State::Done) =
                (&entries[i].result, entries[i].key, state[i])
            else {
                continue;
            };
            any = true;
            let dir = root.join(&graph.instances[i].name);
            let marker = dir.join(".prunus-key");
            if std::fs::read_to_string(&marker).is_ok_and(|k| k.trim() == key.to_string()) {
                continue;
            }
            std::fs::create_dir_all(&dir).map_err(|e| Error::Export(dir.clone(), e))?;
            for (name, blob) in &result.outputs {
                store.get_to_file(&blob.digest, &dir.join(name))?;
            }
            std::fs::write(&marker, format!("{key}\n"))
                .map_err(|e| Error::Export(marker.clone(), e))?;
        }
    }
    Ok(any.then(|| root.clone()))
}

pub fn human_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.0} min {:.0} s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn total_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(16 * 1024, |kb| kb / 1024)
}

/// Whether `path` lies inside the store's work area (for tests).
pub fn is_work_dir(store: &Store, path: &Path) -> bool {
    path.starts_with(store.root().join("work"))
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
