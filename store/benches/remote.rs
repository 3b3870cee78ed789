//! Sharing a store through an S3-compatible server: `prunus store push` / `pull` (the store's
//! `push_all` / `pull_all`, 8 jobs as the CLI) beside `aws s3 sync` of the same blob files.
//!
//! Run it with `scripts/bench-remote`, which installs awscli into `.venv`, starts moto's S3
//! server on 127.0.0.1 and sets the variables: `PRUNUS_BENCH_S3_ENDPOINT` (the server;
//! without it this prints how to run it and exits), `PRUNUS_BENCH_AWS` (the aws binary,
//! default `aws`), `PRUNUS_BENCH_ROUNDS` (default 3), `PRUNUS_BENCH_DIR` (where the stores
//! go, default the temp dir: on disk, as a store is), credentials in the usual `AWS_*` ones.
//!
//! Large blobs: ~2 GiB of incompressible blobs of 1 to 500 MiB in five results. Each round
//! pushes to a fresh prefix, syncs `<store>/blobs` (exactly the files a push moves) up to
//! another, pulls into a fresh empty store and syncs down into a fresh empty folder; rounds
//! are interleaved so that this VM's drift hits both tools alike, and the table gives medians.
//! By design a push reads and verifies each blob before it sends it and a pull verifies the
//! digest as the blob streams in and fsyncs it; aws does neither. The source store is in the
//! page cache for both. Downloads have a second aws reference, with one GET per object (as a
//! pull does; `multipart_threshold = 5GB` in an `AWS_CONFIG_FILE` of its own): moto answers
//! every ranged GET by reading the whole object, so aws's default download in 8 MiB ranges
//! costs moto time quadratic in the object's size, which no real S3 does.
//!
//! No-op: 10,000 small blobs in 1,000 results, moved once each way; then a push and a pull
//! with nothing to move (the common case: a store pushed before), target < 1 s each, with aws
//! syncing the same files again as a reference.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use prunus_store::{
    ActionResult, BlobRef, Digest, RunMeta, S3Config, S3Remote, Signed, Store, SyncReport,
};

const MIB: u64 = 1 << 20;

/// The large store: results as a pipeline's stages publish them, each with checkpoint-sized
/// outputs (MiB, 1 MiB = under one upload part, 500 MiB = 32 parts; 2027 MiB in all) and a
/// small CSV.
const LARGE: &[(&str, &[u64])] = &[
    ("train[seed=1]", &[500, 64, 8]),
    ("train[seed=2]", &[400, 32, 4]),
    ("train[seed=3]", &[300, 16, 2]),
    ("distill", &[250, 150, 1]),
    ("eval", &[200, 100]),
];
/// Objects moved at once, as `prunus store push` / `pull` default to.
const JOBS: usize = 8;
/// The no-op store: this many results of this many small outputs each.
const NOOP_RESULTS: usize = 1_000;
const NOOP_OUTPUTS: usize = 10;
/// Timed no-op transfers of each kind.
const NOOP_ROUNDS: usize = 5;

fn main() {
    let Some(bench) = Bench::from_env() else {
        usage();
        return;
    };
    let rounds: usize = std::env::var("PRUNUS_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "prunus-store remote: {} via {}, {cores} cores, stores under {}",
        bench.endpoint,
        bench.aws,
        bench.dir.path().display()
    );
    large(&bench, rounds);
    noop(&bench);
}

/// Without a server there is nothing to measure: say how to get one, and succeed (so a plain
/// `cargo bench` still runs the other benches).
fn usage() {
    println!(
        "prunus-store remote: PRUNUS_BENCH_S3_ENDPOINT is not set, nothing measured.\n\
         Run `scripts/bench-remote` (it installs awscli into .venv, starts moto's S3 server on\n\
         127.0.0.1 and runs this bench), or set PRUNUS_BENCH_S3_ENDPOINT=http://HOST:PORT,\n\
         PRUNUS_BENCH_AWS=/path/to/aws and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY yourself."
    );
}

/// Where the server is, how to run the reference client, and where the stores go.
struct Bench {
    endpoint: String,
    aws: String,
    /// Makes bucket names unique per run: the server may outlive a run.
    tag: String,
    dir: tempfile::TempDir,
    /// An aws config that downloads each object with one GET (no ranged parts).
    whole_gets: PathBuf,
    /// The server's process, when it runs here (`PRUNUS_BENCH_SERVER_PID`): its CPU is counted.
    server_pid: Option<u32>,
}

