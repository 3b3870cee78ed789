//! What every figure shares: the look (font, palette, sizes), writing SVG and PNG from one
//! drawing, and the line chart with confidence bands or error bars that the sweep, curve,
//! schedule and probe figures are made of.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::FigureError;

/// The font family every text uses: DejaVu Sans, embedded (see [`register_fonts`]).
pub const FONT: &str = "sans-serif";
pub const TITLE: u32 = 30;
pub const AXIS: u32 = 26;
pub const TICKS: u32 = 21;
pub const LEGEND: u32 = 21;

/// Paul Tol's "bright" qualitative palette: distinct for colour-blind readers and in grey.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0x44, 0x77, 0xAA),
    RGBColor(0xEE, 0x66, 0x77),
    RGBColor(0x22, 0x88, 0x33),
    RGBColor(0xCC, 0xBB, 0x44),
    RGBColor(0x66, 0xCC, 0xEE),
    RGBColor(0xAA, 0x33, 0x77),
    RGBColor(0x55, 0x55, 0x55),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Registers DejaVu Sans (from the `dejavu` crate) as plotters' `sans-serif`, once: the
/// bitmap backend rasterises text itself and must not depend on system fonts.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let fonts = [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
            (FontStyle::Oblique, dejavu::sans::oblique()),
            (FontStyle::Italic, dejavu::sans::oblique()),
        ];
        for (style, bytes) in fonts {
            plotters::style::register_font(FONT, style, bytes)
                .unwrap_or_else(|_| panic!("the embedded DejaVu Sans font is invalid"));
        }
    });
}

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    /// Size in pixels of the PNG (and user units of the SVG).
    fn size(&self) -> (u32, u32) {
        (1000, 640)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), FigureError>;
}

/// Writes `<dir>/<name>.svg` and `<dir>/<name>.png`.
pub fn save(figure: &impl Figure, dir: &Path, name: &str) -> Result<[PathBuf; 2], FigureError> {
    register_fonts();
    let size = figure.size();
    let svg = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        figure.draw(&root)?;
        root.present().map_err(draw_error)?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        figure.draw(&root)?;
        root.present().map_err(draw_error)?;
    }
    Ok([svg, png])
}

pub fn draw_error(e: impl std::fmt::Display) -> FigureError {
    FigureError::Draw(e.to_string())
}

/// `1500000` -> `1.5M`, `20000` -> `20k`.
pub fn si(x: f64) -> String {
    let a = x.abs();
    let (v, unit) = if a >= 1e9 {
        (x / 1e9, "G")
    } else if a >= 1e6 {
        (x / 1e6, "M")
    } else if a >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{unit}")
}

/// A number with at most 4 decimals and no trailing zeros: `0.950` -> `0.95`, `0.0625`.
pub fn plain(x: f64) -> String {
    let s = format!("{x:.4}");
    match s.trim_end_matches('0').trim_end_matches('.') {
        "-0" => "0".to_string(),
        s => s.to_string(),
    }
}

/// One point of a line: x, the estimate, and optionally its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub interval: Option<(f64, f64)>,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Point {
        Point {
            x,
            y,
            interval: None,
        }
    }

    pub fn with_interval(x: f64, y: f64, low: f64, high: f64) -> Point {
        Point {
            x,
            y,
            interval: Some((low, high)),
        }
    }
}

/// A named series of points.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub points: Vec<Point>,
}

/// How intervals are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intervals {
    /// Shaded band between the interval ends (sample-efficiency curves).
    Band,
    /// Capped vertical bars at each point (sweeps).
    ErrorBars,
}

/// A line chart on one drawing area.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub lines: &'a [Line],
    pub intervals: Intervals,
    pub markers: bool,
    /// Formats x tick labels.
    pub x_format: fn(f64) -> String,
    /// Draw the legend (small multiples draw it once).
    pub legend: bool,
    /// Fixed y range, else fitted to the data and intervals.
    pub y_range: Option<(f64, f64)>,
    /// Scale of the fonts relative to a full-size figure.
    pub font_scale: f64,
}

/// A chart with numbers on both axes, as [`LineChart`] draws it.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A range `(low, high)` of one axis.
type Span = (f64, f64);

