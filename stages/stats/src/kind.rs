//! The `aggregate/*` stage kinds: from the `returns.csv` of many training runs to the tables
//! the figures read.
//!
//! A run's **final score** is the mean return over its last `last` iterations that have
//! episodes (`returns "eval"` by default; `"train"` gives Dopamine's `continuous_train`
//! protocol of reporting training-episode returns). Scores are normalized per game
//! ([`Normalization`]), runs are grouped by the `group-by` axes, and inside a group the
//! `task` axis (`game`) is the stratum: the runs of one game are resampled together.
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

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use prunus_stage::{Context, Input, ParamSpec, ParamType, Params, StageError, StageKind, Value};
use serde::Deserialize;

use crate::normalize::Normalization;
use crate::{Bootstrap, Interval, Metric, Profile, Scores, improvement};

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

    fn version(&self) -> u32 {
        1
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

    fn deterministic(&self) -> bool {
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
                write_scores(&ctx.output("scores.csv"), &axes, &runs)?;
                metrics(ctx, &config, &bootstrap, &group_axes, &runs)
            }
            Mode::Profile => profiles(ctx, &bootstrap, &group_axes, &runs),
            Mode::Improvement => improvements(ctx, &bootstrap, &group_axes, &runs),
        }
    }
}

/// Runs grouped by their values of `axes`, in key order.
fn groups<'a>(runs: &'a [Run], axes: &[String]) -> BTreeMap<Key, Vec<&'a Run>> {
    let mut groups: BTreeMap<Key, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        groups
            .entry(Key::of(&run.axes, axes))
            .or_default()
            .push(run);
    }
    groups
}

fn progress(ctx: &Context, done: usize, total: usize) -> Result<(), StageError> {
    ctx.progress(done as u64, total as u64, "groups");
    if ctx.cancelled() {
        Err(StageError::Cancelled)
    } else {
        Ok(())
    }
}

fn metrics(
    ctx: &Context,
    config: &Config,
    bootstrap: &Bootstrap,
    group_axes: &[String],
    runs: &[Run],
) -> Result<(), StageError> {
    let groups = groups(runs, group_axes);
    let mut summary = Vec::new();
    let mut curves = Vec::new();
    for (g, (key, members)) in groups.iter().enumerate() {
        progress(ctx, g, groups.len())?;
        let scores = by_task(members, |r| Some(r.normalized)).expect("every run has a final score");
        for metric in &config.metrics {
            summary.push((
                key,
                metric.name(),
                bootstrap.interval(&scores, *metric),
                members.len(),
            ));
        }
        let (steps, points) = curve_points(members);
        let intervals = bootstrap.curve(&points, config.metrics[0]);
        curves.extend(steps.into_iter().zip(intervals).map(|(s, i)| (key, s, i)));
    }
    write_summary(ctx, group_axes, &summary)?;
    write_curves(&ctx.output("curves.csv"), group_axes, &curves)?;
    ctx.log(format!(
        "aggregated {} runs in {} groups",
        runs.len(),
        groups.len()
    ));
    Ok(())
}

fn profiles(
    ctx: &Context,
    bootstrap: &Bootstrap,
    group_axes: &[String],
    runs: &[Run],
) -> Result<(), StageError> {
    let mut taus = ctx.params.f64s("taus")?;
    if taus.is_empty() {
        let lo = runs.iter().map(|r| r.normalized).fold(0.0, f64::min);
        let hi = runs
            .iter()
            .map(|r| r.normalized)
            .fold(f64::NEG_INFINITY, f64::max)
            .max(lo + 1e-9);
        taus = (0..=50).map(|i| lo + (hi - lo) * i as f64 / 50.0).collect();
    }
    let groups = groups(runs, group_axes);
    let path = ctx.output("profiles.csv");
    let mut w = csv::Writer::from_path(&path).map_err(|e| csv_error(&path, e))?;
    let header = group_axes
        .iter()
        .map(String::as_str)
        .chain(["tau", "estimate", "ci_low", "ci_high"]);
    w.write_record(header).map_err(|e| csv_error(&path, e))?;
    for (g, (key, members)) in groups.iter().enumerate() {
        progress(ctx, g, groups.len())?;
        let scores = by_task(members, |r| Some(r.normalized)).expect("every run has a final score");
        for (tau, i) in taus
            .iter()
            .zip(Profile::RunScores.intervals(&scores, &taus, bootstrap))
        {
            let mut record: Vec<String> = key.0.iter().map(|v| cell(v.as_ref())).collect();
            record.extend([
                tau.to_string(),
                i.estimate.to_string(),
                i.low.to_string(),
                i.high.to_string(),
            ]);
            w.write_record(&record).map_err(|e| csv_error(&path, e))?;
        }
    }
    w.flush().map_err(|e| csv_error(&path, e))?;
    Ok(())
}

