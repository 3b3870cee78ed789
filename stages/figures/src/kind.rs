//! The `figure/*` stage kinds: each reads its inputs' tables (`summary.csv` and `curves.csv`
//! of `aggregate/*`, `probes.csv` and `grad_cov.json` of `probe`, `returns.csv` of training)
//! and writes `<name>.svg` and `<name>.png`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use prunus_sparsity::gmp::{Boundary, GmpSchedule};
use prunus_stage::{
    Context, Input, Kinds, ParamSpec, ParamType, Params, StageError, StageKind, Value,
};

use crate::curves::Curves;
use crate::heatmap::{Heatmap, Matrix};
use crate::plot::{Line, Point, plain, save};
use crate::probes::{Panel, Probes};
use crate::scaling::{Bar, BarSeries, Scaling};
use crate::schedule::Schedule;
use crate::sweep::Sweep;

pub fn kinds() -> Kinds {
    [
        Type::Scaling,
        Type::Sweep,
        Type::Curves,
        Type::Schedule,
        Type::Probes,
        Type::Heatmap,
    ]
    .into_iter()
    .map(|t| Arc::new(FigureKind(t)) as Arc<dyn StageKind>)
    .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Scaling,
    Sweep,
    Curves,
    Schedule,
    Probes,
    Heatmap,
}

struct FigureKind(Type);

fn s(v: &str) -> Option<Value> {
    Some(Value::Str(v.into()))
}

