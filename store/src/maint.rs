//! Maintenance: `verify` (re-hash and quarantine), `gc` (drop what no root reaches), `du`.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::{IoContext, StoreError};
use crate::{Digest, Store, blob};

/// Something `verify` moved to `quarantine/`.
#[derive(Debug, Clone, Serialize)]
pub struct Quarantined {
    /// The blob digest or action key (or the odd file name) involved.
    pub name: String,
    pub reason: String,
    pub moved_to: PathBuf,
}

/// A manifest that names a blob the store does not hold (a cache miss until republished).
#[derive(Debug, Clone, Serialize)]
pub struct Dangling {
    pub key: Digest,
    pub what: String,
    pub digest: Digest,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub blobs: u64,
    /// Uncompressed bytes re-hashed.
    pub bytes: u64,
    pub actions: u64,
    pub corrupt_blobs: Vec<Quarantined>,
    pub bad_manifests: Vec<Quarantined>,
    pub dangling: Vec<Dangling>,
    /// Files left in `tmp/` by interrupted writers (invisible; `gc` removes old ones).
    pub temp_files: u64,
}

impl VerifyReport {
    /// No corrupt blob, no unreadable manifest, no manifest pointing at a missing blob.
    pub fn is_clean(&self) -> bool {
        self.corrupt_blobs.is_empty() && self.bad_manifests.is_empty() && self.dangling.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "verified {} blobs ({}) and {} actions: {}",
            self.blobs,
            human_bytes(self.bytes),
            self.actions,
            if self.is_clean() {
                "clean"
            } else {
                "PROBLEMS FOUND"
            }
        )?;
        for q in &self.corrupt_blobs {
            writeln!(
                f,
                "  corrupt blob {}: {} (moved to {})",
                q.name,
                q.reason,
                q.moved_to.display()
            )?;
        }
        for q in &self.bad_manifests {
            writeln!(
                f,
                "  unreadable manifest {}: {} (moved to {})",
                q.name,
                q.reason,
                q.moved_to.display()
            )?;
        }
        for d in &self.dangling {
            writeln!(
                f,
                "  action {}: {} refers to missing blob {}",
                d.key, d.what, d.digest
            )?;
        }
        if !self.dangling.is_empty() || !self.corrupt_blobs.is_empty() {
            writeln!(
                f,
                "  the stages of these actions rerun on the next `prunus run` and republish them"
            )?;
        }
        if self.temp_files > 0 {
            writeln!(
                f,
                "  {} leftover temp files from interrupted writes (`prunus store gc` removes them)",
                self.temp_files
            )?;
        }
        Ok(())
    }
}

/// What `gc` keeps and for how long.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Action keys to keep (every ref's key is kept as well).
    pub roots: Vec<Digest>,
    /// Unfinished stages' scratch directories to keep beyond those of the roots, newest first.
    pub keep_checkpoints: usize,
    /// Anything younger than this is kept: it may belong to a run in progress.
    pub grace: Duration,
}

/// What `gc` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub actions_kept: u64,
    pub actions_removed: u64,
    pub blobs_kept: u64,
    pub blobs_removed: u64,
    /// Compressed bytes of the removed blobs and manifests.
    pub bytes_freed: u64,
    pub scratch_kept: u64,
    pub scratch_removed: u64,
    pub scratch_bytes_freed: u64,
    pub temp_removed: u64,
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "removed {} actions and {} blobs ({}); kept {} actions and {} blobs",
            self.actions_removed,
            self.blobs_removed,
            human_bytes(self.bytes_freed),
            self.actions_kept,
            self.blobs_kept
        )?;
        writeln!(
            f,
            "removed {} scratch directories ({}); kept {}; removed {} leftover temp files",
            self.scratch_removed,
            human_bytes(self.scratch_bytes_freed),
            self.scratch_kept,
            self.temp_removed
        )
    }
}

/// Sizes of what the store holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DuReport {
    pub blobs: u64,
    /// Bytes on disk (compressed).
    pub stored_bytes: u64,
    /// Bytes the blobs hold uncompressed.
    pub logical_bytes: u64,
    /// `logical_bytes / stored_bytes` (1.0 for an empty store).
    pub compression_ratio: f64,
    pub actions: u64,
    pub refs: u64,
    pub scratch_dirs: u64,
    pub scratch_bytes: u64,
    pub temp_files: u64,
    pub temp_bytes: u64,
    pub quarantined: u64,
    pub quarantine_bytes: u64,
}

