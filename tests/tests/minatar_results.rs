//! The MinAtar study's committed results (`docs/minatar/`): `docs/minatar/runs.kdl`
//! aggregates the committed runs through the binary, and the MinAtar normalization
//! (`stages/stats/src/normalize.rs`) holds what the committed reference runs give.

use std::path::Path;

use prunus_stats::Normalization;
use prunus_tests::Project;

#[test]
fn the_minatar_reference_scores_are_what_the_committed_reference_runs_give() {
    let p = Project::new();
    let runs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/minatar/runs.kdl");
    let runs = runs.to_str().unwrap();
    p.prunus(&["run", "-q", runs, "reference-scores", "fig1-iqm"])
        .ok();
    let summary = p.read("results/minatar-runs/reference-scores/summary.csv");
    assert_eq!(summary.lines().count(), 6, "{summary}");
    for line in summary.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (game, mean) = (f[0], f[2].parse::<f64>().unwrap());
        // normalize.rs keeps the two seeds' mean to 3 significant digits.
        let n = Normalization::Minatar.normalize(game, mean).unwrap();
        assert!(
            (n - 1.0).abs() < 0.005,
            "{game}: mean {mean} normalizes to {n}"
        );
    }
    // Fig. 1 so far: an IQM for each width and sparsity.
    let fig1 = p.read("results/minatar-runs/fig1-iqm/summary.csv");
    let iqms: Vec<&str> = fig1.lines().filter(|l| l.contains(",iqm,")).collect();
    assert_eq!(iqms.len(), 4, "{fig1}");
}
