//! Atari through the binary: `prunus roms install` from ale-py's ROM directory, a short DQN
//! run on Pong with pruning, and the missing-ROM error a user sees. Needs a `prunus` built
//! with `--features atari` (the test command builds it so); a build without says so clearly,
//! which is checked instead.

use std::path::PathBuf;
use std::process::Command;

use prunus_tests::Project;

const PONG: &str = r#"
pipeline "pong"
stage "train" {
    kind "train/dqn"
    env "atari/pong"
    network "nature"
    network.width 0.25
    prune "gmp" sparsity=0.9
    steps 1_200
    iterations 2
    min-replay 400
    replay.capacity 4_000
    epsilon.decay 800
    checkpoints 1.0
    probe-batch 32
}
"#;

/// ale-py's bundled ROM directory, from the test Python (tests/setup installs ale-py).
fn ale_py_roms() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("PRUNUS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../.venv/bin/python"));
    let out = Command::new(&python)
        .args([
            "-c",
            "import os, ale_py; print(os.path.join(os.path.dirname(ale_py.__file__), 'roms'))",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run bash tests/setup/00-python.sh",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "ale-py is not installed for {}: run bash tests/setup/00-python.sh",
        python.display()
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn roms_install_then_train_on_pong_and_a_clear_error_without_roms() {
    let p = Project::new();
    let listed = p.prunus(&["roms", "list", "--dir", "roms"]);
    if listed.code != 0 {
        assert!(
            listed.stderr.contains("built without Atari support")
                && listed.stderr.contains("--features atari"),
            "{}",
            listed.stderr
        );
        eprintln!("this prunus has no Atari support; only its error was checked");
        return;
    }
    assert!(
        listed.stdout.contains("0 of 76 games ready"),
        "{}",
        listed.stdout
    );

    // Without ROMs the run fails with the fix in the message, and records nothing.
    p.write("pong.kdl", PONG);
    let mut cmd = p.command(&["run", "pong.kdl", "-q"]);
    let failed = cmd
        .env("PRUNUS_ROMS", p.path().join("roms"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_ne!(failed.status.code(), Some(0));
    assert!(
        stderr.contains("the Atari ROM for `pong` is not installed")
            && stderr.contains("prunus roms install"),
        "{stderr}"
    );

    let roms = ale_py_roms();
    let installed = p
        .prunus(&[
            "roms",
            "install",
            "--from",
            roms.to_str().unwrap(),
            "--dir",
            "roms",
        ])
        .ok();
    assert!(
        installed.stderr.contains("installed 76 verified ROMs"),
        "{}",
        installed.stderr
    );
    let listed = p.prunus(&["roms", "list", "--dir", "roms"]).ok();
    assert!(
        listed.stdout.contains("76 of 76 games ready"),
        "{}",
        listed.stdout
    );

    let mut cmd = p.command(&["run", "pong.kdl", "-q"]);
    let out = cmd
        .env("PRUNUS_ROMS", p.path().join("roms"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let returns = p.read("results/pong/train/returns.csv");
    let rows: Vec<&str> = returns.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{returns}");
    // Pong scores lie in [-21, 21]; a random-ish agent loses most points (one episode ends
    // within the 1,200 steps).
    let score: f64 = rows[1].split(',').nth(3).unwrap().parse().unwrap();
    assert!((-21.0..=21.0).contains(&score), "{returns}");
    let sparsity: f64 = rows[1].split(',').next_back().unwrap().parse().unwrap();
    assert!((sparsity - 0.9).abs() < 1e-3, "GMP reached 0.9: {returns}");
}

/// The Atari-100k agents (Dopamine's DrQ(eps) and DER settings: n = 10, one update per step,
/// life-loss terminals, no-op starts, no sticky actions) on Pong with a small budget: 2,000
/// agent steps, 400 updates each, one evaluation episode per iteration, DER pruned by GMP.
const PONG_100K: &str = r#"
pipeline "pong-100k"
template "pong" {
    env "atari/pong"
    network "nature"
    network.width 0.25
    steps 2_000
    iterations 2
    eval-episodes 1
    replay.capacity 4_000
    checkpoints 1.0
    probe-batch 32
}
stage "drq-eps" {
    from "pong"
    kind "train/drq-eps"
}
stage "der" {
    from "pong"
    kind "train/der"
    prune "gmp" sparsity=0.9
}
"#;

#[test]
fn drq_eps_and_der_train_on_pong() {
    let p = Project::new();
    if p.prunus(&["roms", "list", "--dir", "roms"]).code != 0 {
        eprintln!("this prunus has no Atari support; see the test above");
        return;
    }
    let roms = ale_py_roms();
    p.prunus(&[
        "roms",
        "install",
        "--from",
        roms.to_str().unwrap(),
        "--dir",
        "roms",
    ])
    .ok();
    p.write("pong-100k.kdl", PONG_100K);
    let mut cmd = p.command(&["run", "pong-100k.kdl", "-q"]);
    let out = cmd
        .env("PRUNUS_ROMS", p.path().join("roms"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stage in ["drq-eps", "der"] {
        let returns = p.read(&format!("results/pong-100k/{stage}/returns.csv"));
        let rows: Vec<Vec<&str>> = returns
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows.len(), 2, "{returns}");
        // iteration, env_steps, grad_steps, ...: ~400 updates after the 1,600 warm-up frames.
        assert_eq!(rows[1][1], "2000", "{returns}");
        let updates: u64 = rows[1][2].parse().unwrap();
        assert!((395..=405).contains(&updates), "{returns}");
        let eval: f64 = rows[1][5].parse().unwrap();
        assert!((-21.0..=21.0).contains(&eval), "{stage}: {returns}");
    }
    let der = p.read("results/pong-100k/der/returns.csv");
    let sparsity: f64 = der
        .lines()
        .last()
        .unwrap()
        .split(',')
        .next_back()
        .unwrap()
        .parse()
        .unwrap();
    assert!((sparsity - 0.9).abs() < 1e-3, "GMP reached 0.9: {der}");
}
