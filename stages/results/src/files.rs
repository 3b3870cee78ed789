//! The files of one training run (`train/*`) and of its probes (`probe`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::format::{CsvRow, JsonRecord, JsonStyle, ResultFile};

/// One iteration of a training run: a row of `returns.csv`.
///
/// An iteration in which no episode ended has no return: `None`, written `NaN`; readers take
/// an empty cell or `NaN` as `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReturnsRow {
    pub iteration: u64,
    pub env_steps: u64,
    pub grad_steps: u64,
    /// Mean undiscounted return of the training episodes that ended in this iteration.
    #[serde(serialize_with = "nan_if_none", deserialize_with = "none_if_nan")]
    pub train_return: Option<f64>,
    pub train_episodes: u64,
    /// Mean return of the evaluation episodes run after this iteration.
    #[serde(serialize_with = "nan_if_none", deserialize_with = "none_if_nan")]
    pub eval_return: Option<f64>,
    pub eval_episodes: u64,
    /// The network's measured sparsity at the end of the iteration.
    pub sparsity: f64,
}

impl ResultFile for ReturnsRow {
    const NAME: &'static str = "returns.csv";
}
impl CsvRow for ReturnsRow {}

fn nan_if_none<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(x.unwrap_or(f64::NAN))
}

fn none_if_nan<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.filter(|x| !x.is_nan()))
}

/// The sparsity of one layer after a pruning step: a row of `sparsity.csv`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SparsityRow {
    pub grad_steps: u64,
    pub layer: String,
    pub sparsity: f64,
}

impl ResultFile for SparsityRow {
    const NAME: &'static str = "sparsity.csv";
}
impl CsvRow for SparsityRow {}

/// One intermediate network of a training run: an entry of `checkpoints.json`, naming the
/// snapshot file the `probe` stage reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckpointEntry {
    /// Position in the run's `checkpoints` parameter.
    pub index: usize,
    /// Fraction of training at which the snapshot was taken.
    pub fraction: f64,
    pub file: String,
    pub iteration: u64,
    pub env_steps: u64,
    pub grad_steps: u64,
}

impl ResultFile for CheckpointEntry {
    const NAME: &'static str = "checkpoints.json";
}
impl JsonRecord for CheckpointEntry {
    const STYLE: JsonStyle = JsonStyle::Pretty;
}

/// One probe's value at one checkpoint: a row of `probes.csv`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeRow {
    pub env_steps: u64,
    /// `q_target_variance`, `param_norm`, `q_norm`, `srank`, `dormant_tau<tau>`...
    pub probe: String,
    pub value: f64,
}

impl ResultFile for ProbeRow {
    const NAME: &'static str = "probes.csv";
}
impl CsvRow for ProbeRow {}

/// The cosine similarities of per-sample gradients at one checkpoint: an entry of
/// `grad_cov.json` (the paper's Fig. 13).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GradCov {
    pub env_steps: u64,
    /// Omitted in files written by other tools (then 0).
    #[serde(default)]
    pub samples: usize,
    /// `samples × samples`, one list per row; readers also accept one flat row-major list.
    #[serde(deserialize_with = "square")]
    pub matrix: Vec<Vec<f64>>,
}

impl ResultFile for GradCov {
    const NAME: &'static str = "grad_cov.json";
}
impl JsonRecord for GradCov {
    const STYLE: JsonStyle = JsonStyle::Compact;
}

fn square<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Matrix {
        Rows(Vec<Vec<f64>>),
        Flat(Vec<f64>),
    }
    let flat = match Matrix::deserialize(d).map_err(|_| {
        serde::de::Error::custom("`matrix` is not a list of rows of numbers nor a flat list")
    })? {
        Matrix::Rows(rows) => return Ok(rows),
        Matrix::Flat(flat) => flat,
    };
    let k = (flat.len() as f64).sqrt().round() as usize;
    if k * k != flat.len() {
        return Err(serde::de::Error::custom(format!(
            "a flat matrix of {} values is not square",
            flat.len()
        )));
    }
    Ok(flat.chunks(k.max(1)).map(<[f64]>::to_vec).collect())
}
