//! `aggregate/profile`: performance profiles (`profiles.csv`).

use prunus_results::{ProfilePoint, Table};
use prunus_stage::{Context, StageError};

use super::metrics::write_error;
use super::progress;
use super::runs::{Run, by_task, groups};
use crate::bootstrap::Bootstrap;
use crate::profiles::Profile;

/// Every group's profile at the `taus` thresholds (default: 51 from min(0, lowest score) to
/// the highest score).
pub(super) fn profiles(
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
    let mut table = Table::new(group_axes.to_vec());
    for (g, (key, members)) in groups.iter().enumerate() {
        progress(ctx, g, groups.len())?;
        let scores = by_task(members, |r| Some(r.normalized)).expect("every run has a final score");
        for (tau, i) in taus
            .iter()
            .zip(Profile::RunScores.intervals(&scores, &taus, bootstrap))
        {
            table.push(
                key.values(),
                ProfilePoint {
                    tau: *tau,
                    estimate: i.estimate,
                    ci_low: i.low,
                    ci_high: i.high,
                },
            );
        }
    }
    table
        .write_csv(&ctx.output("profiles.csv"))
        .map_err(write_error)
}