impl Bench {
    fn from_env() -> Option<Bench> {
        let endpoint = std::env::var("PRUNUS_BENCH_S3_ENDPOINT").ok()?;
        let aws = std::env::var("PRUNUS_BENCH_AWS").unwrap_or_else(|_| "aws".into());
        let base = std::env::var_os("PRUNUS_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
        let dir = tempfile::Builder::new()
            .prefix("prunus-bench-remote-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("make a temp dir in {}: {e}", base.display()));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .subsec_nanos();
        let tag = format!("{}-{nanos:x}", std::process::id());
        let whole_gets = dir.path().join("aws-whole-gets.config");
        std::fs::write(
            &whole_gets,
            "[default]\ns3 =\n  multipart_threshold = 5GB\n",
        )
        .expect("write the aws config for whole-object GETs");
        let server_pid = std::env::var("PRUNUS_BENCH_SERVER_PID")
            .ok()
            .and_then(|p| p.parse().ok());
        Some(Bench {
            endpoint,
            aws,
            tag,
            dir,
            whole_gets,
            server_pid,
        })
    }

    /// Runs `f` and measures it: wall time, and the CPU the client (this process, where
    /// prunus's transfers run, and its children, where aws runs) and the server spent on it.
    fn sample<T>(&self, f: impl FnOnce() -> T) -> (T, Sample) {
        let server = || self.server_pid.and_then(|p| cpu_secs(&p.to_string()));
        let (client0, server0) = (cpu_secs("self"), server());
        let (out, wall) = timed(f);
        let delta = |a: Option<f64>, b: Option<f64>| b.zip(a).map_or(f64::NAN, |(b, a)| b - a);
        let sample = Sample {
            wall,
            client: delta(client0, cpu_secs("self")),
            server: delta(server0, server()),
        };
        (out, sample)
    }

    /// A fresh path under the bench's temp dir (not created).
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes a new bucket (through aws, so any S3-compatible server will do); returns its name.
    fn new_bucket(&self, what: &str) -> String {
        let bucket = format!("prunus-bench-{what}-{}", self.tag);
        self.aws(&["mb", &format!("s3://{bucket}")]);
        bucket
    }

    /// Removes a bucket and everything in it, so the server's disk does not fill up. Best
    /// effort: it measures nothing, and moto sometimes fails the listing of a large bucket.
    fn remove_bucket(&self, bucket: &str) {
        let out = Command::new(&self.aws)
            .args(["s3", "rb", "--force", &format!("s3://{bucket}")])
            .args(["--endpoint-url", &self.endpoint])
            .output();
        if let Err(why) = out.map_err(|e| e.to_string()).and_then(|o| {
            let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
            if o.status.success() { Ok(()) } else { Err(err) }
        }) {
            println!("  note: bucket {bucket} left on the server ({why})");
        }
    }

    /// The S3 remote at `url` on the bench's server.
    fn remote(&self, url: &str) -> S3Remote {
        S3Remote::open(&S3Config {
            url: url.into(),
            endpoint: Some(self.endpoint.clone()),
            ..S3Config::default()
        })
        .unwrap_or_else(|e| panic!("open {url}: {e}"))
    }

    /// Runs `aws s3 ARGS` against the server; returns its wall time. A failing reference makes
    /// the comparison meaningless, so it stops the bench with aws's own message.
    fn aws(&self, args: &[&str]) -> f64 {
        self.aws_with(Command::new(&self.aws), args)
    }

    /// [`Bench::aws`], downloading each object with one GET.
    fn aws_whole_gets(&self, args: &[&str]) -> f64 {
        let mut cmd = Command::new(&self.aws);
        cmd.env("AWS_CONFIG_FILE", &self.whole_gets);
        self.aws_with(cmd, args)
    }

    fn aws_with(&self, mut cmd: Command, args: &[&str]) -> f64 {
        let t = Instant::now();
        let out = cmd
            .arg("s3")
            .args(args)
            .args(["--endpoint-url", &self.endpoint])
            .args(
                args.first()
                    .filter(|a| **a == "sync")
                    .map(|_| "--only-show-errors"),
            )
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {:?} ({e}): run scripts/bench-remote, which installs awscli, \
                     or set PRUNUS_BENCH_AWS",
                    self.aws
                )
            });
        let secs = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "aws s3 {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        secs
    }
}

/// What one transfer took: wall seconds, and CPU seconds of the client and of the server
/// (NaN where unknown).
#[derive(Clone, Copy)]
struct Sample {
    wall: f64,
    client: f64,
    server: f64,
}

/// CPU seconds (user + system) process `pid` has used, with those of its waited-for children,
/// from `/proc/<pid>/stat` (fields 14-17, in clock ticks of 1/100 s); `None` off Linux.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks: Option<Vec<f64>> = fields.get(11..15)?.iter().map(|f| f.parse().ok()).collect();
    Some(ticks?.iter().sum::<f64>() / 100.0)
}

