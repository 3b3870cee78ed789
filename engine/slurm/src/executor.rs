//! [`SlurmExecutor`]: the scheduler's ready instances become Slurm array tasks that run
//! `prunus exec` against the same store. `start` only queues; the next `wait` submits what was
//! queued, one array per stage and resources, and then polls Slurm for the tasks it tracks. A
//! result published in the store is the task's success; a task that leaves the queue without
//! one failed, and its Slurm state says why.
//!
//! Nodes that do not see the store ([`Through`], the `node-store` setting): each task runs
//! against a store of its own on its node; before submitting, the coordinator pushes the saved
//! job and its inputs' blobs to the run's remote, the task fetches them (verified), runs, and
//! pushes its result signed with the store's jobs key, and the coordinator fetches that
//! result (verified, and believed only with a trusted signature) into the store.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prunus_engine::executor::{Executor, Finished, Task};
use prunus_engine::job::{Job, Outcome};
use prunus_stage::{Reporter, Resources};
use prunus_store::{ActionResult, Digest, EntryTrust, Remote, Store};

use crate::ledger::{self, Ledger, Record};
use crate::options::SlurmOptions;
use crate::query::Query;
use crate::sbatch::NodeRemote;
use crate::state::{Queued, TaskId};
use crate::tail::{self, LogTail};
use crate::{report, sbatch};

/// What jobs on nodes that do not see the store move their inputs and results through.
pub struct Through {
    pub remote: Arc<dyn Remote>,
    /// Whom the coordinator believes: its jobs key among them.
    pub trust: Arc<dyn EntryTrust>,
    /// How the jobs reach the remote.
    pub node: NodeRemote,
    /// `NAME:SECRET` of the key the jobs sign with ([`Store::jobs_key`]): handed to them in
    /// the environment sbatch exports, never in the script or on a command line.
    pub signing_key: String,
}

pub struct SlurmExecutor {
    store: Store,
    opts: SlurmOptions,
    ledger: Ledger,
    query: Query,
    /// Started by the scheduler, not yet submitted.
    queued: Vec<Task>,
    tracked: Vec<Tracked>,
    finished: VecDeque<Finished>,
    next_poll: Instant,
    /// When running tasks' logs are read next.
    next_tail: Instant,
    /// Instances this coordinator submitted, and those it found submitted already.
    pub submitted: usize,
    pub attached: usize,
    let_go: bool,
    through: Option<Through>,
}

/// A submitted instance this coordinator waits for.
struct Tracked {
    task: Task,
    id: TaskId,
    record: Record,
    since: Instant,
    tail: LogTail,
    /// Polls in a row that found it out of the queue and unpublished.
    gone: u32,
}

impl SlurmExecutor {
    /// Checks that sbatch runs here, that Slurm's commands reach a controller, and that the
    /// jobs will find prunus.
    pub fn new(store: Store, opts: SlurmOptions) -> Result<SlurmExecutor, String> {
        let version = Command::new("sbatch").arg("--version").output();
        version.map_err(|e| sbatch::not_runnable("sbatch", &e))?;
        let query = Query::default();
        query.queue().map_err(|e| {
            let last = e.lines().last().unwrap_or("").to_string();
            format!(
                "Slurm's commands do not reach a controller ({last}); check that `sinfo` works here                  (SLURM_CONF, the cluster's slurmctld)"
            )
        })?;
        if !opts.prunus.is_file() {
            return Err(format!(
                "the Slurm jobs would run {}, which is not a file here; set `prunus \"/path/on/the/nodes\"` in the executor block or config",
                opts.prunus.display()
            ));
        }
        Ok(SlurmExecutor {
            ledger: Ledger::open(&store)?,
            store,
            opts,
            query,
            queued: Vec::new(),
            tracked: Vec::new(),
            finished: VecDeque::new(),
            next_poll: Instant::now(),
            next_tail: Instant::now(),
            submitted: 0,
            attached: 0,
            let_go: false,
            through: None,
        })
    }

