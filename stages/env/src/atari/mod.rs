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

pub mod emulator;
pub mod preprocess;
pub mod roms;

use std::sync::Arc;

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
}

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
        })
    }
}
