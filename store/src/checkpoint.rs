//! An unfinished stage's checkpoint (its `scratch/<key>/` directory) shared through a
//! [`Remote`], so that a batch job stopped on one node (preempted, requeued, at its time
//! limit) resumes on another node that has a store of its own.
//!
//! The scratch files go up as blobs; a checkpoint entry names them. It is the envelope of an
//! action entry (see `transfer`) around a manifest of its own kind,
//! `{"checkpoint_of": "<key>", "files": {"<relative path>": {"digest": .., "size": ..}}}`,
//! which an action manifest cannot be mistaken for, nor the other way round. Unlike an action
//! entry it is replaced by each newer checkpoint of the stage, and its signatures cover
//! [`signed_key`], a key no stage has, so a signed checkpoint never passes for a signed
//! result. A checkpoint is resumed from only if a trusted key signed it: what a stage
//! resumes from decides what it publishes.
//!
//! A fetched checkpoint is assembled from verified blobs in a work directory under the
//! stage's lock and renamed into `scratch/` whole, and only where the local scratch is empty
//! (a checkpoint here is this node's own, at least as new).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::IoContext;
use crate::outputs::{check_output_name, output_path};
use crate::remote::{EntryTrust, MAX_ENTRY_BYTES, Remote};
use crate::transfer::{ENTRY_FORMAT, Entry, seal};
use crate::{BlobRef, Digest, Store, StoreError};

/// A checkpoint entry's manifest (see the module's documentation).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Files {
    checkpoint_of: Digest,
    files: BTreeMap<String, BlobRef>,
}

/// What a checkpoint entry's signatures are made over in place of the stage key.
pub fn signed_key(key: &Digest) -> Digest {
    Digest::of(format!("prunus checkpoint of {key}").as_bytes())
}

impl Store {
    /// Pushes the scratch files of `key` as blobs, then its checkpoint entry signed by
    /// `trust`, replacing the remote's last one. Returns the files pushed: 0, and nothing
    /// sent, if the scratch is empty.
    pub fn push_checkpoint(
        &self,
        remote: &dyn Remote,
        key: &Digest,
        trust: &dyn EntryTrust,
    ) -> Result<usize, StoreError> {
        let dir = self.root.join("scratch").join(key.to_string());
        let mut files = BTreeMap::new();
        for (name, path) in scratch_files(&dir)? {
            let blob = self.put_file(&path)?;
            self.push_blob(remote, &blob.digest)?;
            files.insert(name, blob);
        }
        if files.is_empty() {
            return Ok(0);
        }
        let n = files.len();
        let manifest = Files {
            checkpoint_of: *key,
            files,
        };
        let manifest = serde_json::to_string(&manifest).expect("manifests serialize");
        let entry = seal(key, &signed_key(key), manifest, trust)?;
        remote.put_checkpoint(key, &entry)?;
        Ok(n)
    }

    /// Fetches the remote's checkpoint of `key` into the empty scratch of `key`, if it has
    /// one that `trust` accepts. Returns the files fetched: 0 if the local scratch has files
    /// already or the remote has no checkpoint.
    pub fn fetch_checkpoint(
        &self,
        remote: &dyn Remote,
        key: &Digest,
        trust: &dyn EntryTrust,
    ) -> Result<usize, StoreError> {
        let lock = self.lock_stage(key)?;
        let dir = self.root.join("scratch").join(key.to_string());
        if !scratch_files(&dir)?.is_empty() {
            return Ok(0);
        }
        let Some(bytes) = remote.get_checkpoint(key)? else {
            return Ok(0);
        };
        let files = open_checkpoint(remote, key, &bytes, trust)?;
        let work = self.work_dir(&lock)?;
        let assembled = work.path().join("scratch");
        fs::create_dir(&assembled).ctx("create", &assembled)?;
        for (name, blob) in &files.files {
            self.fetch_blob(remote, blob)?;
            let path =
                output_path(&assembled, name).map_err(|reason| corrupt(remote, key, reason))?;
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).ctx("create", parent)?;
            }
            let mut out = fs::File::create(&path).ctx("create", &path)?;
            std::io::copy(&mut self.read(&blob.digest)?, &mut out).ctx("write", &path)?;
            out.sync_all().ctx("fsync", &path)?;
        }
        if dir.exists() {
            fs::remove_dir_all(&dir).ctx("replace the empty scratch", &dir)?;
        }
        fs::rename(&assembled, &dir).ctx("move into place", &dir)?;
        crate::sync_dir(dir.parent().expect("scratch has a parent"))?;
        Ok(files.files.len())
    }
}

/// Checks a checkpoint entry from `remote` as `open_entry` checks an action entry: size and
/// envelope, then signatures, then what the manifest says.
fn open_checkpoint(
    remote: &dyn Remote,
    key: &Digest,
    bytes: &[u8],
    trust: &dyn EntryTrust,
) -> Result<Files, StoreError> {
    if bytes.len() as u64 > MAX_ENTRY_BYTES {
        let reason = format!("it is larger than {MAX_ENTRY_BYTES} bytes");
        return Err(corrupt(remote, key, reason));
    }
    let entry: Entry =
        serde_json::from_slice(bytes).map_err(|e| corrupt(remote, key, e.to_string()))?;
    if entry.format != ENTRY_FORMAT || entry.key != *key {
        let reason = format!("format {} for key {}", entry.format, entry.key);
        return Err(corrupt(remote, key, reason));
    }
    trust
        .verify(
            &signed_key(key),
            entry.manifest.as_bytes(),
            &entry.signatures,
        )
        .map_err(|reason| StoreError::UntrustedCheckpoint {
            remote: remote.name().into(),
            key: *key,
            reason,
        })?;
    let files: Files =
        serde_json::from_str(&entry.manifest).map_err(|e| corrupt(remote, key, e.to_string()))?;
    if files.checkpoint_of != *key {
        let reason = format!("it is the checkpoint of {}", files.checkpoint_of);
        return Err(corrupt(remote, key, reason));
    }
    for name in files.files.keys() {
        check_output_name(name).map_err(|reason| corrupt(remote, key, reason))?;
    }
    Ok(files)
}

fn corrupt(remote: &dyn Remote, key: &Digest, reason: String) -> StoreError {
    StoreError::RemoteCorrupt {
        remote: remote.name().into(),
        object: format!("the checkpoint entry for key {key}"),
        reason,
    }
}

/// The regular files under `dir` (none if it is missing), by `/`-separated relative name.
fn scratch_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io("list", &d, e)),
        };
        for entry in entries {
            let entry = entry.ctx("list", &d)?;
            let kind = entry.file_type().ctx("list", &d)?;
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                let path = entry.path();
                let rel = path.strip_prefix(dir).expect("under dir");
                let name = rel
                    .to_string_lossy()
                    .replace(std::path::MAIN_SEPARATOR, "/");
                out.push((name, path));
            }
        }
    }
    out.sort();
    Ok(out)
}
