//! Pins the cache key of every instance of every shipped pipeline. A change here means every
//! user's cached results of those stages would be recomputed: make it only on purpose (a kind
//! version bump, a new parameter, a changed default), then review and accept the new keys with
//! `cargo insta review` (or `INSTA_UPDATE=always cargo test -p prunus-engine --test golden_keys`).
//!
//! Downstream keys depend on upstream outputs, which only exist after a run; here each
//! upstream instance is identified by its own key instead, which still pins the canonical
//! encoding of everything else.

use std::path::{Path, PathBuf};

use prunus_engine::key::Identity;
use prunus_engine::plan::{FileHashes, key_info};

fn pipelines(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            pipelines(&path, out);
        } else if path.extension().is_some_and(|e| e == "kdl") {
            out.push(path);
        }
    }
}

#[test]
fn shipped_pipelines_keep_their_keys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines");
    let mut files = Vec::new();
    pipelines(&root, &mut files);
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let graph =
            prunus_engine::load(&file).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        let mut hashes = FileHashes::default();
        let mut keys: Vec<String> = Vec::with_capacity(graph.instances.len());
        let mut text = String::new();
        for i in 0..graph.instances.len() {
            let info = key_info(&graph, i, &mut hashes, |j| {
                keys.get(j).cloned().map(Identity::Key)
            })
            .unwrap()
            .expect("instances come in dependency order");
            let key = info.key().to_string();
            text.push_str(&format!("{key}  {}\n", graph.instances[i].name));
            keys.push(key);
        }
        let name = file
            .strip_prefix(&root)
            .unwrap()
            .display()
            .to_string()
            .replace(['/', '.'], "_");
        insta::assert_snapshot!(name, text);
    }
}