impl StageKind for FigureKind {
    fn name(&self) -> &'static str {
        match self.0 {
            Type::Scaling => "figure/scaling",
            Type::Sweep => "figure/sweep",
            Type::Curves => "figure/curves",
            Type::Schedule => "figure/schedule",
            Type::Probes => "figure/probes",
            Type::Heatmap => "figure/heatmap",
        }
    }

    fn version(&self) -> u32 {
        1
    }

    fn doc(&self) -> &'static str {
        match self.0 {
            Type::Scaling => {
                "Bars of an aggregate score over network width with 95% CI error bars, one bar per \
                 series (paper Fig. 1, 4, 6). Reads the summary.csv of aggregate stages."
            }
            Type::Sweep => {
                "An aggregate score against a swept value (sparsity, replay ratio) with 95% CI error \
                 bars, one line per series (paper Fig. 3, 5, 14-16). Reads summary.csv."
            }
            Type::Curves => {
                "Sample-efficiency curves: the aggregate score against environment steps with 95% CI \
                 bands, one line per group (paper Fig. 7, 8, 10, 12). Reads curves.csv."
            }
            Type::Schedule => {
                "Gradual magnitude pruning schedules: sparsity through training for each target \
                 sparsity (paper Fig. 2), plus the sparsity measured in any training inputs."
            }
            Type::Probes => {
                "One panel per probe (Q-target variance, norms, srank, dormant neurons...) against \
                 environment steps, mean and one standard deviation over seeds per series (paper \
                 Fig. 11). Reads probes.csv."
            }
            Type::Heatmap => {
                "Gradient covariance heatmaps (cosine similarity of per-sample gradients), one panel \
                 per input at the chosen checkpoint (paper Fig. 13). Reads grad_cov.json."
            }
        }
    }

    fn deterministic(&self) -> bool {
        true
    }

    fn params(&self) -> Vec<ParamSpec> {
        let default_name = self.name().trim_start_matches("figure/");
        let mut p = vec![
            ParamSpec::new(
                "name",
                ParamType::Str,
                s(default_name),
                "file name of the figure, without extension",
            ),
            ParamSpec::new(
                "title",
                ParamType::Str,
                s(""),
                "title drawn above the figure",
            ),
        ];
        let metric = || {
            ParamSpec::new(
                "metric",
                ParamType::Str,
                s("iqm"),
                "which metric of summary.csv to draw",
            )
        };
        let y_label = || {
            ParamSpec::new(
                "y-label",
                ParamType::Str,
                s("IQM normalized score"),
                "label of the y axis",
            )
        };
        match self.0 {
            Type::Scaling | Type::Sweep => {
                let (x, series) = if self.0 == Type::Scaling {
                    ("width", "sparsity")
                } else {
                    ("sparsity", "width")
                };
                p.push(ParamSpec::new(
                    "x",
                    ParamType::Str,
                    s(x),
                    "the group axis on the x axis",
                ));
                p.push(ParamSpec::new(
                    "series",
                    ParamType::Str,
                    s(series),
                    "the group axis whose values are the series (other group axes join the series name)",
                ));
                p.push(ParamSpec::new(
                    "x-label",
                    ParamType::Str,
                    s(""),
                    "label of the x axis (default: from `x`)",
                ));
                p.push(y_label());
                p.push(metric());
                if self.0 == Type::Sweep {
                    p.push(ParamSpec::new(
                        "log-x",
                        ParamType::Bool,
                        Some(Value::Bool(false)),
                        "base-2 logarithmic x axis (replay ratios)",
                    ));
                }
            }
            Type::Curves => {
                p.push(ParamSpec::new(
                    "x-label",
                    ParamType::Str,
                    s("Environment steps"),
                    "label of the x axis",
                ));
                p.push(y_label());
            }
            Type::Schedule => {
                p.push(ParamSpec::new(
                    "sparsity",
                    ParamType::FloatList,
                    Some(Value::List(vec![Value::Float(0.95)])),
                    "target sparsities to draw",
                ));
                p.push(ParamSpec::new(
                    "start",
                    ParamType::Float,
                    Some(Value::Float(0.2)),
                    "pruning start, fraction of training",
                ));
                p.push(ParamSpec::new(
                    "end",
                    ParamType::Float,
                    Some(Value::Float(0.8)),
                    "pruning end, fraction of training",
                ));
                p.push(ParamSpec::new(
                    "update-period",
                    ParamType::Int,
                    Some(Value::Int(1000)),
                    "gradient steps between mask updates",
                ));
                p.push(ParamSpec::new(
                    "steps",
                    ParamType::Int,
                    Some(Value::Int(2_500_000)),
                    "gradient steps of the run (the paper: 40M frames = 2.5M updates)",
                ));
            }
            Type::Probes => {
                p.push(ParamSpec::new(
                    "series",
                    ParamType::Str,
                    s("sparsity"),
                    "the input axis whose values are the series",
                ));
                p.push(ParamSpec::new(
                    "probes",
                    ParamType::StrList,
                    Some(Value::List(Vec::new())),
                    "probes to draw, in order (empty: all)",
                ));
            }
            Type::Heatmap => {
                p.push(ParamSpec::new(
                    "checkpoint",
                    ParamType::Str,
                    s("last"),
                    "which checkpoint of each input: last, first, or all",
                ));
            }
        }
        p
    }

    fn outputs(&self, params: &Params) -> Vec<String> {
        let name = params
            .str("name")
            .unwrap_or(self.name().trim_start_matches("figure/"));
        vec![format!("{name}.svg"), format!("{name}.png")]
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let p = &ctx.params;
        let name = p.str("name")?;
        if name.is_empty() || name.contains('/') {
            return Err(StageError::Param {
                key: "name".into(),
                message: format!("`{name}` is not a file name"),
            });
        }
        let title = p.str("title")?.to_string();
        let fail = |e: crate::FigureError| StageError::Failed(format!("figure `{name}`: {e}"));
        match self.0 {
            Type::Scaling | Type::Sweep => {
                let rows = read_summaries(&ctx.inputs, p.str("metric")?)?;
                let (x, series) = (p.str("x")?, p.str("series")?);
                let x_label = match p.str("x-label")? {
                    "" => axis_label(x),
                    l => l.to_string(),
                };
                let y_label = p.str("y-label")?.to_string();
                let grouped = group(&rows, x, series)?;
                if self.0 == Type::Scaling {
                    let categories: Vec<String> =
                        grouped.xs.iter().map(|x| x.label.clone()).collect();
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
                                        estimate: r.estimate,
                                        low: r.low,
                                        high: r.high,
                                    })
                                })
                                .collect(),
                        })
                        .collect();
                    save(
                        &Scaling {
                            title,
                            x_label,
                            y_label,
                            categories,
                            series,
                        },
                        &ctx.out_dir,
                        name,
                    )
                    .map_err(fail)?;
                } else {
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
                                            r.estimate,
                                            r.low,
                                            r.high,
                                        )
                                    })
                                })
                                .collect(),
                        })
                        .collect();
                    save(
                        &Sweep {
                            title,
                            x_label,
                            y_label,
                            lines,
                            log_x: p.bool("log-x")?,
                        },
                        &ctx.out_dir,
                        name,
                    )
                    .map_err(fail)?;
                }
            }
            Type::Curves => {
                let lines = read_curves(&ctx.inputs)?;
                let figure = Curves {
                    title,
                    x_label: p.str("x-label")?.to_string(),
                    y_label: p.str("y-label")?.to_string(),
                    lines,
                };
                save(&figure, &ctx.out_dir, name).map_err(fail)?;
            }
            Type::Schedule => {
                let steps = p.u64("steps")?;
                let period = p.u64("update-period")?;
                let (start, end) = (p.f64("start")?, p.f64("end")?);
                let mut lines = Vec::new();
                for target in p.f64s("sparsity")? {
                    let gmp = GmpSchedule::new(
                        target,
                        Boundary::Fraction(start),
                        Boundary::Fraction(end),
                        period,
                        steps,
                    )
                    .map_err(|e| StageError::Param {
                        key: "sparsity".into(),
                        message: e.to_string(),
                    })?;
                    lines.push(Schedule::line(
                        format!("GMP to {}", plain(target)),
                        &gmp,
                        steps,
                        500,
                    ));
                }
                lines.extend(measured_sparsity(&ctx.inputs)?);
                let x_label = "Training progress (% of training)".to_string();
                save(
                    &Schedule {
                        title,
                        x_label,
                        lines,
                    },
                    &ctx.out_dir,
                    name,
                )
                .map_err(fail)?;
            }
            Type::Probes => {
                let panels = read_probes(&ctx.inputs, p.str("series")?, &p.strs("probes")?)?;
                save(&Probes { title, panels }, &ctx.out_dir, name).map_err(fail)?;
            }
            Type::Heatmap => {
                let panels = read_grad_cov(&ctx.inputs, p.str("checkpoint")?)?;
                save(
                    &Heatmap {
                        title,
                        panels,
                        range: (-1.0, 1.0),
                    },
                    &ctx.out_dir,
                    name,
                )
                .map_err(fail)?;
            }
        }
        Ok(())
    }
}

