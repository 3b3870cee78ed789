//! The stage kinds this crate contributes: `train/dqn` and `train/rainbow` ([`train`]),
//! `probe` ([`probe`]), `collect` ([`collect`]: offline datasets) and `train/cql`,
//! `train/cql-c51` ([`offline`]: training from them).

pub mod collect;
pub mod offline;
pub mod probe;
pub mod train;

use prunus_stage::StageError;

pub use self::collect::CollectKind;
pub use self::offline::{OfflineAlgorithm, OfflineKind};
pub use self::probe::ProbeKind;
pub use self::train::{Algorithm, TrainKind};

/// A diagnostic about parameter `key`.
pub(crate) fn param_err(key: &str, message: impl Into<String>) -> StageError {
    StageError::Param {
        key: key.to_string(),
        message: message.into(),
    }
}
