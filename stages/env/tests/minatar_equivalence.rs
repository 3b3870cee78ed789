//! prunus's MinAtar against the reference Python package `minatar` (run as a subprocess; see
//! `reference/mod.rs` for how the interpreter is found; the test fails if it is missing).
//!
//! 1. Step for step: with the same seed and the same random actions (all 6 actions, and the
//!    minimal set), every observation, reward and terminal of 3,000 steps per game must be
//!    identical, sticky actions (0.1) included. This holds because the games draw from numpy's
//!    `RandomState` stream in the reference's order.
//! 2. In distribution, from *different* seeds (so the check does not rest on 1): random-policy
//!    episode returns and lengths per game compared with a two-sample Kolmogorov-Smirnov test,
//!    and each observation channel's mean occupancy (active cells per step, averaged per
//!    episode) with a Welch z-test. Every p-value must exceed its Bonferroni-corrected level:
//!    0.01 family-wise for the 10 KS tests (0.001 each) and 0.01 for the channel tests
//!    (0.01/31 each). The seeds are fixed, so the outcome is deterministic (not flaky); the
//!    sample sizes (100-2,000 episodes per game) keep the test under half a minute.

mod reference;

use prunus_env::minatar::np_random::NpRandom;
use prunus_env::{Env, EnvOptions, Observation};

const GAMES: [(&str, usize); 5] = [
    ("asterix", 4),
    ("breakout", 4),
    ("freeway", 7),
    ("seaquest", 10),
    ("space_invaders", 6),
];
/// As in `minatar_reference.py`: the random policy's stream is `RandomState(seed + 1000003)`.
const POLICY_SEED_OFFSET: u64 = 1_000_003;

fn frame(env: &dyn Env) -> Vec<u8> {
    match env.observation() {
        Observation::Binary(b) => b.to_vec(),
        other => panic!("MinAtar frames are binary, got {other:?}"),
    }
}

fn minatar(game: &str, full_action_set: Option<bool>) -> Box<dyn Env> {
    let opts = EnvOptions {
        full_action_set,
        ..EnvOptions::default()
    };
    prunus_env::make(&format!("minatar/{game}"), &opts).unwrap()
}

/// The reference's records replayed through prunus: (action or 255 after a reset, reward,
/// terminal, frame).
fn check_trace(python: &std::path::PathBuf, game: &str, channels: usize, seed: u64, minimal: bool) {
    const STEPS: usize = 3000;
    let bytes = reference::run(
        python,
        "trace",
        &[
            game.into(),
            seed.to_string(),
            STEPS.to_string(),
            (minimal as u8).to_string(),
        ],
    );
    let record = 3 + channels * 100;
    assert_eq!(bytes.len() % record, 0, "{game}: malformed trace");
    let mut env = minatar(game, if minimal { Some(false) } else { None });
    assert_eq!(env.spec().shape, [channels, 10, 10]);
    let mut policy = NpRandom::new(seed + POLICY_SEED_OFFSET);
    let mut episodes = 0;
    env.reset(Some(seed));
    for (t, rec) in bytes.chunks(record).enumerate() {
        let (head, want) = rec.split_at(3);
        if head[0] == 255 {
            if t > 0 {
                env.reset(None);
                episodes += 1;
            }
        } else {
            let action =
                policy.randint(env.spec().action_space.discrete().unwrap() as u32) as usize;
            assert_eq!(action, head[0] as usize, "{game}: policy streams diverged");
            let step = env.step(prunus_env::Action::Discrete(action)).unwrap();
            assert_eq!(
                (step.reward as u8, step.terminal as u8),
                (head[1], head[2]),
                "{game} (minimal={minimal}): reward/terminal differ at record {t}"
            );
            assert!(!step.truncated);
        }
        assert!(
            frame(env.as_ref()) == want,
            "{game} (minimal={minimal}): observation differs at record {t}"
        );
    }
    assert!(
        episodes >= 1 || game == "freeway",
        "{game}: trace too short"
    );
}

#[test]
fn minatar_matches_the_reference_step_for_step() {
    let python = reference::python();
    std::thread::scope(|s| {
        for (i, &(game, channels)) in GAMES.iter().enumerate() {
            let python = &python;
            s.spawn(move || {
                check_trace(python, game, channels, 11 + i as u64, false);
                check_trace(python, game, channels, 21 + i as u64, true);
            });
        }
    });
}

/// Per-episode returns, lengths and per-channel mean occupancy under the uniform random policy.
struct Rollouts {
    returns: Vec<f64>,
    lengths: Vec<f64>,
    occupancy: Vec<Vec<f64>>,
}

