//! The parameters every `aggregate/*` kind shares, checked.

use prunus_stage::{Params, StageError};

use crate::aggregate::Metric;
use crate::normalize::Normalization;

/// The checked parameters of an aggregate.
pub(super) struct Config {
    pub(super) metrics: Vec<Metric>,
    pub(super) normalization: Normalization,
    pub(super) train: bool,
    pub(super) last: usize,
    pub(super) group_by: Vec<String>,
    pub(super) task: String,
    pub(super) reps: usize,
    pub(super) confidence: f64,
    pub(super) seed: u64,
}

impl Config {
    pub(super) fn from_params(p: &Params) -> Result<Config, StageError> {
        let bad = |key: &str, message: String| StageError::Param {
            key: key.into(),
            message,
        };
        let metrics = if p.get("metric").is_none() {
            vec![Metric::Iqm]
        } else {
            p.strs("metric")?
                .iter()
                .map(|m| Metric::parse(m).map_err(|e| bad("metric", e.to_string())))
                .collect::<Result<Vec<_>, _>>()?
        };
        if metrics.is_empty() {
            return Err(bad("metric", "name at least one metric".into()));
        }
        let normalization = Normalization::parse(p.str("normalize")?)
            .map_err(|e| bad("normalize", e.to_string()))?;
        let train = match p.str("returns")? {
            "eval" => false,
            "train" => true,
            other => {
                return Err(bad(
                    "returns",
                    format!("expected eval or train, got `{other}`"),
                ));
            }
        };
        let last = p.u64("last")? as usize;
        if last == 0 {
            return Err(bad("last", "must be at least 1".into()));
        }
        let reps = p.u64("reps")? as usize;
        if reps < 100 {
            return Err(bad(
                "reps",
                format!("{reps} repetitions are too few; use at least 100 (rliable: 50,000)"),
            ));
        }
        let confidence = p.f64("confidence")?;
        if !(0.0 < confidence && confidence < 1.0) {
            return Err(bad(
                "confidence",
                format!("must be between 0 and 1, got {confidence}"),
            ));
        }
        Ok(Config {
            metrics,
            normalization,
            train,
            last,
            group_by: p.strs("group-by")?,
            task: p.str("task")?.to_string(),
            reps,
            confidence,
            seed: p.u64("seed")?,
        })
    }
}
