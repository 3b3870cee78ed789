//! Checkpoint files.
//!
//! Two kinds, both a magic line followed by a bincode body and written atomically (temporary
//! file, then rename, so a kill never leaves a torn checkpoint):
//! - a [`Snapshot`] (`final.ckpt`, `ckpt-<k>.ckpt`): the online network, its pruning masks and
//!   where in training it was taken; what the probes read;
//! - a [`Resume`] (in the stage's scratch directory): everything needed to continue training
//!   bit for bit: both networks, Adam's state, the replay buffer, the loop's counters and
//!   random stream, the episode in progress, the hooks' state and the outputs so far
//!   ([`Progress`]). It is a [`sealed`] file: the scratch lives outside the store's digests,
//!   and resuming from a damaged one would publish wrong results under a correct key.

use std::io::Write;
use std::path::Path;

use burn::tensor::Device;
use prunus_results::{CheckpointEntry, ResultFile, ReturnsRow, SparsityRow};
use prunus_stage::sealed::{self, SealError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::agent::{AgentConfig, AgentState, load_network};
use crate::networks::QNetwork;
use crate::replay::Replay;
use crate::train::{IterationStats, LoopState, Trainer};

const SNAPSHOT_MAGIC: &[u8] = b"prunus-agents snapshot v2\n";
/// v3: the episode in progress records the environment's carry (MinAtar's sticky action).
pub(crate) const RESUME_MAGIC: &[u8] = b"prunus-agents resume v3\n";

/// A trained network at one point of training.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub agent: AgentConfig,
    /// burnpack bytes of the online network.
    pub online: Vec<u8>,
    /// Per kernel (in [`QNetwork::kernels`] order), `None` where dense.
    pub masks: Vec<Option<Vec<f32>>>,
    pub env_steps: u64,
    pub grad_steps: u64,
    pub iteration: u64,
}

impl Snapshot {
    /// The network on `device` (plain, no autodiff).
    pub fn network(&self, device: &Device) -> Result<QNetwork, String> {
        let config = self.agent.network_config();
        let mut scratch = rand_pcg::Pcg64::new(0, 0);
        load_network(
            QNetwork::with_head(&config, &self.agent.head(), &mut scratch, device),
            &self.online,
        )
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        write_atomic(path, SNAPSHOT_MAGIC, self)
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        read_checked(path, SNAPSHOT_MAGIC)
    }
}

/// Everything needed to continue a training run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Resume {
    /// Canonical form of the parameters the run was started with; a mismatch means the scratch
    /// belongs to another run and is ignored.
    pub fingerprint: String,
    pub agent: AgentState,
    pub replay: Replay,
    pub state: LoopState,
    pub hooks: Vec<Vec<u8>>,
    /// The outputs so far (serialized inline: the same bytes as three fields of `Resume`).
    pub progress: Progress,
}

/// Outputs accumulated during a run, kept in the resume checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Rows of `returns.csv` so far: each iteration's statistics and the network's sparsity.
    /// (Kept as statistics: [`prunus_results::ReturnsRow`] writes a missing return as `NaN`,
    /// which its serde form does for bincode too, so it cannot round-trip here.)
    pub rows: Vec<(IterationStats, f64)>,
    /// Rows of `sparsity.csv` so far.
    pub sparsity_rows: Vec<SparsityRow>,
    /// Intermediate snapshots taken so far, with their bytes.
    pub checkpoints: Vec<(CheckpointEntry, Snapshot)>,
}

impl Progress {
    /// Adds the rows of `sparsity.csv` for one point of training: each layer's sparsity.
    pub fn push_sparsities(&mut self, grad_steps: u64, layers: Vec<(String, f64)>) {
        let rows = layers.into_iter().map(|(layer, sparsity)| SparsityRow {
            grad_steps,
            layer,
            sparsity,
        });
        self.sparsity_rows.extend(rows);
    }

    /// Writes `returns.csv` and `sparsity.csv` into `dir`.
    pub fn write_tables(&self, dir: &Path) -> Result<(), prunus_results::Error> {
        prunus_results::write_csv(&dir.join(ReturnsRow::NAME), &self.returns_rows())?;
        prunus_results::write_csv(&dir.join(SparsityRow::NAME), &self.sparsity_rows)
    }

