//! `figure/probes`: one panel per probe of the inputs' `probes.csv` (the paper's Fig. 11), mean
//! and one standard deviation over the inputs (seeds) of each series.

use std::collections::BTreeMap;

use prunus_results::{ProbeRow, read_csv};
use prunus_stage::{Input, ParamSpec, ParamType, StageError, Value};

use super::{Draw, read_error, s, series_label};
use crate::plot::{Line, Point};
use crate::probes::{Panel, Probes};

pub(super) fn params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "series",
            ParamType::Str,
            s("sparsity"),
            "the input axis whose values are the series",
        ),
        ParamSpec::new(
            "probes",
            ParamType::StrList,
            Some(Value::List(Vec::new())),
            "probes to draw, in order (empty: all)",
        ),
    ]
}

pub(super) fn run(draw: &Draw) -> Result<(), StageError> {
    let p = &draw.ctx.params;
    let panels = read_probes(&draw.ctx.inputs, p.str("series")?, &p.strs("probes")?)?;
    draw.save(&Probes {
        title: draw.title.clone(),
        panels,
    })
}

/// The panels of the `only` probes (empty: every probe, in the order they first appear).
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
        let rows = read_csv::<ProbeRow>(path).map_err(read_error(input, path))?;
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
        for r in rows {
            if !order.contains(&r.probe) {
                order.push(r.probe.clone());
            }
            values
                .entry(r.probe)
                .or_default()
                .entry(series.clone())
                .or_default()
                .entry(r.env_steps)
                .or_default()
                .push(r.value);
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
