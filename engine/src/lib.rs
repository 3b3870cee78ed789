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
pub mod executor;
pub mod export;
pub mod job;
pub mod key;
pub mod kinds;
pub mod lower;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod run;
pub mod sweep;

use std::path::{Path, PathBuf};

pub use diagnostic::PipelineError;
pub use lower::Graph;
pub use registry::Registry;
pub use run::{RunOptions, Summary};

/// Everything the engine reports; pipeline errors carry source spans.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Store(#[from] prunus_store::StoreError),
    #[error("cannot read {path}, listed in `deps` of {instance}: {source}")]
    #[diagnostic(help(
        "`deps` paths are relative to the pipeline file; create the file or fix the path"
    ))]
    Deps {
        instance: String,
        path: String,
        source: std::io::Error,
    },
    #[error("no instance is named `{0}` or starts with `{0}/`")]
    #[diagnostic(help("`prunus plan <pipeline>` lists every instance"))]
    NoSuchInstance(String),
    #[error("{0} cannot run yet: {1}")]
    #[diagnostic(help("run its upstream first: `prunus run PIPELINE UPSTREAM-INSTANCE`"))]
    NotReady(String, String),
    #[error("cannot export results to {0}: {1}")]
    #[diagnostic(help(
        "make the results directory writable, or set `results \"<dir>\"` in the pipeline"
    ))]
    Export(PathBuf, std::io::Error),
}

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
