//! `prunus run --executor slurm` against the single-node Slurm cluster the test command starts
//! (tests/setup/30-slurm.sh; skipped with a note when `PRUNUS_TEST_SLURM` is unset). That
//! cluster keeps accounting (slurmdbd), so job states come from `sacct`; the path for clusters
//! without it (`scontrol show job` and the exit files `prunus exec` writes) is tested through
//! the same cluster seen with accounting off. Covered: a sweep gives the local executor's keys
//! and outputs; a failing job is reported with its Slurm state and log tail, both ways; sbatch refusing a
//! partition is a clear error; a coordinator killed with SIGKILL re-attaches, and two
//! coordinators on one store never submit an instance twice; a training job requeued mid-run,
//! and one stopped at its time limit (TIMEOUT), resume from their checkpoints and publish what
//! an uninterrupted local run does, bit for bit; gc keeps what a job held in the queue for
//! hours will read.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use prunus_tests::{Project, Ran};

fn slurm() -> bool {
    let on = std::env::var_os("PRUNUS_TEST_SLURM").is_some();
    if !on {
        eprintln!("PRUNUS_TEST_SLURM is not set (bash tests/run starts a Slurm cluster): skipped");
    }
    on
}

/// `prunus ARGS` with no user config (and quick progress lines from the jobs).
fn prunus(p: &Project, args: &[&str]) -> Ran {
    Ran::from(command(p, args).output().expect("running prunus"))
}

fn command(p: &Project, args: &[&str]) -> Command {
    let mut c = p.command(args);
    c.env("PRUNUS_CONFIG", p.path().join("no-config.kdl"));
    c
}

fn spawn(p: &Project, args: &[&str]) -> Child {
    command(p, args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting prunus")
}

/// The `slurm/submitted.log` lines of the project's store: (task, key, instance).
fn submissions(p: &Project) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(p.path().join(".prunus/slurm/submitted.log"));
    let text = text.unwrap_or_default();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(3, ' ').collect();
            (f[0].into(), f[1].into(), f[2].into())
        })
        .collect()
}

/// Tasks Slurm itself knows of that ran in the project directory, by instance log: what the
/// cluster saw submitted, not what prunus says it submitted.
fn slurm_tasks(p: &Project) -> usize {
    let out = Command::new("scontrol")
        .args(["show", "job", "-o"])
        .output()
        .unwrap();
    let dir = p.path().canonicalize().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("WorkDir={} ", dir.display())))
        .map(|l| {
            let tasks = l
                .split_whitespace()
                .find_map(|f| f.strip_prefix("ArrayTaskId="))
                .unwrap_or("0");
            // A pending array record covers a range (`3-5`).
            tasks
                .split(['%'])
                .next()
                .unwrap()
                .split(',')
                .map(|r| match r.split_once('-') {
                    Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
                    None => 1,
                })
                .sum::<usize>()
        })
        .sum()
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < within {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("not within {within:?}: {what}");
}

/// Each instance's key and status, from `prunus plan --json`.
fn keys(p: &Project, pipeline: &str) -> HashMap<String, (String, String)> {
    let plan = prunus(p, &["plan", "--json", pipeline]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&plan.stdout).unwrap();
    rows.iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (s("instance"), (s("key"), s("status")))
        })
        .collect()
}

