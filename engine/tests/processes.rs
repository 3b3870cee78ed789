//! A `command` stage's processes, through the engine and real programs (`sh`, `sleep`): its
//! log is every byte line it printed, it ends when its program exits, nothing it started
//! outlives it or prunus (even a SIGKILLed prunus), and cancelling works at once. The
//! prunus that dies is this test binary re-run with `PRUNUS_TEST_HOST` set (see `host`).
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prunus_engine::job::Job;
use prunus_engine::{Graph, Registry, RunOptions, Summary, load_str, plan};
use prunus_store::Store;

/// A pipeline of one `command` stage running `script` with sh, in `dir`.
fn pipeline(dir: &Path, script: &str) -> String {
    std::fs::write(dir.join("stage.sh"), script).unwrap();
    "pipeline \"p\"\nstage \"s\" {\n    kind \"command\"\n    run \"sh\" \"stage.sh\"\n}\n".into()
}

/// Runs `script` as a stage in `dir`; `cancel` is the run's Ctrl-C flag.
fn run(dir: &Path, script: &str, cancel: Arc<AtomicBool>) -> (Summary, Store, Graph) {
    let graph = load_str("p.kdl", &pipeline(dir, script), &Registry::builtin(dir)).unwrap();
    let store = Store::open(dir.join(".prunus")).unwrap();
    let opts = RunOptions {
        export: false,
        quiet: true,
        ..RunOptions::default()
    };
    let summary = prunus_engine::run::run(&graph, &store, &opts, cancel).unwrap();
    (summary, store, graph)
}

/// The stored log of the stage after a successful run.
fn log(graph: &Graph, store: &Store) -> String {
    let entries = plan::plan(graph, store).unwrap();
    let result = entries[0].result.as_ref().expect("a published result");
    let digest = result.meta.log.as_ref().expect("a log").digest;
    String::from_utf8(store.get_bytes(&digest).unwrap()).unwrap()
}

/// The process id a stage script wrote into `dir/name`, once it is there.
fn pid_in(dir: &Path, name: &str, within: Duration) -> i32 {
    let t = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(dir.join(name))
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(t.elapsed() < within, "the stage wrote no {name}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` runs (a zombie waiting for its parent to reap it does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !matches!(stat.rsplit(") ").next(), Some(s) if s.starts_with(['Z', 'X'])))
}

/// Waits up to `within` for `pids` to be gone; the ones still running.
fn survivors(pids: &[i32], within: Duration) -> Vec<i32> {
    let t = Instant::now();
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || t.elapsed() > within {
            for &p in &left {
                // SAFETY: ending a process this test's stage started.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn no_cancel() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

#[test]
fn a_line_that_is_not_utf8_does_not_stop_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let script = "printf 'bad \\377\\n'\nfor i in $(seq 20000); do echo line$i; done\necho end\n";
    let (summary, store, graph) = run(dir.path(), script, no_cancel());
    assert!(summary.ok(), "{:?}", summary.failed);
    let log = log(&graph, &store);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 20_002);
    assert_eq!(lines[0], "bad \u{fffd}");
    assert_eq!(lines[20_000], "line20000");
    assert_eq!(lines[20_001], "end");
}

#[test]
fn a_background_child_neither_keeps_the_stage_waiting_nor_outlives_it() {
    let dir = tempfile::tempdir().unwrap();
    let script = "sleep 30 &\necho $! > bg.pid\necho started\n";
    let t = Instant::now();
    let (summary, store, graph) = run(dir.path(), script, no_cancel());
    let secs = t.elapsed().as_secs_f64();
    assert!(summary.ok(), "{:?}", summary.failed);
    assert!(
        secs < 5.0,
        "the stage waited {secs:.1} s for its background child"
    );
    let bg = pid_in(dir.path(), "bg.pid", Duration::ZERO);
    assert_eq!(survivors(&[bg], Duration::from_secs(2)), [] as [i32; 0]);
    assert!(log(&graph, &store).contains("started"));
}

#[test]
fn a_daemon_that_left_the_process_group_ends_with_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    // One holds the log pipes open, one does not; both left the stage's process group.
    let script = "setsid sleep 30 &\necho $! > held.pid\n\
                  setsid sleep 30 < /dev/null > /dev/null 2>&1 &\necho $! > detached.pid\n";
    let t = Instant::now();
    let (summary, ..) = run(dir.path(), script, no_cancel());
    assert!(summary.ok(), "{:?}", summary.failed);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let pids = [
        pid_in(dir.path(), "held.pid", Duration::ZERO),
        pid_in(dir.path(), "detached.pid", Duration::ZERO),
    ];
    assert_eq!(survivors(&pids, Duration::from_secs(2)), [] as [i32; 0]);
}

