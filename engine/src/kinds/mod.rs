//! Stage kinds built into the engine: `command` runs any program (plug in your own scripts),
//! `test/echo` is a trivial deterministic kind for tests and the overhead benchmark.

pub mod command;
pub mod echo;
