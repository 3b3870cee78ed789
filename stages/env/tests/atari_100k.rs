//! The Atari-100k protocol options (Dopamine's `labs/atari_100k` configs): a step ends at a lost
//! life while the game goes on (`terminal_on_life_loss`), and episodes start with random NOOP
//! frames that leave the first observation as the reset's (`MaxEpisodeEvalRunner._run_no_ops`).
//! Both off, the environment is as before (the equivalence tests against ale-py).
#![cfg(feature = "atari")]

mod reference;

use std::path::{Path, PathBuf};

use prunus_env::{Action, Env, EnvOptions, Observation};

fn roms() -> PathBuf {
    let python = reference::python_with("ale_py");
    let out = reference::run_script(&python, "atari_reference.py", "roms", &[]);
    PathBuf::from(String::from_utf8(out).unwrap().trim())
}

fn make(game: &str, life_loss: bool, noop_max: u32, rom_dir: &Path) -> Box<dyn Env> {
    let opts = EnvOptions {
        sticky_action_prob: Some(0.0),
        rom_dir: Some(rom_dir.to_path_buf()),
        terminal_on_life_loss: life_loss,
        noop_max,
        ..EnvOptions::default()
    };
    prunus_env::make(&format!("atari/{game}"), &opts).unwrap()
}

fn frame(env: &dyn Env) -> Vec<u8> {
    match env.observation() {
        Observation::Byte(b) => b.to_vec(),
        other => panic!("Atari frames are bytes, got {other:?}"),
    }
}

#[test]
fn a_lost_life_ends_the_step_and_the_game_goes_on() {
    let dir = roms();
    let (mut plain, mut lossy) = (
        make("breakout", false, 0, &dir),
        make("breakout", true, 0, &dir),
    );
    plain.reset(Some(3));
    lossy.reset(Some(3));
    let n = lossy.spec().action_space.discrete().unwrap();
    let mut lost = false;
    for t in 0..3_000 {
        let a = Action::Discrete((t * 7 + t / 5) % n);
        let before = lossy.lives().unwrap();
        let (p, l) = (plain.step(a).unwrap(), lossy.step(a).unwrap());
        if lossy.lives().unwrap() < before {
            assert!(!l.terminal, "a lost life is not a game over");
            lost = true;
            // The game goes on from here.
            assert!(!lossy.step(Action::Discrete(1)).unwrap().terminal);
            break;
        }
        assert_eq!(
            (p, frame(&*plain)),
            (l, frame(&*lossy)),
            "identical until a life is lost"
        );
    }
    assert!(
        lost,
        "Breakout loses a life within 3,000 steps of these actions"
    );
}

#[test]
fn noop_starts_keep_the_reset_frame_and_are_replayable() {
    let dir = roms();
    let (mut plain, mut noops) = (make("pong", false, 0, &dir), make("pong", false, 30, &dir));
    let mut differ = 0;
    for seed in 0..6 {
        plain.reset(Some(seed));
        noops.reset(Some(seed));
        assert_eq!(
            frame(&*plain),
            frame(&*noops),
            "the first observation is the reset's"
        );
        let run = |env: &mut Box<dyn Env>| -> Vec<Vec<u8>> {
            (0..40)
                .map(|_| {
                    env.step(Action::Discrete(0)).unwrap();
                    frame(&**env)
                })
                .collect()
        };
        let with_noops = run(&mut noops);
        differ += (run(&mut plain) != with_noops) as usize;
        noops.reset(Some(seed));
        assert_eq!(
            run(&mut noops),
            with_noops,
            "the same seed, the same no-ops"
        );
    }
    // 0 no-ops has probability 1/30 per seed.
    assert!(
        differ >= 4,
        "no-ops advanced the game in only {differ} of 6 seeds"
    );
}
