//! The `aggregate/*` stage kinds on fake training runs: the tables follow the contract,
//! the numbers are the ones computed by hand, pandas reads every table without help, and
//! bad inputs fail with a message that names the problem.

mod reference;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use prunus_stage::{Context, Input, Params, StageError, StageKind, Value};
use prunus_stats::Aggregate;

/// A returns.csv of `n` iterations whose eval return at iteration i is `base + i`
/// (the first iteration has no eval episodes, like a run still warming up).
fn returns_csv(dir: &Path, name: &str, base: f64, n: u64) -> PathBuf {
    let path = dir.join(format!("{name}.csv"));
    let mut text = "iteration,env_steps,grad_steps,train_return,train_episodes,eval_return,eval_episodes,sparsity\n".to_string();
    for i in 0..n {
        let eval = if i == 0 {
            ",0".to_string()
        } else {
            format!("{},5", base + i as f64)
        };
        text += &format!(
            "{i},{},{},{},3,{eval},0.5\n",
            (i + 1) * 1000,
            i * 250,
            base - 1.0
        );
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn input(dir: &Path, game: &str, seed: i64, sparsity: f64, base: f64) -> Input {
    let name = format!("train/{}/s{sparsity}/seed{seed}", game.replace('/', "_"));
    let csv = returns_csv(dir, &name.replace('/', "-"), base, 5);
    Input {
        stage: "train".into(),
        instance: name,
        axes: BTreeMap::from([
            ("game".to_string(), Value::Str(game.into())),
            ("seed".to_string(), Value::Int(seed)),
            ("sparsity".to_string(), Value::Float(sparsity)),
        ]),
        outputs: BTreeMap::from([("returns.csv".to_string(), csv)]),
    }
}

/// The kind's defaults with `overrides` applied, as the engine resolves them.
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

fn run(
    kind: &dyn StageKind,
    overrides: &[(&str, Value)],
    inputs: Vec<Input>,
) -> (tempfile::TempDir, Result<(), StageError>) {
    let out = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let ctx = Context::for_test(
        params(kind, overrides),
        inputs,
        out.path().into(),
        scratch.path().into(),
    );
    let result = kind.run(&ctx);
    (out, result)
}

fn runs(dir: &Path) -> Vec<Input> {
    let mut inputs = Vec::new();
    for (g, game) in ["minatar/breakout", "minatar/asterix"]
        .into_iter()
        .enumerate()
    {
        for seed in 0..3 {
            for sparsity in [0.0, 0.95] {
                let base = 10.0 * g as f64 + seed as f64 + if sparsity > 0.0 { 5.0 } else { 0.0 };
                inputs.push(input(dir, game, seed, sparsity, base));
            }
        }
    }
    inputs
}

#[test]
fn tables_follow_the_contract_and_pandas_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let kind = Aggregate::SCORES;
    let overrides = [
        ("normalize", Value::Str("none".into())),
        ("last", Value::Int(2)),
        ("reps", Value::Int(2000)),
        ("group-by", Value::List(vec![Value::Str("sparsity".into())])),
    ];
    let (out, result) = run(&kind, &overrides, runs(dir.path()));
    result.unwrap();
    for name in kind.outputs(&Params::default()) {
        assert!(out.path().join(&name).exists(), "missing output {name}");
    }

    let scores = std::fs::read_to_string(out.path().join("scores.csv")).unwrap();
    let mut lines = scores.lines();
    assert_eq!(
        lines.next(),
        Some("game,seed,sparsity,final_score,normalized_score")
    );
    // breakout, seed 1, dense: base 1, last two eval returns 1+3 and 1+4 -> 4.5.
    assert!(
        scores.contains("minatar/breakout,1,0,4.5,4.5\n"),
        "{scores}"
    );
    assert_eq!(scores.lines().count(), 13);

    // Dense group: breakout finals 3.5 4.5 5.5, asterix 13.5 14.5 15.5 -> mean 9.5, IQM of
    // the pooled six drops one each side -> mean(4.5 5.5 13.5 14.5) = 9.5, median of task
    // means (4.5, 14.5) = 9.5.
    let summary = std::fs::read_to_string(out.path().join("summary.csv")).unwrap();
    assert!(
        summary.starts_with("sparsity,metric,estimate,ci_low,ci_high,runs\n"),
        "{summary}"
    );
    for metric in ["iqm", "mean", "median"] {
        assert!(
            summary.contains(&format!("\n0,{metric},9.5,")),
            "{metric}: {summary}"
        );
        assert!(
            summary.contains(&format!("\n0.95,{metric},14.5,")),
            "{metric}: {summary}"
        );
    }
    assert!(
        summary.contains("\n0,optimality_gap,0,0,0,6\n"),
        "{summary}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 8);
    assert_eq!(json[0]["sparsity"], serde_json::json!(0.0));

    // Curves: iterations 1..4 have eval episodes; at iteration 1 the dense group's pooled
    // scores are 1 2 3 11 12 13.
    let curves = std::fs::read_to_string(out.path().join("curves.csv")).unwrap();
    assert!(
        curves.starts_with("sparsity,env_steps,estimate,ci_low,ci_high\n"),
        "{curves}"
    );
    assert_eq!(curves.lines().count(), 1 + 2 * 4);
    assert!(curves.contains("\n0,2000,7,"), "{curves}");

    let check = format!(
        r#"
import pandas as pd
d = "{}"
scores = pd.read_csv(d + "/scores.csv")
summary = pd.read_csv(d + "/summary.csv")
records = pd.read_json(d + "/summary.json")
curves = pd.read_csv(d + "/curves.csv")
assert list(scores.columns) == ["game", "seed", "sparsity", "final_score", "normalized_score"], scores.columns
assert scores["final_score"].dtype == float and scores["seed"].dtype == int, scores.dtypes
assert summary["estimate"].dtype == float and summary["runs"].dtype == int, summary.dtypes
assert len(summary) == 8 and set(summary["metric"]) == {{"iqm", "mean", "median", "optimality_gap"}}
assert (records[["estimate", "ci_low", "ci_high"]].values == summary[["estimate", "ci_low", "ci_high"]].values).all()
assert (summary["ci_low"] <= summary["estimate"]).all() and (summary["estimate"] <= summary["ci_high"]).all()
assert curves["env_steps"].dtype == int and len(curves) == 8
print("ok")
"#,
        out.path().display()
    );
    let result = Command::new(reference::python())
        .arg("-c")
        .arg(check)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "pandas: {}",
        String::from_utf8_lossy(&result.stderr)
    );
}

#[test]
fn deterministic_and_normalized() {
    let dir = tempfile::tempdir().unwrap();
    let kind = Aggregate::IQM;
    let overrides = [("reps", Value::Int(500))];
    let (a, ra) = run(&kind, &overrides, runs(dir.path()));
    let (b, rb) = run(&kind, &overrides, runs(dir.path()));
    ra.unwrap();
    rb.unwrap();
    for name in ["scores.csv", "summary.csv", "summary.json", "curves.csv"] {
        let (x, y) = (
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
        );
        assert_eq!(x, y, "{name} differs between two runs");
    }
    // Default group-by: every axis except game and seed; default normalization by prefix.
    let summary = std::fs::read_to_string(a.path().join("summary.csv")).unwrap();
    assert!(summary.starts_with("sparsity,metric,"), "{summary}");
    let scores = std::fs::read_to_string(a.path().join("scores.csv")).unwrap();
    let row = scores
        .lines()
        .find(|l| l.starts_with("minatar/breakout,0,0,"))
        .unwrap();
    let normalized: f64 = row.rsplit(',').next().unwrap().parse().unwrap();
    let expected = prunus_stats::Normalization::Minatar
        .normalize("minatar/breakout", 4.0)
        .unwrap();
    assert_eq!(normalized, expected);
}

#[test]
fn bad_inputs_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let kind = Aggregate::IQM;
    let (_, r) = run(
        &kind,
        &[("group-by", Value::List(vec![Value::Str("width".into())]))],
        runs(dir.path()),
    );
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains("group-by") && err.contains("width") && err.contains("sparsity"),
        "{err}"
    );

    let (_, r) = run(
        &kind,
        &[("metric", Value::List(vec![Value::Str("iqr".into())]))],
        runs(dir.path()),
    );
    assert!(r.unwrap_err().to_string().contains("unknown metric `iqr`"));

    let inputs = runs(dir.path());
    std::fs::write(
        inputs[0].outputs["returns.csv"].clone(),
        "step,reward\n1,2\n",
    )
    .unwrap();
    let (_, r) = run(&kind, &[], inputs);
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains("returns.csv") && err.contains("train/minatar_breakout/s0/seed0"),
        "{err}"
    );

    let mut inputs = runs(dir.path());
    inputs[0]
        .axes
        .insert("game".into(), Value::Str("atari/not_a_game".into()));
    let (_, r) = run(&kind, &[("normalize", Value::Str("atari".into()))], inputs);
    assert!(r.unwrap_err().to_string().contains("not_a_game"));

    let (_, r) = run(&kind, &[], Vec::new());
    assert!(r.unwrap_err().to_string().contains("needs training runs"));
}