/// `cluster` ran the sweep to what `local` has: the same keys, all cached, the same outputs.
fn same_results(local: &Project, cluster: &Project) {
    let (a, b) = (keys(local, "sweep.kdl"), keys(cluster, "sweep.kdl"));
    assert_eq!(a, b);
    assert!(b.values().all(|(_, status)| status == "cached"), "{b:?}");
    for name in ["gen/seed0", "gen/seed3", "all"] {
        let outputs = |p: &Project| {
            let s = prunus(p, &["show", name]).ok().stdout;
            s.lines()
                .filter(|l| l.contains("out.txt") || l.contains("echo"))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(outputs(local), outputs(cluster), "{name}");
    }
}

const SWEEP: &str = r#"
pipeline "sweep"
sweep "s" {
    seed from=0 to=3
}
stage "gen" {
    kind "command"
    over "s"
    run "sh" "-c" "echo {seed} >> ran.txt; sleep 0.5; echo seed {seed} > $PRUNUS_OUT/out.txt"
    outputs "out.txt"
}
stage "all" {
    kind "test/echo"
    needs "gen"
    value "fan-in"
}
"#;

#[test]
fn a_sweep_through_slurm_gives_the_local_keys_and_outputs() {
    if !slurm() {
        return;
    }
    let (local, cluster) = (Project::new(), Project::new());
    for p in [&local, &cluster] {
        p.write("sweep.kdl", SWEEP);
    }
    assert_eq!(
        prunus(&local, &["run", "sweep.kdl"]).ok().counts(),
        (5, 0, 0)
    );
    let ran = prunus(&cluster, &["run", "-v", "--executor", "slurm", "sweep.kdl"]).ok();
    assert_eq!(ran.counts(), (5, 0, 0), "{}", ran.stderr);
    // The jobs' log lines reach the coordinator (read from their Slurm logs).
    assert!(
        ran.stderr.contains("[all] all echoes \"fan-in\""),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("5 instance(s) submitted, 0 re-attached"),
        "{}",
        ran.stderr
    );
    // The same keys, all cached now; the same outputs.
    same_results(&local, &cluster);
    // The sweep went as one array of 4 tasks, then the fan-in as its own.
    let subs = submissions(&cluster);
    let array = |i: &str| {
        subs.iter()
            .find(|s| s.2 == i)
            .unwrap()
            .0
            .split('_')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(subs.len(), 5, "{subs:?}");
    assert!((0..4).all(|s| array(&format!("gen/seed{s}")) == array("gen/seed0")));
    assert_ne!(array("all"), array("gen/seed0"));
    assert_eq!(slurm_tasks(&cluster), 5);
}

/// Nodes that do not see the store (`node-store`): every job runs with the coordinator's
/// store hidden under an empty tmpfs (a mount namespace of its own), against a store of its
/// own, and moves its inputs and result through the S3 remote; the coordinator ends with the
/// local executor's keys and outputs, fetched from the remote, signed by its jobs key.
/// What the nodes run: prunus, with the project's store hidden under an empty tmpfs, as on
/// a node that does not see it.
fn node_prunus(p: &Project) -> std::path::PathBuf {
    let store = p.path().join(".prunus");
    std::fs::create_dir_all(&store).unwrap();
    let path = p.write(
        "node-prunus",
        &format!(
            "#!/bin/sh\nexec unshare -m sh -c 'mount -t tmpfs none \"$0\" && exec \"$@\"' {} {} \"$@\"\n",
            store.display(),
            prunus_tests::prunus_bin().display()
        ),
    );
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

#[test]
fn jobs_on_nodes_without_the_store_go_through_the_remote() {
    if !slurm() {
        return;
    }
    let Some(endpoint) = prunus_tests::s3::shared_endpoint() else {
        return;
    };
    let bucket = format!("slurm-nodes-{}", std::process::id());
    prunus_tests::s3::create_bucket(&endpoint, &bucket);
    let (local, cluster) = (Project::new(), Project::new());
    local.write("sweep.kdl", SWEEP);
    assert_eq!(
        prunus(&local, &["run", "sweep.kdl"]).ok().counts(),
        (5, 0, 0)
    );
    let node_prunus = node_prunus(&cluster);
    let node_store = cluster.path().join("node-store");
    cluster.write(
        "sweep.kdl",
        &format!(
            "{SWEEP}\nexecutor \"slurm\" {{\n    prunus \"{}\"\n    node-store \"{}\"\n}}\n",
            node_prunus.display(),
            node_store.display()
        ),
    );
    let url = format!("s3://{bucket}/cache");
    let ran = Ran::from(
        command(
            &cluster,
            &[
                "run",
                "-v",
                "sweep.kdl",
                "--remote",
                &url,
                "--endpoint",
                &endpoint,
            ],
        )
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap(),
    )
    .ok();
    assert_eq!(ran.counts(), (5, 0, 0), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("5 instance(s) submitted"),
        "{}",
        ran.stderr
    );
    // The local executor's keys and outputs, now in the coordinator's store.
    same_results(&local, &cluster);
    // The jobs ran in the node store (the coordinator's was hidden from them)...
    let node = prunus(&cluster, &["--store", node_store.to_str().unwrap(), "ls"]).ok();
    for name in ["gen/seed0", "gen/seed3", "all"] {
        assert!(
            node.stdout.contains(name),
            "{name} not in the node store: {}",
            node.stdout
        );
    }
    // ...and every entry on the remote is signed by the coordinator's jobs key.
    let entries: Vec<String> = prunus_tests::s3::objects(&endpoint, &bucket)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.ends_with(".entry"))
        .collect();
    assert_eq!(entries.len(), 5, "{entries:?}");
    for e in &entries {
        let entry = String::from_utf8(prunus_tests::s3::get(&endpoint, &bucket, e)).unwrap();
        assert!(entry.contains("-jobs:"), "{e}: {entry}");
    }
    // Without a remote the setting is a clear error.
    let r = prunus(&cluster, &["run", "sweep.kdl", "--executor", "slurm"]);
    assert!(r.stderr.contains("through a remote"), "{}", r.stderr);
    // The nodes' prunus really cannot see the store: a job that needs it fails.
    cluster.write(
        "blind.kdl",
        &format!(
            "pipeline \"blind\"\nstage \"x\" {{\n    kind \"test/echo\"\n    value \"v\"\n}}\nexecutor \"slurm\" {{\n    prunus \"{}\"\n}}\n",
            node_prunus.display()
        ),
    );
    let r = prunus(&cluster, &["run", "blind.kdl"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
}

/// `prunus ARGS` with a `sacct` and an `scontrol` first on PATH that record each call in
/// `calls.log` and run the real ones: which way the coordinator learnt how jobs ended, the
/// real cluster answering. `conf` is the cluster's configuration as the coordinator sees it.
fn with_recorded_queries(p: &Project, args: &[&str], conf: Option<&std::path::Path>) -> Ran {
    let bin = p.path().join("bin");
    for tool in ["sacct", "scontrol"] {
        let real = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let real = String::from_utf8(real.stdout).unwrap();
        p.write(
            &format!("bin/{tool}"),
            &format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexec '{}' \"$@\"\n",
                p.path().join("calls.log").display(),
                real.trim()
            ),
        );
        let status = Command::new("chmod")
            .args(["+x", bin.join(tool).to_str().unwrap()])
            .status();
        assert!(status.unwrap().success());
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let mut c = command(p, args);
    c.env("PATH", format!("{}:{path}", bin.display()));
    if let Some(conf) = conf {
        c.env("SLURM_CONF", conf);
    }
    Ran::from(c.output().expect("running prunus"))
}

/// How many times the coordinator ran `tool` (see [`with_recorded_queries`]).
fn calls(p: &Project, tool: &str) -> usize {
    let log = std::fs::read_to_string(p.path().join("calls.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.split(' ').next() == Some(tool))
        .count()
}

const FAILING: &str = r#"
pipeline "fail"
stage "bad" {
    kind "command"
    run "sh" "-c" "echo the last words of a failing job; exit 3"
    outputs "never.txt"
}
stage "good" {
    kind "test/echo"
    value "fine"
}
"#;

/// Runs [`FAILING`] through Slurm, `conf` as the coordinator's SLURM_CONF, and checks the
/// report: one failure, with its Slurm state, exit code and log tail.
fn failing_job_is_reported(conf: Option<&std::path::Path>) -> Project {
    let p = Project::new();
    p.write("fail.kdl", FAILING);
    let args = ["run", "--executor", "slurm", "--keep-going", "fail.kdl"];
    let r = with_recorded_queries(&p, &args, conf);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.counts(), (1, 0, 1), "{}", r.stderr);
    let words = r.stderr.replace('\n', " ");
    assert!(words.contains("✗ bad failed"), "{}", r.stderr);
    assert!(words.contains("FAILED (exit code 1)"), "{}", r.stderr);
    assert!(
        words.contains("the last words of a failing job"),
        "{}",
        r.stderr
    );
    p
}

#[test]
fn a_failing_job_is_reported_with_its_reason_and_log_tail() {
    if !slurm() {
        return;
    }
    // With accounting (the test cluster keeps it in slurmdbd): sacct says how jobs ended.
    let p = failing_job_is_reported(None);
    eprintln!(
        "sacct {} scontrol {}",
        calls(&p, "sacct"),
        calls(&p, "scontrol")
    );
    assert!(calls(&p, "sacct") >= 1, "sacct was never asked");
    // A partition the cluster lacks: sbatch's refusal, and what to change.
    let r = prunus(
        &p,
        &[
            "run",
            "--executor",
            "slurm",
            "--partition",
            "nonesuch",
            "fail.kdl",
            "bad",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("sbatch refused the job"), "{}", r.stderr);
    assert!(r.stderr.contains("check the partition"), "{}", r.stderr);
}

#[test]
fn without_accounting_job_states_come_from_scontrol_and_the_exit_files() {
    if !slurm() {
        return;
    }
    // The same cluster as its clients see it with accounting off: sacct says "Slurm
    // accounting storage is disabled" once, is not asked again, and the report is the same.
    let conf = std::path::PathBuf::from(std::env::var("SLURM_CONF").unwrap());
    let p = failing_job_is_reported(Some(&conf.with_file_name("slurm-noacct.conf")));
    assert_eq!(calls(&p, "sacct"), 1, "sacct asked again after it said no");
    assert!(calls(&p, "scontrol") >= 1, "scontrol was never asked");
}

#[test]
fn gc_keeps_what_a_queued_job_will_read() {
    if !slurm() {
        return;
    }
    // A job held in the queue (--hold) for longer than gc's grace period: its saved job is
    // named by no published result, yet it must be there when the job starts.
    let p = Project::new();
    p.write(
        "q.kdl",
        r#"
pipeline "queued"
stage "late" {
    kind "command"
    run "sh" "-c" "echo after the queue > $PRUNUS_OUT/out.txt"
    outputs "out.txt"
}
"#,
    );
    let mut child = spawn(
        &p,
        &["run", "--executor", "slurm", "--sbatch-arg=--hold", "q.kdl"],
    );
    wait_until("the job is submitted", Duration::from_secs(30), || {
        submissions(&p)
            .iter()
            .any(|(task, _, _)| task.contains('_'))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let status = Command::new("find")
        .args([
            ".prunus",
            "-exec",
            "touch",
            "-h",
            "-d",
            "2 hours ago",
            "{}",
            "+",
        ])
        .current_dir(p.path())
        .status();
    assert!(status.unwrap().success());
    let r = prunus(&p, &["store", "gc"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("only submitted jobs without a result need"),
        "{}",
        r.stdout
    );
    let task = submissions(&p)[0].0.clone();
    let array = task.split('_').next().unwrap();
    assert!(
        Command::new("scontrol")
            .args(["release", array])
            .status()
            .unwrap()
            .success()
    );
    let r = prunus(&p, &["run", "--executor", "slurm", "q.kdl"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        submissions(&p).len(),
        1,
        "submitted again: {:?}",
        submissions(&p)
    );
}

const SLOW: &str = r#"
pipeline "slow"
sweep "s" {
    seed from=0 to=5
}
stage "work" {
    kind "command"
    over "s"
    run "sh" "-c" "echo {seed} >> ran.txt; sleep 2; echo {seed} > $PRUNUS_OUT/out.txt"
    outputs "out.txt"
}
stage "all" {
    kind "test/echo"
    needs "work"
    value "fan-in"
}
"#;

#[test]
fn a_coordinator_killed_mid_run_reattaches_and_nothing_is_submitted_twice() {
    if !slurm() {
        return;
    }
    let p = Project::new();
    p.write("slow.kdl", SLOW);
    let mut first = spawn(&p, &["run", "--executor", "slurm", "slow.kdl"]);
    wait_until("the sweep is submitted", Duration::from_secs(30), || {
        submissions(&p).len() == 6
    });
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    // Two coordinators restart at once on the one store.
    let a = spawn(&p, &["run", "--executor", "slurm", "slow.kdl"]);
    let b = spawn(&p, &["run", "--executor", "slurm", "slow.kdl"]);
    let (a, b) = (
        Ran::from(a.wait_with_output().unwrap()),
        Ran::from(b.wait_with_output().unwrap()),
    );
    let (a, b) = (a.ok(), b.ok());
    let mut ran: Vec<String> = p.read("ran.txt").lines().map(String::from).collect();
    ran.sort();
    assert_eq!(ran, ["0", "1", "2", "3", "4", "5"], "an instance ran twice");
    let subs = submissions(&p);
    let mut instances: Vec<&str> = subs.iter().map(|s| s.2.as_str()).collect();
    instances.sort();
    instances.dedup();
    assert_eq!(instances.len(), 7, "{subs:?}");
    assert_eq!(subs.len(), 7, "an instance was submitted twice: {subs:?}");
    assert_eq!(slurm_tasks(&p), 7);
    let both = format!("{}{}", a.stderr, b.stderr);
    assert!(both.contains("re-attached to"), "{both}");
    assert!(
        !both.contains("0 instance(s) submitted, 0 re-attached")
            || both.matches(" re-attached").count() == 2,
        "{both}"
    );
}

/// A CartPole DQN run long enough to be interrupted (about 15 s on a CI core), whose jobs
/// print progress every second and get Slurm's warning signal 50 s before a time limit.
fn train(steps: &str, extra: &str) -> String {
    format!(
        r#"
pipeline "t"
executor "slurm" {{
    progress-interval "1s"
    signal-before "50s"
}}
stage "train" {{
    kind "train/dqn"
    env "cartpole"
    network.hidden 32
    steps {steps}
    iterations 3
    eval-episodes 1
    min-replay 200
    probe-batch 32
    {extra}
}}
"#
    )
}

const STEPS: &str = "150_000";

/// What an uninterrupted local run publishes (computed once for the tests that compare).
fn uninterrupted() -> &'static [u8] {
    static CKPT: OnceLock<Vec<u8>> = OnceLock::new();
    CKPT.get_or_init(|| {
        let p = Project::new();
        p.write("t.kdl", &train(STEPS, ""));
        let r = prunus(&p, &["run", "--executor", "local", "t.kdl"]).ok();
        assert_eq!(r.counts(), (1, 0, 0));
        std::fs::read(p.path().join("results/t/train/final.ckpt")).unwrap()
    })
}

/// Runs `scontrol ARGS`, which must succeed.
fn scontrol(args: &[&str]) {
    let status = Command::new("scontrol").args(args).status();
    assert!(status.unwrap().success(), "scontrol {}", args.join(" "));
}

/// The Slurm task the store's record names for the one instance.
fn the_task(p: &Project) -> String {
    submissions(p).last().expect("submitted").0.clone()
}

fn log_of(p: &Project, task: &str) -> String {
    std::fs::read_to_string(p.path().join(format!(".prunus/slurm/logs/{task}.log")))
        .unwrap_or_default()
}

#[test]
fn a_training_job_requeued_mid_run_resumes_bit_identically() {
    if !slurm() {
        return;
    }
    let reference = uninterrupted();
    let p = Project::new();
    p.write("t.kdl", &train(STEPS, ""));
    let child = spawn(&p, &["run", "t.kdl"]);
    wait_until("the job trains", Duration::from_secs(60), || {
        !submissions(&p).is_empty() && log_of(&p, &the_task(&p)).contains("steps (")
    });
    let task = the_task(&p);
    // As a preemption does: SIGTERM, then the job is queued again. Slurm holds a requeued
    // job for two minutes; let it start at once.
    scontrol(&["requeue", &task]);
    wait_until("the job is requeued", Duration::from_secs(30), || {
        let q = Command::new("squeue")
            .args(["-h", "-j", &task, "-o", "%T"])
            .output();
        let pending = String::from_utf8_lossy(&q.unwrap().stdout).contains("PENDING");
        log_of(&p, &task).contains("interrupted") && pending
    });
    scontrol(&["update", &format!("JobId={task}"), "StartTime=now"]);
    let r = Ran::from(child.wait_with_output().unwrap()).ok();
    assert_eq!(r.counts(), (1, 0, 0), "{}", r.stderr);
    let log = log_of(&p, &task);
    assert!(log.contains("resuming at agent step"), "{log}");
    assert_eq!(
        submissions(&p).len(),
        1,
        "requeued by Slurm, not submitted again"
    );
    let published = std::fs::read(p.path().join("results/t/train/final.ckpt")).unwrap();
    assert!(
        published == reference,
        "the resumed run published another network"
    );
}

#[test]
fn a_job_requeued_onto_another_node_resumes_from_the_checkpoint_on_the_remote() {
    if !slurm() {
        return;
    }
    let Some(endpoint) = prunus_tests::s3::shared_endpoint() else {
        return;
    };
    let reference = uninterrupted();
    let bucket = format!("slurm-requeue-{}", std::process::id());
    prunus_tests::s3::create_bucket(&endpoint, &bucket);
    let p = Project::new();
    // Each start of the job gets a store of its own, as a job requeued onto another node
    // does: Slurm counts restarts in SLURM_RESTART_COUNT (unset on the first).
    let (node_prunus, logs) = (node_prunus(&p), p.path().join("logs"));
    std::fs::create_dir_all(&logs).unwrap();
    let settings = format!(
        "executor \"slurm\" {{\n    prunus \"{}\"\n    node-store \"{}/node$SLURM_RESTART_COUNT\"\n    node-log \"{}/%A_%a.log\"",
        node_prunus.display(),
        p.path().display(),
        logs.display()
    );
    p.write(
        "t.kdl",
        &train(STEPS, "").replace("executor \"slurm\" {", &settings),
    );
    let url = format!("s3://{bucket}/cache");
    let mut run = command(
        &p,
        &["run", "t.kdl", "--remote", &url, "--endpoint", &endpoint],
    );
    run.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = run.spawn().unwrap();
    let log = |task: &str| std::fs::read_to_string(logs.join(format!("{task}.log")));
    wait_until("the job trains", Duration::from_secs(60), || {
        !submissions(&p).is_empty() && log(&the_task(&p)).is_ok_and(|l| l.contains("steps ("))
    });
    let task = the_task(&p);
    scontrol(&["requeue", &task]);
    wait_until(
        "the checkpoint is on the remote",
        Duration::from_secs(30),
        || {
            prunus_tests::s3::objects(&endpoint, &bucket)
                .iter()
                .any(|(k, _)| k.contains("checkpoints/"))
        },
    );
    scontrol(&["update", &format!("JobId={task}"), "StartTime=now"]);
    let r = Ran::from(child.wait_with_output().unwrap()).ok();
    assert_eq!(r.counts(), (1, 0, 0), "{}", r.stderr);
    let log = log(&task).unwrap_or_default();
    assert!(log.contains("took its checkpoint from"), "{log}");
    assert!(log.contains("resuming at agent step"), "{log}");
    assert!(
        p.path().join("node1").exists(),
        "the second start had a store of its own"
    );
    let published = std::fs::read(p.path().join("results/t/train/final.ckpt")).unwrap();
    assert!(
        published == reference,
        "the run resumed on another node published another network"
    );
}

#[test]
fn a_job_over_its_time_limit_is_timeout_and_resumes_when_resubmitted() {
    if !slurm() {
        return;
    }
    let p = Project::new();
    // One minute (Slurm counts minutes), the warning signal 50 s before it; Slurm checks
    // time limits every 30 s, so the job gets it 10 to 40 s in: the run is much longer.
    p.write("t.kdl", &train("6_000_000", "resources time=\"1m\""));
    let r = prunus(&p, &["run", "t.kdl"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let words = r.stderr.replace('\n', " ");
    assert!(words.contains("TIMEOUT"), "{}", r.stderr);
    assert!(
        words.contains("resumes from its checkpoint"),
        "{}",
        r.stderr
    );
    let first = the_task(&p);
    eprintln!("first run:\n{}", r.stderr);
    assert!(
        log_of(&p, &first).contains("interrupted"),
        "{}",
        log_of(&p, &first)
    );
    // Resubmitted by the next run, it resumes where the first stopped (then we stop it).
    let mut child = spawn(&p, &["run", "t.kdl"]);
    wait_until(
        "the resubmitted job resumes",
        Duration::from_secs(60),
        || {
            let task = the_task(&p);
            task != first && log_of(&p, &task).contains("resuming at agent step")
        },
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let second = the_task(&p);
    assert!(
        Command::new("scancel")
            .arg(&second)
            .status()
            .unwrap()
            .success()
    );
    let log = log_of(&p, &second);
    let step: u64 = log
        .split("resuming at agent step ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(step > 0, "{log}");
}

#[test]
fn plan_with_slurm_shows_the_arrays_and_their_gpu_hours() {
    // Needs no cluster: nothing is submitted.
    let p = Project::new();
    p.write(
        "g.kdl",
        r#"
pipeline "g"
executor "slurm" {
    partition "gpu"
}
sweep "s" {
    seed 0 1
}
stage "train" {
    kind "train/dqn"
    over "s"
    env "cartpole"
    steps 720_000
    iterations 2
    resources gpus=1 memory="8G" time="2h"
}
stage "sum" {
    kind "test/echo"
    needs "train"
    value "done"
}
"#,
    );
    let r = prunus(&p, &["plan", "g.kdl"]).ok();
    assert!(
        r.stdout.contains("Slurm: 3 job(s) in 2 array(s)"),
        "{}",
        r.stdout
    );
    let train = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("train ") && l.contains(" tasks "));
    let train = train.unwrap();
    for flag in [
        "--gres=gpu:1",
        "--mem=8192M",
        "--time=0-02:00:00",
        "--partition=gpu",
    ] {
        assert!(train.contains(flag), "{flag}: {train}");
    }
    // 2 runs of 720k steps at train/dqn's rate for CartPole on the CPU device (600 steps/s),
    // one GPU each: 0.67 GPU-hours.
    assert!(
        r.stdout.contains("estimated: 0.7 GPU-hours"),
        "{}",
        r.stdout
    );
    // `--executor local` plans for this machine instead: no Slurm lines (and a GPU check).
    let local = prunus(&p, &["plan", "--executor", "local", "--gpus", "1", "g.kdl"]).ok();
    assert!(!local.stdout.contains("Slurm:"), "{}", local.stdout);
}
