//! The `aggregate/*` stage kinds: from the `returns.csv` of many training runs to the tables
//! the figures read.
//!
//! A run's **final score** is the mean return over its last `last` iterations that have episodes
//! (`returns "eval"` by default; `"train"` gives Dopamine's `continuous_train` protocol of
//! reporting training-episode returns). Scores are normalized per game
//! ([`Normalization`](crate::Normalization)), runs are grouped by the `group-by` axes, and inside a
//! group the `task` axis (`game`) is the stratum: the runs of one game are resampled together.
//!
//! Outputs (CSV with a header row, plain numbers; JSON as a list of records):
//! - `scores.csv`: one row per run: every input axis, `final_score`, `normalized_score`;
//! - `summary.csv`, `summary.json`: one row per group and metric: the group axes, `metric`,
//!   `estimate`, `ci_low`, `ci_high`, `runs`;
//! - `curves.csv`: the first metric at every iteration that all runs of the group logged:
//!   the group axes, `env_steps`, `estimate`, `ci_low`, `ci_high`;
//! - `profiles.csv` (`aggregate/profile`): the group axes, `tau`, `estimate`, `ci_low`,
//!   `ci_high`;
//! - `improvement.csv` (`aggregate/improvement`): the other group axes, the `compare` axis,
//!   `baseline`, `estimate`, `ci_low`, `ci_high`, `runs`, `baseline_runs`.

mod config;
mod improvement;
mod metrics;
mod profile;
mod runs;

use std::collections::BTreeSet;

use prunus_stage::{Context, ParamSpec, ParamType, Params, StageError, StageKind, Value};

use crate::bootstrap::Bootstrap;
use config::Config;
use runs::Run;

/// The `aggregate/*` kinds: `aggregate/iqm` (IQM by default) and `aggregate/scores` (every
/// metric by default) write the score tables; `aggregate/profile` writes performance
/// profiles; `aggregate/improvement` writes probabilities of improvement over a baseline.
pub struct Aggregate {
    name: &'static str,
    mode: Mode,
}

#[derive(Clone, Copy)]
enum Mode {
    Metrics(&'static [&'static str]),
    Profile,
    Improvement,
}

impl Aggregate {
    pub const IQM: Aggregate = Aggregate {
        name: "aggregate/iqm",
        mode: Mode::Metrics(&["iqm"]),
    };
    pub const SCORES: Aggregate = Aggregate {
        name: "aggregate/scores",
        mode: Mode::Metrics(&["iqm", "mean", "median", "optimality_gap"]),
    };
    pub const PROFILE: Aggregate = Aggregate {
        name: "aggregate/profile",
        mode: Mode::Profile,
    };
    pub const IMPROVEMENT: Aggregate = Aggregate {
        name: "aggregate/improvement",
        mode: Mode::Improvement,
    };

    /// Every `aggregate/*` kind.
    pub const ALL: [Aggregate; 4] = [Self::IQM, Self::SCORES, Self::PROFILE, Self::IMPROVEMENT];
}

const OUTPUTS: [&str; 4] = ["scores.csv", "summary.csv", "summary.json", "curves.csv"];

fn strs(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::Str(s.to_string())).collect())
}

