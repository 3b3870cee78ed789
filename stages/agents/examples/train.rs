//! Runs `train/dqn` or `train/rainbow` outside the engine and prints its log with timings:
//! the script behind the budgets in tests/learning.rs and the quickstart recommendation.
//!
//! `cargo run --release -p prunus-agents --example train -- dqn env=minatar/breakout steps=200000 iterations=10 eval-episodes=10`
//!
//! Arguments are `key=value` with the kind's parameter keys; values parse as int, float, bool
//! or string (comma-separated numbers for lists such as `checkpoints=0.5,1`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use prunus_agents::kinds::{Algorithm, TrainKind};
use prunus_stage::{Context, Params, Reporter, StageKind, Value};

struct Print(Instant);

impl Reporter for Print {
    fn progress(&self, _: u64, _: u64, _: &str) {}
    fn log(&self, line: &str) {
        println!("[{:7.1}s] {line}", self.0.elapsed().as_secs_f64());
    }
}

fn value(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        Value::Int(i)
    } else if let Ok(f) = s.parse::<f64>() {
        Value::Float(f)
    } else if let Ok(b) = s.parse::<bool>() {
        Value::Bool(b)
    } else if s.contains(',') {
        Value::List(s.split(',').map(value).collect())
    } else {
        Value::Str(s.to_string())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let algorithm = match args.next().as_deref() {
        Some("dqn") => Algorithm::Dqn,
        Some("rainbow") => Algorithm::Rainbow,
        _ => panic!("usage: train dqn|rainbow key=value..."),
    };
    let kind = TrainKind::new(algorithm);
    let mut map: BTreeMap<String, Value> = kind
        .params()
        .into_iter()
        .filter_map(|p| p.default.map(|d| (p.key.to_string(), d)))
        .collect();
    for arg in args {
        let (k, v) = arg.split_once('=').expect("arguments are key=value");
        let known = kind.params().iter().any(|p| p.key == k);
        assert!(known, "unknown parameter `{k}`");
        map.insert(k.to_string(), value(v));
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let start = Instant::now();
    let ctx = Context {
        instance: "example".into(),
        axes: BTreeMap::new(),
        params: Params(map),
        inputs: Vec::new(),
        out_dir: dir.path().join("out"),
        scratch: dir.path().join("scratch"),
        reporter: Arc::new(Print(start)),
        gpus: vec![0],
        cancel: Arc::new(AtomicBool::new(false)),
    };
    kind.run(&ctx).expect("training failed");
    println!(
        "done in {:.1}s\n{}",
        start.elapsed().as_secs_f64(),
        std::fs::read_to_string(ctx.output("returns.csv")).expect("returns.csv")
    );
}