    /// Runs the jobs on nodes that do not see the store, each with a store of its own at the
    /// options' `node_store`, moving what they need and make through `through`.
    pub fn through(mut self, through: Through) -> Result<SlurmExecutor, String> {
        if self.opts.node_store.is_none() {
            return Err("a run through a remote needs `node-store`".into());
        }
        self.through = Some(through);
        Ok(self)
    }

    /// The result of `job` if it is published: in the store, or (nodes without the store) on
    /// the remote, fetched into the store and recorded under the job's ref, as `prunus exec`
    /// does. An entry the trust refuses is an error.
    fn published(&self, job: &Job) -> Result<Option<ActionResult>, String> {
        if let Ok(Some(result)) = self.store.lookup(&job.key) {
            return Ok(Some(result));
        }
        let Some(t) = &self.through else {
            return Ok(None);
        };
        let on_remote =
            |e: prunus_store::StoreError| format!("its result on {}: {e}", t.remote.name());
        let result = self
            .store
            .fetch_action(t.remote.as_ref(), &job.key, t.trust.as_ref())
            .map_err(on_remote)?;
        if result.is_some() {
            self.store
                .set_ref(&job.ref_name, &job.key)
                .map_err(on_remote)?;
        }
        Ok(result)
    }

    /// Puts the saved job `job` and its inputs' blobs on the remote, for a node to fetch.
    fn send(&self, t: &Through, task: &Task, job: &Digest) -> Result<(), String> {
        let err = |e: prunus_store::StoreError| {
            format!(
                "sending {} to {} for the node: {e}",
                task.job.instance,
                t.remote.name()
            )
        };
        self.store.push_blob(t.remote.as_ref(), job).map_err(err)?;
        for input in &task.job.inputs {
            for blob in input.outputs.values() {
                self.store
                    .push_blob(t.remote.as_ref(), &blob.digest)
                    .map_err(err)?;
            }
        }
        Ok(())
    }

    /// Where task `id`'s log is: in the ledger, or (nodes without the store) on its node.
    fn log_path(&self, id: &str) -> PathBuf {
        log_path(self.node_log(), &self.ledger.dir, id)
    }

    /// The node's log pattern, for nodes that do not see the store.
    fn node_log(&self) -> Option<&str> {
        self.through.as_ref().map(|_| self.opts.node_log.as_str())
    }

    fn end(&mut self, task: Task, outcome: Outcome, since: Instant) {
        task.reporter.done();
        let secs = since.elapsed().as_secs_f64();
        self.finished.push_back(Finished {
            index: task.index,
            outcome,
            secs,
        });
    }

    /// Submits every queued task: one array per stage and resources (split at `max_array`).
    fn flush(&mut self) {
        let mut groups: Vec<((String, Resources), Vec<Task>)> = Vec::new();
        for task in std::mem::take(&mut self.queued) {
            let g = (task.job.stage.clone(), task.job.resources);
            match groups.iter_mut().find(|(k, _)| *k == g) {
                Some((_, v)) => v.push(task),
                None => groups.push((g, vec![task])),
            }
        }
        for ((stage, resources), mut tasks) in groups {
            while !tasks.is_empty() {
                let rest = tasks.split_off(tasks.len().min(self.opts.max_array.max(1)));
                self.submit(&stage, &resources, tasks);
                tasks = rest;
            }
        }
        self.next_poll = Instant::now() + self.opts.poll;
    }

