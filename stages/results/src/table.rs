//! The tables of the `aggregate/*` stages: each row starts with the values of the group axes
//! (which axes depends on the pipeline, e.g. `width,sparsity`), then a fixed part.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cells;
use crate::error::Error;
use crate::format::{CsvRow, JsonStyle, ResultFile, write_json_value};

/// A run's value of one axis. In CSV it is text (its `Display`); in `summary.json` a number,
/// boolean or string. A value read back from CSV is the `Str` of that text.
#[derive(Clone, Debug, PartialEq)]
pub enum AxisValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl fmt::Display for AxisValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AxisValue::Bool(b) => write!(f, "{b}"),
            AxisValue::Int(i) => write!(f, "{i}"),
            AxisValue::Float(x) => write!(f, "{x}"),
            AxisValue::Str(s) => f.write_str(s),
        }
    }
}

impl AxisValue {
    fn json(value: Option<&AxisValue>) -> serde_json::Value {
        match value {
            None => serde_json::Value::Null,
            Some(AxisValue::Bool(b)) => (*b).into(),
            Some(AxisValue::Int(i)) => (*i).into(),
            Some(AxisValue::Float(x)) => (*x).into(),
            Some(AxisValue::Str(s)) => s.as_str().into(),
        }
    }
}

/// One row of a [`Table`]: the values of the table's axes (`None`: the run has no such axis,
/// an empty cell) and the fixed part.
#[derive(Clone, Debug, PartialEq)]
pub struct Grouped<R> {
    pub values: Vec<Option<AxisValue>>,
    pub row: R,
}

impl<R> Grouped<R> {
    /// The text of each axis value, by axis name (empty for `None`).
    pub fn cells<'a>(&'a self, axes: &'a [String]) -> impl Iterator<Item = (&'a str, String)> {
        axes.iter().zip(&self.values).map(|(a, v)| {
            let text = v.as_ref().map(ToString::to_string).unwrap_or_default();
            (a.as_str(), text)
        })
    }
}

/// A table of an aggregate: the columns are `axes` then the fields of `R`.
#[derive(Clone, Debug, PartialEq)]
pub struct Table<R> {
    pub axes: Vec<String>,
    pub rows: Vec<Grouped<R>>,
}

impl<R: CsvRow> Table<R> {
    pub fn new(axes: Vec<String>) -> Table<R> {
        Table {
            axes,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, values: Vec<Option<AxisValue>>, row: R) {
        debug_assert_eq!(values.len(), self.axes.len());
        self.rows.push(Grouped { values, row });
    }

    pub fn write_csv(&self, path: &Path) -> Result<(), Error> {
        let mut w = csv::Writer::from_path(path).map_err(|e| Error::csv(path, e))?;
        let header = self
            .axes
            .iter()
            .map(String::as_str)
            .chain(cells::header::<R>());
        w.write_record(header).map_err(|e| Error::csv(path, e))?;
        for g in &self.rows {
            let mut record: Vec<String> = g.cells(&self.axes).map(|(_, text)| text).collect();
            record.extend(cells::cells(&g.row).map_err(|message| Error::Csv {
                path: path.to_path_buf(),
                message,
            })?);
            w.write_record(&record).map_err(|e| Error::csv(path, e))?;
        }
        w.flush().map_err(|e| Error::io(path, e))
    }

    /// Reads a table; its axes are the columns before the first of `R`'s.
    pub fn read_csv(path: &Path) -> Result<Table<R>, Error> {
        let mut reader = csv::Reader::from_path(path).map_err(|e| Error::csv(path, e))?;
        let header = reader.headers().map_err(|e| Error::csv(path, e))?.clone();
        let fixed = cells::header::<R>();
        let Some(first) = header.iter().position(|h| h == fixed[0]) else {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                message: format!(
                    "no `{}` column (columns: {}); is it the {} of an aggregate stage?",
                    fixed[0],
                    header.iter().collect::<Vec<_>>().join(", "),
                    R::NAME
                ),
            });
        };
        let axes: Vec<String> = header.iter().take(first).map(String::from).collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| Error::csv(path, e))?;
            let row: R = record
                .deserialize(Some(&header))
                .map_err(|e| Error::csv(path, e))?;
            let values = record
                .iter()
                .take(first)
                .map(|c| (!c.is_empty()).then(|| AxisValue::Str(c.to_string())))
                .collect();
            rows.push(Grouped { values, row });
        }
        Ok(Table { axes, rows })
    }
}

impl Table<Summary> {
    /// `summary.json`: a list of records, each the group axes and the fields of [`Summary`]
    /// (keys in alphabetical order, as `serde_json` sorts an object's keys).
    pub fn write_json(&self, path: &Path) -> Result<(), Error> {
        let mut records = Vec::new();
        for g in &self.rows {
            let mut json = serde_json::Map::new();
            for (axis, v) in self.axes.iter().zip(&g.values) {
                json.insert(axis.clone(), AxisValue::json(v.as_ref()));
            }
            match serde_json::to_value(&g.row).map_err(|e| Error::json(path, e))? {
                serde_json::Value::Object(fields) => json.extend(fields),
                _ => unreachable!("a struct serializes to an object"),
            }
            records.push(serde_json::Value::Object(json));
        }
        write_json_value(path, &records, JsonStyle::PrettyLine)
    }
}

/// A run's final score: the fixed part of a row of `scores.csv` (one row per run; its axes
/// are every axis of the inputs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Mean return over the run's last iterations with episodes.
    pub final_score: f64,
    pub normalized_score: f64,
}

impl ResultFile for Score {
    const NAME: &'static str = "scores.csv";
}
impl CsvRow for Score {}

/// One metric of one group with its confidence interval: the fixed part of a row of
/// `summary.csv` and of a record of `summary.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// `iqm`, `mean`, `median` or `optimality_gap`.
    pub metric: String,
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Runs in the group.
    pub runs: usize,
}

impl ResultFile for Summary {
    const NAME: &'static str = "summary.csv";
}
impl CsvRow for Summary {}

/// One point of a group's sample-efficiency curve: the fixed part of a row of `curves.csv`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Mean over the group's runs, rounded.
    pub env_steps: u64,
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl ResultFile for CurvePoint {
    const NAME: &'static str = "curves.csv";
}
impl CsvRow for CurvePoint {}

/// One threshold of a group's performance profile: the fixed part of a row of
/// `profiles.csv`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfilePoint {
    pub tau: f64,
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl ResultFile for ProfilePoint {
    const NAME: &'static str = "profiles.csv";
}
impl CsvRow for ProfilePoint {}

/// The probability that one value of the compared axis improves on the baseline value: the
/// fixed part of a row of `improvement.csv`, whose last axis is the compared one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Improvement {
    /// The baseline value of the compared axis, as the `baseline` parameter spells it.
    pub baseline: String,
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub runs: usize,
    pub baseline_runs: usize,
}

impl ResultFile for Improvement {
    const NAME: &'static str = "improvement.csv";
}
impl CsvRow for Improvement {}
