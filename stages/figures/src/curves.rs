//! Sample-efficiency curves (paper Fig. 7, 8, 10, 12): the aggregate score through training
//! (environment steps), one line per series, with its 95% confidence band.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::FigureError;
use crate::plot::{Figure, Intervals, Line, LineChart, si};

#[derive(Debug, Clone, PartialEq)]
pub struct Curves {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
}

impl Figure for Curves {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        LineChart {
            title: &self.title,
            x_label: &self.x_label,
            y_label: &self.y_label,
            lines: &self.lines,
            intervals: Intervals::Band,
            markers: false,
            x_format: si,
            legend: true,
            y_range: None,
            font_scale: 1.0,
        }
        .draw(root)
    }
}
