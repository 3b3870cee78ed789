//! The `figure/*` stage kinds end to end: fake training runs go through the real
//! `aggregate/scores` kind, the figure kinds draw its tables, and every figure comes out as a
//! valid, non-trivial SVG and PNG of the declared size. Set `PRUNUS_KEEP_FIGURES=<dir>` to
//! keep the figures for looking at them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prunus_stage::{Context, Input, Params, StageError, StageKind, Value};

fn kind(name: &str) -> std::sync::Arc<dyn StageKind> {
    prunus_figures::kinds()
        .into_iter()
        .chain(prunus_stats::kinds())
        .find(|k| k.name() == name)
        .unwrap()
}

fn params(kind: &dyn StageKind, overrides: &[(&str, Value)]) -> Params {
    let mut p: BTreeMap<String, Value> = kind
        .params()
        .into_iter()
        .filter_map(|s| s.default.map(|d| (s.key.to_string(), d)))
        .collect();
    for (k, v) in overrides {
        p.insert(k.to_string(), v.clone());
    }
    Params(p)
}

fn out_dir(name: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("PRUNUS_KEEP_FIGURES") {
        Some(dir) => {
            let dir = PathBuf::from(dir).join(name);
            std::fs::create_dir_all(&dir).unwrap();
            (None, dir)
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    }
}

fn run(
    name: &str,
    overrides: &[(&str, Value)],
    inputs: Vec<Input>,
    dir: &Path,
) -> Result<(), StageError> {
    let k = kind(name);
    let scratch = tempfile::tempdir().unwrap();
    let ctx = Context::for_test(
        params(&*k, overrides),
        inputs,
        dir.into(),
        scratch.path().into(),
    );
    k.run(&ctx)
}

fn input(
    stage: &str,
    instance: &str,
    axes: &[(&str, Value)],
    outputs: &[(&str, PathBuf)],
) -> Input {
    Input {
        stage: stage.into(),
        instance: instance.into(),
        axes: axes
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        outputs: outputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// Checks `<dir>/<name>.svg` and `.png`: well-formed SVG with the expected texts, a PNG that
/// decodes to a figure-sized image with real content (many colours, much non-white area).
fn check_figure(dir: &Path, name: &str, texts: &[&str]) {
    let svg = std::fs::read_to_string(dir.join(format!("{name}.svg"))).unwrap();
    let doc =
        roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{name}.svg is not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg", "{name}.svg");
    let text: String = doc
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n");
    for t in texts {
        assert!(text.contains(t), "{name}.svg lacks the text `{t}`");
    }
    let shapes = doc
        .descendants()
        .filter(|n| {
            matches!(
                n.tag_name().name(),
                "polyline" | "rect" | "polygon" | "circle" | "line" | "path"
            )
        })
        .count();
    assert!(shapes > 10, "{name}.svg draws only {shapes} shapes");

    let file = std::fs::File::open(dir.join(format!("{name}.png"))).unwrap();
    let mut reader = png::Decoder::new(file)
        .read_info()
        .unwrap_or_else(|e| panic!("{name}.png: {e}"));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(
        info.width >= 800 && info.height >= 500,
        "{name}.png is {}x{}",
        info.width,
        info.height
    );
    assert_eq!(info.color_type, png::ColorType::Rgb, "{name}.png");
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
    let colours: std::collections::BTreeSet<&[u8]> = pixels.iter().copied().collect();
    let inked = pixels.iter().filter(|p| p.iter().any(|&c| c < 200)).count();
    assert!(
        colours.len() > 50,
        "{name}.png has only {} colours",
        colours.len()
    );
    let share = inked as f64 / pixels.len() as f64;
    assert!(
        share > 0.02,
        "{name}.png is almost blank ({:.1}% inked)",
        100.0 * share
    );
}

/// Training runs over 2 games x 3 seeds x widths 1, 3 x sparsities 0, 0.95; pruned runs
/// improve with width, dense ones do not (the paper's finding, as fake data).
fn training_runs(dir: &Path) -> Vec<Input> {
    let mut inputs = Vec::new();
    for game in ["minatar/breakout", "minatar/asterix"] {
        for seed in 0..3i64 {
            for width in [1i64, 3] {
                for sparsity in [0.0, 0.95] {
                    let instance = format!("train/{game}/w{width}/s{sparsity}/seed{seed}");
                    let path = dir.join(instance.replace('/', "_") + ".csv");
                    let mut text = "iteration,env_steps,grad_steps,train_return,train_episodes,eval_return,eval_episodes,sparsity\n".to_string();
                    for i in 0..10u64 {
                        let progress = i as f64 / 9.0;
                        let skill = if sparsity > 0.0 {
                            8.0 + 4.0 * width as f64
                        } else {
                            12.0 - width as f64
                        };
                        let ret = skill * progress + seed as f64;
                        let s = sparsity
                            * (1.0 - (1.0 - ((progress - 0.2) / 0.6).clamp(0.0, 1.0)).powi(3));
                        text += &format!(
                            "{i},{},{},{ret},4,{ret},5,{s}\n",
                            (i + 1) * 10_000,
                            i * 2500
                        );
                    }
                    std::fs::write(&path, text).unwrap();
                    let axes = [
                        ("game", Value::Str(game.into())),
                        ("seed", Value::Int(seed)),
                        ("width", Value::Int(width)),
                        ("sparsity", Value::Float(sparsity)),
                    ];
                    inputs.push(input("train", &instance, &axes, &[("returns.csv", path)]));
                }
            }
        }
    }
    inputs
}

#[test]
fn scaling_sweep_and_curves_from_real_aggregates() {
    let data = tempfile::tempdir().unwrap();
    let aggregate = tempfile::tempdir().unwrap();
    let group_by = Value::List(vec![
        Value::Str("width".into()),
        Value::Str("sparsity".into()),
    ]);
    run(
        "aggregate/scores",
        &[("group-by", group_by), ("reps", Value::Int(500))],
        training_runs(data.path()),
        aggregate.path(),
    )
    .unwrap();
    let outputs: Vec<(&str, PathBuf)> = ["summary.csv", "curves.csv"]
        .iter()
        .map(|n| (*n, aggregate.path().join(n)))
        .collect();
    let agg = || vec![input("iqm", "iqm", &[], &outputs)];

    let (_keep, dir) = out_dir("aggregates");
    run(
        "figure/scaling",
        &[("title", Value::Str("MinAtar DQN".into()))],
        agg(),
        &dir,
    )
    .unwrap();
    check_figure(
        &dir,
        "scaling",
        &["MinAtar DQN", "Dense", "Pruned (95%)", "Width multiplier"],
    );

    run(
        "figure/sweep",
        &[("metric", Value::Str("median".into()))],
        agg(),
        &dir,
    )
    .unwrap();
    check_figure(&dir, "sweep", &["width 1", "width 3", "Target sparsity"]);

    // A log axis cannot show sparsity 0, but shows widths.
    let log = |x: &str, series: &str| {
        [
            ("log-x", Value::Bool(true)),
            ("name", Value::Str("log".into())),
            ("x", Value::Str(x.into())),
            ("series", Value::Str(series.into())),
        ]
    };
    let err = run("figure/sweep", &log("sparsity", "width"), agg(), &dir).unwrap_err();
    assert!(err.to_string().contains("x = 0"), "{err}");
    run("figure/sweep", &log("width", "sparsity"), agg(), &dir).unwrap();
    check_figure(&dir, "log", &["Width multiplier", "Dense"]);

    run(
        "figure/curves",
        &[("name", Value::Str("efficiency".into()))],
        agg(),
        &dir,
    )
    .unwrap();
    check_figure(
        &dir,
        "efficiency",
        &["Environment steps", "width 3, Pruned (95%)"],
    );

    // Bad parameters name the problem.
    let err = run(
        "figure/scaling",
        &[("x", Value::Str("replay_ratio".into()))],
        agg(),
        &dir,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("replay_ratio") && err.contains("width"),
        "{err}"
    );
    let err = run(
        "figure/scaling",
        &[("metric", Value::Str("mean_rank".into()))],
        agg(),
        &dir,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("mean_rank") && err.contains("iqm"), "{err}");
}

#[test]
fn schedule_with_measured_sparsity() {
    let data = tempfile::tempdir().unwrap();
    let runs: Vec<Input> = training_runs(data.path())
        .into_iter()
        .filter(|i| i.instance.ends_with("s0.95/seed0"))
        .take(1)
        .collect();
    let (_keep, dir) = out_dir("schedule");
    let targets = Value::List(vec![
        Value::Float(0.5),
        Value::Float(0.9),
        Value::Float(0.95),
        Value::Float(0.99),
    ]);
    run("figure/schedule", &[("sparsity", targets)], runs, &dir).unwrap();
    check_figure(
        &dir,
        "schedule",
        &[
            "GMP to 0.95",
            "GMP to 0.99",
            "measured: train/minatar/breakout",
        ],
    );
    let err = run(
        "figure/schedule",
        &[("sparsity", Value::List(vec![Value::Float(1.5)]))],
        vec![],
        &dir,
    )
    .unwrap_err();
    assert!(err.to_string().contains("1.5"), "{err}");
}

#[test]
fn probe_panels_and_heatmaps() {
    let data = tempfile::tempdir().unwrap();
    let mut probes = Vec::new();
    let mut covs = Vec::new();
    for sparsity in [0.0, 0.95] {
        for seed in 0..2i64 {
            let path = data.path().join(format!("probes-{sparsity}-{seed}.csv"));
            let mut text = "env_steps,probe,value\n".to_string();
            for i in 1..=8u64 {
                let scale = if sparsity > 0.0 { 0.5 } else { 1.0 };
                for (p, probe) in ["q_target_variance", "param_norm", "srank", "dormant_tau0.1"]
                    .iter()
                    .enumerate()
                {
                    text += &format!(
                        "{},{probe},{}\n",
                        i * 50_000,
                        scale * (p + 1) as f64 * (i as f64).sqrt() + 0.1 * seed as f64
                    );
                }
            }
            std::fs::write(&path, text).unwrap();
            let axes = [
                ("sparsity", Value::Float(sparsity)),
                ("seed", Value::Int(seed)),
                ("game", Value::Str("minatar/breakout".into())),
            ];
            probes.push(input(
                "probe",
                &format!("probe/s{sparsity}/seed{seed}"),
                &axes,
                &[("probes.csv", path)],
            ));
            if seed == 0 {
                let k = 16;
                let cov = |i: usize, j: usize| {
                    if i == j {
                        1.0
                    } else {
                        (1.0 - sparsity) * 0.8 - 0.1 * ((i * j) % 5) as f64
                    }
                };
                let nested: Vec<Vec<f64>> = (0..k)
                    .map(|i| (0..k).map(|j| cov(i, j)).collect())
                    .collect();
                let flat: Vec<f64> = nested.iter().flatten().copied().collect();
                let json = serde_json::json!([
                    {"env_steps": 100_000, "matrix": flat},
                    {"env_steps": 400_000, "matrix": nested},
                ]);
                let path = data.path().join(format!("grad_cov-{sparsity}.json"));
                std::fs::write(&path, json.to_string()).unwrap();
                covs.push(input(
                    "probe",
                    &format!("probe/s{sparsity}"),
                    &axes[..1],
                    &[("grad_cov.json", path)],
                ));
            }
        }
    }
    let (_keep, dir) = out_dir("probes");
    run(
        "figure/probes",
        &[("title", Value::Str("Breakout".into()))],
        probes.clone(),
        &dir,
    )
    .unwrap();
    check_figure(
        &dir,
        "probes",
        &[
            "Q-target variance",
            "srank",
            "Dormant neurons (τ = 0.1)",
            "Dense",
            "Pruned (95%)",
        ],
    );
    let only = Value::List(vec![
        Value::Str("srank".into()),
        Value::Str("q_norm".into()),
    ]);
    let err = run("figure/probes", &[("probes", only)], probes, &dir)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("q_norm") && err.contains("param_norm"),
        "{err}"
    );

    run(
        "figure/heatmap",
        &[("checkpoint", Value::Str("all".into()))],
        covs,
        &dir,
    )
    .unwrap();
    check_figure(&dir, "heatmap", &["Dense @ 100k", "Pruned (95%) @ 400k"]);
}
