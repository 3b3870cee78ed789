//! Statistics as rliable defines them (Agarwal et al. 2021, "Deep RL at the edge of the
//! statistical precipice"): normalized scores, IQM / mean / median / optimality gap, 95%
//! stratified bootstrap confidence intervals, performance profiles and probability of
//! improvement, plus the `aggregate/*` stage kinds that turn training returns into tables.
//!
//! ```
//! use prunus_stats::{Bootstrap, Metric, Scores};
//! // rliable's layout: scores[run][task].
//! let scores = Scores::from_runs_by_tasks(&[vec![0.1, 1.2], vec![0.3, 0.9], vec![0.2, 1.1]])?;
//! let iqm = Bootstrap { reps: 2_000, ..Bootstrap::default() }.interval(&scores, Metric::Iqm);
//! assert!(iqm.low <= iqm.estimate && iqm.estimate <= iqm.high);
//! # Ok::<(), prunus_stats::StatsError>(())
//! ```

pub mod aggregate;
pub mod bootstrap;
mod error;
pub mod improvement;
mod kinds;
pub mod normalize;
pub mod profiles;
mod scores;

pub use aggregate::Metric;
pub use bootstrap::{Bootstrap, Interval};
pub use error::StatsError;
pub use kinds::Aggregate;
pub use normalize::Normalization;
pub use profiles::Profile;
pub use scores::Scores;

/// The stage kinds this crate contributes to the engine's registry.
pub fn kinds() -> prunus_stage::Kinds {
    Aggregate::ALL
        .into_iter()
        .map(|k| std::sync::Arc::new(k) as std::sync::Arc<dyn prunus_stage::StageKind>)
        .collect()
}
