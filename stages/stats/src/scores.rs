//! The score set every statistic works on: for each task (game), the scores of its runs
//! (seeds). rliable takes a `(num_runs x num_tasks)` matrix; prunus also accepts tasks with
//! different numbers of runs (a missing seed), which the stratified bootstrap handles
//! naturally because it resamples runs within each task.

use crate::error::StatsError;

/// Scores of runs grouped by task, stored task-major: entry `i` of task `t` lives at
/// `offsets[t] + i` in [`Scores::values`].
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    values: Vec<f64>,
    offsets: Vec<usize>,
}

impl Scores {
    /// One vector of run scores per task. Every task needs at least one run and every score
    /// must be finite.
    pub fn from_tasks(tasks: Vec<Vec<f64>>) -> Result<Self, StatsError> {
        if tasks.is_empty() {
            return Err(StatsError::Empty("no tasks".into()));
        }
        let mut values = Vec::with_capacity(tasks.iter().map(Vec::len).sum());
        let mut offsets = Vec::with_capacity(tasks.len() + 1);
        offsets.push(0);
        for (t, runs) in tasks.into_iter().enumerate() {
            if runs.is_empty() {
                return Err(StatsError::Empty(format!("task {t} has no runs")));
            }
            if let Some(x) = runs.iter().find(|x| !x.is_finite()) {
                return Err(StatsError::NotFinite(format!("task {t} has the score {x}")));
            }
            values.extend(runs);
            offsets.push(values.len());
        }
        Ok(Scores { values, offsets })
    }

    /// rliable's layout: `matrix[run][task]`, every run scored on every task.
    pub fn from_runs_by_tasks(matrix: &[Vec<f64>]) -> Result<Self, StatsError> {
        let tasks = matrix.first().map_or(0, Vec::len);
        if matrix.iter().any(|row| row.len() != tasks) {
            return Err(StatsError::Mismatch("rows of unequal length".into()));
        }
        Self::from_tasks(
            (0..tasks)
                .map(|t| matrix.iter().map(|row| row[t]).collect())
                .collect(),
        )
    }

    pub fn num_tasks(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Total number of (run, task) entries.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// All entries, task-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The run scores of task `t`.
    pub fn task(&self, t: usize) -> &[f64] {
        &self.values[self.offsets[t]..self.offsets[t + 1]]
    }

    /// The index range of task `t` in [`Scores::values`].
    pub fn task_range(&self, t: usize) -> std::ops::Range<usize> {
        self.offsets[t]..self.offsets[t + 1]
    }

    /// Multiplicities that select every entry once: the point estimate of a weighted metric.
    pub fn unit_weights(&self) -> Vec<u32> {
        vec![1; self.len()]
    }
}
