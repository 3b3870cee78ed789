//! The result files that prunus's stages write and read: one Rust type per file, defined once,
//! so that the writer (a training or probe stage, an aggregate) and every reader (the
//! aggregates, the figures, your own scripts through pandas) agree on its columns.
//!
//! | file | type | written by | read by |
//! |---|---|---|---|
//! | `returns.csv` | [`ReturnsRow`] | `train/*` | `aggregate/*`, `figure/schedule` |
//! | `sparsity.csv` | [`SparsityRow`] | `train/*` | |
//! | `checkpoints.json` | [`CheckpointEntry`] | `train/*` | `probe` |
//! | `probes.csv` | [`ProbeRow`] | `probe` | `figure/probes` |
//! | `grad_cov.json` | [`GradCov`] | `probe` | `figure/heatmap` |
//! | `scores.csv` | [`Table`] of [`Score`] | `aggregate/iqm`, `aggregate/scores` | |
//! | `summary.csv`, `summary.json` | [`Table`] of [`Summary`] | `aggregate/iqm`, `aggregate/scores` | `figure/scaling`, `figure/sweep` |
//! | `curves.csv` | [`Table`] of [`CurvePoint`] | `aggregate/iqm`, `aggregate/scores` | `figure/curves` |
//! | `profiles.csv` | [`Table`] of [`ProfilePoint`] | `aggregate/profile` | |
//! | `improvement.csv` | [`Table`] of [`Improvement`] | `aggregate/improvement` | |
//!
//! The bytes are part of the cache keys of every stage downstream, so the format is fixed:
//! CSV with a header row (written even when there are no rows), numbers as Rust's `{}`
//! formats them (`1`, `0.1`, `100000000000000000000`, `NaN`: never an exponent, unlike the
//! `csv` crate's own float format); JSON as `serde_json` writes it.

mod cells;
mod error;
mod files;
mod format;
mod table;

pub use error::Error;
pub use files::{CheckpointEntry, GradCov, ProbeRow, ReturnsRow, SparsityRow};
pub use format::{
    CsvRow, JsonRecord, JsonStyle, ResultFile, read_csv, read_json, write_csv, write_json,
};
pub use table::{AxisValue, CurvePoint, Grouped, Improvement, ProfilePoint, Score, Summary, Table};
