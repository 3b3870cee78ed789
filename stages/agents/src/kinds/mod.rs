//! The stage kinds this crate contributes: `train/dqn` and `train/rainbow` ([`train`]),
//! `probe` ([`probe`]), `collect` ([`collect`]: offline datasets) and `train/cql`,
//! `train/cql-c51` ([`offline`]: training from them).

pub mod collect;
pub mod offline;
pub mod probe;
pub mod train;

use std::path::Path;

use prunus_stage::{Context, StageError, sealed};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkpoint::{read_sealed, write_sealed};

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

/// Why a scratch checkpoint that decodes is still not resumed from.
pub(crate) enum Unfit {
    /// It was written by a run with other parameters (it is left for that run's key to overwrite).
    OtherRun,
    /// It does not match what else the scratch holds (it is set aside).
    Damaged(String),
}

/// The run's scratch checkpoint at `path` if it is sound and `fit` accepts it; otherwise `None`,
/// and the run starts afresh, which then gives the result of an uninterrupted run. One that
/// cannot be used is set aside (so it is never read again) and the log says so, naming it.
pub(crate) fn resume_from<T: DeserializeOwned>(
    ctx: &Context,
    path: &Path,
    magic: &[u8],
    fit: impl FnOnce(&T) -> Result<(), Unfit>,
) -> Option<T> {
    let problem = match read_sealed::<T>(path, magic) {
        Ok(None) => return None,
        Ok(Some(r)) => match fit(&r) {
            Ok(()) => return Some(r),
            Err(Unfit::OtherRun) => {
                ctx.log("scratch checkpoint belongs to other parameters; starting afresh");
                return None;
            }
            Err(Unfit::Damaged(e)) => e,
        },
        Err(e) => e,
    };
    let kept = match sealed::set_aside(path) {
        Ok(aside) => format!("moved it to {}", aside.display()),
        Err(e) => format!("could not move it aside ({e})"),
    };
    ctx.log(format!(
        "cannot resume from the scratch checkpoint: {problem}; {kept}; starting afresh"
    ));
    None
}

/// Saves the run's scratch checkpoint (see [`write_sealed`]).
pub(crate) fn save_scratch<T: Serialize>(
    path: &Path,
    magic: &[u8],
    value: &T,
) -> Result<(), StageError> {
    write_sealed(path, magic, value)
        .map_err(|e| StageError::Failed(format!("saving the scratch checkpoint: {e}")))
}
