//! Atari 2600 games through ALE, with Dopamine's `AtariPreprocessing`
//! (`dopamine/discrete_domains/atari_lib.py` at google/dopamine@1093179).
//!
//! Why ALE 0.6 through `ale-sys`: the `ale` crate (ale-rs) builds here, but its safe wrapper
//! cannot set sticky actions or the seed; its `ale-sys` layer can, and the ALE 0.6 it compiles
//! emulates frame-for-frame like today's ale-py (tests compare both on Pong and Breakout).
//! So prunus binds `ale-sys` directly through the small safe [`emulator`] module.
//!
//! One agent step: the action is repeated for 4 frames (sticky actions 0.25 act per frame,
//! inside ALE), rewards are summed, the last two frames are max-pooled, converted to ALE's
//! grayscale, area-resized to 84x84; the agent stacks 4 such frames. Episodes end at game over
//! (not at a life loss) or are truncated after 27,000 agent steps (108k frames).
//!
//! Two options of the Atari-100k protocol (`dopamine/labs/atari_100k/configs/DrQ_eps.gin`),
//! both off by default: [`EnvOptions::terminal_on_life_loss`] ends a step at the frame a life
//! is lost (the game goes on; the agent sees it through [`Env::lives`]), and
//! [`EnvOptions::noop_max`] emulates 0..noop_max raw NOOP frames after each reset.

pub mod emulator;
pub mod preprocess;
pub mod roms;

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

pub use emulator::Emulator;
use emulator::{FULL_ACTIONS, HEIGHT, WIDTH};
use preprocess::{AreaResize, Scratch, max_pool};

use crate::{Action, ActionSpace, Env, EnvError, EnvOptions, ObsKind, Observation, Spec, Step};

/// Frames per agent step (Dopamine's `frame_skip`).
pub const FRAME_SKIP: usize = 4;
/// Side of the square observation.
pub const SIZE: usize = 84;
/// Dopamine's `max_steps_per_episode` (agent steps).
pub const MAX_EPISODE_STEPS: u64 = 27_000;
/// Dopamine's `sticky_actions` probability.
pub const STICKY: f32 = 0.25;

/// One Atari game with Dopamine's preprocessing.
pub struct Atari {
    emulator: Emulator,
    /// Indices into ALE's 18 actions that the agent's actions map to.
    actions: Vec<usize>,
    spec: Spec,
    max_steps: u64,
    steps: u64,
    /// The last two frames of the step in full resolution (Dopamine's `screen_buffer`).
    screens: [Vec<u8>; 2],
    frame: Vec<u8>,
    resize: Arc<AreaResize>,
    scratch: Scratch,
    /// Dopamine's `terminal_on_life_loss`.
    life_loss: bool,
    /// Lives at the last frame (tracked only with `life_loss`).
    lives: i32,
    /// Reset no-ops are drawn from `0..noop_max` (0: none).
    noop_max: u32,
    /// Draws the number of reset no-ops; reseeded with each reset's seed, so that an episode
    /// replayed from its seed starts exactly the same.
    noop_rng: Pcg64,
}

/// Mixed into a reset's seed for the no-op stream (kept apart from ALE's own seed).
const NOOP_SEED: u64 = 0x6e6f_6f70_7374_6172;

/// Creates `atari/<game>` with `opts` (ROM from `opts.rom_dir`, see [`roms::dir`]).
pub fn make(game: &str, opts: &EnvOptions) -> Result<Box<dyn Env>, EnvError> {
    let sticky = opts.sticky_action_prob.unwrap_or(STICKY);
    let emulator = Emulator::open(game, opts.rom_dir.as_deref(), sticky, 0)?;
    // Dopamine plays the minimal action set on Atari; the full set is the platform's 18.
    let actions = if opts.full_action_set.unwrap_or(false) {
        (0..FULL_ACTIONS).collect()
    } else {
        emulator.minimal_actions()
    };
    let mut env = Atari {
        emulator,
        spec: Spec {
            shape: vec![1, SIZE, SIZE],
            kind: ObsKind::Byte,
            action_space: ActionSpace::Discrete(actions.len()),
            frame_stack: 4,
        },
        actions,
        max_steps: opts.max_episode_steps.unwrap_or(MAX_EPISODE_STEPS),
        steps: 0,
        screens: [vec![0; HEIGHT * WIDTH], vec![0; HEIGHT * WIDTH]],
        frame: vec![0; SIZE * SIZE],
        resize: Arc::new(AreaResize::new(HEIGHT, WIDTH, SIZE, SIZE)),
        scratch: Scratch::default(),
        life_loss: opts.terminal_on_life_loss,
        lives: 0,
        noop_max: opts.noop_max,
        noop_rng: Pcg64::seed_from_u64(NOOP_SEED),
    };
    env.reset(None);
    Ok(Box::new(env))
}

