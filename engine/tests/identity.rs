//! Two pipeline files with one name (`x/main.kdl`, `y/main.kdl`) would share refs and the
//! results folder, and `gc` would then delete the first one's results: the second is refused
//! with an error naming both files, and a moved file takes its name over.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prunus_engine::{Error, Registry, RunOptions, load, run};
use prunus_store::Store;

const PIPELINE: &str = "stage \"e\" {\n    kind \"test/echo\"\n    value \"VALUE\"\n}\n";

fn write(dir: &Path, rel: &str, value: &str) -> std::path::PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, PIPELINE.replace("VALUE", value)).unwrap();
    path
}

fn run_file(file: &Path, store: &Store, results: &Path) -> Result<(), Error> {
    let mut graph = load(file, Registry::builtin)?;
    graph.results = results.join(&graph.name);
    let opts = RunOptions {
        quiet: true,
        export: true,
        ..RunOptions::default()
    };
    run::run(&graph, store, &opts, Arc::new(AtomicBool::new(false))).map(|_| ())
}

#[test]
fn two_files_with_one_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let results = dir.path().join("results");
    let x = write(dir.path(), "x/main.kdl", "x");
    let y = write(dir.path(), "y/main.kdl", "y");
    run_file(&x, &store, &results).unwrap();
    let err = run_file(&y, &store, &results).unwrap_err().to_string();
    let (x, y) = (x.canonicalize().unwrap(), y.canonicalize().unwrap());
    assert!(err.contains(&x.display().to_string()), "{err}");
    assert!(err.contains(&y.display().to_string()), "{err}");
    assert!(err.contains("pipeline `main`"), "{err}");
    // The first file's ref is intact, and rerunning it still works.
    assert_eq!(store.refs().unwrap().len(), 1);
    run_file(&x, &store, &results).unwrap();
    // A results folder owned by x refuses y even with a store of y's own.
    let other_store = Store::open(dir.path().join("store2")).unwrap();
    let err = run_file(&y, &other_store, &results)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the results folder"), "{err}");
}

#[test]
fn a_moved_pipeline_takes_its_name_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let results = dir.path().join("results");
    let old = write(dir.path(), "old/p.kdl", "v");
    run_file(&old, &store, &results).unwrap();
    let new = dir.path().join("new/p.kdl");
    std::fs::create_dir_all(new.parent().unwrap()).unwrap();
    std::fs::rename(&old, &new).unwrap();
    run_file(&new, &store, &results).unwrap();
    assert_eq!(
        store.pipeline_file("p").unwrap().unwrap(),
        new.canonicalize().unwrap()
    );
}
