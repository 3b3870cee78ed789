//! The local executor: runs jobs in threads of this process, packed into the machine's cpu,
//! gpu and memory slots. An instance asking for more cpus or memory than the run has is
//! clamped (it runs alone); one asking for a GPU the run lacks is refused. Each GPU takes up to
//! `runs_per_gpu` instances side by side (the paper's networks leave a large GPU mostly idle),
//! and each instance is told which GPUs are its own.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use prunus_stage::Resources;
use prunus_store::Store;

use super::{Executor, Finished, Task};
use crate::job;

/// What a run may use on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    pub cpus: u32,
    pub gpus: u32,
    pub memory_mb: u64,
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

    fn fits(&self, r: Slots) -> bool {
        r.cpus <= self.cpus && r.gpus <= self.gpus && r.memory_mb <= self.memory_mb
    }
}

pub struct LocalExecutor {
    store: Store,
    capacity: Slots,
    free: Slots,
    /// What each running task holds, by graph index, and its GPU ordinals.
    held: Vec<(usize, Slots, Vec<usize>)>,
    /// Instances running on each GPU, and how many may.
    gpu_load: Vec<u32>,
    runs_per_gpu: u32,
    tx: mpsc::Sender<Finished>,
    rx: mpsc::Receiver<Finished>,
}

impl LocalExecutor {
    pub fn new(store: Store, capacity: Slots) -> LocalExecutor {
        let capacity = Slots {
            cpus: capacity.cpus.max(1),
            gpus: capacity.gpus,
            memory_mb: capacity.memory_mb.max(1),
        };
        let (tx, rx) = mpsc::channel();
        LocalExecutor {
            store,
            capacity,
            free: capacity,
            held: Vec::new(),
            gpu_load: vec![0; capacity.gpus as usize],
            runs_per_gpu: 1,
            tx,
            rx,
        }
    }

    /// Lets up to `n` instances share each GPU (at least 1).
    pub fn runs_per_gpu(mut self, n: u32) -> LocalExecutor {
        self.runs_per_gpu = n.max(1);
        self
    }

    /// What a job needing `r` occupies here besides GPUs (clamped to the machine).
    fn need(&self, r: &Resources) -> Slots {
        Slots {
            cpus: r.cpus.clamp(1, self.capacity.cpus),
            gpus: 0,
            memory_mb: r.memory_mb.min(self.capacity.memory_mb),
        }
    }

    /// The `n` least-loaded GPUs with room for one more instance, if there are `n`.
    fn pick_gpus(&self, n: u32) -> Option<Vec<usize>> {
        let mut open: Vec<usize> = (0..self.gpu_load.len())
            .filter(|&g| self.gpu_load[g] < self.runs_per_gpu)
            .collect();
        open.sort_by_key(|&g| (self.gpu_load[g], g));
        (open.len() >= n as usize).then(|| open[..n as usize].to_vec())
    }
}

impl Executor for LocalExecutor {
    fn refuses(&self, r: &Resources) -> Option<String> {
        (r.gpus > self.capacity.gpus).then(|| {
            format!(
                "needs {} GPU(s) but this run has {} (pass --gpus N on a GPU machine, or lower `resources gpus=`)",
                r.gpus, self.capacity.gpus
            )
        })
    }

    fn room(&self) -> Option<Slots> {
        let c = self.capacity;
        Some(Slots::this_machine(c.cpus, c.gpus, c.memory_mb))
    }

    fn has_room(&self, r: &Resources) -> bool {
        self.free.fits(self.need(r)) && self.pick_gpus(r.gpus).is_some()
    }

    fn start(&mut self, task: Task) {
        let need = self.need(&task.job.resources);
        let gpus = self
            .pick_gpus(task.job.resources.gpus)
            .expect("start without a GPU");
        assert!(self.free.take(need), "start without room");
        gpus.iter().for_each(|&g| self.gpu_load[g] += 1);
        self.held.push((task.index, need, gpus.clone()));
        let (store, tx) = (self.store.clone(), self.tx.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let outcome = job::execute(
                &task.job,
                task.kind.as_ref(),
                &store,
                &task.reporter,
                &gpus,
                task.cancel,
            );
            task.reporter.done();
            let _ = tx.send(Finished {
                index: task.index,
                outcome,
                secs: t0.elapsed().as_secs_f64(),
            });
        });
    }

    fn wait(&mut self, timeout: Duration) -> Option<Finished> {
        let finished = self.rx.recv_timeout(timeout).ok()?;
        if let Some(k) = self.held.iter().position(|(i, ..)| *i == finished.index) {
            let (_, slots, gpus) = self.held.swap_remove(k);
            self.free.give(slots);
            gpus.iter().for_each(|&g| self.gpu_load[g] -= 1);
        }
        Some(finished)
    }
}
