//! `aggregate/improvement`: probabilities of improvement over a baseline (`improvement.csv`).

use std::collections::BTreeMap;

use prunus_results::{AxisValue, Improvement, Table};
use prunus_stage::{Context, StageError, Value};

use super::metrics::write_error;
use super::progress;
use super::runs::{Run, cell, groups, groups_of, tasks};
use crate::bootstrap::Bootstrap;
use crate::improvement;
use crate::scores::Scores;

/// P(X > Y) of every value of the `compare` axis over its `baseline` value, per group of the
/// other group axes; the compared axis is the table's last axis.
pub(super) fn improvements(
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
    let mut axes = outer.clone();
    axes.push(compare.to_string());
    let mut table = Table::new(axes);
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
            let mut values = key.values();
            values.push(Some(AxisValue::Str(value)));
            table.push(
                values,
                Improvement {
                    baseline: baseline.to_string(),
                    estimate: i.estimate,
                    ci_low: i.low,
                    ci_high: i.high,
                    runs: xs.len(),
                    baseline_runs: base.len(),
                },
            );
        }
    }
    table
        .write_csv(&ctx.output("improvement.csv"))
        .map_err(write_error)
}
