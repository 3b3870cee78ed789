//! The contract between the engine and the science: a [`StageKind`] declares its parameters
//! (with typed defaults), its version, whether it is deterministic, its resources and its
//! outputs, and [`StageKind::run`]s against a [`Context`] that the engine builds.
//!
//! Parameters are flat, dotted keys. A pipeline node `prune "gmp" sparsity=0.95 start=0.2`
//! becomes `prune = "gmp"`, `prune.sparsity = 0.95`, `prune.start = 0.2`; a node with several
//! arguments (`group-by "width" "sparsity"`) becomes a [`Value::List`]. The kind's
//! [`ParamSpec`]s list every key it accepts, so the engine can fill defaults, reject unknown
//! keys and check types before anything runs, and the cache key covers the resolved values.
//!
//! Outputs are files: the kind writes each declared output to [`Context::output`] and the
//! engine stores them (content-addressed) only after `run` returns `Ok`, so a failed or
//! interrupted stage publishes nothing.
//!
//! What a long stage keeps in its [`Context::scratch`] to resume from is written as a
//! [`sealed`] file, so that a damaged checkpoint is refused rather than resumed from.

pub mod sealed;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// A resolved parameter value. Floats and integers are kept apart so that the canonical
/// encoding (and thus the cache key) of `3` and `3.0` is well defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::List(items) => {
                let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", parts.join(", "))
            }
        }
    }
}

/// The declared type of a parameter; `Float` accepts integer literals too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Bool,
    Int,
    Float,
    Str,
    /// A list of strings (e.g. `group-by "width" "sparsity"`).
    StrList,
    /// A list of numbers (e.g. `checkpoints 0.25 0.5 1.0`).
    FloatList,
    /// A list of file paths relative to the pipeline file (e.g. a script a `command` runs):
    /// their contents, not just their names, are part of the cache key, so editing the
    /// script reruns the stage.
    Paths,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamType::Bool => "a boolean (#true / #false)",
            ParamType::Int => "an integer",
            ParamType::Float => "a number",
            ParamType::Str => "a string",
            ParamType::StrList => "a list of strings",
            ParamType::FloatList => "a list of numbers",
            ParamType::Paths => "a list of file paths",
        })
    }
}

/// One parameter a stage kind accepts. `default: None` means the pipeline must set it.
#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub key: &'static str,
    pub ty: ParamType,
    pub default: Option<Value>,
    /// One line shown by `prunus kinds` and in "unknown key" hints.
    pub doc: &'static str,
}

impl ParamSpec {
    pub fn new(
        key: &'static str,
        ty: ParamType,
        default: Option<Value>,
        doc: &'static str,
    ) -> Self {
        ParamSpec {
            key,
            ty,
            default,
            doc,
        }
    }
}

/// Fully resolved parameters (defaults filled in), ordered by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Params(pub BTreeMap<String, Value>);

impl Params {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn str(&self, key: &str) -> Result<&str, StageError> {
        match self.get(key) {
            Some(Value::Str(s)) => Ok(s),
            other => Err(StageError::param(key, "a string", other)),
        }
    }

    pub fn f64(&self, key: &str) -> Result<f64, StageError> {
        match self.get(key) {
            Some(Value::Float(x)) => Ok(*x),
            Some(Value::Int(i)) => Ok(*i as f64),
            other => Err(StageError::param(key, "a number", other)),
        }
    }

    pub fn i64(&self, key: &str) -> Result<i64, StageError> {
        match self.get(key) {
            Some(Value::Int(i)) => Ok(*i),
            other => Err(StageError::param(key, "an integer", other)),
        }
    }

    pub fn u64(&self, key: &str) -> Result<u64, StageError> {
        let i = self.i64(key)?;
        u64::try_from(i).map_err(|_| StageError::Param {
            key: key.to_string(),
            message: format!("must not be negative, got {i}"),
        })
    }

