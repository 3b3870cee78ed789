//! Probe panels (paper Fig. 11): one small chart per probe (Q-target variance, parameter
//! norm, Q-estimate norm, srank, dormant neurons, ...) against environment steps, one line
//! per series (dense vs pruned), the band spanning mean +- one standard deviation over seeds.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::FigureError;
use crate::plot::{FONT, Figure, Intervals, Line, LineChart, TITLE, draw_error, si};

#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub probe: String,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probes {
    pub title: String,
    pub panels: Vec<Panel>,
}

impl Probes {
    fn grid(&self) -> (usize, usize) {
        let n = self.panels.len().max(1);
        let cols = n.min(3);
        (n.div_ceil(cols), cols)
    }
}

/// A readable panel title: `q_target_variance` -> `Q target variance`.
pub fn probe_title(probe: &str) -> String {
    let words = probe.replace('_', " ");
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Figure for Probes {
    fn size(&self) -> (u32, u32) {
        let (rows, cols) = self.grid();
        (cols as u32 * 560, rows as u32 * 420 + 60)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        if self.panels.is_empty() {
            return Err(FigureError::Data("no probe values to draw".into()));
        }
        let body = root
            .margin(10, 0, 0, 0)
            .titled(&self.title, (FONT, TITLE))
            .map_err(draw_error)?;
        let (rows, cols) = self.grid();
        for (i, (area, panel)) in body
            .split_evenly((rows, cols))
            .iter()
            .zip(&self.panels)
            .enumerate()
        {
            let title = probe_title(&panel.probe);
            LineChart {
                title: &title,
                x_label: "Environment steps",
                y_label: "",
                lines: &panel.lines,
                intervals: Intervals::Band,
                markers: false,
                x_format: si,
                legend: i == 0,
                y_range: None,
                font_scale: 0.8,
            }
            .draw(area)?;
        }
        Ok(())
    }
}
