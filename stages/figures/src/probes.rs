//! Probe panels (paper Fig. 11): one small chart per probe (Q-target variance, parameter
//! norm, Q-estimate norm, srank, dormant neurons, ...) against environment steps, one line
//! per series (dense vs pruned), the band spanning mean +- one standard deviation over seeds.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::FigureError;
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
        // Near-square grids, at most 3 panels wide: 4 panels make 2 x 2.
        let cols = ((n as f64).sqrt().ceil() as usize).clamp(1, 3);
        (n.div_ceil(cols), cols)
    }
}

/// A readable panel title: the paper's names for the known probes (`srank`,
/// `dormant_tau0.1` -> `Dormant neurons (τ = 0.1)`), else `snake_case` as words.
pub fn probe_title(probe: &str) -> String {
    match probe {
        "q_target_variance" => return "Q-target variance".into(),
        "param_norm" => return "Parameter norm".into(),
        "q_norm" => return "Q-estimate norm".into(),
        "srank" => return "srank".into(),
        "train_return" => return "Training return".into(),
        _ => {}
    }
    if let Some(tau) = probe.strip_prefix("dormant_tau") {
        return format!("Dormant neurons (τ = {tau})");
    }
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
