//! Gradient covariance heatmaps (paper Fig. 13, after Lyle et al. 2023): the matrix of
//! cosine similarities between per-sample gradients, one panel per run or checkpoint, on a
//! shared diverging colour scale (blue -1, white 0, red +1) with a colour bar.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::FigureError;
use crate::plot::{FONT, Figure, TICKS, TITLE, draw_error, plain};

#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub title: String,
    /// Square, row-major.
    pub values: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub title: String,
    pub panels: Vec<Matrix>,
    /// Colour scale limits (cosine similarities: -1 to 1).
    pub range: (f64, f64),
}

/// Diverging blue-white-red, `t` in [0, 1].
pub fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let (blue, red) = ((0x21u8, 0x66u8, 0xACu8), (0xB2u8, 0x18u8, 0x2Bu8));
    let mix = |a: u8, b: u8, s: f64| (a as f64 + (b as f64 - a as f64) * s).round() as u8;
    if t < 0.5 {
        let s = t / 0.5;
        RGBColor(
            mix(blue.0, 255, s),
            mix(blue.1, 255, s),
            mix(blue.2, 255, s),
        )
    } else {
        let s = (t - 0.5) / 0.5;
        RGBColor(mix(255, red.0, s), mix(255, red.1, s), mix(255, red.2, s))
    }
}

impl Heatmap {
    fn cols(&self) -> usize {
        self.panels.len().clamp(1, 4)
    }

    fn rows(&self) -> usize {
        self.panels.len().max(1).div_ceil(self.cols())
    }
}

impl Figure for Heatmap {
    fn size(&self) -> (u32, u32) {
        (
            self.cols() as u32 * 440 + 150,
            self.rows() as u32 * 460 + 60,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        if self.panels.is_empty() {
            return Err(FigureError::Data(
                "no gradient covariance matrices to draw".into(),
            ));
        }
        for m in &self.panels {
            if m.values.iter().any(|row| row.len() != m.values.len()) || m.values.is_empty() {
                return Err(FigureError::Data(format!(
                    "matrix `{}` is not square",
                    m.title
                )));
            }
        }
        let (lo, hi) = self.range;
        let body = root
            .margin(10, 0, 0, 0)
            .titled(&self.title, (FONT, TITLE))
            .map_err(draw_error)?;
        let (w, _) = body.dim_in_pixel();
        let (grid, bar) = body.split_horizontally(w as i32 - 150);
        for (area, m) in grid
            .split_evenly((self.rows(), self.cols()))
            .iter()
            .zip(&self.panels)
        {
            let k = m.values.len();
            let mut chart = ChartBuilder::on(area)
                .caption(&m.title, (FONT, 24))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(52)
                .build_cartesian_2d(0..k, 0..k)
                .map_err(draw_error)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("Sample")
                .y_desc("Sample")
                .axis_desc_style((FONT, 20))
                .label_style((FONT, 17))
                .x_labels(5)
                .y_labels(5)
                .y_label_formatter(&|y| (k - y).to_string())
                .draw()
                .map_err(draw_error)?;
            chart
                .draw_series(m.values.iter().enumerate().flat_map(|(r, row)| {
                    row.iter().enumerate().map(move |(c, &v)| {
                        let t = (v - lo) / (hi - lo);
                        Rectangle::new([(c, k - 1 - r), (c + 1, k - r)], diverging(t).filled())
                    })
                }))
                .map_err(draw_error)?;
        }
        // Colour bar.
        let mut chart = ChartBuilder::on(&bar)
            .margin_top(60)
            .margin_bottom(70)
            .margin_right(40)
            .margin_left(10)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..1.0, lo..hi)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(5)
            .label_style((FONT, TICKS))
            .y_label_formatter(&|y| plain(*y))
            .draw()
            .map_err(draw_error)?;
        let steps = 100;
        chart
            .draw_series((0..steps).map(|i| {
                let a = lo + (hi - lo) * i as f64 / steps as f64;
                let b = lo + (hi - lo) * (i + 1) as f64 / steps as f64;
                Rectangle::new(
                    [(0.0, a), (1.0, b)],
                    diverging((i as f64 + 0.5) / steps as f64).filled(),
                )
            }))
            .map_err(draw_error)?;
        Ok(())
    }
}
