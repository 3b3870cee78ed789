//! Environments: MinAtar (native Rust), ALE Atari with Dopamine's preprocessing, classic control.
//!
//! Every environment implements [`Env`]. Agents see one frame at a time; frame stacking (4 for
//! Atari, 1 elsewhere, [`Spec::frame_stack`]) is done by the replay buffer, which stores each
//! frame once in the compact dtype given by [`ObsKind`].

use std::fmt;

/// The element type of an observation, which is also how replay stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObsKind {
    /// 0/1 values (MinAtar's boolean channels); replay may pack them as bits.
    Binary,
    /// 0..=255 (Atari grayscale); the network scales by 1/255.
    Byte,
    /// Real-valued features (classic control).
    Float,
}

/// Static description of an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Observation shape of one frame: `[channels, height, width]` for images, `[n]` for vectors.
    pub shape: Vec<usize>,
    pub kind: ObsKind,
    pub num_actions: usize,
    /// How many consecutive frames the agent stacks (Dopamine: 4 for Atari, 1 for MinAtar).
    pub frame_stack: usize,
}

/// One frame, borrowed from the environment's own buffer, channel-major (`[c][h][w]`).
#[derive(Clone, Copy, Debug)]
pub enum Observation<'a> {
    Binary(&'a [u8]),
    Byte(&'a [u8]),
    Float(&'a [f32]),
}

/// The outcome of one agent step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Step {
    /// Raw (unclipped) reward summed over the step's frames; agents clip for learning.
    pub reward: f32,
    /// The episode ended in the MDP (game over).
    pub terminal: bool,
    /// The episode was cut by a time limit (bootstrapping should continue).
    pub truncated: bool,
}

/// An environment: deterministic given its seed.
pub trait Env: Send {
    fn spec(&self) -> &Spec;
    /// Starts a new episode; `Some(seed)` reseeds the environment's random stream first.
    fn reset(&mut self, seed: Option<u64>);
    /// Advances one agent step. Errors only on an invalid action.
    fn step(&mut self, action: usize) -> Result<Step, EnvError>;
    /// The current frame.
    fn observation(&self) -> Observation<'_>;
    /// Remaining lives, where the game has them.
    fn lives(&self) -> Option<u32> {
        None
    }
    /// An independent copy (same state and random stream), for vectorising or evaluation.
    fn boxed_clone(&self) -> Box<dyn Env>;
}

/// Errors from creating or stepping an environment.
#[derive(Debug)]
pub enum EnvError {
    UnknownGame { name: String, known: Vec<String> },
    ActionOutOfRange { action: usize, num_actions: usize },
    Other(String),
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvError::UnknownGame { name, known } => {
                write!(f, "unknown game `{name}`; known games: {}", known.join(", "))
            }
            EnvError::ActionOutOfRange { action, num_actions } => write!(
                f,
                "action {action} is out of range: this environment has {num_actions} actions (0..{num_actions})"
            ),
            EnvError::Other(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for EnvError {}
