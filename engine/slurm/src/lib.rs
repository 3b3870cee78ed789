//! The Slurm executor of prunus: `prunus run --executor slurm` submits each ready stage
//! instance as a Slurm array task (one array per stage and resources) that runs `prunus exec`
//! against the store, which every node must see, or (`node-store`) against a store of its own on
//! its node, moving inputs and results through the run's remote. It implements the engine's
//! [`prunus_engine::executor::Executor`] by shelling out to what a cluster has: `sbatch`,
//! `squeue`, and `sacct` (or `scontrol show job` without accounting). It never cancels a job:
//! a stopped coordinator leaves its jobs running, and the next run re-attaches to them.
//!
//! | module | what |
//! |---|---|
//! | [`options`] | partition, account, QoS, time, extra sbatch flags |
//! | [`sbatch`] | resources -> flags, the batch script, submitting |
//! | [`state`] / [`query`] | job states from squeue, sacct, scontrol |
//! | [`ledger`] | which task runs which instance, in the store: restarts re-attach |
//! | [`tail`] | progress and log lines from a running task's log |
//! | [`report`] | why a task failed, in words |
//! | [`estimate`] | what `prunus plan --executor slurm` would submit, and its GPU-hours |
//! | [`executor`] | [`SlurmExecutor`], and [`Through`] for nodes without the store |

pub mod estimate;
pub mod executor;
pub mod ledger;
pub mod options;
pub mod query;
pub mod report;
pub mod sbatch;
pub mod state;
pub mod tail;

pub use executor::{SlurmExecutor, Through};
pub use options::SlurmOptions;
