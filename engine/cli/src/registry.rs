//! Every stage kind prunus ships: the engine's built-ins and the science crates' kinds. The
//! only place where the engine meets the science.

use std::path::Path;

use prunus_engine::{Error, Graph, Registry};

/// All kinds; `command` paths resolve against `base_dir` (the pipeline's directory).
pub fn standard(base_dir: &Path) -> Registry {
    Registry::builtin(base_dir)
        .with(prunus_agents::kinds())
        .with(prunus_stats::kinds())
        .with(prunus_figures::kinds())
}

/// Loads a pipeline file against every kind prunus ships.
pub fn load(path: &Path) -> Result<Graph, Error> {
    prunus_engine::load(path, standard)
}