    pub fn bool(&self, key: &str) -> Result<bool, StageError> {
        match self.get(key) {
            Some(Value::Bool(b)) => Ok(*b),
            other => Err(StageError::param(key, "a boolean", other)),
        }
    }

    pub fn strs(&self, key: &str) -> Result<Vec<String>, StageError> {
        match self.get(key) {
            Some(Value::List(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Ok(s.clone()),
                    other => Err(StageError::param(key, "a list of strings", Some(other))),
                })
                .collect(),
            Some(Value::Str(s)) => Ok(vec![s.clone()]),
            other => Err(StageError::param(key, "a list of strings", other)),
        }
    }

    pub fn f64s(&self, key: &str) -> Result<Vec<f64>, StageError> {
        match self.get(key) {
            Some(Value::List(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Float(x) => Ok(*x),
                    Value::Int(i) => Ok(*i as f64),
                    other => Err(StageError::param(key, "a list of numbers", Some(other))),
                })
                .collect(),
            Some(Value::Float(x)) => Ok(vec![*x]),
            Some(Value::Int(i)) => Ok(vec![*i as f64]),
            other => Err(StageError::param(key, "a list of numbers", other)),
        }
    }
}

/// What one instance of the stage occupies while it runs; the local executor packs instances
/// into the machine's slots, the Slurm executor turns it into `--cpus-per-task`/`--gres`/`--mem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpus: u32,
    pub gpus: u32,
    pub memory_mb: u64,
    /// One instance's wall-clock limit in seconds (`resources time="12h"`): a batch system's
    /// time limit (Slurm's `--time`); the local executor does not enforce it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_s: Option<u64>,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpus: 1,
            gpus: 0,
            memory_mb: 1024,
            time_s: None,
        }
    }
}

/// One upstream instance as seen by a downstream stage: which stage and instance it is, its
/// sweep coordinates, and where its outputs were materialised (read-only files).
#[derive(Debug, Clone)]
pub struct Input {
    /// The upstream stage's name in the pipeline, e.g. `train`.
    pub stage: String,
    /// The instance name, e.g. `train/breakout/w3/s0.95/seed1`.
    pub instance: String,
    /// Sweep axis values of the instance (`game`, `seed`, `width`, ...).
    pub axes: BTreeMap<String, Value>,
    /// Output name -> file path.
    pub outputs: BTreeMap<String, PathBuf>,
}