#[test]
fn cancelling_ends_a_stage_whose_processes_ignore_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let script = "trap '' TERM\nsleep 30 &\necho $! > bg.pid\necho $$ > sh.pid\nwait\n";
    let cancel = no_cancel();
    let flag = cancel.clone();
    let path = dir.path().to_path_buf();
    let setter = std::thread::spawn(move || {
        let pids = [
            pid_in(&path, "sh.pid", Duration::from_secs(10)),
            pid_in(&path, "bg.pid", Duration::from_secs(10)),
        ];
        flag.store(true, Ordering::SeqCst);
        (pids, Instant::now())
    });
    let (summary, ..) = run(dir.path(), script, cancel);
    let (pids, cancelled_at) = setter.join().unwrap();
    let secs = cancelled_at.elapsed().as_secs_f64();
    assert!(
        summary.cancelled && summary.failed.is_empty(),
        "{summary:?}"
    );
    assert!(secs < 5.0, "the run took {secs:.1} s to stop");
    assert_eq!(survivors(&pids, Duration::from_secs(1)), [] as [i32; 0]);
}

#[test]
fn a_cancelled_program_may_print_while_it_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    // On SIGTERM it prints far more than a pipe holds, then saves its checkpoint.
    let script = "trap 'seq 200000; echo saved > ckpt; exit 0' TERM\necho $$ > sh.pid\n\
                  while :; do sleep 0.05; done\n";
    let cancel = no_cancel();
    let flag = cancel.clone();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        pid_in(&path, "sh.pid", Duration::from_secs(10));
        flag.store(true, Ordering::SeqCst);
    });
    let (summary, ..) = run(dir.path(), script, cancel);
    assert!(summary.cancelled, "{summary:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ckpt"))
            .ok()
            .as_deref(),
        Some("saved\n"),
        "the program was killed before it saved its checkpoint"
    );
}

#[test]
fn cancelling_stops_a_run_waiting_for_another_process_running_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let script = "echo ran\n";
    let graph = load_str(
        "p.kdl",
        &pipeline(dir.path(), script),
        &Registry::builtin(dir.path()),
    )
    .unwrap();
    let store = Store::open(dir.path().join(".prunus")).unwrap();
    let key = Job::plan(&graph, &store, "s").unwrap().key;
    // Another prunus holds the stage (for 6 s: long enough to tell, not forever on failure).
    let lock = store.lock_stage(&key).unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(6));
        drop(lock);
    });
    let cancel = no_cancel();
    let flag = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        flag.store(true, Ordering::SeqCst);
    });
    let t = Instant::now();
    let (summary, ..) = run(dir.path(), script, cancel);
    let secs = t.elapsed().as_secs_f64();
    assert!(summary.cancelled && summary.ran.is_empty(), "{summary:?}");
    assert!(
        secs < 3.0,
        "Ctrl-C took {secs:.1} s to stop a run waiting for a lock"
    );
    holder.join().unwrap();
}

/// Starts this test binary as a prunus running a stage that starts a background `sleep`;
/// `how` says how the host ends (see `host`).
fn host(dir: &Path, how: &str) -> Child {
    std::fs::write(
        dir.join("stage.sh"),
        "echo $$ > sh.pid\nsleep 30 &\necho $! > bg.pid\nwait\n",
    )
    .unwrap();
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "host_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PRUNUS_TEST_HOST", dir)
        .env("PRUNUS_TEST_HOST_END", how)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Entry point of the host processes: runs the stage, and with `exit` quits the process (as
/// a second Ctrl-C does) once the stage's processes are there.
#[test]
#[ignore = "run as a child process by the tests below"]
fn host_process() {
    let Some(dir) = std::env::var_os("PRUNUS_TEST_HOST").map(PathBuf::from) else {
        return;
    };
    if std::env::var("PRUNUS_TEST_HOST_END").as_deref() == Ok("exit") {
        let d = dir.clone();
        std::thread::spawn(move || {
            pid_in(&d, "bg.pid", Duration::from_secs(20));
            std::process::exit(130);
        });
    }
    let script = std::fs::read_to_string(dir.join("stage.sh")).unwrap();
    run(&dir, &script, no_cancel());
}

#[test]
fn a_killed_or_exiting_prunus_takes_the_stage_s_processes_with_it() {
    for how in ["kill -9", "exit"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = host(dir.path(), how);
        let pids = [
            pid_in(dir.path(), "sh.pid", Duration::from_secs(20)),
            pid_in(dir.path(), "bg.pid", Duration::from_secs(20)),
        ];
        if how == "kill -9" {
            child.kill().unwrap();
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "{how}: {status}");
        assert_eq!(
            survivors(&pids, Duration::from_secs(2)),
            [] as [i32; 0],
            "{how}"
        );
    }
}
