//! The stage-kind trait: parameters with defaults, determinism, resources, and the run context.
