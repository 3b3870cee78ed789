//! Output names cannot leave the store's folders: a stage cannot declare, publish or export a
//! name that is absolute, has `..`, or leads through a symlink, and a manifest that holds one
//! (edited by hand, or from a remote) is refused when read.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prunus_engine::{Error, Registry, RunOptions, Summary, load_str, run};
use prunus_store::Store;

fn messages(e: Error) -> Vec<String> {
    match e {
        Error::Pipeline(e) => e.messages(),
        other => vec![other.to_string()],
    }
}

fn command_stage(run: &str, outputs: &str) -> String {
    format!(
        "stage \"e\" {{\n    kind \"command\"\n    run \"sh\" \"-c\" {run:?}\n    outputs {outputs:?}\n}}\n"
    )
}

fn run_text(dir: &Path, text: &str) -> (Store, Result<Summary, Error>) {
    let store = Store::open(dir.join("store")).unwrap();
    let registry = Registry::builtin(dir);
    let graph = load_str("esc", text, &registry).unwrap();
    let opts = RunOptions {
        quiet: true,
        export: false,
        ..RunOptions::default()
    };
    let summary = run::run(&graph, &store, &opts, Arc::new(AtomicBool::new(false)));
    (store, summary)
}

#[test]
fn declared_outputs_must_be_plain_relative_names() {
    let registry = Registry::builtin(Path::new("."));
    for bad in ["/tmp/x", "../../etc/x", "a/../../b", "a//b", "."] {
        let text = command_stage("true", bad);
        let err = load_str("esc", &text, &registry).err().expect(bad);
        let m = messages(err).join("\n");
        assert!(m.contains("stage `e`: output name"), "{bad}: {m}");
    }
    assert!(load_str("ok", &command_stage("true", "sub/ok.txt"), &registry).is_ok());
}

#[test]
fn a_symlink_out_of_the_output_folder_is_not_published() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "not yours").unwrap();
    let script = format!("ln -s {} \"$PRUNUS_OUT/x\"", secret.display());
    let (store, summary) = run_text(dir.path(), &command_stage(&script, "x"));
    let summary = summary.unwrap();
    assert_eq!(summary.failed.len(), 1, "{summary:?}");
    assert!(
        summary.failed[0]
            .error
            .contains("outside the stage's output folder"),
        "{summary:?}"
    );
    assert!(
        store.actions().unwrap().is_empty(),
        "something was published"
    );
}

#[test]
fn a_manifest_with_an_escaping_name_is_refused_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let (store, summary) = run_text(
        dir.path(),
        &command_stage("echo hi > \"$PRUNUS_OUT/x\"", "x"),
    );
    assert!(summary.unwrap().failed.is_empty());
    let (key, _) = store.actions().unwrap().pop().unwrap();
    let hex = key.to_string();
    let path = store
        .root()
        .join("actions")
        .join(&hex[..2])
        .join(format!("{hex}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"x\""), "{text}");
    std::fs::write(&path, text.replace("\"x\"", "\"../../escaped\"")).unwrap();
    let err = store.lookup(&key).unwrap_err().to_string();
    assert!(err.contains("output name \"../../escaped\""), "{err}");
    // Publishing such a name is refused too.
    let mut result = prunus_store::ActionResult {
        outputs: Default::default(),
        meta: prunus_store::RunMeta {
            started_unix_ms: 0,
            ended_unix_ms: 0,
            duration_s: 0.0,
            host: "h".into(),
            prunus_version: "0".into(),
            exit_status: "0".into(),
            log: None,
        },
        key_info: serde_json::Value::Null,
    };
    let blob = store.put_bytes(b"hi").unwrap();
    result.outputs.insert("/etc/x".into(), blob);
    let err = store.publish(&key, &result).unwrap_err().to_string();
    assert!(err.contains("is an absolute path"), "{err}");
}

#[test]
fn export_does_not_write_through_a_planted_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let blob = store.put_bytes(b"pwned").unwrap();
    let target = dir.path().join("target");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("sub")).unwrap();
    let err = store
        .export_output(&blob.digest, &target, "sub/passwd")
        .unwrap_err()
        .to_string();
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!outside.join("passwd").exists());
    for bad in ["/tmp/prunus-escape-test", "../escaped"] {
        assert!(
            store.export_output(&blob.digest, &target, bad).is_err(),
            "{bad}"
        );
    }
    assert!(!dir.path().join("escaped").exists());
    let path = store
        .export_output(&blob.digest, &target, "a/b.txt")
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"pwned");
}

#[test]
fn sweep_values_cannot_make_an_instance_folder_leave_results() {
    let registry = Registry::builtin(Path::new("."));
    let text = "sweep \"s\" {\n    g \"..\" \"a/..\"\n}\nstage \"e\" {\n    kind \"test/echo\"\n    over \"s\"\n    value \"{g}\"\n}\n";
    let graph = load_str("esc", text, &registry).unwrap();
    for inst in &graph.instances {
        assert!(
            inst.name.split('/').all(|s| s != ".." && s != "."),
            "{}",
            inst.name
        );
    }
    let named = "pipeline \"../up\"\nstage \"e\" {\n    kind \"test/echo\"\n    value \"x\"\n}\n";
    let m = messages(load_str("esc", named, &registry).err().unwrap()).join("\n");
    assert!(m.contains("invalid pipeline name"), "{m}");
}
