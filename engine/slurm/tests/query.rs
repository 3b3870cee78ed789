//! [`Query`] against the single-node Slurm cluster the test command starts (tests/setup/
//! 30-slurm.sh; skipped with a note when `PRUNUS_TEST_SLURM` is unset): how finished array
//! tasks ended, from the real `sacct` of a cluster with accounting, and from `scontrol show
//! job` when the same cluster is seen with accounting off. The formats parsed are the ones
//! this Slurm prints, not remembered examples.

use std::process::Command;
use std::time::{Duration, Instant};

use prunus_slurm::query::Query;
use prunus_slurm::state::{self, TaskId};

/// Submits an array of two tasks (exit 0 and exit 3, 5 minutes each at most) and waits until
/// sacct says both ended.
fn finished_array() -> Vec<TaskId> {
    let out = Command::new("sbatch")
        .args(["--parsable", "--array=0-1", "--time=5", "-o", "/dev/null"])
        .args(["--wrap", "exit $((SLURM_ARRAY_TASK_ID * 3))"])
        .output()
        .expect("running sbatch");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let array = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let tasks: Vec<TaskId> = (0..2)
        .map(|i| format!("{array}_{i}").parse().unwrap())
        .collect();
    let t = Instant::now();
    loop {
        let ended = state::parse_sacct(&sacct(&tasks));
        if tasks
            .iter()
            .all(|t| ended.get(t).is_some_and(|e| e.is_final()))
        {
            return tasks;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the tasks did not end"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The real sacct's lines for `tasks`, as the query asks for them.
fn sacct(tasks: &[TaskId]) -> String {
    let ids: Vec<String> = tasks.iter().map(|t| t.to_string()).collect();
    let out = Command::new("sacct")
        .args([
            "-n",
            "-P",
            "-X",
            "-o",
            "JobID,State,ExitCode,Elapsed,Timelimit,Reason",
        ])
        .args(["-j", &ids.join(",")])
        .output()
        .expect("running sacct");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn finished_tasks_are_read_from_sacct_and_without_accounting_from_scontrol() {
    if std::env::var_os("PRUNUS_TEST_SLURM").is_none() {
        eprintln!("PRUNUS_TEST_SLURM is not set (bash tests/run starts a Slurm cluster): skipped");
        return;
    }
    let tasks = finished_array();
    let check = |how: &str| {
        let ended = Query::default().ended(&tasks);
        let (ok, bad) = (&ended[&tasks[0]], &ended[&tasks[1]]);
        assert_eq!(
            (ok.state.as_str(), ok.exit_code),
            ("COMPLETED", Some(0)),
            "{how}"
        );
        assert_eq!(
            (bad.state.as_str(), bad.exit_code),
            ("FAILED", Some(3)),
            "{how}"
        );
        assert_eq!(bad.limit_s, Some(300), "{how}: {bad:?}");
    };
    // Accounting is on: sacct itself answers with these (parsed as the query parses them).
    let from_sacct = state::parse_sacct(&sacct(&tasks));
    assert_eq!(from_sacct.len(), 2, "{from_sacct:?}");
    check("sacct");
    // Seen with accounting off, sacct refuses and the controller's memory answers the same.
    let conf = std::path::PathBuf::from(std::env::var("SLURM_CONF").unwrap());
    let noacct = conf.with_file_name("slurm-noacct.conf");
    // SAFETY: this file's only test; no other thread reads the environment now.
    unsafe { std::env::set_var("SLURM_CONF", &noacct) };
    assert!(
        !Command::new("sacct")
            .args(["-n", "-X"])
            .output()
            .unwrap()
            .status
            .success()
    );
    check("scontrol");
}
