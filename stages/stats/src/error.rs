//! The error of every statistic.

/// Why a statistic could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("empty score set: {0}")]
    Empty(String),
    #[error("scores must be finite numbers: {0}")]
    NotFinite(String),
    #[error("score sets do not match: {0}")]
    Mismatch(String),
    #[error("{0}")]
    Unknown(String),
}
