//! Gradual magnitude pruning and the baselines the paper compares it with.
//!
//! Pure math over plain `f32` slices and shapes (no burn), so the agents wire it into training:
//!
//! - [`gmp`]: the Zhu & Gupta cubic schedule with JaxPruner's step semantics (gradient steps).
//! - [`erk`]: how the global sparsity is spread over layers (ERK, the default, or uniform).
//! - [`magnitude`]: top-k `|w|` masks ([`Mask`]).
//!
//! Sources: JaxPruner's Dopamine baseline and Dopamine's ReDo lab, summarised with commits in
//! `shared/FACTS.md` sections 4 and 5.

pub mod erk;
pub mod gmp;
pub mod magnitude;

pub use erk::Distribution;
pub use gmp::{Boundary, GmpSchedule};
pub use magnitude::Mask;

/// Invalid pruning or baseline configuration; the message says what to change.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SparsityError {
    /// A GMP schedule that cannot be run as asked.
    #[error("invalid pruning schedule: {0}")]
    Schedule(String),
    /// A sparsity distribution that cannot be computed.
    #[error("invalid sparsity distribution: {0}")]
    Distribution(String),
}
