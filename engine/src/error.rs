//! The engine's error type.

use std::path::PathBuf;

use crate::diagnostic::PipelineError;

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
    #[error(
        "pipeline `{name}` in {this} has the same name as {other}, which {place} already records",
        this = this.display(),
        other = other.display()
    )]
    #[diagnostic(help(
        "their refs and results would overwrite each other; give one of them its own name \
         (`pipeline \"<name>\"` at the top of the file) or its own store and `results` folder. \
         If this file replaces the other, delete or move the other file first: a name whose \
         file no longer exists is taken over"
    ))]
    NameTaken {
        name: String,
        this: PathBuf,
        other: PathBuf,
        place: String,
    },
    #[error("cannot export results to {0}: {1}")]
    #[diagnostic(help(
        "make the results directory writable, or set `results \"<dir>\"` in the pipeline"
    ))]
    Export(PathBuf, std::io::Error),
}
