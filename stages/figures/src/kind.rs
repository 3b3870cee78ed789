pub fn kinds() -> prunus_stage::Kinds {
    Vec::new()
}
