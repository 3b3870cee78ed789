//! The bridge to `prunus-env`'s factory.

use prunus_env::Env;

use crate::kinds::EnvSettings;

/// The environment `name` with `settings`, from prunus-env's factory.
pub fn make(name: &str, settings: &EnvSettings) -> Result<Box<dyn Env>, String> {
    let _ = settings;
    Err(format!(
        "cannot create environment `{name}`: this build's prunus-env has no environment factory yet"
    ))
}
