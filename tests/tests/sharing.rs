//! Sharing a cache, through the binary, once through a shared directory and once through the
//! S3 server the test command starts (the S3 halves are skipped with a note when
//! `PRUNUS_TEST_S3_ENDPOINT` is unset): push and pull; `run --remote` (store A runs and
//! pushes, store B, empty, plans everything as on the remote and runs nothing); what a run
//! does with untrusted, forged and corrupted objects; read-only mode; dead remotes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use prunus_tests::{Project, Ran, s3};

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

/// The pipeline plus one more stage, which only the store that runs it has.
const EXTENDED: &str = r#"
stage "extra" {
    kind "test/echo"
    value "new"
}
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("shared.kdl", PIPELINE);
    p
}

/// `prunus ARGS` with the test server's (any) credentials and no user config.
fn prunus(p: &Project, args: &[&str]) -> Ran {
    let out = p
        .command(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("PRUNUS_CONFIG", p.path().join("no-config.kdl"))
        .output()
        .unwrap();
    Ran::from(out)
}

/// A remote as the tests see it: its URL and flags for prunus, and its objects as they lie
/// there (names relative to the remote's root, e.g. `blobs/ab/<digest>.zst`).
enum Remote {
    Dir(tempfile::TempDir),
    S3 { endpoint: String, bucket: String },
}

impl Remote {
    fn dir() -> Remote {
        Remote::Dir(tempfile::tempdir().unwrap())
    }

    /// A new bucket on the shared server, or `None` without one.
    fn s3() -> Option<Remote> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let endpoint = s3::shared_endpoint()?;
        let n = N.fetch_add(1, Ordering::Relaxed);
        let bucket = format!("sharing-{}-{n}", std::process::id());
        s3::create_bucket(&endpoint, &bucket);
        Some(Remote::S3 { endpoint, bucket })
    }

    fn url(&self) -> String {
        match self {
            Remote::Dir(d) => format!("file://{}", d.path().join("r").display()),
            Remote::S3 { bucket, .. } => format!("s3://{bucket}/cache"),
        }
    }

    /// `ARGS --remote URL [--endpoint E] EXTRA...` for `run` and `plan`.
    fn run_args<'a>(&self, args: &[&'a str]) -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["--remote".into(), self.url()]);
        if let Remote::S3 { endpoint, .. } = self {
            v.extend(["--endpoint".into(), endpoint.clone()]);
        }
        v
    }

    /// `store push|pull URL [--endpoint E] EXTRA...`.
    fn sync_args(&self, verb: &str, extra: &[&str]) -> Vec<String> {
        let mut v = vec!["store".to_string(), verb.into(), self.url()];
        if let Remote::S3 { endpoint, .. } = self {
            v.extend(["--endpoint".into(), endpoint.clone()]);
        }
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn objects(&self) -> Vec<(String, u64)> {
        match self {
            Remote::Dir(d) => {
                let root = d.path().join("r");
                let mut out = Vec::new();
                for top in ["blobs", "actions"] {
                    walk(&root.join(top), &mut |p| {
                        let name = p.strip_prefix(&root).unwrap().display().to_string();
                        out.push((name, std::fs::metadata(p).unwrap().len()));
                    });
                }
                out.sort();
                out
            }
            Remote::S3 { endpoint, bucket } => s3::objects(endpoint, bucket)
                .into_iter()
                .map(|(k, n)| (k.strip_prefix("cache/").unwrap().to_string(), n))
                .collect(),
        }
    }

    fn read(&self, name: &str) -> Vec<u8> {
        match self {
            Remote::Dir(d) => std::fs::read(d.path().join("r").join(name)).unwrap(),
            Remote::S3 { endpoint, bucket } => s3::get(endpoint, bucket, &format!("cache/{name}")),
        }
    }

    /// Replaces an object behind prunus's back.
    fn replace(&self, name: &str, bytes: &[u8]) {
        match self {
            Remote::Dir(d) => {
                let path = d.path().join("r").join(name);
                std::fs::remove_file(&path).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
            Remote::S3 { endpoint, bucket } => {
                s3::put(endpoint, bucket, &format!("cache/{name}"), bytes)
            }
        }
    }

    /// The name of the action entry of `key`.
    fn entry_of(&self, key: &str) -> String {
        let objects = self.objects();
        let hits: Vec<&String> = objects
            .iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with("actions/") && n.contains(key))
            .collect();
        assert_eq!(hits.len(), 1, "entry of {key} in {objects:?}");
        hits[0].clone()
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path: PathBuf = e.unwrap().path();
        if path.is_dir() {
            walk(&path, f);
        } else {
            f(&path);
        }
    }
}

