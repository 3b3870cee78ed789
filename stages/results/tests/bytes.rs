//! The writers produce the bytes the stages wrote before this crate existed (copies of those
//! writers below), so no cache key downstream changes; and the readers read them back.

use std::fmt::Write as _;
use std::path::Path;

use prunus_results::{
    AxisValue, CheckpointEntry, CsvRow, CurvePoint, GradCov, Improvement, ProbeRow, ProfilePoint,
    ReturnsRow, Score, SparsityRow, Summary, Table, read_csv, read_json, write_csv, write_json,
};

const FLOATS: [f64; 12] = [
    0.0,
    1.0,
    0.1,
    1e-7,
    1e20,
    -0.0,
    f64::NAN,
    f64::INFINITY,
    -2.5,
    1.0 / 3.0,
    123456789.125,
    f64::MIN_POSITIVE,
];

fn bytes(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn returns_rows() -> Vec<ReturnsRow> {
    FLOATS
        .iter()
        .enumerate()
        .map(|(i, &x)| ReturnsRow {
            iteration: i as u64,
            env_steps: if i == 3 { u64::MAX } else { 1000 * i as u64 },
            grad_steps: 250 * i as u64,
            train_return: (i % 3 != 0).then_some(x),
            train_episodes: i as u64 % 4,
            eval_return: (i % 2 == 0).then_some(-x),
            eval_episodes: 5,
            sparsity: x,
        })
        .collect()
}

/// stages/agents' `write_outputs` before prunus-results.
fn legacy_returns(rows: &[ReturnsRow]) -> String {
    fn fmt_opt(x: Option<f64>) -> String {
        x.map_or_else(|| "NaN".to_string(), |v| format!("{v}"))
    }
    let mut f = String::new();
    writeln!(
        f,
        "iteration,env_steps,grad_steps,train_return,train_episodes,eval_return,eval_episodes,sparsity"
    )
    .unwrap();
    for s in rows {
        writeln!(
            f,
            "{},{},{},{},{},{},{},{}",
            s.iteration,
            s.env_steps,
            s.grad_steps,
            fmt_opt(s.train_return),
            s.train_episodes,
            fmt_opt(s.eval_return),
            s.eval_episodes,
            s.sparsity
        )
        .unwrap();
    }
    f
}

#[test]
fn returns_csv_is_the_legacy_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("returns.csv");
    let rows = returns_rows();
    write_csv(&path, &rows).unwrap();
    assert_eq!(bytes(&path), legacy_returns(&rows));
    write_csv::<ReturnsRow>(&path, &[]).unwrap();
    assert_eq!(bytes(&path), legacy_returns(&[]));

    // Read back: NaN returns are None; everything else round-trips (NaN sparsity aside).
    write_csv(&path, &rows).unwrap();
    let back: Vec<ReturnsRow> = read_csv(&path).unwrap();
    for (a, b) in rows.iter().zip(&back) {
        assert_eq!(b.train_return, a.train_return.filter(|x| !x.is_nan()));
        assert_eq!(b.eval_return, a.eval_return.filter(|x| !x.is_nan()));
        assert_eq!((a.iteration, a.env_steps), (b.iteration, b.env_steps));
        assert!(a.sparsity.total_cmp(&b.sparsity).is_eq() || a.sparsity.is_nan());
    }
}

#[test]
fn returns_csv_reader_takes_empty_cells_as_none_and_names_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("returns.csv");
    std::fs::write(
        &path,
        "iteration,env_steps,grad_steps,train_return,train_episodes,eval_return,eval_episodes,sparsity\n\
         0,1000,0,,0,NaN,0,0\n1,2000,250,1.5,3,2,5,0.5\n2,x,0,,0,,0,0\n",
    )
    .unwrap();
    let err = read_csv::<ReturnsRow>(&path).unwrap_err().to_string();
    assert!(
        err.contains("returns.csv") && err.contains("row 3"),
        "{err}"
    );
    std::fs::write(&path, "step,reward\n1,2\n").unwrap();
    let err = read_csv::<ReturnsRow>(&path).unwrap_err().to_string();
    assert!(err.contains("row 1") && err.contains("iteration"), "{err}");
    std::fs::write(
        &path,
        "iteration,env_steps,grad_steps,train_return,train_episodes,eval_return,eval_episodes,sparsity\n\
         0,1000,0,,0,NaN,0,0\n",
    )
    .unwrap();
    let rows = read_csv::<ReturnsRow>(&path).unwrap();
    assert_eq!((rows[0].train_return, rows[0].eval_return), (None, None));
}