fn prunus_rollouts(game: &str, seed: u64, episodes: usize) -> Rollouts {
    let mut env = minatar(game, None);
    let channels = env.spec().shape[0];
    let mut policy = NpRandom::new(seed + POLICY_SEED_OFFSET);
    env.reset(Some(seed));
    let mut out = Rollouts {
        returns: vec![],
        lengths: vec![],
        occupancy: vec![],
    };
    for _ in 0..episodes {
        let (mut ret, mut len, mut occ) = (0.0, 0.0, vec![0.0; channels]);
        loop {
            let step = env
                .step(prunus_env::Action::Discrete(policy.randint(6) as usize))
                .unwrap();
            ret += step.reward as f64;
            len += 1.0;
            for (c, cells) in frame(env.as_ref()).chunks(100).enumerate() {
                occ[c] += cells.iter().map(|&b| b as f64).sum::<f64>();
            }
            if step.terminal {
                break;
            }
        }
        out.returns.push(ret);
        out.lengths.push(len);
        out.occupancy.push(occ.iter().map(|o| o / len).collect());
        env.reset(None);
    }
    out
}

fn reference_rollouts(python: &std::path::PathBuf, game: &str, seed: u64, n: usize) -> Rollouts {
    let json = reference::run(
        python,
        "stats",
        &[game.into(), seed.to_string(), n.to_string()],
    );
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let nums = |key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    Rollouts {
        returns: nums("returns"),
        lengths: nums("lengths"),
        occupancy: v["occupancy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            })
            .collect(),
    }
}

/// Two-sample Kolmogorov-Smirnov statistic D and its asymptotic p-value (Kolmogorov's
/// distribution with Stephens' small-sample correction; conservative for discrete data).
fn ks_test(a: &[f64], b: &[f64]) -> (f64, f64) {
    let sorted = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let en = (n * m / (n + m)).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    let p = if lambda < 0.3 {
        1.0
    } else {
        let mut sum = 0.0;
        for k in 1..=100 {
            let term = 2.0 * (-2.0 * (k * k) as f64 * lambda * lambda).exp();
            sum += if k % 2 == 1 { term } else { -term };
            if term < 1e-12 {
                break;
            }
        }
        sum.clamp(0.0, 1.0)
    };
    (d, p)
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (
        mean,
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

/// Two-sided p-value of Welch's z statistic for a difference in means (normal approximation:
/// at least 100 episodes per side).
fn welch_p(a: &[f64], b: &[f64]) -> f64 {
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    let se = (va / a.len() as f64 + vb / b.len() as f64).sqrt();
    if se == 0.0 {
        return if ma == mb { 1.0 } else { 0.0 };
    }
    erfc((ma - mb).abs() / se / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[test]
fn minatar_random_policy_statistics_match_the_reference() {
    const KS_ALPHA: f64 = 0.01 / 10.0;
    const CHANNEL_ALPHA: f64 = 0.01 / 31.0;
    let episodes = |game: &str| match game {
        "breakout" => 2000,
        "freeway" => 100,
        "space_invaders" => 500,
        _ => 1000,
    };
    let python = reference::python();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = GAMES
            .iter()
            .map(|&(game, _)| {
                let python = &python;
                s.spawn(move || {
                    let n = episodes(game);
                    (
                        reference_rollouts(python, game, 1, n),
                        prunus_rollouts(game, 2, n),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut failures = vec![];
    for (&(game, channels), (py, rs)) in GAMES.iter().zip(&results) {
        for (what, a, b) in [
            ("return", &py.returns, &rs.returns),
            ("length", &py.lengths, &rs.lengths),
        ] {
            let (d, p) = ks_test(a, b);
            let line = format!(
                "{game} {what}: reference mean {:.3}, prunus mean {:.3}, KS D = {d:.4}, p = {p:.3} \
                 (n = {} each)",
                mean_var(a).0,
                mean_var(b).0,
                a.len()
            );
            println!("{line}");
            if p <= KS_ALPHA {
                failures.push(line);
            }
        }
        assert_eq!(
            py.occupancy[0].len(),
            channels,
            "{game}: reference channel count"
        );
        for c in 0..channels {
            let col = |r: &Rollouts| r.occupancy.iter().map(|o| o[c]).collect::<Vec<_>>();
            let (a, b) = (col(py), col(rs));
            let ever = |v: &[f64]| v.iter().any(|&x| x > 0.0);
            assert_eq!(
                ever(&a),
                ever(&b),
                "{game} channel {c}: active in one implementation only"
            );
            assert!(ever(&a), "{game} channel {c} is never active");
            let p = welch_p(&a, &b);
            let line = format!(
                "{game} channel {c}: occupancy reference {:.4}, prunus {:.4}, p = {p:.3}",
                mean_var(&a).0,
                mean_var(&b).0
            );
            println!("{line}");
            if p <= CHANNEL_ALPHA {
                failures.push(line);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "distributions differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn ks_test_detects_a_shift_and_accepts_a_copy() {
    let a: Vec<f64> = (0..500).map(|i| (i % 50) as f64).collect();
    let shifted: Vec<f64> = a.iter().map(|x| x + 15.0).collect();
    assert_eq!(ks_test(&a, &a), (0.0, 1.0));
    assert!(ks_test(&a, &shifted).1 < 1e-6);
    assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-6);
    assert!(welch_p(&a, &shifted) < 1e-6 && welch_p(&a, &a) > 0.999);
}
