//! prunus-stats against rliable itself (PyPI rliable 1.2.0) on random score matrices: the
//! point estimates must be identical (to 1e-12, float summation order differs) and the 95%
//! intervals must agree within bootstrap noise. Both sides bootstrap with their own random
//! numbers, so each interval end is a Monte-Carlo estimate of a percentile: with R
//! repetitions and a normal-shaped bootstrap distribution its standard error is
//! 0.68% x sqrt(10,000 / R) of the interval width, and the difference of the two sides' ends
//! has sqrt(2) times that (1.4% of the width at R = 5,000, 3% at 1,000). The tolerance is
//! about 6 such standard errors: 6% of the width at 10,000 repetitions, 8% at 5,000 and 15%
//! at 1,000 (profiles, which move in steps of 1/entries, also accept one step). A wrong
//! definition (another quantile, unstratified resampling, another trimming) moves the ends
//! by far more. Everything is seeded on both sides, so the test is deterministic.

mod reference;

use prunus_stats::{Bootstrap, Metric, Profile, Scores, improvement};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// A `(runs x tasks)` matrix of scores with a different scale per task, drawn from `kind`.
fn random_matrix(rng: &mut ChaCha8Rng, runs: usize, tasks: usize, kind: &str) -> Vec<Vec<f64>> {
    let scale: Vec<f64> = (0..tasks).map(|_| rng.random_range(0.2..2.0)).collect();
    (0..runs)
        .map(|_| {
            (0..tasks)
                .map(|t| {
                    let u: f64 = rng.random();
                    match kind {
                        // heavy right tail, like human-normalized Atari scores
                        "exponential" => -scale[t] * (1.0 - u).ln(),
                        // many ties, like scores of short episodes
                        "ties" => (u * 4.0).floor() * scale[t].round(),
                        _ => scale[t] * (u - 0.3),
                    }
                })
                .collect()
        })
        .collect()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol,
        "{what}: prunus {a} vs rliable {b} (tolerance {tol})"
    );
}

fn check_interval(ours: (f64, f64, f64), theirs: &Value, rel: f64, what: &str) {
    let t: Vec<f64> = serde_json::from_value(theirs.clone()).unwrap();
    close(
        ours.0,
        t[0],
        1e-12 * (1.0 + t[0].abs()),
        &format!("{what} estimate"),
    );
    let width = (t[2] - t[1]).max(1e-12);
    close(ours.1, t[1], rel * width, &format!("{what} low"));
    close(ours.2, t[2], rel * width, &format!("{what} high"));
}

