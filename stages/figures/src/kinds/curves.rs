//! `figure/curves`: the inputs' `curves.csv`, one line per group.

use prunus_results::{CurvePoint, Table};
use prunus_stage::{Input, ParamSpec, ParamType, StageError};

use super::{Draw, read_error, s, series_label, y_label};
use crate::curves::Curves;
use crate::plot::{Line, Point};

pub(super) fn params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "x-label",
            ParamType::Str,
            s("Environment steps"),
            "label of the x axis",
        ),
        y_label(),
    ]
}

pub(super) fn run(draw: &Draw) -> Result<(), StageError> {
    let p = &draw.ctx.params;
    let lines = read_curves(&draw.ctx.inputs)?;
    draw.save(&Curves {
        title: draw.title.clone(),
        x_label: p.str("x-label")?.to_string(),
        y_label: p.str("y-label")?.to_string(),
        lines,
    })
}

/// One line per group of every input, named by its group values, in x order.
fn read_curves(inputs: &[Input]) -> Result<Vec<Line>, StageError> {
    let mut lines: Vec<Line> = Vec::new();
    for input in inputs {
        let path = input.output("curves.csv")?;
        let table = Table::<CurvePoint>::read_csv(path).map_err(read_error(input, path))?;
        for g in &table.rows {
            let name = g
                .cells(&table.axes)
                .map(|(axis, value)| series_label(axis, &value))
                .collect::<Vec<_>>()
                .join(", ");
            let c = &g.row;
            let point = Point::with_interval(c.env_steps as f64, c.estimate, c.ci_low, c.ci_high);
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
