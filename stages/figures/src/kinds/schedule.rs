//! `figure/schedule`: gradual magnitude pruning schedules (the paper's Fig. 2), with the
//! sparsity measured in the `returns.csv` of any training inputs.

use prunus_results::{ReturnsRow, read_csv};
use prunus_sparsity::gmp::{Boundary, GmpSchedule};
use prunus_stage::{Input, ParamSpec, ParamType, Params, StageError, Value};

use super::{Draw, read_error};
use crate::plot::{Line, Point, plain};
use crate::schedule::Schedule;

pub(super) fn params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "sparsity",
            ParamType::FloatList,
            Some(Value::List(vec![Value::Float(0.95)])),
            "target sparsities to draw",
        ),
        ParamSpec::new(
            "start",
            ParamType::Float,
            Some(Value::Float(0.2)),
            "pruning start, fraction of training",
        ),
        ParamSpec::new(
            "end",
            ParamType::Float,
            Some(Value::Float(0.8)),
            "pruning end, fraction of training",
        ),
        ParamSpec::new(
            "update-period",
            ParamType::Int,
            Some(Value::Int(1000)),
            "gradient steps between mask updates",
        ),
        ParamSpec::new(
            "steps",
            ParamType::Int,
            Some(Value::Int(2_500_000)),
            "gradient steps of the run (the paper: 40M frames = 2.5M updates)",
        ),
    ]
}

/// The schedule to each target sparsity, over the run's gradient steps (`steps`).
pub(super) fn schedules(p: &Params) -> Result<(Vec<(f64, GmpSchedule)>, u64), StageError> {
    let steps = p.u64("steps")?;
    let period = p.u64("update-period")?;
    let (start, end) = (p.f64("start")?, p.f64("end")?);
    let bad = |key: &str, message: String| StageError::Param {
        key: key.into(),
        message,
    };
    if period == 0 {
        return Err(bad(
            "update-period",
            "must be at least 1 gradient step".into(),
        ));
    }
    if !(0.0 <= start && start <= end && end <= 1.0) {
        let message = format!("need 0 <= start <= end <= 1, got start {start} end {end}");
        return Err(bad("start", message));
    }
    let mut out = Vec::new();
    for target in p.f64s("sparsity")? {
        let gmp = GmpSchedule::new(
            target,
            Boundary::Fraction(start),
            Boundary::Fraction(end),
            period,
            steps,
        )
        .map_err(|e| bad("sparsity", e.to_string()))?;
        out.push((target, gmp));
    }
    Ok((out, steps))
}

pub(super) fn run(draw: &Draw) -> Result<(), StageError> {
    let (schedules, steps) = schedules(&draw.ctx.params)?;
    let mut lines: Vec<Line> = schedules
        .iter()
        .map(|(target, gmp)| Schedule::line(format!("GMP to {}", plain(*target)), gmp, steps, 500))
        .collect();
    lines.extend(measured_sparsity(&draw.ctx.inputs)?);
    draw.save(&Schedule {
        title: draw.title.clone(),
        x_label: "Training progress (% of training)".to_string(),
        lines,
    })
}

/// The `sparsity` column of training inputs' returns.csv against progress through training.
fn measured_sparsity(inputs: &[Input]) -> Result<Vec<Line>, StageError> {
    let mut lines = Vec::new();
    for input in inputs
        .iter()
        .filter(|i| i.outputs.contains_key("returns.csv"))
    {
        let path = input.output("returns.csv")?;
        let rows = read_csv::<ReturnsRow>(path).map_err(read_error(input, path))?;
        let total = rows.iter().map(|r| r.env_steps as f64).fold(0.0, f64::max);
        if total > 0.0 {
            let points = rows
                .iter()
                .map(|r| Point::new(100.0 * r.env_steps as f64 / total, r.sparsity))
                .collect();
            lines.push(Line {
                name: format!("measured: {}", input.instance),
                points,
            });
        }
    }
    Ok(lines)
}