    /// Submits one array, under the locks of its keys: an instance whose recorded task is
    /// still queued is re-attached to, one published meanwhile is done, the rest go to sbatch.
    fn submit(&mut self, stage: &str, resources: &Resources, mut tasks: Vec<Task>) {
        let t0 = Instant::now();
        tasks.sort_by_key(|t| t.job.key);
        let mut locks = Vec::new();
        for t in &tasks {
            match self.ledger.lock(&t.job.key) {
                Ok(l) => locks.push(l),
                Err(e) => return self.fail_all(tasks, e, t0),
            }
        }
        // Asked only now, under the locks: a task another coordinator just submitted is in it.
        let queue = match self.query.queue() {
            Ok(q) => q,
            Err(e) => return self.fail_all(tasks, e, t0),
        };
        let mut new = Vec::new();
        for task in tasks {
            let key = task.job.key;
            if let Some(rec) = self.ledger.get(&key) {
                let id = rec.task_id().or_else(|| self.found(&rec, &queue));
                if let Some(id) = id.filter(|id| queue.contains_key(id)) {
                    self.attached += 1;
                    let rec = self.recorded(&key, rec, &id);
                    self.track(task, id, rec);
                    continue;
                }
                if let Ok(Some(result)) = self.published(&task.job) {
                    self.end(task, Outcome::Cached(result), t0);
                    continue;
                }
            }
            new.push(task);
        }
        if !new.is_empty()
            && let Err(e) = self.sbatch(stage, resources, &mut new)
        {
            self.fail_all(new, e, t0);
        }
        drop(locks);
    }

    /// Saves the jobs, submits them as one array and records each task; `tasks` is left
    /// holding those that could not be submitted. Each record is written before sbatch runs
    /// too ([`ledger::SUBMITTING`]), so a coordinator killed meanwhile finds the array.
    fn sbatch(&mut self, stage: &str, r: &Resources, tasks: &mut Vec<Task>) -> Result<(), String> {
        let digests = tasks
            .iter()
            .map(|t| t.job.save(&self.store))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(t) = &self.through {
            for (task, job) in tasks.iter().zip(&digests) {
                self.send(t, task, job)?;
            }
        }
        let list = self.ledger.write_list(&digests)?;
        let dir = self.ledger.dir.clone();
        let node_log = self.node_log().map(str::to_string);
        let record = |task: &Task, id: &str, job| Record {
            task: id.to_string(),
            list: list.clone(),
            instance: task.job.instance.clone(),
            job,
            log: log_path(node_log.as_deref(), &dir, id),
            exit_file: dir.join(format!("exit/{id}")),
            submitted_unix_ms: ledger::now_ms(),
        };
        for (task, job) in tasks.iter().zip(&digests) {
            self.ledger
                .put(&task.job.key, &record(task, ledger::SUBMITTING, *job))?;
        }
        let log = match &node_log {
            Some(pattern) => PathBuf::from(pattern),
            None => dir.join("logs/%A_%a.log"),
        };
        let mut flags = sbatch::flags(&self.opts, stage, r, tasks.len(), &log);
        flags.push(format!("--comment={}", ledger::comment(&list)));
        let (script, env) = match (&self.through, &self.opts.node_store) {
            (Some(t), Some(node_store)) => (
                sbatch::node_script(&self.opts, node_store, &digests, &t.node),
                vec![("PRUNUS_SIGNING_KEY", t.signing_key.as_str())],
            ),
            _ => (
                sbatch::script(&self.opts, self.store.root(), &list, &dir.join("exit")),
                Vec::new(),
            ),
        };
        let array = sbatch::submit(&flags, &script, &env).inspect_err(|_| {
            for t in tasks.iter() {
                self.ledger.remove(&t.job.key);
            }
        })?;
        for (n, (task, job)) in std::mem::take(tasks).into_iter().zip(digests).enumerate() {
            let id = TaskId {
                array: array.clone(),
                task: n as u32,
            };
            let rec = record(&task, &id.to_string(), job);
            if let Err(e) = self
                .ledger
                .put(&task.job.key, &rec)
                .and(self.ledger.note(&task.job.key, &rec))
            {
                task.reporter
                    .log(&format!("recording Slurm task {id}: {e}"));
            }
            self.submitted += 1;
            self.track(task, id, rec);
        }
        Ok(())
    }

    /// The task of a record written while sbatch ran, if its array is queued: the task whose
    /// line of the array's job list is the record's job.
    fn found(&self, rec: &Record, queue: &HashMap<TaskId, Queued>) -> Option<TaskId> {
        let comment = rec.comment();
        let (id, _) = queue.iter().find(|(_, q)| q.comment == comment)?;
        let list = std::fs::read_to_string(&rec.list).ok()?;
        let line = list.lines().position(|l| l == rec.job.to_string())?;
        Some(TaskId {
            array: id.array.clone(),
            task: line as u32,
        })
    }

