//! The coordinator's record, in the store, of which Slurm task runs which instance: one file
//! per stage key under `slurm/jobs/`, read and written under a per-key file lock. A restarted
//! coordinator finds its tasks there and re-attaches instead of submitting again; a second
//! coordinator on the same store waits for the lock and then finds the first one's task.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use prunus_engine::job::Job;
use prunus_store::{Digest, Pending, Store};
use serde::{Deserialize, Serialize};

use crate::state::TaskId;

/// One submitted instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// `ARRAY_TASK`, or [`SUBMITTING`] while sbatch runs.
    pub task: String,
    /// Its array's job list (`slurm/arrays/array-*.txt`): also the array's `--comment`, so a
    /// coordinator killed while sbatch ran finds what it submitted.
    pub list: PathBuf,
    pub instance: String,
    /// The saved job it runs (`prunus exec <job>`).
    pub job: Digest,
    pub log: PathBuf,
    pub exit_file: PathBuf,
    pub submitted_unix_ms: u64,
}

/// The task of a record written just before sbatch ran.
pub const SUBMITTING: &str = "submitting";

impl Record {
    pub fn task_id(&self) -> Option<TaskId> {
        self.task.parse().ok()
    }

    /// The `--comment` of the array this instance is (being) submitted in.
    pub fn comment(&self) -> String {
        comment(&self.list)
    }
}

/// The `--comment` of the array whose job list is `list`.
pub fn comment(list: &Path) -> String {
    let stem = list.file_stem().unwrap_or_default().to_string_lossy();
    format!("prunus:{stem}")
}

/// The `slurm/` area of a store.
#[derive(Clone)]
pub struct Ledger {
    pub dir: PathBuf,
}

/// Held while a key's record is read, decided on and written.
pub struct KeyLock(#[allow(dead_code)] File);

impl Ledger {
    pub fn open(store: &Store) -> Result<Ledger, String> {
        let dir = std::path::absolute(store.root().join("slurm")).map_err(|e| e.to_string())?;
        for sub in ["jobs", "arrays", "logs", "exit"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| format!("creating {}: {e}", dir.join(sub).display()))?;
        }
        Ok(Ledger { dir })
    }

    /// Locks `key`'s record, waiting for another coordinator that holds it.
    pub fn lock(&self, key: &Digest) -> Result<KeyLock, String> {
        let path = self.dir.join("jobs").join(format!("{key}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.lock()
            .map_err(|e| format!("locking {}: {e}", path.display()))?;
        Ok(KeyLock(file))
    }

    /// `key`'s record, if an instance with it was submitted.
    pub fn get(&self, key: &Digest) -> Option<Record> {
        let bytes = std::fs::read(self.record(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes `key`'s record atomically (hold its lock).
    pub fn put(&self, key: &Digest, r: &Record) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(r).map_err(|e| e.to_string())?;
        atomic_write(&self.record(key), &json)
    }

    /// Forgets `key`'s record (its submission failed).
    pub fn remove(&self, key: &Digest) {
        let _ = std::fs::remove_file(self.record(key));
    }

    /// Notes a submission in `slurm/submitted.log`: one line per instance submitted, what
    /// tests count.
    pub fn note(&self, key: &Digest, r: &Record) -> Result<(), String> {
        let line = format!("{} {key} {}\n", r.task, r.instance);
        let path = self.dir.join("submitted.log");
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        log.write_all(line.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn record(&self, key: &Digest) -> PathBuf {
        self.dir.join("jobs").join(format!("{key}.json"))
    }

    /// The array list file for digests (one saved job per line, task N on line N+1).
    pub fn write_list(&self, jobs: &[Digest]) -> Result<PathBuf, String> {
        let text: String = jobs.iter().map(|d| format!("{d}\n")).collect();
        let file = tempfile::Builder::new()
            .prefix("array-")
            .suffix(".txt")
            .tempfile_in(self.dir.join("arrays"))
            .map_err(|e| e.to_string())?;
        std::fs::write(file.path(), text).map_err(|e| e.to_string())?;
        let (_, path) = file.keep().map_err(|e| e.to_string())?;
        Ok(path)
    }
}

/// What `prunus store gc` must keep for the instances submitted to Slurm from `store` that
/// have no result yet: each one's saved job, its inputs and its scratch (see [`Pending`]).
/// A record stays after its task ends, so one without a result may also be a failed task:
/// its job is what the next run resubmits. Nothing if the store never ran on Slurm.
pub fn pending(store: &Store) -> Vec<Pending> {
    let Ok(entries) = std::fs::read_dir(store.root().join("slurm/jobs")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        let key = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::parse::<Digest>);
        let (Some(Ok(key)), Some("json")) = (key, path.extension().and_then(|e| e.to_str())) else {
            continue;
        };
        let Some(r) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        else {
            continue;
        };
        if !matches!(store.lookup(&key), Ok(None)) {
            continue; // published (or unreadable, which gc itself reports)
        }
        let mut blobs = vec![r.job];
        if let Ok(job) = Job::load(store, &r.job) {
            let inputs = job.inputs.iter().flat_map(|i| i.outputs.values());
            blobs.extend(inputs.map(|b| b.digest));
        }
        let job = format!("Slurm job {} ({})", r.task, r.instance);
        out.push(Pending { key, blobs, job });
    }
    out
}

fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().expect("a file in a directory");
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
    tmp.write_all(bytes).map_err(|e| e.to_string())?;
    tmp.as_file().sync_all().map_err(|e| e.to_string())?;
    tmp.persist(path).map_err(|e| e.to_string())?;
    Ok(())
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
