//! The bridge to `prunus-env`'s factory.

use prunus_env::{Env, EnvOptions};

use crate::kinds::EnvSettings;

/// The environment `name` with `settings`, from prunus-env's factory.
pub fn make(name: &str, settings: &EnvSettings) -> Result<Box<dyn Env>, String> {
    let opts = EnvOptions {
        sticky_action_prob: settings.sticky_action_prob,
        max_episode_steps: settings.max_episode_steps,
        full_action_set: settings.full_action_set,
        ..EnvOptions::default()
    };
    prunus_env::make(name, &opts).map_err(|e| e.to_string())
}
