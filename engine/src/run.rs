//! The scheduler: runs the instances a plan says must run, in dependency order, each on an
//! [`Executor`] as soon as its inputs are done; keeps siblings' results when one fails
//! (`--keep-going`); on Ctrl-C lets running stages checkpoint and publishes nothing half-done,
//! so the next run resumes; exports the final stages' outputs. With a remote
//! ([`RemoteCache`]), results found there are fetched instead of run, and results made here
//! are pushed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prunus_store::{ActionResult, Digest, Store};

use crate::Error;
use crate::executor::local::Slots;
use crate::executor::{Executor, Finished, LocalExecutor, Task, fit};
use crate::export;
use crate::job::{Job, Outcome};
use crate::lower::Graph;
use crate::plan::{self, Entry, FileHashes, Hit, Status};
use crate::progress::Ui;
use crate::remote::{Moved, RemoteCache, Transfers, Work};

/// What the executor may use, and how it behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub cpus: u32,
    pub gpus: u32,
    /// Instances that may share one GPU.
    pub runs_per_gpu: u32,
    pub memory_mb: u64,
    /// Go on with independent instances after a failure.
    pub keep_going: bool,
    /// Only these instances (name or name prefix, e.g. `train/breakout`) and their upstream.
    pub targets: Vec<String>,
    /// Export the final stages' outputs to the pipeline's results directory.
    pub export: bool,
    pub verbose: bool,
    pub quiet: bool,
    /// Look results up on this remote, and push new ones unless it is read-only.
    pub remote: Option<Arc<RemoteCache>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            gpus: 0,
            runs_per_gpu: 1,
            memory_mb: total_memory_mb(),
            keep_going: false,
            targets: Vec::new(),
            export: true,
            verbose: false,
            quiet: false,
            remote: None,
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
    /// Of the cached instances, those fetched from the remote.
    pub fetched: usize,
    /// Results pushed to the remote.
    pub pushed: usize,
    /// Transfers that failed (each instance ran here instead, or stays unpushed).
    pub remote_problems: Vec<String>,
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
    /// Being fetched from the remote.
    Fetching,
    Done,
    Failed,
    Skipped,
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
    remote: Option<Arc<RemoteCache>>,
    transfers: Option<Transfers>,
    /// Lines for the user found while no [`Ui`] was at hand (remote entries refused).
    notes: Vec<String>,
}

impl<'a> Schedule<'a> {
    fn new(graph: &'a Graph, store: &'a Store, opts: &RunOptions) -> Result<Self, Error> {
        let n = graph.instances.len();
        let mut state = vec![State::Unneeded; n];
        for i in needed(graph, &opts.targets)? {
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
            entries: plan::plan_with(graph, store, opts.remote.as_deref())?,
            state,
            dependents,
            waiting: graph.instances.iter().map(|i| i.inputs.len()).collect(),
            ready: Vec::new(),
            summary: Summary::default(),
            finished: 0,
            transfers: opts.remote.as_ref().map(|r| Transfers::new(r, store, 4)),
            remote: opts.remote.clone(),
            notes: Vec::new(),
        };
        schedule.release(
            (0..n)
                .filter(|&i| graph.instances[i].inputs.is_empty())
                .collect(),
        )?;
        Ok(schedule)
    }

