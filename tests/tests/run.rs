//! `prunus run`, `plan`, `explain`: caching, incremental reruns, failures, cancellation and
//! concurrent runs on one store, through the real binary.

use std::time::{Duration, Instant};

use prunus_tests::{Project, finish};

/// 2 games x 3 seeds of a trivial stage, a fan-in over all of them, and a `command` stage
/// reading one game's outputs.
const GRID: &str = r#"
pipeline "grid"
sweep "grid" {
    game "breakout" "asterix"
    seed from=0 to=2
}
stage "gen" {
    kind "test/echo"
    over "grid"
    value "{game}"
    sleep-ms 0
}
stage "all" {
    kind "test/echo"
    needs "gen"
    value "fan-in"
}
stage "count" {
    kind "command"
    needs "gen" game="breakout"
    run "sh" "count.sh"
    deps "count.sh"
    outputs "n.txt"
}
"#;

const COUNT: &str = r#"python3 -c "import json,os; print(len(json.load(open(os.environ['PRUNUS_INPUTS']))))" > "$PRUNUS_OUT/n.txt"
echo counted
"#;

fn grid() -> Project {
    let p = Project::new();
    p.write("grid.kdl", GRID);
    p.write("count.sh", COUNT);
    p
}

#[test]
fn second_run_is_all_cached_and_results_are_exported() {
    let p = grid();
    assert_eq!(p.prunus(&["run", "grid.kdl"]).ok().counts(), (8, 0, 0));
    assert_eq!(p.prunus(&["run", "grid.kdl"]).ok().counts(), (0, 8, 0));
    let plan = p.prunus(&["plan", "grid.kdl"]).ok();
    assert!(
        plan.stdout.contains("0 of 8 instances to run"),
        "{}",
        plan.stdout
    );
    // Sink stages are exported; the fan-in saw all six upstream instances.
    let all = p.read("results/grid/all/out.txt");
    assert!(
        all.matches("breakout").count() + all.matches("asterix").count() >= 6,
        "{all}"
    );
    assert_eq!(p.read("results/grid/count/n.txt").trim(), "3");
    // The log of the command stage was captured in the store.
    let show = p.prunus(&["show", "count", "--log"]).ok();
    assert!(show.stdout.contains("counted"), "{}", show.stdout);
}

