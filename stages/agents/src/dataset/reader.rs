//! Reading a dataset back: records streamed shard by shard ([`read_records`]), optionally only
//! the first fraction of each shard's episodes ([`Selection`]), and loaded into a
//! [`Replay`] that offline training samples from ([`load_replay`]).
//!
//! The subset is Dopamine's: its offline agents read the DQN Replay Dataset through TFDS
//! (`dopamine/labs/offline_rl/tfds_replay.py` at google/dopamine@1093179), taking the first
//! `percent`% of the episodes of every checkpoint's split; here a shard plays the checkpoint
//! (1M transitions by default, the dataset's checkpoint size). An episode belongs to the shard
//! it starts in and is taken whole, even where it runs into the next shard; the count taken is
//! `round(fraction · episodes)`, TFDS's "closest" rounding of a percent slice. Reading stops
//! at the first episode of a shard past its share, so a 5% subset decodes about 5% of the data.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use prunus_env::{Action, Observation};

use super::{Manifest, Record};
use crate::replay::{ObsKindSer, Replay, ReplayConfig};

/// Which episodes of each shard are read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Selection {
    /// Fraction of each shard's episodes, from its first (in (0, 1]).
    pub fraction: f64,
}

impl Selection {
    pub fn all() -> Self {
        Selection { fraction: 1.0 }
    }

    /// Episodes taken from a shard in which `episodes` start.
    pub fn take(&self, episodes: u64) -> u64 {
        if self.fraction >= 1.0 {
            episodes
        } else {
            ((self.fraction * episodes as f64).round() as u64).min(episodes)
        }
    }
}

/// Calls `f` on every selected record, in order; `shards` are the files of
/// `manifest.shards`, in order.
pub fn read_records(
    manifest: &Manifest,
    shards: &[PathBuf],
    selection: Selection,
    mut f: impl FnMut(&Record) -> Result<(), String>,
) -> Result<(), String> {
    if shards.len() != manifest.shards.len() {
        return Err(format!(
            "the manifest lists {} shards, {} were given",
            manifest.shards.len(),
            shards.len()
        ));
    }
    let size = manifest.frame.record_bytes();
    let mut buf = vec![0u8; size];
    let mut record = Record {
        flags: 0,
        action: 0,
        reward: 0.0,
        frame: Vec::with_capacity(manifest.frame.frame_bytes()),
    };
    // Whether the episode in progress (possibly from an earlier shard) is selected.
    let mut included = false;
    for (entry, path) in manifest.shards.iter().zip(shards) {
        let take = selection.take(entry.episodes);
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut stream =
            zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(1 << 20, file))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut started = 0u64;
        for _ in 0..entry.records {
            stream.read_exact(&mut buf).map_err(|e| {
                format!(
                    "{} ({}) is truncated or corrupt: {e}",
                    entry.file,
                    path.display()
                )
            })?;
            record.flags = buf[0];
            record.action = buf[1];
            record.reward = f32::from_le_bytes(buf[2..6].try_into().expect("4 bytes"));
            record.frame.clear();
            record.frame.extend_from_slice(&buf[6..]);
            if record.is_first() {
                if started >= take {
                    // The rest of the shard, and what of its last episode runs on, is unselected.
                    included = false;
                    break;
                }
                started += 1;
                included = true;
            }
            if included {
                f(&record)?;
            }
        }
    }
    Ok(())
}

/// What [`load_replay`] loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub transitions: u64,
    pub episodes: u64,
}

/// The selected records in a replay of `stack`-frame states and `n_step` returns (uniform
/// sampling), rewards clipped to [-1, 1] when `clip_rewards`. The replay holds the selection
/// in memory (in its compact frames), as Dopamine's offline agents hold theirs.
pub fn load_replay(
    manifest: &Manifest,
    shards: &[PathBuf],
    selection: Selection,
    n_step: usize,
    gamma: f64,
    clip_rewards: bool,
) -> Result<(Replay, Loaded), String> {
    let records: u64 = manifest.shards.iter().map(|s| s.records).sum();
    let frame_len = manifest.frame.frame_len;
    let capacity = (records as usize).max(n_step + manifest.frame_stack + 2);
    let mut replay = Replay::new(ReplayConfig {
        capacity,
        frame_len,
        kind: manifest.frame.kind,
        stack: manifest.frame_stack,
        n_step,
        gamma,
        prioritized: false,
    });
    // Frames the selection will hold: each shard's share of its records, a little over.
    let expected: f64 = manifest
        .shards
        .iter()
        .map(|s| s.records as f64 * selection.take(s.episodes) as f64 / s.episodes.max(1) as f64)
        .sum();
    replay.reserve((expected * 1.05) as usize + 1_000);
    let mut loaded = Loaded {
        transitions: 0,
        episodes: 0,
    };
    let mut unpacked = vec![0u8; frame_len];
    let mut floats = vec![0f32; frame_len];
    read_records(manifest, shards, selection, |r| {
        let obs = match manifest.frame.kind {
            ObsKindSer::Binary => {
                for (i, o) in unpacked.iter_mut().enumerate() {
                    *o = (r.frame[i / 8] >> (i % 8)) & 1;
                }
                Observation::Binary(&unpacked)
            }
            ObsKindSer::Byte => Observation::Byte(&r.frame),
            ObsKindSer::Float => {
                for (o, b) in floats.iter_mut().zip(r.frame.chunks_exact(4)) {
                    *o = f32::from_le_bytes(b.try_into().expect("4 bytes"));
                }
                Observation::Float(&floats)
            }
        };
        loaded.episodes += r.is_first() as u64;
        if r.is_last() {
            replay.end_episode(obs);
        } else {
            let reward = if clip_rewards {
                r.reward.clamp(-1.0, 1.0)
            } else {
                r.reward
            };
            replay.push(
                obs,
                Action::Discrete(r.action as usize),
                reward,
                r.is_terminal(),
            );
            loaded.transitions += 1;
        }
        Ok(())
    })?;
    Ok((replay, loaded))
}