    /// The instances this run may have to run: in its targets and not found cached.
    fn to_run(&self) -> Vec<usize> {
        (0..self.state.len())
            .filter(|&i| {
                let cached = matches!(self.entries[i].status, Status::Cached | Status::Remote)
                    || self.state[i] == State::Done;
                self.state[i] != State::Unneeded && !cached
            })
            .collect()
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
                let local = self.store.lookup(&key)?;
                let e = &mut self.entries[i];
                (e.result, e.status) =
                    match plan::find(self.store, self.remote.as_deref(), &key, local)? {
                        Hit::Local(r) => (Some(r), Status::Cached),
                        Hit::Remote(r) => (Some(r), Status::Remote),
                        Hit::Miss(why) => {
                            e.refused = why.clone();
                            (None, Status::Run(why.into_iter().collect()))
                        }
                    };
                e.key = Some(key);
                e.info = Some(info);
            }
            let key = self.entries[i].key.expect("set above");
            match (&self.entries[i].result, &self.entries[i].status) {
                (Some(result), Status::Remote) => {
                    self.state[i] = State::Fetching;
                    let work = Work::Fetch(i, key, result.clone());
                    self.transfers.as_mut().expect("a remote").send(work);
                }
                (Some(_), _) => {
                    self.state[i] = State::Done;
                    self.summary.cached += 1;
                    self.finished += 1;
                    self.share(i, key);
                    queue.extend(self.inputs_done(i));
                }
                (None, _) => {
                    if let Some(why) = self.entries[i].refused.take() {
                        let name = &self.graph.instances[i].name;
                        self.notes.push(format!("! {name}: {why}"));
                        self.summary.remote_problems.push(format!("{name}: {why}"));
                    }
                    self.state[i] = State::Ready;
                    self.ready.push(i);
                }
            }
        }
        Ok(())
    }

    /// Pushes the local result of `i` if the run has a writable remote that lacks it.
    fn share(&mut self, i: usize, key: Digest) {
        if let (Some(remote), Some(t)) = (&self.remote, &mut self.transfers)
            && !remote.read_only()
            && !remote.has(&key)
        {
            t.send(Work::Push(i, key));
        }
    }

    /// Records a transfer that ended: a fetched instance is done (or, if the fetch failed,
    /// runs here); a failed push is reported.
    fn moved(&mut self, m: Moved, ui: &Ui) -> Result<(), Error> {
        let i = m.index;
        let name = &self.graph.instances[i].name;
        let remote = self.remote.as_ref().map_or("", |r| r.name());
        match (m.fetch, m.outcome) {
            (true, Ok(_)) => {
                ui.note(format!("✓ {name} (fetched from {remote})"));
                self.summary.cached += 1;
                self.summary.fetched += 1;
                self.finished += 1;
                let result = self.entries[i].result.clone().expect("fetched");
                let key = self.entries[i].key.expect("fetched");
                // As if it had run here: `show` and `plan`'s reasons find it by name.
                self.store.set_ref(&plan::ref_name(self.graph, i), &key)?;
                self.done(i, result)?;
            }
            (true, Err(e)) => {
                let problem = format!("{name}: cannot fetch it from {remote}: {e}");
                ui.println(format!("! {problem}; running it here"));
                self.summary.remote_problems.push(problem);
                self.entries[i].result = None;
                self.entries[i].status = Status::Run(vec!["fetching it failed".into()]);
                self.forget_downstream(i);
                self.state[i] = State::Ready;
                self.ready.push(i);
            }
            (false, Ok(_)) => self.summary.pushed += 1,
            (false, Err(e)) => {
                let problem = format!("{name}: cannot push it to {remote}: {e}");
                ui.println(format!(
                    "! {problem} (it is kept here; `prunus store push` retries)"
                ));
                self.summary.remote_problems.push(problem);
            }
        }
        Ok(())
    }

    /// Drops the keys computed from `i`'s remote outputs: `i` runs here instead, and a kind
    /// that is not bit-deterministic may give other outputs.
    fn forget_downstream(&mut self, i: usize) {
        let mut stack = self.dependents[i].clone();
        while let Some(d) = stack.pop() {
            if self.state[d] == State::Pending && self.entries[d].key.is_some() {
                let e = &mut self.entries[d];
                (e.key, e.info, e.result) = (None, None, None);
                e.status = Status::Run(Vec::new());
                stack.extend(&self.dependents[d]);
            }
        }
    }

    /// Waits at most `timeout` for a transfer to end, then records every one that has.
    fn collect_transfers(&mut self, ui: &Ui, timeout: Duration) -> Result<(), Error> {
        let Some(t) = self.transfers.as_mut() else {
            return Ok(());
        };
        let mut next = t.recv(timeout);
        while let Some(m) = next {
            self.moved(m, ui)?;
            next = self
                .transfers
                .as_mut()
                .expect("checked")
                .recv(Duration::ZERO);
        }
        Ok(())
    }

    fn fetching(&self) -> usize {
        self.transfers.as_ref().map_or(0, |t| t.fetching)
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

/// Plans and runs `graph` against `store` on this machine (the [`LocalExecutor`]).
pub fn run(
    graph: &Graph,
    store: &Store,
    opts: &RunOptions,
    cancel: Arc<AtomicBool>,
) -> Result<Summary, Error> {
    let slots = Slots {
        cpus: opts.cpus,
        gpus: opts.gpus,
        memory_mb: opts.memory_mb,
    };
    let mut executor = LocalExecutor::new(store.clone(), slots).runs_per_gpu(opts.runs_per_gpu);
    run_with(graph, store, opts, &mut executor, cancel)
}

/// Plans and runs `graph` against `store`, each ready instance on `executor`.
pub fn run_with(
    graph: &Graph,
    store: &Store,
    opts: &RunOptions,
    executor: &mut dyn Executor,
    cancel: Arc<AtomicBool>,
) -> Result<Summary, Error> {
    let taken_over = crate::identity::claim(graph, store, true)?;
    let mut sched = Schedule::new(graph, store, opts)?;
    if let Some(room) = executor.room() {
        fit::check(graph, &room, &sched.to_run())?;
    }
    let ui = Ui::new(sched.total(), opts.verbose, opts.quiet);
    if let Some(note) = taken_over {
        ui.println(note);
    }
    let mut stopping = false;
    let mut running = 0usize;
    loop {
        if cancel.load(Ordering::Relaxed) && !stopping {
            stopping = true;
            sched.summary.cancelled = true;
            ui.println("interrupted: letting running stages checkpoint; nothing half-done is published (Ctrl-C again to quit now)");
        }
        if !stopping {
            let (started, failed) = sched.launch(executor, &ui, &cancel, opts.keep_going);
            running += started;
            stopping |= failed && !opts.keep_going;
        }
        for note in sched.notes.drain(..) {
            ui.println(note);
        }
        sched.show(&ui, running);
        let fetching = sched.fetching();
        if running == 0 && fetching == 0 && (stopping || sched.ready.is_empty()) {
            break;
        }
        if running == 0 {
            sched.collect_transfers(&ui, Duration::from_millis(100))?;
            continue;
        }
        sched.collect_transfers(&ui, Duration::ZERO)?;
        let Some(finished) = executor.wait(Duration::from_millis(100)) else {
            continue;
        };
        running -= 1;
        if sched.finish(finished, &ui)? && !opts.keep_going && !stopping {
            stopping = true;
            ui.println("stopping after the first failure (running stages finish and are kept; --keep-going runs everything that does not depend on it)");
        }
    }
    sched.finish_pushes(&ui)?;
    ui.finish();
    let mut summary = std::mem::take(&mut sched.summary);
    summary.skipped = sched
        .state
        .iter()
        .filter(|s| matches!(s, State::Pending | State::Ready | State::Skipped))
        .count();
    if opts.export && !summary.cancelled {
        let done: Vec<bool> = sched.state.iter().map(|s| *s == State::Done).collect();
        summary.exported = export::results(graph, store, &sched.entries, &done)?;
    }
    Ok(summary)
}

impl Schedule<'_> {
    /// Starts ready instances, in pipeline order, while the executor has room; returns how
    /// many started and whether one was refused (a failure, which ends the launching unless
    /// `keep_going`).
    fn launch(
        &mut self,
        executor: &mut dyn Executor,
        ui: &Ui,
        cancel: &Arc<AtomicBool>,
        keep_going: bool,
    ) -> (usize, bool) {
        let graph = self.graph;
        let (mut started, mut refused) = (0, false);
        self.ready.sort_unstable_by(|a, b| b.cmp(a));
        let mut k = self.ready.len();
        while k > 0 {
            k -= 1;
            let i = self.ready[k];
            let resources = graph.instances[i].resources;
            if let Some(msg) = executor.refuses(&resources) {
                self.ready.remove(k);
                ui.println(format!("✗ {}: {msg}", graph.instances[i].name));
                self.failed(i, msg, vec![]);
                refused = true;
                if keep_going {
                    continue;
                }
                break;
            }
            if !executor.has_room(&resources) {
                continue;
            }
            self.ready.remove(k);
            self.state[i] = State::Running;
            started += 1;
            executor.start(Task {
                index: i,
                job: self.job(i),
                kind: graph.stage_of(i).kind.clone(),
                reporter: Arc::new(ui.stage(&graph.instances[i].name)),
                cancel: cancel.clone(),
            });
        }
        (started, refused)
    }

    /// The job of ready instance `i`.
    fn job(&self, i: usize) -> Job {
        let info = self.entries[i]
            .info
            .clone()
            .expect("ready instances have keys");
        let inputs: Vec<(usize, ActionResult)> = self.graph.instances[i]
            .inputs
            .iter()
            .map(|&j| {
                let result = self.entries[j].result.clone();
                (j, result.expect("inputs are done"))
            })
            .collect();
        Job::new(self.graph, self.store, i, info, &inputs)
    }

    /// Waits for the pushes still going (results made or found here that the remote lacks).
    fn finish_pushes(&mut self, ui: &Ui) -> Result<(), Error> {
        let pushing = self.transfers.as_ref().map_or(0, |t| t.pushing);
        if pushing > 0 {
            let remote = self.remote.as_ref().expect("pushes need a remote").name();
            ui.println(format!("pushing {pushing} result(s) to {remote} …"));
        }
        while self.transfers.as_ref().is_some_and(|t| t.pushing > 0) {
            self.collect_transfers(ui, Duration::from_millis(100))?;
        }
        Ok(())
    }

    /// The overall bar's line.
    fn show(&self, ui: &Ui, running: usize) {
        let failed = self.summary.failed.len();
        ui.set_summary(
            self.finished,
            format!(
                "{running} running, {} ready, {}{} cached, {} ran{}",
                self.ready.len(),
                match self.fetching() {
                    0 => String::new(),
                    n => format!("{n} fetching, "),
                },
                self.summary.cached,
                self.summary.ran.len(),
                if failed > 0 {
                    format!(", {failed} failed")
                } else {
                    String::new()
                }
            ),
        );
    }

    /// Records how a task ended; returns whether it failed.
    fn finish(&mut self, f: Finished, ui: &Ui) -> Result<bool, Error> {
        let (i, secs) = (f.index, f.secs);
        self.finished += 1;
        let name = &self.graph.instances[i].name;
        match f.outcome {
            Outcome::Published(result) => {
                ui.note(format!("✓ {name} ({})", human_secs(secs)));
                self.summary.ran.push(name.clone());
                self.done(i, result)?;
                self.share(i, self.entries[i].key.expect("ran"));
            }
            Outcome::Cached(result) => {
                ui.note(format!("✓ {name} (published by another prunus run)"));
                self.summary.cached += 1;
                self.done(i, result)?;
                self.share(i, self.entries[i].key.expect("ran"));
            }
            Outcome::Failed(error, log_tail) => {
                ui.println(format!(
                    "✗ {name} failed after {}: {error}",
                    human_secs(secs)
                ));
                for line in &log_tail {
                    ui.println(format!("    | {line}"));
                }
                self.failed(i, error, log_tail);
                return Ok(true);
            }
            Outcome::Cancelled => {
                ui.println(format!(
                    "… {name} interrupted; it resumes from its checkpoint on the next run"
                ));
                self.state[i] = State::Pending;
            }
        }
        Ok(false)
    }
}

/// The targets (instance names or prefixes) and everything upstream of them (all instances
/// when there are no targets).
pub fn needed(graph: &Graph, targets: &[String]) -> Result<Vec<usize>, Error> {
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

pub(crate) fn total_memory_mb() -> u64 {
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
