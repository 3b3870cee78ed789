//! [`SlurmExecutor`]: the scheduler's ready instances become Slurm array tasks that run
//! `prunus exec` against the same store. `start` only queues; the next `wait` submits what was
//! queued, one array per stage and resources, and then polls Slurm for the tasks it tracks. A
//! result published in the store is the task's success; a task that leaves the queue without
//! one failed, and its Slurm state says why.

use std::collections::{HashMap, VecDeque};
use std::process::Command;
use std::time::{Duration, Instant};

use prunus_engine::executor::{Executor, Finished, Task};
use prunus_engine::job::Outcome;
use prunus_stage::{Reporter, Resources};
use prunus_store::Store;

use crate::ledger::{self, Ledger, Record};
use crate::options::SlurmOptions;
use crate::query::Query;
use crate::state::{Queued, TaskId};
use crate::tail::{self, LogTail};
use crate::{report, sbatch};

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
        })
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
                if let Ok(Some(result)) = self.store.lookup(&key) {
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
        let list = self.ledger.write_list(&digests)?;
        let dir = self.ledger.dir.clone();
        let record = |task: &Task, id: &str, job| Record {
            task: id.to_string(),
            list: list.clone(),
            instance: task.job.instance.clone(),
            job,
            log: dir.join(format!("logs/{id}.log")),
            exit_file: dir.join(format!("exit/{id}")),
            submitted_unix_ms: ledger::now_ms(),
        };
        for (task, job) in tasks.iter().zip(&digests) {
            self.ledger
                .put(&task.job.key, &record(task, ledger::SUBMITTING, *job))?;
        }
        let mut flags = sbatch::flags(
            &self.opts,
            stage,
            r,
            tasks.len(),
            &dir.join("logs/%A_%a.log"),
        );
        flags.push(format!("--comment={}", ledger::comment(&list)));
        let script = sbatch::script(&self.opts, self.store.root(), &list, &dir.join("exit"));
        let array = sbatch::submit(&flags, &script).inspect_err(|_| {
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
        let dir = &self.ledger.dir;
        let rec = Record {
            task: id.to_string(),
            log: dir.join(format!("logs/{id}.log")),
            exit_file: dir.join(format!("exit/{id}")),
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
            if let Some(result) = ending
                .then(|| self.store.lookup(&t.task.job.key).ok().flatten())
                .flatten()
            {
                let mut t = self.tracked.remove(k);
                t.tail.poll(&t.task.job.instance, t.task.reporter.as_ref());
                self.end(t.task, Outcome::Published(result), t.since);
                continue;
            }
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
        if let Ok(Some(result)) = self.store.lookup(&t.task.job.key) {
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
