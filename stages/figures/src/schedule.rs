//! Pruning schedules (paper Fig. 2): the sparsity in effect through training under gradual
//! magnitude pruning (prunus-sparsity's [`GmpSchedule`], JaxPruner's cubic schedule), one
//! line per schedule, optionally with the sparsity measured in training runs.

use plotters::coord::Shift;
use plotters::prelude::*;
use prunus_sparsity::gmp::GmpSchedule;

use crate::error::FigureError;
use crate::plot::{Figure, Intervals, Line, LineChart, Point, plain};

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub title: String,
    pub x_label: String,
    pub lines: Vec<Line>,
}

impl Schedule {
    /// The sparsity in effect of `schedule` at `samples` evenly spaced points of a run of
    /// `total` gradient steps, with x in percent of training.
    pub fn line(
        name: impl Into<String>,
        schedule: &GmpSchedule,
        total: u64,
        samples: usize,
    ) -> Line {
        let points = (0..=samples)
            .map(|i| {
                let step = (i as f64 / samples as f64 * total as f64).round() as u64;
                Point::new(
                    100.0 * step as f64 / total as f64,
                    schedule.sparsity_in_effect(step.min(total.saturating_sub(1))),
                )
            })
            .collect();
        Line {
            name: name.into(),
            points,
        }
    }
}

impl Figure for Schedule {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        LineChart {
            title: &self.title,
            x_label: &self.x_label,
            y_label: "Sparsity",
            lines: &self.lines,
            intervals: Intervals::Band,
            markers: false,
            x_format: plain,
            legend: true,
            y_range: Some((0.0, 1.0)),
            font_scale: 1.0,
        }
        .draw(root)
    }
}
