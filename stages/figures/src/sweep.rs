//! Sweeps (paper Fig. 3, 5, 14-16): the aggregate score against a swept hyper-parameter
//! (target sparsity, replay ratio), one line per series (e.g. width), with 95% confidence
//! intervals as error bars.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::FigureError;
use crate::plot::{Figure, Intervals, Line, LineChart, Point, plain};

#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    /// A base-2 logarithmic x axis (replay ratios 0.25, 0.5, 1, 2, ...).
    pub log_x: bool,
}

impl Figure for Sweep {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        let mut lines = self.lines.clone();
        let mut x_format: fn(f64) -> String = plain;
        if self.log_x {
            if let Some(p) = lines.iter().flat_map(|l| &l.points).find(|p| p.x <= 0.0) {
                return Err(FigureError::Data(format!(
                    "a log x axis cannot show x = {}",
                    p.x
                )));
            }
            for line in &mut lines {
                for p in &mut line.points {
                    *p = Point {
                        x: p.x.log2(),
                        ..*p
                    };
                }
            }
            x_format = |v| plain(2f64.powf(v));
        }
        LineChart {
            title: &self.title,
            x_label: &self.x_label,
            y_label: &self.y_label,
            lines: &lines,
            intervals: Intervals::ErrorBars,
            markers: true,
            x_format,
            legend: true,
            y_range: None,
            font_scale: 1.0,
        }
        .draw(root)
    }
}
