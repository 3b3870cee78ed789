//! The `figure/*` stage kinds: each reads its inputs' tables (`summary.csv` and `curves.csv`
//! of `aggregate/*`, `probes.csv` and `grad_cov.json` of `probe`, `returns.csv` of training)
//! and writes `<name>.svg` and `<name>.png`.

mod curves;
mod heatmap;
mod probes;
mod schedule;
mod summary;

use std::path::Path;
use std::sync::Arc;

use prunus_stage::{
    Context, Input, Kinds, ParamSpec, ParamType, Params, StageError, StageKind, Value,
};

use crate::plot::{Figure, plain, save};

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

/// The y-axis label of the figures of aggregate scores.
fn y_label() -> ParamSpec {
    ParamSpec::new(
        "y-label",
        ParamType::Str,
        s("IQM normalized score"),
        "label of the y axis",
    )
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
        match self.0 {
            // v2: error bars drawn as three strokes (v1's one path drew spikes at its turns).
            Type::Scaling | Type::Sweep => 2,
            _ => 1,
        }
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

    fn deterministic(&self, _params: &Params) -> bool {
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
        p.extend(match self.0 {
            Type::Scaling => summary::params(false),
            Type::Sweep => summary::params(true),
            Type::Curves => curves::params(),
            Type::Schedule => schedule::params(),
            Type::Probes => probes::params(),
            Type::Heatmap => heatmap::params(),
        });
        p
    }

    fn outputs(&self, params: &Params) -> Vec<String> {
        let name = params
            .str("name")
            .unwrap_or(self.name().trim_start_matches("figure/"));
        vec![format!("{name}.svg"), format!("{name}.png")]
    }

    fn validate(&self, params: &Params) -> Result<(), StageError> {
        file_name(params)?;
        if self.0 == Type::Schedule {
            schedule::schedules(params)?;
        }
        Ok(())
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let name = file_name(&ctx.params)?;
        let draw = Draw {
            ctx,
            name,
            title: ctx.params.str("title")?.to_string(),
        };
        match self.0 {
            Type::Scaling => summary::scaling(&draw),
            Type::Sweep => summary::sweep(&draw),
            Type::Curves => curves::run(&draw),
            Type::Schedule => schedule::run(&draw),
            Type::Probes => probes::run(&draw),
            Type::Heatmap => heatmap::run(&draw),
        }
    }
}

/// The figure's file name without extension (`name`): one path segment.
fn file_name(params: &Params) -> Result<&str, StageError> {
    let name = params.str("name")?;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(StageError::Param {
            key: "name".into(),
            message: format!("`{name}` is not a file name; write e.g. name \"scaling\""),
        });
    }
    Ok(name)
}

/// What every figure kind draws with: its context, file name and title.
struct Draw<'a> {
    ctx: &'a Context,
    name: &'a str,
    title: String,
}

impl Draw<'_> {
    fn save(&self, figure: &impl Figure) -> Result<(), StageError> {
        save(figure, &self.ctx.out_dir, self.name)
            .map(|_| ())
            .map_err(|e| StageError::Failed(format!("figure `{}`: {e}", self.name)))
    }
}

/// The message of an input's result file that cannot be read.
fn read_error(input: &Input, path: &Path) -> impl Fn(prunus_results::Error) -> StageError {
    let prefix = format!("{} ({})", input.instance, path.display());
    move |e| StageError::Failed(format!("{prefix}: {}", e.detail()))
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
