//! The `prunus` binary's library half: the [`registry`] of every stage kind prunus ships, for
//! the binary and for tests that load the shipped pipelines (golden keys).

pub mod registry;
