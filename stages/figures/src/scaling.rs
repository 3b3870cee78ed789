//! Width-scaling bars (paper Fig. 1, 4, 6): the aggregate score at each network width, one
//! bar per series (dense vs pruned sparsities) with its 95% confidence interval as an error
//! bar.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::FigureError;
use crate::plot::{
    AXIS, FONT, Figure, LEGEND, TICKS, TITLE, color, draw_error, error_bar, pad, plain,
};

/// One bar: the estimate and its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// A series of bars, one per category (`None` where it has no value).
#[derive(Debug, Clone, PartialEq)]
pub struct BarSeries {
    pub name: String,
    pub bars: Vec<Option<Bar>>,
}

/// Grouped bars over categories (widths).
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
}

impl Scaling {
    /// The y range: the bars and their intervals, padded, from 0 unless some bar is negative.
    fn y_range(&self) -> Result<(f64, f64), FigureError> {
        let bars = self.series.iter().flat_map(|s| s.bars.iter().flatten());
        let (mut lo, mut hi) = (0.0f64, f64::NEG_INFINITY);
        for b in bars {
            lo = lo.min(b.low.min(b.estimate));
            hi = hi.max(b.high.max(b.estimate));
        }
        if self.categories.is_empty() || !hi.is_finite() {
            return Err(FigureError::Data(format!(
                "`{}` has no bars to draw",
                self.title
            )));
        }
        let (y0, y1) = pad(lo, hi, 0.08);
        Ok((if lo >= 0.0 { 0.0 } else { y0 }, y1))
    }
}

impl Figure for Scaling {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        let n = self.categories.len();
        let (y0, y1) = self.y_range()?;
        let mut builder = ChartBuilder::on(root);
        if !self.title.is_empty() {
            builder.caption(&self.title, (FONT, TITLE));
        }
        let mut chart = builder
            .margin(18)
            .margin_right(30)
            .x_label_area_size(64)
            .y_label_area_size(96)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, y0..y1)
            .map_err(draw_error)?;
        let categories = &self.categories;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .axis_desc_style((FONT, AXIS))
            .label_style((FONT, TICKS))
            .disable_x_mesh()
            .x_labels(n + 1)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    categories.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_labels(8)
            .y_label_formatter(&|y| plain(*y))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.1))
            .draw()
            .map_err(draw_error)?;

        let k = self.series.len().max(1) as f64;
        let group = 0.8;
        let w = group / k;
        for (s, series) in self.series.iter().enumerate() {
            let c = color(s);
            let left = |i: usize| i as f64 - group / 2.0 + s as f64 * w;
            let drawn = chart
                .draw_series(series.bars.iter().enumerate().filter_map(|(i, b)| {
                    b.map(|b| {
                        Rectangle::new(
                            [
                                (left(i) + 0.01, y0.max(0.0).min(b.estimate)),
                                (left(i) + w - 0.01, b.estimate),
                            ],
                            c.filled(),
                        )
                    })
                }))
                .map_err(draw_error)?;
            drawn
                .label(series.name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 22, y + 8)], c.filled()));
            let cap = w * 0.18;
            chart
                .draw_series(series.bars.iter().enumerate().flat_map(|(i, b)| {
                    b.iter().flat_map(move |b| {
                        let x = left(i) + w / 2.0;
                        error_bar(x, (b.low, b.high), cap, BLACK.stroke_width(2))
                    })
                }))
                .map_err(draw_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, LEGEND))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .margin(12)
            .draw()
            .map_err(draw_error)?;
        Ok(())
    }
}
