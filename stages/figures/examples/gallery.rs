//! Renders every figure type from synthetic data, to look at them:
//! `cargo run --release --example gallery -p prunus-figures -- [output dir]` (default
//! `target/gallery`).

use std::path::PathBuf;

use prunus_figures::curves::Curves;
use prunus_figures::heatmap::{Heatmap, Matrix};
use prunus_figures::probes::{Panel, Probes};
use prunus_figures::scaling::{Bar, BarSeries, Scaling};
use prunus_figures::schedule::Schedule;
use prunus_figures::sweep::Sweep;
use prunus_figures::{Line, Point, save};
use prunus_sparsity::gmp::{Boundary, GmpSchedule};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/gallery".into()),
    );
    std::fs::create_dir_all(&dir)?;
    for path in gallery(&dir)? {
        println!("{}", path.display());
    }
    Ok(())
}

/// A deterministic wobble in [-1, 1].
fn noise(i: usize) -> f64 {
    ((i as f64 * 12.9898).sin() * 43758.5453).fract()
}

fn gallery(dir: &std::path::Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let figures = [
        save(&scaling(), dir, "scaling")?,
        save(&sweep(), dir, "sweep")?,
        save(&replay_ratio(), dir, "replay_ratio")?,
        save(&curves(), dir, "curves")?,
        save(&schedule(), dir, "schedule")?,
        save(&probes(), dir, "probes")?,
        save(&heatmap(), dir, "heatmap")?,
    ];
    Ok(figures.into_iter().flatten().collect())
}

/// Width scaling bars (the paper's Fig. 1).
fn scaling() -> Scaling {
    let widths = ["1", "3", "5"];
    let bar = |e: f64, h: f64| {
        Some(Bar {
            estimate: e,
            low: e - h,
            high: e + h,
        })
    };
    Scaling {
        title: "DQN (Impala ResNet), 15 games".into(),
        x_label: "Width multiplier".into(),
        y_label: "IQM human-normalized score".into(),
        categories: widths.iter().map(|w| w.to_string()).collect(),
        series: vec![
            BarSeries {
                name: "Dense".into(),
                bars: vec![bar(0.52, 0.05), bar(0.47, 0.06), bar(0.39, 0.07)],
            },
            BarSeries {
                name: "Pruned (95%)".into(),
                bars: vec![bar(0.55, 0.05), bar(0.71, 0.07), bar(0.83, 0.08)],
            },
        ],
    }
}

/// A sparsity sweep (Fig. 3).
fn sweep() -> Sweep {
    let sparsities: [f64; 7] = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99];
    Sweep {
        title: "Sparsity sweep, DQN".into(),
        x_label: "Target sparsity".into(),
        y_label: "IQM human-normalized score".into(),
        lines: [1.0, 3.0]
            .iter()
            .map(|&w: &f64| Line {
                name: format!("width {w}"),
                points: sparsities
                    .iter()
                    .map(|&s| {
                        let y = 0.4
                            + 0.1 * w * s * (1.0 - s).sqrt()
                            + 0.02 * noise((s * 100.0) as usize);
                        Point::with_interval(s, y, y - 0.06, y + 0.06)
                    })
                    .collect(),
            })
            .collect(),
        log_x: false,
    }
}

/// A replay-ratio sweep on a log x axis (Fig. 5).
fn replay_ratio() -> Sweep {
    let ratios: [f64; 6] = [0.0625, 0.125, 0.25, 0.5, 1.0, 2.0];
    Sweep {
        title: "Replay ratio, DQN (ResNet x3)".into(),
        x_label: "Replay ratio (gradient updates per environment step)".into(),
        y_label: "IQM human-normalized score".into(),
        lines: [("Dense", 0.0), ("Pruned (95%)", 0.15)]
            .iter()
            .map(|&(name, gain)| Line {
                name: name.into(),
                points: ratios
                    .iter()
                    .enumerate()
                    .map(|(i, &r)| {
                        let y =
                            0.45 + gain * (1.0 + r.log2() / 4.0) - 0.05 * r + 0.02 * noise(i + 3);
                        Point::with_interval(r, y, y - 0.05, y + 0.05)
                    })
                    .collect(),
            })
            .collect(),
        log_x: true,
    }
}

/// Sample-efficiency curves with bands (Fig. 7).
fn curves() -> Curves {
    Curves {
        title: "Sample efficiency, Rainbow".into(),
        x_label: "Environment steps".into(),
        y_label: "IQM human-normalized score".into(),
        lines: [("Dense", 0.6), ("Pruned (95%)", 0.85)]
            .iter()
            .map(|&(name, top)| Line {
                name: name.into(),
                points: (0..=40)
                    .map(|i| {
                        let x = i as f64 * 250_000.0;
                        let y = top * (1.0 - (-(i as f64) / 12.0).exp()) + 0.02 * noise(i);
                        let h = 0.04 + 0.03 * (i as f64 / 40.0);
                        Point::with_interval(x, y, y - h, y + h)
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// GMP schedules (Fig. 2).
fn schedule() -> Schedule {
    let total = 2_500_000;
    Schedule {
        title: "Gradual magnitude pruning schedules".into(),
        x_label: "Training progress (% of gradient steps)".into(),
        lines: [0.5, 0.8, 0.9, 0.95, 0.99]
            .iter()
            .map(|&s| {
                let gmp = GmpSchedule::new(
                    s,
                    Boundary::Fraction(0.2),
                    Boundary::Fraction(0.8),
                    1000,
                    total,
                )
                .unwrap();
                Schedule::line(format!("target {}", s), &gmp, total, 400)
            })
            .collect(),
    }
}

/// Probe panels (Fig. 11).
fn probes() -> Probes {
    let probe_names = [
        "q_target_variance",
        "param_norm",
        "q_norm",
        "srank",
        "dormant_tau0.1",
        "train_return",
    ];
    Probes {
        title: "Breakout: dense vs pruned".into(),
        panels: probe_names
            .iter()
            .enumerate()
            .map(|(p, name)| Panel {
                probe: name.to_string(),
                lines: [("Dense", 1.0), ("Pruned (95%)", 0.6)]
                    .iter()
                    .map(|&(series, scale)| Line {
                        name: series.into(),
                        points: (1..=20)
                            .map(|i| {
                                let y = scale * (p as f64 + 1.0) * (i as f64).sqrt()
                                    + 0.3 * noise(i + 7 * p);
                                Point::with_interval(
                                    i as f64 * 500_000.0,
                                    y,
                                    y - 0.4 * scale,
                                    y + 0.4 * scale,
                                )
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Gradient covariance heatmaps (Fig. 13).
fn heatmap() -> Heatmap {
    let k = 32;
    let matrix = |coherence: f64, seed: usize| -> Vec<Vec<f64>> {
        (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| {
                        if i == j {
                            1.0
                        } else {
                            let block = if (i < k / 2) == (j < k / 2) {
                                coherence
                            } else {
                                -coherence / 2.0
                            };
                            (block + 0.25 * noise(seed + i.min(j) * k + i.max(j))).clamp(-1.0, 1.0)
                        }
                    })
                    .collect()
            })
            .collect()
    };
    Heatmap {
        title: "Gradient covariance, VideoPinball".into(),
        panels: vec![
            Matrix {
                title: "Dense".into(),
                values: matrix(0.6, 1),
            },
            Matrix {
                title: "Pruned (95%)".into(),
                values: matrix(0.1, 2),
            },
        ],
        range: (-1.0, 1.0),
    }
}