impl Atari {
    /// Dopamine's `_pool_and_resize`: max of the two buffered frames, then the area resize.
    fn pool_and_resize(&mut self) {
        let [first, second] = &mut self.screens;
        max_pool(first, second);
        self.resize.apply(first, &mut self.frame, &mut self.scratch);
    }
}

impl Atari {
    /// Dopamine's `MaxEpisodeEvalRunner._run_no_ops`: `n` raw frames of ALE action 0, `n`
    /// uniform in `0..noop_max`. The frame buffers are left alone, so the first observation is
    /// still the reset's (as Dopamine's `_pool_and_resize` of untouched buffers); a game over
    /// during them resets again, without no-ops.
    fn run_noops(&mut self) {
        let n = self.noop_rng.random_range(0..self.noop_max);
        for _ in 0..n {
            // Action 0 is NOOP on every ALE game; it cannot be out of range.
            let _ = self.emulator.act(0);
        }
        if self.emulator.game_over() {
            self.emulator.reset();
            self.emulator.grayscale(&mut self.screens[0]);
            self.screens[1].fill(0);
            self.pool_and_resize();
            self.lives = self.emulator.lives();
        }
    }

    /// Whether a life was lost at this frame (only with `life_loss`), tracking the count as
    /// Dopamine does (a bonus life raises it).
    fn lost_life(&mut self) -> bool {
        if !self.life_loss {
            return false;
        }
        let lives = self.emulator.lives();
        let lost = lives < self.lives;
        self.lives = lives;
        lost
    }
}

impl Env for Atari {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) {
        if let Some(seed) = seed {
            // ALE's seed is a C int.
            self.emulator.reseed((seed % i32::MAX as u64) as i32);
        }
        self.emulator.reset();
        self.steps = 0;
        self.emulator.grayscale(&mut self.screens[0]);
        self.screens[1].fill(0);
        self.pool_and_resize();
        self.lives = self.emulator.lives();
        if self.noop_max > 0 {
            if let Some(seed) = seed {
                self.noop_rng = Pcg64::seed_from_u64(seed ^ NOOP_SEED);
            }
            self.run_noops();
        }
    }

    fn step(&mut self, action: Action<'_>) -> Result<Step, EnvError> {
        let ale_action = self.actions[action.index(self.actions.len())?];
        let mut reward = 0;
        let mut terminal = false;
        for t in 0..FRAME_SKIP {
            reward += self.emulator.act(ale_action)?;
            if self.emulator.game_over() {
                terminal = true;
                break;
            }
            if self.lost_life() {
                break;
            }
            // As Dopamine: only the last two frames are kept (a game over before them leaves
            // the buffers from earlier steps, exactly as there).
            if t >= FRAME_SKIP - 2 {
                let k = t - (FRAME_SKIP - 2);
                self.emulator.grayscale(&mut self.screens[k]);
            }
        }
        self.pool_and_resize();
        self.steps += 1;
        Ok(Step {
            reward: reward as f32,
            terminal,
            truncated: !terminal && self.steps >= self.max_steps,
        })
    }

    fn observation(&self) -> Observation<'_> {
        Observation::Byte(&self.frame)
    }

    fn lives(&self) -> Option<u32> {
        Some(self.emulator.lives().max(0) as u32)
    }

    fn boxed_clone(&self) -> Box<dyn Env> {
        Box::new(Atari {
            emulator: self.emulator.duplicate(),
            actions: self.actions.clone(),
            spec: self.spec.clone(),
            max_steps: self.max_steps,
            steps: self.steps,
            screens: self.screens.clone(),
            frame: self.frame.clone(),
            resize: self.resize.clone(),
            scratch: self.scratch.clone(),
            life_loss: self.life_loss,
            lives: self.lives,
            noop_max: self.noop_max,
            noop_rng: self.noop_rng.clone(),
        })
    }
}
