//! Figures of the paper drawn with plotters, as SVG and PNG: width scaling bars, sparsity and
//! replay-ratio sweeps, sample-efficiency curves with confidence bands, pruning schedules,
//! probe panels and gradient covariance heatmaps, plus the `figure/*` stage kinds that draw
//! them from the outputs of other stages.
//!
//! | kind | paper | reads |
//! |---|---|---|
//! | `figure/scaling` | Fig. 1, 4, 6 | `summary.csv` (aggregate) |
//! | `figure/sweep` | Fig. 3, 5, 14-16 | `summary.csv` (aggregate) |
//! | `figure/curves` | Fig. 7, 8, 10, 12 | `curves.csv` (aggregate) |
//! | `figure/schedule` | Fig. 2 | parameters; `returns.csv` of training inputs, if any |
//! | `figure/probes` | Fig. 11 | `probes.csv` (probe) |
//! | `figure/heatmap` | Fig. 13 | `grad_cov.json` (probe) |
//!
//! Text is set in DejaVu Sans embedded from the `dejavu` crate, so PNGs render the same on a
//! bare machine without fonts. `cargo run --release --example gallery -p prunus-figures -- DIR`
//! draws every figure type from synthetic data.

pub mod curves;
mod error;
pub mod heatmap;
mod kinds;
pub mod plot;
pub mod probes;
pub mod scaling;
pub mod schedule;
pub mod sweep;

pub use error::FigureError;
pub use plot::{Figure, Line, Point, save};

/// The stage kinds this crate contributes to the engine's registry.
pub fn kinds() -> prunus_stage::Kinds {
    kinds::kinds()
}