#[test]
fn sparsity_and_probes_csv_are_the_legacy_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparsity.csv");
    let rows: Vec<SparsityRow> = FLOATS
        .iter()
        .enumerate()
        .map(|(i, &s)| SparsityRow {
            grad_steps: u64::MAX - i as u64,
            layer: format!("layers.{i}.weight"),
            sparsity: s,
        })
        .collect();
    write_csv(&path, &rows).unwrap();
    let mut legacy = String::new();
    writeln!(legacy, "grad_steps,layer,sparsity").unwrap();
    for SparsityRow {
        grad_steps: g,
        layer,
        sparsity: s,
    } in &rows
    {
        writeln!(legacy, "{g},{layer},{s}").unwrap();
    }
    assert_eq!(bytes(&path), legacy);
    assert_eq!(read_csv::<SparsityRow>(&path).unwrap()[1], rows[1]);

    let path = dir.path().join("probes.csv");
    let rows: Vec<ProbeRow> = FLOATS
        .iter()
        .enumerate()
        .map(|(i, &value)| ProbeRow {
            env_steps: 50_000 * i as u64,
            probe: format!("dormant_tau{}", FLOATS[i % 4]),
            value,
        })
        .collect();
    write_csv(&path, &rows).unwrap();
    // stages/agents' probe kind before prunus-results.
    let mut legacy = String::from("env_steps,probe,value\n");
    for r in &rows {
        writeln!(legacy, "{},{},{}", r.env_steps, r.probe, r.value).unwrap();
    }
    assert_eq!(bytes(&path), legacy);
    assert_eq!(read_csv::<ProbeRow>(&path).unwrap()[2], rows[2]);
}

#[test]
fn json_files_are_the_legacy_format() {
    let dir = tempfile::tempdir().unwrap();
    let covs = vec![
        GradCov {
            env_steps: 0,
            samples: 2,
            matrix: vec![vec![1.0, 0.1], vec![1e-7, -0.0]],
        },
        GradCov {
            env_steps: u64::MAX,
            samples: 1,
            matrix: vec![vec![1e20]],
        },
    ];
    let path = dir.path().join("grad_cov.json");
    write_json(&path, &covs).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        serde_json::to_vec(&covs).unwrap()
    );
    assert_eq!(
        bytes(&path),
        r#"[{"env_steps":0,"samples":2,"matrix":[[1.0,0.1],[1e-7,-0.0]]},{"env_steps":18446744073709551615,"samples":1,"matrix":[[1e+20]]}]"#
    );
    assert_eq!(read_json::<GradCov>(&path).unwrap(), covs);

    let entries = vec![CheckpointEntry {
        index: 0,
        fraction: 0.5,
        file: "ckpt-0.ckpt".into(),
        iteration: 3,
        env_steps: 30_000,
        grad_steps: 7_500,
    }];
    let path = dir.path().join("checkpoints.json");
    write_json(&path, &entries).unwrap();
    assert_eq!(
        bytes(&path),
        "[\n  {\n    \"index\": 0,\n    \"fraction\": 0.5,\n    \"file\": \"ckpt-0.ckpt\",\n    \
         \"iteration\": 3,\n    \"env_steps\": 30000,\n    \"grad_steps\": 7500\n  }\n]"
    );
    assert_eq!(read_json::<CheckpointEntry>(&path).unwrap(), entries);
}

