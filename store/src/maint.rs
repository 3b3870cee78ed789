//! Maintenance: `verify` (re-hash and quarantine), `gc` (drop what no root reaches, and the
//! leftovers of dead processes), `du` (every byte under the root, itemised).

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
use crate::leftovers::Kept;
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
    /// Scratch files checked and sound.
    pub scratch_files: u64,
    /// Scratch files in no format the checker knows (a `command` stage's own files).
    pub scratch_unchecked: u64,
    /// Scratch directories not checked because their stage is running.
    pub scratch_busy: u64,
    /// Scratch files that failed their check: their stage would have resumed from them.
    pub corrupt_scratch: Vec<Quarantined>,
    /// Files left in `tmp/` by interrupted writers (invisible; `gc` removes dead ones).
    pub temp_files: u64,
}

impl VerifyReport {
    /// No corrupt blob or scratch file, no unreadable manifest, no manifest pointing at a
    /// missing blob.
    pub fn is_clean(&self) -> bool {
        self.corrupt_blobs.is_empty()
            && self.bad_manifests.is_empty()
            && self.dangling.is_empty()
            && self.corrupt_scratch.is_empty()
    }
}

/// What a check of one scratch file found. The format of scratch files belongs to the stages
/// that write them (see `prunus_stage::sealed`), so the caller of
/// [`Store::verify_with`] supplies the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScratchCheck {
    Sound,
    /// Damaged: moved to `quarantine/`, so the stage starts afresh instead of resuming.
    Corrupt(String),
    /// Not a format the check knows, so not checked.
    Unchecked,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "verified {} blobs ({}), {} actions and {} scratch checkpoints: {}",
            self.blobs,
            human_bytes(self.bytes),
            self.actions,
            self.scratch_files,
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
        for q in &self.corrupt_scratch {
            writeln!(
                f,
                "  corrupt scratch checkpoint {}: {} (moved to {}); its stage starts afresh \
                 on its next run instead of resuming from it",
                q.name,
                q.reason,
                q.moved_to.display()
            )?;
        }
        if self.scratch_unchecked > 0 {
            writeln!(
                f,
                "  {} scratch files are in no format verify checks (a `command` stage's own \
                 files, or checkpoints of an older prunus) and were not checked",
                self.scratch_unchecked
            )?;
        }
        if self.scratch_busy > 0 {
            writeln!(
                f,
                "  skipped the scratch of {} running stages (verify again once they end)",
                self.scratch_busy
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
    /// Actions and blobs younger than this are kept: they may belong to a run in progress
    /// (a blob stored but not yet published). Leftovers of dead processes go at any age.
    pub grace: Duration,
    /// Stages submitted to a batch system and not finished: kept whatever their age.
    pub pending: Vec<Pending>,
}

/// A stage whose batch job is submitted but has no result yet (queued, running, or requeued
/// after a preemption; a cluster's queue can hold it for days): gc keeps what the job will
/// read, its saved job and inputs, and its scratch, which it resumes from.
#[derive(Debug, Clone)]
pub struct Pending {
    pub key: Digest,
    /// Its saved job and its inputs' blobs.
    pub blobs: Vec<Digest>,
    /// The job, in the report's words (`Slurm job 12_3 (train/seed0)`).
    pub job: String,
}

/// What `gc` removed, and what it kept and why.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub actions_kept: u64,
    pub actions_removed: u64,
    pub blobs_kept: u64,
    pub blobs_removed: u64,
    /// Of those kept, the ones kept only for being younger than the grace period.
    pub actions_young: u64,
    pub blobs_young: u64,
    /// Of those kept, the ones only submitted, unfinished jobs need ([`GcOptions::pending`]).
    pub blobs_pending: u64,
    /// The grace period, in seconds.
    pub grace_s: u64,
    /// Compressed bytes of the removed blobs and manifests.
    pub bytes_freed: u64,
    pub scratch_kept: u64,
    pub scratch_removed: u64,
    pub scratch_bytes_freed: u64,
    /// Work directories and temp files of dead processes, removed whatever their age.
    pub work_removed: u64,
    pub temp_removed: u64,
    pub leftover_bytes_freed: u64,
    /// Scratch directories, work directories and temp files kept, each with why.
    pub kept: Vec<Kept>,
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
        if self.actions_young + self.blobs_young > 0 {
            writeln!(
                f,
                "  kept {} actions and {} blobs that no root needs only because they are younger \
                 than the grace period ({}): they may belong to a run in progress",
                self.actions_young,
                self.blobs_young,
                human_secs(self.grace_s)
            )?;
        }
        if self.blobs_pending > 0 {
            writeln!(
                f,
                "  kept {} blobs that only submitted jobs without a result need (their saved \
                 jobs and inputs)",
                self.blobs_pending
            )?;
        }
        writeln!(
            f,
            "removed {} scratch directories ({}); kept {}",
            self.scratch_removed,
            human_bytes(self.scratch_bytes_freed),
            self.scratch_kept,
        )?;
        writeln!(
            f,
            "removed {} work directories and {} temp files of dead processes ({})",
            self.work_removed,
            self.temp_removed,
            human_bytes(self.leftover_bytes_freed)
        )?;
        for k in &self.kept {
            writeln!(f, "  kept {}: {}", k.path.display(), k.why)?;
        }
        Ok(())
    }
}