impl fmt::Display for DuReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "blobs: {} holding {} in {} on disk (compression ratio {:.2})",
            self.blobs,
            human_bytes(self.logical_bytes),
            human_bytes(self.stored_bytes),
            self.compression_ratio
        )?;
        writeln!(f, "actions: {}, refs: {}", self.actions, self.refs)?;
        writeln!(
            f,
            "scratch: {} directories, {}",
            self.scratch_dirs,
            human_bytes(self.scratch_bytes)
        )?;
        if self.temp_files > 0 {
            writeln!(
                f,
                "temp: {} files, {}",
                self.temp_files,
                human_bytes(self.temp_bytes)
            )?;
        }
        if self.quarantined > 0 {
            writeln!(
                f,
                "quarantine: {} files, {}",
                self.quarantined,
                human_bytes(self.quarantine_bytes)
            )?;
        }
        Ok(())
    }
}

/// `1.50 GiB`-style sizes.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

impl Store {
    /// Re-hashes every blob (in parallel), moves corrupt blobs and unreadable manifests to
    /// `quarantine/`, and reports manifests that name missing blobs.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        // Large blobs decode on all cores by themselves, so they go one at a time; small ones
        // decode on the calling thread, so they go several at a time.
        let (large, small): (Vec<_>, Vec<_>) = self
            .list_fanout_raw("blobs")?
            .into_iter()
            .partition(|(_, path)| {
                blob::read_size(path).is_ok_and(|s| s.is_ok_and(|n| n > blob::FRAME as u64))
            });
        let next = AtomicUsize::new(0);
        // (sound blobs, their bytes, corrupt ones with a reason)
        type Found = (u64, u64, Vec<(String, PathBuf, String)>);
        let found: Mutex<Found> = Mutex::new((0, 0, Vec::new()));
        let first_err: Mutex<Option<StoreError>> = Mutex::new(None);
        let check = |(name, path): &(String, PathBuf)| match self.check_blob(name, path) {
            Ok(Ok(size)) => {
                let mut g = found.lock().unwrap();
                g.0 += 1;
                g.1 += size;
            }
            Ok(Err(reason)) => found
                .lock()
                .unwrap()
                .2
                .push((name.clone(), path.clone(), reason)),
            Err(e) => {
                first_err.lock().unwrap().get_or_insert(e);
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::thread::scope(|s| {
            s.spawn(|| large.iter().for_each(check));
            for _ in 0..threads {
                s.spawn(|| {
                    while let Some(file) = small.get(next.fetch_add(1, Ordering::Relaxed)) {
                        check(file);
                    }
                });
            }
        });
        if let Some(e) = first_err.into_inner().unwrap() {
            return Err(e);
        }
        let (ok, bytes, mut bad) = found.into_inner().unwrap();
        bad.sort();
        report.blobs = ok + bad.len() as u64;
        report.bytes = bytes;
        for (name, path, reason) in bad {
            let moved_to = self.quarantine(&path)?;
            let name = name.strip_suffix(".zst").unwrap_or(&name).to_string();
            report.corrupt_blobs.push(Quarantined {
                name,
                reason,
                moved_to,
            });
        }

        for (name, path) in self.list_fanout_raw("actions")? {
            let key = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<Digest>().ok());
            let Some(key) = key.filter(|k| self.action_path(k) == path) else {
                let moved_to = self.quarantine(&path)?;
                report.bad_manifests.push(Quarantined {
                    name,
                    reason: "not named <key>.json in its fan-out directory".into(),
                    moved_to,
                });
                continue;
            };
            report.actions += 1;
            match self.read_manifest(&key, &path) {
                Ok(Some(result)) => {
                    for (what, b) in result.blobs() {
                        if !self.has(&b.digest) {
                            report.dangling.push(Dangling {
                                key,
                                what,
                                digest: b.digest,
                            });
                        }
                    }
                }
                Ok(None) => {} // removed meanwhile
                Err(StoreError::BadManifest { reason, .. }) => {
                    let moved_to = self.quarantine(&path)?;
                    report.bad_manifests.push(Quarantined {
                        name: key.to_string(),
                        reason,
                        moved_to,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        report.temp_files = count_files(&self.root.join("tmp"))?.0;
        Ok(report)
    }

    /// `Ok(Ok(size))` for a sound blob, `Ok(Err(reason))` for a corrupt one.
    fn check_blob(&self, name: &str, path: &Path) -> Result<Result<u64, String>, StoreError> {
        let Some(digest) = name
            .strip_suffix(".zst")
            .and_then(|s| s.parse::<Digest>().ok())
        else {
            return Ok(Err("not named <digest>.zst".into()));
        };
        if self.blob_path(&digest) != path {
            return Ok(Err("in the wrong fan-out directory".into()));
        }
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(0)),
            Err(e) => return Err(StoreError::io("open blob", path, e)),
        };
        let mut reader = match blob::BlobReader::open(path.to_path_buf(), digest, file, None) {
            Ok(r) => r,
            Err(e) => return corrupt_reason(e, path),
        };
        let mut size = 0u64;
        loop {
            match reader.fill_buf() {
                Ok([]) => return Ok(Ok(size)),
                Ok(chunk) => {
                    let n = chunk.len();
                    size += n as u64;
                    reader.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return corrupt_reason(e, path),
            }
        }
    }

    /// Moves a file to `quarantine/` under a unique name.
    fn quarantine(&self, path: &Path) -> Result<PathBuf, StoreError> {
        let name = path
            .file_name()
            .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dest = self.root.join("quarantine").join(format!("{stamp}-{name}"));
        fs::rename(path, &dest).ctx("move to quarantine", path)?;
        crate::sync_dir(path.parent().expect("store files have a parent"))?;
        crate::sync_dir(&self.root.join("quarantine"))?;
        Ok(dest)
    }

    /// Removes actions not reachable from `roots` or a ref, blobs no kept action names, old
    /// scratch directories (see [`GcOptions`]) and old temp files. Anything touched within the
    /// last hour is kept, as it may belong to a run in progress.
    pub fn gc(&self, roots: &[Digest], keep_checkpoints: usize) -> Result<GcReport, StoreError> {
        self.gc_with(&GcOptions {
            roots: roots.to_vec(),
            keep_checkpoints,
            grace: Duration::from_secs(3600),
        })
    }

    /// [`Store::gc`] with every knob.
    pub fn gc_with(&self, opts: &GcOptions) -> Result<GcReport, StoreError> {
        let _lock = self.gc_lock(true)?;
        let now = SystemTime::now();
        let young = |path: &Path| -> bool {
            fs::symlink_metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() < opts.grace)
        };
        let mut report = GcReport::default();
        let mut keep: BTreeSet<Digest> = opts.roots.iter().copied().collect();
        keep.extend(self.refs()?.into_iter().map(|(_, k)| k));

        let mut live = BTreeSet::new();
        let mut published = BTreeSet::new();
        for (key, path) in self.list_fanout("actions", "json")? {
            let result = match self.read_manifest(&key, &path) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                // An unreadable manifest stops gc: its blobs are unknown (`verify` quarantines it).
                Err(e) => return Err(e),
            };
            if keep.contains(&key) || young(&path) {
                live.extend(result.blobs().map(|(_, b)| b.digest));
                published.insert(key);
                report.actions_kept += 1;
            } else {
                report.bytes_freed += file_len(&path);
                fs::remove_file(&path).ctx("remove action manifest", &path)?;
                report.actions_removed += 1;
            }
        }
        for (digest, path) in self.list_fanout("blobs", "zst")? {
            if live.contains(&digest) || young(&path) {
                report.blobs_kept += 1;
            } else {
                report.bytes_freed += file_len(&path);
                fs::remove_file(&path).ctx("remove blob", &path)?;
                report.blobs_removed += 1;
            }
        }

        // Scratch: a finished stage's goes; a running stage's (locked) and the roots' stay;
        // of the rest, the newest `keep_checkpoints` stay.
        let scratch = self.root.join("scratch");
        let mut candidates = Vec::new();
        for entry in fs::read_dir(&scratch).ctx("list", &scratch)? {
            let path = entry.ctx("list", &scratch)?.path();
            let Some(key) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<Digest>().ok())
            else {
                continue;
            };
            let Some(lock) = self.try_lock_stage(&key)? else {
                report.scratch_kept += 1;
                continue;
            };
            if published.contains(&key) {
                report.scratch_bytes_freed += remove_tree(&path)?;
                report.scratch_removed += 1;
            } else if opts.roots.contains(&key) {
                report.scratch_kept += 1;
            } else {
                candidates.push((newest_mtime(&path), key, path, lock));
            }
        }
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        for (i, (_, _, path, _lock)) in candidates.into_iter().enumerate() {
            if i < opts.keep_checkpoints {
                report.scratch_kept += 1;
            } else {
                report.scratch_bytes_freed += remove_tree(&path)?;
                report.scratch_removed += 1;
            }
        }

        let tmp = self.root.join("tmp");
        for entry in fs::read_dir(&tmp).ctx("list", &tmp)? {
            let path = entry.ctx("list", &tmp)?.path();
            if !young(&path) {
                match fs::remove_file(&path) {
                    Ok(()) => report.temp_removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("remove temp file", &path, e)),
                }
            }
        }
        Ok(report)
    }

