//! Sweeps (paper Fig. 3, 5, 14-16): the aggregate score against a swept hyper-parameter
//! (target sparsity, replay ratio), one line per series (e.g. width), with 95% confidence
//! intervals as error bars.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::FigureError;
use crate::plot::{Figure, Intervals, Line, LineChart, plain};

#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
}

impl Figure for Sweep {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        LineChart {
            title: &self.title,
            x_label: &self.x_label,
            y_label: &self.y_label,
            lines: &self.lines,
            intervals: Intervals::ErrorBars,
            markers: true,
            x_format: plain,
            legend: true,
            y_range: None,
            font_scale: 1.0,
        }
        .draw(root)
    }
}
