//! The local executor: runs jobs in threads of this process, packed into the machine's cpu,
//! gpu and memory slots. An instance asking for more cpus or memory than the run has is
//! clamped (it runs alone); one asking for a GPU the run lacks is refused.

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
    /// What each running task holds, by graph index.
    held: Vec<(usize, Slots)>,
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
            tx,
            rx,
        }
    }

    /// What a job needing `r` occupies here (clamped to the machine).
    fn need(&self, r: &Resources) -> Slots {
        Slots {
            cpus: r.cpus.clamp(1, self.capacity.cpus),
            gpus: r.gpus,
            memory_mb: r.memory_mb.min(self.capacity.memory_mb),
        }
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
        self.free.fits(self.need(r))
    }

    fn start(&mut self, task: Task) {
        let need = self.need(&task.job.resources);
        assert!(self.free.take(need), "start without room");
        self.held.push((task.index, need));
        let (store, tx) = (self.store.clone(), self.tx.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let outcome = job::execute(
                &task.job,
                task.kind.as_ref(),
                &store,
                &task.reporter,
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
        if let Some(k) = self.held.iter().position(|(i, _)| *i == finished.index) {
            let (_, slots) = self.held.swap_remove(k);
            self.free.give(slots);
        }
        Some(finished)
    }
}
