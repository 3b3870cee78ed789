//! Engine overhead on `pipelines/bench/overhead.kdl` (200 trivial instances + a fan-in),
//! through the `prunus` binary as a user runs it: first run, no-op rerun, rerun after an
//! edit every instance sees, and `prunus plan` of generated sweeps up to 100,000 instances
//! (cost per instance should stay flat).
//!
//! `cargo bench -p prunus --bench overhead`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn prunus(dir: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_prunus"))
        .args(args)
        .current_dir(dir)
        .env("PRUNUS_STORE", dir.join(".prunus"))
        .output()
        .expect("running prunus");
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "prunus {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:8.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/bench/overhead.kdl");
    let text = std::fs::read_to_string(&source).expect("pipelines/bench/overhead.kdl");
    let reps = 5;
    let (mut first, mut noop, mut edit) = (vec![], vec![], vec![]);
    for _ in 0..reps {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("overhead.kdl");
        std::fs::write(&file, &text).unwrap();
        first.push(prunus(dir.path(), &["run", "-q", "overhead.kdl"]));
        for _ in 0..3 {
            noop.push(prunus(dir.path(), &["run", "-q", "overhead.kdl"]));
        }
        std::fs::write(&file, text.replace("value \"v1\"", "value \"v2\"")).unwrap();
        edit.push(prunus(dir.path(), &["run", "-q", "overhead.kdl"]));
    }
    println!(
        "pipelines/bench/overhead.kdl: 201 instances (10 games x 5 seeds x 4 widths + fan-in), median of {reps}"
    );
    println!("                         prunus      target     Snakemake 9.27   DVC 3.67");
    println!(
        "  first run           {}    2000 ms        7400 ms        100000 ms",
        ms(median(first))
    );
    println!(
        "  no-op rerun         {}      50 ms        1300 ms          9000 ms",
        ms(median(noop))
    );
    println!("  edit, 201 rerun     {}", ms(median(edit)));

    println!("\nprunus plan of a generated sweep (empty store), test/echo, median of 3");
    for (games, seeds, widths, sparsities) in [
        (10, 10, 10, 1),
        (10, 10, 10, 10),
        (50, 10, 10, 10),
        (100, 10, 10, 10),
    ] {
        let n = games * seeds * widths * sparsities;
        let dir = tempfile::tempdir().unwrap();
        let game_values: Vec<String> = (0..games).map(|g| format!("\"game{g}\"")).collect();
        let sparsity_values: Vec<String> = (0..sparsities)
            .map(|s| format!("{:.2}", s as f64 / 10.0))
            .collect();
        let pipeline = format!(
            "pipeline \"plan\"\nsweep \"big\" {{\n    game {}\n    seed from=0 to={}\n    width from=1 to={}\n    sparsity {}\n}}\nstage \"run\" {{\n    kind \"test/echo\"\n    over \"big\"\n    value \"{{game}}\"\n}}\n",
            game_values.join(" "),
            seeds - 1,
            widths,
            sparsity_values.join(" ")
        );
        std::fs::write(dir.path().join("plan.kdl"), pipeline).unwrap();
        let t = median(
            (0..3)
                .map(|_| prunus(dir.path(), &["plan", "--json", "plan.kdl"]))
                .collect(),
        );
        println!(
            "  {n:>7} instances   {}   {:6.2} us/instance{}",
            ms(t),
            t.as_secs_f64() * 1e6 / n as f64,
            if n == 100_000 {
                "   (target 2000 ms)"
            } else {
                ""
            }
        );
    }
}
