//! Runs the Python reference scripts (`tests/*_reference.py`) with the Python that has the
//! reference packages (shared by the equivalence tests and the benchmark).

use std::path::PathBuf;
use std::process::Command;

/// `PRUNUS_TEST_PYTHON`, else `<workspace>/.venv/bin/python`; fails loudly when it cannot import
/// `minatar`, because an equivalence test that skips proves nothing.
#[allow(dead_code)]
pub fn python() -> PathBuf {
    python_with("minatar")
}

/// As [`python`], for a Python that can import `module`.
pub fn python_with(module: &str) -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("PRUNUS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../.venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the reference package `{module}` is not importable with {}: run `bash tests/setup/00-python.sh` \
         (installs tests/setup/requirements-env.txt into .venv) or set PRUNUS_TEST_PYTHON to a \
         python that has it installed",
        python.display()
    );
    python
}

/// Runs the MinAtar reference script in `mode` with `args`; returns its stdout.
#[allow(dead_code)]
pub fn run(python: &PathBuf, mode: &str, args: &[String]) -> Vec<u8> {
    run_script(python, "minatar_reference.py", mode, args)
}

/// Runs `tests/<script>` in `mode` with `args`; returns its stdout.
pub fn run_script(python: &PathBuf, script: &str, mode: &str, args: &[String]) -> Vec<u8> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let out = Command::new(python)
        .arg(&script)
        .arg(mode)
        .args(args)
        .output()
        .expect("failed to start the Python reference");
    assert!(
        out.status.success(),
        "{} {mode} {args:?} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