// ----- data -----

/// Incompressible bytes (xorshift64*), made as they are read, so that a 500 MiB blob never
/// sits in memory; each seed gives different bytes, so no two blobs dedupe.
struct Noise {
    x: u64,
    left: u64,
}

impl Noise {
    fn new(seed: u64, len: u64) -> Noise {
        Noise {
            x: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            left: len,
        }
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for chunk in buf[..n].chunks_mut(8) {
            self.x ^= self.x >> 12;
            self.x ^= self.x << 25;
            self.x ^= self.x >> 27;
            let r = self.x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn put_noise(store: &Store, seed: u64, len: u64) -> BlobRef {
    store
        .put_reader(Noise::new(seed, len))
        .expect("put a noise blob")
}

/// Publishes `outputs` as the result of stage instance `name` (its key derived from the name).
fn publish(store: &Store, name: &str, outputs: Vec<(String, BlobRef)>) {
    let meta = RunMeta {
        started_unix_ms: 0,
        ended_unix_ms: 1000,
        duration_s: 1.0,
        host: "bench".into(),
        prunus_version: "0".into(),
        exit_status: "ok".into(),
        log: None,
    };
    let result = ActionResult {
        outputs: outputs.into_iter().collect(),
        meta,
        key_info: serde_json::json!({ "instance": name }),
    };
    let key = Digest::of(format!("bench instance {name}").as_bytes());
    store.publish(&key, &result).expect("publish a result");
}

/// The ~2 GiB store of [`LARGE`]; returns it and how many blobs it holds.
fn build_large(root: &Path) -> (Store, usize) {
    let store = Store::open(root).expect("open the large store");
    let mut seed = 0;
    let mut blobs = 0;
    for (name, sizes) in LARGE {
        let mut outputs = Vec::new();
        for mib in *sizes {
            seed += 1;
            outputs.push((
                format!("ckpt-{mib}MiB.bin"),
                put_noise(&store, seed, mib * MIB),
            ));
        }
        seed += 1;
        outputs.push(("returns.csv".into(), put_noise(&store, seed, 4096)));
        blobs += outputs.len();
        publish(&store, name, outputs);
    }
    (store, blobs)
}

/// The store of [`NOOP_RESULTS`] × [`NOOP_OUTPUTS`] small blobs (1 to 4 KiB).
fn build_noop(root: &Path) -> Store {
    let store = Store::open(root).expect("open the no-op store");
    for i in 0..NOOP_RESULTS {
        let outputs = (0..NOOP_OUTPUTS)
            .map(|j| {
                let seed = (1 << 32) + (i * NOOP_OUTPUTS + j) as u64;
                let len = 1024 * (1 + (seed % 4));
                (format!("out-{j}.dat"), put_noise(&store, seed, len))
            })
            .collect();
        publish(&store, &format!("sweep[i={i}]"), outputs);
    }
    store
}

/// Files and bytes under `dir`, recursively: what a sync of it moves.
fn dir_bytes(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display())) {
        let entry = entry.expect("a directory entry");
        let meta = entry.metadata().expect("stat a directory entry");
        if meta.is_dir() {
            let (f, b) = dir_bytes(&entry.path());
            files += f;
            bytes += b;
        } else {
            files += 1;
            bytes += meta.len();
        }
    }
    (files, bytes)
}

// ----- timed transfers -----

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64())
}

fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The store's own key, trusted: what `prunus store push` signs with.
fn trust(store: &Store) -> Signed {
    Signed::new(store.signing_key("bench").expect("the store's key"), &[]).expect("own key")
}

/// `prunus store push` of `store` to `url` (opening the remote is part of it, as in the CLI).
fn push(bench: &Bench, store: &Store, url: &str) -> (SyncReport, f64) {
    let trust = trust(store);
    timed(|| {
        let remote = bench.remote(url);
        let report = store
            .push_all(&remote, &trust, JOBS, &|_| {})
            .unwrap_or_else(|e| panic!("push to {url}: {e}"));
        assert!(report.failed.is_empty(), "push: {:?}", report.failed);
        report
    })
}

/// `prunus store pull` from `url` into the store at `root`, trusting `from`'s key.
fn pull(bench: &Bench, root: &Path, from: &Store, url: &str) -> (SyncReport, f64) {
    let store = Store::open(root).expect("open the pulling store");
    let public = from.signing_key("bench").expect("the pusher's key");
    let key = store.signing_key("puller").expect("the puller's key");
    let trust = Signed::new(key, &[public.public().to_string()]).expect("trusted keys");
    timed(|| {
        let remote = bench.remote(url);
        let report = store
            .pull_all(&remote, &trust, JOBS, &|_| {})
            .unwrap_or_else(|e| panic!("pull from {url}: {e}"));
        assert!(report.failed.is_empty(), "pull: {:?}", report.failed);
        report
    })
}

