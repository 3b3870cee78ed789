//! Parsing and planning cost as pipelines grow: a 10 MB pipeline of `//` comments, one of
//! ~100,000 small stages, chains of 10,000..80,000 stages, and 100,000 instances over 1,000
//! stages (each a 100-seed sweep reading its own seed's instance of the previous stage).
//! Each case runs in a fresh process so that its peak memory (VmHWM) is its own.
//! Targets: 10 MB parsed in under 1 s; 100,000 instances over 1,000 stages planned in under
//! 2 s; time and memory per stage or instance flat as the pipeline grows.
//!
//! `cargo bench -p prunus-engine --bench planning [-- CASE...]` (`stages`, `chain`, ...).

use std::process::Command;
use std::time::Instant;

use prunus_engine::{Registry, lower, pipeline, plan};
use prunus_store::Store;

const MB10: usize = 10 << 20;

/// A pipeline of `text` for case `name` at size `n`.
fn generate(name: &str, n: usize) -> String {
    let mut s = String::from("pipeline \"bench\"\n");
    match name {
        "comment" => {
            while s.len() < n {
                s.push_str("// a line comment that the parser must skip over, quickly\n");
            }
        }
        "stages" | "chain" => {
            let mut i = 0;
            while (name == "stages" && s.len() < n) || (name == "chain" && i < n) {
                let needs = if i > 0 {
                    format!(" needs s{}\n", i - 1)
                } else {
                    String::new()
                };
                s.push_str(&format!(
                    "stage s{i} {{\n kind \"test/echo\"\n{needs} value \"v{i}\"\n}}\n"
                ));
                i += 1;
            }
        }
        "sweeps" => {
            s.push_str("sweep seeds {\n seed from=0 to=99\n}\n");
            for i in 0..n {
                let needs = if i > 0 {
                    format!(" needs s{}\n", i - 1)
                } else {
                    String::new()
                };
                s.push_str(&format!(
                    "stage s{i} {{\n kind \"test/echo\"\n over seeds\n{needs} value \"v{i}-{{seed}}\"\n}}\n"
                ));
            }
        }
        other => panic!("unknown case {other}"),
    }
    s
}

/// Peak resident memory of this process, in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// One case in this process: prints `parse_ms lower_ms plan_ms instances peak_mb bytes`.
fn child(name: &str, n: usize) {
    let text = generate(name, n);
    let bytes = text.len();
    let t = Instant::now();
    let (parsed, sources) = pipeline::parse_str("bench.kdl", &text).expect("valid pipeline");
    let parse = t.elapsed();
    let (mut lower_s, mut plan_s, mut instances) = (0.0, 0.0, 0);
    if name != "comment" && name != "stages" {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("store")).expect("store");
        let registry = Registry::builtin(dir.path());
        let t = Instant::now();
        let graph = lower::lower(&parsed, &sources, &registry).expect("lowers");
        lower_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let entries = plan::plan(&graph, &store).expect("plans");
        plan_s = t.elapsed().as_secs_f64();
        instances = entries.len();
    }
    println!(
        "{} {} {} {instances} {} {bytes}",
        parse.as_secs_f64() * 1e3,
        lower_s * 1e3,
        plan_s * 1e3,
        peak_mb()
    );
}

fn run_case(name: &str, n: usize, reps: usize) -> Vec<Vec<f64>> {
    (0..reps)
        .map(|_| {
            let out = Command::new(std::env::current_exe().expect("own path"))
                .args(["case", name, &n.to_string()])
                .output()
                .expect("running a case");
            assert!(
                out.status.success(),
                "case {name} {n} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(|x| x.parse().expect("a number"))
                .collect()
        })
        .collect()
}

fn median(rows: &[Vec<f64>], col: usize) -> f64 {
    let mut v: Vec<f64> = rows.iter().map(|r| r[col]).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "case" {
        return child(&args[2], args[3].parse().expect("a size"));
    }
    let reps = 5;
    println!("prunus-engine planning, release build, median of {reps} (each run its own process)");
    println!(
        "  {:<34} {:>9} {:>9} {:>9} {:>8} {:>9} {:>10}",
        "case", "parse ms", "lower ms", "plan ms", "MB peak", "us/inst", "target"
    );
    let cases: [(&str, usize, &str, &str); 8] = [
        ("comment", MB10, "10 MB of // comments", "parse < 1000 ms"),
        ("stages", MB10, "10 MB of stages", "parse < 1000 ms"),
        ("chain", 10_000, "10,000 chained stages", ""),
        ("chain", 20_000, "20,000 chained stages", "linear"),
        ("chain", 40_000, "40,000 chained stages", "linear"),
        ("chain", 80_000, "80,000 chained stages", "linear"),
        ("sweeps", 500, "50,000 instances / 500 stages", ""),
        (
            "sweeps",
            1_000,
            "100,000 instances / 1,000 stages",
            "lower+plan < 2000 ms",
        ),
    ];
    let only: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    for (name, n, what, target) in cases {
        if !only.is_empty() && !only.iter().any(|o| *o == name) {
            continue;
        }
        let rows = run_case(name, n, reps);
        let instances = median(&rows, 3);
        let total_ms = median(&rows, 0) + median(&rows, 1) + median(&rows, 2);
        let per = if instances > 0.0 {
            format!("{:9.2}", total_ms * 1e3 / instances)
        } else {
            format!("{:>9}", "-")
        };
        println!(
            "  {:<34} {:9.1} {:9.1} {:9.1} {:8.0} {per} {:>10}",
            format!("{what} ({:.1} MB)", median(&rows, 5) / 1048576.0),
            median(&rows, 0),
            median(&rows, 1),
            median(&rows, 2),
            median(&rows, 4),
            target
        );
        if name == "stages" {
            dense_verdict(median(&rows, 0));
        }
    }
}

/// The 10 MB dense pipeline against its target, on a line of its own.
fn dense_verdict(parse_ms: f64) {
    let verdict = if parse_ms < 1000.0 { "met" } else { "NOT met" };
    println!("  -> 10 MB of stages parsed in {parse_ms:.0} ms; target < 1000 ms: {verdict}");
}
