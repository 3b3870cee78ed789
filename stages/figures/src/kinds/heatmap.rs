//! `figure/heatmap`: the gradient covariance matrices of the inputs' `grad_cov.json` (the
//! paper's Fig. 13).

use prunus_results::{GradCov, read_json};
use prunus_stage::{Input, ParamSpec, ParamType, StageError};

use super::{Draw, read_error, s, series_label};
use crate::heatmap::{Heatmap, Matrix};

pub(super) fn params() -> Vec<ParamSpec> {
    vec![ParamSpec::new(
        "checkpoint",
        ParamType::Str,
        s("last"),
        "which checkpoint of each input: last, first, or all",
    )]
}

pub(super) fn run(draw: &Draw) -> Result<(), StageError> {
    let panels = read_grad_cov(&draw.ctx.inputs, draw.ctx.params.str("checkpoint")?)?;
    draw.save(&Heatmap {
        title: draw.title.clone(),
        panels,
        range: (-1.0, 1.0),
    })
}

/// One panel per chosen checkpoint (`last`, `first` or `all`) of each input, titled by the
/// input's axes (seed aside) and the checkpoint's environment steps.
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
        let mut checkpoints = read_json::<GradCov>(path).map_err(read_error(input, path))?;
        checkpoints.sort_by_key(|c| c.env_steps);
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
        for c in chosen {
            panels.push(Matrix {
                title: format!("{label} @ {}", crate::plot::si(c.env_steps as f64)),
                values: c.matrix,
            });
        }
    }
    Ok(panels)
}
