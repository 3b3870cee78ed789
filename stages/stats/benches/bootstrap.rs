//! The statistics stage's workload, prunus vs rliable in the same run: IQM with 95%
//! stratified bootstrap intervals at each of 200 points of the sample-efficiency curves of
//! 60 games x 5 seeds, 50,000 repetitions (rliable's default). rliable gets its fastest form
//! (one vectorised `trim_mean` over all points per replicate). Prints both wall times, the
//! speed-up, and how far apart the numbers are.
//!
//! `cargo bench -p prunus-stats --bench bootstrap` (needs rliable: `bash tests/setup/00-python.sh`).
//! `PRUNUS_BENCH_REPS` overrides the number of repetitions; `PRUNUS_BENCH_RLIABLE=0` times
//! prunus alone.

#[path = "../tests/reference/mod.rs"]
mod reference;

use std::time::Instant;

use prunus_stats::{Bootstrap, Metric, Scores};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

fn main() {
    let (games, seeds, points) = (60, 5, 200);
    let reps: usize = std::env::var("PRUNUS_BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50_000);
    let mut rng = ChaCha8Rng::seed_from_u64(60);
    // Human-normalized-like learning curves: per-game skill, noisy per seed, rising.
    let skill: Vec<f64> = (0..games)
        .map(|_| -(1.0 - rng.random::<f64>()).ln())
        .collect();
    let curves: Vec<Vec<Vec<f64>>> = (0..seeds)
        .map(|_| {
            (0..games)
                .map(|g| {
                    (0..points)
                        .map(|p| {
                            skill[g]
                                * (p as f64 / points as f64).sqrt()
                                * rng.random_range(0.5..1.5)
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let sets: Vec<Scores> = (0..points)
        .map(|p| {
            Scores::from_tasks(
                (0..games)
                    .map(|g| (0..seeds).map(|s| curves[s][g][p]).collect())
                    .collect(),
            )
            .unwrap()
        })
        .collect();

    println!(
        "IQM curve, {games} games x {seeds} seeds x {points} points, {reps} bootstrap repetitions"
    );
    let bootstrap = Bootstrap {
        reps,
        confidence: 0.95,
        seed: 0,
    };
    let start = Instant::now();
    let ours = bootstrap.curve(&sets, Metric::Iqm);
    let prunus_s = start.elapsed().as_secs_f64();
    println!(
        "prunus : {prunus_s:8.2} s ({} threads)",
        rayon::current_num_threads()
    );
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let start = Instant::now();
    let again = single.install(|| bootstrap.curve(&sets, Metric::Iqm));
    let prunus_1 = start.elapsed().as_secs_f64();
    println!("prunus : {prunus_1:8.2} s (1 thread)");
    assert_eq!(ours, again, "results depend on the number of threads");

    if std::env::var("PRUNUS_BENCH_RLIABLE").is_ok_and(|v| v == "0") {
        return;
    }
    let theirs = &reference::rliable(&json!([{"op": "curve", "scores": curves, "reps": reps}]))[0];
    let rliable_s = theirs["seconds"].as_f64().unwrap();
    println!("rliable: {rliable_s:8.2} s (rliable 1.2.0, numpy, one process)");
    println!(
        "speed-up: {:.1}x ({:.1}x on one thread)",
        rliable_s / prunus_s,
        rliable_s / prunus_1
    );

    let column = |name: &str| -> Vec<f64> { serde_json::from_value(theirs[name].clone()).unwrap() };
    let (est, low, high) = (column("estimate"), column("low"), column("high"));
    let mut max_estimate = 0.0f64;
    let mut max_end = 0.0f64;
    for (p, i) in ours.iter().enumerate() {
        max_estimate = max_estimate.max((i.estimate - est[p]).abs());
        let width = (high[p] - low[p]).max(1e-12);
        max_end = max_end
            .max((i.low - low[p]).abs() / width)
            .max((i.high - high[p]).abs() / width);
    }
    println!("max |estimate difference|: {max_estimate:.2e}");
    println!(
        "max |CI end difference| / CI width: {:.2}% (bootstrap noise)",
        100.0 * max_end
    );
}