/// `1h`, `90s`-style durations.
fn human_secs(s: u64) -> String {
    match s {
        0 => "none".into(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}min", s / 60),
        s => format!("{s}s"),
    }
}

/// Sizes of what the store holds: every byte under its root, itemised. Sizes are file
/// lengths (a sparse file counts its holes), as `du --apparent-size` gives them.
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
    pub action_bytes: u64,
    pub refs: u64,
    pub scratch_dirs: u64,
    pub scratch_bytes: u64,
    /// Work directories: of running stages, or left by killed ones (`gc` removes those).
    pub work_dirs: u64,
    pub work_bytes: u64,
    pub temp_files: u64,
    pub temp_bytes: u64,
    pub quarantined: u64,
    pub quarantine_bytes: u64,
    /// Everything else: refs, locks, the marker, files that are not blobs, anything unknown.
    pub other_bytes: u64,
    /// Every byte under the root; the sum of the above.
    pub total_bytes: u64,
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
        writeln!(
            f,
            "actions: {} ({}), refs: {}",
            self.actions,
            human_bytes(self.action_bytes),
            self.refs
        )?;
        writeln!(
            f,
            "scratch: {} directories, {}",
            self.scratch_dirs,
            human_bytes(self.scratch_bytes)
        )?;
        let lines = [
            ("work", "directories", self.work_dirs, self.work_bytes),
            ("temp", "files", self.temp_files, self.temp_bytes),
            (
                "quarantine",
                "files",
                self.quarantined,
                self.quarantine_bytes,
            ),
        ];
        for (what, unit, n, bytes) in lines {
            if n > 0 {
                writeln!(f, "{what}: {n} {unit}, {}", human_bytes(bytes))?;
            }
        }
        if self.other_bytes > 0 {
            writeln!(f, "other: {}", human_bytes(self.other_bytes))?;
        }
        writeln!(f, "total: {}", human_bytes(self.total_bytes))?;
        if self.work_dirs + self.temp_files > 0 {
            writeln!(
                f,
                "(`prunus store gc` removes the work directories and temp files of dead processes)"
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
    /// `quarantine/`, and reports manifests that name missing blobs. Scratch files are not
    /// checked (see [`Store::verify_with`]).
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.verify_with(&|_| ScratchCheck::Unchecked)
    }

    /// [`Store::verify`], and every scratch file of a stage that is not running checked with
    /// `check_scratch`: a corrupt one goes to `quarantine/`, so its stage starts afresh
    /// instead of resuming from it.
    pub fn verify_with(
        &self,
        check_scratch: &dyn Fn(&Path) -> ScratchCheck,
    ) -> Result<VerifyReport, StoreError> {
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
        self.verify_scratch(check_scratch, &mut report)?;
        report.temp_files = count_files(&self.root.join("tmp"))?.0;
        Ok(report)
    }

    /// Checks the scratch of every stage whose lock is free, holding it meanwhile.
    fn verify_scratch(
        &self,
        check: &dyn Fn(&Path) -> ScratchCheck,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let scratch = self.root.join("scratch");
        for entry in fs::read_dir(&scratch).ctx("list", &scratch)? {
            let dir = entry.ctx("list", &scratch)?.path();
            let Some(key) = dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<Digest>().ok())
            else {
                continue;
            };
            let Some(_lock) = self.try_lock_stage(&key)? else {
                report.scratch_busy += 1;
                continue;
            };
            for file in files_under(&dir) {
                match check(&file) {
                    ScratchCheck::Sound => report.scratch_files += 1,
                    ScratchCheck::Unchecked => report.scratch_unchecked += 1,
                    ScratchCheck::Corrupt(reason) => {
                        let name = file
                            .strip_prefix(&self.root)
                            .unwrap_or(&file)
                            .display()
                            .to_string();
                        let moved_to = self.quarantine(&file)?;
                        report.corrupt_scratch.push(Quarantined {
                            name,
                            reason,
                            moved_to,
                        });
                    }
                }
            }
        }
        Ok(())
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
    /// scratch directories (see [`GcOptions`]), and the work directories and temp files of
    /// dead processes. Actions and blobs touched within the last hour are kept, as they may
    /// belong to a run in progress.
    pub fn gc(&self, roots: &[Digest], keep_checkpoints: usize) -> Result<GcReport, StoreError> {
        self.gc_with(&GcOptions {
            roots: roots.to_vec(),
            keep_checkpoints,
            grace: Duration::from_secs(3600),
            pending: Vec::new(),
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
        let mut report = GcReport {
            grace_s: opts.grace.as_secs(),
            ..GcReport::default()
        };
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
                report.actions_young += u64::from(!keep.contains(&key));
            } else {
                report.bytes_freed += file_len(&path);
                fs::remove_file(&path).ctx("remove action manifest", &path)?;
                report.actions_removed += 1;
            }
        }
        let pending: BTreeSet<Digest> = opts.pending.iter().flat_map(|p| p.blobs.clone()).collect();
        for (digest, path) in self.list_fanout("blobs", "zst")? {
            let needed = live.contains(&digest) || pending.contains(&digest);
            if needed || young(&path) {
                report.blobs_kept += 1;
                report.blobs_young += u64::from(!needed);
                report.blobs_pending += u64::from(!live.contains(&digest) && needed);
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
            let rel = Path::new("scratch").join(key.to_string());
            let mut kept = |why: String| {
                report.scratch_kept += 1;
                report.kept.push(Kept {
                    path: rel.clone(),
                    why,
                });
            };
            let Some(lock) = self.try_lock_stage(&key)? else {
                kept("its stage is running (its lock is held)".into());
                continue;
            };
            if published.contains(&key) {
                report.scratch_bytes_freed += remove_tree(&path)?;
                report.scratch_removed += 1;
            } else if let Some(p) = opts.pending.iter().find(|p| p.key == key) {
                kept(format!("{} is submitted and may resume from it", p.job));
            } else if opts.roots.contains(&key) {
                kept("its key is a root".into());
            } else {
                candidates.push((newest_mtime(&path), rel, path, lock));
            }
        }
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        for (i, (_, rel, path, _lock)) in candidates.into_iter().enumerate() {
            if i < opts.keep_checkpoints {
                report.scratch_kept += 1;
                report.kept.push(Kept {
                    path: rel,
                    why: format!(
                        "one of the {} newest checkpoints of unfinished stages \
                         (--keep-checkpoints), to resume from",
                        opts.keep_checkpoints
                    ),
                });
            } else {
                report.scratch_bytes_freed += remove_tree(&path)?;
                report.scratch_removed += 1;
            }
        }

        let swept = self.sweep_leftovers()?;
        report.work_removed = swept.work;
        report.temp_removed = swept.temp;
        report.leftover_bytes_freed = swept.bytes;
        report.kept.extend(swept.kept);
        Ok(report)
    }

    /// Counts and sizes of everything under the root; reads only blob headers.
    pub fn du(&self) -> Result<DuReport, StoreError> {
        let mut r = DuReport::default();
        for (_, path) in self.list_fanout("blobs", "zst")? {
            match blob::read_size(&path) {
                Ok(Ok(size)) => {
                    r.blobs += 1;
                    r.logical_bytes += size;
                    r.stored_bytes += file_len(&path);
                }
                Ok(Err(_)) => {} // corrupt: `verify` reports it; counted as other
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("read blob header", &path, e)),
            }
        }
        r.compression_ratio = if r.stored_bytes == 0 {
            1.0
        } else {
            r.logical_bytes as f64 / r.stored_bytes as f64
        };
        let actions = self.list_fanout("actions", "json")?;
        r.actions = actions.len() as u64;
        r.action_bytes = actions.iter().map(|(_, p)| file_len(p)).sum();
        r.refs = count_files(&self.root.join("refs"))?.0;
        (r.scratch_dirs, r.scratch_bytes) = count_dirs(&self.root.join("scratch"))?;
        (r.work_dirs, r.work_bytes) = count_dirs(&self.root.join("work"))?;
        (r.temp_files, r.temp_bytes) = count_files(&self.root.join("tmp"))?;
        (r.quarantined, r.quarantine_bytes) = count_files(&self.root.join("quarantine"))?;
        r.total_bytes = tree_size(&self.root);
        let known = r.stored_bytes
            + r.action_bytes
            + r.scratch_bytes
            + r.work_bytes
            + r.temp_bytes
            + r.quarantine_bytes;
        // Files may come and go while we count; never report a negative remainder.
        r.other_bytes = r.total_bytes.saturating_sub(known);
        r.total_bytes = r.total_bytes.max(known);
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

/// Number of the entries directly in `dir`, and the total size of everything under it.
fn count_entries(
    dir: &Path,
    count: impl Fn(&fs::Metadata) -> bool,
) -> Result<(u64, u64), StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    let (mut n, mut bytes) = (0, 0);
    for entry in entries {
        let entry = entry.ctx("list", dir)?;
        if entry.metadata().is_ok_and(|m| count(&m)) {
            n += 1;
        }
        bytes += tree_size(&entry.path());
    }
    Ok((n, bytes))
}

/// Plain files directly in `dir` (and the size of all under it).
fn count_files(dir: &Path) -> Result<(u64, u64), StoreError> {
    count_entries(dir, fs::Metadata::is_file)
}

/// Directories directly in `dir` (and the size of all under it).
fn count_dirs(dir: &Path) -> Result<(u64, u64), StoreError> {
    count_entries(dir, fs::Metadata::is_dir)
}

/// The total length of the files at or under `path` (0 if it is gone).
pub(crate) fn tree_size(path: &Path) -> u64 {
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

/// Every plain file at or under `path`, sorted.
fn files_under(path: &Path) -> Vec<PathBuf> {
    let Ok(m) = fs::symlink_metadata(path) else {
        return Vec::new();
    };
    if m.is_file() {
        return vec![path.to_path_buf()];
    }
    if !m.is_dir() {
        return Vec::new();
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    entries.iter().flat_map(|e| files_under(e)).collect()
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