#[test]
fn editing_a_parameter_reruns_only_what_depends_on_it() {
    let p = grid();
    p.prunus(&["run", "grid.kdl"]).ok();
    p.write(
        "grid.kdl",
        &GRID.replace("value \"fan-in\"", "value \"fan-in 2\""),
    );
    let plan = p.prunus(&["plan", "grid.kdl"]).ok();
    assert!(
        plan.stdout.contains("1 of 8 instances to run"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("params changed (value: fan-in -> fan-in 2)"),
        "{}",
        plan.stdout
    );
    let explain = p.prunus(&["explain", "grid.kdl", "all"]).ok();
    assert!(explain.stdout.contains("value"), "{}", explain.stdout);
    assert_eq!(p.prunus(&["run", "grid.kdl"]).ok().counts(), (1, 7, 0));

    // Editing a file in `deps` reruns the command stage alone.
    p.write("count.sh", &format!("{COUNT}echo edited\n"));
    assert_eq!(p.prunus(&["run", "grid.kdl"]).ok().counts(), (1, 7, 0));
}

#[test]
fn upstream_rerun_with_identical_outputs_stops_there() {
    let p = grid();
    p.prunus(&["run", "grid.kdl"]).ok();
    // sleep-ms changes every gen key but not its output: the fan-in is not rerun (early
    // cutoff), and neither is the command stage, whose inputs are byte-identical.
    p.write("grid.kdl", &GRID.replace("sleep-ms 0", "sleep-ms 1"));
    assert_eq!(p.prunus(&["run", "grid.kdl"]).ok().counts(), (6, 2, 0));
    // A change that alters gen's outputs propagates to everything downstream.
    p.write(
        "grid.kdl",
        &GRID.replace("value \"{game}\"", "value \"{game}!\""),
    );
    assert_eq!(p.prunus(&["run", "grid.kdl"]).ok().counts(), (8, 0, 0));
}

const FAILING: &str = r#"
pipeline "f"
sweep "s" { seed from=0 to=3; }
stage "ok" { kind "test/echo"; over "s"; sleep-ms 50; }
stage "bad" { kind "test/echo"; fail #true; value "doomed"; }
stage "boom" { kind "test/echo"; panic #true; }
stage "lazy" { kind "test/echo"; skip-output #true; }
stage "after" { kind "test/echo"; needs "bad"; }
"#;

#[test]
fn failures_keep_siblings_and_publish_nothing_half_done() {
    let p = Project::new();
    p.write("f.kdl", FAILING);
    let r = p.prunus(&["run", "--keep-going", "f.kdl"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.counts(), (4, 0, 3));
    // The error and the failing stage's log tail are shown.
    assert!(
        r.stderr.contains("test/echo was asked to fail"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("bad echoes \"doomed\""), "{}", r.stderr);
    // A panic is a failure of that stage, with where it happened, not a crash of prunus.
    assert!(
        r.stderr.contains("panicked at engine/src/kinds/echo.rs"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("stack backtrace"), "{}", r.stderr);
    // Declared outputs missing: nothing published.
    assert!(r.stderr.contains("nothing was published"), "{}", r.stderr);
    assert!(r.stderr.contains("1 not run"), "{}", r.stderr);
    let ls = p.prunus(&["ls"]).ok().stdout;
    assert_eq!(ls.lines().count(), 4, "{ls}");
    assert!(ls.lines().all(|l| l.starts_with("f:ok/seed")), "{ls}");
    // The next run only retries the failures.
    let again = p.prunus(&["run", "--keep-going", "f.kdl"]);
    assert_eq!(again.counts(), (0, 4, 3));
    assert!(p.prunus(&["store", "verify"]).code == 0);
}

const SLOW: &str = r#"
pipeline "slow"
sweep "s" { seed from=0 to=5; }
stage "work" { kind "test/echo"; over "s"; sleep-ms 700; }
"#;

fn wait_for_results(p: &Project, n: usize, within: Duration) {
    let t = Instant::now();
    while t.elapsed() < within {
        let ls = p.prunus(&["ls"]).stdout;
        if ls.lines().count() >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("fewer than {n} results after {within:?}");
}

#[test]
fn interrupted_run_publishes_nothing_half_done_and_resumes() {
    for signal in ["INT", "KILL"] {
        let p = Project::new();
        p.write("slow.kdl", SLOW);
        let child = p.spawn(&["run", "--cpus", "2", "slow.kdl"]);
        let pid = child.id().to_string();
        wait_for_results(&p, 2, Duration::from_secs(20));
        let kill = std::process::Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        let r = finish(child);
        assert_ne!(
            r.code, 0,
            "{signal}: the run was not interrupted\n{}",
            r.stderr
        );
        if signal == "INT" {
            assert!(
                r.stderr.contains("interrupted") || r.stderr.contains("cancelled"),
                "{}",
                r.stderr
            );
        }
        let done = p.prunus(&["ls"]).ok().stdout.lines().count();
        assert!((2..6).contains(&done), "{signal}: {done} results");
        let verify = p.prunus(&["store", "verify"]);
        assert_eq!(
            verify.code, 0,
            "{signal}: {}\n{}",
            verify.stdout, verify.stderr
        );
        assert_eq!(
            p.prunus(&["run", "slow.kdl"]).ok().counts(),
            (6 - done, done, 0),
            "{signal}"
        );
    }
}

#[test]
fn two_runs_on_one_store_never_run_a_stage_twice() {
    let p = Project::new();
    // Each instance appends its name to a file outside the store, then sleeps.
    p.write(
        "twice.kdl",
        r#"
pipeline "twice"
sweep "s" { seed from=0 to=5; }
stage "work" {
    kind "command"
    over "s"
    run "sh" "-c" "echo {seed} >> ran.txt; sleep 0.3; echo {seed} > $PRUNUS_OUT/out.txt"
    outputs "out.txt"
}
"#,
    );
    let a = p.spawn(&["run", "--cpus", "2", "twice.kdl"]);
    let b = p.spawn(&["run", "--cpus", "2", "twice.kdl"]);
    let (a, b) = (finish(a), finish(b));
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let mut ran: Vec<String> = p.read("ran.txt").lines().map(String::from).collect();
    ran.sort();
    assert_eq!(ran, ["0", "1", "2", "3", "4", "5"], "an instance ran twice");
    let (ra, ca, _) = a.counts();
    let (rb, cb, _) = b.counts();
    assert_eq!(ra + rb, 6);
    assert_eq!(ca + cb, 6);
}

#[test]
fn targets_run_only_what_they_need() {
    let p = grid();
    let r = p.prunus(&["run", "grid.kdl", "count"]).ok();
    assert_eq!(r.counts(), (4, 0, 0));
    let r = p.prunus(&["run", "grid.kdl", "gen/asterix"]).ok();
    assert_eq!(r.counts(), (3, 0, 0));
    let r = p.prunus(&["run", "grid.kdl", "nonesuch"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no instance is named `nonesuch`"),
        "{}",
        r.stderr
    );
}