    /// The rows of `returns.csv`.
    pub fn returns_rows(&self) -> Vec<ReturnsRow> {
        self.rows
            .iter()
            .map(|(s, sparsity)| ReturnsRow {
                iteration: s.iteration,
                env_steps: s.env_steps,
                grad_steps: s.grad_steps,
                train_return: s.train_return,
                train_episodes: s.train_episodes,
                eval_return: s.eval_return,
                eval_episodes: s.eval_episodes,
                sparsity: *sparsity,
            })
            .collect()
    }
}

impl Resume {
    /// The checkpoint of `trainer` now, for the run with parameters `fingerprint`.
    pub fn of(fingerprint: &str, trainer: &Trainer, progress: &Progress) -> Result<Self, String> {
        Ok(Resume {
            fingerprint: fingerprint.to_string(),
            agent: trainer.agent.save()?,
            replay: trainer.replay.clone(),
            state: trainer.state.clone(),
            hooks: trainer.hooks.iter().map(|h| h.save()).collect(),
            progress: progress.clone(),
        })
    }

    /// Writes the checkpoint as a sealed file (atomically, with its digest).
    pub fn write(&self, path: &Path) -> Result<(), SealError> {
        write_sealed(path, RESUME_MAGIC, self)
    }

    /// The checkpoint at `path`, `None` if there is none. An error means the file is there
    /// but unusable (damaged, unsealed, or of another format), and says why, naming it.
    pub fn read(path: &Path) -> Result<Option<Self>, String> {
        read_sealed(path, RESUME_MAGIC)
    }
}

/// Writes `value` as a sealed scratch file (atomically, with its digest): `magic`, then bincode.
pub fn write_sealed<T: Serialize>(path: &Path, magic: &[u8], value: &T) -> Result<(), SealError> {
    sealed::write(path, |w| {
        w.write_all(magic)?;
        bincode::serialize_into(w, value).map_err(std::io::Error::other)
    })
}

/// The sealed scratch file at `path`, `None` if there is none. An error means the file is there
/// but unusable (damaged, unsealed, or of another format), and says why, naming it.
pub fn read_sealed<T: DeserializeOwned>(path: &Path, magic: &[u8]) -> Result<Option<T>, String> {
    let bytes = match sealed::read(path) {
        Ok(b) => b,
        Err(SealError::Missing { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    decode(path, &bytes, magic).map(Some)
}

fn write_atomic<T: Serialize>(path: &Path, magic: &[u8], value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        file.write_all(magic)?;
        bincode::serialize_into(&mut file, value).map_err(std::io::Error::other)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn read_checked<T: DeserializeOwned>(path: &Path, magic: &[u8]) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    decode(path, &bytes, magic)
}

fn decode<T: DeserializeOwned>(path: &Path, bytes: &[u8], magic: &[u8]) -> Result<T, String> {
    let body = bytes.strip_prefix(magic).ok_or_else(|| {
        format!(
            "{} is not a {} (wrong header); was it written by another version of prunus-agents?",
            path.display(),
            String::from_utf8_lossy(magic).trim()
        )
    })?;
    bincode::deserialize(body).map_err(|e| format!("{} is corrupt: {e}", path.display()))
}

const PROBE_MAGIC: &[u8] = b"prunus-agents probe batch v1\n";

/// A fixed batch of transitions for the probes (`probe_batch.bin`): flattened stacked states
/// `[batch, state_len]`, actions, n-step returns, next states and bootstrap discounts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeBatch {
    pub state_len: usize,
    pub states: Vec<f32>,
    pub actions: Vec<usize>,
    pub returns: Vec<f32>,
    pub next_states: Vec<f32>,
    pub discounts: Vec<f32>,
}

impl ProbeBatch {
    pub fn from_batch(batch: &crate::replay::Batch, state_len: usize) -> Self {
        ProbeBatch {
            state_len,
            states: batch.states.clone(),
            actions: batch.actions.clone(),
            returns: batch.returns.clone(),
            next_states: batch.next_states.clone(),
            discounts: batch.discounts.clone(),
        }
    }

    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        write_atomic(path, PROBE_MAGIC, self)
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        read_checked(path, PROBE_MAGIC)
    }
}
