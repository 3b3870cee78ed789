//! Random-policy environment steps per second on one core, prunus vs the reference Python
//! package `minatar` in the same run (target: prunus at least 50x).
//!
//! `cargo bench -p prunus-env [-- GAME]`. `PRUNUS_BENCH_SECONDS` sets the time per measurement
//! (default 2). Both sides do the same work per step: draw a uniform action from numpy's
//! `RandomState` stream, step (sticky actions 0.1), reset on terminal, and produce the frame
//! (prunus redraws it on every step; the reference calls `state()`). The Python side runs in
//! its own process while prunus is idle, so each has a core to itself.

#[path = "../tests/reference/mod.rs"]
mod reference;

use std::hint::black_box;
use std::time::Instant;

use prunus_env::minatar::np_random::NpRandom;
use prunus_env::{EnvOptions, Observation};

const GAMES: [&str; 5] = [
    "asterix",
    "breakout",
    "freeway",
    "seaquest",
    "space_invaders",
];

fn prunus_steps_per_second(game: &str, seconds: f64) -> f64 {
    let mut env = prunus_env::make(&format!("minatar/{game}"), &EnvOptions::default()).unwrap();
    let mut policy = NpRandom::new(1_000_003);
    env.reset(Some(0));
    let (mut n, start) = (0u64, Instant::now());
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..10_000 {
            let step = env
                .step(prunus_env::Action::Discrete(policy.randint(6) as usize))
                .unwrap();
            if let Observation::Binary(frame) = env.observation() {
                black_box(frame);
            }
            if step.terminal {
                env.reset(None);
            }
        }
        n += 10_000;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let seconds: f64 = std::env::var("PRUNUS_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let python = reference::python();
    println!(
        "{:<16} {:>16} {:>16} {:>8}",
        "game", "prunus steps/s", "minatar steps/s", "speedup"
    );
    for game in GAMES {
        if !filter.is_empty() && !filter.iter().any(|f| game.contains(f.as_str())) {
            continue;
        }
        let ours = prunus_steps_per_second(game, seconds);
        let json = reference::run(&python, "bench", &[game.into(), seconds.to_string()]);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let theirs = v["steps_per_second"].as_f64().unwrap();
        println!(
            "{game:<16} {ours:>16.0} {theirs:>16.0} {:>7.0}x",
            ours / theirs
        );
    }
}
