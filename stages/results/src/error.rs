//! Why a result file could not be written or read.

use std::path::{Path, PathBuf};

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

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn csv(path: &Path, e: csv::Error) -> Error {
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

    pub(crate) fn json(path: &Path, source: serde_json::Error) -> Error {
        Error::Json {
            path: path.to_path_buf(),
            source,
        }
    }
}