impl LineChart<'_> {
    /// The x and y ranges: the data's (and intervals'), padded, or the fixed `y_range`.
    fn ranges(&self) -> Result<(Span, Span), FigureError> {
        let all = self.lines.iter().flat_map(|l| &l.points);
        let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in all {
            x0 = x0.min(p.x);
            x1 = x1.max(p.x);
            let (lo, hi) = p.interval.unwrap_or((p.y, p.y));
            y0 = y0.min(p.y.min(lo));
            y1 = y1.max(p.y.max(hi));
        }
        if !x0.is_finite() {
            return Err(FigureError::Data(format!(
                "`{}` has no points to draw",
                self.title
            )));
        }
        if let Some(r) = self.y_range {
            (y0, y1) = r;
        }
        let (x0, x1) = pad(x0, x1, if self.markers { 0.04 } else { 0.0 });
        let (y0, y1) = if self.y_range.is_some() {
            (y0, y1)
        } else {
            pad(y0, y1, 0.08)
        };
        Ok(((x0, x1), (y0, y1)))
    }

    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), FigureError> {
        let fs = |size: u32| (size as f64 * self.font_scale).round() as u32;
        let ((x0, x1), (y0, y1)) = self.ranges()?;
        let mut builder = ChartBuilder::on(area);
        if !self.title.is_empty() {
            builder.caption(self.title, (FONT, fs(TITLE)));
        }
        let mut chart = builder
            .margin(fs(18))
            .margin_right(fs(40))
            .x_label_area_size(fs(64))
            .y_label_area_size(fs(96))
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_error)?;
        let x_format = self.x_format;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .axis_desc_style((FONT, fs(AXIS)))
            .label_style((FONT, fs(TICKS)))
            .x_labels(6)
            .y_labels(8)
            .x_label_formatter(&|x| x_format(*x))
            .y_label_formatter(&|y| plain(*y))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.1))
            .draw()
            .map_err(draw_error)?;

        let width = (3.0 * self.font_scale).round().max(2.0) as u32;
        let n = self.lines.len();
        for (i, line) in self.lines.iter().enumerate() {
            let c = color(i);
            // Error bars of different series at one x are dodged sideways to stay readable.
            let dodge = match self.intervals {
                Intervals::ErrorBars => (i as f64 - (n as f64 - 1.0) / 2.0) * 0.008 * (x1 - x0),
                Intervals::Band => 0.0,
            };
            let dodged: Vec<Point> = line
                .points
                .iter()
                .map(|p| Point {
                    x: p.x + dodge,
                    ..*p
                })
                .collect();
            let line = Line {
                name: line.name.clone(),
                points: dodged,
            };
            let with_interval: Vec<&Point> = line
                .points
                .iter()
                .filter(|p| p.interval.is_some())
                .collect();
            self.draw_intervals(&mut chart, &with_interval, c, width, x1 - x0)?;
            let series = chart
                .draw_series(LineSeries::new(
                    line.points.iter().map(|p| (p.x, p.y)),
                    c.stroke_width(width),
                ))
                .map_err(draw_error)?;
            if self.legend {
                series.label(line.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(4))
                });
            }
            if self.markers {
                let r = (5.0 * self.font_scale).round().max(3.0) as u32;
                chart
                    .draw_series(
                        line.points
                            .iter()
                            .map(|p| Circle::new((p.x, p.y), r, c.filled())),
                    )
                    .map_err(draw_error)?;
            }
        }
        if self.legend && self.lines.iter().any(|l| !l.name.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font((FONT, fs(LEGEND)))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .margin(fs(12))
                .draw()
                .map_err(draw_error)?;
        }
        Ok(())
    }

    /// The intervals of one line's points: a shaded band or capped error bars.
    fn draw_intervals<DB: DrawingBackend>(
        &self,
        chart: &mut Chart<'_, DB>,
        with_interval: &[&Point],
        c: RGBColor,
        width: u32,
        x_span: f64,
    ) -> Result<(), FigureError> {
        match self.intervals {
            Intervals::Band if with_interval.len() > 1 => {
                let mut outline: Vec<(f64, f64)> = with_interval
                    .iter()
                    .map(|p| (p.x, p.interval.unwrap().1))
                    .collect();
                outline.extend(
                    with_interval
                        .iter()
                        .rev()
                        .map(|p| (p.x, p.interval.unwrap().0)),
                );
                chart
                    .draw_series(std::iter::once(Polygon::new(outline, c.mix(0.2).filled())))
                    .map_err(draw_error)?;
            }
            Intervals::ErrorBars => {
                let cap = x_span * 0.008;
                let style = c.stroke_width(width.max(2) - 1);
                chart
                    .draw_series(with_interval.iter().flat_map(|p| {
                        let (lo, hi) = p.interval.unwrap();
                        error_bar(p.x, (lo, hi), cap, style)
                    }))
                    .map_err(draw_error)?;
            }
            Intervals::Band => {}
        }
        Ok(())
    }
}

/// An error bar at `x` over `[lo, hi]`: the stem and two caps `cap` wide on each side, as
/// three strokes. One path that doubles back on itself draws spikes at its turns with thick
/// lines (plotters joins the segments).
pub fn error_bar(
    x: f64,
    (lo, hi): (f64, f64),
    cap: f64,
    style: ShapeStyle,
) -> [PathElement<(f64, f64)>; 3] {
    [
        PathElement::new(vec![(x, lo), (x, hi)], style),
        PathElement::new(vec![(x - cap, lo), (x + cap, lo)], style),
        PathElement::new(vec![(x - cap, hi), (x + cap, hi)], style),
    ]
}

/// Widens `[lo, hi]` by `frac` of its span on each side (or by 1 when it is a point).
pub fn pad(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    let span = hi - lo;
    if span <= 0.0 {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - d, hi + d)
    } else {
        (lo - frac * span, hi + frac * span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        assert_eq!(si(1_500_000.0), "1.5M");
        assert_eq!(si(20_000.0), "20k");
        assert_eq!(si(250.0), "250");
        assert_eq!(plain(0.0625), "0.0625");
        assert_eq!(plain(0.1 + 0.2), "0.3");
        assert_eq!(plain(-0.0), "0");
        assert_eq!(plain(95.0), "95");
    }
}
