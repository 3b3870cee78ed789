//! Runs rliable (the PyPI package, installed by `tests/setup/00-python.sh`) on requests
//! described in `tests/rliable_reference.py`. Shared by the tests and the benchmark.
#![allow(dead_code)] // each user needs a different part

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// `PRUNUS_TEST_PYTHON`, else `<workspace>/.venv/bin/python`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PRUNUS_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        venv.exists(),
        "rliable is needed to check prunus-stats against it, but there is no Python: set \
         PRUNUS_TEST_PYTHON or run `bash tests/setup/00-python.sh` (creates {})",
        venv.display()
    );
    venv
}

/// Sends `requests` (a JSON list) to rliable and returns its list of results.
pub fn rliable(requests: &Value) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rliable_reference.py");
    let python = python();
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(requests.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "rliable reference failed (is rliable installed? run `bash tests/setup/00-python.sh`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("rliable reference printed no JSON")
}

/// `(runs x tasks)` rows in rliable's layout.
pub fn matrix(rows: &[Vec<f64>]) -> Value {
    Value::from(
        rows.iter()
            .map(|r| Value::from(r.clone()))
            .collect::<Vec<_>>(),
    )
}
