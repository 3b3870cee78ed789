//! Scratch checkpoints through the binary: `prunus store verify` finds a damaged one, and a
//! run that finds one starts afresh (saying so) instead of resuming from it, so it publishes
//! what an uninterrupted run does.

use std::path::PathBuf;

use prunus_tests::Project;

const TRAIN: &str = r#"
pipeline "t"
stage "train" {
    kind "train/dqn"
    env "cartpole"
    network.hidden 32
    steps 2_000
    iterations 2
    eval-episodes 1
    min-replay 200
    checkpoints 1.0
    probe-batch 32
}
"#;

/// The only file matching `.prunus/<top>/*/*<ext>`.
fn only(p: &Project, top: &str, ext: &str) -> PathBuf {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(p.path().join(".prunus").join(top)).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let f = f.unwrap().path();
            if f.to_string_lossy().ends_with(ext) {
                found.push(f);
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

#[test]
fn a_damaged_scratch_checkpoint_is_reported_and_never_resumed_from() {
    let p = Project::new();
    p.write("t.kdl", TRAIN);
    assert_eq!(p.prunus(&["run", "t.kdl"]).ok().counts(), (1, 0, 0));
    let uninterrupted = std::fs::read(p.path().join("results/t/train/final.ckpt")).unwrap();

    // As if killed just before publishing: no result, the last checkpoint in scratch. Then
    // one bit of that checkpoint flips on disk.
    std::fs::remove_file(only(&p, "actions", ".json")).unwrap();
    let ckpt = only(&p, "scratch", "resume.ckpt");
    let mut damaged = std::fs::read(&ckpt).unwrap();
    let at = damaged.len() / 3;
    damaged[at] ^= 0x01;
    std::fs::write(&ckpt, &damaged).unwrap();

    let verify = p.prunus(&["store", "verify"]);
    assert_eq!(verify.code, 1, "{}\n{}", verify.stdout, verify.stderr);
    let rel = ckpt.strip_prefix(p.path().join(".prunus")).unwrap();
    assert!(
        verify
            .stdout
            .contains(&format!("corrupt scratch checkpoint {}", rel.display()))
            && verify.stdout.contains("starts afresh"),
        "{}",
        verify.stdout
    );
    assert!(!ckpt.exists(), "verify quarantined it");
    assert_eq!(p.prunus(&["store", "verify"]).code, 0);

    // Had verify not run first, the rerun finds the damaged checkpoint itself.
    std::fs::write(&ckpt, &damaged).unwrap();
    assert_eq!(p.prunus(&["run", "t.kdl"]).ok().counts(), (1, 0, 0));
    let log = p.prunus(&["show", "train", "--log"]).ok().stdout;
    assert!(
        log.contains("cannot resume from the scratch checkpoint")
            && log.contains(&format!("{} is corrupt: its bytes hash to", rel.display()))
            && log.contains(&format!("moved it to .prunus/{}.corrupt-", rel.display()))
            && log.contains("starting afresh"),
        "{log}"
    );
    let rerun = std::fs::read(p.path().join("results/t/train/final.ckpt")).unwrap();
    assert!(
        rerun == uninterrupted,
        "the rerun published another network"
    );
}
