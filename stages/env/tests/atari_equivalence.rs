//! prunus's Atari against ale-py (the reference, run as a subprocess by `atari_reference.py`)
//! on the same ROM files (ale-py's own) and the same actions, sticky actions off:
//!
//! 1. Raw emulation: every 210x160 grayscale screen, reward, game-over flag and life count of
//!    6,000 frames of random full-set actions (with resets) must be identical.
//! 2. Dopamine's preprocessing: every 84x84 observation (frame skip 4, max-pool of the last
//!    two frames, `cv2.INTER_AREA`), summed reward, terminal and lives of 2,500 agent steps
//!    with the minimal and the full action set must be identical.
//!
//! Plus the errors a user can hit: unknown game, ROM missing, ROM with the wrong checksum,
//! action out of range.
#![cfg(feature = "atari")]

mod reference;

use std::path::PathBuf;

use prunus_env::atari::Emulator;
use prunus_env::minatar::np_random::NpRandom;
use prunus_env::{Env, EnvError, EnvOptions, Observation};

const POLICY_SEED_OFFSET: u64 = 1_000_003;
const SCREEN: usize = 210 * 160;
const OBS: usize = 84 * 84;

struct Record {
    reward: i32,
    terminal: bool,
    lives: u8,
    pixels: Vec<u8>,
}

fn parse(bytes: &[u8], pixels: usize) -> Vec<Record> {
    let size = 6 + pixels;
    assert_eq!(bytes.len() % size, 0, "truncated reference output");
    bytes
        .chunks(size)
        .map(|r| Record {
            reward: i32::from_le_bytes(r[0..4].try_into().unwrap()),
            terminal: r[4] == 1,
            lives: r[5],
            pixels: r[6..].to_vec(),
        })
        .collect()
}

/// ale-py's ROM directory (its wheel carries the ROMs).
fn rom_dir(python: &PathBuf) -> PathBuf {
    let out = reference::run_script(python, "atari_reference.py", "roms", &[]);
    PathBuf::from(String::from_utf8(out).unwrap().trim())
}

fn first_difference(a: &[u8], b: &[u8], width: usize) -> String {
    let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap();
    let n = a.iter().zip(b).filter(|(x, y)| x != y).count();
    format!(
        "{n} pixels differ, first at row {} col {} (prunus {} vs ale-py {})",
        i / width,
        i % width,
        a[i],
        b[i]
    )
}

/// Every record identical: reward, terminal (game over), lives and every pixel.
fn assert_same(what: &str, ours: &[Record], theirs: &[Record], width: usize) {
    assert_eq!(ours.len(), theirs.len(), "{what}: record counts differ");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(
            (a.reward, a.terminal, a.lives),
            (b.reward, b.terminal, b.lives),
            "{what} record {i}: (reward, terminal, lives) differ"
        );
        assert!(
            a.pixels == b.pixels,
            "{what} record {i}: {}",
            first_difference(&a.pixels, &b.pixels, width)
        );
    }
}

fn check_raw(game: &str, seed: u64, frames: usize) {
    let python = reference::python_with("ale_py");
    let dir = rom_dir(&python);
    let theirs = parse(
        &reference::run_script(
            &python,
            "atari_reference.py",
            "raw",
            &[game.into(), seed.to_string(), frames.to_string()],
        ),
        SCREEN,
    );
    let mut emu = Emulator::open(game, Some(&dir), 0.0, seed as i32).unwrap();
    emu.reset();
    let mut policy = NpRandom::new(seed + POLICY_SEED_OFFSET);
    let mut screen = vec![0u8; SCREEN];
    let mut ours = Vec::new();
    let mut push = |emu: &Emulator, reward: i32, over: bool, screen: &mut Vec<u8>| {
        emu.grayscale(screen);
        ours.push(Record {
            reward,
            terminal: over,
            lives: emu.lives() as u8,
            pixels: screen.clone(),
        });
    };
    push(&emu, 0, false, &mut screen);
    for _ in 0..frames {
        let reward = emu.act(policy.randint(18) as usize).unwrap();
        let over = emu.game_over();
        push(&emu, reward, over, &mut screen);
        if over {
            emu.reset();
            push(&emu, 0, false, &mut screen);
        }
    }
    assert_same(&format!("{game} raw"), &ours, &theirs, 160);
    let resets = ours.iter().filter(|r| r.terminal).count();
    eprintln!(
        "{game}: {} raw frames identical ({resets} game overs)",
        ours.len()
    );
}