impl Input {
    pub fn output(&self, name: &str) -> Result<&Path, StageError> {
        self.outputs.get(name).map(PathBuf::as_path).ok_or_else(|| {
            StageError::Failed(format!(
                "upstream instance {} has no output named `{name}` (it has: {})",
                self.instance,
                self.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// Receives progress and log lines from a running stage; the engine draws progress bars and
/// captures the log into the store.
pub trait Reporter: Send + Sync {
    /// `done` out of `total` units (`unit` is e.g. "steps"); called often, must be cheap.
    fn progress(&self, done: u64, total: u64, unit: &str);
    /// One human-readable log line.
    fn log(&self, line: &str);
}

/// A reporter that drops everything (unit tests, benchmarks).
pub struct Silent;

impl Reporter for Silent {
    fn progress(&self, _: u64, _: u64, _: &str) {}
    fn log(&self, _: &str) {}
}

/// Everything a running stage instance may touch.
pub struct Context {
    /// The instance name (for messages).
    pub instance: String,
    /// This instance's sweep coordinates.
    pub axes: BTreeMap<String, Value>,
    pub params: Params,
    /// Upstream instances, in a stable order (by instance name).
    pub inputs: Vec<Input>,
    /// Directory where declared outputs are written; the engine stores what is there.
    pub out_dir: PathBuf,
    /// Checkpoint scratch keyed by the stage key: survives a kill, so a rerun resumes. Write
    /// what you resume from as [`sealed`] files (`prunus store verify` checks them).
    pub scratch: PathBuf,
    pub reporter: Arc<dyn Reporter>,
    /// The GPUs this instance was given, as the driver numbers them (empty when its
    /// `resources` ask for none); instances may share a GPU (`prunus run --runs-per-gpu`).
    pub gpus: Vec<usize>,
    /// Set on Ctrl-C: long stages checkpoint and return [`StageError::Cancelled`].
    pub cancel: Arc<AtomicBool>,
}

impl Context {
    /// The path where output `name` must be written.
    pub fn output(&self, name: &str) -> PathBuf {
        self.out_dir.join(name)
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub fn log(&self, line: impl AsRef<str>) {
        self.reporter.log(line.as_ref());
    }

    pub fn progress(&self, done: u64, total: u64, unit: &str) {
        self.reporter.progress(done, total, unit);
    }

    /// A context over temporary directories, for unit tests of stage kinds.
    pub fn for_test(
        params: Params,
        inputs: Vec<Input>,
        out_dir: PathBuf,
        scratch: PathBuf,
    ) -> Self {
        Context {
            instance: "test".into(),
            axes: BTreeMap::new(),
            params,
            inputs,
            out_dir,
            scratch,
            reporter: Arc::new(Silent),
            gpus: vec![0],
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Why a stage instance did not produce its outputs.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("parameter `{key}`: {message}")]
    Param { key: String, message: String },
    #[error("cancelled (progress is kept in the checkpoint scratch; rerun to resume)")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl StageError {
    fn param(key: &str, expected: &str, got: Option<&Value>) -> Self {
        let message = match got {
            None => format!("missing; expected {expected}"),
            Some(v) => format!("expected {expected}, got `{v}`"),
        };
        StageError::Param {
            key: key.to_string(),
            message,
        }
    }

    /// Wraps any displayable error as a stage failure.
    pub fn failed(e: impl fmt::Display) -> Self {
        StageError::Failed(e.to_string())
    }
}

/// A kind of stage (`train/dqn`, `probe`, `aggregate/iqm`, `figure/scaling`, `command`, ...).
pub trait StageKind: Send + Sync {
    /// The name used in pipelines: `kind "train/dqn"`.
    fn name(&self) -> &'static str;
    /// Bumped whenever results would change, a parameter's default included (keys hold only
    /// the parameters that differ from their defaults); part of every cache key.
    fn version(&self) -> u32;
    /// One paragraph for `prunus kinds` / `--help`.
    fn doc(&self) -> &'static str;
    /// Whether an instance with these (resolved) parameters produces the same outputs bit for
    /// bit on every run. Deterministic instances let downstream keys use output digests (early
    /// cutoff); nondeterministic ones (GPU training) are named downstream by their key, so a
    /// rerun does not cascade.
    fn deterministic(&self, params: &Params) -> bool;
    /// Every accepted parameter, with its type and default.
    fn params(&self) -> Vec<ParamSpec>;
    /// Names of the output files `run` must produce for these parameters.
    fn outputs(&self, params: &Params) -> Vec<String>;
    fn resources(&self, _params: &Params) -> Resources {
        Resources::default()
    }
    /// A rough estimate of one instance's wall-clock seconds on the resources it asks for:
    /// `prunus plan --executor slurm` sums it into GPU-hours before a cluster is asked for
    /// them. `None` (the default) when the kind cannot say.
    fn estimate_secs(&self, _params: &Params) -> Option<f64> {
        None
    }
    /// Checks these (resolved) parameters as `run` will read them, so that `prunus plan`
    /// reports a value the kind cannot use at the pipeline line that set it, before anything
    /// runs. Implement it with the function `run` turns parameters into its config with, so
    /// plan and run cannot disagree; a [`StageError::Param`] names the key the engine points
    /// at. Must be cheap (it runs once per instance) and must not touch files or devices.
    fn validate(&self, _params: &Params) -> Result<(), StageError> {
        Ok(())
    }
    fn run(&self, ctx: &Context) -> Result<(), StageError>;
}

/// Every stage kind a crate contributes, for the engine's registry.
pub type Kinds = Vec<Arc<dyn StageKind>>;
