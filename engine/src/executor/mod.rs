//! Where stage instances run. The scheduler ([`crate::run`]) decides *what* is ready, in
//! dependency order; an [`Executor`] decides *where and when* each ready [`Job`] runs and
//! reports back when it finishes. The [`local`] executor runs jobs on this machine's slots;
//! a cluster executor submits each job to a batch system, where `prunus exec` runs it against
//! the same store.

pub mod fit;
pub mod local;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use prunus_stage::{Resources, StageKind};

use crate::job::{Job, Outcome};
use crate::progress::StageReporter;

pub use local::LocalExecutor;

/// A ready instance handed to an executor.
pub struct Task {
    /// The instance's index in the graph, returned in [`Finished`].
    pub index: usize,
    pub job: Job,
    /// The kind that runs it (its name and version are `job`'s, checked).
    pub kind: Arc<dyn StageKind>,
    /// Receives its progress and log; drives its progress bar.
    pub reporter: Arc<StageReporter>,
    /// Set on Ctrl-C: the job checkpoints and ends [`Outcome::Cancelled`].
    pub cancel: Arc<AtomicBool>,
}

/// A task that ended, how, and after how long.
pub struct Finished {
    pub index: usize,
    pub outcome: Outcome,
    pub secs: f64,
}

/// Runs ready jobs. The scheduler asks [`Executor::has_room`] before each
/// [`Executor::start`], and collects endings with [`Executor::wait`] until every started task
/// has finished.
pub trait Executor {
    /// Why a job needing `r` can never run here (e.g. it needs a GPU the run was not given);
    /// the scheduler fails it with this message instead of waiting forever.
    fn refuses(&self, r: &Resources) -> Option<String>;
    /// What this executor can ever give one job, where it knows (the local executor: this
    /// machine): the scheduler reports instances needing more before anything runs.
    fn room(&self) -> Option<local::Slots> {
        None
    }
    /// Whether a job needing `r` can start now.
    fn has_room(&self, r: &Resources) -> bool;
    /// Starts a task ([`Executor::has_room`] said yes); its ending comes from `wait`.
    fn start(&mut self, task: Task);
    /// The next task to finish, waiting at most `timeout`.
    fn wait(&mut self, timeout: Duration) -> Option<Finished>;
}