fn check_preprocessed(game: &str, seed: u64, steps: usize, full: bool) {
    let python = reference::python_with("ale_py");
    let dir = rom_dir(&python);
    let theirs = parse(
        &reference::run_script(
            &python,
            "atari_reference.py",
            "trace",
            &[
                game.into(),
                seed.to_string(),
                steps.to_string(),
                (full as u8).to_string(),
                "0".into(),
            ],
        ),
        OBS,
    );
    let opts = EnvOptions {
        sticky_action_prob: Some(0.0),
        full_action_set: Some(full),
        rom_dir: Some(dir),
        ..EnvOptions::default()
    };
    let mut env = prunus_env::make(&format!("atari/{game}"), &opts).unwrap();
    assert_eq!(env.spec().shape, [1, 84, 84]);
    assert_eq!(env.spec().frame_stack, 4);
    let frame = |env: &dyn Env| match env.observation() {
        Observation::Byte(b) => b.to_vec(),
        other => panic!("Atari frames are bytes, got {other:?}"),
    };
    env.reset(Some(seed));
    let n = env.spec().action_space.discrete().unwrap();
    let mut policy = NpRandom::new(seed + POLICY_SEED_OFFSET);
    let lives = |env: &dyn Env| env.lives().unwrap() as u8;
    let mut ours = vec![Record {
        reward: 0,
        terminal: false,
        lives: lives(&*env),
        pixels: frame(&*env),
    }];
    for _ in 0..steps {
        let s = env
            .step(prunus_env::Action::Discrete(
                policy.randint(n as u32) as usize
            ))
            .unwrap();
        assert!(!s.truncated, "no truncation within {steps} steps");
        ours.push(Record {
            reward: s.reward as i32,
            terminal: s.terminal,
            lives: lives(&*env),
            pixels: frame(&*env),
        });
        if s.terminal {
            env.reset(None);
            ours.push(Record {
                reward: 0,
                terminal: false,
                lives: lives(&*env),
                pixels: frame(&*env),
            });
        }
    }
    assert_same(
        &format!("{game} (full action set: {full})"),
        &ours,
        &theirs,
        84,
    );
    let rewards: i32 = ours.iter().map(|r| r.reward.abs()).sum();
    assert!(
        rewards > 0,
        "{game}: the trace saw no reward, so it tested little"
    );
}

#[test]
fn pong_raw_frames_match_ale_py() {
    check_raw("pong", 7, 6_000);
}

#[test]
fn breakout_raw_frames_match_ale_py() {
    check_raw("breakout", 11, 6_000);
}

#[test]
fn pong_dopamine_observations_match_ale_py_and_cv2() {
    check_preprocessed("pong", 3, 2_500, false);
    check_preprocessed("pong", 4, 1_000, true);
}

#[test]
fn breakout_dopamine_observations_match_ale_py_and_cv2() {
    check_preprocessed("breakout", 5, 2_500, false);
    check_preprocessed("breakout", 6, 1_000, true);
}

fn error(name: &str, opts: &EnvOptions) -> EnvError {
    match prunus_env::make(name, opts) {
        Ok(_) => panic!("{name} was created"),
        Err(e) => e,
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    let opts = EnvOptions {
        rom_dir: Some(empty.path().to_path_buf()),
        ..EnvOptions::default()
    };
    // Unknown game: the message lists what exists.
    let e = error("atari/pongg", &opts).to_string();
    assert!(
        e.contains("unknown game `atari/pongg`") && e.contains("atari/pong"),
        "{e}"
    );
    // Missing ROM: says where it looked and how to fix it.
    let e = error("atari/pong", &opts).to_string();
    assert!(
        e.contains("not installed") && e.contains("prunus roms install") && e.contains("pong.bin"),
        "{e}"
    );
    // A ROM that is not the expected file (here: truncated).
    std::fs::write(empty.path().join("pong.bin"), [0u8; 1024]).unwrap();
    let e = error("atari/pong", &opts).to_string();
    assert!(
        e.contains("MD5") && e.contains("prunus roms install"),
        "{e}"
    );
}

#[test]
fn actions_out_of_range_are_rejected() {
    let python = reference::python_with("ale_py");
    let opts = EnvOptions {
        rom_dir: Some(rom_dir(&python)),
        ..EnvOptions::default()
    };
    let mut env = prunus_env::make("atari/pong", &opts).unwrap();
    assert_eq!(
        env.spec().action_space.discrete().unwrap(),
        6,
        "Pong's minimal action set"
    );
    let e = env
        .step(prunus_env::Action::Discrete(6))
        .unwrap_err()
        .to_string();
    assert!(e.contains("action 6 is out of range"), "{e}");
    let mut emu = Emulator::open("pong", opts.rom_dir.as_deref(), 0.0, 0).unwrap();
    assert!(emu.act(18).is_err());
    // A clone continues identically (same state, same sticky-action stream).
    env.reset(Some(9));
    for a in [1, 2, 3, 4, 5, 0, 1] {
        env.step(prunus_env::Action::Discrete(a)).unwrap();
    }
    let mut twin = env.boxed_clone();
    for a in [2, 3, 2, 3, 1, 1, 0, 5, 4] {
        assert_eq!(
            env.step(prunus_env::Action::Discrete(a)).unwrap(),
            twin.step(prunus_env::Action::Discrete(a)).unwrap()
        );
        let (Observation::Byte(x), Observation::Byte(y)) = (env.observation(), twin.observation())
        else {
            unreachable!()
        };
        assert_eq!(x, y);
    }
}