#[test]
fn grad_cov_reader_takes_flat_matrices_and_no_samples() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grad_cov.json");
    std::fs::write(&path, r#"[{"env_steps": 5, "matrix": [1, 0.5, 0.5, 1]}]"#).unwrap();
    let covs = read_json::<GradCov>(&path).unwrap();
    assert_eq!(covs[0].matrix, vec![vec![1.0, 0.5], vec![0.5, 1.0]]);
    std::fs::write(&path, r#"[{"env_steps": 5, "matrix": [1, 0.5, 0.5]}]"#).unwrap();
    let err = read_json::<GradCov>(&path).unwrap_err().to_string();
    assert!(
        err.contains("grad_cov.json") && err.contains("not square"),
        "{err}"
    );
}

fn axes() -> Vec<String> {
    vec!["game".into(), "seed".into(), "sparsity".into()]
}

fn values(i: usize) -> Vec<Option<AxisValue>> {
    vec![
        Some(AxisValue::Str(format!("minatar/game{i}"))),
        (i != 1).then_some(AxisValue::Int(i as i64)),
        Some(AxisValue::Float(FLOATS[i])),
    ]
}

/// stages/stats' writers before prunus-results: `csv` records of `to_string()` cells.
fn legacy_table(
    axes: &[String],
    fixed: &[&str],
    rows: &[(Vec<Option<AxisValue>>, Vec<String>)],
) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(axes.iter().map(String::as_str).chain(fixed.iter().copied()))
        .unwrap();
    for (values, cells) in rows {
        let mut record: Vec<String> = values
            .iter()
            .map(|v| v.as_ref().map(ToString::to_string).unwrap_or_default())
            .collect();
        record.extend(cells.iter().cloned());
        w.write_record(&record).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// Writes a table whose i-th row is `row(a, b, c, i)` over the tricky values, compares it with
/// the legacy writer fed `cells(a, b, c, i)`, and returns it.
fn check_table<R: CsvRow>(
    path: &Path,
    fixed: &[&str],
    row: impl Fn(f64, f64, f64, usize) -> R,
    cells: impl Fn(String, String, String, usize) -> Vec<String>,
) -> Table<R> {
    let n = FLOATS.len();
    let mut table = Table::new(axes());
    let mut legacy = Vec::new();
    for i in 0..n {
        let (a, b, c) = (FLOATS[i], FLOATS[(i + 1) % n], FLOATS[(i + 2) % n]);
        table.push(values(i), row(a, b, c, i));
        legacy.push((
            values(i),
            cells(a.to_string(), b.to_string(), c.to_string(), i),
        ));
    }
    table.write_csv(path).unwrap();
    assert_eq!(
        bytes(path),
        legacy_table(&axes(), fixed, &legacy),
        "{}",
        path.display()
    );
    table
}

fn steps(i: usize) -> u64 {
    if i == 2 { u64::MAX } else { 1000 * i as u64 }
}

#[test]
fn aggregate_tables_are_the_legacy_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    check_table(
        &path("scores.csv"),
        &["final_score", "normalized_score"],
        |a, b, _, _| Score {
            final_score: a,
            normalized_score: b,
        },
        |a, b, _, _| vec![a, b],
    );
    check_table(
        &path("summary.csv"),
        &["metric", "estimate", "ci_low", "ci_high", "runs"],
        |a, b, c, i| Summary {
            metric: "iqm".into(),
            estimate: a,
            ci_low: b,
            ci_high: c,
            runs: i,
        },
        |a, b, c, i| vec!["iqm".into(), a, b, c, i.to_string()],
    );
    check_table(
        &path("curves.csv"),
        &["env_steps", "estimate", "ci_low", "ci_high"],
        |a, b, c, i| CurvePoint {
            env_steps: steps(i),
            estimate: a,
            ci_low: b,
            ci_high: c,
        },
        |a, b, c, i| vec![steps(i).to_string(), a, b, c],
    );
    check_table(
        &path("profiles.csv"),
        &["tau", "estimate", "ci_low", "ci_high"],
        |a, b, c, _| ProfilePoint {
            tau: c,
            estimate: a,
            ci_low: b,
            ci_high: c,
        },
        |a, b, c, _| vec![c.clone(), a, b, c],
    );
    check_table(
        &path("improvement.csv"),
        &[
            "baseline",
            "estimate",
            "ci_low",
            "ci_high",
            "runs",
            "baseline_runs",
        ],
        |a, b, c, i| Improvement {
            baseline: "0".into(),
            estimate: a,
            ci_low: b,
            ci_high: c,
            runs: i,
            baseline_runs: 2 * i,
        },
        |a, b, c, i| vec!["0".into(), a, b, c, i.to_string(), (2 * i).to_string()],
    );
    Table::<Summary>::new(axes())
        .write_csv(&path("empty.csv"))
        .unwrap();
    assert_eq!(
        bytes(&path("empty.csv")),
        legacy_table(
            &axes(),
            &["metric", "estimate", "ci_low", "ci_high", "runs"],
            &[]
        )
    );
}

#[test]
fn aggregate_tables_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.csv");
    let summary = check_table(
        &path,
        &["metric", "estimate", "ci_low", "ci_high", "runs"],
        |a, b, c, i| Summary {
            metric: "iqm".into(),
            estimate: a,
            ci_low: b,
            ci_high: c,
            runs: i,
        },
        |a, b, c, i| vec!["iqm".into(), a, b, c, i.to_string()],
    );
    // Axis values come back as their text, the fixed part typed.
    let back = Table::<Summary>::read_csv(&path).unwrap();
    assert_eq!(back.axes, axes());
    assert_eq!(back.rows[1].values[1], None);
    assert_eq!(
        back.rows[4].values[2],
        Some(AxisValue::Str("100000000000000000000".into()))
    );
    assert_eq!(back.rows[3].row, summary.rows[3].row);
    let err = Table::<CurvePoint>::read_csv(&path).unwrap_err();
    assert!(err.to_string().contains("no `env_steps` column"), "{err}");

    let path = dir.path().join("curves.csv");
    check_table(
        &path,
        &["env_steps", "estimate", "ci_low", "ci_high"],
        |a, b, c, i| CurvePoint {
            env_steps: steps(i),
            estimate: a,
            ci_low: b,
            ci_high: c,
        },
        |a, b, c, i| vec![steps(i).to_string(), a, b, c],
    );
    let back = Table::<CurvePoint>::read_csv(&path).unwrap();
    assert_eq!(back.rows[2].row.env_steps, u64::MAX);
}

