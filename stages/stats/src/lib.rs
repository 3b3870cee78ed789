//! Statistics as rliable defines them: normalized scores, IQM, stratified bootstrap CIs, profiles.

/// The stage kinds this crate contributes to the engine's registry.
pub fn kinds() -> prunus_stage::Kinds {
    Vec::new()
}