#[test]
fn profiles_and_probability_of_improvement() {
    let dir = tempfile::tempdir().unwrap();
    let taus = Value::List(vec![
        Value::Float(0.0),
        Value::Float(10.0),
        Value::Float(100.0),
    ]);
    let overrides = [("normalize", Value::Str("none".into())), ("taus", taus)];
    let (out, r) = run(&Aggregate::PROFILE, &overrides, runs(dir.path()));
    r.unwrap();
    let profiles = std::fs::read_to_string(out.path().join("profiles.csv")).unwrap();
    assert!(
        profiles.starts_with("sparsity,tau,estimate,ci_low,ci_high\n"),
        "{profiles}"
    );
    // Dense finals 3.5 4.5 5.5 13.5 14.5 15.5: all above 0, half above 10, none above 100.
    assert!(profiles.contains("\n0,0,1,1,1\n"), "{profiles}");
    assert!(profiles.contains("\n0,10,0.5,"), "{profiles}");
    assert!(profiles.contains("\n0,100,0,0,0\n"), "{profiles}");

    let (out, r) = run(
        &Aggregate::IMPROVEMENT,
        &[("reps", Value::Int(1000))],
        runs(dir.path()),
    );
    r.unwrap();
    let poi = std::fs::read_to_string(out.path().join("improvement.csv")).unwrap();
    // Per game, every pruned run beats every dense run (breakout: 8.5 9.5 10.5 vs 3.5 4.5
    // 5.5), so P(pruned > dense) = 1 in every replicate.
    assert_eq!(
        poi,
        "sparsity,baseline,estimate,ci_low,ci_high,runs,baseline_runs\n0.95,0,1,1,1,6,6\n"
    );

    let (_, r) = run(
        &Aggregate::IMPROVEMENT,
        &[("baseline", Value::Str("0.5".into()))],
        runs(dir.path()),
    );
    assert!(r.unwrap_err().to_string().contains("sparsity = 0.5"));
}

