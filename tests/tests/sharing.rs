//! Sharing a cache, through the binary: store A runs a pipeline and pushes; store B, empty,
//! pulls (trusting A's key) and its run computes nothing and gives identical results. Once
//! through a shared directory, once through the S3 server the test command starts (skipped
//! with a note when `PRUNUS_TEST_S3_ENDPOINT` is unset).

use std::io::{Read, Write};

use prunus_tests::Project;

const PIPELINE: &str = r#"
pipeline "shared"
sweep "s" {
    seed from=0 to=3
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

fn project() -> Project {
    let p = Project::new();
    p.write("shared.kdl", PIPELINE);
    p
}

/// `prunus ARGS` with the test server's (any) credentials and no user config.
fn prunus(p: &Project, args: &[&str]) -> prunus_tests::Ran {
    let out = p
        .command(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("PRUNUS_CONFIG", p.path().join("no-config.kdl"))
        .output()
        .unwrap();
    prunus_tests::Ran::from(out)
}

/// A, after running and pushing to `remote` (extra args such as `--endpoint`), and B, empty.
fn share(remote: &str, extra: &[&str]) {
    let (a, b) = (project(), project());
    prunus(&a, &["run", "shared.kdl"]).ok();
    let push = prunus(&a, &[&["store", "push", remote][..], extra].concat()).ok();
    assert!(push.stdout.contains("5 results"), "{}", push.stdout);
    let again = prunus(&a, &[&["store", "push", remote][..], extra].concat()).ok();
    assert!(
        again.stdout.contains("0 results, 0 blobs"),
        "{}",
        again.stdout
    );
    let key = prunus(&a, &["store", "key"]).ok().stdout.trim().to_string();
    // Not trusting A: nothing comes, and each result says why.
    let refused = prunus(&b, &[&["store", "pull", remote][..], extra].concat());
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("does not trust"),
        "{}",
        refused.stderr
    );
    let pull = prunus(
        &b,
        &[&["store", "pull", remote, "--trust", &key][..], extra].concat(),
    )
    .ok();
    assert!(pull.stdout.contains("5 results"), "{}", pull.stdout);
    let run = prunus(&b, &["run", "shared.kdl"]).ok();
    assert_eq!(run.counts(), (0, 5, 0), "{}\n{}", run.stdout, run.stderr);
    for inst in ["gen/seed0", "gen/seed3", "all"] {
        let path = format!("results/shared/{inst}/out.txt");
        if std::path::Path::new(&a.path().join(&path)).exists() {
            assert_eq!(a.read(&path), b.read(&path), "{inst}");
        }
    }
}

#[test]
fn a_shared_directory_shares_results() {
    let remote = tempfile::tempdir().unwrap();
    share(
        &format!("file://{}", remote.path().join("r").display()),
        &[],
    );
}

#[test]
fn an_s3_bucket_shares_results() {
    let Ok(endpoint) = std::env::var("PRUNUS_TEST_S3_ENDPOINT") else {
        eprintln!("PRUNUS_TEST_S3_ENDPOINT is not set (bash tests/run starts a server): skipped");
        return;
    };
    let bucket = format!("sharing-{}", std::process::id());
    let host = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    share(&format!("s3://{bucket}/cache"), &["--endpoint", &endpoint]);
}

#[test]
fn an_unknown_remote_is_a_clear_error() {
    let p = project();
    let ran = prunus(&p, &["store", "push", "lab"]);
    assert_ne!(ran.code, 0);
    assert!(
        ran.stderr
            .contains("`lab` is neither a configured remote nor a remote URL"),
        "{}",
        ran.stderr
    );
    assert!(
        !p.path().join("lab").exists(),
        "a bare word became a directory"
    );
}
