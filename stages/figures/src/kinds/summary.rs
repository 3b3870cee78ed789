//! `figure/scaling` and `figure/sweep`: one metric of the inputs' `summary.csv` by group.

use std::collections::{BTreeMap, BTreeSet};

use prunus_results::{Summary, Table};
use prunus_stage::{Input, ParamSpec, ParamType, StageError, Value};

use super::{Draw, axis_label, read_error, s, series_label, y_label};
use crate::plot::{Line, Point};
use crate::scaling::{Bar, BarSeries, Scaling};
use crate::sweep::Sweep;

/// The parameters of `figure/scaling` (widths on x, a series per sparsity) and `figure/sweep`
/// (sparsities on x, a series per width), after `name` and `title`.
pub(super) fn params(sweep: bool) -> Vec<ParamSpec> {
    let (x, series) = if sweep {
        ("sparsity", "width")
    } else {
        ("width", "sparsity")
    };
    let mut p = vec![
        ParamSpec::new("x", ParamType::Str, s(x), "the group axis on the x axis"),
        ParamSpec::new(
            "series",
            ParamType::Str,
            s(series),
            "the group axis whose values are the series (other group axes join the series name)",
        ),
        ParamSpec::new(
            "x-label",
            ParamType::Str,
            s(""),
            "label of the x axis (default: from `x`)",
        ),
        y_label(),
        ParamSpec::new(
            "metric",
            ParamType::Str,
            s("iqm"),
            "which metric of summary.csv to draw",
        ),
    ];
    if sweep {
        p.push(ParamSpec::new(
            "log-x",
            ParamType::Bool,
            Some(Value::Bool(false)),
            "base-2 logarithmic x axis (replay ratios)",
        ));
    }
    p
}

/// One summary row with its group values by axis (inputs may group by different axes).
struct SummaryRow {
    groups: BTreeMap<String, String>,
    summary: Summary,
}

/// The rows of the inputs' summary.csv for `metric`.
fn read_summaries(inputs: &[Input], metric: &str) -> Result<Vec<SummaryRow>, StageError> {
    let mut rows = Vec::new();
    let mut metrics = BTreeSet::new();
    for input in inputs {
        let path = input.output("summary.csv")?;
        let table = Table::<Summary>::read_csv(path).map_err(read_error(input, path))?;
        for g in &table.rows {
            metrics.insert(g.row.metric.clone());
            if g.row.metric != metric {
                continue;
            }
            rows.push(SummaryRow {
                groups: g
                    .cells(&table.axes)
                    .map(|(axis, value)| (axis.to_string(), value))
                    .collect(),
                summary: g.row.clone(),
            });
        }
    }
    if rows.is_empty() {
        return Err(StageError::Failed(format!(
            "no `{metric}` rows in the inputs' summary.csv (metrics there: {}; inputs: {})",
            metrics.into_iter().collect::<Vec<_>>().join(", "),
            inputs.len()
        )));
    }
    Ok(rows)
}

/// The rows of `metric` arranged by the `x` and `series` parameters, and the axis labels.
fn grouped(draw: &Draw) -> Result<(Vec<SummaryRow>, String, String), StageError> {
    let p = &draw.ctx.params;
    let rows = read_summaries(&draw.ctx.inputs, p.str("metric")?)?;
    let x_label = match p.str("x-label")? {
        "" => axis_label(p.str("x")?),
        l => l.to_string(),
    };
    Ok((rows, x_label, p.str("y-label")?.to_string()))
}

/// Bars over the `x` axis's values (categories), one per series.
pub(super) fn scaling(draw: &Draw) -> Result<(), StageError> {
    let (rows, x_label, y_label) = grouped(draw)?;
    let p = &draw.ctx.params;
    let grouped = group(&rows, p.str("x")?, p.str("series")?)?;
    let categories: Vec<String> = grouped.xs.iter().map(|x| x.label.clone()).collect();
    let series = grouped
        .series
        .iter()
        .map(|(name, values)| BarSeries {
            name: name.clone(),
            bars: grouped
                .xs
                .iter()
                .map(|x| {
                    values.get(&x.label).map(|r| Bar {
                        estimate: r.summary.estimate,
                        low: r.summary.ci_low,
                        high: r.summary.ci_high,
                    })
                })
                .collect(),
        })
        .collect();
    draw.save(&Scaling {
        title: draw.title.clone(),
        x_label,
        y_label,
        categories,
        series,
    })
}