impl StageKind for Aggregate {
    fn name(&self) -> &'static str {
        self.name
    }

    /// 2: MinAtar's reference scores are measured (`normalize.rs`), which changes every
    /// MinAtar-normalized number.
    fn version(&self) -> u32 {
        2
    }

    fn doc(&self) -> &'static str {
        match self.mode {
            Mode::Metrics(_) => {
                "Aggregates the final scores of training runs as rliable does: normalized scores \
                 (Atari: human-normalized; MinAtar: random/reference-DQN), IQM / mean / median / \
                 optimality gap over runs and games with 95% stratified bootstrap confidence \
                 intervals, per group of the `group-by` axes, plus sample-efficiency curves. Reads \
                 each input's returns.csv; writes scores.csv, summary.csv, summary.json, curves.csv."
            }
            Mode::Profile => {
                "Performance profiles as rliable: per group, the fraction of (run, game) normalized \
                 final scores above each threshold tau, with 95% stratified bootstrap intervals \
                 (2,000 repetitions by default). Writes profiles.csv."
            }
            Mode::Improvement => {
                "Probability of improvement as rliable: per group, P(X > Y) of each value of the \
                 `compare` axis over the `baseline` value (e.g. pruned over dense), averaged over \
                 games, with 95% bootstrap intervals resampling both sides. Writes improvement.csv."
            }
        }
    }

    fn deterministic(&self, _params: &Params) -> bool {
        true
    }

    fn params(&self) -> Vec<ParamSpec> {
        let mut specs = match self.mode {
            Mode::Metrics(metrics) => vec![ParamSpec::new(
                "metric",
                ParamType::StrList,
                Some(strs(metrics)),
                "metrics among iqm, mean, median, optimality_gap; curves use the first",
            )],
            Mode::Profile => vec![ParamSpec::new(
                "taus",
                ParamType::FloatList,
                Some(Value::List(Vec::new())),
                "score thresholds (empty: 51 evenly spaced from min(0, lowest score) to the highest score)",
            )],
            Mode::Improvement => vec![
                ParamSpec::new(
                    "compare",
                    ParamType::Str,
                    Some(Value::Str("sparsity".into())),
                    "the group axis whose values are compared with the baseline",
                ),
                ParamSpec::new(
                    "baseline",
                    ParamType::Str,
                    Some(Value::Str("0".into())),
                    "the value of the `compare` axis every other value is compared with",
                ),
            ],
        };
        let reps = if matches!(self.mode, Mode::Profile) {
            2_000
        } else {
            50_000
        };
        specs.extend([

            ParamSpec::new(
                "normalize",
                ParamType::Str,
                Some(Value::Str("auto".into())),
                "atari (human-normalized), minatar (random/reference DQN), none, or auto (by game prefix)",
            ),
            ParamSpec::new(
                "returns",
                ParamType::Str,
                Some(Value::Str("eval".into())),
                "which returns score a run: eval (evaluation episodes) or train (Dopamine's protocol)",
            ),
            ParamSpec::new(
                "last",
                ParamType::Int,
                Some(Value::Int(1)),
                "final score = mean return over this many last iterations with episodes",
            ),
            ParamSpec::new(
                "group-by",
                ParamType::StrList,
                Some(Value::List(Vec::new())),
                "axes whose values form the groups (empty: every axis except the task and seed axes); `stage` groups by the upstream stage's name, to compare stages over the same sweep",
            ),
            ParamSpec::new(
                "task",
                ParamType::Str,
                Some(Value::Str("game".into())),
                "the axis whose values are the tasks (strata of the bootstrap)",
            ),
            ParamSpec::new("reps", ParamType::Int, Some(Value::Int(reps)), "bootstrap repetitions"),
            ParamSpec::new(
                "confidence",
                ParamType::Float,
                Some(Value::Float(0.95)),
                "coverage of the percentile intervals",
            ),
            ParamSpec::new(
                "seed",
                ParamType::Int,
                Some(Value::Int(0)),
                "seed of the bootstrap",
            ),
        ]);
        specs
    }

    fn outputs(&self, _params: &Params) -> Vec<String> {
        match self.mode {
            Mode::Metrics(_) => OUTPUTS.iter().map(|s| s.to_string()).collect(),
            Mode::Profile => vec!["profiles.csv".into()],
            Mode::Improvement => vec!["improvement.csv".into()],
        }
    }

    fn validate(&self, params: &Params) -> Result<(), StageError> {
        Config::from_params(params).map(drop)
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let config = Config::from_params(&ctx.params)?;
        let runs = ctx
            .inputs
            .iter()
            .map(|input| Run::read(input, &config))
            .collect::<Result<Vec<_>, _>>()?;
        if runs.is_empty() {
            return Err(StageError::Failed(format!(
                "{} needs training runs as inputs (`needs train`), got none",
                self.name
            )));
        }
        let axes: BTreeSet<String> = runs.iter().flat_map(|r| r.axes.keys().cloned()).collect();
        let group_axes: Vec<String> = if config.group_by.is_empty() {
            axes.iter()
                .filter(|a| **a != config.task && *a != "seed")
                .cloned()
                .collect()
        } else {
            if let Some(missing) = config.group_by.iter().find(|a| !axes.contains(*a)) {
                return Err(StageError::Param {
                    key: "group-by".into(),
                    message: format!(
                        "no input has the axis `{missing}`; the inputs' axes are: {}",
                        axes.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            config.group_by.clone()
        };
        let bootstrap = Bootstrap {
            reps: config.reps,
            confidence: config.confidence,
            seed: config.seed,
        };
        match self.mode {
            Mode::Metrics(_) => {
                let axes: Vec<String> = axes.into_iter().collect();
                metrics::write_scores(&ctx.output("scores.csv"), &axes, &runs)?;
                metrics::metrics(ctx, &config, &bootstrap, &group_axes, &runs)
            }
            Mode::Profile => profile::profiles(ctx, &bootstrap, &group_axes, &runs),
            Mode::Improvement => improvement::improvements(ctx, &bootstrap, &group_axes, &runs),
        }
    }
}

/// Reports progress over groups; stops at a cancellation.
pub(crate) fn progress(ctx: &Context, done: usize, total: usize) -> Result<(), StageError> {
    ctx.progress(done as u64, total as u64, "groups");
    if ctx.cancelled() {
        Err(StageError::Cancelled)
    } else {
        Ok(())
    }
}
