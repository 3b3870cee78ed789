//! `aggregate/iqm` and `aggregate/scores`: `scores.csv`, `summary.csv`, `summary.json` and
//! `curves.csv`.

use std::path::Path;

use prunus_results::{CurvePoint, Score, Summary, Table};
use prunus_stage::{Context, StageError};

use super::config::Config;
use super::progress;
use super::runs::{Run, axis_value, by_task, curve_points, groups};
use crate::bootstrap::Bootstrap;

/// The message of a result file that cannot be written.
pub(super) fn write_error(e: prunus_results::Error) -> StageError {
    StageError::Failed(format!("cannot write {e}"))
}

/// `summary.csv` and `summary.json` (every metric of every group) and `curves.csv` (the first
/// metric along the iterations every run of a group logged).
pub(super) fn metrics(
    ctx: &Context,
    config: &Config,
    bootstrap: &Bootstrap,
    group_axes: &[String],
    runs: &[Run],
) -> Result<(), StageError> {
    let groups = groups(runs, group_axes);
    let mut summary = Table::new(group_axes.to_vec());
    let mut curves = Table::new(group_axes.to_vec());
    for (g, (key, members)) in groups.iter().enumerate() {
        progress(ctx, g, groups.len())?;
        let scores = by_task(members, |r| Some(r.normalized)).expect("every run has a final score");
        for metric in &config.metrics {
            let i = bootstrap.interval(&scores, *metric);
            summary.push(
                key.values(),
                Summary {
                    metric: metric.name().to_string(),
                    estimate: i.estimate,
                    ci_low: i.low,
                    ci_high: i.high,
                    runs: members.len(),
                },
            );
        }
        let (steps, points) = curve_points(members);
        let intervals = bootstrap.curve(&points, config.metrics[0]);
        for (env_steps, i) in steps.into_iter().zip(intervals) {
            curves.push(
                key.values(),
                CurvePoint {
                    env_steps,
                    estimate: i.estimate,
                    ci_low: i.low,
                    ci_high: i.high,
                },
            );
        }
    }
    summary
        .write_csv(&ctx.output("summary.csv"))
        .map_err(write_error)?;
    summary
        .write_json(&ctx.output("summary.json"))
        .map_err(write_error)?;
    curves
        .write_csv(&ctx.output("curves.csv"))
        .map_err(write_error)?;
    ctx.log(format!(
        "aggregated {} runs in {} groups",
        runs.len(),
        groups.len()
    ));
    Ok(())
}

/// `scores.csv`: every run's final score, with all the inputs' axes.
pub(super) fn write_scores(path: &Path, axes: &[String], runs: &[Run]) -> Result<(), StageError> {
    let mut table = Table::new(axes.to_vec());
    for run in runs {
        table.push(
            axes.iter()
                .map(|a| run.axes.get(a).map(axis_value))
                .collect(),
            Score {
                final_score: run.final_score,
                normalized_score: run.normalized,
            },
        );
    }
    table.write_csv(path).map_err(write_error)
}
