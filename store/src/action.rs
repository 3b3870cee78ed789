//! The action cache's records: a stage key's outputs and how the run that made them went.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{BlobRef, Digest};

/// How the run that produced an action result went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub started_unix_ms: u64,
    pub ended_unix_ms: u64,
    pub duration_s: f64,
    pub host: String,
    pub prunus_version: String,
    pub exit_status: String,
    /// The run's captured log, stored as a blob.
    pub log: Option<BlobRef>,
}

/// A stage key's published result: named outputs, run metadata, and the key's components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    pub outputs: BTreeMap<String, BlobRef>,
    pub meta: RunMeta,
    /// The engine's description of what went into the key (opaque to the store), so that
    /// `prunus store show` and "why does this rerun" can explain a key.
    pub key_info: serde_json::Value,
}

impl ActionResult {
    /// Every blob the result refers to (outputs, then the log), with what refers to it.
    pub fn blobs(&self) -> impl Iterator<Item = (String, BlobRef)> + '_ {
        self.outputs
            .iter()
            .map(|(name, b)| (format!("output {name:?}"), *b))
            .chain(self.meta.log.map(|b| ("the run log".to_string(), b)))
    }
}

/// The on-disk manifest: the result plus its key and a format number.
#[derive(Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: u32,
    pub key: Digest,
    #[serde(flatten)]
    pub result: ActionResult,
}

pub(crate) const MANIFEST_FORMAT: u32 = 1;

impl Manifest {
    /// The manifest of `result` under `key`, as the store writes it (and as a remote entry
    /// carries it, so that what a signature covers is exactly what gets parsed).
    pub(crate) fn to_json(key: &Digest, result: &ActionResult) -> Vec<u8> {
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            key: *key,
            result: result.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&manifest).expect("manifests serialize");
        json.push(b'\n');
        json
    }

    /// Parses a manifest that must record `key`; the error says why it is unusable.
    pub(crate) fn parse(key: &Digest, bytes: &[u8]) -> Result<ActionResult, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if m.format != MANIFEST_FORMAT {
            return Err(format!(
                "format {} is not supported (this prunus knows {MANIFEST_FORMAT})",
                m.format
            ));
        }
        if m.key != *key {
            return Err(format!("it records key {}", m.key));
        }
        for name in m.result.outputs.keys() {
            crate::check_output_name(name)?;
        }
        Ok(m.result)
    }
}
