//! The bridge to `prunus-env`'s factory: the environment options the training kinds set.

use prunus_env::{Env, EnvOptions};
use serde::{Deserialize, Serialize};

/// How the kinds ask for an environment (`env` name, options); tests may substitute their own.
pub type EnvFactory = fn(&str, &EnvSettings) -> Result<Box<dyn Env>, String>;

/// The environment options the kinds set (mapped onto `prunus_env::EnvOptions`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvSettings {
    /// `None`: the environment's paper default.
    pub sticky_action_prob: Option<f32>,
    /// `None`: the environment's default cap.
    pub max_episode_steps: Option<u64>,
    /// `Some(true)`: the platform's full action set; `Some(false)`: the game's minimal set;
    /// `None`: the paper default (Atari minimal, MinAtar all 6).
    pub full_action_set: Option<bool>,
    /// Atari: a step ends at a lost life (the Atari-100k agents; see `EnvOptions`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminal_on_life_loss: bool,
    /// Atari: random NOOP frames at reset are drawn from `0..noop_max` (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub noop_max: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The environment `name` with `settings`, from prunus-env's factory.
pub fn make(name: &str, settings: &EnvSettings) -> Result<Box<dyn Env>, String> {
    prunus_env::make(name, &options(settings)).map_err(|e| e.to_string())
}

/// Whether prunus-env knows `name` and `settings` apply to it, without building it (no
/// emulator, no ROM): what planning checks.
pub fn check(name: &str, settings: &EnvSettings) -> Result<(), String> {
    prunus_env::check(name, &options(settings)).map_err(|e| e.to_string())
}

fn options(settings: &EnvSettings) -> EnvOptions {
    EnvOptions {
        sticky_action_prob: settings.sticky_action_prob,
        max_episode_steps: settings.max_episode_steps,
        full_action_set: settings.full_action_set,
        terminal_on_life_loss: settings.terminal_on_life_loss,
        noop_max: settings.noop_max,
        ..EnvOptions::default()
    }
}
