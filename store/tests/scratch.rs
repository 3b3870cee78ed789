//! `verify` checks the scratch of every stage that is not running, with the check its caller
//! gives (the format belongs to the stages), and quarantines what fails it.

use std::path::Path;

use prunus_store::{Digest, ScratchCheck, Store};

/// A stand-in for the stages' format: files saying `good` are sound, `bad` corrupt.
fn check(path: &Path) -> ScratchCheck {
    match std::fs::read(path).unwrap().as_slice() {
        b"good" => ScratchCheck::Sound,
        b"bad" => ScratchCheck::Corrupt("it says bad".into()),
        _ => ScratchCheck::Unchecked,
    }
}

#[test]
fn verify_quarantines_corrupt_scratch_files_of_stages_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (idle, running) = (Digest::of(b"idle"), Digest::of(b"running"));
    let idle_dir = store.scratch(&idle).unwrap();
    std::fs::write(idle_dir.join("resume.ckpt"), "bad").unwrap();
    std::fs::create_dir(idle_dir.join("sub")).unwrap();
    std::fs::write(idle_dir.join("sub/older.ckpt"), "good").unwrap();
    std::fs::write(idle_dir.join("prunus-inputs.json"), "{}").unwrap();
    let running_dir = store.scratch(&running).unwrap();
    std::fs::write(running_dir.join("resume.ckpt"), "bad").unwrap();
    let lock = store.lock_stage(&running).unwrap();

    let report = store.verify_with(&check).unwrap();
    assert!(!report.is_clean(), "{report}");
    assert_eq!(
        (
            report.scratch_files,
            report.scratch_unchecked,
            report.scratch_busy
        ),
        (1, 1, 1),
        "{report}"
    );
    let [q] = report.corrupt_scratch.as_slice() else {
        panic!("{report}")
    };
    assert_eq!(q.name, format!("scratch/{idle}/resume.ckpt"));
    assert_eq!(std::fs::read(&q.moved_to).unwrap(), b"bad");
    assert!(q.moved_to.starts_with(dir.path().join("quarantine")));
    assert!(!idle_dir.join("resume.ckpt").exists());
    let text = report.to_string();
    assert!(
        text.contains(&format!(
            "corrupt scratch checkpoint scratch/{idle}/resume.ckpt"
        )) && text.contains("it says bad")
            && text.contains("starts afresh")
            && text.contains("1 running stages"),
        "{text}"
    );

    // The running stage's scratch is checked once it ends.
    assert!(store.verify_with(&check).unwrap().is_clean());
    drop(lock);
    let report = store.verify_with(&check).unwrap();
    assert_eq!(report.corrupt_scratch.len(), 1, "{report}");
    assert!(store.verify_with(&check).unwrap().is_clean());
    // Without a check, nothing in scratch is judged.
    std::fs::write(idle_dir.join("resume.ckpt"), "bad").unwrap();
    assert!(store.verify().unwrap().is_clean());
}
