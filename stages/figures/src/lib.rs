//! Figures of the paper drawn with plotters (SVG and PNG).

/// The stage kinds this crate contributes to the engine's registry.
pub fn kinds() -> prunus_stage::Kinds {
    Vec::new()
}