fn improvements(
    ctx: &Context,
    bootstrap: &Bootstrap,
    group_axes: &[String],
    runs: &[Run],
) -> Result<(), StageError> {
    let compare = ctx.params.str("compare")?;
    let baseline = ctx.params.str("baseline")?;
    if !group_axes.iter().any(|a| a == compare) {
        return Err(StageError::Param {
            key: "compare".into(),
            message: format!(
                "`{compare}` is not a group axis (groups: {})",
                group_axes.join(", ")
            ),
        });
    }
    let same = |v: &Value| {
        let text = v.to_string();
        text == baseline
            || matches!((text.parse::<f64>(), baseline.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
    };
    let outer: Vec<String> = group_axes
        .iter()
        .filter(|a| *a != compare)
        .cloned()
        .collect();
    let path = ctx.output("improvement.csv");
    let mut w = csv::Writer::from_path(&path).map_err(|e| csv_error(&path, e))?;
    let header = outer.iter().map(String::as_str).chain([
        compare,
        "baseline",
        "estimate",
        "ci_low",
        "ci_high",
        "runs",
        "baseline_runs",
    ]);
    w.write_record(header).map_err(|e| csv_error(&path, e))?;
    let groups = groups(runs, &outer);
    for (g, (key, members)) in groups.iter().enumerate() {
        progress(ctx, g, groups.len())?;
        let (base, others): (Vec<&Run>, Vec<&Run>) = members
            .iter()
            .partition(|r| r.axes.get(compare).is_some_and(same));
        if base.is_empty() {
            return Err(StageError::Failed(format!(
                "no run with {compare} = {baseline} in the group {}; set `baseline` to one of the values present",
                key.0
                    .iter()
                    .map(|v| cell(v.as_ref()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let y = tasks(&base);
        for (value, xs) in groups_of(&others, compare) {
            let x = tasks(&xs);
            if x.keys().ne(y.keys()) {
                return Err(StageError::Failed(format!(
                    "{compare} = {value} and the baseline cover different games ({} vs {})",
                    x.keys().cloned().collect::<Vec<_>>().join(" "),
                    y.keys().cloned().collect::<Vec<_>>().join(" ")
                )));
            }
            let to_scores = |t: &BTreeMap<String, Vec<f64>>| {
                Scores::from_tasks(t.values().cloned().collect()).map_err(StageError::failed)
            };
            let i = improvement::probability_of_improvement(
                &to_scores(&x)?,
                &to_scores(&y)?,
                bootstrap,
            )
            .map_err(StageError::failed)?;
            let mut record: Vec<String> = key.0.iter().map(|v| cell(v.as_ref())).collect();
            record.extend([
                value,
                baseline.to_string(),
                i.estimate.to_string(),
                i.low.to_string(),
                i.high.to_string(),
                xs.len().to_string(),
                base.len().to_string(),
            ]);
            w.write_record(&record).map_err(|e| csv_error(&path, e))?;
        }
    }
    w.flush().map_err(|e| csv_error(&path, e))?;
    Ok(())
}

/// Final normalized scores by task.
fn tasks(runs: &[&Run]) -> BTreeMap<String, Vec<f64>> {
    let mut tasks: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in runs {
        tasks.entry(r.task.clone()).or_default().push(r.normalized);
    }
    tasks
}

/// Runs split by their value of `axis`, in value order.
fn groups_of<'a>(runs: &[&'a Run], axis: &str) -> Vec<(String, Vec<&'a Run>)> {
    let mut by: BTreeMap<Key, Vec<&Run>> = BTreeMap::new();
    for r in runs {
        by.entry(Key::of(&r.axes, &[axis.to_string()]))
            .or_default()
            .push(r);
    }
    by.into_iter()
        .map(|(k, v)| (cell(k.0[0].as_ref()), v))
        .collect()
}

struct Config {
    metrics: Vec<Metric>,
    normalization: Normalization,
    train: bool,
    last: usize,
    group_by: Vec<String>,
    task: String,
    reps: usize,
    confidence: f64,
    seed: u64,
}

impl Config {
    fn from_params(p: &Params) -> Result<Config, StageError> {
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

/// One row of `returns.csv` (the agents' contract); empty or `NaN` returns mean "no episode".
#[derive(Debug, Deserialize)]
struct Row {
    iteration: u64,
    env_steps: u64,
    train_return: Option<f64>,
    train_episodes: Option<f64>,
    eval_return: Option<f64>,
    eval_episodes: Option<f64>,
}

/// One training run: its axes, final score and per-iteration (normalized) returns.
/// The pseudo-axis naming a run's upstream stage (used only when `group-by` asks for it, and
/// only where the inputs have no real axis of that name).
const STAGE_AXIS: &str = "stage";

struct Run {
    axes: BTreeMap<String, Value>,
    task: String,
    final_score: f64,
    normalized: f64,
    /// (iteration, env_steps, normalized return) for iterations with episodes.
    curve: Vec<(u64, u64, f64)>,
}

impl Run {
    fn read(input: &Input, config: &Config) -> Result<Run, StageError> {
        let path = input.output("returns.csv")?;
        let fail =
            |m: String| StageError::Failed(format!("{} ({}): {m}", input.instance, path.display()));
        let mut reader = csv::Reader::from_path(path).map_err(|e| fail(e.to_string()))?;
        let mut rows = Vec::new();
        for row in reader.deserialize::<Row>() {
            rows.push(
                row.map_err(|e| fail(format!("not a returns.csv of the agents' format: {e}")))?,
            );
        }
        let task = input
            .axes
            .get(&config.task)
            .map(ToString::to_string)
            .unwrap_or_default();
        let mut curve = Vec::new();
        for row in &rows {
            let (ret, episodes) = if config.train {
                (row.train_return, row.train_episodes)
            } else {
                (row.eval_return, row.eval_episodes)
            };
            if let Some(ret) = ret.filter(|r| r.is_finite() && episodes.is_none_or(|e| e > 0.0)) {
                curve.push((row.iteration, row.env_steps, ret));
            }
        }
        let which = if config.train { "train" } else { "eval" };
        if curve.is_empty() {
            return Err(fail(format!(
                "no iteration has {which} episodes, so the run has no score (too short a run? \
                 try `returns \"{}\"`)",
                if config.train { "eval" } else { "train" }
            )));
        }
        let tail = &curve[curve.len().saturating_sub(config.last)..];
        let final_score = tail.iter().map(|c| c.2).sum::<f64>() / tail.len() as f64;
        let normalize = |x: f64| {
            config
                .normalization
                .normalize(&task, x)
                .map_err(|e| fail(e.to_string()))
        };
        let normalized = normalize(final_score)?;
        for point in &mut curve {
            point.2 = normalize(point.2)?;
        }
        let mut axes = input.axes.clone();
        if config.group_by.iter().any(|a| a == STAGE_AXIS) {
            axes.entry(STAGE_AXIS.to_string())
                .or_insert_with(|| Value::Str(input.stage.clone()));
        }
        Ok(Run {
            axes,
            task,
            final_score,
            normalized,
            curve,
        })
    }
}

/// Scores of `runs` grouped by task (in task order); `None` if some run lacks a value.
fn by_task(runs: &[&Run], value: impl Fn(&Run) -> Option<f64>) -> Option<Scores> {
    let mut tasks: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for run in runs {
        tasks.entry(&run.task).or_default().push(value(run)?);
    }
    Scores::from_tasks(tasks.into_values().collect()).ok()
}

/// The iterations every run of the group logged, with their mean env steps and scores.
fn curve_points(runs: &[&Run]) -> (Vec<u64>, Vec<Scores>) {
    let common: BTreeSet<u64> = runs
        .iter()
        .map(|r| r.curve.iter().map(|c| c.0).collect::<BTreeSet<u64>>())
        .reduce(|a, b| a.intersection(&b).copied().collect())
        .unwrap_or_default();
    let mut steps = Vec::new();
    let mut points = Vec::new();
    for it in common {
        let at = |r: &Run| r.curve.iter().find(|c| c.0 == it).copied();
        let mean_steps = runs
            .iter()
            .filter_map(|r| at(r))
            .map(|c| c.1 as f64)
            .sum::<f64>()
            / runs.len() as f64;
        if let Some(scores) = by_task(runs, |r| at(r).map(|c| c.2)) {
            steps.push(mean_steps.round() as u64);
            points.push(scores);
        }
    }
    (steps, points)
}

/// Group-by values, ordered numerically where they are numbers.
#[derive(Debug, Clone, PartialEq)]
struct Key(Vec<Option<Value>>);

impl Key {
    fn of(axes: &BTreeMap<String, Value>, names: &[String]) -> Key {
        Key(names.iter().map(|n| axes.get(n).cloned()).collect())
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        fn number(v: &Value) -> Option<f64> {
            match v {
                Value::Int(i) => Some(*i as f64),
                Value::Float(x) => Some(*x),
                _ => None,
            }
        }
        for (a, b) in self.0.iter().zip(&other.0) {
            let o = match (a, b) {
                (Some(a), Some(b)) => match (number(a), number(b)) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    _ => a.to_string().cmp(&b.to_string()),
                },
                (a, b) => a.is_some().cmp(&b.is_some()),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

fn cell(v: Option<&Value>) -> String {
    v.map(ToString::to_string).unwrap_or_default()
}

fn json_value(v: Option<&Value>) -> serde_json::Value {
    match v {
        None => serde_json::Value::Null,
        Some(Value::Int(i)) => (*i).into(),
        Some(Value::Float(x)) => (*x).into(),
        Some(Value::Bool(b)) => (*b).into(),
        Some(other) => other.to_string().into(),
    }
}

fn csv_error(path: &Path, e: impl std::fmt::Display) -> StageError {
    StageError::Failed(format!("cannot write {}: {e}", path.display()))
}

fn write_scores(path: &Path, axes: &[String], runs: &[Run]) -> Result<(), StageError> {
    let mut w = csv::Writer::from_path(path).map_err(|e| csv_error(path, e))?;
    let header = axes
        .iter()
        .map(String::as_str)
        .chain(["final_score", "normalized_score"]);
    w.write_record(header).map_err(|e| csv_error(path, e))?;
    for run in runs {
        let mut record: Vec<String> = axes.iter().map(|a| cell(run.axes.get(a))).collect();
        record.push(run.final_score.to_string());
        record.push(run.normalized.to_string());
        w.write_record(&record).map_err(|e| csv_error(path, e))?;
    }
    w.flush().map_err(|e| csv_error(path, e))?;
    Ok(())
}

fn write_summary(
    ctx: &Context,
    group_axes: &[String],
    rows: &[(&Key, &str, Interval, usize)],
) -> Result<(), StageError> {
    let path = ctx.output("summary.csv");
    let mut w = csv::Writer::from_path(&path).map_err(|e| csv_error(&path, e))?;
    let header = group_axes
        .iter()
        .map(String::as_str)
        .chain(["metric", "estimate", "ci_low", "ci_high", "runs"]);
    w.write_record(header).map_err(|e| csv_error(&path, e))?;
    let mut records = Vec::new();
    for (key, metric, i, runs) in rows {
        let mut record: Vec<String> = key.0.iter().map(|v| cell(v.as_ref())).collect();
        record.extend([
            metric.to_string(),
            i.estimate.to_string(),
            i.low.to_string(),
            i.high.to_string(),
            runs.to_string(),
        ]);
        w.write_record(&record).map_err(|e| csv_error(&path, e))?;
        let mut json = serde_json::Map::new();
        for (axis, v) in group_axes.iter().zip(&key.0) {
            json.insert(axis.clone(), json_value(v.as_ref()));
        }
        json.insert("metric".into(), (*metric).into());
        json.insert("estimate".into(), i.estimate.into());
        json.insert("ci_low".into(), i.low.into());
        json.insert("ci_high".into(), i.high.into());
        json.insert("runs".into(), (*runs).into());
        records.push(serde_json::Value::Object(json));
    }
    w.flush().map_err(|e| csv_error(&path, e))?;
    let json_path = ctx.output("summary.json");
    let text = serde_json::to_string_pretty(&records).map_err(|e| csv_error(&json_path, e))?;
    std::fs::write(&json_path, text + "\n")?;
    Ok(())
}

fn write_curves(
    path: &Path,
    group_axes: &[String],
    rows: &[(&Key, u64, Interval)],
) -> Result<(), StageError> {
    let mut w = csv::Writer::from_path(path).map_err(|e| csv_error(path, e))?;
    let header =
        group_axes
            .iter()
            .map(String::as_str)
            .chain(["env_steps", "estimate", "ci_low", "ci_high"]);
    w.write_record(header).map_err(|e| csv_error(path, e))?;
    for (key, steps, i) in rows {
        let mut record: Vec<String> = key.0.iter().map(|v| cell(v.as_ref())).collect();
        record.extend([
            steps.to_string(),
            i.estimate.to_string(),
            i.low.to_string(),
            i.high.to_string(),
        ]);
        w.write_record(&record).map_err(|e| csv_error(path, e))?;
    }
    w.flush().map_err(|e| csv_error(path, e))?;
    Ok(())
}
