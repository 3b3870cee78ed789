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
mod files;
mod table;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use files::{CheckpointEntry, GradCov, ProbeRow, ReturnsRow, SparsityRow};
pub use table::{AxisValue, CurvePoint, Grouped, Improvement, ProfilePoint, Score, Summary, Table};

/// A result file's conventional name inside a stage's output directory.
pub trait ResultFile {
    const NAME: &'static str;
}

/// A CSV file with one record per value of `Self`: a flat struct of numbers and strings whose
/// field names are the header. `Default` gives the header of a file with no rows.
pub trait CsvRow: ResultFile + Serialize + DeserializeOwned + Default {}

/// How a JSON result file is laid out; each file keeps the layout it has always had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonStyle {
    /// One line, no trailing newline (`serde_json::to_vec`).
    Compact,
    /// Indented by two spaces, no trailing newline (`serde_json::to_vec_pretty`).
    Pretty,
    /// Indented by two spaces and ended by a newline.
    PrettyLine,
}

/// A JSON file holding a list of `Self`.
pub trait JsonRecord: ResultFile + Serialize + DeserializeOwned {
    const STYLE: JsonStyle;
}

/// Why a result file could not be written or read; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A CSV record that does not parse; `row` counts data rows from 1 (the header is row 0).
    #[error("{}: row {row} (line {line}): {message}", path.display())]
    Row {
        path: PathBuf,
        row: u64,
        line: u64,
        message: String,
    },
    /// A CSV file that is malformed as a whole (bad header, missing columns).
    #[error("{}: {message}", path.display())]
    Csv { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl Error {
    /// What went wrong, without the file's path: for callers whose own message names the file.
    pub fn detail(&self) -> String {
        match self {
            Error::Io { source, .. } => source.to_string(),
            Error::Row {
                row, line, message, ..
            } => format!("row {row} (line {line}): {message}"),
            Error::Csv { message, .. } => message.clone(),
            Error::Json { source, .. } => source.to_string(),
        }
    }

    fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn csv(path: &Path, e: csv::Error) -> Error {
        let message = match e.kind() {
            csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
            _ => e.to_string(),
        };
        match e.position() {
            Some(pos) => Error::Row {
                path: path.to_path_buf(),
                row: pos.record(),
                line: pos.line(),
                message,
            },
            None => match e.into_kind() {
                csv::ErrorKind::Io(source) => Error::io(path, source),
                _ => Error::Csv {
                    path: path.to_path_buf(),
                    message,
                },
            },
        }
    }

    fn json(path: &Path, source: serde_json::Error) -> Error {
        Error::Json {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes `rows` as a CSV file at `path`.
pub fn write_csv<T: CsvRow>(path: &Path, rows: &[T]) -> Result<(), Error> {
    let mut w = csv::Writer::from_path(path).map_err(|e| Error::csv(path, e))?;
    w.write_record(cells::header::<T>())
        .map_err(|e| Error::csv(path, e))?;
    for row in rows {
        let record = cells::cells(row).map_err(|message| Error::Csv {
            path: path.to_path_buf(),
            message,
        })?;
        w.write_record(&record).map_err(|e| Error::csv(path, e))?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

/// Reads the CSV file at `path`; columns are matched by name, so extra columns are ignored.
pub fn read_csv<T: CsvRow>(path: &Path) -> Result<Vec<T>, Error> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| Error::csv(path, e))?;
    reader
        .deserialize::<T>()
        .map(|row| row.map_err(|e| Error::csv(path, e)))
        .collect()
}

/// Writes `records` as a JSON list at `path`, in `T`'s layout.
pub fn write_json<T: JsonRecord>(path: &Path, records: &[T]) -> Result<(), Error> {
    write_json_value(path, &records, T::STYLE)
}

/// Reads the JSON list at `path`.
pub fn read_json<T: JsonRecord>(path: &Path) -> Result<Vec<T>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::json(path, e))
}

fn write_json_value(path: &Path, value: &impl Serialize, style: JsonStyle) -> Result<(), Error> {
    let mut bytes = match style {
        JsonStyle::Compact => serde_json::to_vec(value),
        JsonStyle::Pretty | JsonStyle::PrettyLine => serde_json::to_vec_pretty(value),
    }
    .map_err(|e| Error::json(path, e))?;
    if style == JsonStyle::PrettyLine {
        bytes.push(b'\n');
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}
