//! `prunus` as a Unix tool: output into a closed pipe (`prunus plan big.kdl | head -1`) ends it
//! quietly instead of a panic.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use prunus_tests::Project;

const BIG: &str = r#"
pipeline "big"
sweep "s" {
    seed from=0 to=4999
}
stage "gen" {
    kind "test/echo"
    over "s"
    value "seed {seed}"
}
"#;

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let p = Project::new();
    p.write("big.kdl", BIG);
    for args in [
        &["plan", "--all", "big.kdl"][..],
        &["plan", "--json", "big.kdl"][..],
    ] {
        let mut child = p
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one line's worth, then close the pipe, as `head -1` does.
        let mut first = [0u8; 16];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            out.status.code().is_none_or(|c| c == 0) || out.status.signal().is_some(),
            "{args:?}: {:?} {stderr}",
            out.status
        );
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
    }
}