    /// `rec` naming task `id` (rewritten if it was written while sbatch ran).
    fn recorded(&self, key: &prunus_store::Digest, rec: Record, id: &TaskId) -> Record {
        if rec.task_id().is_some() {
            return rec;
        }
        let rec = Record {
            task: id.to_string(),
            log: self.log_path(&id.to_string()),
            exit_file: self.ledger.dir.join(format!("exit/{id}")),
            ..rec
        };
        let _ = self.ledger.put(key, &rec).and(self.ledger.note(key, &rec));
        rec
    }

    fn track(&mut self, task: Task, id: TaskId, record: Record) {
        task.reporter.log(&format!("Slurm job {id}"));
        let tail = LogTail::new(record.log.clone());
        let since = Instant::now();
        self.tracked.push(Tracked {
            task,
            id,
            record,
            since,
            tail,
            gone: 0,
        });
    }

    fn fail_all(&mut self, tasks: Vec<Task>, error: String, since: Instant) {
        for task in tasks {
            self.end(task, Outcome::Failed(error.clone(), Vec::new()), since);
        }
    }
}

impl SlurmExecutor {
    /// One look at the cluster: published results end their tasks; running tasks' logs feed
    /// their bars; tasks that left the queue without a result failed, with Slurm's reason.
    fn poll(&mut self) {
        // Gentler on a big cluster's controller: every poll interval per thousand tasks.
        let scale = 1.0 + self.tracked.len() as f64 / 1000.0;
        self.next_poll = Instant::now() + self.opts.poll.mul_f64(scale);
        if self.tracked.is_empty() {
            return;
        }
        let queue = match self.query.queue() {
            Ok(q) => q,
            Err(e) => {
                eprintln!("! asking Slurm about the jobs: {e} (retrying)");
                return;
            }
        };
        let read_logs = Instant::now() >= self.next_tail;
        if read_logs {
            self.next_tail = Instant::now() + Duration::from_secs(1);
        }
        let mut gone = Vec::new();
        let mut k = 0;
        while k < self.tracked.len() {
            let t = &mut self.tracked[k];
            let queued = queue.get(&t.id);
            if read_logs && queued.is_some_and(|q| q.running()) {
                t.tail.poll(&t.task.job.instance, t.task.reporter.as_ref());
            }
            // Only a task that is ending can have published (the store is not read for the
            // thousands that pend).
            let ending = queued.is_none_or(|q| q.state == "COMPLETING");
            let published = if ending {
                self.published(&self.tracked[k].task.job)
            } else {
                Ok(None)
            };
            match published {
                Ok(None) => {}
                Ok(Some(result)) => {
                    let mut t = self.tracked.remove(k);
                    t.tail.poll(&t.task.job.instance, t.task.reporter.as_ref());
                    self.end(t.task, Outcome::Published(result), t.since);
                    continue;
                }
                // Refused (untrusted, corrupt): what the job made cannot be used.
                Err(e) if queued.is_none() => {
                    let t = self.tracked.remove(k);
                    self.end(t.task, Outcome::Failed(e, Vec::new()), t.since);
                    continue;
                }
                Err(_) => {}
            }
            let t = &mut self.tracked[k];
            match queued {
                None => gone.push(t.id.clone()),
                Some(_) => t.gone = 0,
            }
            k += 1;
        }
        if !gone.is_empty() {
            let ended = self.query.ended(&gone);
            for id in gone {
                self.settle(&id, ended.get(&id));
            }
        }
    }

