//! Atari emulation and preprocessing speed on one core, prunus vs ale-py in the same run.
//!
//! `cargo bench -p prunus-env --features atari --bench atari [-- GAME]` (default Pong and
//! Breakout). ROMs: ale-py's own, found through the test Python (see `tests/reference`).
//! Each figure is the median of `PRUNUS_BENCH_ROUNDS` (default 5) measurements of
//! `PRUNUS_BENCH_SECONDS` (default 1) each, the four kinds interleaved round by round, because
//! a shared VM's speed drifts more between consecutive seconds than the differences measured.
//!
//! - raw: emulated frames per second, one `act` per frame (random minimal-set actions, sticky
//!   actions 0.25, reset at game over). Target: prunus within 10% of ale-py.
//! - dopamine: agent steps per second with the full preprocessing (frame skip 4, max-pool,
//!   grayscale, 84x84 area resize); ale-py's side is ale-py + cv2 as Dopamine does it.
//! - preprocessing cost: time per agent step over the time of its 4 raw frames, minus one.
//!   Target: under 15%.

#[path = "../tests/reference/mod.rs"]
mod reference;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use prunus_env::atari::Emulator;
use prunus_env::minatar::np_random::NpRandom;
use prunus_env::{EnvOptions, Observation};

fn measure(seconds: f64, mut batch: impl FnMut()) -> f64 {
    let (mut n, start) = (0u64, Instant::now());
    while start.elapsed().as_secs_f64() < seconds {
        batch();
        n += 1000;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn raw(game: &str, dir: &Path, seconds: f64) -> f64 {
    let mut emu = Emulator::open(game, Some(dir), 0.25, 0).unwrap();
    emu.reset();
    let actions = emu.minimal_actions();
    let mut policy = NpRandom::new(1_000_003);
    measure(seconds, || {
        for _ in 0..1000 {
            let a = actions[policy.randint(actions.len() as u32) as usize];
            black_box(emu.act(a).unwrap());
            if emu.game_over() {
                emu.reset();
            }
        }
    })
}

fn dopamine(game: &str, dir: &Path, seconds: f64) -> f64 {
    let opts = EnvOptions {
        rom_dir: Some(dir.to_path_buf()),
        ..EnvOptions::default()
    };
    let mut env = prunus_env::make(&format!("atari/{game}"), &opts).unwrap();
    let n = env.spec().action_space.discrete().unwrap() as u32;
    let mut policy = NpRandom::new(1_000_003);
    measure(seconds, || {
        for _ in 0..1000 {
            let s = env
                .step(prunus_env::Action::Discrete(policy.randint(n) as usize))
                .unwrap();
            if let Observation::Byte(frame) = env.observation() {
                black_box(frame);
            }
            if s.terminal || s.truncated {
                env.reset(None);
            }
        }
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let var = |name: &str, default: f64| -> f64 {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let seconds = var("PRUNUS_BENCH_SECONDS", 1.0);
    let rounds = var("PRUNUS_BENCH_ROUNDS", 5.0).max(1.0) as usize;
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let python = reference::python_with("ale_py");
    let out = reference::run_script(&python, "atari_reference.py", "roms", &[]);
    let dir = PathBuf::from(String::from_utf8(out).unwrap().trim());
    let theirs = |game: &str, mode: &str| {
        let json = reference::run_script(
            &python,
            "atari_reference.py",
            "bench",
            &[game.into(), seconds.to_string(), mode.into()],
        );
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        v["steps_per_second"].as_f64().unwrap()
    };
    println!(
        "{:<10} {:<9} {:>14} {:>14} {:>8}",
        "game", "", "prunus /s", "ale-py /s", "ratio"
    );
    for game in ["pong", "breakout"] {
        if !filter.is_empty() && !filter.iter().any(|f| game.contains(f.as_str())) {
            continue;
        }
        let mut samples: [Vec<f64>; 4] = Default::default();
        for _ in 0..rounds {
            samples[0].push(raw(game, &dir, seconds));
            samples[1].push(theirs(game, "raw"));
            samples[2].push(dopamine(game, &dir, seconds));
            samples[3].push(theirs(game, "dopamine"));
        }
        let [our_raw, their_raw, our_step, their_step] = samples.map(median);
        println!(
            "{game:<10} {:<9} {our_raw:>14.0} {their_raw:>14.0} {:>7.2}x",
            "raw fps",
            our_raw / their_raw
        );
        println!(
            "{game:<10} {:<9} {our_step:>14.0} {their_step:>14.0} {:>7.2}x",
            "steps",
            our_step / their_step
        );
        let cost = |raw: f64, step: f64| 100.0 * ((raw / 4.0) / step - 1.0);
        println!(
            "{game:<10} preprocessing cost over 4 raw frames: prunus {:.1}%, ale-py + cv2 {:.1}%",
            cost(our_raw, our_step),
            cost(their_raw, their_step)
        );
    }
}
