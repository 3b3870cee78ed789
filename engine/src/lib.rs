//! The prunus engine: a KDL pipeline becomes a graph of stage instances
//! ([`pipeline`] -> [`lower`]), each with a cache key ([`key`]); [`plan`] says what is
//! cached and why the rest must run; [`run`] schedules the rest, each instance as a
//! serialisable [`job::Job`] on an [`executor::Executor`], against a content-addressed store.
//!
//! ```text
//! pipeline.kdl --pipeline::load--> Pipeline --lower--> Graph --plan--> Entries --run--> Store
//!                  (diagnostic)        (sweep, registry)        (key)      (job, executor)
//! ```
//!
//! The engine knows no science: stage kinds come in through a [`Registry`] (the `prunus`
//! binary adds every kind the science crates ship).

pub mod diagnostic;
mod error;
pub mod executor;
pub mod export;
pub mod identity;
pub mod job;
pub mod key;
pub mod kinds;
pub mod lower;
pub mod pipeline;
mod plain_kdl;
pub mod plan;
mod prescan;
mod process;
pub mod progress;
pub mod registry;
pub mod remote;
pub mod run;
pub mod sweep;

use std::path::Path;

pub use diagnostic::PipelineError;
pub use error::Error;
pub use lower::Graph;
pub use registry::Registry;
pub use remote::RemoteCache;
pub use run::{RunOptions, Summary};

/// Loads a pipeline file and resolves it against the kinds `registry` gives for the
/// pipeline's directory (where `command` stages resolve their paths).
pub fn load(path: &Path, registry: impl FnOnce(&Path) -> Registry) -> Result<Graph, Error> {
    let (pipeline, sources) = pipeline::load(path)?;
    let registry = registry(&pipeline.base_dir);
    Ok(lower::lower(&pipeline, &sources, &registry)?)
}

/// Parses and resolves pipeline text that is not in a file (tests, fuzzing); `include` is an
/// error and relative paths resolve against `registry`'s base directory.
pub fn load_str(name: &str, text: &str, registry: &Registry) -> Result<Graph, Error> {
    let (pipeline, sources) = pipeline::parse_str(name, text)?;
    Ok(lower::lower(&pipeline, &sources, registry)?)
}
