//! Gradual magnitude pruning and the baselines the paper compares it with.
//!
//! Pure math over plain `f32` slices and shapes (no burn), so the agents wire it into training:
//!
//! - [`gmp`]: the Zhu & Gupta cubic schedule with JaxPruner's step semantics (gradient steps).
//! - [`erk`]: how the global sparsity is spread over layers (ERK, the default, or uniform).
//! - [`magnitude`]: top-k `|w|` masks ([`Mask`]).
//! - [`pruner`]: the state through training ([`Pruner`]): masks per parameter, updated on the
//!   schedule from the pre-update weights, applied after every optimizer step, serde for
//!   checkpoints, per-layer and overall sparsity for logs. Its module docs give the exact
//!   per-step order the agent must follow.
//! - [`redo`]: τ-dormant neuron scores and the ReDo recycle recipe as index sets.
//! - [`reset`]: which layers Reset re-initialises, and when.
//! - [`l2`]: coupled weight decay and Kumar et al.'s feature normalisation.
//!
//! Every step count here is a gradient (optimizer) step, never an agent step.
//!
//! ```
//! use prunus_sparsity::{GmpSchedule, Pruner, PrunerConfig};
//!
//! // The paper's default: 95% (ERK), pruning from 20% to 80% of the run, every 1,000 steps.
//! let schedule = GmpSchedule::paper_default(10_000)?;
//! let layers: [(&str, &[usize]); 2] = [("fc.weight", &[64, 32]), ("fc.bias", &[32])];
//! let mut pruner = Pruner::new(PrunerConfig::new(schedule), &layers)?;
//! let mut weights = vec![vec![0.5f32; 64 * 32], vec![0.0f32; 32]];
//! for step in 0..10_000 {
//!     // ... loss and gradients at `weights` ...
//!     let views: Vec<&[f32]> = weights.iter().map(|w| w.as_slice()).collect();
//!     pruner.update(step, &views)?; // before the optimizer step, from pre-update weights
//!     // ... Adam step on every parameter ...
//!     let mut views: Vec<&mut [f32]> = weights.iter_mut().map(|w| w.as_mut_slice()).collect();
//!     pruner.apply(&mut views)?; // after every optimizer step
//! }
//! assert!((pruner.overall_sparsity() - 0.95).abs() < 1e-3);
//! let checkpoint = serde_json::to_vec(&pruner).unwrap(); // masks survive resume
//! # Ok::<(), prunus_sparsity::SparsityError>(())
//! ```
//!
//! Sources: JaxPruner's Dopamine baseline (`jaxpruner/baselines/dopamine`,
//! google-research/jaxpruner at f133ee5) and Dopamine's ReDo lab (`dopamine/labs/redo`,
//! google/dopamine at 1093179); each module names the files it follows.

pub mod erk;
pub mod gmp;
pub mod l2;
pub mod magnitude;
pub mod pruner;
pub mod redo;
pub mod reset;

pub use erk::Distribution;
pub use gmp::{Boundary, GmpSchedule};
pub use magnitude::Mask;
pub use pruner::{Pruner, PrunerConfig};
pub use redo::RedoConfig;
pub use reset::ResetConfig;

/// Invalid pruning or baseline configuration; the message says what to change.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SparsityError {
    /// A GMP schedule that cannot be run as asked.
    #[error("invalid pruning schedule: {0}")]
    Schedule(String),
    /// A sparsity distribution that cannot be computed.
    #[error("invalid sparsity distribution: {0}")]
    Distribution(String),
    /// Masks that do not fit the parameters they are applied to.
    #[error("pruning masks do not fit the network: {0}")]
    Masks(String),
    /// A ReDo recycle whose layers are wired inconsistently.
    #[error("invalid ReDo recycle: {0}")]
    Recycle(String),
}