// ----- large blobs -----

/// What each round times, in table order: direction, tool.
const ROWS: [(&str, &str); 5] = [
    ("up", "prunus push"),
    ("up", "aws s3 sync"),
    ("down", "prunus pull"),
    ("down", "aws s3 sync"),
    ("down", "aws, whole GETs"),
];

fn large(bench: &Bench, rounds: usize) {
    let (store, blobs) = build_large(&bench.path("large"));
    let blob_dir = store.root().join("blobs");
    let (files, bytes) = dir_bytes(&blob_dir);
    assert_eq!(files as usize, blobs, "one file per blob");
    println!(
        "\nlarge blobs: {blobs} blob files, {:.0} MB ({} results, 1 to 500 MiB, incompressible), \
         {rounds} interleaved rounds",
        bytes as f64 / 1e6,
        LARGE.len()
    );
    let mut samples = [const { Vec::new() }; ROWS.len()];
    for round in 1..=rounds {
        let round_samples = large_round(bench, &store, round, (files, bytes));
        let line: Vec<String> = ROWS
            .iter()
            .zip(&round_samples)
            .map(|((dir, name), s)| format!("{name} ({dir}) {:.2} s", s.wall))
            .collect();
        println!("  round {round}: {}", line.join(", "));
        for (row, s) in samples.iter_mut().zip(round_samples) {
            row.push(s);
        }
    }
    print_table(bytes, &samples);
}

/// One round of [`ROWS`], each to or from a fresh place; checks that each moved everything,
/// then frees the disk (and the server's) for the next round. Returns what each row took.
fn large_round(
    bench: &Bench,
    store: &Store,
    round: usize,
    (files, bytes): (u64, u64),
) -> [Sample; ROWS.len()] {
    let bucket = bench.new_bucket(&format!("large-r{round}"));
    let (prunus_url, aws_url) = (
        format!("s3://{bucket}/prunus"),
        format!("s3://{bucket}/aws"),
    );
    let ((pushed, _), push_s) = bench.sample(|| push(bench, store, &prunus_url));
    assert_eq!(
        (pushed.blobs, pushed.bytes),
        (files, bytes),
        "push moved all"
    );
    let blob_dir = store.root().join("blobs");
    let (_, sync_up) = bench.sample(|| bench.aws(&["sync", path_str(&blob_dir), &aws_url]));
    let pulled_root = bench.path(&format!("pulled-{round}"));
    let ((pulled, _), pull_s) = bench.sample(|| pull(bench, &pulled_root, store, &prunus_url));
    assert_eq!(
        pulled.actions as usize,
        LARGE.len(),
        "pull took all results"
    );
    let aws_dir = bench.path(&format!("aws-{round}"));
    let (_, sync_down) = bench.sample(|| bench.aws(&["sync", &aws_url, path_str(&aws_dir)]));
    let whole_dir = bench.path(&format!("aws-whole-{round}"));
    let (_, whole_down) =
        bench.sample(|| bench.aws_whole_gets(&["sync", &aws_url, path_str(&whole_dir)]));
    for (dir, what) in [
        (pulled_root.join("blobs"), "pull"),
        (aws_dir.clone(), "aws sync"),
        (whole_dir.clone(), "aws sync with whole GETs"),
    ] {
        assert_eq!(dir_bytes(&dir), (files, bytes), "{what} took all blobs");
    }
    for dir in [&pulled_root, &aws_dir, &whole_dir] {
        std::fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("remove {}: {e}", dir.display()));
    }
    bench.remove_bucket(&bucket);
    [push_s, sync_up, pull_s, sync_down, whole_down]
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("the bench's temp paths are UTF-8")
}

