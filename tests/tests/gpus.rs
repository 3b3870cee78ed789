//! GPUs handed out by the local executor: `--gpus N --runs-per-gpu K` runs up to N·K stages
//! that need a GPU side by side, and each sees only its own GPU in `CUDA_VISIBLE_DEVICES`.
//! No GPU is needed: the stages are programs that record what they were given.

use prunus_tests::Project;

const PIPELINE: &str = r#"
pipeline "gpus"
sweep "s" {
    i from=0 to=3
}
stage "job" {
    kind "command"
    over "s"
    run "sh" "-c" "date +%s.%N > $PRUNUS_OUT/start; echo $CUDA_VISIBLE_DEVICES > $PRUNUS_OUT/gpu; sleep 1.5; date +%s.%N > $PRUNUS_OUT/end"
    outputs "start" "gpu" "end"
    resources gpus=1
}
"#;

/// (start, end, gpu) of each of the four stages.
fn run(args: &[&str]) -> Vec<(f64, f64, String)> {
    let p = Project::new();
    p.write("gpus.kdl", PIPELINE);
    let mut all = vec!["run", "--cpus", "8", "gpus.kdl"];
    all.extend(args);
    p.prunus(&all).ok();
    (0..4)
        .map(|i| {
            let file = |f: &str| {
                p.read(&format!("results/gpus/job/i{i}/{f}"))
                    .trim()
                    .to_string()
            };
            (
                file("start").parse().unwrap(),
                file("end").parse().unwrap(),
                file("gpu"),
            )
        })
        .collect()
}

/// The most stages that ran at the same moment.
fn most_at_once(runs: &[(f64, f64, String)]) -> usize {
    runs.iter()
        .map(|(t, ..)| runs.iter().filter(|(s, e, _)| s <= t && t < e).count())
        .max()
        .unwrap()
}

#[test]
fn runs_share_gpus_and_see_only_their_own() {
    let runs = run(&["--gpus", "2", "--runs-per-gpu", "2"]);
    let mut gpus: Vec<&str> = runs.iter().map(|(_, _, g)| g.as_str()).collect();
    gpus.sort();
    assert_eq!(gpus, ["0", "0", "1", "1"], "two stages per GPU");
    assert_eq!(most_at_once(&runs), 4, "all four side by side: {runs:?}");
}

#[test]
fn one_run_per_gpu_by_default() {
    let runs = run(&["--gpus", "2"]);
    assert_eq!(most_at_once(&runs), 2, "{runs:?}");
    for (_, _, g) in &runs {
        assert!(g == "0" || g == "1", "{g}");
    }
}