    /// A task that left the queue: failed (with why and its log's tail) unless it was
    /// requeued, or published after all.
    fn settle(&mut self, id: &TaskId, ended: Option<&crate::state::Ended>) {
        let Some(k) = self.tracked.iter().position(|t| &t.id == id) else {
            return;
        };
        if ended.is_some_and(|e| !e.is_final()) {
            return;
        }
        let exit = read_exit(&self.tracked[k].record.exit_file);
        // An ending must hold for two polls: a requeued task (preempted, `scontrol requeue`)
        // shows as FAILED or PREEMPTED, and leaves the queue, for a moment. One Slurm knows
        // nothing of yet gets a few polls.
        let unsure =
            (ended.is_none() && exit.is_none()) || ended.is_some_and(|e| e.state == "PREEMPTED");
        self.tracked[k].gone += 1;
        if self.tracked[k].gone < if unsure { 4 } else { 2 } {
            return;
        }
        let mut t = self.tracked.remove(k);
        t.tail.poll(&t.task.job.instance, t.task.reporter.as_ref());
        if let Ok(Some(result)) = self.published(&t.task.job) {
            return self.end(t.task, Outcome::Published(result), t.since);
        }
        let r = t.task.job.resources;
        let warn = r
            .time_s
            .or(self.opts.time_s)
            .map_or(0, |t| self.opts.warning_s(t));
        let msg = report::failure(id, ended, exit, warn);
        let log = tail::last_lines(&t.record.log, 20);
        self.end(t.task, Outcome::Failed(msg, log), t.since);
    }

    /// Ctrl-C: the coordinator stops waiting, but its Slurm jobs keep running (the next run
    /// re-attaches to them); what was not submitted yet is not.
    fn let_go(&mut self) {
        self.let_go = true;
        let left: Vec<String> = self.tracked.iter().map(|t| t.id.to_string()).collect();
        if !left.is_empty() {
            eprintln!(
                "{} Slurm job(s) keep running ({}); `prunus run --executor slurm` again re-attaches to them (scancel stops them)",
                left.len(),
                left.join(" ")
            );
        }
        for t in std::mem::take(&mut self.tracked) {
            self.end(t.task, Outcome::Cancelled, t.since);
        }
        for task in std::mem::take(&mut self.queued) {
            self.end(task, Outcome::Cancelled, Instant::now());
        }
    }
}

/// Task `id`'s log: `<ledger>/logs/<id>.log`, or `node_log` with Slurm's `%A`/`%a` filled in.
fn log_path(node_log: Option<&str>, ledger: &std::path::Path, id: &str) -> PathBuf {
    match (node_log, id.split_once('_')) {
        (Some(pattern), Some((array, task))) => {
            PathBuf::from(pattern.replace("%A", array).replace("%a", task))
        }
        _ => ledger.join(format!("logs/{id}.log")),
    }
}

/// `prunus exec`'s exit file: its code and one line of how it ended.
fn read_exit(path: &std::path::Path) -> Option<(i32, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let code = lines.next()?.trim().parse().ok()?;
    Some((code, lines.next().unwrap_or("").to_string()))
}

impl Executor for SlurmExecutor {
    fn refuses(&self, _: &Resources) -> Option<String> {
        None // sbatch says what the cluster cannot give
    }

    fn has_room(&self, _: &Resources) -> bool {
        true // Slurm queues
    }

    fn start(&mut self, task: Task) {
        self.queued.push(task);
    }

    fn wait(&mut self, timeout: Duration) -> Option<Finished> {
        if let Some(f) = self.finished.pop_front() {
            return Some(f);
        }
        let cancelled = |t: &Task| t.cancel.load(std::sync::atomic::Ordering::Relaxed);
        if !self.let_go
            && (self.tracked.iter().any(|t| cancelled(&t.task))
                || self.queued.iter().any(cancelled))
        {
            self.let_go();
            return self.finished.pop_front();
        }
        if !self.queued.is_empty() {
            self.flush();
            if let Some(f) = self.finished.pop_front() {
                return Some(f);
            }
        }
        let now = Instant::now();
        if now < self.next_poll {
            std::thread::sleep(timeout.min(self.next_poll - now));
            if Instant::now() < self.next_poll {
                return None;
            }
        }
        self.poll();
        self.finished.pop_front()
    }
}
