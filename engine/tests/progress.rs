//! A run whose stderr is not a terminal (a CI or Slurm log) prints, every
//! `PRUNUS_PROGRESS_INTERVAL` seconds, one line per running instance with its progress.
//! The test runs the engine in a child process (this test binary again) with stderr piped,
//! as a batch system would, and reads what it printed.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prunus_engine::{Registry, RunOptions, load_str};
use prunus_store::Store;

const CHILD: &str = "PRUNUS_PROGRESS_TEST_CHILD";

/// Two `test/echo` instances of 1.5 s each, reporting progress every 10 ms.
fn run_slow_stages(dir: &Path) {
    let pipeline = "pipeline \"slow\"\nsweep s {\n seed 0 1\n}\nstage slow {\n kind \"test/echo\"\n over s\n sleep-ms 1500\n}\n";
    let registry = Registry::builtin(dir);
    let graph = load_str("slow", pipeline, &registry).expect("valid pipeline");
    let store = Store::open(dir.join("store")).expect("store");
    let opts = RunOptions {
        cpus: 2,
        export: false,
        ..RunOptions::default()
    };
    let summary = prunus_engine::run::run(&graph, &store, &opts, Arc::new(AtomicBool::new(false)))
        .expect("runs");
    assert!(summary.ok() && summary.ran.len() == 2, "{summary:?}");
}

#[test]
fn logs_get_a_progress_line_per_running_instance() {
    if std::env::var_os(CHILD).is_some() {
        let dir = tempfile::tempdir().unwrap();
        return run_slow_stages(dir.path());
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "logs_get_a_progress_line_per_running_instance",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("PRUNUS_PROGRESS_INTERVAL", "0.25")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stderr}");
    for instance in ["slow/seed0", "slow/seed1"] {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with(&format!("  {instance}: ")))
            .collect();
        assert!(
            lines.len() >= 2,
            "few progress lines for {instance}:\n{stderr}"
        );
        for line in lines.iter().filter(|l| !l.contains("running for")) {
            // `  slow/seed0: 42/150 ticks (28.0%), 99.87/s, ETA 1.1 s`
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(fields[1].ends_with("/150"), "{line}");
            assert_eq!(fields[2], "ticks", "{line}");
            assert!(
                fields[3].starts_with('(') && fields[3].ends_with("%),"),
                "{line}"
            );
            let rate = fields[4].strip_suffix("/s,").expect("a rate");
            let decimals = rate.split_once('.').map(|(_, d)| d.len());
            assert_eq!(decimals, Some(2), "rate {rate} in {line}");
            assert!(rate.parse::<f64>().unwrap() > 0.0, "{line}");
            assert_eq!(fields[5], "ETA", "{line}");
        }
    }
}

#[test]
fn an_interval_of_zero_turns_the_lines_off() {
    if std::env::var_os(CHILD).is_some() {
        let dir = tempfile::tempdir().unwrap();
        return run_slow_stages(dir.path());
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_interval_of_zero_turns_the_lines_off",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("PRUNUS_PROGRESS_INTERVAL", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stderr}");
    assert!(!stderr.contains("  slow/seed0: "), "{stderr}");
}
