//! How a result type maps to its file: CSV rows or a JSON list, and the functions that write
//! and read them.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cells;
use crate::error::Error;

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

pub(crate) fn write_json_value(
    path: &Path,
    value: &impl Serialize,
    style: JsonStyle,
) -> Result<(), Error> {
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