#[test]
fn group_by_stage_separates_stages_over_the_same_sweep() {
    // Two methods trained over the same axes (as `remedy-gmp` and `remedy-reset` in
    // pipelines/paper.kdl): grouping by `stage` keeps them apart.
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = runs(dir.path());
    for input in inputs
        .iter_mut()
        .filter(|i| i.axes["sparsity"] == Value::Float(0.95))
    {
        input.stage = "pruned".into();
        input.axes.remove("sparsity");
    }
    for input in inputs.iter_mut().filter(|i| i.stage == "train") {
        input.axes.remove("sparsity");
    }
    let overrides = [
        ("reps", Value::Int(200)),
        ("group-by", Value::List(vec![Value::Str("stage".into())])),
        ("metric", Value::List(vec![Value::Str("mean".into())])),
    ];
    let (out, result) = run(&Aggregate::IQM, &overrides, inputs);
    result.unwrap();
    let summary = std::fs::read_to_string(out.path().join("summary.csv")).unwrap();
    let rows: Vec<&str> = summary.lines().collect();
    assert!(rows[0].starts_with("stage,metric,"), "{summary}");
    assert_eq!(rows.len(), 3, "one row per stage: {summary}");
    assert!(rows[1].starts_with("pruned,mean,") && rows[2].starts_with("train,mean,"));
    let mean = |row: &str| -> f64 { row.split(',').nth(2).unwrap().parse().unwrap() };
    assert!(
        mean(rows[1]) > mean(rows[2]),
        "the pruned inputs score 5 higher: {summary}"
    );
}
