//! Writing a dataset: a [`Collector`] turns an experience stream into shard files, one zstd
//! stream at a time, hashing each file's bytes as they are written, so nothing larger than a
//! record and the compressor's window is ever in memory.
//!
//! Its [`CollectorState`] at a shard boundary (no shard open) is all a resumed collection needs:
//! the finished shards stay on disk, are checked against their recorded digests, and the next
//! shard is written afresh.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use prunus_env::Observation;
use serde::{Deserialize, Serialize};

use super::{FIRST, FrameFormat, LAST, ShardEntry, TERMINAL, shard_name};
use crate::train::Recorded;

/// zstd level of the shards (zstd's default, as the store uses).
const LEVEL: i32 = 3;

/// What a collection has written so far, at a shard boundary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectorState {
    /// Whether the next frame starts an episode.
    pub at_episode_start: bool,
    /// Transitions written.
    pub transitions: u64,
    /// The finished shards.
    pub shards: Vec<ShardEntry>,
}

/// Bytes passing to a file, hashed and counted on the way.
struct Hashing {
    file: BufWriter<File>,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

struct OpenShard {
    encoder: zstd::stream::write::Encoder<'static, Hashing>,
    entry: ShardEntry,
}

/// Writes records into `shard-<k>.zst` files in a directory, `shard_size` transitions each.
pub struct Collector {
    dir: PathBuf,
    format: FrameFormat,
    shard_size: u64,
    state: CollectorState,
    open: Option<OpenShard>,
    frame: Vec<u8>,
}

impl Collector {
    /// A new dataset in `dir` (which must exist).
    pub fn new(dir: &Path, format: FrameFormat, shard_size: u64) -> Self {
        Self::resume(
            dir,
            format,
            shard_size,
            CollectorState {
                at_episode_start: true,
                ..CollectorState::default()
            },
        )
    }

    /// Continues a collection from `state`; [`verify`](Self::verify) its shards first.
    pub fn resume(dir: &Path, format: FrameFormat, shard_size: u64, state: CollectorState) -> Self {
        assert!(shard_size > 0, "shard size must be positive");
        Collector {
            dir: dir.to_path_buf(),
            format,
            shard_size,
            state,
            open: None,
            frame: Vec::with_capacity(format.frame_bytes()),
        }
    }

    /// Whether every finished shard of `state` is in `dir` with its recorded size and digest.
    pub fn verify(dir: &Path, state: &CollectorState) -> Result<(), String> {
        for s in &state.shards {
            let (bytes, digest) =
                digest_file(&dir.join(&s.file)).map_err(|e| format!("shard {}: {e}", s.file))?;
            if bytes != s.bytes || digest != s.digest {
                return Err(format!(
                    "shard {} does not match its recorded digest",
                    s.file
                ));
            }
        }
        Ok(())
    }

    /// The state at the last shard boundary (the open shard, if any, is not in it).
    pub fn state(&self) -> &CollectorState {
        &self.state
    }

    /// Whether no shard is open: [`state`](Self::state) then describes everything written.
    pub fn at_boundary(&self) -> bool {
        self.open.is_none()
    }

    /// Transitions written, the open shard's included.
    pub fn transitions(&self) -> u64 {
        self.state.transitions + self.open.as_ref().map_or(0, |o| o.entry.transitions)
    }

    /// Appends one item of a trainer's experience stream.
    pub fn push(&mut self, item: &Recorded) -> io::Result<()> {
        match item {
            Recorded::Step {
                frame,
                action,
                reward,
                terminal,
            } => self.push_step(frame.view(), *action, *reward, *terminal),
            Recorded::EpisodeEnd { frame } => self.end_episode(frame.view()),
        }
    }

    /// Appends frame `obs` and the transition that starts from it.
    pub fn push_step(
        &mut self,
        obs: Observation<'_>,
        action: u8,
        reward: f32,
        terminal: bool,
    ) -> io::Result<()> {
        self.close_if_full()?;
        let mut flags = if terminal { TERMINAL } else { 0 };
        if self.state.at_episode_start {
            flags |= FIRST;
        }
        self.state.at_episode_start = false;
        self.write(flags, action, reward, obs, true)
    }

