//! Agents on burn: networks, replay, DQN and Rainbow.

/// The stage kinds this crate contributes to the engine's registry.
pub fn kinds() -> prunus_stage::Kinds {
    Vec::new()
}
