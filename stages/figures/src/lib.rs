//! Figures of the paper drawn with plotters, as SVG and PNG with an embedded font: width
//! scaling bars, sparsity and replay-ratio sweeps, sample-efficiency curves with confidence
//! bands, pruning schedules, probe panels and gradient covariance heatmaps, plus the
//! `figure/*` stage kinds that draw them from the `aggregate/*` and `probe` outputs.

pub mod curves;
pub mod heatmap;
mod kind;
pub mod plot;
pub mod probes;
pub mod scaling;
pub mod schedule;
pub mod sweep;

pub use plot::{Figure, Line, Point, save};

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("{0}")]
    Data(String),
}

/// The stage kinds this crate contributes to the engine's registry.
pub fn kinds() -> prunus_stage::Kinds {
    kind::kinds()
}