    /// Counts and sizes; reads only blob headers.
    pub fn du(&self) -> Result<DuReport, StoreError> {
        let mut r = DuReport::default();
        for (_, path) in self.list_fanout("blobs", "zst")? {
            match blob::read_size(&path) {
                Ok(Ok(size)) => {
                    r.blobs += 1;
                    r.logical_bytes += size;
                    r.stored_bytes += file_len(&path);
                }
                Ok(Err(_)) => {} // corrupt: `verify` reports it
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("read blob header", &path, e)),
            }
        }
        r.compression_ratio = if r.stored_bytes == 0 {
            1.0
        } else {
            r.logical_bytes as f64 / r.stored_bytes as f64
        };
        r.actions = self.list_fanout("actions", "json")?.len() as u64;
        r.refs = count_files(&self.root.join("refs"))?.0;
        let scratch = self.root.join("scratch");
        for entry in fs::read_dir(&scratch).ctx("list", &scratch)? {
            let path = entry.ctx("list", &scratch)?.path();
            r.scratch_dirs += 1;
            r.scratch_bytes += tree_size(&path);
        }
        (r.temp_files, r.temp_bytes) = count_files(&self.root.join("tmp"))?;
        (r.quarantined, r.quarantine_bytes) = count_files(&self.root.join("quarantine"))?;
        Ok(r)
    }
}

