//! Pins the cache key of every instance of every shipped pipeline. A change here means every
//! user's cached results of those stages would be recomputed: make it only on purpose (a kind
//! version bump, a new parameter, a changed default), then review and accept the new keys with
//! `cargo insta review` (or `INSTA_UPDATE=always cargo test -p prunus --test golden_keys`).
//!
//! Downstream keys depend on upstream outputs, which only exist after a run; here each
//! upstream instance is identified by its own key instead, which still pins the canonical
//! encoding of everything else.
//!
//! Pipelines of more than [`LISTED`] instances (the paper's: thousands of runs) are pinned by
//! one blake3 digest of their key list per stage, with the first instance's key written out.

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

const LISTED: usize = 400;

/// Per stage: instance count, the first instance and its key, and the digest of all its lines.
fn digest_per_stage(lines: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut stages: Vec<&str> = Vec::new();
    for (_, name) in lines {
        let stage = name.split('/').next().unwrap_or(name);
        if !stages.contains(&stage) {
            stages.push(stage);
        }
    }
    for stage in stages {
        let mine: Vec<&(String, String)> = lines
            .iter()
            .filter(|(_, n)| n.split('/').next() == Some(stage))
            .collect();
        let mut hasher = blake3::Hasher::new();
        for (key, name) in &mine {
            hasher.update(format!("{key}  {name}\n").as_bytes());
        }
        out.push_str(&format!(
            "{stage}: {} instances, keys digest {}\n    first: {}  {}\n",
            mine.len(),
            hasher.finalize().to_hex(),
            mine[0].0,
            mine[0].1
        ));
    }
    out
}

#[test]
fn shipped_pipelines_keep_their_keys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    let mut files = Vec::new();
    pipelines(&root, &mut files);
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let graph =
            prunus::registry::load(&file).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        let mut hashes = FileHashes::default();
        let mut keys: Vec<String> = Vec::with_capacity(graph.instances.len());
        let mut lines = Vec::with_capacity(graph.instances.len());
        for i in 0..graph.instances.len() {
            let info = key_info(&graph, i, &mut hashes, |j| {
                keys.get(j).cloned().map(Identity::Key)
            })
            .unwrap()
            .expect("instances come in dependency order");
            let key = info.key().to_string();
            lines.push((key.clone(), graph.instances[i].name.clone()));
            keys.push(key);
        }
        let text = if lines.len() > LISTED {
            digest_per_stage(&lines)
        } else {
            lines.iter().map(|(k, n)| format!("{k}  {n}\n")).collect()
        };
        let name = file
            .strip_prefix(&root)
            .unwrap()
            .display()
            .to_string()
            .replace(['/', '.'], "_");
        insta::assert_snapshot!(name, text);
    }
}

/// The key of the first instance of a one-stage pipeline training with `params`.
fn train_key(params: &str) -> (String, prunus_engine::key::KeyInfo) {
    let text = format!(
        "pipeline \"p\"\nstage \"train\" {{\n    kind \"train/dqn\"\n    env \"minatar/breakout\"\n{params}\n}}\n"
    );
    let registry = prunus::registry::standard(Path::new("."));
    let graph = prunus_engine::load_str("p.kdl", &text, &registry).unwrap();
    let info = key_info(&graph, 0, &mut FileHashes::default(), |_| None)
        .unwrap()
        .unwrap();
    (info.key().to_string(), info)
}

#[test]
fn parameters_at_their_default_stay_out_of_the_key() {
    let (implicit, info) = train_key("");
    let keyed: Vec<&str> = info.params.keys().map(|k| k.as_str()).collect();
    assert_eq!(keyed, ["env"], "only the required parameter");
    // Written out, a default keys exactly as left out (so new parameters keep old keys).
    let (explicit, _) =
        train_key("    redo.period 0\n    redo.tau 0.025\n    gamma 0.99\n    network \"auto\"");
    assert_eq!(explicit, implicit);
    // Anything else is in the key, and `explain` names it.
    let (changed, new) = train_key("    redo.period 1000");
    assert_ne!(changed, implicit);
    assert_eq!(
        prunus_engine::plan::diff(&info, &new),
        vec!["params changed (redo.period: default -> 1000)".to_string()]
    );
    assert_eq!(
        prunus_engine::plan::diff(&new, &info),
        vec!["params changed (redo.period: 1000 -> default)".to_string()]
    );
}

/// GPU training is not bit-reproducible, so instances of `train/*` with `device "cuda"` are
/// nondeterministic: their consumers key on the training key, not on its output digests (a
/// rerun of a GPU run does not cascade). The same kinds on the CPU are deterministic.
#[test]
fn training_is_deterministic_on_the_cpu_and_not_on_cuda() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    let determinism = |file: &str| -> Vec<(bool, bool)> {
        let graph = prunus::registry::load(&root.join(file)).unwrap();
        (0..graph.instances.len())
            .filter(|&i| graph.stage_of(i).kind.name().starts_with("train/"))
            .map(|i| {
                let params = &graph.instances[i].params;
                let cuda = params.str("device").unwrap() == "cuda";
                (cuda, graph.stage_of(i).kind.deterministic(params))
            })
            .collect()
    };
    let paper = determinism("paper.kdl");
    assert!(paper.len() > 1000 && paper.iter().all(|&(cuda, det)| cuda && !det));
    let quickstart = determinism("quickstart.kdl");
    assert!(!quickstart.is_empty() && quickstart.iter().all(|&(cuda, det)| !cuda && det));
}