/// `width` -> `Width multiplier`, `replay_ratio` -> `Replay ratio`.
fn axis_label(axis: &str) -> String {
    match axis {
        "width" => "Width multiplier".into(),
        "sparsity" => "Target sparsity".into(),
        "replay_ratio" => "Replay ratio".into(),
        other => crate::probes::probe_title(other),
    }
}

/// A series name from an axis and its value: sparsity 0 is `Dense`, 0.95 `Pruned (95%)`.
fn series_label(axis: &str, value: &str) -> String {
    match (axis, value.parse::<f64>()) {
        ("sparsity", Ok(0.0)) => "Dense".into(),
        ("sparsity", Ok(s)) => format!("Pruned ({}%)", plain(100.0 * s)),
        (axis, _) => format!("{axis} {value}"),
    }
}

fn read_csv(path: &Path, instance: &str) -> Result<(Vec<String>, Vec<Vec<String>>), StageError> {
    let fail = |e: String| StageError::Failed(format!("{instance} ({}): {e}", path.display()));
    let mut reader = csv::Reader::from_path(path).map_err(|e| fail(e.to_string()))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| fail(e.to_string()))?
        .iter()
        .map(String::from)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        rows.push(
            record
                .map_err(|e| fail(e.to_string()))?
                .iter()
                .map(String::from)
                .collect(),
        );
    }
    Ok((header, rows))
}

fn column(header: &[String], name: &str, path: &Path) -> Result<usize, StageError> {
    header.iter().position(|h| h == name).ok_or_else(|| {
        StageError::Failed(format!(
            "{} has no `{name}` column (columns: {}); is the input an aggregate/probe stage?",
            path.display(),
            header.join(", ")
        ))
    })
}

fn number(cell: &str, path: &Path) -> Result<f64, StageError> {
    cell.parse()
        .map_err(|_| StageError::Failed(format!("{}: `{cell}` is not a number", path.display())))
}

/// One row of a summary.csv: its group values and the interval.
struct SummaryRow {
    groups: BTreeMap<String, String>,
    estimate: f64,
    low: f64,
    high: f64,
}