fn corrupt_reason(e: io::Error, path: &Path) -> Result<Result<u64, String>, StoreError> {
    match crate::from_read_err(e, "read blob", path) {
        StoreError::CorruptBlob { reason, .. } => Ok(Err(reason)),
        other => Err(other),
    }
}

fn file_len(path: &Path) -> u64 {
    fs::symlink_metadata(path).map_or(0, |m| m.len())
}

/// Number and total size of the plain files directly in `dir`.
fn count_files(dir: &Path) -> Result<(u64, u64), StoreError> {
    let mut n = 0;
    let mut bytes = 0;
    for entry in fs::read_dir(dir).ctx("list", dir)? {
        let entry = entry.ctx("list", dir)?;
        if let Ok(m) = entry.metadata()
            && m.is_file()
        {
            n += 1;
            bytes += m.len();
        }
    }
    Ok((n, bytes))
}

fn tree_size(path: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

/// The newest modification time of a directory and its direct entries.
fn newest_mtime(dir: &Path) -> SystemTime {
    let own = fs::metadata(dir)
        .and_then(|m| m.modified())
        .unwrap_or(UNIX_EPOCH);
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
                .fold(own, SystemTime::max)
        })
        .unwrap_or(own)
}

fn remove_tree(path: &Path) -> Result<u64, StoreError> {
    let size = tree_size(path);
    fs::remove_dir_all(path).ctx("remove scratch directory", path)?;
    Ok(size)
}