    /// Appends the frame that ended an episode (it goes into the shard of the episode's last
    /// transition, full or not).
    pub fn end_episode(&mut self, obs: Observation<'_>) -> io::Result<()> {
        let flags = LAST
            | if self.state.at_episode_start {
                FIRST
            } else {
                0
            };
        self.state.at_episode_start = true;
        self.write(flags, 0, 0.0, obs, false)
    }

    /// Closes the open shard if it holds `shard_size` transitions; returns whether it did. (The
    /// next step closes a full shard anyway; call this after a step's end-of-episode record,
    /// never between the two, to reach a boundary where [`state`](Self::state) is complete.)
    pub fn close_if_full(&mut self) -> io::Result<bool> {
        match &self.open {
            Some(o) if o.entry.transitions >= self.shard_size => {
                self.close()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Closes the last shard; returns every shard's entry.
    pub fn finish(mut self) -> io::Result<CollectorState> {
        if self.open.is_some() {
            self.close()?;
        }
        Ok(self.state)
    }

    fn write(
        &mut self,
        flags: u8,
        action: u8,
        reward: f32,
        obs: Observation<'_>,
        transition: bool,
    ) -> io::Result<()> {
        if self.open.is_none() {
            self.open_shard()?;
        }
        encode_frame(obs, self.format, &mut self.frame)?;
        let open = self.open.as_mut().expect("a shard is open");
        let head = [flags, action];
        open.encoder.write_all(&head)?;
        open.encoder.write_all(&reward.to_le_bytes())?;
        open.encoder.write_all(&self.frame)?;
        let e = &mut open.entry;
        e.records += 1;
        e.raw_bytes += self.format.record_bytes() as u64;
        e.transitions += transition as u64;
        e.episodes += (flags & FIRST != 0) as u64;
        Ok(())
    }

    fn open_shard(&mut self) -> io::Result<()> {
        let file = shard_name(self.state.shards.len());
        let out = Hashing {
            file: BufWriter::with_capacity(1 << 20, File::create(self.dir.join(&file))?),
            hasher: blake3::Hasher::new(),
            bytes: 0,
        };
        let mut encoder = zstd::stream::write::Encoder::new(out, LEVEL)?;
        // The frame records its size nowhere and no checksum: the manifest's digest covers it.
        encoder.include_checksum(false)?;
        self.open = Some(OpenShard {
            encoder,
            entry: ShardEntry {
                file,
                transitions: 0,
                records: 0,
                episodes: 0,
                raw_bytes: 0,
                bytes: 0,
                digest: String::new(),
            },
        });
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        let OpenShard { encoder, mut entry } = self.open.take().expect("a shard is open");
        let mut out = encoder.finish()?;
        out.flush()?;
        let file = out.file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        entry.bytes = out.bytes;
        entry.digest = out.hasher.finalize().to_hex().to_string();
        self.state.transitions += entry.transitions;
        self.state.shards.push(entry);
        Ok(())
    }
}

/// Writes `obs` in its stored form into `out`.
fn encode_frame(obs: Observation<'_>, format: FrameFormat, out: &mut Vec<u8>) -> io::Result<()> {
    use crate::replay::ObsKindSer as K;
    out.clear();
    match (format.kind, obs) {
        (K::Binary, Observation::Binary(v)) if v.len() == format.frame_len => {
            out.resize(format.frame_bytes(), 0);
            for (i, &b) in v.iter().enumerate() {
                if b != 0 {
                    out[i / 8] |= 1 << (i % 8);
                }
            }
        }
        (K::Byte, Observation::Byte(v)) if v.len() == format.frame_len => out.extend_from_slice(v),
        (K::Float, Observation::Float(v)) if v.len() == format.frame_len => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        _ => {
            return Err(io::Error::other(
                "observation does not match the dataset's frame format",
            ));
        }
    }
    Ok(())
}

/// Size and blake3 (hex) of a file's bytes.
pub fn digest_file(path: &Path) -> io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hasher.finalize().to_hex().to_string()))
}