/// stages/stats' `summary.json` before prunus-results.
#[test]
fn summary_json_is_the_legacy_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = Table::new(vec!["width".into(), "sparsity".into(), "zeta".into()]);
    let mut records = Vec::new();
    for (i, &x) in FLOATS.iter().enumerate() {
        let values = vec![
            Some(AxisValue::Int(i as i64)),
            Some(AxisValue::Float(x)),
            (i % 2 == 0).then(|| AxisValue::Str("[a, b]".into())),
        ];
        table.push(
            values.clone(),
            Summary {
                metric: "median".into(),
                estimate: x,
                ci_low: -x,
                ci_high: 1e20,
                runs: i,
            },
        );
        let mut json = serde_json::Map::new();
        json.insert("width".into(), (i as i64).into());
        json.insert("sparsity".into(), x.into());
        json.insert(
            "zeta".into(),
            if i % 2 == 0 {
                "[a, b]".into()
            } else {
                serde_json::Value::Null
            },
        );
        json.insert("metric".into(), "median".into());
        json.insert("estimate".into(), x.into());
        json.insert("ci_low".into(), (-x).into());
        json.insert("ci_high".into(), 1e20.into());
        json.insert("runs".into(), i.into());
        records.push(serde_json::Value::Object(json));
    }
    let path = dir.path().join("summary.json");
    table.write_json(&path).unwrap();
    assert_eq!(
        bytes(&path),
        serde_json::to_string_pretty(&records).unwrap() + "\n"
    );
}