fn read_summaries(inputs: &[Input], metric: &str) -> Result<Vec<SummaryRow>, StageError> {
    let mut rows = Vec::new();
    let mut metrics = BTreeSet::new();
    for input in inputs {
        let path = input.output("summary.csv")?;
        let (header, records) = read_csv(path, &input.instance)?;
        let m = column(&header, "metric", path)?;
        let (e, lo, hi) = (
            column(&header, "estimate", path)?,
            column(&header, "ci_low", path)?,
            column(&header, "ci_high", path)?,
        );
        for r in records {
            metrics.insert(r[m].clone());
            if r[m] != metric {
                continue;
            }
            rows.push(SummaryRow {
                groups: header[..m]
                    .iter()
                    .cloned()
                    .zip(r[..m].iter().cloned())
                    .collect(),
                estimate: number(&r[e], path)?,
                low: number(&r[lo], path)?,
                high: number(&r[hi], path)?,
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

fn read_curves(inputs: &[Input]) -> Result<Vec<Line>, StageError> {
    let mut lines: Vec<Line> = Vec::new();
    for input in inputs {
        let path = input.output("curves.csv")?;
        let (header, records) = read_csv(path, &input.instance)?;
        let steps = column(&header, "env_steps", path)?;
        let (e, lo, hi) = (
            column(&header, "estimate", path)?,
            column(&header, "ci_low", path)?,
            column(&header, "ci_high", path)?,
        );
        for r in records {
            let name = header[..steps]
                .iter()
                .zip(&r[..steps])
                .map(|(axis, value)| series_label(axis, value))
                .collect::<Vec<_>>()
                .join(", ");
            let point = Point::with_interval(
                number(&r[steps], path)?,
                number(&r[e], path)?,
                number(&r[lo], path)?,
                number(&r[hi], path)?,
            );
            match lines.iter_mut().find(|l| l.name == name) {
                Some(line) => line.points.push(point),
                None => lines.push(Line {
                    name,
                    points: vec![point],
                }),
            }
        }
    }
    if lines.is_empty() {
        return Err(StageError::Failed(
            "the inputs' curves.csv have no rows to draw".into(),
        ));
    }
    for line in &mut lines {
        line.points.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    Ok(lines)
}

/// The `sparsity` column of training inputs' returns.csv against progress through training.
fn measured_sparsity(inputs: &[Input]) -> Result<Vec<Line>, StageError> {
    let mut lines = Vec::new();
    for input in inputs
        .iter()
        .filter(|i| i.outputs.contains_key("returns.csv"))
    {
        let path = input.output("returns.csv")?;
        let (header, records) = read_csv(path, &input.instance)?;
        let (steps, sparsity) = (
            column(&header, "env_steps", path)?,
            column(&header, "sparsity", path)?,
        );
        let values: Vec<(f64, f64)> = records
            .iter()
            .map(|r| Ok((number(&r[steps], path)?, number(&r[sparsity], path)?)))
            .collect::<Result<_, StageError>>()?;
        let total = values.iter().map(|v| v.0).fold(0.0, f64::max);
        if total > 0.0 {
            let points = values
                .iter()
                .map(|&(s, y)| Point::new(100.0 * s / total, y))
                .collect();
            lines.push(Line {
                name: format!("measured: {}", input.instance),
                points,
            });
        }
    }
    Ok(lines)
}

fn read_probes(
    inputs: &[Input],
    series_axis: &str,
    only: &[String],
) -> Result<Vec<Panel>, StageError> {
    // probe -> series -> env_steps -> values over inputs (seeds)
    let mut values: BTreeMap<String, BTreeMap<String, BTreeMap<u64, Vec<f64>>>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut series_order: Vec<(Option<f64>, String)> = Vec::new();
    for input in inputs {
        let path = input.output("probes.csv")?;
        let (header, records) = read_csv(path, &input.instance)?;
        let (steps, probe, value) = (
            column(&header, "env_steps", path)?,
            column(&header, "probe", path)?,
            column(&header, "value", path)?,
        );
        let raw = input
            .axes
            .get(series_axis)
            .map(ToString::to_string)
            .unwrap_or_default();
        let series = if raw.is_empty() {
            input.stage.clone()
        } else {
            series_label(series_axis, &raw)
        };
        if !series_order.iter().any(|s| s.1 == series) {
            series_order.push((raw.parse().ok(), series.clone()));
        }
        for r in records {
            if !order.contains(&r[probe]) {
                order.push(r[probe].clone());
            }
            let x = number(&r[steps], path)? as u64;
            let y = number(&r[value], path)?;
            values
                .entry(r[probe].clone())
                .or_default()
                .entry(series.clone())
                .or_default()
                .entry(x)
                .or_default()
                .push(y);
        }
    }
    series_order.sort_by(|a, b| match (a.0, b.0) {
        (Some(p), Some(q)) => p.total_cmp(&q),
        _ => a.1.cmp(&b.1),
    });
    let wanted: Vec<String> = if only.is_empty() {
        order
    } else {
        only.to_vec()
    };
    let mut panels = Vec::new();
    for probe in wanted {
        let Some(by_series) = values.get(&probe) else {
            return Err(StageError::Param {
                key: "probes".into(),
                message: format!(
                    "no input has the probe `{probe}` (they have: {})",
                    values.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        };
        let lines = series_order
            .iter()
            .filter_map(|(_, name)| by_series.get(name).map(|points| (name, points)))
            .map(|(name, points)| Line {
                name: name.clone(),
                points: points
                    .iter()
                    .map(|(&x, ys)| {
                        let mean = ys.iter().sum::<f64>() / ys.len() as f64;
                        let sd = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>()
                            / ys.len() as f64)
                            .sqrt();
                        Point::with_interval(x as f64, mean, mean - sd, mean + sd)
                    })
                    .collect(),
            })
            .collect();
        panels.push(Panel { probe, lines });
    }
    Ok(panels)
}

/// Reads `grad_cov.json`: a list of checkpoints (or `{"checkpoints": [...]}`), each with
/// `env_steps` and `matrix` (nested rows, or a flat row-major k*k list).
fn read_grad_cov(inputs: &[Input], which: &str) -> Result<Vec<Matrix>, StageError> {
    if !matches!(which, "last" | "first" | "all") {
        return Err(StageError::Param {
            key: "checkpoint".into(),
            message: format!("expected last, first or all, got `{which}`"),
        });
    }
    let mut panels = Vec::new();
    for input in inputs {
        let path = input.output("grad_cov.json")?;
        let fail =
            |m: String| StageError::Failed(format!("{} ({}): {m}", input.instance, path.display()));
        let text = std::fs::read_to_string(path)?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        let list = match &json {
            serde_json::Value::Array(a) => a.clone(),
            serde_json::Value::Object(o) => match o.get("checkpoints") {
                Some(serde_json::Value::Array(a)) => a.clone(),
                _ => vec![json.clone()],
            },
            _ => return Err(fail("expected a list of checkpoints".into())),
        };
        let mut checkpoints = Vec::new();
        for c in &list {
            let steps = c
                .get("env_steps")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(f64::NAN);
            let matrix = c
                .get("matrix")
                .ok_or_else(|| fail("a checkpoint has no `matrix`".into()))?;
            checkpoints.push((steps, to_matrix(matrix).map_err(fail)?));
        }
        checkpoints.sort_by(|a, b| a.0.total_cmp(&b.0));
        let chosen: Vec<_> = match which {
            "first" => checkpoints.into_iter().take(1).collect(),
            "last" => checkpoints.into_iter().last().into_iter().collect(),
            _ => checkpoints,
        };
        let label = input
            .axes
            .iter()
            .filter(|(k, _)| *k != "seed")
            .map(|(k, v)| series_label(k, &v.to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        for (steps, values) in chosen {
            let at = if steps.is_finite() {
                format!(" @ {}", crate::plot::si(steps))
            } else {
                String::new()
            };
            panels.push(Matrix {
                title: format!("{label}{at}"),
                values,
            });
        }
    }
    Ok(panels)
}

fn to_matrix(v: &serde_json::Value) -> Result<Vec<Vec<f64>>, String> {
    let nums = |a: &[serde_json::Value]| -> Result<Vec<f64>, String> {
        a.iter()
            .map(|x| x.as_f64().ok_or_else(|| format!("`{x}` is not a number")))
            .collect()
    };
    let a = v.as_array().ok_or("`matrix` is not a list")?;
    if a.first().is_some_and(serde_json::Value::is_array) {
        a.iter()
            .map(|row| nums(row.as_array().ok_or("a matrix row is not a list")?))
            .collect()
    } else {
        let flat = nums(a)?;
        let k = (flat.len() as f64).sqrt().round() as usize;
        if k * k != flat.len() {
            return Err(format!(
                "a flat matrix of {} values is not square",
                flat.len()
            ));
        }
        Ok(flat.chunks(k).map(<[f64]>::to_vec).collect())
    }
}
