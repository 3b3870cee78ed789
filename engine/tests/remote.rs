//! A run with a remote (`prunus run --remote`), through a directory remote: what A runs it
//! pushes; B, empty, fetches everything and runs nothing; B's read-only run writes nothing;
//! an entry B does not trust, or whose blob was changed on the remote, runs in B instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prunus_engine::{Graph, RemoteCache, RunOptions, Summary, load_str, run};
use prunus_store::{DirRemote, Remote, Signed, Store};

const PIPELINE: &str = r#"
sweep "s" {
    seed from=0 to=2
}
stage "gen" {
    kind "test/echo"
    over "s"
    value "seed {seed}"
}
stage "all" {
    kind "test/echo"
    needs "gen"
    value "fan-in"
}
"#;

fn graph(dir: &Path) -> Graph {
    let registry = prunus_engine::Registry::builtin(dir);
    let mut g = load_str("shared", PIPELINE, &registry).unwrap();
    g.results = dir.join("results");
    g
}

/// A store and its signing trust (trusting `also`).
fn store(dir: &Path, name: &str, also: &[String]) -> (Store, Signed) {
    let store = Store::open(dir.join(name)).unwrap();
    let trust = Signed::new(store.signing_key(name).unwrap(), also).unwrap();
    (store, trust)
}

fn run_with(
    g: &Graph,
    store: &Store,
    remote: &Arc<DirRemote>,
    trust: Signed,
    read_only: bool,
) -> Summary {
    let cache = RemoteCache::connect(remote.clone(), Arc::new(trust), read_only).unwrap();
    let opts = RunOptions {
        quiet: true,
        export: false,
        remote: Some(Arc::new(cache)),
        ..RunOptions::default()
    };
    let summary = run::run(g, store, &opts, Arc::new(AtomicBool::new(false))).unwrap();
    assert!(summary.ok(), "{:?}", summary.failed);
    summary
}

/// Every file under the remote's blobs and actions, with its size.
fn objects(remote: &DirRemote) -> Vec<(PathBuf, u64)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push((p.clone(), e.metadata().unwrap().len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&remote.root().join("blobs"), &mut out);
    walk(&remote.root().join("actions"), &mut out);
    out.sort();
    out
}

#[test]
fn what_a_runs_b_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let g = graph(dir.path());
    let remote = Arc::new(DirRemote::open(dir.path().join("remote")).unwrap());
    let (a, a_trust) = store(dir.path(), "a", &[]);
    let a_key = a.signing_key("a").unwrap().public().to_string();
    let ran = run_with(&g, &a, &remote, a_trust, false);
    assert_eq!((ran.ran.len(), ran.pushed), (4, 4));
    assert_eq!(remote.list_actions().unwrap().len(), 4);

    let before = objects(&remote);
    let (b, b_trust) = store(dir.path(), "b", std::slice::from_ref(&a_key));
    let fetched = run_with(&g, &b, &remote, b_trust, false);
    assert_eq!(
        (fetched.ran.len(), fetched.cached, fetched.fetched),
        (0, 4, 4)
    );
    assert_eq!(objects(&remote), before, "B pushed what the remote had");
    assert_eq!(a.action_keys().unwrap(), b.action_keys().unwrap());
}

#[test]
fn untrusted_entries_run_here_and_read_only_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let g = graph(dir.path());
    let remote = Arc::new(DirRemote::open(dir.path().join("remote")).unwrap());
    let (a, a_trust) = store(dir.path(), "a", &[]);
    run_with(&g, &a, &remote, a_trust, false);
    let before = objects(&remote);
    let (b, b_trust) = store(dir.path(), "b", &[]);
    let s = run_with(&g, &b, &remote, b_trust, true);
    assert_eq!((s.ran.len(), s.fetched, s.pushed), (4, 0, 0));
    assert!(
        s.remote_problems
            .iter()
            .any(|p| p.contains("does not trust")),
        "{:?}",
        s.remote_problems
    );
    assert_eq!(objects(&remote), before, "a read-only run wrote");
}

#[test]
fn a_corrupt_remote_blob_is_rejected_and_its_stage_runs_here() {
    let dir = tempfile::tempdir().unwrap();
    let g = graph(dir.path());
    let remote = Arc::new(DirRemote::open(dir.path().join("remote")).unwrap());
    let (a, a_trust) = store(dir.path(), "a", &[]);
    let a_key = a.signing_key("a").unwrap().public().to_string();
    run_with(&g, &a, &remote, a_trust, false);
    // Change every blob file on the remote behind prunus's back.
    for (path, _) in objects(&remote) {
        if path.extension().is_some_and(|e| e == "zst") {
            let mut bytes = std::fs::read(&path).unwrap();
            let n = bytes.len();
            bytes[n - 3] ^= 0x55;
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let (b, b_trust) = store(dir.path(), "b", &[a_key]);
    let s = run_with(&g, &b, &remote, b_trust, true);
    assert_eq!((s.ran.len(), s.fetched), (4, 0), "{:?}", s.remote_problems);
    assert!(
        s.remote_problems.iter().all(|p| p.contains("invalid")),
        "{:?}",
        s.remote_problems
    );
    assert!(b.verify().unwrap().is_clean());
}