/// Medians and speeds per row of [`ROWS`] with the CPU each cost (the client's and the
/// server's, which share the cores here), and per direction prunus's speed relative to each
/// aws reference (target >= 1 against plain `aws s3 sync`).
fn print_table(bytes: u64, samples: &[Vec<Sample>; ROWS.len()]) {
    let mb = bytes as f64 / 1e6;
    let times: [Vec<f64>; ROWS.len()] =
        std::array::from_fn(|i| samples[i].iter().map(|s| s.wall).collect());
    println!(
        "\n  {:<6}{:<18}{:>10}{:>9}{:>12}{:>12}   rounds (s)",
        "", "", "median s", "MB/s", "client CPU", "server CPU"
    );
    let mut last_dir = "";
    for (i, ((dir, name), row)) in ROWS.iter().zip(samples).enumerate() {
        let xs = &times[i];
        let rounds: Vec<String> = xs.iter().map(|x| format!("{x:.2}")).collect();
        let cpu = |f: fn(&Sample) -> f64| median(&row.iter().map(f).collect::<Vec<_>>());
        let shown = if *dir == last_dir { "" } else { dir };
        last_dir = dir;
        println!(
            "  {shown:<6}{name:<18}{:>10.2}{:>9.0}{:>10.1} s{:>10.1} s   {}",
            median(xs),
            mb / median(xs),
            cpu(|s| s.client),
            cpu(|s| s.server),
            rounds.join(" ")
        );
        if ROWS.get(i + 1).is_none_or(|(next, _)| next != dir) {
            print_ratios(dir, &times);
        }
    }
}

/// prunus's speed over each aws row's, in direction `dir`.
fn print_ratios(dir: &str, times: &[Vec<f64>; ROWS.len()]) {
    let rows: Vec<(&str, f64)> = ROWS
        .iter()
        .zip(times)
        .filter(|((d, _), _)| *d == dir)
        .map(|((_, name), xs)| (*name, median(xs)))
        .collect();
    let prunus = rows[0].1;
    for (name, secs) in &rows[1..] {
        let (label, note) = if *name == "aws s3 sync" {
            (
                "prunus/aws speed",
                "target >= 1: at least as fast as aws s3 sync",
            )
        } else {
            (
                "prunus/whole GETs",
                "one GET per object on both sides: the like-for-like reference on moto",
            )
        };
        println!("  {:<6}{label:<18}{:>10.2}x  ({note})", "", secs / prunus);
    }
}

// ----- no-op transfers -----

fn noop(bench: &Bench) {
    let n_blobs = NOOP_RESULTS * NOOP_OUTPUTS;
    println!("\nno-op: {n_blobs} small blobs in {NOOP_RESULTS} results (building the store...)");
    let (store, build_s) = timed(|| build_noop(&bench.path("noop")));
    let bucket = bench.new_bucket("noop");
    let (prunus_url, aws_url) = (
        format!("s3://{bucket}/prunus"),
        format!("s3://{bucket}/aws"),
    );
    let blob_dir = store.root().join("blobs");
    let aws_dir = bench.path("noop-aws");
    let pulled_root = bench.path("noop-pulled");

    let (pushed, push_s) = push(bench, &store, &prunus_url);
    assert_eq!(
        pushed.blobs as usize, n_blobs,
        "first push moved every blob"
    );
    let up_s = bench.aws(&["sync", path_str(&blob_dir), &aws_url]);
    let (pulled, pull_s) = pull(bench, &pulled_root, &store, &prunus_url);
    assert_eq!(pulled.actions as usize, NOOP_RESULTS, "first pull took all");
    let down_s = bench.aws(&["sync", &aws_url, path_str(&aws_dir)]);
    println!(
        "  built in {build_s:.1} s; first transfer: push {push_s:.2} s, aws up {up_s:.2} s, \
         pull {pull_s:.2} s, aws down {down_s:.2} s"
    );

    let mut t = [const { Vec::new() }; 4];
    for _ in 0..NOOP_ROUNDS {
        let (pushed, s) = push(bench, &store, &prunus_url);
        assert_eq!(
            (pushed.actions, pushed.blobs),
            (0, 0),
            "a no-op push moved something"
        );
        t[0].push(s);
        t[1].push(bench.aws(&["sync", path_str(&blob_dir), &aws_url]));
        let (pulled, s) = pull(bench, &pulled_root, &store, &prunus_url);
        assert_eq!(pulled.actions, 0, "a no-op pull moved something");
        t[2].push(s);
        t[3].push(bench.aws(&["sync", &aws_url, path_str(&aws_dir)]));
    }
    assert_eq!(
        dir_bytes(&aws_dir).0 as usize,
        n_blobs,
        "aws no-op syncs kept all"
    );
    println!("  nothing to move (median of {NOOP_ROUNDS}):");
    for (name, xs) in [
        "prunus push",
        "aws s3 sync up",
        "prunus pull",
        "aws s3 sync down",
    ]
    .iter()
    .zip(&t)
    {
        let target = if name.starts_with("prunus") {
            "  (target < 1 s)"
        } else {
            ""
        };
        println!("    {name:<18}{:>8.3} s{target}", median(xs));
    }
    bench.remove_bucket(&bucket);
}
