//! The error of every figure.

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("{0}")]
    Data(String),
}
