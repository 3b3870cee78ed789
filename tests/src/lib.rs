//! End-to-end tests of the `prunus` binary over real pipelines live in `tests/tests/`.
