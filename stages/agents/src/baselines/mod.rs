//! The recycling baselines the paper compares pruning with, as [`UpdateHook`]s: [`reset`]
//! (Nikishin et al. 2022) and [`redo`] (Sokar et al. 2023), following Dopamine's ReDo lab
//! (`dopamine/labs/redo` at google/dopamine@1093179). The schedules and index sets come from
//! `prunus-sparsity` ([`prunus_sparsity::ResetConfig`], [`prunus_sparsity::RedoConfig`],
//! [`prunus_sparsity::redo::Recycle`]); this module applies them to a learner's network and
//! Adam state through [`Prunable::operate`](crate::hooks::Prunable::operate). The other two
//! baselines are options of the agent: weight decay (coupled, in [`crate::adam`]) and the L2
//! feature normalisation of Kumar et al. 2022 (in [`crate::networks`]).
//!
//! Both act after gradient step `t` (counted from 0) when their schedule fires at `t`
//! (`t > 0`, `t % period == 0`), before pruning masks are re-applied (the trainer runs them
//! ahead of the GMP hook), so re-drawn weights at pruned positions are zeroed again at once.
//! Their random draws come from their own seeded streams, saved with their state, so a resumed
//! run continues bit for bit.
//!
//! [`UpdateHook`]: crate::hooks::UpdateHook

pub mod redo;
pub mod reset;

pub use self::redo::{LayerRecycle, RecycleOutcome, RedoHook};
pub use self::reset::ResetHook;
