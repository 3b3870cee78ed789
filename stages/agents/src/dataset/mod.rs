//! Offline datasets: an agent's experience stream stored in order, as the DQN Replay Dataset
//! records it (Agarwal, Schuurmans, Norouzi 2020, "An optimistic perspective on offline RL":
//! every transition a DQN agent saw over its whole training run, 50 checkpoints of 1M
//! transitions each per Atari game), in shards ([`writer`]) described by a [`Manifest`], read
//! back as a stream and loaded into a [`Replay`](crate::replay::Replay) for offline training,
//! whole or as the first fraction of each shard's episodes ([`reader`]).
//!
//! A shard is one zstd stream of records, each `[flags u8][action u8][reward f32 LE][frame]`:
//! - the frame is stored once, not stacked, in its observation's compact form (MinAtar's
//!   binary channels as bits, Atari's grayscale as bytes, classic control as f32 LE); stacking
//!   and n-step returns are rebuilt when sampling, as replay does;
//! - flags are replay's: [`FIRST`] (an episode's first frame), [`LAST`] (the frame that ended
//!   an episode: it starts no transition, action and reward are 0), [`TERMINAL`] (the
//!   transition from this frame ended the episode in the MDP; an episode with a [`LAST`] but
//!   no [`TERMINAL`] was cut by a time limit and bootstraps);
//! - rewards are the environment's, unclipped (the offline kinds clip as they are told).
//!
//! A shard holds `shard_size` transitions (the last one fewer), so a dataset of any size is
//! written and read in a bounded amount of memory; an episode may continue into the next shard.
//! Shards are compressed as they are written (the store keeps them as they are: it stores
//! frames that do not compress by an eighth raw) and the manifest names each by the blake3
//! digest of its bytes, which is also its address in the store.

pub mod reader;
pub mod writer;

use prunus_env::ObsKind;
use serde::{Deserialize, Serialize};

use crate::envs::EnvSettings;
use crate::replay::ObsKindSer;

pub use self::reader::{Loaded, Selection, load_replay, read_records};
pub use self::writer::{Collector, CollectorState};

/// First frame of an episode.
pub const FIRST: u8 = 1;
/// Final frame of an episode: starts no transition.
pub const LAST: u8 = 2;
/// The transition from this frame ended the episode in the MDP.
pub const TERMINAL: u8 = 4;

/// The dataset's index, `manifest.json`.
pub const MANIFEST: &str = "manifest.json";
/// Version of the shard record layout and manifest.
pub const FORMAT: u32 = 1;

/// The file name of shard `k`.
pub fn shard_name(k: usize) -> String {
    format!("shard-{k:05}.zst")
}

/// How many shards `transitions` transitions take at `shard_size` per shard.
pub fn shard_count(transitions: u64, shard_size: u64) -> usize {
    transitions.div_ceil(shard_size.max(1)) as usize
}

/// How one frame is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameFormat {
    pub kind: ObsKindSer,
    /// Elements of one frame.
    pub frame_len: usize,
}

impl FrameFormat {
    pub fn new(kind: ObsKind, frame_len: usize) -> Self {
        FrameFormat {
            kind: kind.into(),
            frame_len,
        }
    }

    /// Bytes of one stored frame.
    pub fn frame_bytes(&self) -> usize {
        match self.kind {
            ObsKindSer::Binary => self.frame_len.div_ceil(8),
            ObsKindSer::Byte => self.frame_len,
            ObsKindSer::Float => 4 * self.frame_len,
        }
    }

    /// Bytes of one record (flags, action, reward, frame).
    pub fn record_bytes(&self) -> usize {
        6 + self.frame_bytes()
    }
}

/// Where the transitions came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// `train` (a DQN training run's whole replay stream) or `checkpoint` (a trained policy).
    pub recipe: String,
    /// The collecting agent: its resolved settings (train) or the checkpoint's instance and file.
    pub agent: serde_json::Value,
    /// The policy's epsilon (checkpoint recipe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    pub seed: u64,
}

/// One shard in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    pub file: String,
    /// Transitions (records with an action) in the shard.
    pub transitions: u64,
    /// Records, episodes' final frames included.
    pub records: u64,
    /// Episodes that start in this shard (records flagged [`FIRST`]).
    pub episodes: u64,
    /// Uncompressed bytes of the records.
    pub raw_bytes: u64,
    /// Bytes of the shard file.
    pub bytes: u64,
    /// blake3 of the shard file's bytes (hex).
    pub digest: String,
}

/// `manifest.json`: what the shards hold and how to read them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub env: String,
    pub env_options: EnvSettings,
    /// Observation shape of one frame and frames per agent state.
    pub shape: Vec<usize>,
    pub frame_stack: usize,
    pub frame: FrameFormat,
    pub num_actions: usize,
    pub source: Source,
    /// Transitions in the dataset (agent steps recorded).
    pub transitions: u64,
    pub shard_size: u64,
    pub shards: Vec<ShardEntry>,
}

impl Manifest {
    pub fn read(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a dataset manifest: {e}", path.display()))?;
        if m.format != FORMAT {
            return Err(format!(
                "{} is dataset format {}; this prunus reads format {FORMAT}",
                path.display(),
                m.format
            ));
        }
        Ok(m)
    }

    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// Uncompressed bytes of all records.
    pub fn raw_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.raw_bytes).sum()
    }

    /// Bytes of all shard files.
    pub fn bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.bytes).sum()
    }
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub flags: u8,
    pub action: u8,
    pub reward: f32,
    /// The stored frame bytes (see [`FrameFormat`]).
    pub frame: Vec<u8>,
}

impl Record {
    pub fn is_first(&self) -> bool {
        self.flags & FIRST != 0
    }

    pub fn is_last(&self) -> bool {
        self.flags & LAST != 0
    }

    pub fn is_terminal(&self) -> bool {
        self.flags & TERMINAL != 0
    }
}