fn run(p: &Project, args: Vec<String>) -> Ran {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    prunus(p, &args)
}

/// Store A after `run --remote` (which pushes what it ran), and A's public key.
fn a_pushed(remote: &Remote) -> (Project, String) {
    let a = project();
    let ran = run(&a, remote.run_args(&["run", "shared.kdl"])).ok();
    assert_eq!(ran.counts(), (5, 0, 0), "{}", ran.stderr);
    assert!(ran.stderr.contains("5 pushed"), "{}", ran.stderr);
    let key = prunus(&a, &["store", "key"]).ok().stdout.trim().to_string();
    (a, key)
}

/// Each instance's key, from `plan --json`.
fn keys(p: &Project) -> Vec<(String, String)> {
    let plan = prunus(p, &["plan", "shared.kdl", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&plan.stdout).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["instance"].as_str().unwrap().to_string(),
                r["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn same_results(a: &Project, b: &Project) {
    for inst in ["gen/seed0", "gen/seed3", "all"] {
        let path = format!("results/shared/{inst}/out.txt");
        if a.path().join(&path).exists() {
            assert_eq!(a.read(&path), b.read(&path), "{inst}");
        }
    }
}

/// Nothing of a rejected object stayed in `p`'s store: it verifies clean, no temp file is
/// left.
fn store_is_clean(p: &Project) {
    prunus(p, &["store", "verify"]).ok();
    let tmp = p.path().join(".prunus/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in tmp/: {left:?}");
}

/// A runs and pushes; B, empty and trusting A, plans everything as on the remote, runs
/// nothing, writes nothing to the remote and gets A's results.
fn run_shares(remote: &Remote) {
    let (a, key) = a_pushed(remote);
    let before = remote.objects();
    let b = project();
    let plan = run(
        &b,
        remote.run_args(&["plan", "shared.kdl", "--trust", &key]),
    )
    .ok();
    assert!(
        plan.stdout.contains("5 of 5 instances are on the remote"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("0 of 5 instances to run"),
        "{}",
        plan.stdout
    );
    let ran = run(&b, remote.run_args(&["run", "shared.kdl", "--trust", &key])).ok();
    assert_eq!(ran.counts(), (0, 5, 0), "{}", ran.stderr);
    assert!(ran.stderr.contains("5 fetched, 0 pushed"), "{}", ran.stderr);
    same_results(&a, &b);
    assert_eq!(remote.objects(), before, "B wrote to the remote");
    // Now local: a second run needs the remote for nothing.
    let again = prunus(&b, &["run", "shared.kdl"]).ok();
    assert_eq!(again.counts(), (0, 5, 0));
}

/// Store push and pull: only what is missing moves; a pull believes only trusted signers.
fn push_pull(remote: &Remote) {
    let (a, b) = (project(), project());
    prunus(&a, &["run", "shared.kdl"]).ok();
    let push = run(&a, remote.sync_args("push", &[])).ok();
    assert!(push.stdout.contains("5 results"), "{}", push.stdout);
    let again = run(&a, remote.sync_args("push", &[])).ok();
    assert!(
        again.stdout.contains("0 results, 0 blobs"),
        "{}",
        again.stdout
    );
    let key = prunus(&a, &["store", "key"]).ok().stdout.trim().to_string();
    let refused = run(&b, remote.sync_args("pull", &[]));
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("does not trust"),
        "{}",
        refused.stderr
    );
    // One instance of the pipeline: its result comes, and its ref (`show` finds it by name).
    let one = run(
        &b,
        remote.sync_args("pull", &["shared.kdl", "gen/seed1", "--trust", &key]),
    )
    .ok();
    assert!(one.stdout.contains("1 results"), "{}", one.stdout);
    prunus(&b, &["show", "gen/seed1"]).ok();
    let pull = run(&b, remote.sync_args("pull", &["--trust", &key])).ok();
    assert!(pull.stdout.contains("4 results"), "{}", pull.stdout);
    let ran = prunus(&b, &["run", "shared.kdl"]).ok();
    assert_eq!(ran.counts(), (0, 5, 0), "{}\n{}", ran.stdout, ran.stderr);
    same_results(&a, &b);
}

/// Entries signed by a key B does not trust, or whose signature was tampered with, are
/// refused with the key and signer named, and those stages run in B. A read-only run never
/// writes to the remote.
fn trust(remote: &Remote) {
    let (a, key) = a_pushed(remote);
    let signer = key.split(':').next().unwrap();
    let b = project();
    let plan = run(&b, remote.run_args(&["plan", "shared.kdl", "--all"])).ok();
    assert!(plan.stdout.contains("does not trust"), "{}", plan.stdout);
    assert!(plan.stdout.contains(signer), "{}", plan.stdout);
    let before = remote.objects();
    b.write("shared.kdl", &format!("{PIPELINE}{EXTENDED}"));
    let ran = run(
        &b,
        remote.run_args(&["run", "shared.kdl", "--remote-read-only"]),
    )
    .ok();
    assert_eq!(ran.counts(), (6, 0, 0), "{}", ran.stderr);
    assert!(ran.stderr.contains("(read-only)"), "{}", ran.stderr);
    assert_eq!(
        remote.objects(),
        before,
        "a read-only run wrote to the remote"
    );

    // A broken signature on gen/seed1's entry: only that stage runs; the rest is fetched.
    let seed1 = keys(&a)
        .into_iter()
        .find(|(i, _)| i == "gen/seed1")
        .unwrap()
        .1;
    let name = remote.entry_of(&seed1);
    let mut entry: serde_json::Value = serde_json::from_slice(&remote.read(&name)).unwrap();
    let sig = entry["signatures"][0]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    entry["signatures"][0]["signature"] = format!("{flipped}{}", &sig[1..]).into();
    remote.replace(&name, &serde_json::to_vec(&entry).unwrap());
    let c = project();
    let ran = run(&c, remote.run_args(&["run", "shared.kdl", "--trust", &key])).ok();
    assert_eq!(ran.counts(), (1, 4, 0), "{}", ran.stderr);
    assert!(
        ran.stderr.contains(&seed1[..12]) || ran.stderr.contains("gen/seed1"),
        "{}",
        ran.stderr
    );
    let plan = run(
        &c,
        remote.run_args(&["plan", "shared.kdl", "--trust", &key]),
    )
    .ok();
    assert!(
        plan.stdout.contains("0 of 5 instances to run"),
        "{}",
        plan.stdout
    );
}

/// A blob changed on the remote is rejected, named with the remote, and nothing of it enters
/// the store; its stage runs in B instead.
fn corrupt_blob(remote: &Remote) {
    let (_a, key) = a_pushed(remote);
    let (name, _) = remote
        .objects()
        .into_iter()
        .filter(|(n, _)| n.starts_with("blobs/"))
        .max_by_key(|(_, size)| *size)
        .unwrap();
    let mut bytes = remote.read(&name);
    let mid = bytes.len() - 6;
    bytes[mid] ^= 0x55;
    remote.replace(&name, &bytes);
    let digest = Path::new(&name)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let b = project();
    let ran = run(&b, remote.run_args(&["run", "shared.kdl", "--trust", &key])).ok();
    let (ran_here, cached, _) = ran.counts();
    assert!(ran_here >= 1 && ran_here + cached == 5, "{}", ran.stderr);
    assert!(ran.stderr.contains(&digest), "{}", ran.stderr);
    assert!(ran.stderr.contains(&remote.url()), "{}", ran.stderr);
    assert!(ran.stderr.contains("invalid"), "{}", ran.stderr);
    store_is_clean(&b);
}

/// One test per remote for a check: through a directory, and through S3 when a server runs.
macro_rules! on_both {
    ($($check:ident: $dir:ident, $s3:ident;)*) => {$(
        #[test]
        fn $dir() {
            $check(&Remote::dir());
        }

        #[test]
        fn $s3() {
            if let Some(r) = Remote::s3() {
                $check(&r);
            }
        }
    )*};
}

on_both! {
    run_shares: run_with_a_directory_remote_shares_results, run_with_an_s3_remote_shares_results;
    push_pull: push_and_pull_through_a_directory, push_and_pull_through_s3;
    trust: a_directory_remote_refuses_untrusted_and_forged_entries, an_s3_remote_refuses_untrusted_and_forged_entries;
    corrupt_blob: a_corrupt_blob_in_a_directory_remote_is_rejected, a_corrupt_blob_in_s3_is_rejected;
}

#[test]
fn two_stores_push_to_one_directory_at_once() {
    let remote = Remote::dir();
    let (a, b) = (project(), project());
    b.write("shared.kdl", &format!("{PIPELINE}{EXTENDED}"));
    prunus(&a, &["run", "shared.kdl"]).ok();
    prunus(&b, &["run", "shared.kdl"]).ok();
    let args = remote.sync_args("push", &["-j", "4"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let pushers: Vec<_> = [&a, &b]
        .map(|p| {
            p.command(&args)
                .env("PRUNUS_CONFIG", p.path().join("no-config.kdl"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .into_iter()
        .collect();
    for child in pushers {
        prunus_tests::finish(child).ok();
    }
    // Both stores' results are there once, whole: a third store trusting both gets all six.
    let ka = prunus(&a, &["store", "key"]).ok().stdout.trim().to_string();
    let kb = prunus(&b, &["store", "key"]).ok().stdout.trim().to_string();
    let c = project();
    c.write("shared.kdl", &format!("{PIPELINE}{EXTENDED}"));
    let ran = run(
        &c,
        remote.run_args(&["run", "shared.kdl", "--trust", &ka, "--trust", &kb]),
    )
    .ok();
    assert_eq!(ran.counts(), (0, 6, 0), "{}", ran.stderr);
    store_is_clean(&c);
}

#[test]
fn dead_remotes_are_clear_errors_naming_the_remote() {
    let p = project();
    let unknown = prunus(&p, &["store", "push", "lab"]);
    assert_ne!(unknown.code, 0);
    assert!(
        unknown
            .stderr
            .contains("`lab` is neither a configured remote nor a remote URL"),
        "{}",
        unknown.stderr
    );
    assert!(
        !p.path().join("lab").exists(),
        "a bare word became a directory"
    );

    // An unmounted shared disk: nothing is created, nothing runs.
    let gone = p.path().join("mnt/shared/cache");
    let url = format!("file://{}", gone.display());
    let ran = prunus(&p, &["run", "shared.kdl", "--remote", &url]);
    assert_ne!(ran.code, 0);
    assert!(
        ran.stderr.contains(&url) && ran.stderr.contains("mounted"),
        "{}",
        ran.stderr
    );
    assert!(!p.path().join("mnt").exists());

    // Nothing listens on the endpoint.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let t0 = std::time::Instant::now();
    let ran = prunus(
        &p,
        &[
            "run",
            "shared.kdl",
            "--remote",
            "s3://b/c",
            "--endpoint",
            &endpoint,
        ],
    );
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains("s3://b/c"), "{}", ran.stderr);
    assert!(ran.stderr.contains("reachable"), "{}", ran.stderr);
    eprintln!("unreachable endpoint reported after {:?}", t0.elapsed());
    assert!(
        !ran.stderr.contains(" ran, "),
        "it ran anyway: {}",
        ran.stderr
    );
}

#[test]
fn wrong_s3_credentials_are_a_clear_error() {
    let Some(moto) = s3::Moto::start(true) else {
        return;
    };
    let p = project();
    let ran = prunus(
        &p,
        &[
            "run",
            "shared.kdl",
            "--remote",
            "s3://lab/cache",
            "--endpoint",
            &moto.endpoint,
        ],
    );
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains("s3://lab/cache"), "{}", ran.stderr);
    assert!(ran.stderr.contains("credentials"), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("testing"),
        "a credential was printed: {}",
        ran.stderr
    );
}

/// A stage with one large, incompressible output, so a transfer takes long enough to cut.
const BIG: &str = r#"
pipeline "big"
stage "noise" {
    kind "command"
    run "sh" "-c" "head -c 200000000 /dev/urandom > \"$PRUNUS_OUT/noise.bin\""
    outputs "noise.bin"
}
"#;

/// Waits until `ready` holds (checked every 20 ms, at most 60 s).
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let t0 = std::time::Instant::now();
    while !ready() {
        assert!(t0.elapsed().as_secs() < 60, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn an_s3_server_killed_mid_transfer_leaves_nothing_partial() {
    let Some(mut moto) = s3::Moto::start(false) else {
        return;
    };
    let (a, b) = (Project::new(), Project::new());
    a.write("big.kdl", BIG);
    b.write("big.kdl", BIG);
    prunus(&a, &["run", "big.kdl"]).ok();
    let key = prunus(&a, &["store", "key"]).ok().stdout.trim().to_string();
    let url = "s3://big/cache";
    let endpoint = moto.endpoint.clone();
    let spawn = |p: &Project, args: &[&str]| {
        p.command(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("PRUNUS_CONFIG", p.path().join("no-config.kdl"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let push = ["store", "push", url, "--endpoint", &endpoint];
    let pull = [
        "store",
        "pull",
        url,
        "--endpoint",
        &endpoint,
        "--trust",
        &key,
    ];

    // Push, and kill the server once the upload is under way.
    s3::create_bucket(&endpoint, "big");
    let base = moto.rss_kib();
    let child = spawn(&a, &push);
    wait_for("the upload to start", || moto.rss_kib() > base + 40_000);
    moto.kill();
    let cut = prunus_tests::finish(child);
    assert_ne!(cut.code, 0, "{}", cut.stdout);
    assert!(
        cut.stderr.contains(url),
        "exit {}: {}",
        cut.code,
        cut.stderr
    );
    moto.restart();
    s3::create_bucket(&endpoint, "big");
    run(&a, push.map(String::from).to_vec()).ok();

    // Pull, and kill the server once the download is under way.
    let tmp = b.path().join(".prunus/tmp");
    let receiving = || {
        std::fs::read_dir(&tmp).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.metadata().is_ok_and(|m| m.len() > 1 << 20))
        })
    };
    prunus(&b, &["plan", "big.kdl"]).ok(); // makes the store
    let child = spawn(&b, &pull);
    wait_for("the download to start", receiving);
    moto.kill();
    let cut = prunus_tests::finish(child);
    assert_ne!(cut.code, 0, "{}", cut.stdout);
    assert!(
        cut.stderr.contains(url),
        "exit {}: {}",
        cut.code,
        cut.stderr
    );
    store_is_clean(&b);
    let plan = prunus(&b, &["plan", "big.kdl"]).ok();
    assert!(
        plan.stdout.contains("1 of 1 instances to run"),
        "{}",
        plan.stdout
    );

    // After a restart (moto forgets everything): push again, and the pull completes.
    moto.restart();
    s3::create_bucket(&endpoint, "big");
    run(&a, push.map(String::from).to_vec()).ok();
    run(&b, pull.map(String::from).to_vec()).ok();
    let ran = prunus(&b, &["run", "big.kdl"]).ok();
    assert_eq!(ran.counts(), (0, 1, 0), "{}", ran.stderr);
    store_is_clean(&b);
}

#[test]
fn a_push_killed_mid_transfer_to_a_directory_leaves_nothing_partial() {
    let remote = Remote::dir();
    let a = Project::new();
    a.write("big.kdl", BIG);
    prunus(&a, &["run", "big.kdl"]).ok();
    let args = remote.sync_args("push", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = a
        .command(&args)
        .env("PRUNUS_CONFIG", a.path().join("no-config.kdl"))
        .spawn()
        .unwrap();
    let Remote::Dir(root) = &remote else {
        unreachable!()
    };
    let tmp = root.path().join("r/tmp");
    wait_for("the upload to start", || {
        std::fs::read_dir(&tmp).is_ok_and(|d| d.flatten().next().is_some())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // Whatever was cut off is not under a final name: no entry names a missing blob.
    assert!(
        remote
            .objects()
            .iter()
            .all(|(n, _)| !n.starts_with("actions/"))
    );
    run(&a, remote.sync_args("push", &[])).ok();
    let key = prunus(&a, &["store", "key"]).ok().stdout.trim().to_string();
    let b = Project::new();
    b.write("big.kdl", BIG);
    let ran = run(&b, remote.run_args(&["run", "big.kdl", "--trust", &key])).ok();
    assert_eq!(ran.counts(), (0, 1, 0), "{}", ran.stderr);
}
