//! The training runs an aggregate reads (one `returns.csv` each) and how they are grouped.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use prunus_results::{AxisValue, ReturnsRow, read_csv};
use prunus_stage::{Input, StageError, Value};

use super::config::Config;
use crate::scores::Scores;

/// Runs grouped by their values of `axes`, in key order.
pub(super) fn groups<'a>(runs: &'a [Run], axes: &[String]) -> BTreeMap<Key, Vec<&'a Run>> {
    let mut groups: BTreeMap<Key, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        groups
            .entry(Key::of(&run.axes, axes))
            .or_default()
            .push(run);
    }
    groups
}

/// Final normalized scores by task.
pub(super) fn tasks(runs: &[&Run]) -> BTreeMap<String, Vec<f64>> {
    let mut tasks: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in runs {
        tasks.entry(r.task.clone()).or_default().push(r.normalized);
    }
    tasks
}

/// Runs split by their value of `axis`, in value order.
pub(super) fn groups_of<'a>(runs: &[&'a Run], axis: &str) -> Vec<(String, Vec<&'a Run>)> {
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

/// The pseudo-axis naming a run's upstream stage (used only when `group-by` asks for it, and
/// only where the inputs have no real axis of that name).
const STAGE_AXIS: &str = "stage";

/// One training run: its axes, final score and per-iteration (normalized) returns.
pub(super) struct Run {
    pub(super) axes: BTreeMap<String, Value>,
    pub(super) task: String,
    pub(super) final_score: f64,
    pub(super) normalized: f64,
    /// (iteration, env_steps, normalized return) for iterations with episodes.
    pub(super) curve: Vec<(u64, u64, f64)>,
}

impl Run {
    pub(super) fn read(input: &Input, config: &Config) -> Result<Run, StageError> {
        let path = input.output("returns.csv")?;
        let fail =
            |m: String| StageError::Failed(format!("{} ({}): {m}", input.instance, path.display()));
        let rows = read_csv::<ReturnsRow>(path).map_err(|e| match e {
            prunus_results::Error::Io { .. } => fail(e.detail()),
            _ => fail(format!(
                "not a returns.csv of the agents' format: {}",
                e.detail()
            )),
        })?;
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
            if let Some(ret) = ret.filter(|r| r.is_finite() && episodes > 0) {
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
pub(super) fn by_task(runs: &[&Run], value: impl Fn(&Run) -> Option<f64>) -> Option<Scores> {
    let mut tasks: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for run in runs {
        tasks.entry(&run.task).or_default().push(value(run)?);
    }
    Scores::from_tasks(tasks.into_values().collect()).ok()
}

/// The iterations every run of the group logged, with their mean env steps and scores.
pub(super) fn curve_points(runs: &[&Run]) -> (Vec<u64>, Vec<Scores>) {
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
pub(super) struct Key(pub(super) Vec<Option<Value>>);

impl Key {
    pub(super) fn of(axes: &BTreeMap<String, Value>, names: &[String]) -> Key {
        Key(names.iter().map(|n| axes.get(n).cloned()).collect())
    }

    /// The values as a result table's row starts.
    pub(super) fn values(&self) -> Vec<Option<AxisValue>> {
        self.0.iter().map(|v| v.as_ref().map(axis_value)).collect()
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

pub(super) fn cell(v: Option<&Value>) -> String {
    v.map(ToString::to_string).unwrap_or_default()
}

/// A parameter value as a result table holds it: a list is its text (as in `summary.json`).
pub(super) fn axis_value(v: &Value) -> AxisValue {
    match v {
        Value::Bool(b) => AxisValue::Bool(*b),
        Value::Int(i) => AxisValue::Int(*i),
        Value::Float(x) => AxisValue::Float(*x),
        Value::Str(s) => AxisValue::Str(s.clone()),
        Value::List(_) => AxisValue::Str(v.to_string()),
    }
}
