//! Offline RL through the binary: a `collect` stage records a short MinAtar DQN run as a
//! sharded dataset, `train/cql` and `train/cql-c51` train from it (`needs "collect"`), an
//! aggregate scores them; a second run is all cached, and a new offline stage reuses the
//! dataset without recollecting.

use prunus_tests::Project;

const OFFLINE: &str = r#"
pipeline "offline"
sweep "games" {
    game "minatar/breakout"
}
stage "collect" {
    kind "collect"
    over "games"
    env "{game}"
    steps 3_000
    iterations 2
    min-replay 500
    epsilon.decay 1_000
    shard-size 1_000
}
sweep "runs" {
    game "minatar/breakout"
    sparsity 0.0 0.9
}
stage "cql" {
    kind "train/cql"
    over "runs"
    needs "collect"
    steps 400
    iterations 2
    eval-steps 200
    dataset.fraction 0.5
    prune "gmp" sparsity="{sparsity}" frequency=50
    probe-batch 32
}
stage "iqm" {
    kind "aggregate/iqm"
    needs "cql"
    returns "eval"
    group-by "sparsity"
    reps 100
}
"#;

#[test]
fn collect_then_cql_through_the_binary() {
    let p = Project::new();
    p.write("offline.kdl", OFFLINE);
    assert_eq!(p.prunus(&["run", "offline.kdl"]).ok().counts(), (4, 0, 0));
    let summary = p.read("results/offline/iqm/summary.csv");
    assert!(summary.lines().count() >= 3, "{summary}");
    // Everything is cached the second time.
    assert_eq!(p.prunus(&["run", "offline.kdl"]).ok().counts(), (0, 4, 0));
    // A new offline agent on the same dataset: only it runs, the collection is reused.
    p.write(
        "offline.kdl",
        &format!(
            "{OFFLINE}\nstage \"c51\" {{\n    kind \"train/cql-c51\"\n    over \"games\"\n    needs \"collect\"\n    steps 200\n    iterations 1\n    eval-steps 100\n    probe-batch 16\n}}\n"
        ),
    );
    assert_eq!(p.prunus(&["run", "offline.kdl"]).ok().counts(), (1, 4, 0));
    // A bad offline parameter is reported at plan time, naming it.
    p.write(
        "bad.kdl",
        &OFFLINE.replace("dataset.fraction 0.5", "dataset.fraction 1.5"),
    );
    let plan = p.prunus(&["plan", "bad.kdl"]);
    assert!(
        plan.stderr.contains("dataset.fraction") || plan.stdout.contains("dataset.fraction"),
        "{}\n{}",
        plan.stdout,
        plan.stderr
    );
}