#[test]
fn aggregates_profiles_and_improvement_match_rliable() {
    let mut rng = ChaCha8Rng::seed_from_u64(2021);
    let cases = [(5, 20, "uniform"), (3, 7, "exponential"), (10, 26, "ties")];
    let matrices: Vec<Vec<Vec<f64>>> = cases
        .iter()
        .map(|&(r, t, k)| random_matrix(&mut rng, r, t, k))
        .collect();
    let taus = [0.0, 0.25, 0.5, 1.0, 2.0];
    let (x, y) = (
        random_matrix(&mut rng, 5, 5, "uniform"),
        random_matrix(&mut rng, 4, 5, "ties"),
    );

    let mut requests: Vec<Value> = matrices
        .iter()
        .map(|m| json!({"op": "aggregate", "scores": reference::matrix(m), "reps": 5_000}))
        .collect();
    requests.push(json!({"op": "profile", "scores": reference::matrix(&matrices[0]), "taus": taus, "reps": 5_000}));
    requests.push(json!({"op": "profile", "scores": reference::matrix(&matrices[1]), "taus": taus, "reps": 5_000, "runs": false}));
    requests.push(json!({"op": "improvement", "x": reference::matrix(&x), "y": reference::matrix(&y), "reps": 1_000}));
    let theirs = reference::rliable(&Value::from(requests));
    let seconds: Vec<&Value> = theirs.iter().map(|t| &t["seconds"]).collect();
    eprintln!("rliable took {seconds:?} s");

    let bootstrap = Bootstrap {
        reps: 5_000,
        confidence: 0.95,
        seed: 3,
    };
    for (case, (m, t)) in cases.iter().zip(matrices.iter().zip(&theirs)) {
        let scores = Scores::from_runs_by_tasks(m).unwrap();
        for metric in Metric::ALL {
            let i = bootstrap.interval(&scores, metric);
            let what = format!("{} on {case:?}", metric.name());
            check_interval((i.estimate, i.low, i.high), &t[metric.name()], 0.08, &what);
        }
    }

    for (k, (profile, m)) in [
        (Profile::RunScores, &matrices[0]),
        (Profile::TaskMeans, &matrices[1]),
    ]
    .into_iter()
    .enumerate()
    {
        let t = &theirs[cases.len() + k];
        let ours = profile.intervals(&Scores::from_runs_by_tasks(m).unwrap(), &taus, &bootstrap);
        for (j, i) in ours.iter().enumerate() {
            let what = format!("{profile:?} profile at tau {}", taus[j]);
            let theirs = json!([t["estimate"][j], t["low"][j], t["high"][j]]);
            // Profiles take few values (fractions of 100 or 7 scores): allow one step too.
            let step = 1.0 / m.len() as f64 / m[0].len() as f64;
            let step = if profile == Profile::RunScores {
                step
            } else {
                1.0 / m[0].len() as f64
            };
            let tol = (0.08 * (theirs[2].as_f64().unwrap() - theirs[1].as_f64().unwrap()))
                .max(step)
                + 1e-9;
            close(i.estimate, theirs[0].as_f64().unwrap(), 1e-12, &what);
            close(
                i.low,
                theirs[1].as_f64().unwrap(),
                tol,
                &format!("{what} low"),
            );
            close(
                i.high,
                theirs[2].as_f64().unwrap(),
                tol,
                &format!("{what} high"),
            );
        }
    }

    let poi = improvement::probability_of_improvement(
        &Scores::from_runs_by_tasks(&x).unwrap(),
        &Scores::from_runs_by_tasks(&y).unwrap(),
        &Bootstrap {
            reps: 1_000,
            ..bootstrap
        },
    )
    .unwrap();
    check_interval(
        (poi.estimate, poi.low, poi.high),
        &theirs[cases.len() + 2]["poi"],
        0.15,
        "P(X > Y)",
    );
}

#[test]
fn curves_match_rliable_pointwise() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (runs, tasks, points) = (5, 12, 6);
    // scores[run][task][point]: learning curves rising with the point index.
    let curves: Vec<Vec<Vec<f64>>> = (0..runs)
        .map(|_| {
            (0..tasks)
                .map(|_| {
                    (0..points)
                        .map(|p| p as f64 * rng.random_range(0.0..1.0))
                        .collect()
                })
                .collect()
        })
        .collect();
    let request = json!([{"op": "curve", "scores": curves, "reps": 10_000}]);
    let theirs = &reference::rliable(&request)[0];
    let sets: Vec<Scores> = (0..points)
        .map(|p| {
            Scores::from_tasks(
                (0..tasks)
                    .map(|t| (0..runs).map(|r| curves[r][t][p]).collect())
                    .collect(),
            )
            .unwrap()
        })
        .collect();
    let ours = Bootstrap {
        reps: 10_000,
        confidence: 0.95,
        seed: 1,
    }
    .curve(&sets, Metric::Iqm);
    for (p, i) in ours.iter().enumerate() {
        let t = json!([theirs["estimate"][p], theirs["low"][p], theirs["high"][p]]);
        check_interval(
            (i.estimate, i.low, i.high),
            &t,
            0.06,
            &format!("IQM at point {p}"),
        );
    }
}