/// Lines over the `x` axis's values (numbers), one per series.
pub(super) fn sweep(draw: &Draw) -> Result<(), StageError> {
    let (rows, x_label, y_label) = grouped(draw)?;
    let p = &draw.ctx.params;
    let grouped = group(&rows, p.str("x")?, p.str("series")?)?;
    if let Some(x) = grouped.xs.iter().find(|x| x.number.is_none()) {
        return Err(StageError::Failed(format!(
            "figure/sweep needs numbers on the x axis `{}`, got `{}`; use figure/scaling for categories",
            grouped.x_axis, x.label
        )));
    }
    let lines = grouped
        .series
        .iter()
        .map(|(name, values)| Line {
            name: name.clone(),
            points: grouped
                .xs
                .iter()
                .filter_map(|x| {
                    values.get(&x.label).map(|r| {
                        Point::with_interval(
                            x.number.unwrap(),
                            r.summary.estimate,
                            r.summary.ci_low,
                            r.summary.ci_high,
                        )
                    })
                })
                .collect(),
        })
        .collect();
    draw.save(&Sweep {
        title: draw.title.clone(),
        x_label,
        y_label,
        lines,
        log_x: p.bool("log-x")?,
    })
}

struct XValue {
    label: String,
    number: Option<f64>,
}

struct Grouped<'a> {
    x_axis: String,
    xs: Vec<XValue>,
    /// Series name -> x label -> row, in series order.
    series: Vec<(String, BTreeMap<String, &'a SummaryRow>)>,
}

/// Arranges summary rows by the `x` axis and the `series` axis (plus any other group axis).
fn group<'a>(rows: &'a [SummaryRow], x: &str, series: &str) -> Result<Grouped<'a>, StageError> {
    let axes: BTreeSet<&String> = rows.iter().flat_map(|r| r.groups.keys()).collect();
    for (key, axis) in [("x", x), ("series", series)] {
        if !axes.contains(&axis.to_string()) {
            return Err(StageError::Param {
                key: key.into(),
                message: format!(
                    "the summaries have no group axis `{axis}` (they have: {}); group the aggregate by it",
                    axes.iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    let mut xs: Vec<XValue> = rows
        .iter()
        .map(|r| r.groups[x].clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|label| XValue {
            number: label.parse().ok(),
            label,
        })
        .collect();
    xs.sort_by(|a, b| match (a.number, b.number) {
        (Some(p), Some(q)) => p.total_cmp(&q),
        _ => a.label.cmp(&b.label),
    });
    let others: Vec<&String> = axes
        .iter()
        .copied()
        .filter(|a| *a != x && *a != series)
        .collect();
    // Series ordered by their numeric value when they are numbers.
    let mut keys: Vec<(Option<f64>, String, String)> = Vec::new();
    let mut series_rows: BTreeMap<String, BTreeMap<String, &SummaryRow>> = BTreeMap::new();
    for r in rows {
        let value = &r.groups[series];
        let mut name = series_label(series, value);
        for o in &others {
            name += &format!(
                ", {} {}",
                o,
                r.groups.get(*o).map(String::as_str).unwrap_or("")
            );
        }
        if !keys.iter().any(|k| k.2 == name) {
            keys.push((value.parse().ok(), value.clone(), name.clone()));
        }
        if series_rows
            .entry(name.clone())
            .or_default()
            .insert(r.groups[x].clone(), r)
            .is_some()
        {
            return Err(StageError::Failed(format!(
                "two summary rows for series `{name}` at {x} = {}",
                r.groups[x]
            )));
        }
    }
    keys.sort_by(|a, b| match (a.0, b.0) {
        (Some(p), Some(q)) => p.total_cmp(&q).then(a.2.cmp(&b.2)),
        _ => a.2.cmp(&b.2),
    });
    let series = keys.into_iter().map(|(_, _, name)| {
        let values = series_rows.remove(&name).unwrap_or_default();
        (name, values)
    });
    Ok(Grouped {
        x_axis: x.to_string(),
        xs,
        series: series.collect(),
    })
}
